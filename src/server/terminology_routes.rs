//! Terminology endpoints: CodeSystem read/search, $lookup, $validate-code, ValueSet/$expand,
//! ConceptMap/$translate, and /metadata.

use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::access::Access;
use super::error::{ApiError, ErrorCode};
use super::format::{check_accept, fhir_ok, url_pairs};
use super::search::Search;
use super::AppState;
use crate::fhir::params::OpParams;
use crate::fhir::{capability, terminology as fx};
use crate::terminology::{CodeSystem, Terminology};

type Result<T> = std::result::Result<T, ApiError>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let get_post = || web::route().guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Post()));
    let reads = |ty: &'static str, letter: char| move |_: &ServiceRequest, _: &AppState| -> Result<Access> { Ok(Access::needs(ty, letter)) };
    cfg.service(crate::guarded!("/metadata", |_, _| Ok(Access::public())).route(web::get().to(metadata)))
        .service(crate::guarded!("/CodeSystem/$lookup", reads("CodeSystem", 'r')).route(get_post().to(lookup)))
        .service(crate::guarded!("/CodeSystem/$validate-code", reads("CodeSystem", 'r')).route(get_post().to(validate_code)))
        .service(crate::guarded!("/CodeSystem/$upload-external-code-system", reads("CodeSystem", 'c')).route(web::post().to(upload_code_system)))
        .service(crate::guarded!("/CodeSystem", reads("CodeSystem", 's')).route(web::get().to(search_code_systems)))
        .service(crate::guarded!("/CodeSystem/{id}/$lookup", reads("CodeSystem", 'r')).route(get_post().to(lookup)))
        .service(crate::guarded!("/CodeSystem/{id}/$validate-code", reads("CodeSystem", 'r')).route(get_post().to(validate_code)))
        .service(crate::guarded!("/CodeSystem/{id}", decide_code_system).route(web::get().to(read_code_system)).route(web::put().to(put_code_system)))
        .service(crate::guarded!("/ValueSet/$expand", reads("ValueSet", 'r')).route(get_post().to(expand)))
        .service(crate::guarded!("/ConceptMap/$translate", reads("ConceptMap", 'r')).route(get_post().to(translate)))
        .service(crate::guarded!("/ConceptMap", reads("ConceptMap", 's')).route(web::get().to(search_concept_maps)))
        .service(crate::guarded!("/ConceptMap/{id}", reads("ConceptMap", 'r')).route(web::get().to(read_concept_map)));
}

/// Reading a code system, or an admin's PUT of a new version (`u`).
fn decide_code_system(req: &ServiceRequest, _: &AppState) -> Result<Access> {
    Ok(match *req.method() {
        Method::PUT => Access::needs("CodeSystem", 'u'),
        _ => Access::needs("CodeSystem", 'r'),
    })
}

/// Query parameters, plus a `Parameters` body on POST.
fn op_params(req: &HttpRequest, body: &web::Bytes) -> Result<OpParams> {
    check_accept(req)?;
    let mut pairs = url_pairs(req.query_string());
    if req.method() == Method::POST && !body.is_empty() {
        let value = super::format::json_body(body)?;
        let from_body = OpParams::from_parameters(&value).map_err(ApiError::bad_request)?;
        for name in ["system", "url", "code", "version", "display", "filter", "offset", "count", "target", "targetsystem"] {
            if let Some(v) = from_body.get(name) {
                pairs.push((name.to_owned(), v.to_owned()));
            }
        }
    }
    Ok(OpParams::from_query(pairs))
}

/// The edition for `{id}` in the path, else the `system`/`url` parameter.
fn edition_for<'t>(t: &'t Terminology, req: &HttpRequest, p: &OpParams) -> Result<&'t std::sync::Arc<CodeSystem>> {
    let version = p.get("version");
    if let Some(id) = req.match_info().get("id") {
        return Ok(t.edition(id, version)?);
    }
    let system = p
        .get("system")
        .or_else(|| p.get("url"))
        .ok_or_else(|| ApiError::bad_request("parameter system (or url) is required"))?;
    let system = system.strip_suffix("?vs").unwrap_or(system);
    Ok(t.edition(system, version)?)
}

async fn metadata(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    check_accept(&req)?;
    let served = state.served();
    let agents: Vec<_> = crate::agents::Role::ALL.iter().map(|r| served.pipeline.agents.get(*r).info()).collect();
    let security = state.verifier.is_some().then(|| capability::Security {
        token_endpoint: super::auth::advertised_token_endpoint(&state.config.jwt),
    });
    let dir = state.config.pdf_dir();
    let pdf = if crate::ingest::pdf::PdfReader::installed(&dir) {
        capability::PdfSupport::Read { ocr: crate::ingest::ocr::Ocr::installed(&dir) }
    } else {
        capability::PdfSupport::NotInstalled
    };
    Ok(fhir_ok(&capability::capability_statement(&served.terminology, &state.base_url(), &agents, security, pdf)))
}

/// The search parameters the CapabilityStatement declares for a terminology type.
fn declared_filters(ty: &str) -> Vec<&'static str> {
    capability::served(ty).map(|s| s.filter_names()).unwrap_or_default()
}

async fn search_code_systems(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    check_accept(&req)?;
    let search = Search::read(&req, &declared_filters("CodeSystem"))?;
    let t = state.terminology();
    let list: Vec<Value> = t
        .all_versions()
        .into_iter()
        .filter(|cs| search.id_matches(&cs.meta.id))
        .filter(|cs| {
            search.type_filters().all(|(k, v)| match k {
                "url" => v == cs.meta.url,
                _ => v == cs.meta.version,
            })
        })
        .map(|cs| fx::code_system(cs, None))
        .collect();
    let (page, total) = search.page_of(list);
    Ok(fhir_ok(&search.bundle(&state.base_url(), "CodeSystem", page, total)))
}

async fn read_code_system(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse> {
    let p = op_params(&req, &web::Bytes::new())?;
    let t = state.terminology();
    let cs = t.edition(&id, p.get("version"))?;
    let page = match (p.usize("_offset").map_err(ApiError::bad_request)?, p.usize("_count").map_err(ApiError::bad_request)?) {
        (None, None) => None,
        (offset, count) => Some((offset.unwrap_or(0), count.unwrap_or(state.config.default_page_size).min(1000))),
    };
    let mut resp = fx::code_system(cs, page);
    if let Some((offset, count)) = page {
        if offset + count < cs.concepts.len() {
            let next = format!("{}/CodeSystem/{}?_offset={}&_count={}", state.base_url(), cs.meta.id, offset + count, count);
            resp["meta"] = serde_json::json!({ "tag": [{ "system": "urn:jointcoder:paging", "code": "next", "display": next }] });
            return Ok(HttpResponse::Ok()
                .content_type(super::format::FHIR_JSON)
                .insert_header(("Link", format!("<{next}>; rel=\"next\"")))
                .body(resp.to_string()));
        }
    }
    Ok(fhir_ok(&resp))
}

async fn lookup(req: HttpRequest, state: web::Data<AppState>, body: super::format::Body) -> Result<HttpResponse> {
    let p = op_params(&req, &body)?;
    let t = state.terminology();
    let cs = edition_for(&t, &req, &p)?;
    let code = p.get("code").ok_or_else(|| ApiError::bad_request("parameter code is required"))?;
    let concept = cs.get(code).ok_or_else(|| {
        ApiError::from(crate::terminology::TerminologyError::UnknownCode {
            system: format!("{} {}", cs.meta.id, cs.meta.version),
            code: code.to_owned(),
        })
    })?;
    Ok(fhir_ok(&fx::lookup(cs, concept)))
}

async fn validate_code(req: HttpRequest, state: web::Data<AppState>, body: super::format::Body) -> Result<HttpResponse> {
    let p = op_params(&req, &body)?;
    let t = state.terminology();
    let cs = edition_for(&t, &req, &p)?;
    let code = p.get("code").ok_or_else(|| ApiError::bad_request("parameter code is required"))?;
    let resp = match cs.get(code) {
        None => fx::validate_code(false, cs, None, Some(&format!("code {code} is not in {} {}", cs.meta.id, cs.meta.version))),
        Some(c) if !c.selectable => {
            fx::validate_code(false, cs, Some(c), Some(&format!("{code} is a category header, not a codable concept")))
        }
        Some(c) => match p.get("display") {
            Some(d) if crate::terminology::normalize::normalize(d) != c.key => fx::validate_code(
                false,
                cs,
                Some(c),
                Some(&format!("display {d:?} does not match {:?}", c.name)),
            ),
            _ => fx::validate_code(true, cs, Some(c), None),
        },
    };
    Ok(fhir_ok(&resp))
}

async fn expand(req: HttpRequest, state: web::Data<AppState>, body: super::format::Body) -> Result<HttpResponse> {
    let p = op_params(&req, &body)?;
    let t = state.terminology();
    let cs = edition_for(&t, &req, &p)?;
    let offset = p.usize("offset").map_err(ApiError::bad_request)?.unwrap_or(0);
    let count = p.usize("count").map_err(ApiError::bad_request)?.unwrap_or(state.config.default_page_size).min(1000);
    let resp = match p.get("filter") {
        Some(filter) => {
            let hits = t.search(filter, &cs.meta.id, Some(&cs.meta.version), (offset + count).max(1))?;
            let page: Vec<_> = hits.into_iter().skip(offset).collect();
            fx::expansion(cs, &fx::candidates_as_items(&page), None, offset, Some(filter))
        }
        None => {
            let total = cs.selectable().count();
            let items: Vec<(&str, &str)> =
                cs.selectable().skip(offset).take(count).map(|c| (c.code.as_str(), c.name.as_str())).collect();
            fx::expansion(cs, &items, Some(total), offset, None)
        }
    };
    Ok(fhir_ok(&resp))
}

fn concept_map_url(state: &AppState, id: &str) -> String {
    format!("{}/ConceptMap/{}", state.terminology().canonical_base.trim_end_matches('/'), id)
}

async fn translate(req: HttpRequest, state: web::Data<AppState>, body: super::format::Body) -> Result<HttpResponse> {
    let p = op_params(&req, &body)?;
    let t = state.terminology();
    let code = p.get("code").ok_or_else(|| ApiError::bad_request("parameter code is required"))?;
    let system = match p.get("system") {
        Some(s) => s.to_owned(),
        None => {
            // A ConceptMap url names the source edition.
            let url = p.get("url").ok_or_else(|| ApiError::bad_request("parameter system (or url) is required"))?;
            t.crosswalks()
                .find(|cw| concept_map_url(&state, &cw.id) == url)
                .map(|cw| cw.from.clone())
                .ok_or_else(|| ApiError::not_found(format!("no ConceptMap {url}")))?
        }
    };
    let (target, tr) = t.translate(&system, code)?;
    if let Some(ts) = p.get("targetsystem").or_else(|| p.get("target")) {
        let ts = ts.strip_suffix("?vs").unwrap_or(ts);
        if ts != target.meta.url && ts != target.meta.id {
            return Err(ApiError::not_found(format!("no crosswalk from {system} to {ts}")));
        }
    }
    let from = t.edition(&system, None)?;
    let cm = t.crosswalks().find(|cw| cw.from == from.meta.id).map(|cw| concept_map_url(&state, &cw.id)).unwrap_or_default();
    Ok(fhir_ok(&fx::translate(&target, tr.as_ref(), &cm)))
}

fn concept_maps(state: &AppState) -> Vec<Value> {
    let t = state.terminology();
    t.crosswalks()
        .filter_map(|cw| {
            let (from, to) = (t.edition(&cw.from, None).ok()?, t.edition(&cw.to, None).ok()?);
            Some(fx::concept_map_summary(&cw.id, &concept_map_url(state, &cw.id), from, to))
        })
        .collect()
}

async fn search_concept_maps(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    check_accept(&req)?;
    let search = Search::read(&req, &declared_filters("ConceptMap"))?;
    // url, and the source or target code system a map reads from or writes to.
    let system_of = |cm: &Value, side: &str| cm[format!("{side}Uri")].as_str().or(cm[format!("{side}Canonical")].as_str()).unwrap_or("").to_owned();
    let list: Vec<Value> = concept_maps(&state)
        .into_iter()
        .filter(|cm| search.id_matches(cm["id"].as_str().unwrap_or("")))
        .filter(|cm| {
            search.type_filters().all(|(k, v)| match k {
                "url" => cm["url"] == v,
                "source-system" => cm["group"][0]["source"] == v || system_of(cm, "source") == v,
                _ => cm["group"][0]["target"] == v || system_of(cm, "target") == v,
            })
        })
        .collect();
    let (page, total) = search.page_of(list);
    Ok(fhir_ok(&search.bundle(&state.base_url(), "ConceptMap", page, total)))
}

async fn read_concept_map(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse> {
    check_accept(&req)?;
    concept_maps(&state)
        .into_iter()
        .find(|cm| cm["id"] == id.as_str())
        .map(|cm| fhir_ok(&cm))
        .ok_or_else(|| ApiError::not_found(format!("ConceptMap/{id} is not known")))
}

/// Header rows (non-selectable parents) of the current version, kept for a new version.
fn headers_of(cs: Option<&std::sync::Arc<CodeSystem>>) -> std::collections::HashMap<String, String> {
    cs.map(|cs| cs.concepts.iter().filter(|c| !c.selectable).map(|c| (c.code.clone(), c.name.clone())).collect()).unwrap_or_default()
}

/// Builds the new version off the request path and swaps it in; requests in flight finish on
/// the old one.
async fn install(state: &web::Data<AppState>, spec: crate::terminology::EditionSpec, rows: Vec<(String, String)>, make_current: bool) -> Result<Value> {
    if rows.is_empty() {
        return Err(ApiError::of(ErrorCode::EmptyCodeSystem, "the new version would hold no concepts: a code system to serve needs its codes",
        ));
    }
    let st = state.clone();
    let meta = web::block(move || {
        st.update_terminology(|t| {
            let headers = headers_of(t.edition(&spec.id, None).ok());
            let cs = crate::terminology::edition_from_rows(&spec, rows.clone(), &headers, &t.canonical_base);
            let meta = fx::code_system(&cs, None);
            let next = t.with_edition(cs, make_current)?;
            // Kept before it is served: an answered upload survives a restart.
            let kept = crate::terminology::uploads::InstalledVersion { spec, headers, rows, make_current };
            st.installed_versions.save(&kept).map_err(|e| crate::terminology::TerminologyError::Io(e.to_string()))?;
            Ok((next, meta))
        })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    tracing::info!(edition = %meta["id"], version = %meta["version"], "code system version installed");
    Ok(meta)
}

fn spec_for(t: &Terminology, id: &str, version: &str, url: Option<&str>, title: Option<&str>) -> crate::terminology::EditionSpec {
    let current = t.edition(id, None).ok();
    crate::terminology::EditionSpec {
        id: id.to_owned(),
        file: std::path::PathBuf::new(),
        version: version.to_owned(),
        title: title.map(str::to_owned).or_else(|| current.map(|c| c.meta.title.clone())),
        url: url.map(str::to_owned).or_else(|| current.map(|c| c.meta.url.clone())),
        kind: current.map(|c| c.meta.kind),
        role: current.map(|c| c.meta.role.clone()),
        headers: None,
    }
}

/// A version as served side by side: 1 to 64 characters of letters, digits and `.-_+`, so
/// that it is safe in a URL, a file name and a log line.
fn valid_version(version: &str) -> Result<()> {
    let ok = !version.is_empty() && version.len() <= 64 && version.chars().all(|c| c.is_ascii_alphanumeric() || ".-_+".contains(c));
    if !ok {
        return Err(ApiError::bad_request(format!(
            "version {:?} is not accepted: 1 to 64 letters, digits, '.', '-', '_' or '+'",
            version.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

/// `makeCurrent=true` (query, or a Parameters entry): the new version becomes the one served
/// when none is named, and the one `$code` codes with. Without it a new version of an existing
/// edition is served beside the current one until an admin says so.
fn make_current(req: &HttpRequest, params: Option<&OpParams>) -> Result<bool> {
    let value = url_pairs(req.query_string()).into_iter().find(|(k, _)| k == "makeCurrent").map(|(_, v)| v);
    let value = value.or_else(|| params.and_then(|p| p.get("makeCurrent").map(str::to_owned)));
    match value.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!("makeCurrent must be true or false, not {other:?}"))),
    }
}

fn valid_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return Err(ApiError::bad_request(format!("{id:?} is not a valid resource id")));
    }
    Ok(())
}

/// `PUT /CodeSystem/{id}` with a complete CodeSystem: a new version beside the old ones (or
/// the same version replaced).
async fn put_code_system(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>, body: super::format::Body) -> Result<HttpResponse> {
    check_accept(&req)?;
    valid_id(&id)?;
    let v = super::format::json_body(&body)?;
    if v["resourceType"] != "CodeSystem" {
        return Err(ApiError::bad_request("the body is not a CodeSystem"));
    }
    // R4 http.html#update: the body carries the id, and it is the URL's.
    if v["id"].as_str() != Some(id.as_str()) {
        return Err(ApiError::bad_request("the body's id is missing or differs from the URL's").at("CodeSystem.id"));
    }
    let invalid = crate::fhir::validate::errors(&v);
    if !invalid.is_empty() {
        return Err(ApiError::invalid_resource("CodeSystem", invalid));
    }
    let version = v["version"].as_str().filter(|s| !s.is_empty()).ok_or_else(|| ApiError::bad_request("CodeSystem.version is required: versions are served side by side"))?;
    valid_version(version)?;
    let current = make_current(&req, None)?;
    let mut rows = Vec::new();
    for c in v["concept"].as_array().into_iter().flatten() {
        match (c["code"].as_str(), c["display"].as_str()) {
            (Some(code), Some(display)) if !code.trim().is_empty() && !display.trim().is_empty() => rows.push((code.to_owned(), display.to_owned())),
            _ => return Err(ApiError::bad_request("every concept needs a code and a display")),
        }
    }
    if rows.is_empty() {
        return Err(ApiError::of(ErrorCode::EmptyCodeSystem, "a CodeSystem to serve needs its concepts (content complete)"));
    }
    let spec = spec_for(&state.terminology(), &id, version, v["url"].as_str(), v["title"].as_str());
    let meta = install(&state, spec, rows, current).await?;
    Ok(fhir_ok(&meta))
}

/// HAPI-style `$upload-external-code-system`: a `code,name` CSV as a new version, whole
/// (`mode` snapshot) or as a delta on the current version (`add`, `remove`).
async fn upload_code_system(req: HttpRequest, state: web::Data<AppState>, body: super::format::Body) -> Result<HttpResponse> {
    check_accept(&req)?;
    let v = super::format::json_body(&body)?;
    let params = OpParams::from_parameters(&v).map_err(ApiError::bad_request)?;
    let system = params.get("system").ok_or_else(|| ApiError::bad_request("parameter system is required"))?.to_owned();
    let version = params.get("version").ok_or_else(|| ApiError::bad_request("parameter version is required"))?.to_owned();
    valid_version(&version)?;
    let current = make_current(&req, Some(&params))?;
    let mode = params.get("mode").unwrap_or("snapshot").to_owned();
    let data = v["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "file")
        .and_then(|p| p["valueAttachment"]["data"].as_str())
        .ok_or_else(|| ApiError::bad_request("parameter file (valueAttachment with base64 data) is required"))?;
    use base64::Engine;
    let csv = base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|e| ApiError::bad_request(format!("file is not valid base64: {e}")))?;
    let csv = String::from_utf8(csv).map_err(|_| ApiError::bad_request("file is not UTF-8 text"))?;
    let uploaded = crate::terminology::codesystem::read_code_name_csv(csv.as_bytes()).map_err(|e| ApiError::bad_request(format!("file: {e}")))?;
    let t = state.terminology();
    let id = match t.edition(&system, None) {
        Ok(cs) => cs.meta.id.clone(),
        Err(_) if mode == "snapshot" => {
            valid_id(&system)?;
            system.clone()
        }
        Err(e) => return Err(e.into()),
    };
    let base: Vec<(String, String)> = t.edition(&id, None).map(|cs| cs.selectable().map(|c| (c.code.clone(), c.name.clone())).collect()).unwrap_or_default();
    let (rows, added, removed) = match mode.as_str() {
        "snapshot" => {
            let n = uploaded.len();
            (uploaded, n, 0)
        }
        "add" => {
            let mut rows = base;
            let mut at: std::collections::HashMap<String, usize> = rows.iter().enumerate().map(|(i, r)| (r.0.clone(), i)).collect();
            let mut added = 0;
            for (code, name) in uploaded {
                match at.get(&code) {
                    Some(&i) => rows[i].1 = name,
                    None => {
                        at.insert(code.clone(), rows.len());
                        rows.push((code, name));
                        added += 1;
                    }
                }
            }
            (rows, added, 0)
        }
        "remove" => {
            let drop: std::collections::HashSet<String> = uploaded.into_iter().map(|r| r.0).collect();
            let before = base.len();
            let rows: Vec<(String, String)> = base.into_iter().filter(|r| !drop.contains(&r.0)).collect();
            let removed = before - rows.len();
            (rows, 0, removed)
        }
        other => return Err(ApiError::bad_request(format!("mode {other:?}: one of snapshot, add, remove"))),
    };
    let n = rows.len();
    let spec = spec_for(&t, &id, &version, None, None);
    let meta = install(&state, spec, rows, current).await?;
    Ok(fhir_ok(&serde_json::json!({
        "resourceType": "Parameters",
        "parameter": [
            { "name": "target", "valueReference": { "reference": format!("CodeSystem/{}", meta["id"].as_str().unwrap_or("")) } },
            { "name": "version", "valueString": version },
            { "name": "conceptCount", "valueInteger": n },
            { "name": "added", "valueInteger": added },
            { "name": "removed", "valueInteger": removed }
        ]
    })))
}
