//! AuditEvent for every access to coded resources and stored documents, every `$code` and
//! every `$export`: who, what, when, outcome. Never clinical text: only ids, types and the
//! interaction. Written by the access guard ([`super::access`]) from the routed request, so
//! that no request it lets through goes unrecorded.

use serde_json::json;

use super::AppState;

/// Types whose reads and writes are audited: what `$code` made, and the documents it read.
pub const AUDITED: &[&str] = &["Condition", "Procedure", "Claim", "Provenance", "Composition", "DocumentReference", "Binary"];

/// What an audited request did: the AuditEvent action (C, R, U, E), the RESTful interaction
/// and the entity reference.
#[derive(Debug, Clone)]
pub struct Entry {
    pub action: &'static str,
    pub interaction: &'static str,
    pub entity: String,
}

/// Queues the AuditEvent for the next commit: the request does not wait for a second fsync
/// (see `Store::create_later` for the durability this gives).
pub fn write(state: &AppState, entry: &Entry, who: &str, status: u16) {
    let outcome = match status {
        200..=299 => "0",
        400..=499 => "4",
        _ => "8",
    };
    let event = json!({
        "resourceType": "AuditEvent",
        "id": crate::ids::new_uuid(),
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation" },
        "subtype": [{ "system": "http://hl7.org/fhir/restful-interaction", "code": entry.interaction }],
        "action": entry.action,
        "recorded": crate::ids::now_rfc3339(),
        "outcome": outcome,
        "outcomeDesc": format!("HTTP {status}"),
        "agent": [{ "who": { "identifier": { "system": "urn:jointcoder:principal", "value": who } }, "requestor": true }],
        "source": { "observer": { "display": "jointcoder" } },
        "entity": [{ "what": { "reference": entry.entity } }]
    });
    if let Err(e) = state.store.create_later(vec![event]) {
        tracing::error!(error = %e, "audit event not stored");
    }
}
