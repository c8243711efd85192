//! Content negotiation: `_format` first, then `Accept`. We speak FHIR JSON only; asking for
//! XML gets a 406 rather than JSON the client cannot read.

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use serde_json::Value;

use super::error::{ApiError, ErrorCode};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

pub fn check_accept(req: &HttpRequest) -> Result<(), ApiError> {
    let query = req.query_string();
    for (k, v) in url_pairs(query) {
        if k == "_format" {
            let v = v.to_ascii_lowercase();
            if v == "json" || v.contains("json") {
                return Ok(());
            }
            return Err(ApiError::not_acceptable(format!("_format {v} is not supported; use json")));
        }
    }
    if let Some(accept) = req.headers().get(header::ACCEPT).and_then(|h| h.to_str().ok()) {
        let acceptable = accept.split(',').any(|part| {
            let mt = crate::fhir::inbound::media_type_essence(part);
            mt.is_empty() || mt == "*/*" || mt == "application/*" || mt.contains("json")
        });
        if !acceptable {
            return Err(ApiError::not_acceptable(format!("cannot produce {accept}; this server speaks application/fhir+json")));
        }
    }
    Ok(())
}

/// A request body as JSON: UTF-8 and well formed, or a 400 saying which it is not.
pub fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the body is not UTF-8 text"))?;
    serde_json::from_str(text).map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))
}

pub fn fhir_ok(value: &Value) -> HttpResponse {
    HttpResponse::Ok().content_type(FHIR_JSON).body(value.to_string())
}

/// Decoded `key=value` pairs of a query string.
pub fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        match (bytes[i], decoded) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(percent_decode("%E5%86%A0%E5%BF%83%E7%97%85"), "冠心病");
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        assert_eq!(percent_decode("100%"), "100%");
    }
}

/// A request body, read within the configured time (`limits.body_ms`): a client that sends
/// its body slowly, or stops halfway, gets a 408 instead of holding the request open.
pub struct Body(pub actix_web::web::Bytes);

impl std::ops::Deref for Body {
    type Target = actix_web::web::Bytes;
    fn deref(&self) -> &actix_web::web::Bytes {
        &self.0
    }
}

impl FromRequest for Body {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Body, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let within = req
            .app_data::<actix_web::web::Data<super::AppState>>()
            .map_or(30_000, |s| s.config.limits.body_ms);
        let read = actix_web::web::Bytes::from_request(req, payload);
        Box::pin(async move {
            use actix_web::http::StatusCode;
            match actix_web::rt::time::timeout(std::time::Duration::from_millis(within), read).await {
                Err(_) => Err(ApiError::of(ErrorCode::BodyTimeout, format!("the request body did not arrive within {within} ms"))),
                Ok(Err(e)) => {
                    let status = e.as_response_error().status_code();
                    Err(match status {
                        StatusCode::PAYLOAD_TOO_LARGE => ApiError::of(ErrorCode::BodyTooLarge, "the request body is larger than this server accepts"),
                        _ => ApiError::of(ErrorCode::BodyUnreadable, format!("the request body could not be read: {e}")),
                    })
                }
                Ok(Ok(bytes)) => Ok(Body(bytes)),
            }
        })
    }
}
