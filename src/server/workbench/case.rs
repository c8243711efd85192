//! A coder's case: the record as the coder edited it, stored as a Composition (category
//! `coder-case`) in the same transaction as what coding made of it. Its last section
//! references every Condition, Procedure, Provenance and the Claim, so a case reopens with
//! the reviews made since (their current versions), the history is a search of Compositions,
//! and any FHIR client sees the same case the page shows.

use serde_json::{json, Value};

use crate::fhir::outbound::RECORD_ID_SYSTEM;
use crate::fhir::{inbound, outbound};
use crate::record::{EhrRecord, Section};
use crate::server::error::{ApiError, ErrorCode};
use crate::server::AppState;

/// The code, in the workbench's code system, of a case's category and of its coding section.
const CASE: &str = "coder-case";
const CODING_SECTION: &str = "coding";
/// Extensions (below `{base}/StructureDefinition/`) of what the coder says of a whole case.
const CASE_NOTE: &str = "coder-note";

fn workbench_system(state: &AppState) -> String {
    format!("{}/CodeSystem/workbench", state.terminology().canonical_base.trim_end_matches('/'))
}

fn structure(state: &AppState, name: &str) -> String {
    format!("{}/StructureDefinition/{name}", state.terminology().canonical_base.trim_end_matches('/'))
}

/// A case as the page shows it.
pub struct Case {
    pub id: String,
    pub version: i64,
    pub record_id: String,
    pub status: String,
    pub date: String,
    pub reviewer: Option<String>,
    pub note: Option<String>,
    /// The record as the pipeline read it: evidence offsets point into these texts.
    pub record: EhrRecord,
    /// Current versions, principal first.
    pub conditions: Vec<Value>,
    pub procedures: Vec<Value>,
    pub stages: Vec<Value>,
    pub devices: std::collections::HashMap<String, Value>,
}

/// One row of the history.
pub struct CaseRow {
    pub id: String,
    pub record_id: String,
    pub date: String,
    pub status: String,
    pub reviewer: Option<String>,
    pub diagnoses: usize,
    pub procedures: usize,
}

/// What the history is filtered by; empty fields match everything.
#[derive(Default, serde::Deserialize)]
pub struct CaseFilter {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub date: String,
    #[serde(default)]
    pub reviewer: String,
    #[serde(default)]
    pub status: String,
}

/// The edited record as a Composition (sections titled by their Chinese headings, which
/// `inbound` reads back), with the id it will be stored under.
pub fn composition(state: &AppState, id: &str, record_id: &str, sections: &[(Section, String)], author: &str) -> Value {
    let sections = outbound::narrative_sections(sections.iter().filter(|(_, text)| !text.trim().is_empty()).map(|(s, t)| (*s, t.as_str())));
    json!({
        "resourceType": "Composition",
        "id": id,
        "identifier": { "system": RECORD_ID_SYSTEM, "value": record_id },
        "status": "preliminary",
        "type": { "coding": [{ "system": "http://loinc.org", "code": "18842-5", "display": "Discharge summary" }], "text": "出院记录" },
        "category": [{ "coding": [{ "system": workbench_system(state), "code": CASE }] }],
        "date": crate::ids::now_rfc3339(),
        "author": [{ "display": author }],
        "title": format!("出院记录 {record_id}"),
        "section": sections
    })
}

/// Codes the edited record and stores the case with everything coding made, in one
/// transaction; answers the case's id. The record is read back from the Composition first,
/// so the case codes exactly what `Composition/$code` would.
pub fn create(state: &AppState, record_id: &str, sections: &[(Section, String)], author: &str) -> Result<String, ApiError> {
    let record_id = record_id.trim();
    if record_id.is_empty() {
        return Err(ApiError::bad_request("the record needs an id (病案标识)").at("record_id"));
    }
    if record_id.chars().count() > 64 {
        return Err(ApiError::bad_request("a record id has at most 64 characters").at("record_id"));
    }
    let id = crate::ids::new_uuid();
    let mut comp = composition(state, &id, record_id, sections, author);
    let invalid = crate::fhir::validate::errors(&comp);
    if !invalid.is_empty() {
        return Err(ApiError::invalid_resource("Composition", invalid));
    }
    let inbound = inbound::from_composition(&comp)?;
    let served = state.served();
    let resources = crate::server::code_routes::code_inbound(state, &served, &served.pipeline, &inbound)?;
    let entries: Vec<Value> = resources
        .iter()
        .filter(|r| matches!(r["resourceType"].as_str(), Some("Condition" | "Procedure" | "Provenance" | "Claim")))
        .map(|r| json!({ "reference": format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or("")) }))
        .collect();
    if let Some(sections) = comp["section"].as_array_mut() {
        sections.push(json!({
            "title": "编码结果",
            "code": { "coding": [{ "system": workbench_system(state), "code": CODING_SECTION }] },
            "entry": entries
        }));
    }
    let mut all = vec![comp];
    all.extend(resources);
    state.store.create_all(all, None)?;
    Ok(id)
}

fn is_case(state: &AppState, comp: &Value) -> bool {
    let system = workbench_system(state);
    comp["category"].as_array().into_iter().flatten().flat_map(|c| c["coding"].as_array().into_iter().flatten()).any(|c| c["system"] == system.as_str() && c["code"] == CASE)
}

fn entries(comp: &Value) -> Vec<(String, String)> {
    comp["section"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["code"]["coding"][0]["code"] == CODING_SECTION)
        .flat_map(|s| s["entry"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["reference"].as_str().and_then(|r| r.split_once('/')).map(|(t, i)| (t.to_owned(), i.to_owned())))
        .collect()
}

fn rank(r: &Value) -> i64 {
    outbound::extension(r, "-rank").and_then(|e| e["valueInteger"].as_i64()).unwrap_or(i64::MAX)
}

fn note_of(comp: &Value) -> Option<&Value> {
    outbound::extension(comp, &format!("/{CASE_NOTE}")).map(|e| &e["valueString"])
}

fn version_of(r: &Value) -> i64 {
    r["meta"]["versionId"].as_str().and_then(|v| v.parse().ok()).unwrap_or(1)
}

fn stored_case(state: &AppState, id: &str) -> Result<Value, ApiError> {
    match state.store.read("Composition", id)? {
        Some(c) if is_case(state, &c) => Ok(c),
        _ => Err(ApiError::not_found(format!("no case {id}"))),
    }
}

/// The case with the current versions of what was coded.
pub fn load(state: &AppState, id: &str) -> Result<Case, ApiError> {
    let comp = stored_case(state, id)?;
    let record = inbound::from_composition(&comp)?.record;
    let (mut conditions, mut procedures, mut stages) = (Vec::new(), Vec::new(), Vec::new());
    let mut devices = std::collections::HashMap::new();
    for (ty, rid) in entries(&comp) {
        let Some(r) = state.store.read(&ty, &rid)? else { continue };
        match ty.as_str() {
            "Condition" => conditions.push(r),
            "Procedure" => procedures.push(r),
            "Provenance" => {
                if let Some(d) = r["agent"][0]["who"]["reference"].as_str().and_then(|d| d.strip_prefix("Device/")) {
                    if !devices.contains_key(d) {
                        if let Some(dev) = state.store.read("Device", d)? {
                            devices.insert(d.to_owned(), dev);
                        }
                    }
                }
                stages.push(r)
            }
            _ => {}
        }
    }
    conditions.sort_by_key(rank);
    procedures.sort_by_key(rank);
    Ok(Case {
        id: id.to_owned(),
        version: version_of(&comp),
        record_id: comp["identifier"]["value"].as_str().unwrap_or(id).to_owned(),
        status: comp["status"].as_str().unwrap_or("preliminary").to_owned(),
        date: comp["date"].as_str().unwrap_or("").to_owned(),
        reviewer: comp["attester"][0]["party"]["display"].as_str().map(str::to_owned),
        note: note_of(&comp).and_then(Value::as_str).map(str::to_owned),
        record,
        conditions,
        procedures,
        stages,
        devices,
    })
}

/// How many cases the history shows (newest first), and how many it reads at a time.
const HISTORY_ROWS: usize = 200;
const HISTORY_PAGE: usize = 200;

/// The newest cases that match the filter. Category, status and an exact record id are
/// searched in the store's index; a part of a record id, the date and the reviewer are matched
/// on the cases it finds, page by page, so an old case is found however many came after it.
pub fn list(state: &AppState, f: &CaseFilter) -> Result<Vec<CaseRow>, ApiError> {
    let mut indexed = vec![("category".to_owned(), format!("{}|{CASE}", workbench_system(state)))];
    if !f.status.trim().is_empty() {
        indexed.push(("status".into(), f.status.trim().to_owned()));
    }
    let q = f.q.trim();
    if !q.is_empty() {
        let exact = [indexed.clone(), vec![("identifier".to_owned(), format!("{RECORD_ID_SYSTEM}|{q}"))]].concat();
        let rows = matching(state, &exact, f)?;
        if !rows.is_empty() {
            return Ok(rows);
        }
    }
    matching(state, &indexed, f)
}

fn matching(state: &AppState, indexed: &[(String, String)], f: &CaseFilter) -> Result<Vec<CaseRow>, ApiError> {
    let contains = |hay: &str, needle: &str| needle.trim().is_empty() || hay.to_lowercase().contains(&needle.trim().to_lowercase());
    let mut rows = Vec::new();
    for offset in (0..).step_by(HISTORY_PAGE) {
        let (page, total) = state.store.search_in_order("Composition", indexed, HISTORY_PAGE, offset, true)?;
        rows.extend(page.iter().filter(|c| is_case(state, c)).map(row).filter(|r| {
            contains(&r.record_id, &f.q)
                && (f.date.trim().is_empty() || r.date.starts_with(f.date.trim()))
                && contains(r.reviewer.as_deref().unwrap_or(""), &f.reviewer)
        }));
        if rows.len() >= HISTORY_ROWS || offset + HISTORY_PAGE >= total {
            break;
        }
    }
    rows.truncate(HISTORY_ROWS);
    Ok(rows)
}

fn row(c: &Value) -> CaseRow {
    let refs = entries(c);
    CaseRow {
        id: c["id"].as_str().unwrap_or("").to_owned(),
        record_id: c["identifier"]["value"].as_str().unwrap_or("").to_owned(),
        date: c["date"].as_str().unwrap_or("").to_owned(),
        status: c["status"].as_str().unwrap_or("").to_owned(),
        reviewer: c["attester"][0]["party"]["display"].as_str().map(str::to_owned),
        diagnoses: refs.iter().filter(|(t, _)| t == "Condition").count(),
        procedures: refs.iter().filter(|(t, _)| t == "Procedure").count(),
    }
}

fn case_summary(c: &Value) -> Value {
    json!({
        "status": c["status"],
        "reviewer": c["attester"][0]["party"]["display"],
        "decision": if c["status"] == "final" { "case-done" } else { "case-reopened" },
        "comment": note_of(c).cloned().unwrap_or(Value::Null)
    })
}

/// The coder's overall note, and the case marked done (final, attested by `who`) or
/// reopened; `version` is the version the coder saw (412 when someone changed it since).
pub fn finish(state: &AppState, id: &str, version: i64, done: bool, note: &str, who: &str) -> Result<(), ApiError> {
    let mut comp = stored_case(state, id)?;
    let url = structure(state, CASE_NOTE);
    let mut ext: Vec<Value> = comp["extension"].as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["url"] != url.as_str()).collect();
    if !note.trim().is_empty() {
        ext.push(json!({ "url": url, "valueString": note.trim() }));
    }
    if let Some(o) = comp.as_object_mut() {
        if ext.is_empty() {
            o.remove("extension");
        } else {
            o.insert("extension".into(), Value::Array(ext));
        }
    }
    comp["status"] = json!(if done { "final" } else { "preliminary" });
    comp["attester"] = json!([{ "mode": "professional", "time": crate::ids::now_rfc3339(), "party": { "display": who } }]);
    let invalid = crate::fhir::validate::errors(&comp);
    if !invalid.is_empty() {
        return Err(ApiError::invalid_resource("Composition", invalid));
    }
    state.store.update("Composition", id, comp, Some(version), who, case_summary)?;
    Ok(())
}

/// What a coder does to one code.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    Accept,
    Reject,
    Correct,
}

impl Action {
    pub fn parse(s: &str) -> Result<Action, ApiError> {
        match s {
            "accept" => Ok(Action::Accept),
            "reject" => Ok(Action::Reject),
            "correct" => Ok(Action::Correct),
            other => Err(ApiError::bad_request(format!("a review accepts, rejects or corrects, not {other:?}")).at("action")),
        }
    }

    fn decision(self) -> &'static str {
        match self {
            Action::Accept => "accepted",
            Action::Reject => "rejected",
            Action::Correct => "corrected",
        }
    }
}

/// The reviewed resource: `current` with the decision, the new code for a correction (looked
/// up in the edition the code came from), the coder's comment as a note. A Condition's
/// verification status says it (confirmed or refuted); a Procedure's status does for a
/// rejection; both carry the decision as an extension, which the feedback keeps.
pub fn reviewed(state: &AppState, current: &Value, action: Action, code: &str, comment: &str, who: &str) -> Result<Value, ApiError> {
    let mut r = current.clone();
    let ty = r["resourceType"].as_str().unwrap_or("").to_owned();
    if action == Action::Correct {
        let code = code.trim();
        if code.is_empty() {
            return Err(ApiError::bad_request("a correction names the code to use").at("code"));
        }
        let system = r["code"]["coding"][0]["system"].as_str().unwrap_or("").to_owned();
        let t = state.terminology();
        let cs = t.edition(&system, None)?;
        let concept = cs.get(code).filter(|c| c.selectable).ok_or_else(|| {
            ApiError::of(ErrorCode::NotCodable, format!("{code} is not a codable concept of {} {}", cs.meta.id, cs.meta.version)).at("code")
        })?;
        r["code"]["coding"] = json!([{ "system": system, "version": cs.meta.version, "code": concept.code, "display": concept.name }]);
    }
    match (ty.as_str(), action) {
        ("Condition", Action::Reject) => r["verificationStatus"]["coding"] = json!([{ "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "refuted" }]),
        ("Condition", _) => r["verificationStatus"]["coding"] = json!([{ "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed" }]),
        ("Procedure", Action::Reject) => r["status"] = json!("entered-in-error"),
        ("Procedure", _) => r["status"] = json!("completed"),
        _ => return Err(ApiError::not_found(format!("{ty} is not reviewed here"))),
    }
    let url = format!("{}{}", state.terminology().canonical_base.trim_end_matches('/'), crate::server::resource_routes::REVIEW_DECISION);
    let mut ext: Vec<Value> = r["extension"].as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["url"] != url.as_str()).collect();
    ext.push(json!({ "url": url, "valueCode": action.decision() }));
    r["extension"] = Value::Array(ext);
    if !comment.trim().is_empty() {
        let mut notes = r["note"].as_array().cloned().unwrap_or_default();
        notes.push(json!({ "authorString": who, "time": crate::ids::now_rfc3339(), "text": comment.trim() }));
        r["note"] = Value::Array(notes);
    }
    Ok(r)
}

/// The decision a reviewed resource carries, if any.
pub fn decision_of(r: &Value) -> Option<&str> {
    outbound::extension(r, crate::server::resource_routes::REVIEW_DECISION).and_then(|e| e["valueCode"].as_str())
}

/// Whether the coder took the code out (a refuted Condition, a Procedure in error).
pub fn is_rejected(r: &Value) -> bool {
    matches!(r["verificationStatus"]["coding"][0]["code"].as_str(), Some("refuted" | "entered-in-error")) || r["status"] == "entered-in-error"
}
