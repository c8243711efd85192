//! The coders' workbench (issue 16): a web page on the same server, at `/` beside the FHIR
//! API at `/fhir`. Server-rendered fragments (maud) swapped in by a pinned htmx, so there is
//! nothing to build outside `cargo build`; every fragment goes through the same access guard,
//! coding queue, validation and review rules as the FHIR interaction it stands for.

mod assets;
pub mod batch;
pub mod case;
mod export;
mod pages;
mod routes;

pub use batch::Batches;
pub use routes::configure;
