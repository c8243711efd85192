//! The knowledge backend: retrieval over the code tables, the lexicon, clinical rules and small
//! models trained on CPU from coded records. No GPU, no weights to download.
pub mod text;
pub mod reranker;
pub mod standardize;
pub mod mine;
