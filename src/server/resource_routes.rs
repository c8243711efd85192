//! Reading what `$code` stored: read, vread, `_history`, and search with `_count` paging.

use actix_web::dev::ServiceRequest;
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::access::{belongs_to, patient_field, Access, Decision};

use super::error::{ApiError, ErrorCode};
use super::format::{check_accept, FHIR_JSON};
use super::search::{Order, Search};
use crate::fhir::capability::{self, ServedType};
use super::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::guarded!("/{type}", decide_type).route(web::get().to(search)).route(web::post().to(create)))
        .service(crate::guarded!("/{type}/{id}", decide_instance).route(web::get().to(read)).route(web::put().to(update)))
        .service(crate::guarded!("/{type}/{id}/_history", decide_instance).route(web::get().to(history)))
        .service(crate::guarded!("/{type}/{id}/_history/{vid}", decide_instance).route(web::get().to(vread)));
}

/// `/{type}`: search (`s`) or create (`c`) on the routed type.
fn decide_type(req: &ServiceRequest, _: &AppState) -> Result<Access, ApiError> {
    let ty = req.match_info().get("type").unwrap_or("");
    Ok(match *req.method() {
        // A Binary may be posted as its own content (R4 binary.html#rest).
        Method::POST if ty == "Binary" => Access::needs(ty, 'c').any_body().audited_for(ty, "C", "create", ty),
        Method::POST => Access::needs(ty, 'c').audited_for(ty, "C", "create", ty),
        // AuditEvent search is the admins' own reading of the trail, not an access to records.
        _ => Access::needs(ty, 's').patient_reach().audited_for(ty, "E", "search-type", ty),
    })
}

/// `/{type}/{id}` and its history: read (`r`) or a coder's update (`u`).
fn decide_instance(req: &ServiceRequest, _: &AppState) -> Result<Access, ApiError> {
    let info = req.match_info();
    let (ty, id) = (info.get("type").unwrap_or(""), info.get("id").unwrap_or(""));
    let entity = format!("{ty}/{id}");
    Ok(match (req.method(), info.get("vid")) {
        (&Method::PUT, _) => Access::needs(ty, 'u').patient_reach().audited_for(ty, "U", "update", entity),
        (_, Some(_)) => Access::needs(ty, 'r').patient_reach().audited_for(ty, "R", "vread", entity),
        _ if super::access::routed_path(req).ends_with("/_history") => Access::needs(ty, 'r').patient_reach().audited_for(ty, "R", "history-instance", entity),
        _ => Access::needs(ty, 'r').patient_reach().audited_for(ty, "R", "read", entity),
    })
}

/// Under a `patient/` scope, a resource of another patient (or of none) is not shown.
fn within_reach(decision: &Decision, resource: &Value) -> Result<(), ApiError> {
    match &decision.patient {
        Some(p) if !belongs_to(resource, p) => Err(ApiError::of(ErrorCode::Forbidden, "this resource is outside the token's patient")),
        _ => Ok(()),
    }
}

/// A type the store holds, as the CapabilityStatement declares it.
fn known_type(ty: &str) -> Result<&'static ServedType, ApiError> {
    capability::stored(ty).ok_or_else(|| ApiError::not_found(format!("resource type {ty} is not served here")))
}

/// ETag and Last-Modified of a stored version.
fn version_headers(resource: &Value) -> Vec<(header::HeaderName, String)> {
    let mut headers = Vec::new();
    if let Some(v) = resource["meta"]["versionId"].as_str() {
        headers.push((header::ETAG, format!("W/\"{v}\"")));
    }
    // RFC 7231: an HTTP date, not the FHIR instant.
    if let Some(date) = resource["meta"]["lastUpdated"].as_str().and_then(crate::ids::http_date) {
        headers.push((header::LAST_MODIFIED, date));
    }
    headers
}

fn with_version_headers(resource: &Value) -> HttpResponse {
    let mut resp = HttpResponse::Ok();
    resp.content_type(FHIR_JSON);
    for h in version_headers(resource) {
        resp.insert_header(h);
    }
    resp.body(resource.to_string())
}

async fn read(req: HttpRequest, decision: Decision, state: web::Data<AppState>, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (ty, id) = path.into_inner();
    known_type(&ty)?;
    let r = state.store.read(&ty, &id)?.ok_or_else(|| ApiError::not_found(format!("{ty}/{id} is not known")))?;
    within_reach(&decision, &r)?;
    answer(&req, &r)
}

/// A read's answer: the resource as FHIR JSON, or a Binary's own content when the client asks
/// for its content type rather than a FHIR one (R4 binary.html#rest).
fn answer(req: &HttpRequest, r: &Value) -> Result<HttpResponse, ApiError> {
    if r["resourceType"] == "Binary" {
        let content_type = r["contentType"].as_str().unwrap_or("application/octet-stream");
        if super::binary::wants_raw(req, content_type)? {
            return super::binary::raw(r, version_headers(r));
        }
    }
    check_accept(req)?;
    Ok(with_version_headers(r))
}

async fn vread(req: HttpRequest, decision: Decision, state: web::Data<AppState>, path: web::Path<(String, String, String)>) -> Result<HttpResponse, ApiError> {
    let (ty, id, vid) = path.into_inner();
    known_type(&ty)?;
    let v: i64 = vid.parse().map_err(|_| ApiError::bad_request(format!("version {vid:?} is not a number")))?;
    let r = state
        .store
        .vread(&ty, &id, v)
        ?
        .ok_or_else(|| ApiError::not_found(format!("{ty}/{id} has no version {vid}")))?;
    within_reach(&decision, &r)?;
    answer(&req, &r)
}

async fn history(req: HttpRequest, decision: Decision, state: web::Data<AppState>, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    check_accept(&req)?;
    let (ty, id) = path.into_inner();
    known_type(&ty)?;
    let versions = state.store.history(&ty, &id)?;
    if versions.is_empty() {
        return Err(ApiError::not_found(format!("{ty}/{id} is not known")));
    }
    for v in &versions {
        within_reach(&decision, v)?;
    }
    let base = state.base_url();
    // Newest first (R4 http.html#history); the first version was a create, later ones updates.
    let mut versions = versions;
    versions.sort_by_key(|r| std::cmp::Reverse(r["meta"]["versionId"].as_str().and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)));
    let entries: Vec<Value> = versions
        .iter()
        .map(|r| {
            let created = r["meta"]["versionId"].as_str() == Some("1");
            let (method, url, status) = if created { ("POST", ty.clone(), "201 Created") } else { ("PUT", format!("{ty}/{id}"), "200 OK") };
            let mut response = json!({ "status": status });
            if let Some(v) = r["meta"]["versionId"].as_str() {
                response["etag"] = json!(format!("W/\"{v}\""));
            }
            if let Some(lu) = r["meta"]["lastUpdated"].as_str() {
                response["lastModified"] = json!(lu);
            }
            json!({ "fullUrl": format!("{base}/{ty}/{id}"), "resource": r, "request": { "method": method, "url": url }, "response": response })
        })
        .collect();
    Ok(super::format::fhir_ok(&json!({ "resourceType": "Bundle", "type": "history", "total": entries.len(), "entry": entries })))
}

async fn search(req: HttpRequest, decision: Decision, state: web::Data<AppState>, ty: web::Path<String>) -> Result<HttpResponse, ApiError> {
    check_accept(&req)?;
    let search = Search::read(&req, &known_type(&ty)?.filter_names())?;
    // A `patient/` scope searches that patient's resources only; a type outside the patient
    // compartment is not reachable with one.
    let mut scoped = search.filters.clone();
    if let Some(p) = &decision.patient {
        let param = patient_field(&ty).ok_or_else(|| ApiError::of(ErrorCode::Forbidden, format!("{ty} is not in a patient's compartment: a patient/ scope does not reach it")))?;
        scoped.push((param.to_owned(), format!("Patient/{p}")));
    }
    let count = if search.count_only { 0 } else { search.count };
    let (page, total) = state.store.search_in_order(&ty, &scoped, count, search.offset, search.order == Order::NewestFirst)?;
    Ok(super::format::fhir_ok(&search.bundle(&state.base_url(), &ty, page, total)))
}

/// What a review changes, as kept in the feedback: code, display, verification status.
fn review_summary(r: &Value) -> Value {
    let decision = crate::fhir::outbound::extension(r, REVIEW_DECISION);
    json!({
        "code": r["code"]["coding"][0]["code"],
        "display": r["code"]["coding"][0]["display"],
        "system": r["code"]["coding"][0]["system"],
        "verificationStatus": r["verificationStatus"]["coding"][0]["code"],
        "status": r["status"],
        "subject": r["subject"],
        "text": r["code"]["text"],
        "decision": decision.map_or(Value::Null, |d| d["valueCode"].clone()),
        "comment": r["note"].as_array().and_then(|n| n.last()).map_or(Value::Null, |n| n["text"].clone())
    })
}

/// The extension (under the canonical base's StructureDefinition/) in which a review names its
/// decision: accepted, rejected or corrected. A Procedure has no verification status, so an
/// accepted procedure would otherwise look unchanged.
pub(crate) const REVIEW_DECISION: &str = "/StructureDefinition/review-decision";

/// A coder's review: PUT the Condition or Procedure with its verification status (confirmed,
/// refuted, entered-in-error) or its code changed. `If-Match` guards against lost updates.
pub async fn update(req: HttpRequest, decision: Decision, state: web::Data<AppState>, path: web::Path<(String, String)>, body: super::format::Body) -> Result<HttpResponse, ApiError> {
    check_accept(&req)?;
    let (ty, id) = path.into_inner();
    if !known_type(&ty)?.allows("update") {
        return Err(ApiError::of(ErrorCode::NotAllowedHere, format!("{ty} is not updated here: coders review Conditions and Procedures")));
    }
    let resource = super::format::json_body(&body)?;
    let if_match = match req.headers().get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(v) => Some(
            v.trim_start_matches("W/").trim_matches('"').parse::<i64>().map_err(|_| ApiError::bad_request(format!("If-Match {v:?} is not a version ETag")))?,
        ),
    };
    let who = reviewer(&req, &decision);
    let stored = review(&state, &decision, &who, &ty, &id, resource, if_match)?;
    Ok(with_version_headers(&stored))
}

/// A review of `ty/id` by `who`, judged as every review is: valid R4, the same id, a codable
/// code, within the caller's reach, the subject kept; stored with its feedback row unless
/// `if_match` is not the current version (412). The workbench's reviews come through here too.
pub(crate) fn review(state: &AppState, decision: &Decision, who: &str, ty: &str, id: &str, resource: Value, if_match: Option<i64>) -> Result<Value, ApiError> {
    if resource["resourceType"] != ty {
        return Err(ApiError::bad_request(format!("the body is not a {ty}")).at("resourceType"));
    }
    // R4 http.html#update: the body carries the id, and it is the URL's.
    match resource["id"].as_str() {
        None => return Err(ApiError::bad_request(format!("an update's body carries the {ty}'s id")).at(format!("{ty}.id"))),
        Some(b) if b != id => return Err(ApiError::bad_request("the body's id differs from the URL's").at(format!("{ty}.id"))),
        Some(_) => {}
    }
    let invalid = crate::fhir::validate::errors(&resource);
    if !invalid.is_empty() {
        return Err(ApiError::invalid_resource(&ty, invalid));
    }
    let coding = &resource["code"]["coding"][0];
    let (system, code) = (coding["system"].as_str().unwrap_or(""), coding["code"].as_str().unwrap_or(""));
    let t = state.terminology();
    let cs = t.edition(system, coding["version"].as_str())?;
    if !cs.get(code).is_some_and(|c| c.selectable) {
        return Err(ApiError::of(ErrorCode::NotCodable, format!("{code} is not a codable concept of {} {}", cs.meta.id, cs.meta.version)));
    }
    let current = state.store.read(ty, id)?.ok_or_else(|| ApiError::not_found(format!("{ty}/{id} is not known")))?;
    within_reach(decision, &current)?;
    // A review judges the coding of this patient's record; it never moves it to another one
    // (every update passes here, so the subject a resource was coded for is the one it keeps).
    if current["subject"]["reference"] != resource["subject"]["reference"] {
        return Err(ApiError::of(ErrorCode::ReviewRule, format!("a review keeps the subject the {ty} was coded for")).at(format!("{ty}.subject")));
    }
    Ok(state.store.update(ty, id, resource, if_match, who, review_summary)?)
}

/// Who made a review, as the feedback keeps it: the verified token's subject when
/// authentication is on (a header cannot name someone else); with it off, the name the
/// client gives in `X-Jointcoder-User` (percent-encoded UTF-8, as a browser must send it),
/// marked `unverified:`, since nobody checked it.
pub(crate) fn reviewer(req: &HttpRequest, decision: &Decision) -> String {
    if let Some(p) = &decision.principal {
        return p.subject.clone();
    }
    match req.headers().get("X-Jointcoder-User").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()) {
        Some(name) => format!("unverified:{}", super::format::percent_decode(name).chars().filter(|c| !c.is_control()).take(128).collect::<String>()),
        None => "anonymous".to_owned(),
    }
}

/// Stores a document (Composition, DocumentReference) or a Binary for coding later.
async fn create(req: HttpRequest, decision: Decision, state: web::Data<AppState>, ty: web::Path<String>, body: super::format::Body) -> Result<HttpResponse, ApiError> {
    use actix_web::http::StatusCode;
    check_accept(&req)?;
    if !known_type(&ty)?.allows("create") {
        let creatable: Vec<&str> = capability::SERVED.iter().filter(|s| s.allows("create")).map(|s| s.ty).collect();
        return Err(ApiError::of(ErrorCode::NotAllowedHere, format!("{ty} is not created here; {} are", creatable.join(", "))));
    }
    // A Binary may arrive as its own content (R4 binary.html#rest): any body that is not FHIR.
    let raw_binary = ty.as_str() == "Binary" && !super::binary::is_fhir_body(&req);
    let mut resource = if raw_binary { super::binary::from_raw(&req, &body)? } else { super::format::json_body(&body)? };
    if resource["resourceType"] != ty.as_str() {
        return Err(ApiError::bad_request(format!("the body is not a {ty}")));
    }
    let is_pdf = resource["contentType"].as_str().is_some_and(|ct| ct.trim().to_ascii_lowercase().starts_with("application/pdf"));
    if ty.as_str() == "Binary" && is_pdf && !state.config.pdf_store_originals {
        return Err(ApiError::of(
            ErrorCode::OriginalsNotKept,
            "this server does not keep original PDFs (pdf.store_originals = false): send the PDF inline to DocumentReference/$code or $extract, which keep only its de-identified text",
        ));
    }
    if ty.as_str() == "Binary" {
        use base64::Engine;
        let data = resource["data"].as_str().unwrap_or("");
        base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|e| ApiError::bad_request(format!("Binary.data is not valid base64: {e}")))?;
        if resource["contentType"].as_str().is_none() {
            return Err(ApiError::bad_request("Binary.contentType is required"));
        }
    }
    // Conditional create: the same document sent again with the same If-None-Exist is the
    // first one (200, nothing stored twice); the same criteria with another document is a 412.
    let conditional = super::code_routes::conditional_create_key(&req, &decision, &resource)?;
    // The server names what it creates (R4 http.html#create): a client's id is not judged.
    resource["id"] = json!(crate::ids::new_uuid());
    let invalid = crate::fhir::validate::errors(&resource);
    if !invalid.is_empty() {
        return Err(ApiError::invalid_resource(&ty, invalid));
    }
    let (r, status) = match conditional {
        None => (state.store.create_one(resource)?, StatusCode::CREATED),
        Some((key, digest)) => {
            let build = Box::new(|stored: &[Value]| stored.first().cloned().unwrap_or(Value::Null));
            match state.store.create_all(vec![resource], Some(crate::store::Conditional { key, digest, build }))? {
                crate::store::Created::Existing(first) => (first, StatusCode::OK),
                crate::store::Created::New { mut stored, .. } if !stored.is_empty() => (stored.swap_remove(0), StatusCode::CREATED),
                crate::store::Created::New { .. } => return Err(ApiError::internal("nothing was stored")),
            }
        }
    };
    let r = &r;
    let location = format!("{}/{ty}/{}/_history/{}", state.base_url(), r["id"].as_str().unwrap_or(""), r["meta"]["versionId"].as_str().unwrap_or("1"));
    let mut resp = with_version_headers(r);
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::LOCATION, header::HeaderValue::from_str(&location).map_err(|e| ApiError::internal(e.to_string()))?);
    Ok(resp)
}
