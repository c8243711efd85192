//! Binary as its own content (R4 binary.html#rest): a `POST /Binary` whose body is not FHIR is
//! the content itself, under its `Content-Type`; a read that asks for the Binary's content type
//! rather than a FHIR one gets the bytes back.
//!
//! Served raw, stored content could be anything a client uploaded (an HTML page with script,
//! on the same origin as the coders' pages): it is sent with `nosniff` and a sandboxing
//! Content-Security-Policy, so a browser never runs it as this server's page.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use serde_json::{json, Value};

use super::error::ApiError;
use crate::fhir::inbound::media_type_essence as essence;

/// Media types that mean "this body is a FHIR resource in JSON".
const FHIR_JSON_TYPES: &[&str] = &["application/fhir+json", "application/json+fhir", "application/json", "text/json"];

fn request_content_type(req: &HttpRequest) -> Option<&str> {
    req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

/// Whether a request body is a FHIR resource (no Content-Type is taken as FHIR JSON, as the
/// other routes take it).
pub fn is_fhir_body(req: &HttpRequest) -> bool {
    request_content_type(req).is_none_or(|ct| {
        let e = essence(ct);
        FHIR_JSON_TYPES.contains(&e.as_str()) || e.contains("fhir")
    })
}

/// The Binary a raw body stands for: its Content-Type, its bytes.
pub fn from_raw(req: &HttpRequest, body: &[u8]) -> Result<Value, ApiError> {
    let ct = request_content_type(req).unwrap_or("").trim();
    if crate::fhir::validate::errors(&json!({ "resourceType": "Binary", "contentType": ct })).iter().any(|i| i.expression == "Binary.contentType") {
        return Err(ApiError::unsupported_media(format!("Content-Type {ct:?} is not a MIME type")));
    }
    let mut binary = json!({ "resourceType": "Binary", "contentType": ct });
    // An empty body is a Binary without data (R4 has no empty strings).
    if !body.is_empty() {
        binary["data"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
    }
    Ok(binary)
}

/// Whether a read of a Binary of `content_type` asks for the content itself: `Accept` names
/// that type (or its `type/*`) and no FHIR type. `_format`, a FHIR type, `*/*` or no Accept
/// get the resource; any other type is a 406 naming both choices.
pub fn wants_raw(req: &HttpRequest, content_type: &str) -> Result<bool, ApiError> {
    if super::format::url_pairs(req.query_string()).iter().any(|(k, _)| k == "_format") {
        return Ok(false);
    }
    let Some(accept) = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return Ok(false) };
    let ranges: Vec<String> = accept.split(',').map(essence).filter(|r| !r.is_empty()).collect();
    if ranges.iter().any(|r| FHIR_JSON_TYPES.contains(&r.as_str()) || r.contains("fhir")) {
        return Ok(false);
    }
    let own = essence(content_type);
    let family = own.split('/').next().unwrap_or("");
    if ranges.iter().any(|r| *r == own || r.strip_suffix("/*").is_some_and(|t| t == family)) {
        return Ok(true);
    }
    if ranges.iter().any(|r| r == "*/*" || r == "application/*") {
        return Ok(false);
    }
    Err(ApiError::not_acceptable(format!("this Binary is {own}: ask for {own} or application/fhir+json, not {accept}")))
}

/// The Binary's bytes under its own content type, with `headers` (version, date) added.
pub fn raw(r: &Value, headers: Vec<(header::HeaderName, String)>) -> Result<HttpResponse, ApiError> {
    let data = base64::engine::general_purpose::STANDARD
        .decode(r["data"].as_str().unwrap_or("").trim())
        .map_err(|_| ApiError::internal("a stored Binary's data does not decode"))?;
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CONTENT_TYPE, r["contentType"].as_str().unwrap_or("application/octet-stream")))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox; default-src 'none'"));
    for h in headers {
        resp.insert_header(h);
    }
    Ok(resp.body(data))
}
