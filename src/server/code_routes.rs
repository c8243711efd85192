//! `$code`: a discharge record in, coded Conditions, Procedures, per-stage Provenance and a
//! draft Claim out. Logs carry record ids and counts only, never clinical text.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::error::ApiError;
use super::format::{check_accept, fhir_ok, url_pairs};
use super::AppState;
use crate::fhir::inbound::{self, InboundError};
use crate::fhir::outbound;
use crate::fhir::outcome::IssueType;
use crate::store::{Conditional, Created};

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, want) in [
        ("/$code", "Parameters"),
        ("/Bundle/$code", "Bundle"),
        ("/Composition/$code", "Composition"),
        ("/DocumentReference/$code", "DocumentReference"),
    ] {
        cfg.route(path, web::post().to(move |req: HttpRequest, state: web::Data<AppState>, body: web::Bytes| code(req, state, body, want)));
    }
    for ty in ["Composition", "DocumentReference"] {
        cfg.route(&format!("/{ty}/{{id}}/$code"), web::post().to(move |req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>| code_stored(req, state, id, ty)));
    }
    cfg
        .route("/OperationDefinition/code", web::get().to(operation_definition));
}

impl From<InboundError> for ApiError {
    fn from(e: InboundError) -> ApiError {
        match e {
            InboundError::Invalid(m) => ApiError::bad_request(m),
            InboundError::Unprocessable(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, IssueType::Required, m),
            InboundError::NotSupported(m) => ApiError::unsupported_media(m),
        }
    }
}

/// The JSON body, with the checks every `$code` request shares.
fn read_body(req: &HttpRequest, body: &web::Bytes) -> Result<Value, ApiError> {
    check_accept(req)?;
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.is_empty() && !ct.contains("json") {
        return Err(ApiError::unsupported_media(format!("content type {ct} is not supported: send application/fhir+json")));
    }
    super::format::json_body(body)
}

/// What `run` needs of the request, owned, so that coding and storing can leave the worker
/// thread (they are CPU and disk work; the workers keep accepting requests meanwhile).
struct RunRequest {
    query: String,
    path: String,
    if_none_exist: Option<Result<String, ()>>,
}

impl RunRequest {
    fn of(req: &HttpRequest) -> RunRequest {
        RunRequest {
            query: req.query_string().to_owned(),
            path: req.path().to_owned(),
            if_none_exist: req.headers().get("If-None-Exist").map(|v| v.to_str().map(str::to_owned).map_err(|_| ())),
        }
    }
}

async fn run_blocking(req: &HttpRequest, state: web::Data<AppState>, resource: Value) -> Result<HttpResponse, ApiError> {
    let params = RunRequest::of(req);
    // Queue here (first come, first served) rather than time-slice every request on the
    // cores at once: the same throughput, far less spread in latency.
    let _permit = state.coding_slots.clone().acquire_owned().await.map_err(|e| ApiError::internal(e.to_string()))?;
    let body = web::block(move || run(&params, &state, &resource))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(HttpResponse::Ok().content_type(super::format::FHIR_JSON).body(body))
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
                p = std::borrow::Cow::Owned(pinned.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, IssueType::NotFound, e.to_string()))?);
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
    let conditional = req
        .if_none_exist
        .clone()
        .map(|v| v.map(|s| format!("{}?{}", req.path, s)).map_err(|_| ApiError::bad_request("If-None-Exist is not text")))
        .transpose()?;
    // (Checked here to skip the coding; checked again inside the commit, which decides.)
    if let (true, Some(key)) = (persist, &conditional) {
        if let Some(previous) = state.store.conditional(key).map_err(store_error)? {
            return Ok(previous.to_string());
        }
    }
    // Binary references need the store too; until then only inline attachments resolve.
    // DocumentReference attachments may point at a Binary stored on this server.
    let binary = |url: &str| -> Option<(String, Vec<u8>)> {
        use base64::Engine;
        let id = url.rsplit_once("Binary/").map(|(_, id)| id.split('/').next().unwrap_or(id))?;
        let b = state.store.read("Binary", id).ok()??;
        let data = base64::engine::general_purpose::STANDARD.decode(b["data"].as_str()?.trim()).ok()?;
        Some((b["contentType"].as_str().unwrap_or("").to_owned(), data))
    };
    let inbound = inbound::from_resource(resource, &binary)?;
    let served = state.served();
    let pipeline = options.pipeline(&served.pipeline)?;
    let coding = pipeline.code(&inbound.record).map_err(|e| {
        tracing::error!(record = %inbound.record.record_id, "coding failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, IssueType::Processing, e.to_string())
    })?;
    tracing::info!(
        record = %inbound.record.record_id,
        diagnoses = coding.diseases.len(),
        procedures = coding.procedures.len(),
        "coded"
    );
    let resources = outbound::coding_resources(&coding, &inbound, &served.terminology);
    let base = state.base_url();
    if !persist {
        return Ok(outbound::collection(&base, resources).to_string());
    }
    // The answer is remembered only for conditional requests, which may come again.
    let remember = conditional.map(|key| {
        let base = base.clone();
        Conditional { key, build: Box::new(move |stored: &[Value]| outbound::collection(&base, stored.to_vec())) }
    });
    match state.store.create_all(resources, remember).map_err(store_error)? {
        Created::New { response: Some(bundle), .. } | Created::Existing(bundle) => Ok(bundle.to_string()),
        Created::New { stored, bodies, response: None } => Ok(outbound::collection_text(&base, &stored, &bodies)),
    }
}

pub fn store_error(e: crate::store::StoreError) -> ApiError {
    tracing::error!(error = %e, "store failure");
    ApiError::internal("the resource store failed; nothing of this request was stored")
}

fn expect_type(v: &Value, want: &str) -> Result<(), ApiError> {
    match v["resourceType"].as_str() {
        Some(t) if t == want => Ok(()),
        Some(t) => Err(ApiError::bad_request(format!("this endpoint codes a {want}, not a {t}"))),
        None => Err(ApiError::bad_request("the body has no resourceType")),
    }
}

/// The one handler behind every `$code` endpoint: `want` is the resource type its URL takes.
async fn code(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes, want: &'static str) -> Result<HttpResponse, ApiError> {
    let v = read_body(&req, &body)?;
    expect_type(&v, want)?;
    run_blocking(&req, state, v).await
}

/// Instance level: code a Composition or DocumentReference stored here before.
async fn code_stored(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>, ty: &'static str) -> Result<HttpResponse, ApiError> {
    check_accept(&req)?;
    let resource = state.store.read(ty, &id).map_err(store_error)?.ok_or_else(|| ApiError::not_found(format!("{ty}/{id} is not known")))?;
    run_blocking(&req, state, resource).await
}

async fn operation_definition(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    check_accept(&req)?;
    let v: Value = serde_json::from_str(crate::fhir::capability::CODE_OPERATION).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(fhir_ok(&v))
}
