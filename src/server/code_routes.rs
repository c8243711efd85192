//! `$code`: a discharge record in, coded Conditions, Procedures, per-stage Provenance and a
//! draft Claim out. Logs carry a digest of the record id (`telemetry::record_tag`) and counts,
//! never clinical text or the identifier itself.

use actix_web::dev::ServiceRequest;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::access::{routed_path, Access, Decision};
use super::error::{ApiError, ErrorCode};
use super::format::{check_accept, fhir_ok, url_pairs};
use super::AppState;
use crate::fhir::inbound;
use crate::fhir::outbound;
use crate::store::{Conditional, Created};

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, want) in [
        ("/$code", "Parameters"),
        ("/Bundle/$code", "Bundle"),
        ("/Composition/$code", "Composition"),
        ("/DocumentReference/$code", "DocumentReference"),
    ] {
        cfg.service(crate::guarded!(path, decide_code).route(web::post().to(
            move |req: HttpRequest, decision: Decision, state: web::Data<AppState>, body: super::format::Body| code(req, decision, state, body, want),
        )));
    }
    for ty in ["Composition", "DocumentReference"] {
        cfg.service(crate::guarded!(format!("/{ty}/{{id}}/$code"), decide_code_stored).route(web::post().to(
            move |req: HttpRequest, decision: Decision, state: web::Data<AppState>, id: web::Path<String>| code_stored(req, decision, state, id, ty),
        )));
    }
    cfg.service(crate::guarded!("/OperationDefinition/code", |_, _| Ok(Access::public())).route(web::get().to(operation_definition)));
}

/// `$code` creates Conditions, Procedures, Provenance and a Claim.
fn decide_code(req: &ServiceRequest, _: &AppState) -> Result<Access, ApiError> {
    Ok(code_access().audited("C", "operation", routed_path(req)))
}

fn code_access() -> Access {
    Access::needs("Condition", 'c').and("Procedure", 'c').and("Claim", 'c').and("Provenance", 'c')
}

/// Instance level: also reads the stored document.
fn decide_code_stored(req: &ServiceRequest, _: &AppState) -> Result<Access, ApiError> {
    let ty = if routed_path(req).starts_with("/Composition/") { "Composition" } else { "DocumentReference" };
    Ok(code_access().and(ty, 'r').audited("C", "operation", routed_path(req)))
}

/// `$code` requests admitted (coding, or waiting for a slot): past the configured number a
/// request is answered 503 at once instead of queueing without end.
#[derive(Default)]
pub struct CodingQueue(std::sync::Arc<std::sync::atomic::AtomicUsize>);

/// A place in the queue, given back on drop (answered, failed or cancelled).
pub struct InQueue(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl CodingQueue {
    pub fn enter(&self, max: usize) -> Option<InQueue> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.0.fetch_add(1, SeqCst) >= max {
            self.0.fetch_sub(1, SeqCst);
            return None;
        }
        Some(InQueue(self.0.clone()))
    }
}

impl Drop for InQueue {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The JSON body, with the checks every `$code` request shares.
fn read_body(req: &HttpRequest, body: &web::Bytes) -> Result<Value, ApiError> {
    check_accept(req)?;
    super::format::json_body(body)
}

/// What `run` needs of the request, owned, so that coding and storing can leave the worker
/// thread (they are CPU and disk work; the workers keep accepting requests meanwhile).
struct RunRequest {
    query: String,
    /// The remembered-answer key of a conditional request (`If-None-Exist`), and the digest
    /// of what it asks.
    conditional: Option<(String, String)>,
}

impl RunRequest {
    /// A conditional answer belongs to the client that asked, under the routed path and the
    /// criteria it named; its digest covers the query (pins, persist) and the document, so
    /// that the same criteria with another document is told apart (a 412), never answered
    /// with the first document's codes.
    fn of(req: &HttpRequest, decision: &Decision, resource: &Value) -> Result<RunRequest, ApiError> {
        Ok(RunRequest { query: req.query_string().to_owned(), conditional: conditional_key(req, decision, resource)? })
    }
}

/// The remembered-answer key of a conditional create (`If-None-Exist`) and the digest of
/// what it asks, or `None` without the header. The key belongs to the client and the routed
/// path, so another client or route never gets this answer.
pub(super) fn conditional_key(req: &HttpRequest, decision: &Decision, resource: &Value) -> Result<Option<(String, String)>, ApiError> {
    let Some(v) = req.headers().get("If-None-Exist") else { return Ok(None) };
    let criteria = v.to_str().map_err(|_| ApiError::bad_request("If-None-Exist is not text"))?;
    keyed(req, decision, criteria, request_digest(req.query_string(), resource))
}

/// [`conditional_key`] for a plain create, which also takes the criteria as the query of the
/// POST when there is no header (`POST /Composition?identifier=…`, as fhirpy's
/// `get_or_create` sends them); a create's query has no other meaning.
pub(super) fn conditional_create_key(req: &HttpRequest, decision: &Decision, resource: &Value) -> Result<Option<(String, String)>, ApiError> {
    // Nothing in a create's query changes what is stored: the document alone is the digest.
    let digest = request_digest("", resource);
    if let Some(v) = req.headers().get("If-None-Exist") {
        let criteria = v.to_str().map_err(|_| ApiError::bad_request("If-None-Exist is not text"))?;
        return keyed(req, decision, criteria, digest);
    }
    // Decoded, so that the same criteria by header or by query are one key.
    let criteria: Vec<String> =
        super::format::url_pairs(req.query_string()).into_iter().filter(|(k, _)| k != "_format" && k != "_pretty").map(|(k, v)| format!("{k}={v}")).collect();
    if criteria.is_empty() {
        return Ok(None);
    }
    keyed(req, decision, &criteria.join("&"), digest)
}

fn keyed(req: &HttpRequest, decision: &Decision, criteria: &str, digest: String) -> Result<Option<(String, String)>, ApiError> {
    if criteria.trim().is_empty() {
        return Err(ApiError::bad_request("If-None-Exist names no search criteria"));
    }
    let key = format!("{}\u{1f}{}?{}", decision.client(), super::access::below_base(req.match_info()), criteria.trim());
    Ok(Some((key, digest)))
}

/// Attachments as this server resolves them: `Binary/{id}` from the store, PDFs by PDFium from
/// the `pdf_dir` setting.
pub(crate) struct ServerAttachments<'a> {
    pub(crate) state: &'a AppState,
}

impl inbound::Attachments for ServerAttachments<'_> {
    fn binary(&self, url: &str) -> Option<(String, Vec<u8>)> {
        use base64::Engine;
        let id = url.rsplit_once("Binary/").map(|(_, id)| id.split('/').next().unwrap_or(id))?;
        let b = self.state.store.read("Binary", id).ok()??;
        let data = base64::engine::general_purpose::STANDARD.decode(b["data"].as_str()?.trim()).ok()?;
        Some((b["contentType"].as_str().unwrap_or("").to_owned(), data))
    }

    fn pdf(&self, bytes: &[u8], record_id: &str) -> Result<crate::ingest::Extracted, inbound::InboundError> {
        let reader = crate::ingest::pdf::PdfReader::open(&self.state.config.pdf_dir())?;
        let x = crate::ingest::extract(reader, crate::ingest::ocr_of(&self.state.config.pdf_dir()), bytes, record_id, self.state.config.pdf_dates())?;
        // What was masked, by kind and count: never the values.
        let masked: Vec<String> = x.masked.kinds().map(|(k, n)| format!("{k}={n}")).collect();
        tracing::info!(record = %crate::telemetry::record_tag(record_id), pages = x.pages, ocr = x.pages_ocr.len(), without_text = x.pages_without_text.len(), masked = %masked.join(","), "PDF read");
        Ok(x)
    }
}

/// SHA-256 of the query and the document, hex.
fn request_digest(query: &str, resource: &Value) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(query.as_bytes());
    h.update([0u8]);
    h.update(resource.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

async fn run_blocking(req: &HttpRequest, decision: &Decision, state: web::Data<AppState>, resource: Value) -> Result<HttpResponse, ApiError> {
    let params = RunRequest::of(req, decision, &resource)?;
    // Queue here (first come, first served) rather than time-slice every request on the
    // cores at once: the same throughput, far less spread in latency. The queue is bounded:
    // past it a request is told to come back rather than wait behind everyone.
    let body = on_coding_slot(state, move |state| run(&params, state, &resource)).await?;
    Ok(HttpResponse::Ok().content_type(super::format::FHIR_JSON).body(body))
}

/// Runs `work` (coding) off the async workers once a coding slot is free: every way in to the
/// coder (`$code`, the workbench) queues here, so none of them can crowd out the others.
pub(crate) async fn on_coding_slot<T: Send + 'static>(
    state: web::Data<AppState>,
    work: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let _waiting = state.coding_queue.enter(state.config.limits.waiting).ok_or_else(|| {
        ApiError::of(ErrorCode::Throttled, "the coder is at capacity: retry shortly")
    })?;
    let _permit = state.coding_slots.clone().acquire_owned().await.map_err(|e| ApiError::internal(e.to_string()))?;
    web::block(move || work(&state)).await.map_err(|e| ApiError::internal(e.to_string()))?
}

/// The operation's parameters, from the query string and, for `POST /$code`, from the
/// Parameters body (the body wins).
struct CodeOptions {
    persist: bool,
    diagnosis_system: Option<String>,
    diagnosis_version: Option<String>,
    procedure_system: Option<String>,
    procedure_version: Option<String>,
}

impl CodeOptions {
    fn read(query: &str, resource: &Value) -> Result<CodeOptions, ApiError> {
        let mut pairs = url_pairs(query);
        if resource["resourceType"] == "Parameters" {
            for p in resource["parameter"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or("");
                if name == "resource" {
                    continue;
                }
                let value = ["valueBoolean", "valueString", "valueUri", "valueCanonical", "valueCode"]
                    .iter()
                    .find_map(|k| p.get(*k))
                    .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                    .ok_or_else(|| ApiError::bad_request(format!("parameter {name} has no value")))?;
                pairs.push((name.to_owned(), value));
            }
        }
        let mut o = CodeOptions { persist: true, diagnosis_system: None, diagnosis_version: None, procedure_system: None, procedure_version: None };
        for (k, v) in pairs {
            match k.as_str() {
                "persist" => {
                    o.persist = match v.as_str() {
                        "true" => true,
                        "false" => false,
                        other => return Err(ApiError::bad_request(format!("persist must be true or false, not {other:?}"))),
                    }
                }
                "diagnosisSystem" => o.diagnosis_system = Some(v),
                "diagnosisVersion" => o.diagnosis_version = Some(v),
                "procedureSystem" => o.procedure_system = Some(v),
                "procedureVersion" => o.procedure_version = Some(v),
                // _format, _pretty and the like are the server's, not the operation's.
                other if other.starts_with('_') => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "$code has no parameter {other}: it takes persist, diagnosisSystem, diagnosisVersion, procedureSystem and procedureVersion"
                    )))
                }
            }
        }
        Ok(o)
    }

    /// The served pipeline with the requested editions and versions; an unknown edition or
    /// version, or an edition of the wrong kind, is the client's error.
    /// Borrowed as served unless a pin asks for another edition or version.
    fn pipeline<'a>(&self, served: &'a crate::pipeline::Pipeline) -> Result<std::borrow::Cow<'a, crate::pipeline::Pipeline>, ApiError> {
        use crate::pipeline::Track;
        let mut p = std::borrow::Cow::Borrowed(served);
        for (track, system, version) in [
            (Track::Disease, &self.diagnosis_system, &self.diagnosis_version),
            (Track::Procedure, &self.procedure_system, &self.procedure_version),
        ] {
            if system.is_some() || version.is_some() {
                let pinned = p.into_owned().pinned(track, system.as_deref(), version.as_deref());
                p = std::borrow::Cow::Owned(pinned?);
            }
        }
        Ok(p)
    }
}

/// The answer Bundle, as JSON text.
fn run(req: &RunRequest, state: &AppState, resource: &Value) -> Result<String, ApiError> {
    let options = CodeOptions::read(&req.query, resource)?;
    let persist = options.persist;
    // Conditional create: the same document sent again with the same If-None-Exist gets the
    // first answer back, and nothing is stored twice.
    let conditional = req.conditional.clone();
    // (Checked here to skip the coding; checked again inside the commit, which decides.)
    if let (true, Some((key, digest))) = (persist, &conditional) {
        if let Some(previous) = state.store.conditional(key, digest)? {
            return Ok(previous.to_string());
        }
    }
    let inbound = inbound::from_resource(resource, &ServerAttachments { state })?;
    let served = state.served();
    let pipeline = options.pipeline(&served.pipeline)?;
    let resources = code_inbound(state, &served, &pipeline, &inbound)?;
    let base = state.base_url();
    if !persist {
        return Ok(outbound::collection(&base, resources).to_string());
    }
    // The answer is remembered only for conditional requests, which may come again.
    let remember = conditional.map(|(key, digest)| {
        let base = base.clone();
        Conditional { key, digest, build: Box::new(move |stored: &[Value]| outbound::collection(&base, stored.to_vec())) }
    });
    match state.store.create_all(resources, remember)? {
        Created::New { response: Some(bundle), .. } | Created::Existing(bundle) => Ok(bundle.to_string()),
        Created::New { stored, bodies, response: None } => Ok(outbound::collection_text(&base, &stored, &bodies)),
    }
}

/// A record read from FHIR, coded within the limits and time budget: the resources to store
/// (Conditions, Procedures, Provenance, Devices, the Claim), not stored yet.
pub(crate) fn code_inbound(state: &AppState, served: &super::Served, pipeline: &crate::pipeline::Pipeline, inbound: &inbound::Inbound) -> Result<Vec<Value>, ApiError> {
    state.config.limits.record.check(&inbound.record, inbound.sections_read)?;
    let budget = std::time::Duration::from_millis(state.config.limits.coding_ms);
    let coding = pipeline.code_within(&inbound.record, Some(budget)).map_err(|e| {
        let tag = crate::telemetry::record_tag(&inbound.record.record_id);
        match &e {
            crate::pipeline::PipelineError::OverBudget { budget_ms, .. } => tracing::warn!(record = %tag, budget_ms, "coding stopped: over its time budget"),
            _ => tracing::error!(record = %tag, "coding failed"),
        }
        ApiError::from(e)
    })?;
    tracing::info!(
        record = %crate::telemetry::record_tag(&inbound.record.record_id),
        diagnoses = coding.diseases.len(),
        procedures = coding.procedures.len(),
        "coded"
    );
    Ok(outbound::coding_resources(&coding, inbound, &served.terminology))
}

fn expect_type(v: &Value, want: &str) -> Result<(), ApiError> {
    match v["resourceType"].as_str() {
        Some(t) if t == want => Ok(()),
        Some(t) => Err(ApiError::bad_request(format!("this endpoint codes a {want}, not a {t}"))),
        None => Err(ApiError::bad_request("the body has no resourceType")),
    }
}

/// The one handler behind every `$code` endpoint: `want` is the resource type its URL takes.
async fn code(req: HttpRequest, decision: Decision, state: web::Data<AppState>, body: super::format::Body, want: &'static str) -> Result<HttpResponse, ApiError> {
    let v = read_body(&req, &body)?;
    expect_type(&v, want)?;
    run_blocking(&req, &decision, state, v).await
}

/// Instance level: code a Composition or DocumentReference stored here before.
async fn code_stored(req: HttpRequest, decision: Decision, state: web::Data<AppState>, id: web::Path<String>, ty: &'static str) -> Result<HttpResponse, ApiError> {
    check_accept(&req)?;
    let resource = state.store.read(ty, &id)?.ok_or_else(|| ApiError::not_found(format!("{ty}/{id} is not known")))?;
    run_blocking(&req, &decision, state, resource).await
}

async fn operation_definition(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    check_accept(&req)?;
    let v: Value = serde_json::from_str(crate::fhir::capability::CODE_OPERATION).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(fhir_ok(&v))
}
