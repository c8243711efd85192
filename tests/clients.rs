//! Client conformance (issue 14): unmodified FHIR client libraries drive a real server on
//! loopback through the flows hospital integrations use: fhirpy and fhirclient (Python),
//! fhir-kit-client and @medplum/core (JavaScript), pinned in `tests/clients/` and installed by
//! `tests/setup.sh`. Every resource the clients received or wrote is then judged by three
//! validators that share no code with us or each other: fhir.resources (Python), @medplum/core's
//! `validateResource` (JavaScript, R4 StructureDefinitions), and fhirbolt in strict mode.
//!
//! One server with authentication off serves the flows; one with bearer tokens required serves
//! SMART discovery. The client × flow table is printed (`cargo test --test clients -- --nocapture`).
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const TOKEN_ENDPOINT: &str = "https://auth.hospital.example/oauth2/token";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tool(path: &str, installer: &str) -> PathBuf {
    let p = root().join(path);
    assert!(p.exists(), "{} is missing: run {installer} (the README's test command does)", p.display());
    p
}

/// Runs one driver and returns its client × flow lines.
fn drive(mut cmd: Command, what: &str) -> Vec<Value> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: {e}: {l}"))).collect()
}

#[test]
fn real_client_libraries_work_against_the_server_and_what_they_see_is_valid_r4() {
    let python = tool("target/fhir-validator/bin/python", "tests/setup_validator.sh");
    let node_modules = tool("tests/clients/node_modules/@medplum/core", "tests/setup_clients.sh");
    assert!(node_modules.is_dir());

    let open = common::start_server(common::test_config(std::env::temp_dir()), common::terminology().clone());
    let secured_data = tempfile::tempdir().unwrap();
    let mut secured = common::test_config(secured_data.path().to_owned());
    secured.jwt = jointcoder::config::JwtConfig {
        hs256_secret: Some("client-suite-secret-of-enough-length".into()),
        issuer: Some("https://auth.hospital.example".into()),
        audience: Some("jointcoder".into()),
        token_endpoint: Some(TOKEN_ENDPOINT.into()),
        ..Default::default()
    };
    let secured = common::serve(secured, common::terminology().clone());
    let (base, auth_base) = (format!("http://{}/fhir", open.addr), format!("http://{secured}/fhir"));
    let bundle = root().join("examples/requests/discharge-bundle.json");
    let seen = tempfile::tempdir().unwrap();

    let mut py = Command::new(&python);
    py.arg(root().join("tests/clients/python_clients.py")).arg(&base).arg(&bundle).arg(seen.path()).arg(&auth_base).arg(TOKEN_ENDPOINT);
    let mut js = Command::new("node");
    js.current_dir(root().join("tests/clients")).arg("js_clients.mjs").arg("flows").arg(&base).arg(&bundle).arg(seen.path()).arg(&auth_base).arg(TOKEN_ENDPOINT);
    let mut lines = drive(py, "the Python clients");
    lines.extend(drive(js, "the JavaScript clients"));

    println!("| client | flow | result | detail |\n| --- | --- | --- | --- |");
    for l in &lines {
        println!("| {} | {} | {} | {} |", l["client"].as_str().unwrap_or(""), l["flow"].as_str().unwrap_or(""), l["result"].as_str().unwrap_or(""), l["detail"].as_str().unwrap_or(""));
    }
    let failed: Vec<&Value> = lines.iter().filter(|l| l["result"] != "works" && l["result"] != "n/a").collect();
    assert!(failed.is_empty(), "client flows failed: {failed:#?}");
    // Each library ran every flow, and the flows each is built for work with it.
    for client in ["fhirpy", "fhirclient", "fhir-kit-client", "@medplum/core"] {
        let mine: Vec<&Value> = lines.iter().filter(|l| l["client"].as_str().is_some_and(|c| c.starts_with(client))).collect();
        assert_eq!(mine.len(), 10, "{client}: {mine:?}");
        for flow in ["capability", "$code", "read", "vread+_history", "search+paging", "review If-Match/412"] {
            assert!(mine.iter().any(|l| l["flow"] == flow && l["result"] == "works"), "{client} {flow}");
        }
    }
    for (client, flow) in [("fhirclient", "SMART discovery"), ("fhir-kit-client", "SMART discovery"), ("@medplum/core", "bulk export"), ("fhir-kit-client", "conditional create"), ("@medplum/core", "conditional create"), ("fhirpy", "conditional create")] {
        assert!(lines.iter().any(|l| l["client"].as_str().unwrap_or("").starts_with(client) && l["flow"] == flow && l["result"] == "works"), "{client} {flow}");
    }

    // Three validators over everything the clients saw or sent.
    let files: Vec<PathBuf> = std::fs::read_dir(seen.path()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    assert!(files.len() > 80, "{} resources", files.len());
    let out = Command::new(&python).arg(root().join("tests/validate_r4.py")).args(&files).output().unwrap();
    assert!(out.status.success(), "fhir.resources: {}", String::from_utf8_lossy(&out.stdout));
    let out = Command::new("node").current_dir(root().join("tests/clients")).arg("js_clients.mjs").arg("validate").arg(seen.path()).output().unwrap();
    assert!(out.status.success(), "@medplum/core validateResource: {}", String::from_utf8_lossy(&out.stdout));
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if let Err(e) = fhir_model::check_r4_strict(&text) {
            panic!("fhirbolt strict: {}: {e}", f.display());
        }
    }
}
