//! Reading operation inputs the two ways FHIR allows: URL query parameters, or a `Parameters`
//! resource in a POST body.

use std::collections::HashMap;

use serde_json::Value;

/// Named inputs of an operation (first value of each name wins; repeats kept in order).
#[derive(Debug, Default, Clone)]
pub struct OpParams {
    values: HashMap<String, Vec<String>>,
}

impl OpParams {
    pub fn from_query(pairs: impl IntoIterator<Item = (String, String)>) -> OpParams {
        let mut p = OpParams::default();
        for (k, v) in pairs {
            p.values.entry(k).or_default().push(v);
        }
        p
    }

    /// Reads a `Parameters` resource. `valueCoding` contributes `system`, `code`, `version`
    /// and `display` as FHIR's terminology operations define.
    pub fn from_parameters(body: &Value) -> Result<OpParams, String> {
        if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err("expected a Parameters resource".into());
        }
        let mut p = OpParams::default();
        for param in body.get("parameter").and_then(Value::as_array).into_iter().flatten() {
            let Some(name) = param.get("name").and_then(Value::as_str) else {
                return Err("a parameter has no name".into());
            };
            let Some(obj) = param.as_object() else { continue };
            for (k, v) in obj {
                if k == "valueCoding" {
                    for f in ["system", "code", "version", "display"] {
                        if let Some(s) = v.get(f).and_then(Value::as_str) {
                            p.values.entry(f.to_owned()).or_default().push(s.to_owned());
                        }
                    }
                } else if k.starts_with("value") {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        // Complex values (valueAttachment, valueReference) are read by the
                        // operation that takes them.
                        _ => continue,
                    };
                    p.values.entry(name.to_owned()).or_default().push(text);
                }
            }
        }
        Ok(p)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.first()).map(String::as_str).filter(|s| !s.is_empty())
    }

    pub fn usize(&self, name: &str) -> Result<Option<usize>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| format!("parameter {name} must be a non-negative integer, got {v:?}")),
        }
    }
}
