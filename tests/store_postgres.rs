//! The resource store on a real PostgreSQL: the same behaviour as on SQLite, and `$code` on a
//! server whose only change is the store URL.
//!
//! The server comes from `JOINTCODER_TEST_POSTGRES_URL` when set; otherwise the test starts a
//! throwaway cluster of the machine's PostgreSQL (`initdb` + `postgres` on a free loopback port,
//! in a temporary directory, as the `postgres` user when run as root), which stops when the
//! test process ends. `.ci/run` installs PostgreSQL's server package when it is missing.
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use jointcoder::store::{Conditional, Created, Store, StoreError};
use serde_json::{json, Value};

fn postgres_bin() -> PathBuf {
    let from_pg_config = Command::new("pg_config").arg("--bindir").output().ok().map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let candidates = from_pg_config.into_iter().chain(
        std::fs::read_dir("/usr/lib/postgresql").into_iter().flatten().filter_map(Result::ok).map(|e| e.path().join("bin")),
    );
    candidates
        .filter(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
        .last()
        .expect("PostgreSQL's server programs (initdb, postgres): install Debian's postgresql package, or set JOINTCODER_TEST_POSTGRES_URL")
}

/// How to run a program as the `postgres` user when we are root (PostgreSQL refuses to run as
/// root); nothing otherwise.
fn as_server_user() -> &'static str {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
    if root {
        "runuser -u postgres -- "
    } else {
        ""
    }
}

/// A shell command.
fn shell(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]).stdin(std::process::Stdio::null());
    c
}

/// A database URL for this test run: from the environment, or a cluster started here.
fn postgres_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("JOINTCODER_TEST_POSTGRES_URL") {
            return url;
        }
        let bin = postgres_bin();
        let dir = tempfile::Builder::new().prefix("jc-pg").tempdir().unwrap().keep();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (bin, data) = (bin.display().to_string(), dir.join("data").display().to_string());
        let user = as_server_user();
        let init = shell(&format!("{user}'{bin}/initdb' -D '{data}' -A trust -U jc --no-sync >/dev/null")).status().unwrap();
        assert!(init.success(), "initdb failed");
        // The server lives as long as this test process: a watcher stops it when we are gone,
        // and removes the cluster.
        let me = std::process::id();
        shell(&format!(
            "{user}'{bin}/postgres' -D '{data}' -p {port} -k '{}' -h 127.0.0.1 -F >'{}/log' 2>&1 & P=$!; \
             while [ -d /proc/{me} ]; do sleep 1; done; kill $P; wait $P; rm -rf '{}'",
            dir.display(),
            dir.display(),
            dir.display()
        ))
        .spawn()
        .unwrap();
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed().as_secs() < 60, "PostgreSQL did not start: see {}/log", dir.display());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        format!("postgres://jc@127.0.0.1:{port}/postgres")
    })
}

/// A database of its own for each test, so that tests running at once do not see each other.
fn fresh_database(name: &str) -> String {
    let base = postgres_url();
    let (server, _) = base.rsplit_once('/').unwrap();
    let status = Command::new("psql")
        .args([base, "-q", "-c", &format!("DROP DATABASE IF EXISTS {name}"), "-c", &format!("CREATE DATABASE {name}")])
        .status()
        .expect("psql");
    assert!(status.success(), "creating database {name}");
    format!("{server}/{name}")
}

fn ids(hits: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = hits.iter().map(|h| h["id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids
}

#[test]
fn the_store_behaves_on_postgresql_as_on_sqlite() {
    let url = fresh_database("jc_store");
    let store = Store::open_configured(&jointcoder::catalog::DataDir::new("."), Some(&url)).unwrap();
    assert_eq!(store.engine(), "postgresql");

    // Creates, reads, token and reference search, _lastUpdated, history.
    let condition = |id: &str, system: &str, code: &str| {
        json!({ "resourceType": "Condition", "id": id, "subject": { "reference": "Patient/p1" },
            "code": { "coding": [{ "system": system, "code": code }] },
            "verificationStatus": { "coding": [{ "code": "provisional" }] } })
    };
    let Created::New { stored, bodies, response: None } = store
        .create_all(vec![condition("a", "http://a", "I10"), condition("b", "http://b", "I10"), condition("c", "http://a", "I10.x")], None)
        .unwrap()
    else {
        panic!("create")
    };
    assert_eq!(stored[0]["meta"]["versionId"], "1");
    assert_eq!(serde_json::from_str::<Value>(&bodies[1]).unwrap(), stored[1]);
    assert_eq!(store.read("Condition", "a").unwrap().unwrap()["code"]["coding"][0]["code"], "I10");
    assert!(store.read("Condition", "zz").unwrap().is_none());
    let found = |filters: &[(&str, &str)]| {
        let f: Vec<(String, String)> = filters.iter().map(|(p, v)| (p.to_string(), v.to_string())).collect();
        ids(&store.search("Condition", &f, 10, 0).unwrap().0)
    };
    assert_eq!(found(&[("code", "I10")]), ["a", "b"]);
    assert_eq!(found(&[("code", "http://a|I10")]), ["a"]);
    assert_eq!(found(&[("code", "I10.x"), ("subject", "Patient/p1")]), ["c"]);
    assert!(found(&[("code", "I1")]).is_empty());
    assert_eq!(found(&[("_lastUpdated", "ge2000-01-01")]).len(), 3);
    assert!(found(&[("_lastUpdated", "lt2000-01-01")]).is_empty());
    let (page, total) = store.search("Condition", &[], 2, 2).unwrap();
    assert_eq!((page.len(), total), (1, 3));

    // A coder's review: a new version, If-Match checked, the decision kept, search rows moved.
    let mut reviewed = store.read("Condition", "a").unwrap().unwrap();
    reviewed["verificationStatus"]["coding"][0]["code"] = json!("confirmed");
    let stale = store.update("Condition", "a", reviewed.clone(), Some(7), "coder-1", |v| v["verificationStatus"].clone());
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    let v2 = store.update("Condition", "a", reviewed, Some(1), "coder-1", |v| v["verificationStatus"].clone()).unwrap();
    assert_eq!(v2["meta"]["versionId"], "2");
    assert_eq!(store.history("Condition", "a").unwrap().len(), 2);
    assert_eq!(store.vread("Condition", "a", 1).unwrap().unwrap()["verificationStatus"]["coding"][0]["code"], "provisional");
    assert_eq!(found(&[("verification-status", "confirmed")]), ["a"]);
    assert_eq!(found(&[("verification-status", "provisional")]), ["b", "c"]);
    // Only the current version is searched and counted, once.
    let (all, total) = store.search("Condition", &[], 10, 0).unwrap();
    assert_eq!((ids(&all), total), (vec!["a".to_owned(), "b".to_owned(), "c".to_owned()], 3));
    let feedback = store.feedback().unwrap();
    assert_eq!(feedback.len(), 1);
    assert_eq!((feedback[0].who.as_str(), feedback[0].from_version, feedback[0].to_version), ("coder-1", 1, 2));
    assert!(matches!(store.update("Condition", "nope", json!({}), None, "x", |v| v.clone()), Err(StoreError::NotFound(_))));

    // A Device with a derived id is stored once and answered as first stored.
    let device = json!({ "resourceType": "Device", "id": "agent-1", "deviceName": [{ "name": "x", "type": "model-name" }] });
    let first = store.create_one(device.clone()).unwrap();
    let again = store.create_one(device).unwrap();
    assert_eq!(first["meta"], again["meta"]);
    assert!(matches!(store.create_one(json!({ "resourceType": "Claim" })), Err(StoreError::Invalid(_))));
}

/// The same document sent at once by many clients with the same If-None-Exist: one set stored,
/// every client the same answer.
#[test]
fn racing_conditional_creates_store_one_set() {
    let url = fresh_database("jc_race");
    let store = std::sync::Arc::new(Store::open_configured(&jointcoder::catalog::DataDir::new("."), Some(&url)).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                let claim = json!({ "resourceType": "Claim", "id": format!("k{i}"), "patient": { "reference": "Patient/p" } });
                let build = Box::new(|stored: &[Value]| json!({ "claim": stored[0]["id"] }));
                match store.create_all(vec![claim], Some(Conditional { key: "doc-1".into(), digest: "d1".into(), build })).unwrap() {
                    Created::New { response: Some(r), .. } | Created::Existing(r) => r,
                    other => panic!("{other:?}"),
                }
            })
        })
        .collect();
    let answers: Vec<Value> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    let (_, total) = store.search("Claim", &[], 100, 0).unwrap();
    assert_eq!(total, 1);
    assert_eq!(store.conditional("doc-1", "d1").unwrap().unwrap(), answers[0]);
}

/// `$code` on a server that differs from the default only by its store URL: coded, stored in
/// PostgreSQL, readable and searchable, and still there for a second server on the same
/// database.
#[test]
fn code_operation_stores_in_postgresql() {
    let url = fresh_database("jc_server");
    let data = tempfile::tempdir().unwrap();
    let config = || jointcoder::config::Config { store_url: Some(url.clone()), ..common::test_config(data.path().to_owned()) };
    let addr = common::serve(config(), common::terminology().clone());
    let bundle = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/requests/discharge-bundle.json")).unwrap();
    let r = common::post_json(&addr, "/fhir/Bundle/$code", &bundle);
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    let resources: Vec<&Value> = answer["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).collect();
    let claim = resources.iter().find(|r| r["resourceType"] == "Claim").unwrap();
    let principal = resources.iter().find(|r| r["resourceType"] == "Condition").unwrap();
    let code = principal["code"]["coding"][0]["code"].as_str().unwrap();

    let again = common::serve(config(), common::terminology().clone());
    for addr in [&addr, &again] {
        let read = common::get(addr, &format!("/fhir/Claim/{}", claim["id"].as_str().unwrap()));
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(read.json()["diagnosis"], claim["diagnosis"]);
        let hits = common::get(addr, &format!("/fhir/Condition?code={}", common::enc(code))).json();
        assert!(hits["entry"].as_array().unwrap().iter().any(|e| e["resource"]["id"] == principal["id"]), "{hits}");
        let provenance = common::get(addr, &format!("/fhir/Provenance?target=Condition/{}", principal["id"].as_str().unwrap())).json();
        assert!(provenance["total"].as_u64().unwrap() >= 1, "{provenance}");
    }
}

/// Compositions stored before they had search rows are indexed when a newer server opens the
/// database (the schema version says which rows a database holds).
#[test]
fn compositions_stored_before_their_search_rows_are_indexed_on_open() {
    let url = fresh_database("jc_reindex");
    let dir = jointcoder::catalog::DataDir::new(".");
    let case = json!({
        "resourceType": "Composition", "id": "case-1", "status": "final",
        "identifier": { "system": "urn:jointcoder:record-id", "value": "R-17" },
        "category": [{ "coding": [{ "system": "https://x/CodeSystem/workbench", "code": "coder-case" }] }]
    });
    Store::open_configured(&dir, Some(&url)).unwrap().create_all(vec![case], None).unwrap();
    let status = Command::new("psql")
        .args([url.as_str(), "-q", "-c", "DELETE FROM search_param WHERE type = 'Composition'", "-c", "UPDATE schema_version SET version = 3"])
        .status()
        .expect("psql");
    assert!(status.success());
    let store = Store::open_configured(&dir, Some(&url)).unwrap();
    let by = |param: &str, value: &str| store.search("Composition", &[(param.into(), value.into())], 10, 0).unwrap().1;
    assert_eq!(by("identifier", "R-17"), 1);
    assert_eq!(by("category", "https://x/CodeSystem/workbench|coder-case"), 1);
    assert_eq!(by("status", "final"), 1);
}
