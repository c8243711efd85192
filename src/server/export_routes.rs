//! Bulk Data `$export` (system and Patient level): `Prefer: respond-async` → 202 with a status
//! URL; the job writes one NDJSON file per type into the data directory; status polling,
//! DELETE to cancel. This is how billing systems pull coded Claims.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::error::ApiError;
use super::format::{check_accept, url_pairs};
use super::AppState;
use crate::fhir::outcome::IssueType;

/// Types a client may export.
const EXPORTABLE: &[&str] = &["Claim", "Condition", "Procedure", "Provenance", "Device"];
/// Types whose resources belong to a patient (Patient-level export).
const PATIENT_COMPARTMENT: &[&str] = &["Claim", "Condition", "Procedure"];

#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

pub struct Job {
    request: String,
    transaction_time: String,
    cancelled: AtomicBool,
    /// `None` while running; the output files, or an error, when done.
    result: Mutex<Option<Result<Vec<(String, String, usize)>, String>>>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/$export", web::get().to(export_system))
        .route("/Patient/$export", web::get().to(export_patient))
        .route("/$export-status/{job}", web::get().to(status))
        .route("/$export-status/{job}", web::delete().to(cancel))
        .route("/$export-file/{job}/{file}", web::get().to(file));
}

fn start(req: &HttpRequest, state: &web::Data<AppState>, allowed: &'static [&'static str]) -> Result<HttpResponse, ApiError> {
    check_accept(req)?;
    let prefer = req.headers().get("Prefer").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !prefer.contains("respond-async") {
        return Err(ApiError::bad_request("$export runs asynchronously: send Prefer: respond-async"));
    }
    let mut types: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
    let mut since: Option<String> = None;
    for (k, v) in url_pairs(req.query_string()) {
        match k.as_str() {
            "_type" => {
                types = v.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
                if let Some(bad) = types.iter().find(|t| !allowed.contains(&t.as_str())) {
                    return Err(ApiError::bad_request(format!("_type {bad} cannot be exported here; one of {}", allowed.join(","))));
                }
            }
            "_since" => since = Some(v),
            "_outputFormat" if matches!(v.as_str(), "application/fhir+ndjson" | "application/ndjson" | "ndjson") => {}
            "_outputFormat" => return Err(ApiError::bad_request(format!("_outputFormat {v} is not supported; use application/fhir+ndjson"))),
            other => return Err(ApiError::bad_request(format!("parameter {other} is not supported by $export"))),
        }
    }
    let id = crate::ids::new_uuid();
    let job = Arc::new(Job {
        request: format!("{}{}", state.base_url(), req.uri()),
        transaction_time: crate::ids::now_rfc3339(),
        cancelled: AtomicBool::new(false),
        result: Mutex::new(None),
    });
    // The job's own record on disk: a restart finds it (finished, or interrupted).
    let dir = export_dir(state, &id);
    std::fs::create_dir_all(&dir).map_err(|e| ApiError::internal(format!("export directory: {e}")))?;
    let started = json!({ "request": job.request, "transactionTime": job.transaction_time });
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
    state.config.data_dir.join("exports").join(job)
}

fn run_job(state: &AppState, id: &str, job: &Job, types: &[String], since: Option<&str>) -> Result<Vec<(String, String, usize)>, String> {
    let dir = export_dir(state, id);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for ty in types {
        if job.cancelled.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        let filters: Vec<(String, String)> = since.map(|s| vec![("_lastUpdated".to_owned(), format!("ge{s}"))]).unwrap_or_default();
        let (resources, _) = state.store.search(ty, &filters, usize::MAX, 0).map_err(|e| e.to_string())?;
        let name = format!("{ty}.ndjson");
        let mut text = String::new();
        for r in &resources {
            text.push_str(&r.to_string());
            text.push('\n');
        }
        std::fs::write(dir.join(&name), text).map_err(|e| e.to_string())?;
        out.push((ty.clone(), name, resources.len()));
    }
    Ok(out)
}

async fn export_system(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    start(&req, &state, EXPORTABLE)
}

async fn export_patient(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    start(&req, &state, PATIENT_COMPARTMENT)
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
    let job = Arc::new(Job {
        request: started["request"].as_str().unwrap_or("").to_owned(),
        transaction_time: started["transactionTime"].as_str().unwrap_or("").to_owned(),
        cancelled: AtomicBool::new(false),
        result: Mutex::new(Some(result)),
    });
    state.exports.jobs.lock().expect("jobs lock").insert(id.to_owned(), job.clone());
    Ok(job)
}

async fn status(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let job = job(&state, &id)?;
    let result = job.result.lock().expect("job lock");
    match &*result {
        None => Ok(HttpResponse::Accepted().insert_header(("X-Progress", "in progress")).insert_header((header::RETRY_AFTER, "1")).finish()),
        Some(Err(e)) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, IssueType::Exception, format!("export failed: {e}"))),
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

async fn cancel(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let job = job(&state, &id)?;
    job.cancelled.store(true, Ordering::Relaxed);
    state.exports.jobs.lock().expect("jobs lock").remove(id.as_str());
    let _ = std::fs::remove_dir_all(export_dir(&state, &id));
    Ok(HttpResponse::Accepted().finish())
}

async fn file(state: web::Data<AppState>, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    job(&state, &id)?;
    if name.contains('/') || name.contains("..") || !name.ends_with(".ndjson") {
        return Err(ApiError::bad_request("not an export file name"));
    }
    let text = std::fs::read_to_string(export_dir(&state, &id).join(&name)).map_err(|_| ApiError::not_found(format!("no file {name} in export {id}")))?;
    Ok(HttpResponse::Ok().content_type("application/fhir+ndjson").body(text))
}
