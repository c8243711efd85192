//! Reading a model's answer: strict JSON first, then repairs of what small models and servers
//! without constrained decoding commonly produce (a thinking block, code fences, Chinese
//! punctuation, single quotes, text around the object). Whatever still does not give a valid
//! answer is reported as unusable, and the agent falls back.

use serde_json::Value;

use crate::terminology::normalize::normalize;

#[derive(Debug, PartialEq)]
pub enum Parsed<T> {
    Exact(T),
    /// Usable after a repair, which the trace names.
    Repaired(T, &'static str),
    Unusable(String),
}

fn strip_wrapping(text: &str) -> &str {
    let mut t = text.trim();
    if let Some(end) = t.find("</think>") {
        t = t[end + "</think>".len()..].trim();
    }
    t.trim_start_matches("```json").trim_start_matches("```").trim_end_matches("```").trim()
}

/// The answer field from `text`, and whether it needed repair.
fn field(text: &str, name: &str) -> Result<(Value, Option<&'static str>), String> {
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(text) {
        return m.get(name).cloned().map(|v| (v, None)).ok_or_else(|| format!("no field {name}"));
    }
    let inner = strip_wrapping(text);
    let object = match (inner.find('{'), inner.rfind('}')) {
        (Some(a), Some(b)) if a < b => &inner[a..=b],
        _ => return Err("no JSON object".into()),
    };
    let attempts: [(&'static str, String); 2] = [
        ("extracted the JSON object", object.to_owned()),
        (
            "fixed quotes and punctuation",
            object.replace(['“', '”'], "\"").replace('：', ":").replace('，', ",").replace('\'', "\"").replace(",}", "}"),
        ),
    ];
    for (what, candidate) in attempts {
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&candidate) {
            return m.get(name).cloned().map(|v| (v, Some(what))).ok_or_else(|| format!("no field {name}"));
        }
    }
    Err("not valid JSON".into())
}

/// One of `options`, from an answer such as `{"name": "…"}`. A value that is not an option
/// exactly may still name one after normalization (full-width forms, spacing).
pub fn choice(text: &str, answer: &str, options: &[String]) -> Parsed<usize> {
    let (value, repair) = match field(text, answer) {
        Ok(v) => v,
        Err(e) => return Parsed::Unusable(e),
    };
    let Some(s) = value.as_str() else { return Parsed::Unusable(format!("{answer} is not a string")) };
    if let Some(i) = options.iter().position(|o| o == s) {
        return match repair {
            None => Parsed::Exact(i),
            Some(r) => Parsed::Repaired(i, r),
        };
    }
    let key = normalize(s);
    let hits: Vec<usize> = options.iter().enumerate().filter(|(_, o)| normalize(o) == key).map(|(i, _)| i).collect();
    match hits.as_slice() {
        [i] => Parsed::Repaired(*i, "matched an option after normalization"),
        _ => Parsed::Unusable(format!("{s:?} is not one of the options")),
    }
}

/// A keep/drop verdict from `{"keep": true}` (or `"是"`/`"否"`, `"true"`).
pub fn verdict(text: &str, answer: &str) -> Parsed<bool> {
    let (value, repair) = match field(text, answer) {
        Ok(v) => v,
        Err(e) => return Parsed::Unusable(e),
    };
    let (b, coerced) = match &value {
        Value::Bool(b) => (*b, false),
        Value::String(s) => match s.trim() {
            "true" | "是" | "保留" | "yes" => (true, true),
            "false" | "否" | "删除" | "no" => (false, true),
            other => return Parsed::Unusable(format!("{other:?} is not a verdict")),
        },
        other => return Parsed::Unusable(format!("{other} is not a verdict")),
    };
    match (repair, coerced) {
        (None, false) => Parsed::Exact(b),
        (Some(r), _) => Parsed::Repaired(b, r),
        (None, true) => Parsed::Repaired(b, "read a verdict from a string"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_repaired_and_unusable_answers() {
        let opts = vec!["冠状动脉粥样硬化性心脏病".to_string(), "高血压".to_string()];
        assert_eq!(choice(r#"{"name": "高血压"}"#, "name", &opts), Parsed::Exact(1));
        assert!(matches!(choice("<think>想想</think>\n```json\n{\"name\": \"高血压\"}\n```", "name", &opts), Parsed::Repaired(1, _)));
        assert!(matches!(choice("答案：{“name”：“高血压”}", "name", &opts), Parsed::Repaired(1, _)));
        assert!(matches!(choice(r#"{"name": "高血压 "}"#, "name", &opts), Parsed::Repaired(1, _)));
        assert!(matches!(choice(r#"{"name": "糖尿病"}"#, "name", &opts), Parsed::Unusable(_)), "never a name outside the options");
        assert!(matches!(choice("高血压", "name", &opts), Parsed::Unusable(_)));
        assert_eq!(verdict(r#"{"keep": false}"#, "keep"), Parsed::Exact(false));
        assert!(matches!(verdict(r#"{'keep': '是'}"#, "keep"), Parsed::Repaired(true, _)));
        assert!(matches!(verdict(r#"{"keep": "也许"}"#, "keep"), Parsed::Unusable(_)));
    }
}
