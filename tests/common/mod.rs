//! Shared test support: the real terminology from the shared data directory, a real server on
//! loopback, and a minimal HTTP/1.1 client (no client crate needed for tests).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::OnceLock;

use jointcoder::config::Config;
use jointcoder::server::AppState;
use jointcoder::terminology::{Terminology, TerminologyOptions};

pub fn terminology_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/terminology")
}

pub fn eval_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/eval")
}

/// Loaded once per test binary: the four national editions take a moment to index.
pub fn terminology() -> &'static Terminology {
    static T: OnceLock<Terminology> = OnceLock::new();
    T.get_or_init(|| Terminology::load(&TerminologyOptions::new(terminology_dir())).expect("terminology loads"))
}

pub fn test_config(data_dir: PathBuf) -> Config {
    Config { data_dir, terminology_dir: terminology_dir(), addr: "127.0.0.1:0".into(), ..Config::default() }
}

pub struct TestServer {
    pub addr: String,
    pub data: tempfile::TempDir,
}

/// Starts the real actix server on an ephemeral loopback port in a background thread.
pub fn start_server(mut config: Config, terminology: Terminology) -> TestServer {
    let data = tempfile::tempdir().unwrap();
    config.data_dir = data.path().to_owned();
    let addr = serve(config, terminology);
    TestServer { addr, data }
}

/// Starts the real server on the configured data directory (a restart is a second server on
/// the same one); answers its address.
pub fn serve(mut config: Config, terminology: Terminology) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    config.addr = addr.clone();
    let state = actix_web::web::Data::new(AppState::new(config, terminology).expect("state"));
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            jointcoder::server::start(state, listener).unwrap().await.unwrap();
        })
    });
    addr
}

/// As [`serve`], also answering the server's state, for tests that look at what it stored.
pub fn serve_state(mut config: Config, terminology: Terminology) -> (String, actix_web::web::Data<AppState>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    config.addr = addr.clone();
    let state = actix_web::web::Data::new(AppState::new(config, terminology).expect("state"));
    let served = state.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            jointcoder::server::start(served, listener).unwrap().await.unwrap();
        })
    });
    (addr, state)
}

/// What `probe` answers once it answers something, trying for up to 5 s: audit events are
/// group-committed after their request is answered (`Store::create_later`), so a search right
/// after the request may not see them yet.
pub fn eventually<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if std::time::Instant::now() > until {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body as sent (a raw Binary need not be text).
    pub bytes: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

pub fn get(addr: &str, path: &str) -> Response {
    request(addr, "GET", path, &[], b"")
}

pub fn post_json(addr: &str, path: &str, body: &str) -> Response {
    request(addr, "POST", path, &[("Content-Type", "application/fhir+json")], body.as_bytes())
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("response has a head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status: u16 = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response { status, headers, body: String::from_utf8_lossy(&body).into_owned(), bytes: body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let pos = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&data[..pos]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[pos + 2..pos + 2 + size]);
        data = &data[pos + 2 + size + 2..];
    }
    out
}

/// Every FHIR resource the server returns must parse as R4 in fhirbolt's strict mode.
pub fn assert_valid_r4(value: &serde_json::Value) {
    if let Err(e) = fhir_model::check_r4_strict(&value.to_string()) {
        panic!("not valid FHIR R4 ({e}): {value}");
    }
}

pub fn param<'a>(params: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    params["parameter"].as_array()?.iter().find(|p| p["name"] == name)
}

/// Percent-encodes a query value (what any HTTP client does with Chinese text).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Validates resources with the external validator (Python fhir.resources, FHIR 4.0.1) that
/// `tests/setup_validator.sh` installs: our own builders are not the judge of our output.
pub fn assert_valid_r4_external(resources: &[serde_json::Value]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/fhir-validator/bin/python");
    assert!(python.is_file(), "the external FHIR validator is missing: run tests/setup_validator.sh (the README's test command does)");
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        let p = dir.path().join(format!("{i}.json"));
        std::fs::write(&p, r.to_string()).unwrap();
        files.push(p);
    }
    let out = std::process::Command::new(python).arg(root.join("tests/validate_r4.py")).args(&files).output().unwrap();
    assert!(out.status.success(), "external FHIR R4 validation failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
