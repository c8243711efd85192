//! Bearer tokens on a real server: scopes mapped to interactions, 401 vs 403, and the tokens an
//! attacker would try (expired, not yet valid, wrong issuer or audience, forged, `alg: none`,
//! algorithm confusion) refused. The EC key pair under tests/fixtures exists for these tests only.
mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::{get, request};
use jointcoder::terminology::{Terminology, TerminologyOptions};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

const SECRET: &str = "dev-secret-for-tests-only-0123456789abcdef";
const ISS: &str = "https://auth.example.org";
const AUD: &str = "jointcoder";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn hs_token(claims: serde_json::Value, secret: &str) -> String {
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn claims(scope: &str) -> serde_json::Value {
    json!({ "iss": ISS, "aud": AUD, "sub": "billing-system", "exp": now() + 300, "nbf": now() - 10, "scope": scope })
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn server_with(jwt: jointcoder::config::JwtConfig) -> common::TestServer {
    let t = Terminology::load(&TerminologyOptions::new(common::terminology_dir())).unwrap();
    let mut cfg = common::test_config(std::env::temp_dir());
    cfg.jwt = jwt;
    common::start_server(cfg, t)
}

fn bearer(addr: &str, method: &str, path: &str, token: &str, body: &[u8]) -> common::Response {
    let auth = format!("Bearer {token}");
    request(addr, method, path, &[("Authorization", &auth), ("Content-Type", "application/fhir+json")], body)
}

#[test]
fn hs256_scopes_401_and_403() {
    let s = server_with(jointcoder::config::JwtConfig {
        hs256_secret: Some(SECRET.into()),
        issuer: Some(ISS.into()),
        audience: Some(AUD.into()),
        token_endpoint: Some("https://auth.example.org/token".into()),
        ..Default::default()
    });
    let a = s.addr.as_str();
    assert_eq!(get(a, "/fhir/metadata").status, 200, "discovery stays public");
    let smart = get(a, "/fhir/.well-known/smart-configuration");
    assert_eq!(smart.status, 200);
    assert_eq!(smart.json()["token_endpoint"], "https://auth.example.org/token");
    assert!(smart.json()["capabilities"].as_array().unwrap().iter().any(|c| c == "permission-v2"));

    let r = get(a, "/fhir/Claim");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    assert_eq!(r.json()["issue"][0]["code"], "login");

    let reader = hs_token(claims("system/Claim.rs"), SECRET);
    assert_eq!(bearer(a, "GET", "/fhir/Claim", &reader, b"").status, 200);
    let r = bearer(a, "POST", "/fhir/Bundle/$code", &reader, b"{}");
    assert_eq!(r.status, 403, "reading Claims does not allow coding");
    assert_eq!(r.json()["issue"][0]["code"], "forbidden");
    assert_eq!(bearer(a, "GET", "/fhir/Condition", &reader, b"").status, 403);

    let coder = hs_token(claims("system/Condition.cruds system/Procedure.cruds system/Claim.cruds system/Provenance.c"), SECRET);
    let body = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requests/discharge-bundle.json")).unwrap();
    assert_eq!(bearer(a, "POST", "/fhir/Bundle/$code", &coder, &body).status, 200);
    let wildcard = hs_token(claims("system/*.rs"), SECRET);
    assert_eq!(bearer(a, "GET", "/fhir/Provenance", &wildcard, b"").status, 200);

    // Every access to coded resources was audited, with who and what but no clinical text.
    let admin = hs_token(claims("system/AuditEvent.rs"), SECRET);
    // The last request's event may still be on its way to the disk (group commit).
    let events = common::eventually(|| {
        let events = bearer(a, "GET", "/fhir/AuditEvent?agent=billing-system&_count=100", &admin, b"").json();
        events["entry"].as_array()?.iter().any(|e| e["resource"]["entity"][0]["what"]["reference"] == "/Bundle/$code" && e["resource"]["outcome"] == "0").then_some(events)
    })
    .expect("the $code call is audited");
    let list = events["entry"].as_array().unwrap();
    assert!(list.iter().any(|e| e["resource"]["subtype"][0]["code"] == "search-type" && e["resource"]["outcome"] == "0"));
    assert!(list.iter().any(|e| e["resource"]["entity"][0]["what"]["reference"] == "/Bundle/$code" && e["resource"]["outcome"] == "4"), "the refused $code is audited");
    assert!(list.iter().any(|e| e["resource"]["entity"][0]["what"]["reference"] == "/Bundle/$code" && e["resource"]["outcome"] == "0"));
    let text = events.to_string();
    assert!(!text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "audit events carry no clinical text");
    common::assert_valid_r4_external(&list.iter().take(3).map(|e| e["resource"].clone()).collect::<Vec<_>>());
    assert_eq!(bearer(a, "GET", "/fhir/AuditEvent", &reader, b"").status, 403, "only admins read the audit trail");

    // The tokens an attacker tries.
    let mut expired = claims("system/*.rs");
    expired["exp"] = json!(now() - 3600);
    let mut early = claims("system/*.rs");
    early["nbf"] = json!(now() + 3600);
    let mut wrong_aud = claims("system/*.rs");
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = claims("system/*.rs");
    wrong_iss["iss"] = json!("https://evil.example");
    let header_none = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims("system/*.rs").to_string());
    for (what, token) in [
        ("expired", hs_token(expired, SECRET)),
        ("not yet valid", hs_token(early, SECRET)),
        ("wrong audience", hs_token(wrong_aud, SECRET)),
        ("wrong issuer", hs_token(wrong_iss, SECRET)),
        ("forged", hs_token(claims("system/*.rs"), "another-secret-that-is-long-enough-00000")),
        ("alg none", format!("{header_none}.{payload}.")),
        ("garbage", "not.a.jwt".to_string()),
    ] {
        let r = bearer(a, "GET", "/fhir/Claim", &token, b"");
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert_eq!(r.json()["resourceType"], "OperationOutcome");
    }
}

#[test]
fn es256_public_key_and_algorithm_confusion() {
    let s = server_with(jointcoder::config::JwtConfig {
        public_key_pem: Some(fixture("test-only-es256-public.pem")),
        issuer: Some(ISS.into()),
        audience: Some(AUD.into()),
        ..Default::default()
    });
    let a = s.addr.as_str();
    let private = std::fs::read(fixture("test-only-es256-private.pem")).unwrap();
    let good = encode(&Header::new(Algorithm::ES256), &claims("system/Claim.rs"), &EncodingKey::from_ec_pem(&private).unwrap()).unwrap();
    assert_eq!(bearer(a, "GET", "/fhir/Claim", &good, b"").status, 200);
    // HS256 signed with the public key as the secret: the classic confusion attack.
    let public = std::fs::read_to_string(fixture("test-only-es256-public.pem")).unwrap();
    let confused = hs_token(claims("system/Claim.rs"), &public);
    assert_eq!(bearer(a, "GET", "/fhir/Claim", &confused, b"").status, 401);
}

#[test]
fn short_hs256_secrets_are_refused_at_start() {
    let cfg = jointcoder::config::JwtConfig { hs256_secret: Some("short".into()), ..Default::default() };
    let err = jointcoder::server::auth::Verifier::from_config(&cfg).err().expect("refused");
    assert!(err.contains("32 bytes"));
}
