//! FHIR R4 shapes of what jointcoder knows. Builds JSON values; knows nothing of HTTP.

pub mod capability;
pub mod inbound;
pub mod outbound;
pub mod outcome;
pub mod params;
pub mod terminology;
pub mod validate;

pub const FHIR_VERSION: &str = "4.0.1";
