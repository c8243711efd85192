//! [`Coding`] → FHIR R4: Conditions (principal first), Procedures, one Provenance per stage
//! with the agent as a Device, and a draft Claim with insurance-edition codings.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::inbound::Inbound;
use crate::agents::Item;
use crate::pipeline::{Coding, EditionRef, StageTrace, Track};
use crate::terminology::Terminology;

pub const AI_CONFIDENCE: &str = "http://hl7.org/fhir/uv/aitransparency/StructureDefinition/AIconfidence";

fn ai_asserted() -> Value {
    json!({ "security": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "AIAST", "display": "Artificial Intelligence asserted" }] })
}

/// The system of a hospital record id (病案标识) where no Patient is referenced.
pub const RECORD_ID_SYSTEM: &str = "urn:jointcoder:record-id";

fn subject(inbound: &Inbound) -> Value {
    inbound
        .subject
        .clone()
        .unwrap_or_else(|| json!({ "identifier": { "system": RECORD_ID_SYSTEM, "value": inbound.record.record_id } }))
}

fn coding_of(item: &Item, edition: &EditionRef) -> Value {
    json!({
        "extension": [{ "url": AI_CONFIDENCE, "valueDecimal": (f64::from(item.confidence) * 1000.0).round() / 1000.0 }],
        "system": edition.url,
        "version": edition.version,
        "code": item.code,
        "display": item.name
    })
}

/// The first extension of `resource` whose url ends with `suffix` (this server's extensions
/// are read back by their name below the canonical base, whatever base wrote them).
pub fn extension<'a>(resource: &'a Value, suffix: &str) -> Option<&'a Value> {
    resource["extension"].as_array()?.iter().find(|e| e["url"].as_str().is_some_and(|u| u.ends_with(suffix)))
}

/// A record's sections as Composition sections: titled by their Chinese heading (which
/// `inbound` reads back) with the text as generated narrative.
pub fn narrative_sections<'a>(sections: impl IntoIterator<Item = (crate::record::Section, &'a str)>) -> Vec<Value> {
    let escape = |text: &str| text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\n', "<br/>");
    sections
        .into_iter()
        .map(|(s, text)| json!({ "title": s.zh()[0], "text": { "status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", escape(text)) } }))
        .collect()
}

/// Rank and evidence as extensions, so that both survive a round trip through any server.
/// Evidence from a PDF also names its page and where on that page's text it starts and ends.
fn item_extensions(base: &str, rank_name: &str, rank: usize, item: &Item, pdf_spans: &[crate::ingest::sections::SectionSpan]) -> Vec<Value> {
    let mut ext = vec![json!({ "url": format!("{base}/StructureDefinition/{rank_name}"), "valueInteger": rank })];
    for ev in &item.evidence {
        let mut parts = vec![
            json!({ "url": "section", "valueCode": ev.section.key() }),
            json!({ "url": "start", "valueInteger": ev.start }),
            json!({ "url": "end", "valueInteger": ev.end }),
            json!({ "url": "text", "valueString": ev.text }),
        ];
        let at = |offset| crate::ingest::sections::locate(pdf_spans, ev.section, offset);
        if let (Some((page, start)), Some((end_page, end))) = (at(ev.start), at(ev.end)) {
            parts.push(json!({ "url": "page", "valueInteger": page }));
            parts.push(json!({ "url": "pageStart", "valueInteger": start }));
            if end_page == page {
                parts.push(json!({ "url": "pageEnd", "valueInteger": end }));
            }
        }
        ext.push(json!({ "url": format!("{base}/StructureDefinition/evidence"), "extension": parts }));
    }
    ext.push(json!({ "url": format!("{base}/StructureDefinition/origin"), "valueCode": item.origin }));
    ext
}

struct Entry {
    id: String,
    resource: Value,
}

impl Entry {
    /// Relative references (`Condition/…`): they stay valid once the resources are stored.
    fn reference(&self) -> String {
        format!("{}/{}", self.resource["resourceType"].as_str().unwrap_or(""), self.id)
    }
}

fn new_entry(mut resource: Value) -> Entry {
    let id = crate::ids::new_uuid();
    resource["id"] = json!(id);
    Entry { id, resource }
}

/// The resources `$code` produces, in answer order: Conditions (principal first), Procedures,
/// Provenances, Devices, the Claim. Wrap them with [`collection`].
pub fn coding_resources(coding: &Coding, inbound: &Inbound, t: &Terminology) -> Vec<Value> {
    let base = t.canonical_base.trim_end_matches('/');
    let now = crate::ids::now_rfc3339();
    let subj = subject(inbound);
    let mut conditions = Vec::new();
    for (i, item) in coding.diseases.iter().enumerate() {
        let mut r = json!({
            "resourceType": "Condition",
            "meta": ai_asserted(),
            "extension": item_extensions(base, "diagnosis-rank", i + 1, item, &inbound.pdf_spans),
            "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
            "verificationStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "provisional" }] },
            "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "encounter-diagnosis", "display": "Encounter Diagnosis" }] }],
            "code": { "coding": [coding_of(item, &coding.disease_edition)], "text": item.mention },
            "subject": subj,
            "recordedDate": now
        });
        if let Some(enc) = &inbound.encounter {
            r["encounter"] = enc.clone();
        }
        conditions.push(new_entry(r));
    }
    let mut procedures = Vec::new();
    for (i, item) in coding.procedures.iter().enumerate() {
        let mut r = json!({
            "resourceType": "Procedure",
            "meta": ai_asserted(),
            "extension": item_extensions(base, "procedure-rank", i + 1, item, &inbound.pdf_spans),
            "status": "completed",
            "code": { "coding": [coding_of(item, &coding.procedure_edition)], "text": item.mention },
            "subject": subj
        });
        if let Some(enc) = &inbound.encounter {
            r["encounter"] = enc.clone();
        }
        procedures.push(new_entry(r));
    }
    let claim = new_entry(claim(coding, inbound, t, &now));

    // One Device per agent (role, backend, model, version), and for the retrieval stages.
    let mut devices: HashMap<String, Entry> = HashMap::new();
    let mut provenances = Vec::new();
    for st in &coding.trace {
        let (key, device) = device_for(st);
        let dref = devices.entry(key.clone()).or_insert_with(|| device_entry(&key, device)).reference();
        let shaped: &[Entry] = match st.track {
            Track::Disease => &conditions,
            Track::Procedure => &procedures,
        };
        let items: &[Item] = match st.track {
            Track::Disease => &coding.diseases,
            Track::Procedure => &coding.procedures,
        };
        let out_keys: Vec<&str> = st.output.iter().filter_map(|i| i.code.as_deref()).collect();
        let mut targets: Vec<Value> = items
            .iter()
            .zip(shaped)
            .filter(|(it, _)| it.code.as_deref().is_some_and(|c| out_keys.contains(&c)))
            .map(|(_, e)| json!({ "reference": e.reference() }))
            .collect();
        if targets.is_empty() {
            targets.push(json!({ "reference": claim.reference() }));
        }
        let output = StageOutput::of(st).to_json();
        let what = match &inbound.source {
            Some(s) => json!({ "reference": s }),
            None => json!({ "display": format!("record {}", inbound.record.record_id) }),
        };
        provenances.push(new_entry(json!({
            "resourceType": "Provenance",
            "meta": ai_asserted(),
            "extension": [{ "url": format!("{base}/StructureDefinition/stage-output"), "valueString": output }],
            "target": targets,
            "recorded": now,
            "activity": {
                "coding": [{ "system": format!("{base}/CodeSystem/pipeline-stage"), "code": st.stage.as_str() }],
                "text": format!("{} ({})", st.stage.as_str(), match st.track { Track::Disease => "disease track", Track::Procedure => "procedure track" })
            },
            "agent": [{
                "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "assembler" }] },
                "who": { "reference": dref }
            }],
            "entity": [{ "role": "source", "what": what }]
        })));
    }
    let mut devs: Vec<Entry> = devices.into_values().collect();
    devs.sort_by(|a, b| a.resource["deviceName"][0]["name"].as_str().cmp(&b.resource["deviceName"][0]["name"].as_str()));
    conditions
        .into_iter()
        .chain(procedures)
        .chain(provenances)
        .chain(devs)
        .chain(std::iter::once(claim))
        .map(|e| e.resource)
        .collect()
}

/// What a stage returned, kept in its Provenance (`stage-output` extension) as JSON text.
/// Serialized straight from the trace: one of these per stage per record.
#[derive(serde::Serialize)]
struct StageOutput<'a> {
    /// How many items the stage was given.
    input: usize,
    output: Vec<OutputItem<'a>>,
    added: &'a [String],
    removed: Vec<OutputItem<'a>>,
    notes: &'a [String],
    elapsed_us: u64,
}

#[derive(serde::Serialize)]
struct OutputItem<'a> {
    code: Option<&'a str>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl<'a> StageOutput<'a> {
    fn of(st: &'a StageTrace) -> StageOutput<'a> {
        StageOutput {
            input: st.input.len(),
            output: st
                .output
                .iter()
                .map(|i| OutputItem { code: i.code.as_deref(), name: &i.name, confidence: Some(i.confidence), origin: Some(&i.origin), reason: None })
                .collect(),
            added: &st.added,
            removed: st
                .removed
                .iter()
                .map(|r| OutputItem { code: r.item.code.as_deref(), name: &r.item.name, confidence: None, origin: None, reason: Some(&r.reason) })
                .collect(),
            notes: &st.notes,
            elapsed_us: st.elapsed_us,
        }
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The same Bundle as [`collection`], as text, from resources already serialized (the store's
/// bodies): a `$code` answer is mostly those bodies, so they are not serialized twice.
pub fn collection_text(server_base: &str, resources: &[Value], bodies: &[String]) -> String {
    let mut out = String::with_capacity(bodies.iter().map(|b| b.len() + 96).sum::<usize>() + 128);
    out.push_str(r#"{"resourceType":"Bundle","type":"collection","timestamp":"#);
    out.push_str(&Value::String(crate::ids::now_rfc3339()).to_string());
    out.push_str(r#","entry":["#);
    for (i, (r, body)) in resources.iter().zip(bodies).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let full_url = format!("{}/{}/{}", server_base, r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""));
        out.push_str(r#"{"fullUrl":"#);
        out.push_str(&Value::String(full_url).to_string());
        out.push_str(r#","resource":"#);
        out.push_str(body);
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// A collection Bundle of resources, each with its full URL on this server.
pub fn collection(server_base: &str, resources: Vec<Value>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let full_url = format!("{}/{}/{}", server_base, r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""));
            let mut entry = serde_json::Map::with_capacity(2);
            entry.insert("fullUrl".into(), Value::String(full_url));
            entry.insert("resource".into(), r);
            Value::Object(entry)
        })
        .collect();
    // Built by moving the resources in: `json!` would copy each one (it serializes its
    // arguments), and these bundles are the bulk of a `$code` answer.
    let mut bundle = json!({ "resourceType": "Bundle", "type": "collection", "timestamp": crate::ids::now_rfc3339() });
    bundle["entry"] = Value::Array(entries);
    bundle
}

/// A Device is the agent itself, the same for every record it codes: its id is derived from
/// what identifies it, so that it is stored once and every Provenance points at the same one.
fn device_entry(key: &str, mut resource: Value) -> Entry {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let id = format!("agent-{:016x}", h.finish());
    resource["id"] = json!(id);
    Entry { id, resource }
}

fn device_for(st: &StageTrace) -> (String, Value) {
    let (name, backend, model, version) = match &st.agent {
        Some(a) => (format!("jointcoder {}", a.role.as_str()), a.backend.clone(), a.model.clone(), a.version.clone()),
        None => (
            format!("jointcoder {}", st.stage.as_str()),
            "terminology".to_owned(),
            "embedded index".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    };
    let key = format!("{name}|{backend}|{model}|{version}");
    let device = json!({
        "resourceType": "Device",
        "deviceName": [{ "name": name, "type": "model-name" }],
        "type": { "text": "AI coding agent" },
        "version": [
            { "type": { "text": "backend" }, "value": backend },
            { "type": { "text": "model" }, "value": model },
            { "type": { "text": "software" }, "value": version }
        ]
    });
    (key, device)
}

/// The clinical code plus, via the crosswalk, its insurance-edition (医保版) code.
fn claim_concept(item: &Item, edition: &EditionRef, t: &Terminology) -> Value {
    let mut codings = vec![json!({ "system": edition.url, "version": edition.version, "code": item.code, "display": item.name })];
    if let Some(code) = &item.code {
        if let Ok((target, Some(tr))) = t.translate(&edition.id, code) {
            let display = target.get(tr.code()).map(|c| c.name.clone()).unwrap_or_default();
            codings.push(json!({ "system": target.meta.url, "version": target.meta.version, "code": tr.code(), "display": display }));
        }
    }
    json!({ "coding": codings, "text": item.name })
}

fn claim(coding: &Coding, inbound: &Inbound, t: &Terminology, now: &str) -> Value {
    let diagnosis: Vec<Value> = coding
        .diseases
        .iter()
        .enumerate()
        .map(|(i, it)| {
            json!({
                "sequence": i + 1,
                "diagnosisCodeableConcept": claim_concept(it, &coding.disease_edition, t),
                "type": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/ex-diagnosistype", "code": if i == 0 { "principal" } else { "discharge" } }] }]
            })
        })
        .collect();
    let procedure: Vec<Value> = coding
        .procedures
        .iter()
        .enumerate()
        .map(|(i, it)| {
            json!({
                "sequence": i + 1,
                "type": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/ex-procedure-type", "code": if i == 0 { "primary" } else { "secondary" } }] }],
                "procedureCodeableConcept": claim_concept(it, &coding.procedure_edition, t)
            })
        })
        .collect();
    let mut c = json!({
        "resourceType": "Claim",
        "meta": ai_asserted(),
        "status": "draft",
        "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional" }] },
        "use": "claim",
        "patient": subject(inbound),
        "created": now,
        "provider": { "display": "to be completed by the billing system" },
        "priority": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal" }] },
        "insurance": [{ "sequence": 1, "focal": true, "coverage": { "display": "to be completed by the billing system" } }]
    });
    if !diagnosis.is_empty() {
        c["diagnosis"] = Value::Array(diagnosis);
    }
    if !procedure.is_empty() {
        c["procedure"] = Value::Array(procedure);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bundle_equals_the_value_bundle() {
        let rs = vec![json!({ "resourceType": "Claim", "id": "k1", "note": "“引号”\n\"q\"" }), json!({ "resourceType": "Device", "id": "d" })];
        let bodies: Vec<String> = rs.iter().map(|r| r.to_string()).collect();
        let mut text: Value = serde_json::from_str(&collection_text("http://h/fhir", &rs, &bodies)).unwrap();
        let mut value = collection("http://h/fhir", rs);
        text["timestamp"] = json!(null);
        value["timestamp"] = json!(null);
        assert_eq!(text, value);
    }
}
