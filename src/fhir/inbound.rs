//! FHIR in → [`EhrRecord`]: a document Bundle (Composition first), a Composition, a
//! DocumentReference (text/plain or a flat JSON record, inline base64), or Parameters with a
//! `resource`. Sections are matched by LOINC code first, then by title (Chinese or English).

use base64::Engine;
use serde_json::Value;

use crate::record::{io, EhrRecord, Section};

/// Why a request body is not a record we can code, and which status that is.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// Not the resource the operation takes, or malformed inside (400).
    #[error("{0}")]
    Invalid(String),
    /// Well formed but nothing to code (422).
    #[error("{0}")]
    Unprocessable(String),
    /// A form we do not read yet (415/501-like; reported as not supported).
    #[error("{0}")]
    NotSupported(String),
}

/// What an attachment may need from outside the FHIR layer: a Binary stored on this server,
/// and a reader for PDFs. A plain closure over URLs serves where PDFs are not read.
pub trait Attachments {
    fn binary(&self, url: &str) -> Option<(String, Vec<u8>)>;

    /// What a PDF holds (the de-identified record and where its sections are), or why it
    /// cannot be read.
    fn pdf(&self, _bytes: &[u8], _record_id: &str) -> Result<crate::ingest::Extracted, InboundError> {
        Err(InboundError::NotSupported("application/pdf attachments are not read here; send text/plain or a flat JSON record".into()))
    }
}

impl<F: Fn(&str) -> Option<(String, Vec<u8>)>> Attachments for F {
    fn binary(&self, url: &str) -> Option<(String, Vec<u8>)> {
        self(url)
    }
}

impl From<crate::ingest::IngestError> for InboundError {
    fn from(e: crate::ingest::IngestError) -> InboundError {
        use crate::ingest::IngestError;
        match e {
            IngestError::Unavailable { .. } | IngestError::NeedsOcr { .. } => InboundError::NotSupported(e.to_string()),
            IngestError::Unreadable(_) => InboundError::Invalid(e.to_string()),
            IngestError::NoSections | IngestError::NoText { .. } => InboundError::Unprocessable(e.to_string()),
        }
    }
}

/// The record and what the output must point back to.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub record: EhrRecord,
    /// `Composition.subject` / `DocumentReference.subject`, carried to every output resource.
    pub subject: Option<Value>,
    pub encounter: Option<Value>,
    /// A reference to the input document (for Provenance.entity), e.g. `Composition/abc`.
    pub source: Option<String>,
    /// Sections the document carried, nested ones counted (several may fill one record
    /// section), for the server's limits.
    pub sections_read: usize,
    /// Where each section is in a PDF the record was read from (empty otherwise), so that
    /// evidence names its page.
    pub pdf_spans: Vec<crate::ingest::sections::SectionSpan>,
}

const LOINC: &[(&str, Section)] = &[
    ("10154-3", Section::ChiefComplaint),
    ("10164-2", Section::PresentIllness),
    ("11348-0", Section::PastHistory),
    ("29762-2", Section::PersonalHistory),
    ("10157-6", Section::FamilyHistory),
    ("46241-6", Section::AdmissionDiagnosis),
    ("8648-8", Section::ClinicalCourse),
    ("11506-3", Section::ProgressNotes),
    ("29554-3", Section::ProcedureName),
    ("11504-8", Section::OperativeReport),
    ("18748-4", Section::ImagingFindings),
    ("11535-2", Section::DischargeDiagnosis),
    ("10184-0", Section::DischargeStatus),
    ("8653-8", Section::DischargeOrders),
];

const ENGLISH_TITLES: &[(&str, Section)] = &[
    ("chief complaint", Section::ChiefComplaint),
    ("history of present illness", Section::PresentIllness),
    ("present illness", Section::PresentIllness),
    ("past history", Section::PastHistory),
    ("past medical history", Section::PastHistory),
    ("social history", Section::PersonalHistory),
    ("personal history", Section::PersonalHistory),
    ("marital history", Section::MaritalHistory),
    ("family history", Section::FamilyHistory),
    ("admission status", Section::AdmissionStatus),
    ("admission diagnosis", Section::AdmissionDiagnosis),
    ("hospital course", Section::ClinicalCourse),
    ("clinical course", Section::ClinicalCourse),
    ("progress note", Section::ProgressNotes),
    ("progress notes", Section::ProgressNotes),
    ("procedure", Section::ProcedureName),
    ("procedures", Section::ProcedureName),
    ("operative note", Section::OperativeReport),
    ("operative report", Section::OperativeReport),
    ("imaging", Section::ImagingFindings),
    ("discharge diagnosis", Section::DischargeDiagnosis),
    ("discharge status", Section::DischargeStatus),
    ("discharge instructions", Section::DischargeOrders),
    ("discharge orders", Section::DischargeOrders),
];

fn section_for(sec: &Value) -> Option<Section> {
    for coding in sec["code"]["coding"].as_array().into_iter().flatten() {
        if let Some(code) = coding["code"].as_str() {
            if let Some((_, s)) = LOINC.iter().find(|(c, _)| *c == code) {
                return Some(*s);
            }
        }
    }
    let title = sec["title"].as_str().or_else(|| sec["code"]["text"].as_str())?.trim();
    Section::from_key(title).or_else(|| {
        let t = title.to_ascii_lowercase();
        ENGLISH_TITLES.iter().find(|(e, _)| *e == t).map(|(_, s)| *s)
    })
}

/// XHTML narrative → text: tags dropped, block ends and `<br/>` become line breaks, the five
/// XML entities and `&nbsp;` decoded.
pub fn xhtml_to_text(div: &str) -> String {
    let mut out = String::with_capacity(div.len());
    let mut rest = div;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let Some(gt) = rest[lt..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[lt + 1..lt + gt].trim().to_ascii_lowercase();
        let name = tag.trim_start_matches('/').split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("");
        let closing = tag.starts_with('/');
        if name == "br" || (closing && matches!(name, "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4")) {
            out.push('\n');
        }
        rest = &rest[lt + gt + 1..];
    }
    out.push_str(rest);
    let decoded = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    decoded.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n")
}

fn add_section(rec: &mut EhrRecord, section: Option<Section>, title: Option<&str>, text: String) {
    if text.trim().is_empty() {
        return;
    }
    match section {
        Some(s) => {
            let slot = rec.sections.entry(s).or_default();
            if !slot.is_empty() {
                slot.push('\n');
            }
            slot.push_str(&text);
        }
        None => {
            let key = title.unwrap_or("section").to_owned();
            let slot = rec.extra.entry(key).or_default();
            if !slot.is_empty() {
                slot.push('\n');
            }
            slot.push_str(&text);
        }
    }
}

/// Sections, recursively: a nested section with its own code or title is its own field; one
/// without goes into its parent's.
/// Reads sections into the record; answers how many there were, nested ones counted.
fn read_sections(rec: &mut EhrRecord, sections: &[Value], parent: Option<Section>) -> usize {
    let mut n = 0;
    for sec in sections {
        n += 1;
        let own = section_for(sec);
        let target = own.or(parent);
        if let Some(div) = sec["text"]["div"].as_str() {
            add_section(rec, target, sec["title"].as_str(), xhtml_to_text(div));
        }
        if let Some(children) = sec["section"].as_array() {
            n += read_sections(rec, children, target);
        }
    }
    n
}

fn reference_string(v: &Value) -> Option<String> {
    v["reference"].as_str().map(str::to_owned)
}

pub fn from_composition(comp: &Value) -> Result<Inbound, InboundError> {
    let mut rec = EhrRecord::new(comp["id"].as_str().unwrap_or("composition"));
    if let Some(v) = comp["identifier"]["value"].as_str() {
        rec.record_id = v.to_owned();
    }
    let sections = comp["section"].as_array().cloned().unwrap_or_default();
    let sections_read = read_sections(&mut rec, &sections, None);
    require_codable(&rec)?;
    Ok(Inbound {
        sections_read,
        subject: comp.get("subject").cloned(),
        encounter: comp.get("encounter").cloned(),
        source: comp["id"].as_str().map(|id| format!("Composition/{id}")),
        record: rec,
        pdf_spans: Vec::new(),
    })
}

/// A record with neither diagnoses nor procedures nor notes to mine gives nothing to code.
fn require_codable(rec: &EhrRecord) -> Result<(), InboundError> {
    let useful = [Section::DischargeDiagnosis, Section::AdmissionDiagnosis, Section::ProcedureName, Section::OperativeReport];
    if useful.iter().any(|s| rec.has(*s)) {
        return Ok(());
    }
    Err(InboundError::Unprocessable(
        "no usable section: the document needs a discharge diagnosis (出院诊断, LOINC 11535-2), an admission diagnosis (入院诊断, 46241-6), a procedure list (手术名称, 29554-3) or an operative note (手术经过, 11504-8)".into(),
    ))
}

/// Plain text with headings (主诉：… 现病史：…) → sections.
pub fn record_from_plain_text(id: &str, text: &str) -> EhrRecord {
    let mut rec = EhrRecord::new(id);
    let mut marks: Vec<(usize, usize, Section)> = Vec::new();
    for s in Section::ALL {
        for h in s.zh() {
            for sep in ["：", ":"] {
                let pat = format!("{h}{sep}");
                for (pos, _) in text.match_indices(&pat) {
                    marks.push((pos, pos + pat.len(), s));
                }
            }
        }
    }
    // Longest heading first at one place; a heading inside another (首次病程记录 in
    // 术后首次病程记录) is no heading of its own.
    marks.sort_by_key(|m| (m.0, std::cmp::Reverse(m.1)));
    let mut kept: Vec<(usize, usize, Section)> = Vec::with_capacity(marks.len());
    for m in marks {
        if kept.last().is_none_or(|k| m.0 >= k.1) {
            kept.push(m);
        }
    }
    let marks = kept;
    if marks.is_empty() {
        rec.sections.insert(Section::DischargeDiagnosis, text.trim().to_owned());
        return rec;
    }
    for (i, (_, body_start, s)) in marks.iter().enumerate() {
        let end = marks.get(i + 1).map_or(text.len(), |m| m.0);
        add_section(&mut rec, Some(*s), None, text[*body_start..end].trim().to_owned());
    }
    rec
}

pub fn from_document_reference(doc: &Value, attachments: &dyn Attachments) -> Result<Inbound, InboundError> {
    let id = doc["id"].as_str().unwrap_or("document");
    let contents = doc["content"].as_array().ok_or_else(|| InboundError::Invalid("DocumentReference.content is required".into()))?;
    let mut last_err = InboundError::Unprocessable("DocumentReference has no attachment to code".into());
    for c in contents {
        let (ctype, bytes) = match attachment_content(&c["attachment"], attachments) {
            Ok(Some(content)) => content,
            Ok(None) => continue,
            Err(e @ InboundError::Unprocessable(_)) => {
                last_err = e;
                continue;
            }
            Err(e) => return Err(e),
        };
        // The type decides first: a PDF is not "invalid text".
        let kind = match ctype.as_str() {
            "text/plain" | "text/markdown" => AttachmentKind::Text,
            "application/json" | "application/fhir+json" => AttachmentKind::Json,
            "application/pdf" => AttachmentKind::Pdf,
            other => {
                last_err = InboundError::NotSupported(format!("attachment content type {other} is not supported"));
                continue;
            }
        };
        let mut pdf_spans = Vec::new();
        let record = match kind {
            AttachmentKind::Pdf => {
                let x = attachments.pdf(&bytes, id)?;
                pdf_spans = x.spans;
                x.record
            }
            AttachmentKind::Json | AttachmentKind::Text => {
                let text = String::from_utf8(bytes).map_err(|_| InboundError::Invalid("the attachment is not UTF-8 text".into()))?;
                if kind == AttachmentKind::Json {
                    let v: Value = serde_json::from_str(&text).map_err(|e| InboundError::Invalid(format!("the JSON attachment is malformed: {e}")))?;
                    let mut r = io::record_from_json(&v, 1).map_err(|e| InboundError::Invalid(format!("the JSON attachment: {e}")))?;
                    if r.record_id.starts_with("row-") {
                        r.record_id = id.to_owned();
                    }
                    r
                } else {
                    record_from_plain_text(id, &text)
                }
            }
        };
        require_codable(&record)?;
        return Ok(Inbound {
            sections_read: record.sections.len() + record.extra.len(),
            record,
            subject: doc.get("subject").cloned(),
            encounter: doc["context"]["encounter"].as_array().and_then(|a| a.first()).cloned(),
            source: Some(format!("DocumentReference/{id}")),
            pdf_spans,
        });
    }
    Err(last_err)
}

/// A media type without its parameters, in lower case (`text/plain; charset=utf-8` is
/// `text/plain`): how content types are compared everywhere.
pub fn media_type_essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// An attachment's content type (its essence; text/plain when unsaid) and bytes: inline
/// (`data`), or a Binary of this server (`url`, whose own content type wins). `Ok(None)`: it
/// has neither. Data that is not base64 is `Invalid`; a url that names no Binary here is
/// `Unprocessable`.
pub fn attachment_content(att: &Value, attachments: &dyn Attachments) -> Result<Option<(String, Vec<u8>)>, InboundError> {
    let declared = att["contentType"].as_str().unwrap_or("text/plain");
    if let Some(data) = att["data"].as_str() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| InboundError::Invalid(format!("DocumentReference.content.attachment.data is not valid base64: {e}")))?;
        return Ok(Some((media_type_essence(declared), bytes)));
    }
    let Some(url) = att["url"].as_str() else { return Ok(None) };
    match attachments.binary(url) {
        Some((ct, bytes)) => Ok(Some((media_type_essence(if ct.is_empty() { declared } else { &ct }), bytes))),
        None => Err(InboundError::Unprocessable(format!("attachment url {url} is not a Binary on this server"))),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AttachmentKind {
    Text,
    Json,
    Pdf,
}

/// Any accepted input resource.
pub fn from_resource(v: &Value, attachments: &dyn Attachments) -> Result<Inbound, InboundError> {
    match v["resourceType"].as_str() {
        Some("Composition") => from_composition(v),
        Some("DocumentReference") => from_document_reference(v, attachments),
        Some("Bundle") => {
            if v["type"].as_str() != Some("document") {
                return Err(InboundError::Invalid("a Bundle to code must be of type document".into()));
            }
            let first = &v["entry"][0]["resource"];
            if first["resourceType"].as_str() != Some("Composition") {
                return Err(InboundError::Invalid("a document Bundle's first entry must be its Composition".into()));
            }
            let mut inbound = from_composition(first)?;
            if let Some(id) = v["identifier"]["value"].as_str() {
                inbound.record.record_id = id.to_owned();
            }
            // Subject and encounter given in the bundle as full resources: keep the references.
            if inbound.subject.as_ref().and_then(reference_string).is_none() {
                inbound.subject = None;
            }
            Ok(inbound)
        }
        Some("Parameters") => {
            let res = v["parameter"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == "resource")
                .map(|p| &p["resource"])
                .ok_or_else(|| InboundError::Invalid("Parameters needs a parameter named resource".into()))?;
            from_resource(res, attachments)
        }
        Some(other) => Err(InboundError::Invalid(format!(
            "{other} cannot be coded: send a document Bundle, a Composition, a DocumentReference or Parameters"
        ))),
        None => Err(InboundError::Invalid("the body has no resourceType".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn xhtml_becomes_text_with_line_breaks() {
        let t = xhtml_to_text("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>1.冠心病</p><p>2.高血压&amp;糖尿病<br/>3.房颤</p></div>");
        assert_eq!(t, "1.冠心病\n2.高血压&糖尿病\n3.房颤");
    }

    #[test]
    fn sections_by_loinc_then_title_and_nested() {
        let comp = json!({
            "resourceType": "Composition", "id": "c1",
            "subject": { "reference": "Patient/p1" },
            "section": [
                { "code": { "coding": [{ "system": "http://loinc.org", "code": "11535-2" }] }, "text": { "div": "<div>冠心病</div>" } },
                { "title": "手术名称", "text": { "div": "<div>冠状动脉造影术</div>" } },
                { "title": "Hospital course", "section": [ { "text": { "div": "<div>行冠脉造影</div>" } } ] },
                { "title": "护理记录", "text": { "div": "<div>安静</div>" } }
            ]
        });
        let r = from_composition(&comp).unwrap();
        assert_eq!(r.record.text(Section::DischargeDiagnosis), "冠心病");
        assert_eq!(r.record.text(Section::ProcedureName), "冠状动脉造影术");
        assert_eq!(r.record.text(Section::ClinicalCourse), "行冠脉造影");
        assert_eq!(r.record.extra["护理记录"], "安静");
        assert_eq!(r.subject.unwrap()["reference"], "Patient/p1");
    }

    #[test]
    fn plain_text_headings_split_into_sections() {
        let r = record_from_plain_text("d", "主诉：胸痛3天。\n出院诊断：1.冠心病\n手术名称:冠脉造影");
        assert_eq!(r.text(Section::ChiefComplaint), "胸痛3天。");
        assert_eq!(r.text(Section::DischargeDiagnosis), "1.冠心病");
        assert_eq!(r.text(Section::ProcedureName), "冠脉造影");
    }

    #[test]
    fn a_hospitals_other_headings_find_their_sections_and_nested_ones_do_not_split() {
        let r = record_from_plain_text("d", "初步诊断：冠心病\n术后首次病程记录：行PCI术\n有创操作记录：右颈内静脉置管\n最后诊断：1.冠心病");
        assert_eq!(r.text(Section::AdmissionDiagnosis), "冠心病");
        assert_eq!(r.text(Section::OperativeReport), "行PCI术\n右颈内静脉置管");
        assert_eq!(r.text(Section::ProgressNotes), "");
        assert_eq!(r.text(Section::DischargeDiagnosis), "1.冠心病");
    }

    #[test]
    fn bad_inputs_name_what_is_wrong() {
        let none = |_: &str| None;
        let e = from_resource(&json!({ "resourceType": "Patient" }), &none).unwrap_err();
        assert!(matches!(e, InboundError::Invalid(_)));
        let e = from_resource(&json!({ "resourceType": "Composition", "section": [{ "title": "主诉", "text": { "div": "<div>胸痛</div>" } }] }), &none).unwrap_err();
        assert!(matches!(e, InboundError::Unprocessable(ref m) if m.contains("11535-2")));
        let doc = json!({ "resourceType": "DocumentReference", "content": [{ "attachment": { "contentType": "text/plain", "data": "%%%" } }] });
        assert!(matches!(from_resource(&doc, &none).unwrap_err(), InboundError::Invalid(ref m) if m.contains("base64")));
        let doc = json!({ "resourceType": "DocumentReference", "content": [{ "attachment": { "contentType": "text/plain", "data": "/w==" } }] });
        assert!(matches!(from_resource(&doc, &none).unwrap_err(), InboundError::Invalid(ref m) if m.contains("UTF-8")));
    }
}
