//! The coders' workbench (issue 16), fragment by fragment, against the real server on loopback
//! (its real store, pipeline and access guard): the page and its assets, a pasted record split,
//! coded, reviewed (accept, correct, reject, a stale review), reopened, marked done, exported
//! (CSV, XLSX read back, feedback JSONL); a batch upload with a bad row; every error state; and
//! the attacks: no token, too few scopes, another client's batch, a cross-site form.
mod common;

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{enc, request, Response};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

const SECRET: &str = "workbench-test-secret-0123456789abcdef";

fn open_server() -> &'static str {
    static S: OnceLock<common::TestServer> = OnceLock::new();
    &S.get_or_init(|| common::start_server(common::test_config(std::env::temp_dir()), common::terminology().clone())).addr
}

fn auth_server() -> &'static str {
    static S: OnceLock<common::TestServer> = OnceLock::new();
    &S.get_or_init(|| {
        let mut cfg = common::test_config(std::env::temp_dir());
        cfg.jwt = jointcoder::config::JwtConfig { hs256_secret: Some(SECRET.into()), ..Default::default() };
        common::start_server(cfg, common::terminology().clone())
    })
    .addr
}

fn token(sub: &str, scope: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    encode(&Header::new(Algorithm::HS256), &json!({ "sub": sub, "scope": scope, "exp": now + 600 }), &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&").into_bytes()
}

/// A request as htmx sends it from the page: `HX-Request`, a form body, same origin.
fn hx(addr: &str, method: &str, path: &str, auth: Option<&str>, body: &[u8]) -> Response {
    let bearer = auth.map(|t| format!("Bearer {t}"));
    let origin = format!("http://{addr}");
    let mut headers = vec![("HX-Request", "true"), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", origin.as_str()), ("Sec-Fetch-Site", "same-origin")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    request(addr, method, path, &headers, body)
}

fn ids(html: &str, ty: &str) -> Vec<String> {
    let re = regex::Regex::new(&format!(r#"id="row-{ty}-([0-9a-f-]+)""#)).unwrap();
    re.captures_iter(html).map(|c| c[1].to_owned()).collect()
}

fn row<'a>(html: &'a str, ty: &str, id: &str) -> &'a str {
    let start = html.find(&format!("id=\"row-{ty}-{id}\"")).unwrap_or_else(|| panic!("no row {ty}/{id} in {html}"));
    let end = html[start..].find("</tr>").map_or(html.len(), |e| start + e);
    &html[start..end]
}

const PASTED: &str = "主诉：发作性胸痛1月，加重3天。\n现病史：患者1月前活动后出现胸骨后压榨样疼痛。\n出院诊断：1.冠状动脉粥样硬化性心脏病 不稳定型心绞痛 2.高血压病3级（很高危） 3.2型糖尿病\n手术名称：冠状动脉造影术\n手术经过：穿刺右桡动脉，以5F TIG造影导管行冠脉造影示前降支近段狭窄50%，未行介入治疗。";

/// Pastes, checks the editor, codes: answers the case's HTML and id.
fn code_pasted(addr: &str, auth: Option<&str>, record_id: &str) -> (String, String) {
    let editor = hx(addr, "POST", "/ui/sections", auth, &form(&[("text", PASTED)]));
    assert_eq!(editor.status, 200, "{}", editor.body);
    assert!(editor.body.contains(r#"name="s.chief_complaint""#) && editor.body.contains("发作性胸痛1月"), "{}", editor.body);
    assert!(editor.body.contains(r#"name="s.operative_report""#) && editor.body.contains("未行介入治疗"), "the sections to edit");
    // The coder edits a section before coding: the edit is what is coded.
    let dx = "1.冠状动脉粥样硬化性心脏病 不稳定型心绞痛 2.高血压病3级（很高危） 3.2型糖尿病 4.高脂血症";
    let coded = hx(addr, "POST", "/ui/cases", auth, &form(&[
        ("record_id", record_id),
        ("s.chief_complaint", "发作性胸痛1月，加重3天。"),
        ("s.discharge_diagnosis", dx),
        ("s.procedure_name", "冠状动脉造影术"),
        ("s.operative_report", "穿刺右桡动脉，以5F TIG造影导管行冠脉造影示前降支近段狭窄50%，未行介入治疗。"),
    ]));
    assert_eq!(coded.status, 200, "{}", coded.body);
    let id = coded.header("HX-Push-Url").and_then(|u| u.strip_prefix("/ui/cases/")).expect("the case's URL is pushed, with its id only").to_owned();
    (coded.body, id)
}

#[test]
fn the_page_and_its_assets_are_served_in_two_languages_and_hold_no_data() {
    let addr = open_server();
    let page = request(addr, "GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    assert!(page.body.starts_with("<!DOCTYPE html>") && page.body.contains(r#"<html lang="zh-CN">"#));
    assert!(page.body.contains(r#"src="/static/htmx-2.0.11.min.js""#) && page.body.contains("编码工作台"));
    let fragment = request(addr, "GET", "/", &[("HX-Request", "true")], b"");
    assert_eq!(fragment.status, 200);
    assert!(!fragment.body.contains("<html") && fragment.body.contains(r#"id="input""#), "HX-Request gets the fragment only");
    let english = request(addr, "GET", "/?lang=en", &[], b"");
    assert!(english.body.contains(r#"<html lang="en">"#) && english.body.contains("coding workbench"));
    assert!(english.header("Set-Cookie").is_some_and(|c| c.starts_with("jc_lang=en")), "the choice is remembered");
    let remembered = request(addr, "GET", "/", &[("Cookie", "jc_lang=en")], b"");
    assert!(remembered.body.contains("Split into sections"));
    let htmx = request(addr, "GET", "/static/htmx-2.0.11.min.js", &[], b"");
    assert_eq!(htmx.status, 200);
    assert_eq!(htmx.bytes, std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/web/static/htmx-2.0.11.min.js")).unwrap(), "the committed htmx, embedded");
    assert!(htmx.header("Content-Type").unwrap().starts_with("text/javascript"));
    assert_eq!(request(addr, "GET", "/static/../Cargo.toml", &[], b"").status, 404);
    assert_eq!(request(addr, "GET", "/static/nothing.js", &[], b"").status, 404);
    // A case's page is the shell, which loads the case with the token: no data in it.
    let shell = request(addr, "GET", "/ui/cases/some-id", &[], b"");
    assert_eq!(shell.status, 200);
    assert!(shell.body.contains(r#"hx-get="/ui/cases/some-id""#) && shell.body.contains(r#"hx-trigger="load""#));
}

#[test]
fn a_pasted_record_is_coded_reviewed_reopened_finished_and_exported() {
    let addr = open_server();
    let (html, case) = code_pasted(addr, None, "WB-TEST-1");
    let conditions = ids(&html, "Condition");
    let procedures = ids(&html, "Procedure");
    assert!(conditions.len() >= 3 && !procedures.is_empty(), "{html}");
    assert!(html.contains("E78.500") || html.contains("高脂血症"), "the edited section was coded: {html}");
    assert!(html.contains(r#"<details class="stage">"#) && html.contains("prioritize (disease track)"), "a card per stage");
    assert!(html.contains(r#"class="ev""#) && html.contains(r#"data-section="discharge_diagnosis""#), "codes link to their evidence");
    assert!(html.contains(r#"<pre class="sec" data-section="discharge_diagnosis">"#), "the record text the offsets point into");

    // Accept the principal, correct one, reject another.
    let (c1, c2, c3) = (&conditions[0], &conditions[1], &conditions[2]);
    let review = |ty: &str, id: &str, pairs: &[(&str, &str)]| hx(addr, "POST", &format!("/ui/review/{ty}/{id}"), None, &form(pairs));
    let accepted = review("Condition", c1, &[("version", "1"), ("rank", "1"), ("action", "accept")]);
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert!(accepted.body.contains(r#"class="accepted""#) && accepted.body.contains(r#"name="version" value="2""#), "{}", accepted.body);
    let stale = review("Condition", c1, &[("version", "1"), ("rank", "1"), ("action", "reject")]);
    assert_eq!(stale.status, 412, "a review of a version since changed");
    assert!(stale.body.contains("已被他人修改") && stale.body.contains(r#"class="accepted""#), "the conflict shown with the latest state: {}", stale.body);
    let corrected = review("Condition", c2, &[("version", "1"), ("rank", "2"), ("action", "correct"), ("code", "I25.103"), ("comment", "按编码规则")]);
    assert_eq!(corrected.status, 200, "{}", corrected.body);
    assert!(corrected.body.contains(r#"class="corrected""#) && corrected.body.contains("<code>I25.103</code>") && corrected.body.contains("按编码规则"));
    let rejected = review("Condition", c3, &[("version", "1"), ("rank", "3"), ("action", "reject")]);
    assert!(rejected.status == 200 && rejected.body.contains(r#"class="rejected""#), "{}", rejected.body);
    let px = review("Procedure", &procedures[0], &[("version", "1"), ("rank", "1"), ("action", "accept")]);
    assert!(px.status == 200 && px.body.contains(r#"class="accepted""#), "{}", px.body);
    // Bad reviews: a code the edition does not have, an unknown action; nothing stored.
    let bad_code = review("Condition", c3, &[("version", "2"), ("rank", "3"), ("action", "correct"), ("code", "X99.999")]);
    assert_eq!(bad_code.status, 422, "{}", bad_code.body);
    assert!(bad_code.body.contains("X99.999") && bad_code.body.contains(r#"class="rejected""#), "the message, and the row as stored");
    assert_eq!(review("Condition", c3, &[("version", "2"), ("action", "approve")]).status, 400);
    assert_eq!(hx(addr, "POST", "/ui/review/Claim/x", None, &form(&[("version", "1"), ("action", "accept")])).status, 404);
    assert_eq!(review("Condition", "no-such-id", &[("version", "1"), ("action", "accept")]).status, 404);

    // The FHIR API sees the same reviews.
    let fhir = request(addr, "GET", &format!("/fhir/Condition/{c1}"), &[], b"").json();
    assert_eq!(fhir["verificationStatus"]["coding"][0]["code"], "confirmed");
    let fhir = request(addr, "GET", &format!("/fhir/Condition/{c3}"), &[], b"").json();
    assert_eq!(fhir["verificationStatus"]["coding"][0]["code"], "refuted");
    let composition = request(addr, "GET", &format!("/fhir/Composition/{case}"), &[], b"").json();
    assert_eq!(composition["identifier"]["value"], "WB-TEST-1", "the case is a Composition any client can read");

    // Reopened: the reviews are there.
    let reopened = hx(addr, "GET", &format!("/ui/cases/{case}"), None, b"");
    assert_eq!(reopened.status, 200);
    assert!(row(&reopened.body, "Condition", c1).contains(r#"class="accepted""#));
    assert!(row(&reopened.body, "Condition", c2).contains("<code>I25.103</code>"));
    assert!(row(&reopened.body, "Condition", c3).contains(r#"class="rejected""#));
    assert_eq!(hx(addr, "GET", "/ui/cases/no-such-case", None, b"").status, 404);

    // Done, with a note; a stale second submit is a conflict and keeps the first.
    let done = hx(addr, "POST", &format!("/ui/cases/{case}/finish"), None, &form(&[("version", "1"), ("note", "主要诊断已核对"), ("done", "true")]));
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("已完成") && done.body.contains("主要诊断已核对"));
    let stale = hx(addr, "POST", &format!("/ui/cases/{case}/finish"), None, &form(&[("version", "1"), ("note", "覆盖"), ("done", "true")]));
    assert_eq!(stale.status, 412);
    assert!(stale.body.contains("已被他人修改") && stale.body.contains("主要诊断已核对") && !stale.body.contains(">覆盖<"));

    // With authentication off the reviewer's name comes with the request (percent-encoded
    // UTF-8), kept as unverified; the history finds the case by it.
    let origin = format!("http://{addr}");
    let named = request(addr, "POST", &format!("/ui/cases/{case}/finish"), &[
        ("HX-Request", "true"), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", origin.as_str()), ("X-Jointcoder-User", "%E5%BC%A0%E4%B8%89"),
    ], &form(&[("version", "2"), ("note", "主要诊断已核对"), ("done", "true")]));
    assert_eq!(named.status, 200, "{}", named.body);
    assert!(named.body.contains("unverified:张三"), "{}", named.body);
    let by_reviewer = hx(addr, "GET", &format!("/ui/cases?reviewer={}", enc("张三")), None, b"");
    assert!(by_reviewer.body.contains(&format!(r#"value="{case}""#)), "{}", by_reviewer.body);

    // History: found by record id, status and date; not by another id.
    let today = &composition["date"].as_str().unwrap()[..10];
    let found = hx(addr, "GET", &format!("/ui/cases?q=WB-TEST-1&status=final&date={today}"), None, b"");
    assert!(found.status == 200 && found.body.contains(&format!(r#"value="{case}""#)), "{}", found.body);
    let none = hx(addr, "GET", "/ui/cases?q=NO-SUCH-RECORD", None, b"");
    assert!(!none.body.contains(&format!(r#"value="{case}""#)) && none.body.contains("没有符合条件的病例"));
    let part = hx(addr, "GET", "/ui/cases?q=test-1", None, b"");
    assert!(part.body.contains(&format!(r#"value="{case}""#)), "a part of the record id, any case: {}", part.body);
    let open_ones = hx(addr, "GET", "/ui/cases?q=WB-TEST-1&status=preliminary", None, b"");
    assert!(!open_ones.body.contains(&format!(r#"value="{case}""#)), "the case is done: {}", open_ones.body);

    // Any FHIR client finds the case by its record id, status and category (indexed search
    // parameters); a client's own Composition under the same record id is no case.
    let mut theirs = composition.clone();
    for k in ["id", "meta", "category", "extension", "attester"] {
        theirs.as_object_mut().unwrap().remove(k);
    }
    theirs["status"] = serde_json::json!("final");
    let posted = request(addr, "POST", "/fhir/Composition", &[("Content-Type", "application/fhir+json"), ("Origin", origin.as_str())], theirs.to_string().as_bytes());
    assert_eq!(posted.status, 201, "{}", posted.body);
    let searched = request(addr, "GET", "/fhir/Composition?identifier=urn:jointcoder:record-id%7CWB-TEST-1&status=final", &[], b"");
    let bundle: serde_json::Value = serde_json::from_str(&searched.body).unwrap();
    assert_eq!(bundle["total"], 2, "{}", searched.body);
    let cases = request(addr, "GET", &format!("/fhir/Composition?identifier=WB-TEST-1&category={}", enc(composition["category"][0]["coding"][0]["system"].as_str().unwrap()).to_owned() + "%7Ccoder-case"), &[], b"");
    let bundle: serde_json::Value = serde_json::from_str(&cases.body).unwrap();
    assert_eq!((bundle["total"].as_u64(), bundle["entry"][0]["resource"]["id"].as_str()), (Some(1), Some(case.as_str())), "{}", cases.body);
    let history = hx(addr, "GET", "/ui/cases?q=WB-TEST-1", None, b"");
    assert_eq!(history.body.matches(r#"name="ids""#).count(), 1, "only the case: {}", history.body);

    // Export: the paper's sheet, as reviewed (the rejected code left out, the correction in).
    let csv = request(addr, "GET", &format!("/ui/export?format=csv&ids={case}"), &[], b"");
    assert_eq!(csv.status, 200, "{}", csv.body);
    let mut lines = csv.body.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("病案标识,出院主要诊断编码,出院其他诊断编码1") && header.contains("主要手术操作编码"), "{header}");
    let first = lines.next().unwrap();
    assert!(first.starts_with("WB-TEST-1,") && first.contains("I25.103"), "{first}");
    let rejected_code = regex::Regex::new(r"<code>([^<]+)</code>").unwrap().captures(row(&reopened.body, "Condition", c3)).unwrap()[1].to_owned();
    assert!(!first.split(',').any(|c| c == rejected_code), "{rejected_code} was rejected: {first}");
    let xlsx = request(addr, "GET", &format!("/ui/export?format=xlsx&ids={case}"), &[], b"");
    assert_eq!(xlsx.status, 200);
    let back = jointcoder::record::io::read_bytes("cases.xlsx", &xlsx.bytes).unwrap();
    let csv_back = jointcoder::record::io::read_bytes("cases.csv", csv.body.as_bytes()).unwrap();
    assert_eq!(back.records[0].record_id, "WB-TEST-1");
    assert_eq!(back.records[0].gold, csv_back.records[0].gold, "the XLSX holds what the CSV does");
    assert!(back.records[0].gold.as_ref().unwrap().diseases.contains(&"I25.103".to_owned()));
    assert_eq!(request(addr, "GET", "/ui/export?format=pdf&ids=x", &[], b"").status, 400);
    assert_eq!(request(addr, "GET", "/ui/export?format=csv", &[], b"").status, 400);

    // Feedback: every decision, as export-feedback writes it.
    let feedback = request(addr, "GET", "/ui/feedback.jsonl", &[], b"");
    let decisions: Vec<String> = feedback.body.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["decision"].as_str().unwrap().to_owned()).collect();
    for d in ["accepted", "corrected", "rejected", "case-done"] {
        assert!(decisions.iter().any(|x| x == d), "{d} in {decisions:?}");
    }
}

#[test]
fn bad_input_gets_a_clear_error_and_stores_nothing() {
    let addr = open_server();
    let no_id = hx(addr, "POST", "/ui/cases", None, &form(&[("record_id", " "), ("s.discharge_diagnosis", "冠心病")]));
    assert_eq!(no_id.status, 400);
    assert!(no_id.json()["issue"][0]["diagnostics"].as_str().unwrap().contains("病案标识"));
    let nothing = hx(addr, "POST", "/ui/cases", None, &form(&[("record_id", "WB-EMPTY"), ("s.chief_complaint", "胸痛")]));
    assert_eq!(nothing.status, 422, "{}", nothing.body);
    let unknown = hx(addr, "POST", "/ui/cases", None, &form(&[("record_id", "WB-X"), ("s.no_such_section", "x")]));
    assert_eq!(unknown.status, 400);
    // By the records' own ids: the other tests of this binary store cases on the same server
    // meanwhile, so a count of all of them is no measure.
    for id in ["WB-EMPTY", "WB-X"] {
        let stored = request(addr, "GET", &format!("/fhir/Composition?identifier=urn:jointcoder:record-id%7C{id}&_summary=count"), &[], b"").json()["total"].as_i64().unwrap();
        assert_eq!(stored, 0, "nothing stored for {id}");
    }
    let upload = |name: &str, b64: &str| hx(addr, "POST", "/ui/upload", None, &form(&[("file_name", name), ("file_b64", b64)]));
    assert_eq!(upload("a.json", "%%%").status, 400, "not base64");
    let unknown_kind = upload("a.docx", "AAAA");
    assert_eq!(unknown_kind.status, 400);
    assert!(unknown_kind.body.contains(".xlsx"));
    assert_eq!(upload("", "").status, 400);
    assert_eq!(hx(addr, "POST", "/ui/example", None, &form(&[("n", "99")])).status, 404);
}

#[test]
fn a_batch_codes_its_good_rows_and_reports_the_bad_one() {
    use base64::Engine;
    let addr = open_server();
    let lines = [
        json!({ "record_id": "WB-B1", "出院诊断": "1.冠状动脉粥样硬化性心脏病 不稳定型心绞痛", "手术名称": "冠状动脉造影术" }).to_string(),
        "{\"record_id\": \"WB-B2\", \"出院诊断\": ".to_owned(),
        json!({ "record_id": "WB-B3", "出院诊断": "1.心房颤动 2.高血压病2级" }).to_string(),
    ];
    let b64 = base64::engine::general_purpose::STANDARD.encode(lines.join("\n"));
    let started = hx(addr, "POST", "/ui/upload", None, &form(&[("file_name", "batch.jsonl"), ("file_b64", &b64)]));
    assert_eq!(started.status, 200, "{}", started.body);
    let url = regex::Regex::new(r#"hx-get="(/ui/batch/[0-9a-f-]+)""#).unwrap().captures(&started.body).expect("the batch polls its state")[1].to_owned();
    let mut state = started.body.clone();
    for _ in 0..100 {
        if !state.contains("every 700ms") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        state = hx(addr, "GET", &url, None, b"").body;
    }
    assert!(!state.contains("every 700ms"), "the batch finished: {state}");
    assert_eq!(state.matches(r#"class="done""#).count(), 2, "{state}");
    assert_eq!(state.matches(r#"class="failed""#).count(), 1, "{state}");
    assert!(state.contains("invalid JSON") && state.contains("aria-valuenow=\"100\""), "the failed row says why: {state}");
    let (b1, bad, b3) = (state.find("WB-B1").unwrap(), state.find(r#"class="failed""#).unwrap(), state.find("WB-B3").unwrap());
    assert!(b1 < bad && bad < b3, "rows in the file's order: {state}");
    assert!(state.contains("/ui/cases/"), "done rows open their case");
    assert_eq!(hx(addr, "GET", "/ui/batch/not-a-batch", None, b"").status, 404);
}

#[test]
fn with_authentication_on_fragments_need_a_token_and_scopes_and_clients_are_kept_apart() {
    let addr = auth_server();
    // The shell is public and empty; the data is not.
    let shell = request(addr, "GET", "/", &[], b"");
    assert_eq!(shell.status, 200);
    assert!(shell.body.contains("token-dialog"), "with auth on the page asks for a token");
    assert_eq!(hx(addr, "GET", "/ui/cases", None, b"").status, 401);
    assert_eq!(hx(addr, "POST", "/ui/sections", None, &form(&[("text", PASTED)])).status, 401);
    assert_eq!(hx(addr, "GET", "/ui/whoami", None, b"").status, 401);
    let forged = format!("{}x", token("coder-1", "user/*.*"));
    assert_eq!(hx(addr, "GET", "/ui/cases", Some(&forged), b"").status, 401, "identity comes only from a verified token");

    let coder = token("coder-1", "user/*.cruds");
    let who = hx(addr, "GET", "/ui/whoami", Some(&coder), b"");
    assert!(who.status == 200 && who.body.contains("coder-1"));
    let (html, case) = code_pasted(addr, Some(&coder), "WB-AUTH-1");
    assert!(html.contains("review-form"));

    // A reader sees the case without review controls, and cannot review or code.
    let reader = token("auditor", "user/*.rs");
    let seen = hx(addr, "GET", &format!("/ui/cases/{case}"), Some(&reader), b"");
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert!(!seen.body.contains("review-form") && !seen.body.contains("标记完成"), "what the scopes do not allow is hidden");
    let c1 = &ids(&html, "Condition")[0];
    let refused = hx(addr, "POST", &format!("/ui/review/Condition/{c1}"), Some(&reader), &form(&[("version", "1"), ("action", "reject")]));
    assert_eq!(refused.status, 403);
    assert_eq!(hx(addr, "POST", "/ui/cases", Some(&reader), &form(&[("record_id", "WB-NO"), ("s.discharge_diagnosis", "冠心病")])).status, 403);
    let stored = request(addr, "GET", &format!("/fhir/Condition/{c1}"), &[("Authorization", &format!("Bearer {reader}"))], b"").json();
    assert_eq!(stored["meta"]["versionId"], "1", "the refused review changed nothing");
    // A patient-scoped token cannot be enforced on the workbench: refused, not widened.
    let patient = token("patient-app", "patient/*.rs");
    assert_eq!(hx(addr, "GET", &format!("/ui/cases/{case}"), Some(&patient), b"").status, 403);

    // One client's batch is not another's.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{}\n{}", json!({ "record_id": "WB-A1", "出院诊断": "冠心病" }), json!({ "record_id": "WB-A2", "出院诊断": "房颤" })));
    let started = hx(addr, "POST", "/ui/upload", Some(&coder), &form(&[("file_name", "b.jsonl"), ("file_b64", &b64)]));
    assert_eq!(started.status, 200, "{}", started.body);
    let url = regex::Regex::new(r#"hx-get="(/ui/batch/[0-9a-f-]+)""#).unwrap().captures(&started.body).unwrap()[1].to_owned();
    let other = token("coder-2", "user/*.cruds");
    assert_eq!(hx(addr, "GET", &url, Some(&other), b"").status, 404);
    assert_eq!(hx(addr, "GET", &url, Some(&coder), b"").status, 200);
}

#[test]
fn with_authentication_off_other_sites_cannot_post_to_the_workbench() {
    let addr = open_server();
    let body = form(&[("record_id", "WB-CSRF"), ("s.discharge_diagnosis", "冠心病")]);
    let evil = request(addr, "POST", "/ui/cases", &[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", "http://evil.example")], &body);
    assert_eq!(evil.status, 403, "{}", evil.body);
    let cross = request(addr, "POST", "/ui/cases", &[("Content-Type", "application/x-www-form-urlencoded"), ("Sec-Fetch-Site", "cross-site")], &body);
    assert_eq!(cross.status, 403);
    let found = hx(addr, "GET", "/ui/cases?q=WB-CSRF", None, b"");
    assert!(!found.body.contains("/ui/cases/0"), "nothing was coded: {}", found.body);
}
