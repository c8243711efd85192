//! Whether a resource a client writes is valid FHIR R4, judged before anything is stored.
//!
//! Three layers, each naming the path of what it finds (a FHIRPath expression such as
//! `Condition.code.coding[0].code`), so that an integrator sees where the body is wrong:
//! - the JSON rules of R4 (json.html): no `null`, no empty strings, objects or arrays (ele-1);
//! - structure and datatypes by fhirbolt's R4 model in strict mode (unknown elements, a string
//!   where a CodeableConcept belongs, a missing required element). fhirbolt says what is wrong
//!   but not where, so the place is found by taking the body apart until the error goes away;
//! - what fhirbolt does not check: primitive formats (id, dateTime, instant, code), the codes
//!   of the required bindings the coders' and EHRs' writes carry, and the invariants that
//!   matter here (con-3/4/5, dom-2/4, cmp-1/2, att-1).
//!
//! The rules of an interaction (an update's `id`, a review not moving a diagnosis to another
//! patient) belong to the routes, which know the interaction.

use serde_json::{Map, Value};

/// What kind of problem an issue is: structure and values make a request unreadable as R4
/// (400), an invariant makes it a resource R4 forbids (422).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Structure,
    Value,
    Invariant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Severity {
    Error,
    /// Reported, not refused (R4 makes con-3 a warning).
    Warning,
}

#[derive(Debug, Clone)]
pub struct Issue {
    pub problem: Problem,
    pub severity: Severity,
    /// FHIRPath of the element, from the resource type.
    pub expression: String,
    pub message: String,
}

impl Issue {
    fn error(problem: Problem, expression: String, message: impl Into<String>) -> Issue {
        Issue { problem, severity: Severity::Error, expression, message: message.into() }
    }
}

/// Every issue found in `resource`, errors and warnings. Structure is judged first; a
/// resource whose structure is wrong is not judged further (its values mean nothing yet).
pub fn check(resource: &Value) -> Vec<Issue> {
    let Some(ty) = resource.get("resourceType").and_then(Value::as_str) else {
        return vec![Issue::error(Problem::Structure, "resourceType".into(), "the body has no resourceType")];
    };
    let mut issues = Vec::new();
    json_rules(resource, ty, &mut issues);
    if !issues.is_empty() {
        return issues;
    }
    if let Err(message) = fhir_model::check_r4_strict(&resource.to_string()) {
        return vec![locate_structure_error(resource, ty, &message)];
    }
    formats(resource, ty, &mut issues);
    invariants(resource, ty, &mut issues);
    issues
}

/// Only the errors of [`check`]: what makes a write refused.
pub fn errors(resource: &Value) -> Vec<Issue> {
    check(resource).into_iter().filter(|i| i.severity == Severity::Error).collect()
}

// ---------------------------------------------------------------------------------------------
// JSON rules

fn json_rules(v: &Value, path: &str, out: &mut Vec<Issue>) {
    match v {
        Value::Object(map) => {
            if map.is_empty() {
                out.push(Issue::error(Problem::Structure, path.into(), "an empty object: R4 elements have a value or children (ele-1)"));
            }
            for (k, child) in map {
                let p = child_path(path, k);
                match child {
                    Value::Null => out.push(Issue::error(Problem::Structure, p, "null is not a FHIR value: leave the element out")),
                    Value::Array(items) => {
                        if items.is_empty() {
                            out.push(Issue::error(Problem::Structure, p.clone(), "an empty array: leave the element out"));
                        }
                        // A null keeps primitive values aligned with their `_name` extensions.
                        let aligned = map.contains_key(&format!("_{k}")) || (k.starts_with('_') && map.contains_key(&k[1..]));
                        for (i, item) in items.iter().enumerate() {
                            let ip = format!("{p}[{i}]");
                            if item.is_null() {
                                if !aligned {
                                    out.push(Issue::error(Problem::Structure, ip, "null is not a FHIR value"));
                                }
                            } else {
                                json_rules(item, &ip, out);
                            }
                        }
                    }
                    _ => json_rules(child, &p, out),
                }
            }
        }
        Value::String(s) if s.is_empty() => out.push(Issue::error(Problem::Value, path.into(), "an empty string: R4 strings have content")),
        _ => {}
    }
}

fn child_path(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

// ---------------------------------------------------------------------------------------------
// Structure, located

/// One step of a path into a JSON value.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// Finds where fhirbolt's `message` comes from: descends into the child whose removal makes
/// that error go away (or change), until no child does. fhirbolt stops at the first error in
/// document order, and a missing required element is only noticed when its object closes, so
/// removing siblings never hides the error: the children are bisected, and a body with
/// thousands of concepts costs a few dozen parses, not thousands.
fn locate_structure_error(resource: &Value, ty: &str, message: &str) -> Issue {
    let mut at: Vec<Step> = Vec::new();
    let changes = |at: &[Step], removed: &[Step]| {
        let mut trial = resource.clone();
        remove_children(&mut trial, at, removed);
        fhir_model::check_r4_strict(&trial.to_string()).err().as_deref() != Some(message)
    };
    loop {
        let mut children: Vec<Step> = match get(resource, &at) {
            Some(Value::Object(m)) => m.keys().filter(|k| !(at.is_empty() && *k == "resourceType")).map(|k| Step::Key(k.clone())).collect(),
            Some(Value::Array(a)) => (0..a.len()).map(Step::Index).collect(),
            _ => Vec::new(),
        };
        while children.len() > 1 {
            let half = children.len() / 2;
            if changes(&at, &children[..half]) {
                children.truncate(half);
            } else {
                children.drain(..half);
            }
        }
        match children.pop() {
            Some(c) if changes(&at, std::slice::from_ref(&c)) => at.push(c),
            _ => break,
        }
    }
    let mut expression = fhirpath(ty, &at);
    let node = get(resource, &at);
    let text = if let Some(field) = between(message, "missing field `", "`") {
        expression = child_path(&expression, field);
        format!("the required element {field} is missing")
    } else if let Some(field) = between(message, "unknown field `", "`") {
        match node {
            // fhirbolt reads a primitive where a complex type belongs as an object's `value`.
            Some(v) if field == "value" && !v.is_object() && !v.is_array() => {
                format!("a {} where R4 has an element with children ({message})", json_kind(v))
            }
            _ => format!("{field} is not an element of {} in R4", if at.is_empty() { ty } else { "this element" }),
        }
    } else {
        message.to_owned()
    };
    Issue::error(Problem::Structure, expression, text)
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Null => "null",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn get<'a>(v: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, s| match s {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(*i),
    })
}

fn get_mut<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, s| match s {
        Step::Key(k) => v.get_mut(k),
        Step::Index(i) => v.get_mut(*i),
    })
}

/// Removes `children` of the element at `at`; an array left empty goes too (fhirbolt 0.4
/// panics on `[]`, which the JSON rules keep from it otherwise).
fn remove_children(v: &mut Value, at: &[Step], children: &[Step]) {
    let emptied = match get_mut(v, at) {
        Some(Value::Object(m)) => {
            for c in children {
                if let Step::Key(k) = c {
                    m.shift_remove(k);
                }
            }
            false
        }
        Some(Value::Array(a)) => {
            let mut indices: Vec<usize> = children.iter().filter_map(|c| if let Step::Index(i) = c { Some(*i) } else { None }).collect();
            indices.sort_unstable_by(|x, y| y.cmp(x));
            for i in indices {
                if i < a.len() {
                    a.remove(i);
                }
            }
            a.is_empty()
        }
        _ => false,
    };
    if let (true, Some((last, parent))) = (emptied, at.split_last()) {
        remove_children(v, parent, std::slice::from_ref(last));
    }
}

fn fhirpath(ty: &str, path: &[Step]) -> String {
    let mut s = ty.to_owned();
    for step in path {
        match step {
            Step::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Primitive formats and required bindings

/// The value sets of required bindings on the elements EHRs and coders write here.
const CONDITION_CLINICAL: (&str, &[&str]) =
    ("http://terminology.hl7.org/CodeSystem/condition-clinical", &["active", "recurrence", "relapse", "inactive", "remission", "resolved"]);
const CONDITION_VERIFICATION: (&str, &[&str]) = (
    "http://terminology.hl7.org/CodeSystem/condition-ver-status",
    &["unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"],
);
const EVENT_STATUS: &[&str] = &["preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error", "unknown"];
const COMPOSITION_STATUS: &[&str] = &["preliminary", "final", "amended", "entered-in-error"];
const DOCUMENT_REFERENCE_STATUS: &[&str] = &["current", "superseded", "entered-in-error"];

fn formats(resource: &Value, ty: &str, out: &mut Vec<Issue>) {
    walk_formats(resource, ty, true, out);
    let field = |name: &str| (resource.get(name), format!("{ty}.{name}"));
    let mut code_in = |name: &str, allowed: &[&str]| {
        if let (Some(Value::String(c)), path) = field(name) {
            if !allowed.contains(&c.as_str()) {
                out.push(Issue::error(Problem::Value, path, format!("{c:?} is not one of {} (a required binding)", allowed.join(", "))));
            }
        }
    };
    match ty {
        "Procedure" => code_in("status", EVENT_STATUS),
        "Composition" => code_in("status", COMPOSITION_STATUS),
        "DocumentReference" => {
            code_in("status", DOCUMENT_REFERENCE_STATUS);
            code_in("docStatus", COMPOSITION_STATUS);
        }
        _ => {}
    }
    let mut date_field = |name: &str, check: fn(&str) -> bool, kind: &str| {
        if let (Some(Value::String(s)), path) = field(name) {
            if !check(s) {
                out.push(Issue::error(Problem::Value, path, format!("{s:?} is not an R4 {kind}")));
            }
        }
    };
    match ty {
        "Condition" => date_field("recordedDate", is_date_time, "dateTime"),
        "Composition" => date_field("date", is_date_time, "dateTime"),
        "DocumentReference" => date_field("date", is_instant, "instant"),
        _ => {}
    }
    if ty == "Condition" {
        for (name, (system, codes)) in [("clinicalStatus", CONDITION_CLINICAL), ("verificationStatus", CONDITION_VERIFICATION)] {
            let Some(cc) = resource.get(name) else { continue };
            let from_set = cc.get("coding").and_then(Value::as_array).into_iter().flatten().find(|c| c["system"] == system);
            match from_set.and_then(|c| c["code"].as_str()) {
                Some(code) if codes.contains(&code) => {}
                Some(code) => out.push(Issue::error(Problem::Value, format!("{ty}.{name}"), format!("{code:?} is not a code of {system} ({})", codes.join(", ")))),
                None => out.push(Issue::error(Problem::Value, format!("{ty}.{name}"), format!("no coding from {system} (a required binding)"))),
            }
        }
    }
    if ty == "Binary" {
        if let Some(ct) = resource.get("contentType").and_then(Value::as_str) {
            if !is_mime_type(ct) {
                out.push(Issue::error(Problem::Value, "Binary.contentType".into(), format!("{ct:?} is not a MIME type")));
            }
        }
    }
}

/// Formats that follow from an element's name wherever it stands: resource ids, `meta`
/// instants, choice types ending in `DateTime`/`Instant`, and every `code` given as text.
fn walk_formats(v: &Value, path: &str, resource_root: bool, out: &mut Vec<Issue>) {
    let Value::Object(map) = v else {
        if let Value::Array(items) = v {
            for (i, item) in items.iter().enumerate() {
                walk_formats(item, &format!("{path}[{i}]"), false, out);
            }
        }
        return;
    };
    for (k, child) in map {
        let p = child_path(path, k);
        let bad = |out: &mut Vec<Issue>, kind: &str, s: &str| out.push(Issue::error(Problem::Value, p.clone(), format!("{s:?} is not an R4 {kind}")));
        match (k.as_str(), child) {
            ("id", Value::String(s)) if resource_root && !is_id(s) => bad(out, "id (1–64 of A–Z, a–z, 0–9, '-', '.')", s),
            ("lastUpdated", Value::String(s)) if path.ends_with(".meta") && !is_instant(s) => bad(out, "instant", s),
            ("versionId", Value::String(s)) if path.ends_with(".meta") && !is_id(s) => bad(out, "id", s),
            ("code", Value::String(s)) if !is_code(s) => bad(out, "code (no leading, trailing or doubled whitespace)", s),
            (k, Value::String(s)) if k.ends_with("DateTime") && !is_date_time(s) => bad(out, "dateTime", s),
            (k, Value::String(s)) if k.ends_with("Instant") && !is_instant(s) => bad(out, "instant", s),
            ("contained", Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    walk_formats(item, &format!("{p}[{i}]"), true, out);
                }
            }
            _ => walk_formats(child, &p, false, out),
        }
    }
}

fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn is_code(s: &str) -> bool {
    !s.is_empty() && !s.starts_with(char::is_whitespace) && !s.ends_with(char::is_whitespace) && !s.contains("  ") && !s.contains(['\t', '\n', '\r'])
}

fn is_mime_type(s: &str) -> bool {
    let essence = s.split(';').next().unwrap_or("").trim();
    matches!(essence.split_once('/'), Some((a, b)) if !a.is_empty() && !b.is_empty() && !essence.contains(char::is_whitespace))
}

/// R4 dateTime: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or a full time with seconds and a zone.
pub fn is_date_time(s: &str) -> bool {
    match s.split_once('T') {
        None => is_partial_date(s),
        Some((date, time)) => is_full_date(date) && is_zoned_time(time),
    }
}

/// R4 instant: a full date, a time with seconds, and a zone.
pub fn is_instant(s: &str) -> bool {
    s.split_once('T').is_some_and(|(date, time)| is_full_date(date) && is_zoned_time(time))
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn is_partial_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [y] => digits(y, 4).is_some(),
        [y, m] => digits(y, 4).is_some() && digits(m, 2).is_some_and(|m| (1..=12).contains(&m)),
        [_, _, _] => is_full_date(s),
        _ => false,
    }
}

fn is_full_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return false };
    let (Some(y), Some(m), Some(d)) = (digits(y, 4), digits(m, 2), digits(d, 2)) else { return false };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

fn is_zoned_time(s: &str) -> bool {
    let (time, zone) = if let Some(t) = s.strip_suffix('Z') {
        (t, None)
    } else if s.len() > 6 && (s.as_bytes()[s.len() - 6] == b'+' || s.as_bytes()[s.len() - 6] == b'-') {
        (&s[..s.len() - 6], Some(&s[s.len() - 5..]))
    } else {
        return false;
    };
    let zone_ok = zone.is_none_or(|z| {
        matches!(z.split_once(':'), Some((h, m)) if digits(h, 2).is_some_and(|h| h <= 14) && digits(m, 2).is_some_and(|m| m < 60))
    });
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let parts: Vec<&str> = hms.split(':').collect();
    let [h, m, sec] = parts.as_slice() else { return false };
    zone_ok
        && digits(h, 2).is_some_and(|h| h < 24)
        && digits(m, 2).is_some_and(|m| m < 60)
        && digits(sec, 2).is_some_and(|s| s <= 60)
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------------
// Invariants

fn has_code(cc: Option<&Value>, system: &str, codes: &[&str]) -> bool {
    cc.and_then(|c| c.get("coding")).and_then(Value::as_array).into_iter().flatten().any(|c| c["system"] == system && c["code"].as_str().is_some_and(|code| codes.contains(&code)))
}

fn invariants(resource: &Value, ty: &str, out: &mut Vec<Issue>) {
    let Some(map) = resource.as_object() else { return };
    domain_resource(map, ty, out);
    match ty {
        "Condition" => condition(map, out),
        "Composition" => {
            for (i, s) in map.get("section").and_then(Value::as_array).into_iter().flatten().enumerate() {
                section(s, &format!("Composition.section[{i}]"), out);
            }
        }
        "DocumentReference" => {
            for (i, c) in map.get("content").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let a = &c["attachment"];
                if a.get("data").is_some() && a.get("contentType").is_none() {
                    out.push(Issue::error(Problem::Invariant, format!("DocumentReference.content[{i}].attachment"), "att-1: an attachment with data has a contentType"));
                }
            }
        }
        _ => {}
    }
}

fn condition(map: &Map<String, Value>, out: &mut Vec<Issue>) {
    let (clinical_system, _) = CONDITION_CLINICAL;
    let (verification_system, _) = CONDITION_VERIFICATION;
    let clinical = map.get("clinicalStatus");
    let in_error = has_code(map.get("verificationStatus"), verification_system, &["entered-in-error"]);
    if in_error && clinical.is_some() {
        out.push(Issue::error(Problem::Invariant, "Condition.clinicalStatus".into(), "con-5: a Condition entered in error has no clinicalStatus"));
    }
    let abated = map.keys().any(|k| k.starts_with("abatement"));
    if abated && !has_code(clinical, clinical_system, &["inactive", "resolved", "remission"]) {
        out.push(Issue::error(Problem::Invariant, "Condition.clinicalStatus".into(), "con-4: an abated Condition is inactive, resolved or in remission"));
    }
    let problem_list = map.get("category").and_then(Value::as_array).into_iter().flatten().any(|c| {
        has_code(Some(c), "http://terminology.hl7.org/CodeSystem/condition-category", &["problem-list-item"])
    });
    if problem_list && !in_error && clinical.is_none() {
        out.push(Issue {
            problem: Problem::Invariant,
            severity: Severity::Warning,
            expression: "Condition.clinicalStatus".into(),
            message: "con-3: a problem-list item not entered in error has a clinicalStatus".into(),
        });
    }
}

/// cmp-1 and cmp-2, down the nested sections.
fn section(s: &Value, path: &str, out: &mut Vec<Issue>) {
    let entries = s.get("entry").is_some();
    let subsections = s.get("section").and_then(Value::as_array);
    if s.get("text").is_none() && !entries && subsections.is_none() {
        out.push(Issue::error(Problem::Invariant, path.into(), "cmp-1: a section has text, entries or sections"));
    }
    if s.get("emptyReason").is_some() && entries {
        out.push(Issue::error(Problem::Invariant, path.into(), "cmp-2: a section with entries has no emptyReason"));
    }
    for (i, sub) in subsections.into_iter().flatten().enumerate() {
        section(sub, &format!("{path}.section[{i}]"), out);
    }
}

/// dom-2 (no nested contained resources) and dom-4 (contained resources carry no version or
/// update time of their own).
fn domain_resource(map: &Map<String, Value>, ty: &str, out: &mut Vec<Issue>) {
    for (i, c) in map.get("contained").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let path = format!("{ty}.contained[{i}]");
        if c.get("contained").is_some() {
            out.push(Issue::error(Problem::Invariant, path.clone(), "dom-2: a contained resource contains no resources"));
        }
        if c["meta"].get("versionId").is_some() || c["meta"].get("lastUpdated").is_some() {
            out.push(Issue::error(Problem::Invariant, format!("{path}.meta"), "dom-4: a contained resource has no versionId or lastUpdated"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn condition() -> Value {
        json!({
            "resourceType": "Condition", "id": "c1",
            "clinicalStatus": { "coding": [{ "system": CONDITION_CLINICAL.0, "code": "active" }] },
            "verificationStatus": { "coding": [{ "system": CONDITION_VERIFICATION.0, "code": "confirmed" }] },
            "code": { "coding": [{ "system": "https://example.org/icd10", "code": "I21.000" }] },
            "subject": { "reference": "Patient/p1" },
            "recordedDate": "2026-11-30T08:00:00+08:00"
        })
    }

    fn only(issues: &[Issue]) -> (String, String, Problem) {
        assert_eq!(issues.len(), 1, "{issues:?}");
        (issues[0].expression.clone(), issues[0].message.clone(), issues[0].problem)
    }

    #[test]
    fn a_valid_condition_has_no_issue() {
        assert!(check(&condition()).is_empty(), "{:?}", check(&condition()));
    }

    #[test]
    fn structure_errors_name_their_path() {
        let mut c = condition();
        c["foo"] = json!(1);
        assert_eq!(only(&errors(&c)).0, "Condition.foo");

        let mut c = condition();
        c["clinicalStatus"] = json!("active");
        let (path, message, problem) = only(&errors(&c));
        assert_eq!((path.as_str(), problem), ("Condition.clinicalStatus", Problem::Structure));
        assert!(message.starts_with("a string where R4 has an element with children"), "{message}");

        let mut c = condition();
        c["code"]["coding"][0]["code"] = json!(5);
        assert_eq!(only(&errors(&c)).0, "Condition.code.coding[0].code");

        let mut c = condition();
        c.as_object_mut().unwrap().remove("subject");
        let (path, message, _) = only(&errors(&c));
        assert_eq!(path, "Condition.subject");
        assert!(message.contains("required"), "{message}");

        let mut c = condition();
        c["note"] = json!([{ "text": "x", "authorString": "a", "bogus": true }]);
        assert_eq!(only(&errors(&c)).0, "Condition.note[0].bogus");

        // Deep in a long list, found by bisection.
        let mut cs = json!({ "resourceType": "CodeSystem", "status": "active", "content": "complete" });
        cs["concept"] = (0..5000).map(|i| json!({ "code": format!("C{i}"), "display": "x" })).collect();
        cs["concept"][3777]["designation"] = json!([{ "value": "y", "use": "bad" }]);
        assert_eq!(only(&errors(&cs)).0, "CodeSystem.concept[3777].designation[0].use");
    }

    #[test]
    fn json_rules_refuse_nulls_and_empties() {
        let mut c = condition();
        c["onsetString"] = json!("");
        c["note"] = json!([]);
        c["evidence"] = json!(null);
        let paths: Vec<String> = errors(&c).into_iter().map(|i| i.expression).collect();
        assert_eq!(paths, ["Condition.onsetString", "Condition.note", "Condition.evidence"]);
    }

    #[test]
    fn formats_and_required_bindings() {
        let mut c = condition();
        c["recordedDate"] = json!("yesterday");
        assert_eq!(only(&errors(&c)).0, "Condition.recordedDate");
        let mut c = condition();
        c["id"] = json!("a b");
        assert_eq!(only(&errors(&c)).0, "Condition.id");
        let mut c = condition();
        c["verificationStatus"]["coding"][0]["code"] = json!("maybe");
        assert_eq!(only(&errors(&c)).0, "Condition.verificationStatus");
        let mut c = condition();
        c["code"]["coding"][0]["code"] = json!(" I21.000");
        assert_eq!(only(&errors(&c)).0, "Condition.code.coding[0].code");
        let p = json!({ "resourceType": "Procedure", "status": "bogus", "subject": { "reference": "Patient/p" } });
        assert_eq!(only(&errors(&p)).0, "Procedure.status");

        for ok in ["2026", "2026-02", "2024-02-29", "2026-11-30T08:00:00Z", "2026-11-30T08:00:00.123+08:00"] {
            assert!(is_date_time(ok), "{ok}");
        }
        for bad in ["2026-13", "2025-02-29", "2026-11-30T08:00", "2026-11-30T08:00:00", "2026-11-30T25:00:00Z", "26-11-30"] {
            assert!(!is_date_time(bad), "{bad}");
        }
        assert!(!is_instant("2026-11-30") && is_instant("2026-11-30T00:00:00Z"));
    }

    #[test]
    fn condition_invariants() {
        let mut c = condition();
        c["verificationStatus"]["coding"][0]["code"] = json!("entered-in-error");
        let (path, message, problem) = only(&errors(&c));
        assert_eq!((path.as_str(), problem), ("Condition.clinicalStatus", Problem::Invariant));
        assert!(message.starts_with("con-5"));
        c.as_object_mut().unwrap().remove("clinicalStatus");
        assert!(check(&c).is_empty());

        let mut c = condition();
        c["abatementDateTime"] = json!("2026-12-01");
        assert!(only(&errors(&c)).1.starts_with("con-4"));
        c["clinicalStatus"]["coding"][0]["code"] = json!("resolved");
        assert!(errors(&c).is_empty());

        let mut c = condition();
        c.as_object_mut().unwrap().remove("clinicalStatus");
        c["category"] = json!([{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item" }] }]);
        assert!(errors(&c).is_empty(), "con-3 is a warning in R4");
        assert_eq!(check(&c)[0].severity, Severity::Warning);
    }

    #[test]
    fn document_invariants() {
        let comp = json!({ "resourceType": "Composition", "status": "final", "type": { "text": "出院记录" }, "date": "2026-11-30",
            "author": [{ "display": "x" }], "title": "t", "section": [{ "title": "主诉" }] });
        assert_eq!(only(&errors(&comp)).0, "Composition.section[0]");
        let doc = json!({ "resourceType": "DocumentReference", "status": "current", "content": [{ "attachment": { "data": "aGk=" } }] });
        assert_eq!(only(&errors(&doc)).0, "DocumentReference.content[0].attachment");
        let nested = json!({ "resourceType": "DocumentReference", "status": "current", "content": [{ "attachment": { "url": "Binary/1" } }],
            "contained": [{ "resourceType": "Binary", "id": "b", "contentType": "text/plain", "meta": { "versionId": "1" } }] });
        assert_eq!(only(&errors(&nested)).0, "DocumentReference.contained[0].meta");
    }
}
