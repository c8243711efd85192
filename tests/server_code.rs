//! `$code` on a real server on loopback: a Chinese discharge document in, valid R4 resources of
//! the documented shapes out; bad input answered with OperationOutcomes, never a 500.
mod common;

use std::collections::HashSet;
use std::sync::OnceLock;

use base64::Engine;
use common::{assert_valid_r4, post_json, request};
use jointcoder::terminology::{Terminology, TerminologyOptions};
use serde_json::{json, Value};

fn test_server() -> &'static common::TestServer {
    static S: OnceLock<common::TestServer> = OnceLock::new();
    S.get_or_init(|| {
        let t = Terminology::load(&TerminologyOptions::new(common::terminology_dir())).unwrap();
        common::start_server(common::test_config(std::env::temp_dir()), t)
    })
}

fn server() -> &'static str {
    &test_server().addr
}

fn example_bundle() -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requests/discharge-bundle.json")).unwrap()
}

fn resources<'a>(bundle: &'a Value, ty: &str) -> Vec<&'a Value> {
    bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).filter(|r| r["resourceType"] == ty).collect()
}

fn codes(rs: &[&Value]) -> Vec<String> {
    rs.iter().map(|r| r["code"]["coding"][0]["code"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn document_bundle_is_coded_into_valid_r4_resources() {
    let r = post_json(server(), "/fhir/Bundle/$code", &example_bundle());
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    assert_valid_r4(&b);
    for e in b["entry"].as_array().unwrap() {
        assert_valid_r4(&e["resource"]);
    }
    common::assert_valid_r4_external(std::slice::from_ref(&b));
    let conditions = resources(&b, "Condition");
    let procedures = resources(&b, "Procedure");
    assert_eq!(codes(&conditions)[0], "I20.000", "principal diagnosis first");
    let px: HashSet<String> = codes(&procedures).into_iter().collect();
    let want: HashSet<String> = ["36.0700", "00.6600x004", "88.5500", "00.4100", "00.4600"].iter().map(|s| s.to_string()).collect();
    assert_eq!(px, want);
    assert_eq!(codes(&procedures)[0], "36.0700");

    let c = conditions[0];
    assert_eq!(c["subject"]["reference"], "Patient/example-zhang");
    assert_eq!(c["encounter"]["reference"], "Encounter/example-adm-1");
    assert_eq!(c["verificationStatus"]["coding"][0]["code"], "provisional");
    assert_eq!(c["category"][0]["coding"][0]["code"], "encounter-diagnosis");
    assert_eq!(c["meta"]["security"][0]["code"], "AIAST");
    let coding = &c["code"]["coding"][0];
    assert_eq!(coding["system"], "https://jointcoder.org/fhir/CodeSystem/icd-10-cn-clinical");
    assert_eq!(coding["version"], "2.0");
    assert_eq!(coding["display"], "不稳定型心绞痛");
    let conf = coding["extension"][0]["valueDecimal"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&conf));
    let rank = c["extension"].as_array().unwrap().iter().find(|e| e["url"].as_str().unwrap().ends_with("diagnosis-rank")).unwrap();
    assert_eq!(rank["valueInteger"], 1);
    let ev = c["extension"].as_array().unwrap().iter().find(|e| e["url"].as_str().unwrap().ends_with("/evidence")).unwrap();
    assert_eq!(ev["extension"][0]["valueCode"], "discharge_diagnosis");

    // One Provenance per stage that ran (4 disease + 6 procedure), each with a Device agent.
    let provs = resources(&b, "Provenance");
    assert_eq!(provs.len(), 10);
    let devices: HashSet<String> = resources(&b, "Device").iter().map(|d| d["deviceName"][0]["name"].as_str().unwrap().to_owned()).collect();
    assert!(devices.contains("jointcoder mine-procedures"), "{devices:?}");
    let mine = provs.iter().find(|p| p["activity"]["coding"][0]["code"] == "mine").unwrap();
    let out: Value = serde_json::from_str(mine["extension"][0]["valueString"].as_str().unwrap()).unwrap();
    assert!(out["added"].as_array().unwrap().iter().any(|a| a == "36.0700"), "the stage output is recoverable");
    assert_eq!(mine["entity"][0]["what"]["reference"], "Composition/discharge-jc-pci-0001");

    let claim = resources(&b, "Claim")[0];
    assert_eq!(claim["status"], "draft");
    assert_eq!(claim["diagnosis"][0]["sequence"], 1);
    assert_eq!(claim["diagnosis"][0]["type"][0]["coding"][0]["code"], "principal");
    // The other diagnoses use a code of ex-diagnosistype (R4 has no "secondary" there).
    assert_eq!(claim["diagnosis"][1]["type"][0]["coding"][0]["code"], "discharge");
    assert_eq!(claim["procedure"][0]["type"][0]["coding"][0]["code"], "primary");
    let systems: Vec<&str> = claim["diagnosis"][0]["diagnosisCodeableConcept"]["coding"].as_array().unwrap().iter().map(|c| c["system"].as_str().unwrap()).collect();
    assert!(systems.iter().any(|s| s.ends_with("icd-10-cn-insurance")), "insurance-edition coding added: {systems:?}");
}

#[test]
fn composition_document_reference_and_parameters_are_accepted() {
    let bundle: Value = serde_json::from_str(&example_bundle()).unwrap();
    let comp = bundle["entry"][0]["resource"].clone();
    let r = post_json(server(), "/fhir/Composition/$code", &comp.to_string());
    assert_eq!(r.status, 200, "{}", r.body);

    let text = "主诉：心悸3年。\n出院诊断：1.心律失常 阵发性心房颤动 2.高血压病2级（很高危）\n手术名称：经导管心脏射频消融术\n手术经过：行心内电生理检查，于左房行环肺静脉电隔离。";
    let doc = json!({
        "resourceType": "DocumentReference", "id": "dr1", "status": "current",
        "subject": { "reference": "Patient/p9" },
        "content": [{ "attachment": { "contentType": "text/plain; charset=utf-8", "data": base64::engine::general_purpose::STANDARD.encode(text) } }]
    });
    let r = post_json(server(), "/fhir/DocumentReference/$code", &doc.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    let dx = codes(&resources(&b, "Condition"));
    assert!(dx.contains(&"I48.x02".to_string()), "{dx:?}");
    assert_eq!(resources(&b, "Procedure")[0]["subject"]["reference"], "Patient/p9");

    let flat = json!({ "病案标识": "F1", "出院诊断": "冠心病", "手术名称": "冠状动脉造影术" }).to_string();
    let doc = json!({
        "resourceType": "DocumentReference", "status": "current",
        "content": [{ "attachment": { "contentType": "application/json", "data": base64::engine::general_purpose::STANDARD.encode(flat) } }]
    });
    let params = json!({ "resourceType": "Parameters", "parameter": [{ "name": "resource", "resource": doc }] });
    let r = post_json(server(), "/fhir/$code", &params.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    common::assert_valid_r4_external(std::slice::from_ref(&b));
    assert_eq!(codes(&resources(&b, "Condition")), vec!["I25.103"]);
    assert_eq!(resources(&b, "Condition")[0]["subject"]["identifier"]["value"], "F1");
}

#[test]
fn bad_input_gets_the_right_outcome_and_status() {
    let mut outcomes = Vec::new();
    let mut expect = |status: u16, r: common::Response, what: &str| {
        assert_eq!(r.status, status, "{what}: {}", r.body);
        let oo = r.json();
        assert_eq!(oo["resourceType"], "OperationOutcome", "{what}");
        assert_valid_r4(&oo);
        outcomes.push(oo);
    };
    expect(400, post_json(server(), "/fhir/Bundle/$code", "{\"resourceType\": "), "malformed JSON");
    expect(400, post_json(server(), "/fhir/Bundle/$code", r#"{"resourceType":"Patient"}"#), "wrong resourceType");
    expect(400, post_json(server(), "/fhir/Bundle/$code", r#"{"resourceType":"Bundle","type":"collection","entry":[]}"#), "not a document");
    let no_sections = json!({ "resourceType": "Composition", "section": [{ "title": "主诉", "text": { "div": "<div>胸痛</div>" } }] });
    expect(422, post_json(server(), "/fhir/Composition/$code", &no_sections.to_string()), "no usable section");
    let bad64 = json!({ "resourceType": "DocumentReference", "content": [{ "attachment": { "contentType": "text/plain", "data": "***" } }] });
    expect(400, post_json(server(), "/fhir/DocumentReference/$code", &bad64.to_string()), "invalid base64");
    let not_utf8 = json!({ "resourceType": "DocumentReference", "content": [{ "attachment": { "contentType": "text/plain", "data": "/w==" } }] });
    expect(400, post_json(server(), "/fhir/DocumentReference/$code", &not_utf8.to_string()), "non-UTF-8 attachment");
    expect(400, request(server(), "POST", "/fhir/Bundle/$code", &[("Content-Type", "application/fhir+json")], &[0xff, 0xfe, 0x7b]), "non-UTF-8 body");
    expect(415, request(server(), "POST", "/fhir/Bundle/$code", &[("Content-Type", "application/fhir+xml")], b"<Bundle/>"), "XML body");
    let big = vec![b' '; 9 * 1024 * 1024];
    expect(413, request(server(), "POST", "/fhir/Bundle/$code", &[("Content-Type", "application/fhir+json")], &big), "body over the limit");
    expect(400, post_json(server(), "/fhir/Bundle/$code?persist=maybe", &example_bundle()), "persist not a boolean");
    expect(404, common::get(server(), "/fhir/Condition/no-such-id"), "unknown id");
    expect(404, common::get(server(), "/fhir/Patient/x"), "type not served");
    expect(400, request(server(), "GET", "/fhir/Condition?colour=red", &[("Prefer", "handling=strict")], b""), "unknown search parameter, strict");
    common::assert_valid_r4_external(&outcomes);
}

/// Edition and version pins: a track coded against the edition asked for, and an unknown
/// edition, version or parameter refused with a 400 before anything is coded or stored.
#[test]
fn editions_and_versions_can_be_pinned() {
    let pinned = post_json(server(), "/fhir/Bundle/$code?persist=false&diagnosisSystem=icd-10-cn-insurance&procedureVersion=3.0", &example_bundle());
    assert_eq!(pinned.status, 200, "{}", pinned.body);
    let b = pinned.json();
    let conditions = resources(&b, "Condition");
    assert!(!conditions.is_empty());
    for c in &conditions {
        let coding = &c["code"]["coding"][0];
        assert!(coding["system"].as_str().unwrap().ends_with("/icd-10-cn-insurance"), "{coding}");
        assert_eq!(coding["version"], "2.0");
    }
    for p in resources(&b, "Procedure") {
        assert!(p["code"]["coding"][0]["system"].as_str().unwrap().ends_with("/icd-9-cm-3-cn-clinical"));
        assert_eq!(p["code"]["coding"][0]["version"], "3.0");
    }

    let refused = |path: &str, body: &str, what: &str| {
        let r = post_json(server(), path, body);
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        let oo = r.json();
        assert_eq!(oo["resourceType"], "OperationOutcome", "{what}");
        oo["issue"][0]["diagnostics"].as_str().unwrap_or_default().to_owned()
    };
    let msg = refused("/fhir/Bundle/$code?diagnosisVersion=9.9", &example_bundle(), "unknown version");
    assert!(msg.contains("9.9"), "{msg}");
    let msg = refused("/fhir/Bundle/$code?diagnosisSystem=icd-99", &example_bundle(), "unknown edition");
    assert!(msg.contains("icd-99"), "{msg}");
    let msg = refused("/fhir/Bundle/$code?diagnosisSystem=icd-9-cm-3-cn-clinical", &example_bundle(), "procedure edition for diagnoses");
    assert!(msg.contains("diagnoses"), "{msg}");
    refused("/fhir/Bundle/$code?colour=red", &example_bundle(), "unknown parameter");
    let bundle: Value = serde_json::from_str(&example_bundle()).unwrap();
    let params = json!({ "resourceType": "Parameters", "parameter": [
        { "name": "resource", "resource": bundle },
        { "name": "procedureVersion", "valueString": "0.1" }
    ]});
    let msg = refused("/fhir/$code", &params.to_string(), "unknown version in Parameters");
    assert!(msg.contains("0.1"), "{msg}");
}

#[test]
fn operation_definition_is_published_and_listed() {
    let od = common::get(server(), "/fhir/OperationDefinition/code").json();
    assert_valid_r4(&od);
    let cap = common::get(server(), "/fhir/metadata").json();
    common::assert_valid_r4_external(&[od.clone(), cap]);
    assert_eq!(od["code"], "code");
    let cap = common::get(server(), "/fhir/metadata").json();
    assert_eq!(cap["rest"][0]["operation"][0]["name"], "code");
}

#[test]
fn coded_resources_are_stored_read_searched_and_resubmission_is_idempotent() {
    let headers = [("Content-Type", "application/fhir+json"), ("If-None-Exist", "identifier=urn:example:hospital:discharge|JC-PCI-0001")];
    let first = request(server(), "POST", "/fhir/Bundle/$code", &headers, example_bundle().as_bytes()).json();
    let second = request(server(), "POST", "/fhir/Bundle/$code", &headers, example_bundle().as_bytes()).json();
    let claim_id = |b: &Value| resources(b, "Claim")[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(claim_id(&first), claim_id(&second), "the same document coded twice is one Claim");

    let cond = resources(&first, "Condition")[0];
    let id = cond["id"].as_str().unwrap();
    assert_eq!(cond["meta"]["versionId"], "1");
    let r = common::get(server(), &format!("/fhir/Condition/{id}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert_eq!(r.json()["code"]["coding"][0]["code"], "I20.000");
    let h = common::get(server(), &format!("/fhir/Condition/{id}/_history")).json();
    assert_eq!(h["type"], "history");
    assert_eq!(common::get(server(), &format!("/fhir/Condition/{id}/_history/1")).status, 200);
    assert_eq!(common::get(server(), &format!("/fhir/Condition/{id}/_history/2")).status, 404);

    // Search by subject and code; only the resources of that patient come back.
    let s = common::get(server(), "/fhir/Condition?subject=Patient/example-zhang&code=I20.000").json();
    common::assert_valid_r4_external(std::slice::from_ref(&s));
    assert!(s["total"].as_u64().unwrap() >= 1);
    assert!(s["entry"].as_array().unwrap().iter().all(|e| e["resource"]["subject"]["reference"] == "Patient/example-zhang"));
    let claims = common::get(server(), "/fhir/Claim?patient=Patient/example-zhang&_lastUpdated=ge2000-01-01").json();
    assert!(claims["entry"].as_array().unwrap().iter().any(|e| e["resource"]["id"] == claim_id(&first).as_str()));
    let provs = common::get(server(), &format!("/fhir/Provenance?target=Condition/{id}")).json();
    assert!(provs["total"].as_u64().unwrap() >= 2, "the stages that shaped the principal diagnosis");
    // Paging: _count=2 gives a next link that continues where the page ended.
    let page = common::get(server(), "/fhir/Procedure?subject=Patient/example-zhang&_count=2").json();
    assert_eq!(page["entry"].as_array().unwrap().len(), 2);
    let next = page["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next").expect("next link");
    let path = next["url"].as_str().unwrap().split_once("/fhir").unwrap().1.to_owned();
    let page2 = common::get(server(), &format!("/fhir{path}")).json();
    assert_ne!(page2["entry"][0]["resource"]["id"], page["entry"][0]["resource"]["id"]);

    // persist=false codes without storing.
    let r = post_json(server(), "/fhir/Bundle/$code?persist=false", &example_bundle()).json();
    let cid = resources(&r, "Claim")[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(common::get(server(), &format!("/fhir/Claim/{cid}")).status, 404);
}

#[test]
fn coders_review_with_versions_and_the_feedback_is_exported() {
    let b = post_json(server(), "/fhir/Bundle/$code", &example_bundle()).json();
    let mut cond = resources(&b, "Condition")[1].clone();
    let id = cond["id"].as_str().unwrap().to_owned();
    let path = format!("/fhir/Condition/{id}");
    let put = |body: &Value, if_match: &str| {
        request(server(), "PUT", &path, &[("Content-Type", "application/fhir+json"), ("If-Match", if_match), ("X-Jointcoder-User", "coder-li")], body.to_string().as_bytes())
    };
    // Confirm it.
    cond["verificationStatus"]["coding"][0]["code"] = json!("confirmed");
    let r = put(&cond, "W/\"1\"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    // A stale version is refused, and nothing changes.
    cond["verificationStatus"]["coding"][0]["code"] = json!("refuted");
    assert_eq!(put(&cond, "W/\"1\"").status, 412);
    assert_eq!(common::get(server(), &path).json()["verificationStatus"]["coding"][0]["code"], "confirmed");
    // Recode it to another real code; an invented code is refused.
    cond["code"]["coding"][0]["code"] = json!("I25.102");
    cond["code"]["coding"][0]["display"] = json!("冠状动脉粥样硬化");
    cond["verificationStatus"]["coding"][0]["code"] = json!("confirmed");
    let mut bad = cond.clone();
    bad["code"]["coding"][0]["code"] = json!("I25.999999");
    assert_eq!(put(&bad, "W/\"2\"").status, 422);
    assert_eq!(put(&cond, "W/\"2\"").status, 200);
    let h = common::get(server(), &format!("{path}/_history")).json();
    assert_eq!(h["total"], 3);
    // Newest first; the create is a POST/201, each review a PUT/200 of the instance.
    let entries = h["entry"].as_array().unwrap();
    assert_eq!(entries[0]["resource"]["meta"]["versionId"], "3");
    assert_eq!((entries[0]["request"]["method"].as_str(), entries[0]["response"]["status"].as_str()), (Some("PUT"), Some("200 OK")));
    assert_eq!(entries[0]["request"]["url"], format!("Condition/{id}").as_str());
    assert_eq!((entries[2]["request"]["method"].as_str(), entries[2]["response"]["status"].as_str()), (Some("POST"), Some("201 Created")));
    // Last-Modified is an HTTP date (RFC 7231), the FHIR instant stays in meta.
    let r = common::get(server(), &path);
    let lm = r.header("last-modified").unwrap().to_owned();
    assert!(lm.ends_with(" GMT") && lm.len() == 29 && lm.as_bytes()[3] == b',', "{lm}");
    let s = common::get(server(), &format!("/fhir/Condition?code=I25.102&verification-status=confirmed")).json();
    assert!(s["entry"].as_array().unwrap().iter().any(|e| e["resource"]["id"] == id.as_str()), "search sees the reviewed version");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jointcoder"))
        .arg("--data-dir")
        .arg(test_server().data.path())
        .arg("export-feedback")
        .env("JOINTCODER_TERMINOLOGY_DIR", common::terminology_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mine: Vec<&Value> = lines.iter().filter(|l| l["id"] == id.as_str()).collect();
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[0]["decision"], "accepted");
    assert_eq!(mine[0]["who"], "unverified:coder-li", "with auth off the header name is kept, marked unverified");
    assert_eq!(mine[1]["decision"], "recoded");
    assert_eq!(mine[1]["before"]["code"], "I25.103");
    assert_eq!(mine[1]["after"]["code"], "I25.102");
}

/// Polls an export job's status until its manifest is there.
fn finished_export(status_path: &str) -> Value {
    loop {
        let s = common::get(server(), status_path);
        if s.status == 200 {
            return s.json();
        }
        assert_eq!(s.status, 202, "{}", s.body);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn bulk_export_writes_ndjson_for_billing() {
    let coded = post_json(server(), "/fhir/Bundle/$code", &example_bundle()).json();
    let claim_id = resources(&coded, "Claim")[0]["id"].as_str().unwrap().to_owned();

    let r = common::get(server(), "/fhir/$export?_type=Claim");
    assert_eq!(r.status, 400, "asynchronous only: {}", r.body);
    let async_get = |path: &str| request(server(), "GET", path, &[("Prefer", "respond-async")], b"");
    let r = async_get("/fhir/$export?_type=Claim,Condition,Procedure");
    assert_eq!(r.status, 202, "{}", r.body);
    let status_url = r.header("content-location").unwrap().to_owned();
    let status_path = format!("/fhir{}", status_url.split_once("/fhir").unwrap().1);
    let manifest = loop {
        let s = common::get(server(), &status_path);
        if s.status == 200 {
            break s.json();
        }
        assert_eq!(s.status, 202);
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // The manifest names the kick-off request as sent, the base once.
    let req_url = manifest["request"].as_str().unwrap();
    assert!(req_url.ends_with("/fhir/$export?_type=Claim,Condition,Procedure") && !req_url.contains("/fhir/fhir/"), "{req_url}");
    let outputs = manifest["output"].as_array().unwrap();
    assert_eq!(outputs.iter().map(|o| o["type"].as_str().unwrap()).collect::<Vec<_>>(), vec!["Claim", "Condition", "Procedure"]);
    let claim_out = &outputs[0];
    let file_path = format!("/fhir{}", claim_out["url"].as_str().unwrap().split_once("/fhir").unwrap().1);
    let f = common::get(server(), &file_path);
    assert_eq!(f.header("content-type"), Some("application/fhir+ndjson"));
    let claims: Vec<Value> = f.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(claims.len() as u64, claim_out["count"].as_u64().unwrap());
    assert!(claims.iter().all(|c| c["resourceType"] == "Claim"));
    assert!(claims.iter().any(|c| c["id"] == claim_id.as_str()));
    common::assert_valid_r4_external(&claims[..claims.len().min(3)]);

    // POST with a Parameters body (Bulk Data IG v2; @medplum/core's bulkExport sends it).
    let params = json!({ "resourceType": "Parameters", "parameter": [{ "name": "_type", "valueString": "Claim" }, { "name": "_outputFormat", "valueString": "application/fhir+ndjson" }] });
    let r = request(server(), "POST", "/fhir/$export", &[("Prefer", "respond-async"), ("Content-Type", "application/fhir+json")], params.to_string().as_bytes());
    assert_eq!(r.status, 202, "{}", r.body);
    let poll = format!("/fhir{}", r.header("content-location").unwrap().split_once("/fhir").unwrap().1);
    let m = finished_export(&poll);
    assert_eq!(m["output"].as_array().unwrap().iter().map(|o| o["type"].as_str().unwrap()).collect::<Vec<_>>(), vec!["Claim"]);
    let bad = json!({ "resourceType": "Parameters", "parameter": [{ "name": "_type", "valueString": "Patient" }] });
    let r = request(server(), "POST", "/fhir/$export", &[("Prefer", "respond-async"), ("Content-Type", "application/fhir+json")], bad.to_string().as_bytes());
    assert_eq!(r.status, 400, "{}", r.body);

    // _since after everything: nothing to export.
    let r = async_get("/fhir/Patient/$export?_type=Claim&_since=2999-01-01T00:00:00Z");
    let path = format!("/fhir{}", r.header("content-location").unwrap().split_once("/fhir").unwrap().1);
    let m = finished_export(&path);
    assert_eq!(m["output"][0]["count"], 0);
    // Cancel: the job and its files are gone.
    assert_eq!(request(server(), "DELETE", &path, &[], b"").status, 202);
    assert_eq!(common::get(server(), &path).status, 404);
    assert_eq!(async_get("/fhir/Patient/$export?_type=Device").status, 400, "Devices are not in the patient compartment");
}

#[test]
fn stored_documents_and_binaries_are_coded_at_instance_level() {
    let text = "出院诊断：1.心律失常 三度房室传导阻滞 2.高血压病2级（很高危）\n手术名称：双腔永久起搏器植入术\n手术经过：行双腔永久起搏器植入，心房、心室电极导线固定良好。";
    let binary = json!({ "resourceType": "Binary", "contentType": "text/plain", "data": base64::engine::general_purpose::STANDARD.encode(text) });
    let r = post_json(server(), "/fhir/Binary", &binary.to_string());
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.header("location").unwrap().contains("/fhir/Binary/"));
    let bin_id = r.json()["id"].as_str().unwrap().to_owned();

    let doc = json!({ "resourceType": "DocumentReference", "status": "current", "subject": { "reference": "Patient/p7" },
        "content": [{ "attachment": { "contentType": "text/plain", "url": format!("Binary/{bin_id}") } }] });
    let r = post_json(server(), "/fhir/DocumentReference", &doc.to_string());
    assert_eq!(r.status, 201, "{}", r.body);
    let doc_id = r.json()["id"].as_str().unwrap().to_owned();
    let r = post_json(server(), &format!("/fhir/DocumentReference/{doc_id}/$code"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    assert_eq!(codes(&resources(&b, "Procedure")), vec!["37.8301", "37.7200"]);
    assert_eq!(codes(&resources(&b, "Condition"))[0], "I44.200", "what the pacemaker treated is principal");
    assert_eq!(resources(&b, "Provenance")[0]["entity"][0]["what"]["reference"], format!("DocumentReference/{doc_id}"));

    let bundle: Value = serde_json::from_str(&example_bundle()).unwrap();
    let composition = bundle["entry"][0]["resource"].to_string();
    // Without If-None-Exist each POST creates; with it, the same document again is the first.
    let once = |h: &[(&str, &str)]| request(server(), "POST", "/fhir/Composition", &[&[("Content-Type", "application/fhir+json")], h].concat(), composition.as_bytes());
    let (x, y) = (once(&[]), once(&[]));
    assert_eq!((x.status, y.status), (201, 201));
    assert_ne!(x.json()["id"], y.json()["id"]);
    let cond = [("If-None-Exist", "identifier=urn:example:hospital:discharge|JC-PCI-0001-stored")];
    let (x, y) = (once(&cond), once(&cond));
    assert_eq!((x.status, y.status), (201, 200), "{}", y.body);
    assert_eq!(x.json()["id"], y.json()["id"]);
    // The same criteria in the query of the POST (fhirpy's get_or_create) are the same key.
    let by_query = request(server(), "POST", "/fhir/Composition?identifier=urn%3Aexample%3Ahospital%3Adischarge%7CJC-PCI-0001-stored", &[("Content-Type", "application/fhir+json")], composition.as_bytes());
    assert_eq!((by_query.status, &by_query.json()["id"]), (200, &x.json()["id"]), "{}", by_query.body);
    let cap = common::get(server(), "/fhir/metadata").json();
    let comp = cap["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Composition").unwrap().clone();
    assert_eq!(comp["conditionalCreate"], true);
    assert!(comp["interaction"].as_array().unwrap().iter().any(|i| i["code"] == "create"));
    assert!(cap["rest"][0]["resource"].as_array().unwrap().iter().any(|r| r["type"] == "Binary"));
    let r = post_json(server(), "/fhir/Composition", &composition);
    assert_eq!(r.status, 201);
    let comp_id = r.json()["id"].as_str().unwrap().to_owned();
    let r = post_json(server(), &format!("/fhir/Composition/{comp_id}/$code?persist=false"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(codes(&resources(&r.json(), "Procedure"))[0], "36.0700");

    assert_eq!(post_json(server(), "/fhir/Composition/nope/$code", "").status, 404);
    let missing = json!({ "resourceType": "DocumentReference", "content": [{ "attachment": { "contentType": "text/plain", "url": "Binary/nope" } }] });
    assert_eq!(post_json(server(), "/fhir/DocumentReference/$code", &missing.to_string()).status, 422);
    assert_eq!(post_json(server(), "/fhir/Binary", r#"{"resourceType":"Binary","contentType":"text/plain","data":"***"}"#).status, 400);
    assert_eq!(post_json(server(), "/fhir/Claim", r#"{"resourceType":"Claim"}"#).status, 405, "Claims come from $code only");
}

/// Issue 14, item 1: a write that is not valid R4, or that a review may not make, is refused
/// with an OperationOutcome naming the path, and nothing is stored (not re-run against the old
/// code, where each of these PUTs was a 200).
#[test]
fn writes_that_are_not_valid_r4_are_refused_and_nothing_is_stored() {
    let b = post_json(server(), "/fhir/Bundle/$code", &example_bundle()).json();
    let cond = resources(&b, "Condition")[0].clone();
    let id = cond["id"].as_str().unwrap().to_owned();
    let path = format!("/fhir/Condition/{id}");
    let put = |body: &Value| request(server(), "PUT", &path, &[("Content-Type", "application/fhir+json"), ("If-Match", "W/\"1\"")], body.to_string().as_bytes());
    let refused = |body: Value, status: u16, expression: &str, code: &str| {
        let r = put(&body);
        assert_eq!(r.status, status, "{expression}: {}", r.body);
        let o = r.json();
        assert_eq!(o["resourceType"], "OperationOutcome");
        assert_eq!(o["issue"][0]["expression"][0], expression, "{}", r.body);
        assert_eq!(o["issue"][0]["details"]["coding"][0]["code"], code);
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = cond.clone();
        f(&mut c);
        c
    };
    refused(with(&|c| c["foo"] = json!(1)), 400, "Condition.foo", "invalid_resource");
    refused(with(&|c| c["clinicalStatus"] = json!("active")), 400, "Condition.clinicalStatus", "invalid_resource");
    refused(with(&|c| c["recordedDate"] = json!("30/11/2026")), 400, "Condition.recordedDate", "invalid_resource");
    refused(with(&|c| c["verificationStatus"]["coding"][0]["code"] = json!("entered-in-error")), 422, "Condition.clinicalStatus", "invariant_violated");
    refused(with(&|c| drop(c.as_object_mut().unwrap().remove("id"))), 400, "Condition.id", "invalid_request");
    refused(with(&|c| c["subject"]["reference"] = json!("Patient/someone-else")), 422, "Condition.subject", "review_rule");
    refused(with(&|c| c["evidence"] = json!([])), 400, "Condition.evidence", "invalid_resource");

    // Nothing of it was stored: still version 1, the coded subject, no feedback row.
    let now = common::get(server(), &path).json();
    assert_eq!(now["meta"]["versionId"], "1");
    assert_eq!(now["subject"], cond["subject"]);
    assert_eq!(common::get(server(), &format!("{path}/_history")).json()["total"], 1);

    // entered-in-error without a clinical status is a valid review.
    let mut ok = cond.clone();
    ok["verificationStatus"]["coding"][0]["code"] = json!("entered-in-error");
    ok.as_object_mut().unwrap().remove("clinicalStatus");
    let r = put(&ok);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["meta"]["versionId"], "2");

    // A Procedure with a status outside its required binding.
    let proc_ = resources(&b, "Procedure")[0].clone();
    let mut bad = proc_.clone();
    bad["status"] = json!("done");
    let r = request(server(), "PUT", &format!("/fhir/Procedure/{}", proc_["id"].as_str().unwrap()), &[("Content-Type", "application/fhir+json")], bad.to_string().as_bytes());
    assert_eq!((r.status, r.json()["issue"][0]["expression"][0].as_str()), (400, Some("Procedure.status")), "{}", r.body);

    // Stored documents are judged too: a Composition section with nothing in it (cmp-1).
    let bundle: Value = serde_json::from_str(&example_bundle()).unwrap();
    let mut comp = bundle["entry"][0]["resource"].clone();
    comp["section"] = json!([{ "title": "主诉" }]);
    let r = post_json(server(), "/fhir/Composition", &comp.to_string());
    assert_eq!((r.status, r.json()["issue"][0]["expression"][0].as_str()), (422, Some("Composition.section[0]")), "{}", r.body);
    let r = post_json(server(), "/fhir/DocumentReference", r#"{"resourceType":"DocumentReference","status":"current","content":[{"attachment":{"contentType":"text/plain","data":"aGk="}}],"foo":1}"#);
    assert_eq!((r.status, r.json()["issue"][0]["expression"][0].as_str()), (400, Some("DocumentReference.foo")), "{}", r.body);
}

/// Issue 14, items 7 and 8: the standard parameters clients send work on the stored types and
/// the terminology searches; what cannot be honoured is ignored and reported (lenient, the
/// default) or refused (`Prefer: handling=strict`). Before, `_id`, `_total`, `_summary`,
/// `_elements`, `_sort` and fhirpy's `_totalMethod` were 400s and `_count=0` gave one entry.
#[test]
fn standard_search_parameters_are_honoured_or_reported() {
    let coded = post_json(server(), "/fhir/Bundle/$code", &example_bundle()).json();
    let conds = resources(&coded, "Condition");
    let (a, b) = (conds[0]["id"].as_str().unwrap(), conds[1]["id"].as_str().unwrap());
    let get = |q: &str| {
        let r = common::get(server(), q);
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        r.json()
    };
    let ids = |s: &Value| -> Vec<String> {
        s["entry"].as_array().into_iter().flatten().filter(|e| e["search"]["mode"] == "match").map(|e| e["resource"]["id"].as_str().unwrap().to_owned()).collect()
    };

    let s = get(&format!("/fhir/Condition?_id={a},{b}"));
    let mut found = ids(&s);
    found.sort();
    let mut want = vec![a.to_owned(), b.to_owned()];
    want.sort();
    assert_eq!((found, s["total"].as_u64()), (want, Some(2)));
    assert!(s["link"][0]["url"].as_str().unwrap().contains(&format!("_id={a},{b}")), "{}", s["link"][0]);

    for q in ["/fhir/Condition?_count=0", "/fhir/Condition?_summary=count"] {
        let s = get(q);
        assert!(s["total"].as_u64().unwrap() >= 2 && s.get("entry").is_none(), "{q}: {s}");
    }
    assert!(get("/fhir/Condition?_total=none&_count=1").get("total").is_none());

    let s = get(&format!("/fhir/Condition?_id={a}&_elements=code"));
    let r = &s["entry"][0]["resource"];
    let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["code", "id", "meta", "resourceType"]);
    assert_eq!(r["meta"]["tag"][0]["code"], "SUBSETTED");

    let oldest = ids(&get("/fhir/Condition?_sort=_lastUpdated&_count=500"));
    let mut newest = ids(&get("/fhir/Condition?_sort=-_lastUpdated&_count=500"));
    newest.reverse();
    assert!(oldest.len() >= 2);
    // Other tests code meanwhile: compare the ones both pages saw.
    let both: Vec<&String> = oldest.iter().filter(|i| newest.contains(i)).collect();
    let both_rev: Vec<&String> = newest.iter().filter(|i| oldest.contains(i)).collect();
    assert_eq!(both, both_rev);

    // Unknown and unsupported ones: ignored, and said so.
    let s = get(&format!("/fhir/Condition?_id={a}&_totalMethod=count&colour=blue&_sort=code"));
    assert_eq!(ids(&s), vec![a.to_owned()]);
    let outcome = s["entry"].as_array().unwrap().iter().find(|e| e["search"]["mode"] == "outcome").expect("an outcome entry");
    let named: Vec<&str> = outcome["resource"]["issue"].as_array().unwrap().iter().map(|i| i["expression"][0].as_str().unwrap()).collect();
    assert_eq!(named, ["_totalMethod", "colour", "_sort"]);
    assert!(outcome["resource"]["issue"].as_array().unwrap().iter().all(|i| i["severity"] == "warning"));
    assert!(!s["link"][0]["url"].as_str().unwrap().contains("colour"), "the self link says what was searched");
    common::assert_valid_r4_external(std::slice::from_ref(&s));
    let strict = request(server(), "GET", "/fhir/Condition?colour=blue", &[("Prefer", "handling=strict")], b"");
    assert_eq!(strict.status, 400, "{}", strict.body);
    let lenient = request(server(), "GET", "/fhir/Condition?colour=blue&_count=1", &[("Prefer", "handling=lenient")], b"");
    assert_eq!(lenient.status, 200);
    // A supported parameter with a bad value is still a 400.
    assert_eq!(common::get(server(), "/fhir/Condition?_count=many").status, 400);
    assert_eq!(common::get(server(), "/fhir/Condition?_summary=maybe").status, 400);

    // The terminology searches page with next links and take the same parameters.
    let page1 = get("/fhir/CodeSystem?_count=1");
    let next = page1["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next").expect("next link")["url"].as_str().unwrap().to_owned();
    let page2 = get(&format!("/fhir{}", next.split_once("/fhir").unwrap().1));
    assert_ne!(page1["entry"][0]["resource"]["id"], page2["entry"][0]["resource"]["id"]);
    assert_eq!(page1["total"], page2["total"]);
    let maps = get("/fhir/ConceptMap?_summary=count");
    assert!(maps["total"].as_u64().unwrap() >= 2 && maps.get("entry").is_none());
    let one = get("/fhir/ConceptMap?_id=icd-9-cm-3-cn-clinical-to-insurance&colour=blue");
    assert_eq!(one["total"], 1, "{one}");
}

/// Issue 14, item 11: Binary follows R4's raw-content rule, and a PDF to code is answered
/// honestly (415, not-supported) until PDFs are read. Before, a raw POST was a 400 ("not UTF-8
/// text") and `Accept: application/pdf` a 406.
#[test]
fn binaries_take_and_give_their_own_content_type() {
    let pdf: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n";
    let r = request(server(), "POST", "/fhir/Binary", &[("Content-Type", "application/pdf")], pdf);
    assert_eq!(r.status, 201, "{}", r.body);
    let stored = r.json();
    assert_eq!(stored["contentType"], "application/pdf");
    let id = stored["id"].as_str().unwrap().to_owned();
    let path = format!("/fhir/Binary/{id}");

    // Asked for as a PDF: the bytes, with the version headers.
    let raw = request(server(), "GET", &path, &[("Accept", "application/pdf")], b"");
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type"), Some("application/pdf"));
    assert_eq!(raw.header("etag"), Some("W/\"1\""));
    assert!(raw.header("last-modified").is_some());
    assert_eq!(raw.bytes, pdf);
    assert_eq!(request(server(), "GET", &format!("{path}/_history/1"), &[("Accept", "application/*")], b"").bytes, pdf);
    // Asked for as FHIR (or anything): the resource.
    for accept in ["application/fhir+json", "*/*"] {
        let r = request(server(), "GET", &path, &[("Accept", accept)], b"");
        assert_eq!((r.status, r.json()["resourceType"].as_str()), (200, Some("Binary")), "{accept}");
    }
    assert_eq!(common::get(server(), &format!("{path}?_format=json")).json()["contentType"], "application/pdf");
    let r = request(server(), "GET", &path, &[("Accept", "image/png")], b"");
    assert_eq!(r.status, 406, "{}", r.body);
    // An empty body is a Binary without data, served back empty.
    let empty = request(server(), "POST", "/fhir/Binary", &[("Content-Type", "application/octet-stream")], b"");
    assert_eq!(empty.status, 201, "{}", empty.body);
    assert!(empty.json().get("data").is_none());
    let back = request(server(), "GET", &format!("/fhir/Binary/{}", empty.json()["id"].as_str().unwrap()), &[("Accept", "application/octet-stream")], b"");
    assert_eq!((back.status, back.bytes.len()), (200, 0));

    // A PDF to code: 415 not-supported, inline or by reference.
    let by_ref = json!({ "resourceType": "DocumentReference", "status": "current",
        "content": [{ "attachment": { "contentType": "application/pdf", "url": format!("Binary/{id}") } }] });
    let inline = json!({ "resourceType": "DocumentReference", "status": "current",
        "content": [{ "attachment": { "contentType": "application/pdf", "data": base64::engine::general_purpose::STANDARD.encode(pdf) } }] });
    // (This server has no PDFium: its pdf_dir is its own empty data directory. tests/pdf.rs
    // reads PDFs with one.)
    for doc in [by_ref, inline] {
        let r = post_json(server(), "/fhir/DocumentReference/$code?persist=false", &doc.to_string());
        assert_eq!(r.status, 415, "{}", r.body);
        assert_eq!(r.json()["issue"][0]["code"], "not-supported");
        assert!(r.body.contains("scripts/fetch-pdf.sh"), "the answer names what installs PDFium: {}", r.body);
    }
    let cap = common::get(server(), "/fhir/metadata").json();
    assert!(cap["rest"][0]["operation"][0]["documentation"].as_str().unwrap().contains("not read here"), "{}", cap["rest"][0]["operation"][0]);

    // Raw text is coded like any Binary.
    let text = "出院诊断：1.冠状动脉粥样硬化性心脏病 不稳定型心绞痛\n手术名称：经皮冠状动脉支架植入术\n手术经过：于前降支植入药物洗脱支架1枚。";
    let r = request(server(), "POST", "/fhir/Binary", &[("Content-Type", "text/plain; charset=utf-8")], text.as_bytes());
    assert_eq!(r.status, 201, "{}", r.body);
    let text_id = r.json()["id"].as_str().unwrap().to_owned();
    let doc = json!({ "resourceType": "DocumentReference", "status": "current", "content": [{ "attachment": { "contentType": "text/plain", "url": format!("Binary/{text_id}") } }] });
    let r = post_json(server(), "/fhir/DocumentReference/$code?persist=false", &doc.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(codes(&resources(&r.json(), "Procedure")).contains(&"36.0700".to_owned()), "{}", r.body);
}

/// Issue 14, item 6: the CapabilityStatement is what the routes serve. Every route registered
/// is declared; every interaction and operation declared answers (never 404/405); what a
/// stored type does not declare is a 405.
#[test]
fn capability_statement_matches_the_routes_served() {
    // Something of every stored type exists to read.
    let coded = post_json(server(), "/fhir/Bundle/$code", &example_bundle()).json();
    assert!(!resources(&coded, "Claim").is_empty());
    let bundle: Value = serde_json::from_str(&example_bundle()).unwrap();
    assert_eq!(post_json(server(), "/fhir/Composition", &bundle["entry"][0]["resource"].to_string()).status, 201);
    let doc = json!({ "resourceType": "DocumentReference", "status": "current", "content": [{ "attachment": { "contentType": "text/plain", "data": "aGk=" } }] });
    assert_eq!(post_json(server(), "/fhir/DocumentReference", &doc.to_string()).status, 201);
    assert_eq!(request(server(), "POST", "/fhir/Binary", &[("Content-Type", "text/plain")], "出院诊断：高血压".as_bytes()).status, 201);
    let cap = common::get(server(), "/fhir/metadata").json();
    common::assert_valid_r4_external(std::slice::from_ref(&cap));
    let rest = &cap["rest"][0];
    let declared = |ty: &str| rest["resource"].as_array().unwrap().iter().find(|r| r["type"] == ty).cloned();
    let has = |list: &Value, key: &str, value: &str| list.as_array().into_iter().flatten().any(|x| x[key] == value);

    // 1. Every registered route is declared.
    let routes = jointcoder::server::access::routes_registered();
    assert!(routes.len() > 20, "{routes:?}");
    for route in &routes {
        let parts: Vec<&str> = route.trim_start_matches('/').split('/').collect();
        let ok = match parts.as_slice() {
            // The statement itself, SMART discovery (declared in rest.security with auth on),
            // and the bulk-data job URLs the kick-off answers with.
            ["metadata"] | [".well-known", "smart-configuration"] => true,
            [op, ..] if op.starts_with("$export-") => has(&rest["operation"], "name", "export"),
            [op] if op.starts_with('$') => has(&rest["operation"], "name", &op[1..]),
            // The generic routes of the stored types: probed below, type by type.
            ["{type}", ..] => true,
            [ty, op] | [ty, "{id}", op] if op.starts_with('$') => declared(ty).is_some_and(|r| has(&r["operation"], "name", &op[1..])),
            [ty] => declared(ty).is_some_and(|r| has(&r["interaction"], "code", "search-type")),
            [ty, _] => declared(ty).is_some_and(|r| has(&r["interaction"], "code", "read")),
            _ => false,
        };
        assert!(ok, "route {route} is served but not declared");
    }

    // 2. Every declared interaction answers; an undeclared one of a stored type is a 405.
    let search = |ty: &str| common::get(server(), &format!("/fhir/{ty}?_count=1")).json();
    for r in rest["resource"].as_array().unwrap() {
        let ty = r["type"].as_str().unwrap();
        let does = |code: &str| has(&r["interaction"], "code", code);
        let id = if does("search-type") {
            let s = search(ty);
            assert_eq!(s["resourceType"], "Bundle", "{ty}: {s}");
            s["entry"][0]["resource"]["id"].as_str().map(str::to_owned)
        } else {
            None
        };
        let id = id.unwrap_or_else(|| if ty == "OperationDefinition" { "code".into() } else { "none".into() });
        let probes = [
            ("read", "GET", format!("/fhir/{ty}/{id}")),
            ("vread", "GET", format!("/fhir/{ty}/{id}/_history/1")),
            ("history-instance", "GET", format!("/fhir/{ty}/{id}/_history")),
            ("update", "PUT", format!("/fhir/{ty}/{id}")),
            ("create", "POST", format!("/fhir/{ty}")),
            ("delete", "DELETE", format!("/fhir/{ty}/{id}")),
        ];
        for (code, method, path) in probes {
            // A body that is not the resource: an update or create route answers 400 to it.
            let body: &[u8] = if method == "GET" || method == "DELETE" { b"" } else { br#"{"resourceType":"Basic"}"# };
            let got = request(server(), method, &path, &[("Content-Type", "application/fhir+json")], body).status;
            if does(code) {
                let want_ok = if method == "GET" { got == 200 } else { got == 400 };
                assert!(want_ok, "{ty} declares {code}: {method} {path} is {got}");
            } else if r["interaction"].is_array() && ty != "CodeSystem" && ty != "ConceptMap" && ty != "OperationDefinition" {
                assert!(matches!(got, 404 | 405), "{ty} does not declare {code}: {method} {path} is {got}");
            }
        }
        for op in r["operation"].as_array().into_iter().flatten() {
            let path = format!("/fhir/{ty}/${}", op["name"].as_str().unwrap());
            let got = request(server(), "POST", &path, &[("Content-Type", "application/fhir+json")], b"{}").status;
            let got = if got == 405 { common::get(server(), &path).status } else { got };
            assert!(!matches!(got, 404 | 405), "{ty} declares ${}: {path} is {got}", op["name"]);
        }
        for (name, kind) in r["searchParam"].as_array().into_iter().flatten().map(|p| (p["name"].as_str().unwrap(), p["type"].as_str().unwrap())) {
            let value = match kind { "date" => "ge2000-01-01", "reference" => "Patient/x", _ => "x" };
            let s = request(server(), "GET", &format!("/fhir/{ty}?{name}={value}"), &[("Prefer", "handling=strict")], b"");
            assert_eq!(s.status, 200, "{ty} declares search by {name}: {}", s.body);
        }
    }
    for op in rest["operation"].as_array().unwrap() {
        let path = format!("/fhir/${}", op["name"].as_str().unwrap());
        let got = request(server(), "POST", &path, &[("Content-Type", "application/fhir+json")], b"{}").status;
        assert!(!matches!(got, 404 | 405), "the server declares {path}: {got}");
    }
    // Types the statement does not list are not served.
    assert!(declared("Patient").is_some_and(|p| p.get("interaction").is_none()));
    assert_eq!(common::get(server(), "/fhir/Patient/x").status, 404);
    assert_eq!(common::get(server(), "/fhir/Observation?_count=1").status, 404);
}
