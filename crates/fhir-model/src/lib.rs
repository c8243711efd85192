//! The one place that calls fhirbolt.
//!
//! fhirbolt's generic serde code is monomorphised into whichever crate calls it, which costs
//! minutes on every release rebuild of that crate. Keeping every call here, behind plain
//! functions over `&str`, means it is compiled once and the main crate rebuilds quickly.

use fhirbolt::model::r4::Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};

/// Parses `json` as a FHIR R4 resource in strict mode (unknown elements are errors) and returns
/// its resource type. The server judges every write with it; the tests check what the server
/// emits against the R4 model without trusting our own builders.
pub fn check_r4_strict(json: &str) -> Result<String, String> {
    let config = DeserializationConfig { mode: DeserializationMode::Strict };
    let resource: Resource = unpanicked(|| fhirbolt::json::from_str(json, Some(config)).map_err(|e| e.to_string()))?;
    resource_type(&resource)
}

/// fhirbolt 0.4 panics on some bodies instead of failing (an empty array anywhere): a client's
/// body must never take a worker down, so a panic becomes an error like any other.
fn unpanicked<T>(parse: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).unwrap_or_else(|_| Err("the R4 model cannot read this body".to_owned()))
}

/// Parses leniently (unknown elements ignored) and writes the resource back in canonical R4
/// JSON: what a client would get from a conformant server for the same content.
pub fn normalize_r4(json: &str) -> Result<String, String> {
    let config = DeserializationConfig { mode: DeserializationMode::Compatibility };
    let resource: Resource = unpanicked(|| fhirbolt::json::from_str(json, Some(config)).map_err(|e| e.to_string()))?;
    fhirbolt::json::to_string(&resource, None).map_err(|e| e.to_string())
}

fn resource_type(resource: &Resource) -> Result<String, String> {
    // Serialising back is cheap next to parsing and avoids matching 140 enum variants here.
    let text = fhirbolt::json::to_string(resource, None).map_err(|e| e.to_string())?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    value
        .get("resourceType")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| "no resourceType".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_rejects_unknown_elements_and_accepts_valid() {
        let ok = r#"{"resourceType":"Parameters","parameter":[{"name":"display","valueString":"x"}]}"#;
        assert_eq!(check_r4_strict(ok).unwrap(), "Parameters");
        let bad = r#"{"resourceType":"Parameters","parameter":[{"name":"display","valueFoo":"x"}]}"#;
        assert!(check_r4_strict(bad).is_err());
        assert!(check_r4_strict(r#"{"resourceType":"NotAThing"}"#).is_err());
        // fhirbolt itself panics on an empty array.
        assert!(check_r4_strict(r#"{"resourceType":"Condition","subject":{"reference":"Patient/p"},"note":[]}"#).is_err());
    }
}
