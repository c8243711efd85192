//! Terminology admins load new versions while the server answers: versions side by side,
//! deltas, and no failed or wrong answer during the rebuild and swap.
mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;
use common::{get, param, post_json, request};
use jointcoder::terminology::{Terminology, TerminologyOptions};
use serde_json::json;

fn upload(addr: &str, system: &str, version: &str, mode: &str, csv: &str) -> common::Response {
    let body = json!({ "resourceType": "Parameters", "parameter": [
        { "name": "system", "valueUri": system },
        { "name": "version", "valueString": version },
        { "name": "mode", "valueCode": mode },
        { "name": "makeCurrent", "valueBoolean": true },
        { "name": "file", "valueAttachment": { "contentType": "text/csv", "data": base64::engine::general_purpose::STANDARD.encode(csv) } }
    ]});
    post_json(addr, "/fhir/CodeSystem/$upload-external-code-system", &body.to_string())
}

#[test]
fn new_versions_swap_in_without_a_failed_request() {
    let t = Terminology::load(&TerminologyOptions::new(common::terminology_dir())).unwrap();
    let server = common::start_server(common::test_config(std::env::temp_dir()), t);
    let addr = server.addr.clone();

    // Readers hammer lookups and searches through the swaps.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (addr, stop, served) = (addr.clone(), stop.clone(), served.clone());
        readers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let r = get(&addr, "/fhir/CodeSystem/icd-10-cn-clinical/$lookup?code=I25.103");
                assert_eq!(r.status, 200, "{}", r.body);
                assert_eq!(param(&r.json(), "display").unwrap()["valueString"], "冠状动脉粥样硬化性心脏病");
                let s = get(&addr, "/fhir/ValueSet/$expand?url=icd-10-cn-clinical&filter=%E6%88%BF%E9%A2%A4&count=3");
                assert_eq!(s.status, 200);
                assert_eq!(s.json()["expansion"]["contains"][0]["code"], "I48.x01");
                served.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // A delta adding a hospital's own extension code, as a new version.
    let r = upload(&addr, "icd-10-cn-clinical", "2.0-local1", "add", "code,name\nI25.103x901,冠状动脉粥样硬化性心脏病（本院扩展）\n");
    assert_eq!(r.status, 200, "{}", r.body);
    let p = r.json();
    common::assert_valid_r4_external(std::slice::from_ref(&p));
    assert_eq!(param(&p, "added").unwrap()["valueInteger"], 1);
    let count = param(&p, "conceptCount").unwrap()["valueInteger"].as_u64().unwrap();
    assert!(count > 30_000);

    // The new version is current; the old one is still served beside it.
    let r = get(&addr, "/fhir/CodeSystem/icd-10-cn-clinical/$lookup?code=I25.103x901");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(param(&r.json(), "version").unwrap()["valueString"], "2.0-local1");
    assert_eq!(get(&addr, "/fhir/CodeSystem/icd-10-cn-clinical/$lookup?code=I25.103x901&version=2.0").status, 404);
    let list = get(&addr, "/fhir/CodeSystem?_id=icd-10-cn-clinical").json();
    let versions: Vec<&str> = list["entry"].as_array().unwrap().iter().map(|e| e["resource"]["version"].as_str().unwrap()).collect();
    assert_eq!(versions, vec!["2.0", "2.0-local1"]);

    // A removal delta on top, and a whole new code system by PUT.
    let r = upload(&addr, "icd-10-cn-clinical", "2.0-local2", "remove", "code,name\nI25.103x901,x\n");
    assert_eq!(param(&r.json(), "removed").unwrap()["valueInteger"], 1);
    assert_eq!(get(&addr, "/fhir/CodeSystem/icd-10-cn-clinical/$lookup?code=I25.103x901").status, 404);
    let cs = json!({ "resourceType": "CodeSystem", "id": "local-procedures", "url": "https://hospital.example/fhir/CodeSystem/local-procedures",
        "version": "2026.1", "status": "active", "content": "complete",
        "concept": [{ "code": "L01", "display": "床旁心脏超声" }, { "code": "L02", "display": "动态血压监测" }] });
    let r = request(&addr, "PUT", "/fhir/CodeSystem/local-procedures", &[("Content-Type", "application/fhir+json")], cs.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get(&addr, "/fhir/CodeSystem/$lookup?system=https://hospital.example/fhir/CodeSystem/local-procedures&code=L02");
    assert_eq!(param(&r.json(), "display").unwrap()["valueString"], "动态血压监测");
    let hits = get(&addr, "/fhir/ValueSet/$expand?url=local-procedures&filter=%E8%A1%80%E5%8E%8B").json();
    assert_eq!(hits["expansion"]["contains"][0]["code"], "L02");

    // Bad uploads change nothing.
    assert_eq!(upload(&addr, "icd-10-cn-clinical", "x", "merge", "code,name\nA,b\n").status, 400);
    assert_eq!(upload(&addr, "icd-10-cn-clinical", "x", "add", "code,name\nA,\n").status, 400);
    let no_version = json!({ "resourceType": "CodeSystem", "concept": [{ "code": "A", "display": "b" }] });
    assert_eq!(request(&addr, "PUT", "/fhir/CodeSystem/other", &[("Content-Type", "application/fhir+json")], no_version.to_string().as_bytes()).status, 400);
    assert_eq!(param(&get(&addr, "/fhir/CodeSystem/icd-10-cn-clinical/$lookup?code=I25.103").json(), "version").unwrap()["valueString"], "2.0-local2");

    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("no reader saw a failed or wrong answer");
    }
    assert!(served.load(Ordering::Relaxed) > 10, "readers ran through the swaps");
}

/// What an admin installed is still served after a restart: the versions side by side, the
/// latest current, a reinstalled version as reinstalled, a code system added by PUT.
#[test]
fn installed_versions_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let config = || common::test_config(data.path().to_owned());
    let before = common::serve(config(), common::terminology().clone());
    let r = upload(&before, "icd-10-cn-clinical", "2.0-local1", "add", "code,name\nI25.103x901,冠心病（本院扩展）\n");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = upload(&before, "icd-10-cn-clinical", "2.0-local1", "add", "code,name\nI25.103x901,冠状动脉粥样硬化性心脏病（本院扩展）\n");
    assert_eq!(r.status, 200, "{}", r.body);
    let cs = json!({ "resourceType": "CodeSystem", "id": "local-procedures", "url": "https://hospital.example/fhir/CodeSystem/local-procedures",
        "version": "2026.1", "status": "active", "content": "complete", "concept": [{ "code": "L01", "display": "床旁心脏超声" }] });
    let r = request(&before, "PUT", "/fhir/CodeSystem/local-procedures", &[("Content-Type", "application/fhir+json")], cs.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);

    let after = common::serve(config(), common::terminology().clone());
    let r = get(&after, "/fhir/CodeSystem/icd-10-cn-clinical/$lookup?code=I25.103x901");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(param(&r.json(), "version").unwrap()["valueString"], "2.0-local1");
    assert_eq!(param(&r.json(), "display").unwrap()["valueString"], "冠状动脉粥样硬化性心脏病（本院扩展）");
    let list = get(&after, "/fhir/CodeSystem?_id=icd-10-cn-clinical").json();
    let versions: Vec<&str> = list["entry"].as_array().unwrap().iter().map(|e| e["resource"]["version"].as_str().unwrap()).collect();
    assert_eq!(versions, vec!["2.0", "2.0-local1"]);
    assert_eq!(get(&after, "/fhir/CodeSystem/icd-10-cn-clinical/$lookup?code=I25.103&version=2.0").status, 200);
    let r = get(&after, "/fhir/CodeSystem/$lookup?system=https://hospital.example/fhir/CodeSystem/local-procedures&code=L01");
    assert_eq!(param(&r.json(), "display").unwrap()["valueString"], "床旁心脏超声");
    // The restarted server searches the kept version too.
    let hits = get(&after, "/fhir/ValueSet/$expand?url=icd-10-cn-clinical&filter=%E6%9C%AC%E9%99%A2%E6%89%A9%E5%B1%95&count=3").json();
    assert_eq!(hits["expansion"]["contains"][0]["code"], "I25.103x901", "{hits}");
}
