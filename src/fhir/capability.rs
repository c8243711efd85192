//! What this server serves, as one table: the routes read it (which types are stored, what
//! each may do, which search parameters it takes) and the CapabilityStatement is written from
//! it, so the two cannot say different things. A test in `tests/server_code.rs` compares the
//! statement with the routes actually registered and probes every interaction it declares.

use serde_json::{json, Value};

use crate::terminology::Terminology;

const CODE_DEF: &str = "https://jointcoder.org/fhir/OperationDefinition/code";
const EXTRACT_DEF: &str = "https://jointcoder.org/fhir/OperationDefinition/extract";

/// One resource type as served here.
#[derive(Debug)]
pub struct ServedType {
    pub ty: &'static str,
    /// R4 TypeRestfulInteraction codes.
    pub interactions: &'static [&'static str],
    /// The type's own search parameters (name, type); `_id` and `_lastUpdated` come with
    /// every stored type.
    pub search: &'static [(&'static str, &'static str)],
    pub versioning: Option<&'static str>,
    pub conditional_create: bool,
    /// (name, canonical definition)
    pub operations: &'static [(&'static str, &'static str)],
    /// Kept in the resource store and served by the generic read/search/history routes.
    pub stored: bool,
}

impl ServedType {
    pub fn allows(&self, interaction: &str) -> bool {
        self.interactions.contains(&interaction)
    }

    /// The search parameters a search of this type reads as its own filters: all but `_id`,
    /// which every search reads.
    pub fn filter_names(&self) -> Vec<&'static str> {
        self.search_params().into_iter().map(|(name, _)| name).filter(|n| *n != "_id").collect()
    }

    /// Every search parameter this type takes.
    pub fn search_params(&self) -> Vec<(&'static str, &'static str)> {
        let mut all = self.search.to_vec();
        if self.stored {
            all.extend([("_id", "token"), ("_lastUpdated", "date")]);
        }
        all
    }
}

const STORED_READS: &[&str] = &["read", "vread", "history-instance", "search-type"];
/// Coders review diagnoses and procedures.
const REVIEWED: &[&str] = &["read", "vread", "update", "history-instance", "search-type"];
/// EHRs store documents to be coded later.
const STORED_INPUTS: &[&str] = &["create", "read", "vread", "history-instance", "search-type"];

/// A document an EHR stores (conditionally) and codes later at instance level.
const fn stored_document(ty: &'static str, search: &'static [(&'static str, &'static str)], operations: &'static [(&'static str, &'static str)]) -> ServedType {
    ServedType { ty, interactions: STORED_INPUTS, search, versioning: Some("versioned"), conditional_create: true, operations, stored: true }
}

/// Everything served, by type.
pub const SERVED: &[ServedType] = &[
    ServedType { ty: "Bundle", interactions: &[], search: &[], versioning: None, conditional_create: false, operations: &[("code", CODE_DEF)], stored: false },
    // The coders' cases are Compositions: found by record id, status and category.
    stored_document(
        "Composition",
        &[("identifier", "token"), ("status", "token"), ("category", "token"), ("type", "token"), ("subject", "reference")],
        &[("code", CODE_DEF)],
    ),
    // `$extract`: what the attachment reads as (sections, pages, masking) before coding.
    stored_document("DocumentReference", &[], &[("code", CODE_DEF), ("extract", EXTRACT_DEF)]),
    ServedType { ty: "Binary", interactions: STORED_INPUTS, search: &[], versioning: Some("versioned"), conditional_create: true, operations: &[], stored: true },
    ServedType {
        ty: "Condition",
        interactions: REVIEWED,
        search: &[("subject", "reference"), ("encounter", "reference"), ("code", "token"), ("verification-status", "token")],
        // A review names the version it read (If-Match; 412 when stale).
        versioning: Some("versioned-update"),
        conditional_create: false,
        operations: &[],
        stored: true,
    },
    ServedType {
        ty: "Procedure",
        interactions: REVIEWED,
        search: &[("subject", "reference"), ("encounter", "reference"), ("code", "token")],
        versioning: Some("versioned-update"),
        conditional_create: false,
        operations: &[],
        stored: true,
    },
    ServedType { ty: "Claim", interactions: STORED_READS, search: &[("patient", "reference")], versioning: Some("versioned"), conditional_create: false, operations: &[], stored: true },
    ServedType { ty: "Provenance", interactions: STORED_READS, search: &[("target", "reference")], versioning: Some("versioned"), conditional_create: false, operations: &[], stored: true },
    ServedType { ty: "Device", interactions: STORED_READS, search: &[], versioning: Some("versioned"), conditional_create: false, operations: &[], stored: true },
    ServedType {
        ty: "AuditEvent",
        interactions: STORED_READS,
        search: &[("agent", "token"), ("entity", "reference"), ("action", "token")],
        versioning: Some("versioned"),
        conditional_create: false,
        operations: &[],
        stored: true,
    },
    ServedType {
        ty: "Patient",
        interactions: &[],
        search: &[],
        versioning: None,
        conditional_create: false,
        operations: &[("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export")],
        stored: false,
    },
    ServedType { ty: "OperationDefinition", interactions: &["read"], search: &[], versioning: None, conditional_create: false, operations: &[], stored: false },
    ServedType {
        ty: "CodeSystem",
        interactions: &["read", "search-type", "update"],
        search: &[("_id", "token"), ("url", "uri"), ("version", "token")],
        versioning: Some("versioned"),
        conditional_create: false,
        operations: &[
            ("lookup", "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup"),
            ("validate-code", "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code"),
            ("upload-external-code-system", "https://jointcoder.org/fhir/OperationDefinition/upload-external-code-system"),
        ],
        stored: false,
    },
    ServedType {
        ty: "ValueSet",
        interactions: &[],
        search: &[],
        versioning: None,
        conditional_create: false,
        operations: &[("expand", "http://hl7.org/fhir/OperationDefinition/ValueSet-expand")],
        stored: false,
    },
    ServedType {
        ty: "ConceptMap",
        interactions: &["read", "search-type"],
        search: &[("_id", "token"), ("url", "uri"), ("source-system", "uri"), ("target-system", "uri")],
        versioning: None,
        conditional_create: false,
        operations: &[("translate", "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate")],
        stored: false,
    },
];

/// Operations on the whole server (name, definition).
pub const SYSTEM_OPERATIONS: &[(&str, &str)] = &[("code", CODE_DEF), ("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export")];

pub fn served(ty: &str) -> Option<&'static ServedType> {
    SERVED.iter().find(|s| s.ty == ty)
}

/// A type the resource store keeps.
pub fn stored(ty: &str) -> Option<&'static ServedType> {
    served(ty).filter(|s| s.stored)
}

/// The `$code` OperationDefinition, as published in `fhir-profiles/`.
pub const CODE_OPERATION: &str = include_str!("../../fhir-profiles/OperationDefinition-code.json");

/// How clients authorize here, when bearer tokens are required: SMART on FHIR, with the token
/// endpoint where one is configured (the oauth-uris extension clients such as fhirclient read).
pub struct Security<'a> {
    pub token_endpoint: Option<&'a str>,
}

/// Whether `$code` reads PDF attachments on this server, and if not, why.
pub enum PdfSupport {
    /// `ocr`: scanned pages too.
    Read { ocr: bool },
    NotInstalled,
}

fn resource_entry(s: &ServedType) -> Value {
    let mut r = json!({ "type": s.ty });
    if let Some(v) = s.versioning {
        r["versioning"] = json!(v);
    }
    if !s.interactions.is_empty() {
        r["interaction"] = s.interactions.iter().map(|c| json!({ "code": c })).collect();
    }
    if s.conditional_create {
        r["conditionalCreate"] = json!(true);
    }
    let params = s.search_params();
    if !params.is_empty() {
        r["searchParam"] = params.iter().map(|(n, t)| json!({ "name": n, "type": t })).collect();
    }
    if !s.operations.is_empty() {
        r["operation"] = s.operations.iter().map(|(n, d)| json!({ "name": n, "definition": d })).collect();
    }
    r
}

/// `agents`: who serves each role (backend and model), shown on the `$code` operation so that
/// an integrator sees what will code their records. `security`: `None` with authentication off.
pub fn capability_statement(t: &Terminology, base_url: &str, agents: &[crate::agents::AgentInfo], security: Option<Security<'_>>, pdf: PdfSupport) -> Value {
    let roles: Vec<String> = agents.iter().map(|a| format!("{}: {} ({}, {})", a.role.as_str(), a.backend, a.model, a.version)).collect();
    let editions: Vec<String> = t.all_versions().iter().map(|cs| format!("{}|{}", cs.meta.url, cs.meta.version)).collect();
    let operations: Vec<Value> = SYSTEM_OPERATIONS
        .iter()
        .map(|(name, def)| {
            let mut op = json!({ "name": name, "definition": def });
            if *name == "code" {
                let pdf = match pdf {
                    PdfSupport::Read { ocr: true } => "PDF attachments are read (the text layer, scanned pages by OCR; de-identified before anything is stored)",
                    PdfSupport::Read { ocr: false } => "PDF attachments are read (the text layer, de-identified; scanned pages need the OCR models of scripts/fetch-pdf.sh)",
                    PdfSupport::NotInstalled => "PDF attachments are not read here: PDFium is not installed (scripts/fetch-pdf.sh)",
                };
                op["documentation"] = json!(format!("Agents per role: {}. {pdf}.", roles.join("; ")));
            }
            op
        })
        .collect();
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
            "operation": operations,
            "resource": SERVED.iter().map(resource_entry).collect::<Vec<_>>()
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
