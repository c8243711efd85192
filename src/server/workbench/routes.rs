//! The workbench's routes. Each is decided by the same access guard as the FHIR API, on the
//! routed request: a page (no `HX-Request`) is the shell, public and without data; a fragment
//! needs what the FHIR interaction behind it needs (coding: create on Condition, Procedure,
//! Claim, Provenance and Composition; a review: update on its type; reading a case: read on
//! what it shows). Forms post their fields in the body, so no clinical text is in a URL.

use std::collections::HashMap;

use actix_web::dev::ServiceRequest;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use maud::Markup;

use super::batch::{self, Batch, Item, Row, RowState};
use super::case::{self, Action, CaseFilter};
use super::pages::{self, Allowed, Lang};
use super::assets;
use crate::fhir::inbound::Attachments;
use crate::record::Section;
use crate::server::access::{Access, Decision};
use crate::server::error::{ApiError, ErrorCode};
use crate::server::AppState;

/// A workbench resource behind the access guard (not recorded among the FHIR routes, which
/// the CapabilityStatement declares).
macro_rules! page_route {
    ($path:expr, $decide:expr) => {
        web::resource($path).wrap(actix_web::middleware::from_fn(move |req, next| crate::server::access::guard(req, next, $decide)))
    };
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(page_route!("/", |_: &ServiceRequest, _: &AppState| Ok(Access::public())).route(web::get().to(index)))
        .service(page_route!("/static/{name}", |_: &ServiceRequest, _: &AppState| Ok(Access::public())).route(web::get().to(asset)))
        .service(page_route!("/ui/whoami", |_: &ServiceRequest, _: &AppState| Ok(Access::default())).route(web::get().to(whoami)))
        .service(page_route!("/ui/sections", decide_parse).route(web::post().to(sections)))
        .service(page_route!("/ui/example", decide_parse).route(web::post().to(example)))
        .service(page_route!("/ui/upload", decide_upload).route(web::post().to(upload)))
        .service(page_route!("/ui/batch/{id}", decide_parse).route(web::get().to(batch_state)))
        .service(page_route!("/ui/cases", decide_cases).route(web::get().to(history)).route(web::post().to(code_case)))
        .service(page_route!("/ui/cases/{id}", decide_case).route(web::get().to(open_case)))
        .service(page_route!("/ui/cases/{id}/finish", decide_finish).route(web::post().to(finish_case)))
        .service(page_route!("/ui/review/{type}/{id}", decide_review).route(web::post().to(review)))
        .service(page_route!("/ui/codes", |_: &ServiceRequest, _: &AppState| Ok(Access::needs("ValueSet", 'r').any_body())).route(web::post().to(codes)))
        .service(page_route!("/ui/export", decide_export).route(web::get().to(export)))
        .service(page_route!("/ui/feedback.jsonl", decide_export).route(web::get().to(feedback)));
}

/// An htmx request (a fragment is wanted), not a page load.
fn is_fragment(headers: &header::HeaderMap) -> bool {
    headers.contains_key("HX-Request")
}

/// What coding a case asks: what `$code` asks, and the Composition that keeps the case.
fn coding_access() -> Access {
    Access::needs("Condition", 'c').and("Procedure", 'c').and("Claim", 'c').and("Provenance", 'c').and("Composition", 'c')
}

/// Reading pasted text or a file into sections stores nothing, but it is clinical text: only
/// those who may code may send it.
fn decide_parse(_: &ServiceRequest, _: &AppState) -> Result<Access, ApiError> {
    Ok(coding_access().any_body())
}

fn decide_upload(req: &ServiceRequest, _: &AppState) -> Result<Access, ApiError> {
    Ok(coding_access().any_body().audited("C", "operation", req.path().to_owned()))
}

fn reading_cases() -> Access {
    Access::needs("Composition", 'r').and("Condition", 'r').and("Procedure", 'r').and("Provenance", 'r')
}

fn decide_cases(req: &ServiceRequest, _: &AppState) -> Result<Access, ApiError> {
    Ok(match *req.method() {
        actix_web::http::Method::POST => coding_access().any_body().audited("C", "operation", "/ui/cases"),
        _ if is_fragment(req.headers()) => Access::needs("Composition", 's'),
        _ => Access::public(),
    })
}

fn decide_case(req: &ServiceRequest, _: &AppState) -> Result<Access, ApiError> {
    Ok(if is_fragment(req.headers()) { reading_cases().audited("R", "read", req.path().to_owned()) } else { Access::public() })
}

fn decide_finish(req: &ServiceRequest, _: &AppState) -> Result<Access, ApiError> {
    Ok(reading_cases().and("Composition", 'u').any_body().audited("U", "update", req.path().to_owned()))
}

fn decide_review(req: &ServiceRequest, _: &AppState) -> Result<Access, ApiError> {
    let ty = req.match_info().get("type").unwrap_or("");
    if !matches!(ty, "Condition" | "Procedure") {
        return Err(ApiError::not_found(format!("coders review Conditions and Procedures, not {ty}")));
    }
    Ok(Access::needs(ty, 'u').and(ty, 'r').any_body().audited("U", "update", req.path().to_owned()))
}

fn decide_export(req: &ServiceRequest, _: &AppState) -> Result<Access, ApiError> {
    Ok(reading_cases().audited("R", "read", req.path().to_owned()))
}

/// The language the query asks for, if it names one the page has.
fn asked_lang(req: &HttpRequest) -> Option<String> {
    crate::server::format::url_pairs(req.query_string()).into_iter().find(|(k, v)| k == "lang" && matches!(v.as_str(), "en" | "zh")).map(|(_, v)| v)
}

/// English when the query or the remembered choice (a cookie, which holds no data) says so.
fn lang(req: &HttpRequest) -> Lang {
    let asked = asked_lang(req);
    let remembered = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("jc_lang=").map(str::to_owned));
    Lang { english: asked.or(remembered).as_deref() == Some("en") }
}

fn html(status: StatusCode, m: Markup) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").insert_header((header::CACHE_CONTROL, "no-store")).body(m.into_string())
}

/// The page around `main`, remembering a language asked for in the query.
fn full_page(req: &HttpRequest, state: &AppState, main: Markup) -> HttpResponse {
    let l = lang(req);
    let mut resp = html(StatusCode::OK, pages::page(l, state.verifier.is_some(), main));
    if let Some(cookie) = asked_lang(req).and_then(|v| header::HeaderValue::from_str(&format!("jc_lang={v}; Path=/; SameSite=Strict")).ok()) {
        resp.headers_mut().append(header::SET_COOKIE, cookie);
    }
    resp
}

/// The example records shipped with the project (written from the coding conventions), read
/// once.
fn examples() -> &'static [crate::record::EhrRecord] {
    const EXAMPLES: &str = include_str!("../../../examples/records/cardiology_procedures.json");
    static READ: std::sync::OnceLock<Vec<crate::record::EhrRecord>> = std::sync::OnceLock::new();
    READ.get_or_init(|| crate::record::io::read_json_text(EXAMPLES).map(|o| o.records).unwrap_or_default())
}

fn example_titles() -> Vec<(String, String)> {
    examples().iter().map(|r| (r.record_id.clone(), r.text(Section::ProcedureName).chars().take(24).collect())).collect()
}

async fn index(req: HttpRequest, _d: Decision, state: web::Data<AppState>) -> HttpResponse {
    let main = pages::new_case(lang(&req), &example_titles());
    if is_fragment(req.headers()) {
        return html(StatusCode::OK, main);
    }
    full_page(&req, &state, main)
}

async fn asset(name: web::Path<String>, _d: Decision) -> Result<HttpResponse, ApiError> {
    let (body, ty) = assets::get(&name).ok_or_else(|| ApiError::not_found(format!("no asset {name}")))?;
    Ok(HttpResponse::Ok().content_type(ty).insert_header((header::CACHE_CONTROL, "public, max-age=3600")).body(body))
}

async fn whoami(req: HttpRequest, d: Decision) -> HttpResponse {
    let subject = d.principal.as_ref().map(|p| p.subject.as_str());
    html(StatusCode::OK, pages::who(lang(&req), subject))
}

fn new_record_id() -> String {
    format!("WB-{}", &crate::ids::new_uuid()[..8].to_uppercase())
}

#[derive(serde::Deserialize)]
struct Pasted {
    text: String,
}

async fn sections(req: HttpRequest, _d: Decision, form: web::Form<Pasted>) -> HttpResponse {
    let rec = crate::fhir::inbound::record_from_plain_text("", &form.text);
    html(StatusCode::OK, pages::sections_editor(lang(&req), &new_record_id(), &batch::sections_of(&rec), None))
}

#[derive(serde::Deserialize)]
struct Pick {
    n: usize,
}

async fn example(req: HttpRequest, _d: Decision, form: web::Form<Pick>) -> Result<HttpResponse, ApiError> {
    let rec = examples().get(form.n).ok_or_else(|| ApiError::not_found(format!("no example {}", form.n)))?;
    Ok(html(StatusCode::OK, pages::sections_editor(lang(&req), &rec.record_id, &batch::sections_of(rec), None)))
}

#[derive(serde::Deserialize)]
struct Upload {
    file_name: String,
    file_b64: String,
}

/// A file: one record (or a PDF) opens the section editor; several start a batch.
async fn upload(req: HttpRequest, d: Decision, state: web::Data<AppState>, form: web::Form<Upload>) -> Result<HttpResponse, ApiError> {
    let l = lang(&req);
    let Upload { file_name, file_b64 } = form.into_inner();
    if file_name.trim().is_empty() || file_b64.trim().is_empty() {
        return Err(ApiError::bad_request("choose a file to upload").at("file"));
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(file_b64.trim()).map_err(|e| ApiError::bad_request(format!("the file did not arrive whole: {e}")))?;
    if file_name.to_ascii_lowercase().ends_with(".pdf") {
        let st = state.clone();
        let x = web::block(move || crate::server::code_routes::ServerAttachments { state: &st }.pdf(&bytes, "pdf"))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(ApiError::from)?;
        let masked: Vec<String> = x.masked.kinds().map(|(k, n)| format!("{k} {n}")).collect();
        let note = format!(
            "{} {} · {} {}",
            l.t("PDF 页数", "PDF pages"),
            x.pages,
            l.t("已去标识：", "de-identified:"),
            if masked.is_empty() { l.t("无", "nothing").to_owned() } else { masked.join(", ") }
        );
        return Ok(html(StatusCode::OK, pages::sections_editor(l, &new_record_id(), &batch::sections_of(&x.record), Some(&note))));
    }
    let read = crate::record::io::read_bytes(&file_name, &bytes).map_err(ApiError::bad_request)?;
    if read.records.len() == 1 && read.errors.is_empty() {
        let rec = &read.records[0];
        return Ok(html(StatusCode::OK, pages::sections_editor(l, &rec.record_id, &batch::sections_of(rec), None)));
    }
    if read.records.is_empty() && read.errors.is_empty() {
        return Err(ApiError::bad_request(format!("{file_name} holds no record")));
    }
    // In the file's order, so that a failed row is found where the coder's sheet has it.
    let rows: Vec<usize> = if read.record_rows.len() == read.records.len() { read.record_rows.clone() } else { (1..=read.records.len()).collect() };
    let mut items: Vec<(usize, Item)> = rows.into_iter().zip(read.records.into_iter().map(Item::Record)).collect();
    for e in read.errors {
        items.push((e.row, Item::Bad { record_id: format!("{} {}", l.t("第", "row"), e.row), why: format!("{}: {}", e.field, e.message) }));
    }
    items.sort_by_key(|(row, _)| *row);
    let started = start_batch(&state, &d, &file_name, items);
    Ok(html(StatusCode::OK, pages::batch(l, &started)))
}

/// Starts coding the batch on a thread of its own (one record at a time: a batch never takes
/// more than one core from the interactive coders), and answers its first state.
fn start_batch(state: &web::Data<AppState>, d: &Decision, name: &str, items: Vec<(usize, Item)>) -> Batch {
    let rows = items
        .iter()
        .map(|(_, it)| match it {
            Item::Record(r) => Row { record_id: r.record_id.clone(), state: RowState::Queued },
            Item::Bad { record_id, why } => Row { record_id: record_id.clone(), state: RowState::Failed(why.clone()) },
        })
        .collect();
    let b = Batch { id: crate::ids::new_uuid(), name: name.to_owned(), client: d.client().to_owned(), rows };
    let first = b.clone();
    let shared = state.batches.start(b);
    let state = state.clone();
    let author = d.client().to_owned();
    std::thread::spawn(move || {
        for (i, (_, item)) in items.into_iter().enumerate() {
            let Item::Record(r) = item else { continue };
            let set = |s: RowState| shared.lock().unwrap_or_else(|e| e.into_inner()).rows[i].state = s;
            set(RowState::Coding);
            match case::create(&state, &r.record_id, &batch::sections_of(&r), &author) {
                Ok(case) => set(RowState::Done { case }),
                Err(e) => set(RowState::Failed(e.message)),
            }
        }
    });
    first
}

async fn batch_state(req: HttpRequest, d: Decision, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let b = state.batches.get(&id, d.client()).ok_or_else(|| ApiError::not_found(format!("no batch {id}")))?;
    Ok(html(StatusCode::OK, pages::batch(lang(&req), &b)))
}

/// What the token allows the page to offer (everything with authentication off).
fn allowed(d: &Decision) -> Allowed {
    let may = |ty: &str, letter: char| d.principal.as_ref().is_none_or(|p| matches!(p.reach(ty, letter), Ok(crate::server::auth::Reach::All)));
    Allowed { review_conditions: may("Condition", 'u'), review_procedures: may("Procedure", 'u'), finish: may("Composition", 'u') }
}

async fn history(req: HttpRequest, _d: Decision, state: web::Data<AppState>, filter: web::Query<CaseFilter>) -> Result<HttpResponse, ApiError> {
    if !is_fragment(req.headers()) {
        let url = format!("/ui/cases?{}", req.query_string());
        return Ok(full_page(&req, &state, pages::loading(lang(&req), &url)));
    }
    let rows = case::list(&state, &filter)?;
    Ok(html(StatusCode::OK, pages::history(lang(&req), &filter, &rows)))
}

/// Codes the edited sections (`record_id`, `s.{section key}`) into a new case.
async fn code_case(req: HttpRequest, d: Decision, state: web::Data<AppState>, form: web::Form<Vec<(String, String)>>) -> Result<HttpResponse, ApiError> {
    let mut record_id = String::new();
    let mut sections = Vec::new();
    for (k, v) in form.into_inner() {
        if k == "record_id" {
            record_id = v;
        } else if let Some(key) = k.strip_prefix("s.") {
            let s = Section::from_key(key).ok_or_else(|| ApiError::bad_request(format!("no section {key}")).at(k.clone()))?;
            sections.push((s, v.replace("\r\n", "\n")));
        }
    }
    let author = crate::server::resource_routes::reviewer(&req, &d);
    let id = crate::server::code_routes::on_coding_slot(state.clone(), move |st| case::create(st, &record_id, &sections, &author)).await?;
    let c = case::load(&state, &id)?;
    let mut resp = html(StatusCode::OK, pages::case(lang(&req), &c, allowed(&d)));
    resp.headers_mut().insert(header::HeaderName::from_static("hx-push-url"), header::HeaderValue::from_str(&format!("/ui/cases/{id}")).map_err(|e| ApiError::internal(e.to_string()))?);
    Ok(resp)
}

async fn open_case(req: HttpRequest, d: Decision, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    if !is_fragment(req.headers()) {
        return Ok(full_page(&req, &state, pages::loading(lang(&req), &format!("/ui/cases/{id}"))));
    }
    let c = case::load(&state, &id)?;
    Ok(html(StatusCode::OK, pages::case(lang(&req), &c, allowed(&d))))
}

#[derive(serde::Deserialize)]
struct Finish {
    version: i64,
    #[serde(default)]
    note: String,
    done: bool,
}

async fn finish_case(req: HttpRequest, d: Decision, state: web::Data<AppState>, id: web::Path<String>, form: web::Form<Finish>) -> Result<HttpResponse, ApiError> {
    let l = lang(&req);
    let who = crate::server::resource_routes::reviewer(&req, &d);
    let result = case::finish(&state, &id, form.version, form.done, &form.note, &who);
    let c = case::load(&state, &id)?;
    match result {
        Ok(()) => Ok(html(StatusCode::OK, pages::case(l, &c, allowed(&d)))),
        Err(e) if e.code == ErrorCode::VersionConflict => {
            let msg = l.t("此病例已被他人修改：已显示最新内容，您的备注未保存，请重新提交。", "Someone else changed this case: its latest state is shown and your note was not saved; submit again.");
            Ok(html(StatusCode::PRECONDITION_FAILED, maud::html! { (pages::message("conflict", msg)) (pages::case(l, &c, allowed(&d))) }))
        }
        Err(e) => Err(e),
    }
}

#[derive(serde::Deserialize)]
struct Review {
    version: i64,
    action: String,
    #[serde(default)]
    rank: usize,
    #[serde(default)]
    code: String,
    #[serde(default)]
    comment: String,
}

/// A review through the same path as `PUT Condition/{id}` with `If-Match`: the row comes back
/// with its new version, or, when someone else changed it first (412), with theirs and a
/// message; nothing the coder typed is stored over it.
async fn review(req: HttpRequest, d: Decision, state: web::Data<AppState>, path: web::Path<(String, String)>, form: web::Form<Review>) -> Result<HttpResponse, ApiError> {
    let l = lang(&req);
    let (ty, id) = path.into_inner();
    let who = crate::server::resource_routes::reviewer(&req, &d);
    let current = state.store.read(&ty, &id)?.ok_or_else(|| ApiError::not_found(format!("{ty}/{id} is not known")))?;
    let may = if ty == "Condition" { allowed(&d).review_conditions } else { allowed(&d).review_procedures };
    let outcome = Action::parse(&form.action)
        .and_then(|a| case::reviewed(&state, &current, a, &form.code, &form.comment, &who))
        .and_then(|r| crate::server::resource_routes::review(&state, &d, &who, &ty, &id, r, Some(form.version)));
    match outcome {
        Ok(stored) => Ok(html(StatusCode::OK, pages::code_row(l, form.rank, &stored, may, None))),
        Err(e) => {
            let (status, msg) = match e.code {
                ErrorCode::VersionConflict => (
                    StatusCode::PRECONDITION_FAILED,
                    l.t("此编码已被他人修改：已显示最新内容，请重新审核。", "Someone else changed this code: its latest state is shown; review it again.").to_owned(),
                ),
                _ => (e.status(), e.message.clone()),
            };
            let latest = state.store.read(&ty, &id)?.unwrap_or(current);
            Ok(html(status, pages::code_row(l, form.rank, &latest, may, Some(&msg))))
        }
    }
}

/// The code search box: the edition of the code under review, by name or code.
async fn codes(state: web::Data<AppState>, _d: Decision, form: web::Form<HashMap<String, String>>) -> Result<HttpResponse, ApiError> {
    let q = form.get("code").map(|s| s.trim()).unwrap_or("");
    let system = form.get("system").map(String::as_str).unwrap_or("");
    if q.is_empty() {
        return Ok(html(StatusCode::OK, pages::code_options(&[])));
    }
    let t = state.terminology();
    let cs = t.edition(system, None)?;
    // A code or its beginning (I25.1, 36.07) is looked up by code; words by name.
    let looks_like_code = q.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') && q.chars().any(|c| c.is_ascii_digit());
    let mut hits: Vec<(String, String)> = if looks_like_code {
        let upper = q.to_ascii_uppercase();
        cs.selectable().filter(|c| c.code.to_ascii_uppercase().starts_with(&upper)).take(15).map(|c| (c.code.clone(), c.name.clone())).collect()
    } else {
        Vec::new()
    };
    for c in t.search(q, &cs.meta.id, Some(&cs.meta.version), 15)?.into_iter().take(15usize.saturating_sub(hits.len())) {
        if !hits.iter().any(|(code, _)| *code == c.code) {
            hits.push((c.code, c.name));
        }
    }
    Ok(html(StatusCode::OK, pages::code_options(&hits)))
}

async fn export(req: HttpRequest, _d: Decision, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let pairs = crate::server::format::url_pairs(req.query_string());
    let format = pairs.iter().find(|(k, _)| k == "format").map(|(_, v)| v.as_str()).unwrap_or("xlsx");
    let ids: Vec<&str> = pairs.iter().filter(|(k, _)| k == "ids").map(|(_, v)| v.as_str()).collect();
    if ids.is_empty() {
        return Err(ApiError::bad_request("pick the cases to export").at("ids"));
    }
    if !matches!(format, "csv" | "xlsx") {
        return Err(ApiError::bad_request(format!("cases are exported as xlsx or csv, not {format}")).at("format"));
    }
    let cases = ids.iter().map(|id| case::load(&state, id)).collect::<Result<Vec<_>, _>>()?;
    let (body, ty, name) = match format {
        "csv" => (super::export::csv(&cases).map_err(ApiError::internal)?, "text/csv; charset=utf-8", "jointcoder-cases.csv"),
        _ => (super::export::xlsx(&cases).map_err(ApiError::internal)?, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "jointcoder-cases.xlsx"),
    };
    Ok(HttpResponse::Ok().content_type(ty).insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))).insert_header((header::CACHE_CONTROL, "no-store")).body(body))
}

/// Every coder decision as `jointcoder export-feedback` writes it.
async fn feedback(_d: Decision, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rows = state.store.feedback()?;
    let mut body = String::new();
    for f in &rows {
        body.push_str(&f.to_line().to_string());
        body.push('\n');
    }
    Ok(HttpResponse::Ok().content_type("application/x-ndjson").insert_header((header::CACHE_CONTROL, "no-store")).body(body))
}
