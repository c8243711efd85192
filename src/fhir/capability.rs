//! The CapabilityStatement: lists only what this server really does.

use serde_json::{json, Value};

use crate::terminology::Terminology;

/// A type `$code` stores: read, vread, history and search with its parameters.
fn stored(ty: &str, params: &[(&str, &str)]) -> Value {
    let mut sp: Vec<Value> = params.iter().map(|(n, t)| json!({ "name": n, "type": t })).collect();
    sp.push(json!({ "name": "_lastUpdated", "type": "date" }));
    let mut interaction = vec![json!({ "code": "read" }), json!({ "code": "vread" }), json!({ "code": "history-instance" }), json!({ "code": "search-type" })];
    // Coders review diagnoses and procedures.
    if ty == "Condition" || ty == "Procedure" {
        interaction.push(json!({ "code": "update" }));
    }
    // A review must name the version it read (If-Match, 412 when stale).
    let versioning = if ty == "Condition" || ty == "Procedure" { "versioned-update" } else { "versioned" };
    json!({ "type": ty, "versioning": versioning, "interaction": interaction, "searchParam": sp })
}

/// The `$code` OperationDefinition, as published in `fhir-profiles/`.
pub const CODE_OPERATION: &str = include_str!("../../fhir-profiles/OperationDefinition-code.json");

/// A document stored to be coded later: created (conditionally with `If-None-Exist`), read,
/// versioned, searched by `_lastUpdated`, and coded at instance level.
fn stored_document(ty: &str) -> Value {
    json!({
        "type": ty,
        "versioning": "versioned",
        "interaction": [{ "code": "create" }, { "code": "read" }, { "code": "vread" }, { "code": "history-instance" }, { "code": "search-type" }],
        "conditionalCreate": true,
        "searchParam": [{ "name": "_lastUpdated", "type": "date" }],
        "operation": [{ "name": "code", "definition": "https://jointcoder.org/fhir/OperationDefinition/code" }]
    })
}

/// How clients authorize here, when bearer tokens are required: SMART on FHIR, with the token
/// endpoint where one is configured (the oauth-uris extension clients such as fhirclient read).
pub struct Security<'a> {
    pub token_endpoint: Option<&'a str>,
}

/// `agents`: who serves each role (backend and model), shown on the `$code` operation so that
/// an integrator sees what will code their records. `security`: `None` with authentication off.
pub fn capability_statement(t: &Terminology, base_url: &str, agents: &[crate::agents::AgentInfo], security: Option<Security<'_>>) -> Value {
    let roles: Vec<String> = agents.iter().map(|a| format!("{}: {} ({}, {})", a.role.as_str(), a.backend, a.model, a.version)).collect();
    let editions: Vec<String> =
        t.all_versions().iter().map(|cs| format!("{}|{}", cs.meta.url, cs.meta.version)).collect();
    let mut statement = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": crate::ids::now_rfc3339(),
        "publisher": "jointcoder",
        "kind": "instance",
        "software": { "name": "jointcoder", "version": env!("CARGO_PKG_VERSION") },
        "implementation": {
            "description": format!("jointcoder FHIR R4 terminology and coding server; code systems: {}", editions.join(", ")),
            "url": base_url
        },
        "fhirVersion": super::FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "operation": [
                { "name": "code", "definition": "https://jointcoder.org/fhir/OperationDefinition/code",
                  "documentation": format!("Agents per role: {}", roles.join("; ")) },
                { "name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export" }
            ],
            "resource": [
                {
                    "type": "Bundle",
                    "operation": [{ "name": "code", "definition": "https://jointcoder.org/fhir/OperationDefinition/code" }]
                },
                stored_document("Composition"),
                stored_document("DocumentReference"),
                {
                    "type": "Binary",
                    "versioning": "versioned",
                    "interaction": [{ "code": "create" }, { "code": "read" }, { "code": "vread" }, { "code": "history-instance" }, { "code": "search-type" }],
                    "conditionalCreate": true
                },
                {
                    "type": "OperationDefinition",
                    "interaction": [{ "code": "read" }]
                },
                stored("Condition", &[("subject", "reference"), ("encounter", "reference"), ("code", "token"), ("verification-status", "token")]),
                stored("Procedure", &[("subject", "reference"), ("encounter", "reference"), ("code", "token")]),
                stored("Claim", &[("patient", "reference")]),
                stored("Provenance", &[("target", "reference")]),
                stored("Device", &[]),
                stored("AuditEvent", &[("agent", "token"), ("entity", "reference"), ("action", "token")]),
                {
                    "type": "CodeSystem",
                    "versioning": "versioned",
                    "interaction": [{ "code": "read" }, { "code": "search-type" }, { "code": "update" }],
                    "searchParam": [
                        { "name": "url", "type": "uri" },
                        { "name": "version", "type": "token" }
                    ],
                    "operation": [
                        { "name": "lookup", "definition": "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup" },
                        { "name": "validate-code", "definition": "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code" },
                        { "name": "upload-external-code-system", "definition": "https://jointcoder.org/fhir/OperationDefinition/upload-external-code-system" }
                    ]
                },
                {
                    "type": "ValueSet",
                    "operation": [
                        { "name": "expand", "definition": "http://hl7.org/fhir/OperationDefinition/ValueSet-expand" }
                    ]
                },
                {
                    "type": "ConceptMap",
                    "interaction": [{ "code": "read" }, { "code": "search-type" }],
                    "operation": [
                        { "name": "translate", "definition": "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate" }
                    ]
                }
            ]
        }]
    });
    if let Some(sec) = security {
        let mut security = json!({
            "service": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR" }] }],
            "description": "Bearer tokens (SMART v2 scopes); discovery at .well-known/smart-configuration"
        });
        if let Some(token) = sec.token_endpoint {
            security["extension"] = json!([{
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{ "url": "token", "valueUri": token }]
            }]);
        }
        statement["rest"][0]["security"] = security;
    }
    statement
}
