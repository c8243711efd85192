//! The FHIR terminology API on a real server on loopback, every response checked against the
//! R4 model (fhirbolt strict mode).
mod common;

use std::sync::OnceLock;

use common::{assert_valid_r4, get, param, post_json, request};
use jointcoder::terminology::{Terminology, TerminologyOptions};

fn server() -> &'static str {
    static S: OnceLock<common::TestServer> = OnceLock::new();
    &S.get_or_init(|| {
        let t = Terminology::load(&TerminologyOptions::new(common::terminology_dir())).unwrap();
        common::start_server(common::test_config(std::env::temp_dir()), t)
    })
    .addr
}

#[test]
fn lookup_returns_display_parent_and_children() {
    let r = get(server(), "/fhir/CodeSystem/icd-10-cn-clinical/$lookup?code=I25.103");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("application/fhir+json"));
    let p = r.json();
    assert_valid_r4(&p);
    assert_eq!(param(&p, "display").unwrap()["valueString"], "冠状动脉粥样硬化性心脏病");
    let parent = p["parameter"].as_array().unwrap().iter().find(|x| x["name"] == "property" && x["part"][0]["valueCode"] == "parent");
    assert_eq!(parent.unwrap()["part"][1]["valueCode"], "I25.100");

    let r = get(server(), "/fhir/CodeSystem/$lookup?system=https://jointcoder.org/fhir/CodeSystem/icd-9-cm-3-cn-clinical&code=36.0700");
    assert_eq!(r.status, 200);
    assert_eq!(param(&r.json(), "display").unwrap()["valueString"], "药物洗脱冠状动脉支架置入");
}

#[test]
fn terminology_responses_pass_the_external_validator() {
    let paths = [
        "/fhir/metadata",
        "/fhir/CodeSystem",
        "/fhir/CodeSystem/icd-10-cn-clinical?_offset=0&_count=5",
        "/fhir/CodeSystem/icd-10-cn-clinical/$lookup?code=I25.103",
        "/fhir/CodeSystem/icd-10-cn-clinical/$validate-code?code=I25.103",
        "/fhir/ValueSet/$expand?url=icd-10-cn-clinical&filter=%E6%88%BF%E9%A2%A4&count=5",
        "/fhir/ConceptMap",
        "/fhir/ConceptMap/$translate?system=icd-10-cn-clinical&code=R91.x00x003",
        "/fhir/CodeSystem/nope",
    ];
    let resources: Vec<serde_json::Value> = paths.iter().map(|p| get(server(), p).json()).collect();
    common::assert_valid_r4_external(&resources);
}

#[test]
fn lookup_by_post_parameters_with_coding() {
    let body = r#"{"resourceType":"Parameters","parameter":[{"name":"coding","valueCoding":{"system":"icd-10-cn-clinical","code":"I48.x01"}}]}"#;
    let r = post_json(server(), "/fhir/CodeSystem/$lookup", body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(param(&r.json(), "display").unwrap()["valueString"], "心房颤动");
}

#[test]
fn unknown_code_system_or_version_is_a_404_outcome() {
    for path in [
        "/fhir/CodeSystem/icd-10-cn-clinical/$lookup?code=X99.999",
        "/fhir/CodeSystem/nope/$lookup?code=I25.103",
        "/fhir/CodeSystem/icd-10-cn-clinical/$lookup?code=I25.103&version=9.9",
        "/fhir/CodeSystem/nope",
        "/fhir/Nothing/here",
    ] {
        let r = get(server(), path);
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        let oo = r.json();
        assert_eq!(oo["resourceType"], "OperationOutcome", "{path}");
        assert_valid_r4(&oo);
    }
}

#[test]
fn missing_or_malformed_inputs_are_400_outcomes() {
    let r = get(server(), "/fhir/CodeSystem/$lookup?code=I25.103");
    assert_eq!(r.status, 400);
    assert!(r.json()["issue"][0]["diagnostics"].as_str().unwrap().contains("system"));
    let r = post_json(server(), "/fhir/CodeSystem/$lookup", "{not json");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["resourceType"], "OperationOutcome");
    let r = post_json(server(), "/fhir/CodeSystem/$lookup", r#"{"resourceType":"Patient"}"#);
    assert_eq!(r.status, 400);
    let r = get(server(), "/fhir/ValueSet/$expand?url=icd-10-cn-clinical&count=ten");
    assert_eq!(r.status, 400);
}

#[test]
fn xml_is_refused_with_406() {
    let r = request(server(), "GET", "/fhir/metadata", &[("Accept", "application/fhir+xml")], b"");
    assert_eq!(r.status, 406);
    assert_eq!(r.json()["resourceType"], "OperationOutcome");
    let r = get(server(), "/fhir/metadata?_format=xml");
    assert_eq!(r.status, 406);
    let r = get(server(), "/fhir/metadata?_format=json");
    assert_eq!(r.status, 200);
}

#[test]
fn metadata_and_code_system_listing_are_valid() {
    let cap = get(server(), "/fhir/metadata").json();
    assert_valid_r4(&cap);
    assert_eq!(cap["fhirVersion"], "4.0.1");
    let list = get(server(), "/fhir/CodeSystem").json();
    assert_valid_r4(&list);
    let ids: Vec<&str> = list["entry"].as_array().unwrap().iter().map(|e| e["resource"]["id"].as_str().unwrap()).collect();
    for id in ["icd-10-cn-clinical", "icd-9-cm-3-cn-clinical", "icd-10-cn-insurance", "icd-9-cm-3-cn-insurance"] {
        assert!(ids.contains(&id), "{id} not listed: {ids:?}");
    }
}

#[test]
fn code_system_read_pages_concepts() {
    let meta = get(server(), "/fhir/CodeSystem/icd-10-cn-clinical").json();
    assert_valid_r4(&meta);
    assert_eq!(meta["content"], "not-present");
    assert!(meta.get("concept").is_none());
    assert!(meta["count"].as_u64().unwrap() > 30_000);
    let r = get(server(), "/fhir/CodeSystem/icd-10-cn-clinical?_offset=100&_count=50");
    let page = r.json();
    assert_valid_r4(&page);
    assert_eq!(page["content"], "fragment");
    assert_eq!(page["concept"].as_array().unwrap().len(), 50);
    assert!(r.header("link").unwrap().contains("_offset=150"));
}

#[test]
fn validate_code_says_true_false_without_erroring() {
    let ok = get(server(), &format!("/fhir/CodeSystem/$validate-code?url=icd-10-cn-clinical&code=I25.103&display={}", common::enc("冠状动脉粥样硬化性心脏病"))).json();
    assert_valid_r4(&ok);
    assert_eq!(param(&ok, "result").unwrap()["valueBoolean"], true);
    let bad = get(server(), "/fhir/CodeSystem/icd-10-cn-clinical/$validate-code?code=I25.999999").json();
    assert_eq!(param(&bad, "result").unwrap()["valueBoolean"], false);
    let wrong_display = get(server(), &format!("/fhir/CodeSystem/icd-10-cn-clinical/$validate-code?code=I25.103&display={}", common::enc("心房颤动"))).json();
    assert_eq!(param(&wrong_display, "result").unwrap()["valueBoolean"], false);
}

#[test]
fn expand_filters_through_the_index_and_pages_without_filter() {
    let vs = get(server(), "/fhir/ValueSet/$expand?url=https://jointcoder.org/fhir/CodeSystem/icd-10-cn-clinical?vs&filter=%E6%88%BF%E9%A2%A4&count=5").json();
    assert_valid_r4(&vs);
    assert_eq!(vs["expansion"]["contains"][0]["code"], "I48.x01");
    let all = get(server(), "/fhir/ValueSet/$expand?url=icd-9-cm-3-cn-clinical&offset=10&count=20").json();
    assert_valid_r4(&all);
    assert_eq!(all["expansion"]["contains"].as_array().unwrap().len(), 20);
    assert!(all["expansion"]["total"].as_u64().unwrap() > 10_000);
}

#[test]
fn translate_maps_clinical_to_insurance() {
    let p = get(server(), "/fhir/ConceptMap/$translate?system=icd-10-cn-clinical&code=R91.x00x003").json();
    assert_valid_r4(&p);
    assert_eq!(param(&p, "result").unwrap()["valueBoolean"], true);
    let m = param(&p, "match").unwrap();
    assert_eq!(m["part"][1]["valueCoding"]["code"], "R91.x03");
    let maps = get(server(), "/fhir/ConceptMap").json();
    assert_valid_r4(&maps);
    assert_eq!(maps["total"], 2);
    // Search parameters are honoured: by url only the map asked for (the procedure one is
    // listed second), and every searchset says what it searched.
    let second = maps["entry"][1]["resource"]["url"].as_str().unwrap().to_owned();
    let one = get(server(), &format!("/fhir/ConceptMap?url={second}")).json();
    assert_valid_r4(&one);
    assert_eq!(one["total"], 1);
    assert_eq!(one["entry"][0]["resource"]["url"], second.as_str());
    assert_eq!(one["link"][0]["relation"], "self");
    assert!(one["link"][0]["url"].as_str().unwrap().contains("url="));
    assert_eq!(get(server(), "/fhir/ConceptMap?url=http://nowhere.example/cm").json()["total"], 0);
    let systems = get(server(), "/fhir/CodeSystem?_count=2").json();
    assert_valid_r4(&systems);
    assert_eq!(systems["entry"].as_array().unwrap().len(), 2, "_count pages the search");
    assert!(systems["total"].as_u64().unwrap() >= 4, "the total counts every match");
    let r = get(server(), "/fhir/ConceptMap/$translate?system=icd-10-cn-clinical&code=NOPE");
    assert_eq!(r.status, 404);
}

#[test]
fn oversized_body_is_413_outcome() {
    let big = vec![b'x'; 9 * 1024 * 1024];
    let r = request(server(), "POST", "/fhir/CodeSystem/$lookup", &[("Content-Type", "application/fhir+json")], &big);
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["resourceType"], "OperationOutcome");
}
