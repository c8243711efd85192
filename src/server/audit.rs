//! AuditEvent for every read and write of coded resources and every `$code` or `$export`:
//! who, what, when, outcome. Never clinical text: only ids, types and the interaction.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use serde_json::json;

use super::auth::Principal;
use super::AppState;

/// Types whose access is audited.
const AUDITED: &[&str] = &["Condition", "Procedure", "Claim", "Provenance"];

/// (action, interaction, entity reference) of an audited request, or `None`.
fn classify(method: &actix_web::http::Method, path: &str) -> Option<(&'static str, &'static str, String)> {
    let p = path.strip_prefix("/fhir").unwrap_or(path);
    let segs: Vec<&str> = p.trim_matches('/').split('/').collect();
    if segs.iter().any(|s| *s == "$code") {
        return Some(("C", "operation", p.to_owned()));
    }
    if segs.first().is_some_and(|s| s.starts_with("$export")) || segs.get(1).is_some_and(|s| s.starts_with("$export")) {
        return Some(("E", "operation", p.to_owned()));
    }
    let ty = *segs.first()?;
    if !AUDITED.contains(&ty) {
        return None;
    }
    Some(match (method.as_str(), segs.len()) {
        ("PUT", _) => ("U", "update", format!("{ty}/{}", segs.get(1).unwrap_or(&""))),
        ("GET", 1) => ("E", "search-type", ty.to_owned()),
        ("GET", 2) => ("R", "read", format!("{ty}/{}", segs[1])),
        ("GET", _) => ("R", "vread", format!("{ty}/{}", segs.get(1).unwrap_or(&""))),
        _ => return None,
    })
}

pub async fn record(req: ServiceRequest, next: Next<BoxBody>) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let class = classify(req.method(), req.path());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let res = next.call(req).await?;
    if let (Some((action, interaction, entity)), Some(state)) = (class, state) {
        let who = res.request().extensions().get::<Principal>().map(|p| p.subject.clone()).unwrap_or_else(|| "anonymous (auth off)".into());
        let status = res.status().as_u16();
        let outcome = match status {
            200..=299 => "0",
            400..=499 => "4",
            _ => "8",
        };
        let event = json!({
            "resourceType": "AuditEvent",
            "id": crate::ids::new_uuid(),
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation" },
            "subtype": [{ "system": "http://hl7.org/fhir/restful-interaction", "code": interaction }],
            "action": action,
            "recorded": crate::ids::now_rfc3339(),
            "outcome": outcome,
            "outcomeDesc": format!("HTTP {status}"),
            "agent": [{ "who": { "identifier": { "system": "urn:jointcoder:principal", "value": who } }, "requestor": true }],
            "source": { "observer": { "display": "jointcoder" } },
            "entity": [{ "what": { "reference": entity } }]
        });
        // Queued for the next commit: the request does not wait for a second fsync (see
        // `Store::create_later` for the durability this gives).
        if let Err(e) = state.store.create_later(vec![event]) {
            tracing::error!(error = %e, "audit event not stored");
        }
    }
    Ok(res)
}
