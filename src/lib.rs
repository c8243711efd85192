//! jointcoder: codes Chinese inpatient records the way certified coders do.
pub mod terminology;
