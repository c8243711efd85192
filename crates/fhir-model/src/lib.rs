//! The one place that calls fhirbolt.
//!
//! fhirbolt's generic serde code is monomorphised into whichever crate calls it, which costs
//! minutes on every release rebuild of that crate. Keeping every call here, behind plain
//! functions over `&str`, means it is compiled once and the main crate rebuilds quickly.

use fhirbolt::model::r4::Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};

/// Parses `json` as a FHIR R4 resource in strict mode (unknown elements are errors) and returns
/// its resource type. This is how tests and the `validate` command check what the server emits
/// against the R4 model without trusting our own builders.
pub fn check_r4_strict(json: &str) -> Result<String, String> {
    let config = DeserializationConfig { mode: DeserializationMode::Strict };
    let resource: Resource = fhirbolt::json::from_str(json, Some(config)).map_err(|e| e.to_string())?;
    resource_type(&resource)
}

/// Parses leniently (unknown elements ignored) and writes the resource back in canonical R4
/// JSON: what a client would get from a conformant server for the same content.
pub fn normalize_r4(json: &str) -> Result<String, String> {
    let config = DeserializationConfig { mode: DeserializationMode::Compatibility };
    let resource: Resource = fhirbolt::json::from_str(json, Some(config)).map_err(|e| e.to_string())?;
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
    }
}
