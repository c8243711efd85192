//! jointcoder: codes Chinese inpatient records the way certified coders do.
pub mod app;
pub mod bench;
pub mod catalog;
pub mod config;
pub mod stats;
pub mod fhir;
pub mod ids;
pub mod ingest;
pub mod record;
pub mod server;
pub mod telemetry;
pub mod terminology;
pub mod agents;
pub mod pipeline;
pub mod eval;
pub mod cli;
pub mod store;
pub mod llm;
pub mod sft;
pub mod train;

