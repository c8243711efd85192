//! `DocumentReference/$extract`: what a document's attachment reads as, before it is coded, as
//! the paper's demo shows a coder the extracted record to correct first. The answer carries
//! each section with its heading, page and offsets into that page, what was masked (kinds and
//! counts), the pages without a text layer, and a Composition of the de-identified sections
//! that the coder may edit and send to `Composition/$code`. Nothing is stored.

use actix_web::dev::ServiceRequest;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::access::{routed_path, Access, Decision};
use super::error::ApiError;
use super::format::{check_accept, fhir_ok, json_body, Body};
use super::AppState;
use crate::fhir::inbound::{self, InboundError};
use crate::ingest::{Extracted, IngestError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::guarded!("/DocumentReference/$extract", decide_extract).route(web::post().to(extract)));
}

/// Reading a document the client sends: no resource is written, so `r` on DocumentReference,
/// and on Binary, since an attachment may name a Binary stored here (the body is read after
/// the guard, so both are asked of every request).
fn decide_extract(req: &ServiceRequest, _: &AppState) -> Result<Access, ApiError> {
    Ok(Access::needs("DocumentReference", 'r').and("Binary", 'r').audited("E", "operation", routed_path(req)))
}

async fn extract(req: HttpRequest, _decision: Decision, state: web::Data<AppState>, body: Body) -> Result<HttpResponse, ApiError> {
    check_accept(&req)?;
    let doc = json_body(&body)?;
    if doc["resourceType"] != "DocumentReference" {
        return Err(ApiError::bad_request("$extract reads a DocumentReference").at("resourceType"));
    }
    let answer = web::block(move || read(&state, &doc)).await.map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(fhir_ok(&answer))
}

/// The first attachment that reads: a PDF by PDFium, text as it is; both de-identified.
fn read(state: &AppState, doc: &Value) -> Result<Value, ApiError> {
    let id = doc["id"].as_str().unwrap_or("document");
    let attachments = super::code_routes::ServerAttachments { state };
    let mut last = ApiError::from(InboundError::Unprocessable("the DocumentReference has no attachment to read".into()));
    for (i, c) in doc["content"].as_array().into_iter().flatten().enumerate() {
        let (essence, bytes) = match inbound::attachment_content(&c["attachment"], &attachments) {
            Ok(Some(content)) => content,
            Ok(None) | Err(InboundError::Unprocessable(_)) => continue,
            Err(e) => return Err(ApiError::from(e).at(format!("DocumentReference.content[{i}].attachment.data"))),
        };
        let extracted: Result<Extracted, IngestError> = match essence.as_str() {
            "application/pdf" => crate::ingest::pdf::PdfReader::open(&state.config.pdf_dir()).and_then(|r| crate::ingest::extract(r, crate::ingest::ocr_of(&state.config.pdf_dir()), &bytes, id, state.config.pdf_dates())),
            "text/plain" | "text/markdown" => {
                let text = String::from_utf8(bytes).map_err(|_| ApiError::bad_request("the attachment is not UTF-8 text"))?;
                crate::ingest::extract_pages(&[text], id, state.config.pdf_dates())
            }
            other => {
                last = ApiError::from(InboundError::NotSupported(format!("$extract reads PDF and text attachments, not {other}")));
                continue;
            }
        };
        return Ok(parameters(&extracted.map_err(InboundError::from)?, doc));
    }
    Err(last)
}

fn parameters(x: &Extracted, doc: &Value) -> Value {
    let mut params = vec![json!({ "name": "pages", "valueInteger": x.pages })];
    params.extend(x.pages_without_text.iter().map(|p| json!({ "name": "pageWithoutText", "valueInteger": p })));
    params.extend(x.masked.kinds().map(|(kind, n)| json!({ "name": "masked", "part": [{ "name": "kind", "valueCode": kind }, { "name": "count", "valueInteger": n }] })));
    for s in &x.spans {
        params.push(json!({ "name": "section", "part": [
            { "name": "key", "valueCode": s.section.key() },
            { "name": "heading", "valueString": s.section.zh()[0] },
            { "name": "page", "valueInteger": s.page },
            { "name": "start", "valueInteger": s.start },
            { "name": "end", "valueInteger": s.end },
            { "name": "text", "valueString": x.page_texts[s.page - 1].chars().skip(s.start).take(s.end - s.start).collect::<String>() }
        ] }));
    }
    params.push(json!({ "name": "composition", "resource": composition(x, doc) }));
    json!({ "resourceType": "Parameters", "parameter": params })
}

/// The de-identified sections as a Composition ready for `Composition/$code`.
fn composition(x: &Extracted, doc: &Value) -> Value {
    let sections = crate::fhir::outbound::narrative_sections(x.record.sections.iter().map(|(s, t)| (*s, t.as_str())));
    let mut c = json!({
        "resourceType": "Composition",
        "status": "preliminary",
        "type": { "text": "出院记录" },
        "date": crate::ids::now_rfc3339(),
        "author": [{ "display": "jointcoder $extract" }],
        "title": "出院记录（提取，已去标识）",
        "section": sections
    });
    if let Some(subject) = doc.get("subject") {
        c["subject"] = subject.clone();
    }
    c
}
