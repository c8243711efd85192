//! Bulk Data `$export` (system and Patient level): `Prefer: respond-async` → 202 with a status
//! URL; the job writes one NDJSON file per type into the data directory; status polling,
//! DELETE to cancel. This is how billing systems pull coded Claims.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::dev::ServiceRequest;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::access::{routed_path, Access, Decision};
use super::error::{ApiError, ErrorCode};
use super::format::{check_accept, url_pairs};
use super::AppState;

/// Types a client may export.
const EXPORTABLE: &[&str] = &["Claim", "Condition", "Procedure", "Provenance", "Device"];
/// Types whose resources belong to a patient (Patient-level export).
const PATIENT_COMPARTMENT: &[&str] = &["Claim", "Condition", "Procedure"];

#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

pub struct Job {
    /// The client that started it: only it polls, downloads or cancels.
    owner: String,
    /// What it exports: reading it back needs `r` and `s` on each.
    types: Vec<String>,
    request: String,
    transaction_time: String,
    cancelled: AtomicBool,
    /// `None` while running; the output files, or an error, when done.
    result: Mutex<Option<Result<Vec<(String, String, usize)>, String>>>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::guarded!("/$export", decide_export).route(web::get().to(export_system)).route(web::post().to(export_system_post)))
        .service(crate::guarded!("/Patient/$export", decide_export).route(web::get().to(export_patient)).route(web::post().to(export_patient_post)))
        .service(crate::guarded!("/$export-status/{job}", decide_job).route(web::get().to(status)).route(web::delete().to(cancel)))
        .service(crate::guarded!("/$export-file/{job}/{file}", decide_job).route(web::get().to(file)));
}

/// What an export request asks for: the types (its `_type`, or all the level allows) and
/// `_since`.
struct ExportRequest {
    types: Vec<String>,
    since: Option<String>,
}

impl ExportRequest {
    fn read(query: &str, allowed: &[&str]) -> Result<ExportRequest, ApiError> {
        ExportRequest::from_pairs(url_pairs(query), allowed)
    }

    fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>, allowed: &[&str]) -> Result<ExportRequest, ApiError> {
        let mut types: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        let mut since: Option<String> = None;
        for (k, v) in pairs {
            match k.as_str() {
                "_type" => {
                    types = v.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
                    if let Some(bad) = types.iter().find(|t| !allowed.contains(&t.as_str())) {
                        return Err(ApiError::bad_request(format!("_type {bad} cannot be exported here; one of {}", allowed.join(","))));
                    }
                    types.dedup();
                }
                "_since" => since = Some(v),
                "_outputFormat" if matches!(v.as_str(), "application/fhir+ndjson" | "application/ndjson" | "ndjson") => {}
                "_outputFormat" => return Err(ApiError::bad_request(format!("_outputFormat {v} is not supported; use application/fhir+ndjson"))),
                "_format" => {}
                other => return Err(ApiError::bad_request(format!("parameter {other} is not supported by $export"))),
            }
        }
        Ok(ExportRequest { types, since })
    }
}

fn level(req: &ServiceRequest) -> &'static [&'static str] {
    if routed_path(req).starts_with("/Patient/") {
        PATIENT_COMPARTMENT
    } else {
        EXPORTABLE
    }
}

/// An export writes every resource of each type it names: it needs `r` and `s` on each.
fn decide_export(req: &ServiceRequest, _: &AppState) -> Result<Access, ApiError> {
    // A POST names its types in a Parameters body, read after routing: it needs a token here,
    // and the handler checks `r` and `s` on each type the body names before anything starts.
    if req.method() == actix_web::http::Method::POST {
        return Ok(Access::default().starts_work().audited("E", "operation", routed_path(req)));
    }
    let export = ExportRequest::read(req.query_string(), level(req))?;
    Ok(read_all(&export.types).starts_work().audited("E", "operation", routed_path(req)))
}

/// The parameters of a POST's Parameters body (`_type`, `_since`, `_outputFormat`, each a
/// `value[x]` of string, instant or code).
fn body_parameters(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("$export body: not JSON: {e}")))?;
    if v["resourceType"] != "Parameters" {
        return Err(ApiError::bad_request("$export body: a Parameters resource is expected"));
    }
    let mut pairs = Vec::new();
    for p in v["parameter"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let name = p["name"].as_str().ok_or_else(|| ApiError::bad_request("$export body: a parameter without a name"))?;
        let value = ["valueString", "valueInstant", "valueCode", "valueDateTime"]
            .iter()
            .find_map(|k| p[*k].as_str())
            .ok_or_else(|| ApiError::bad_request(format!("$export body: parameter {name} has no string, instant or code value")))?;
        pairs.push((name.to_owned(), value.to_owned()));
    }
    Ok(pairs)
}

/// A POST kick-off: the body's parameters (or the query's, where there is no body), each type
/// authorized as a GET's would be.
fn start_post(req: &HttpRequest, decision: &Decision, state: &web::Data<AppState>, body: &[u8], allowed: &'static [&'static str]) -> Result<HttpResponse, ApiError> {
    let export = if body.iter().all(u8::is_ascii_whitespace) {
        ExportRequest::read(req.query_string(), allowed)?
    } else {
        ExportRequest::from_pairs(body_parameters(body)?, allowed)?
    };
    if let Some(p) = &decision.principal {
        for ty in &export.types {
            for letter in ['r', 's'] {
                match p.reach(ty, letter) {
                    Ok(crate::server::auth::Reach::All) => {}
                    _ => return Err(ApiError::of(ErrorCode::Forbidden, format!("$export of {ty} needs the scope letter {letter} on {ty} (system or user)"))),
                }
            }
        }
    }
    begin(req, decision, state, export)
}

fn read_all(types: &[String]) -> Access {
    types.iter().fold(Access::default(), |a, ty| a.and(ty, 'r').and(ty, 's'))
}

/// Status, files and cancel need the scopes of the job's types (and, in the handler, to be
/// the client that started it). An unknown job needs nothing more than a token.
fn decide_job(req: &ServiceRequest, state: &AppState) -> Result<Access, ApiError> {
    let id = req.match_info().get("job").unwrap_or("");
    let types = job(state, id).map(|j| j.types.clone()).unwrap_or_default();
    Ok(read_all(&types).audited("E", "operation", routed_path(req)))
}

/// `scheme://host[:port]` of a base URL.
fn origin(base: &str) -> &str {
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    base[after_scheme..].find('/').map_or(base, |i| &base[..after_scheme + i])
}

fn start(req: &HttpRequest, decision: &Decision, state: &web::Data<AppState>, allowed: &'static [&'static str]) -> Result<HttpResponse, ApiError> {
    let export = ExportRequest::read(req.query_string(), allowed)?;
    begin(req, decision, state, export)
}

/// Starts an authorized export job and answers 202 with where to poll.
fn begin(req: &HttpRequest, decision: &Decision, state: &web::Data<AppState>, export: ExportRequest) -> Result<HttpResponse, ApiError> {
    check_accept(req)?;
    let prefer = req.headers().get("Prefer").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !prefer.contains("respond-async") {
        return Err(ApiError::bad_request("$export runs asynchronously: send Prefer: respond-async"));
    }
    let ExportRequest { types, since } = export;
    let id = crate::ids::new_uuid();
    let job = Arc::new(Job {
        owner: decision.client().to_owned(),
        types: types.clone(),
        // The base already ends in the server's path (…/fhir): the request is its origin and
        // the URI as sent, not the base twice.
        request: format!("{}{}", origin(&state.base_url()), req.uri()),
        transaction_time: crate::ids::now_rfc3339(),
        cancelled: AtomicBool::new(false),
        result: Mutex::new(None),
    });
    // The job's own record on disk: a restart finds it (finished, or interrupted).
    let dir = export_dir(state, &id);
    std::fs::create_dir_all(&dir).map_err(|e| ApiError::internal(format!("export directory: {e}")))?;
    let started = json!({ "request": job.request, "transactionTime": job.transaction_time, "owner": job.owner, "types": job.types });
    std::fs::write(dir.join(JOB_FILE), started.to_string()).map_err(|e| ApiError::internal(format!("export directory: {e}")))?;
    state.exports.jobs.lock().expect("jobs lock").insert(id.clone(), job.clone());
    let st = state.clone();
    let job_id = id.clone();
    std::thread::spawn(move || {
        let outcome = run_job(&st, &job_id, &job, &types, since.as_deref());
        if let Ok(files) = &outcome {
            let manifest = json!({
                "request": job.request, "transactionTime": job.transaction_time,
                "files": files.iter().map(|(ty, name, n)| json!({ "type": ty, "name": name, "count": n })).collect::<Vec<_>>()
            });
            if let Err(e) = std::fs::write(export_dir(&st, &job_id).join(MANIFEST_FILE), manifest.to_string()) {
                tracing::error!(job = %job_id, error = %e, "export manifest not written");
            }
        }
        *job.result.lock().expect("job lock") = Some(outcome);
    });
    tracing::info!(job = %id, "export started");
    Ok(HttpResponse::Accepted()
        .insert_header((header::CONTENT_LOCATION, format!("{}/$export-status/{id}", state.base_url())))
        .finish())
}

/// Written when a job starts, and when it has finished: a job dir with the first and without
/// the second was interrupted by a restart.
const JOB_FILE: &str = "job.json";
const MANIFEST_FILE: &str = "manifest.json";

fn export_dir(state: &AppState, job: &str) -> std::path::PathBuf {
    state.config.data().exports().join(job)
}

/// Resources read from the store per page while a file is written: the job holds one page in
/// memory, not the whole type.
const EXPORT_PAGE: usize = 1000;

fn run_job(state: &AppState, id: &str, job: &Job, types: &[String], since: Option<&str>) -> Result<Vec<(String, String, usize)>, String> {
    use std::io::Write;
    let dir = export_dir(state, id);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    // Nothing written after the job started is exported (a later page would otherwise see it).
    let mut filters: Vec<(String, String)> = vec![("_lastUpdated".to_owned(), format!("le{}", job.transaction_time))];
    if let Some(s) = since {
        filters.push(("_lastUpdated".to_owned(), format!("ge{s}")));
    }
    for ty in types {
        let name = format!("{ty}.ndjson");
        let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join(&name)).map_err(|e| e.to_string())?);
        let mut n = 0usize;
        loop {
            if job.cancelled.load(Ordering::Relaxed) {
                return Err("cancelled".into());
            }
            let (page, _) = state.store.search(ty, &filters, EXPORT_PAGE, n).map_err(|e| e.to_string())?;
            for r in &page {
                serde_json::to_writer(&mut file, r).map_err(|e| e.to_string())?;
                file.write_all(b"\n").map_err(|e| e.to_string())?;
            }
            n += page.len();
            if page.len() < EXPORT_PAGE {
                break;
            }
        }
        file.flush().map_err(|e| e.to_string())?;
        out.push((ty.clone(), name, n));
    }
    Ok(out)
}

async fn export_system(req: HttpRequest, decision: Decision, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    start(&req, &decision, &state, EXPORTABLE)
}

async fn export_patient(req: HttpRequest, decision: Decision, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    start(&req, &decision, &state, PATIENT_COMPARTMENT)
}

async fn export_system_post(req: HttpRequest, decision: Decision, state: web::Data<AppState>, body: super::format::Body) -> Result<HttpResponse, ApiError> {
    start_post(&req, &decision, &state, &body.0, EXPORTABLE)
}

async fn export_patient_post(req: HttpRequest, decision: Decision, state: web::Data<AppState>, body: super::format::Body) -> Result<HttpResponse, ApiError> {
    start_post(&req, &decision, &state, &body.0, PATIENT_COMPARTMENT)
}

/// The job, if it is the asking client's; another client's job is answered as unknown.
fn own_job(state: &AppState, id: &str, decision: &Decision) -> Result<Arc<Job>, ApiError> {
    let j = job(state, id)?;
    if j.owner != decision.client() {
        return Err(ApiError::not_found(format!("no export job {id}")));
    }
    Ok(j)
}

/// A job of this process, or one an earlier process left on disk.
fn job(state: &AppState, id: &str) -> Result<Arc<Job>, ApiError> {
    if let Some(j) = state.exports.jobs.lock().expect("jobs lock").get(id).cloned() {
        return Ok(j);
    }
    let unknown = || ApiError::not_found(format!("no export job {id}"));
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(unknown());
    }
    let dir = export_dir(state, id);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let started = read(JOB_FILE).ok_or_else(unknown)?;
    let result = match read(MANIFEST_FILE) {
        Some(m) => Ok(m["files"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| (f["type"].as_str().unwrap_or("").to_owned(), f["name"].as_str().unwrap_or("").to_owned(), f["count"].as_u64().unwrap_or(0) as usize))
            .collect()),
        None => Err("interrupted by a server restart; start the export again".to_owned()),
    };
    // A job file from before jobs had owners belongs to nobody who can be matched.
    let job = Arc::new(Job {
        owner: started["owner"].as_str().unwrap_or("").to_owned(),
        types: started["types"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_owned)).collect(),
        request: started["request"].as_str().unwrap_or("").to_owned(),
        transaction_time: started["transactionTime"].as_str().unwrap_or("").to_owned(),
        cancelled: AtomicBool::new(false),
        result: Mutex::new(Some(result)),
    });
    state.exports.jobs.lock().expect("jobs lock").insert(id.to_owned(), job.clone());
    Ok(job)
}

async fn status(decision: Decision, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let job = own_job(&state, &id, &decision)?;
    let result = job.result.lock().expect("job lock");
    match &*result {
        None => Ok(HttpResponse::Accepted().insert_header(("X-Progress", "in progress")).insert_header((header::RETRY_AFTER, "1")).finish()),
        Some(Err(e)) => Err(ApiError::of(ErrorCode::ExportFailed, format!("export failed: {e}"))),
        Some(Ok(files)) => {
            let base = state.base_url();
            let output: Vec<Value> =
                files.iter().map(|(ty, name, n)| json!({ "type": ty, "url": format!("{base}/$export-file/{id}/{name}"), "count": n })).collect();
            Ok(HttpResponse::Ok().content_type("application/json").body(
                json!({ "transactionTime": job.transaction_time, "request": job.request, "requiresAccessToken": state.verifier.is_some(), "output": output, "error": [] }).to_string(),
            ))
        }
    }
}

async fn cancel(decision: Decision, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let job = own_job(&state, &id, &decision)?;
    job.cancelled.store(true, Ordering::Relaxed);
    state.exports.jobs.lock().expect("jobs lock").remove(id.as_str());
    let _ = std::fs::remove_dir_all(export_dir(&state, &id));
    Ok(HttpResponse::Accepted().finish())
}

async fn file(decision: Decision, state: web::Data<AppState>, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    own_job(&state, &id, &decision)?;
    if name.contains('/') || name.contains("..") || !name.ends_with(".ndjson") {
        return Err(ApiError::bad_request("not an export file name"));
    }
    let path = export_dir(&state, &id).join(&name);
    let file = std::fs::File::open(&path).map_err(|_| ApiError::not_found(format!("no file {name} in export {id}")))?;
    let size = file.metadata().map_err(|e| ApiError::internal(format!("export file: {e}")))?.len();
    Ok(HttpResponse::Ok().content_type("application/fhir+ndjson").body(actix_web::body::SizedStream::new(size, chunks(file))))
}

/// A file as a stream of 64 KiB chunks: a large export is never held in memory whole.
fn chunks(file: std::fs::File) -> impl futures_util::Stream<Item = Result<web::Bytes, std::io::Error>> {
    futures_util::stream::unfold(Some(file), |file| async move {
        use std::io::Read;
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(web::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}
