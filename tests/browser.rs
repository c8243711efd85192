//! The coders' workbench in a real headless Chromium (Debian's `chromium`, driven by npm's
//! `playwright-core`, both installed by tests/setup.sh): paste a record, edit a section, code,
//! open a stage card, click a code and see its evidence marked, accept, correct (with the code
//! search) and reject, reload and find the reviews kept, a stale review shown as someone
//! else's change, export XLSX and read it back, a batch of three with a bad row, the English
//! page, the tablet width, keyboard use, no layout shift while coding; and with authentication
//! on, the token asked for, kept in session storage and sent. Every state is photographed into target/browser-shots and checked.
mod common;

use std::path::Path;

const SECRET: &str = "browser-test-secret-0123456789abcdef";

#[test]
fn a_coder_works_a_case_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(Path::new("/usr/bin/chromium").is_file(), "Debian's chromium is missing: run tests/setup.sh");
    assert!(root.join("tests/clients/node_modules/playwright-core").is_dir(), "playwright-core is missing: run tests/setup_clients.sh");
    let server = common::start_server(common::test_config(std::env::temp_dir()), common::terminology().clone());
    let mut auth = common::test_config(std::env::temp_dir());
    auth.jwt = jointcoder::config::JwtConfig { hs256_secret: Some(SECRET.into()), ..Default::default() };
    let auth_server = common::start_server(auth, common::terminology().clone());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": "coder-browser", "scope": "user/*.cruds", "exp": now + 600 }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let shots = root.join("target/browser-shots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let out = std::process::Command::new("node")
        .arg(root.join("tests/clients/workbench_browser.mjs"))
        .arg(format!("http://{}", server.addr))
        .arg(&shots)
        .arg(format!("http://{}", auth_server.addr))
        .arg(&token)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(r["failure"].is_null(), "the browser run stopped: {}", r["failure"]);
    assert_eq!(r["errors"], serde_json::json!([]), "no script errors on the page");
    assert!(r["url"].as_str().unwrap().contains("/ui/cases/"), "the case's address (its id only) is pushed: {}", r["url"]);
    assert_eq!(r["codedWithEdit"], true, "the edited section was coded");
    assert!(r["focusedAfterTab"].as_str().unwrap().contains("解析分节"), "Tab from the paste box reaches its button: {}", r["focusedAfterTab"]);
    assert!(r["layoutShift"].as_f64().unwrap() < 0.1, "no layout shift while coding: {}", r["layoutShift"]);
    assert_eq!(r["cardOpen"], true);
    assert!(!r["mark"].as_str().unwrap().is_empty());
    assert_eq!(r["mark"], r["evidence"], "the marked span is the code's evidence");
    assert_eq!(r["markSection"], r["evidenceSection"]);
    assert!(r["options"].as_array().unwrap().iter().any(|o| o.as_str().unwrap().starts_with("I25.10")), "the code search offers codes: {}", r["options"]);
    assert_eq!(r["reviewers"], serde_json::json!(["unverified:李四"]), "the reviewer's name goes with each review, unverified");
    let classes: Vec<&str> = r["afterReload"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(&classes[..3], ["accepted", "corrected", "rejected"], "the reviews are kept across a reload");
    assert_eq!(r["putStatus"], 200);
    assert!(r["conflict"].as_str().unwrap().contains("已被他人修改"), "{}", r["conflict"]);
    assert_eq!(r["stillConfirmed"], "confirmed", "the other reviewer's change is not overwritten");
    assert_eq!(r["batchDone"], 2);
    let failed = r["batchFailed"].as_array().unwrap();
    assert!(failed.len() == 1 && failed[0].as_str().unwrap().contains("invalid JSON"), "{failed:?}");
    assert!(r["english"].as_str().unwrap().contains("coding workbench"));
    assert_eq!(r["overflow"], false, "nothing wider than a tablet");

    assert_eq!(r["askedForToken"], true, "with authentication on the page asks for a token");
    assert!(r["who"].as_str().unwrap().contains("coder-browser"), "the identity the verified token names: {}", r["who"]);
    assert_eq!(r["tokenInSession"], true, "the token is kept in session storage only");
    assert_eq!(r["authedFragment"], true, "fragments carry the token");
    assert_eq!(r["tokenInUrl"], false);

    let xlsx = std::fs::read(shots.join("cases.xlsx")).expect("the XLSX was downloaded");
    let back = jointcoder::record::io::read_bytes("cases.xlsx", &xlsx).unwrap();
    assert_eq!(back.records.len(), 1);
    assert_eq!(back.records[0].record_id, "WB-BROWSER-1");
    assert!(back.records[0].gold.as_ref().unwrap().diseases.contains(&"I25.103".to_owned()), "{:?}", back.records[0].gold);

    // Each state was photographed, and each photograph differs from the one before.
    let mut previous: Vec<u8> = Vec::new();
    for name in ["01-empty", "02-sections", "03-coded", "04-evidence", "05-reviewed", "06-reloaded", "07-conflict", "08-history", "09-batch", "10-english", "11-tablet", "12-token", "13-authed"] {
        let png = std::fs::read(shots.join(format!("{name}.png"))).unwrap_or_else(|_| panic!("no screenshot {name}"));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000, "{name} is a real picture");
        assert_ne!(png, previous, "{name} shows a new state");
        previous = png;
    }
}
