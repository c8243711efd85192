//! SMART-style authorization: JWT bearer tokens checked against configured keys (RS256/ES256
//! public keys or a JWKS file; HS256 for development), `iss`/`aud`/`exp`/`nbf` validated, and
//! SMART v2 scopes (`system/Claim.rs`, `user/Condition.cruds`, v1 `.read`/`.write`) mapped to
//! the interaction each request performs. A token is only ever checked with the algorithm of
//! the key it names, so `alg: none` and algorithm confusion fail.

use std::path::Path;

use actix_web::body::{BoxBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::error::ApiError;
use super::AppState;
use crate::config::JwtConfig;
use crate::fhir::outcome::IssueType;

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

pub struct Verifier {
    keys: Vec<Key>,
    issuer: Option<String>,
    audience: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    sub: Option<String>,
}

/// Who made a request and what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: String,
    pub scopes: Vec<String>,
}

impl Verifier {
    /// `None` when no key is configured: authentication is off.
    pub fn from_config(cfg: &JwtConfig) -> Result<Option<Verifier>, String> {
        let mut keys = Vec::new();
        if let Some(secret) = &cfg.hs256_secret {
            if secret.len() < 32 {
                return Err("JOINTCODER_JWT_HS256_SECRET must be at least 32 bytes".into());
            }
            keys.push(Key { kid: None, alg: Algorithm::HS256, key: DecodingKey::from_secret(secret.as_bytes()) });
        }
        if let Some(path) = &cfg.public_key_pem {
            let pem = read(path)?;
            let (alg, key) = match DecodingKey::from_rsa_pem(&pem) {
                Ok(k) => (Algorithm::RS256, k),
                Err(_) => (Algorithm::ES256, DecodingKey::from_ec_pem(&pem).map_err(|e| format!("{}: neither an RSA nor an EC public key: {e}", path.display()))?),
            };
            keys.push(Key { kid: None, alg, key });
        }
        if let Some(path) = &cfg.jwks_file {
            let set: JwkSet = serde_json::from_slice(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
            for jwk in &set.keys {
                let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                    (Some(jsonwebtoken::jwk::KeyAlgorithm::ES256), _) | (None, jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_)) => Algorithm::ES256,
                    (Some(jsonwebtoken::jwk::KeyAlgorithm::RS256), _) | (None, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)) => Algorithm::RS256,
                    (Some(other), _) => return Err(format!("{}: key algorithm {other:?} is not accepted (RS256, ES256)", path.display())),
                    _ => return Err(format!("{}: unsupported key type", path.display())),
                };
                let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("{}: {e}", path.display()))?;
                keys.push(Key { kid: jwk.common.key_id.clone(), alg, key });
            }
        }
        if keys.is_empty() {
            return Ok(None);
        }
        Ok(Some(Verifier { keys, issuer: cfg.issuer.clone(), audience: cfg.audience.clone() }))
    }

    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let unauthorized = |m: String| ApiError::new(StatusCode::UNAUTHORIZED, IssueType::Login, m);
        let head = jsonwebtoken::decode_header(token).map_err(|e| unauthorized(format!("the bearer token is not a JWT this server accepts: {e}")))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.alg == head.alg && (head.kid.is_none() || k.kid.is_none() || k.kid == head.kid))
            .ok_or_else(|| unauthorized(format!("tokens signed with {:?} are not accepted here", head.alg)))?;
        let mut v = Validation::new(key.alg);
        v.validate_nbf = true;
        v.leeway = 30;
        match &self.issuer {
            Some(i) => v.set_issuer(&[i]),
            None => {}
        }
        match &self.audience {
            Some(a) => v.set_audience(&[a]),
            None => v.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &v).map_err(|e| unauthorized(format!("the bearer token was refused: {e}")))?;
        Ok(Principal {
            subject: data.claims.sub.unwrap_or_else(|| "unknown".into()),
            scopes: data.claims.scope.split_whitespace().map(str::to_owned).collect(),
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// What a request does: (resource type, SMART v2 permission letter) pairs it needs, or `None`
/// for the public discovery endpoints.
pub fn required(method: &Method, path: &str) -> Option<Vec<(String, char)>> {
    let p = path.strip_prefix("/fhir").unwrap_or(path);
    if p == "/metadata" || p.starts_with("/.well-known/") {
        return None;
    }
    let segs: Vec<&str> = p.trim_matches('/').split('/').collect();
    let need = |ty: &str, c: char| (ty.to_owned(), c);
    if segs.iter().any(|s| *s == "$code") {
        return Some(vec![need("Condition", 'c'), need("Procedure", 'c'), need("Claim", 'c')]);
    }
    if segs.iter().any(|s| *s == "$upload-external-code-system") {
        return Some(vec![need("CodeSystem", 'c')]);
    }
    if segs.iter().any(|s| s.starts_with("$export")) {
        return Some(vec![need("Claim", 'r'), need("Claim", 's')]);
    }
    let ty = segs.first().copied().unwrap_or("");
    let ty = if ty.starts_with('$') || ty.is_empty() { "*" } else { ty };
    let op = segs.iter().any(|s| s.starts_with('$'));
    Some(match *method {
        Method::POST if !op => vec![need(ty, 'c')],
        Method::PUT => vec![need(ty, 'u')],
        Method::DELETE => vec![need(ty, 'd')],
        _ if segs.len() == 1 && !op => vec![need(ty, 's')],
        _ => vec![need(ty, 'r')],
    })
}

/// Whether `scopes` grant `letter` on `ty`: `context/Type.perms`, v2 letters or v1 read/write/*.
pub fn granted(scopes: &[String], ty: &str, letter: char) -> bool {
    scopes.iter().any(|s| {
        let Some((ctx, rest)) = s.split_once('/') else { return false };
        if !matches!(ctx, "system" | "user" | "patient") {
            return false;
        }
        let Some((rty, perms)) = rest.split_once('.') else { return false };
        let perms = perms.split('?').next().unwrap_or("");
        let letters = match perms {
            "read" => "rs",
            "write" => "cud",
            "*" => "cruds",
            p => p,
        };
        (rty == "*" || rty == ty) && letters.contains(letter)
    })
}

/// The middleware: with a verifier configured, every request but discovery needs a valid
/// token with the scopes its interaction requires.
pub async fn authorize(req: ServiceRequest, next: Next<BoxBody>) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(verifier) = state.as_ref().and_then(|s| s.verifier.as_ref()) else {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    };
    let Some(needed) = required(req.method(), req.path()) else {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let result = match token {
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, IssueType::Login, "a bearer token is required")),
        Some(t) => verifier.verify(t).and_then(|who| {
            // Known even when refused for scope: the audit trail names who tried.
            actix_web::HttpMessage::extensions_mut(&req).insert(who.clone());
            match needed.iter().find(|(ty, c)| !granted(&who.scopes, ty, *c)) {
                Some((ty, c)) => Err(ApiError::new(StatusCode::FORBIDDEN, IssueType::Forbidden, format!("the token's scopes do not allow '{c}' on {ty}"))),
                None => Ok(who),
            }
        }),
    };
    match result {
        Ok(who) => {
            tracing::debug!(subject = %who.subject, "authorized");
            next.call(req).await.map(|r| r.map_into_boxed_body())
        }
        Err(e) => {
            let mut resp = actix_web::ResponseError::error_response(&e);
            if e.status == StatusCode::UNAUTHORIZED {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"jointcoder\""));
            }
            Ok(req.into_response(resp))
        }
    }
}

/// `/.well-known/smart-configuration`: what a SMART backend-services client needs to know.
pub async fn smart_configuration(state: web::Data<AppState>) -> HttpResponse {
    let cfg = &state.config.jwt;
    let body = serde_json::json!({
        "issuer": cfg.issuer,
        "token_endpoint": cfg.token_endpoint.clone().unwrap_or_else(|| format!("{}/token", cfg.issuer.clone().unwrap_or_default())),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "scopes_supported": [
            "system/Claim.rs", "system/Condition.cruds", "system/Procedure.cruds", "user/Condition.cruds",
            "user/Procedure.cruds", "system/*.rs", "system/CodeSystem.cu"
        ],
        "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1"],
        "code_challenge_methods_supported": ["S256"]
    });
    HttpResponse::Ok().content_type("application/json").body(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn scopes_map_to_interactions() {
        assert!(granted(&s(&["system/Claim.rs"]), "Claim", 'r'));
        assert!(granted(&s(&["system/Claim.rs"]), "Claim", 's'));
        assert!(!granted(&s(&["system/Claim.rs"]), "Claim", 'c'));
        assert!(!granted(&s(&["system/Claim.rs"]), "Condition", 'r'));
        assert!(granted(&s(&["user/Condition.cruds"]), "Condition", 'u'));
        assert!(granted(&s(&["system/*.rs"]), "Provenance", 's'));
        assert!(granted(&s(&["patient/Condition.read"]), "Condition", 'r'));
        assert!(!granted(&s(&["Condition.read", "system/Condition"]), "Condition", 'r'));
    }

    #[test]
    fn requests_map_to_permissions() {
        assert_eq!(required(&Method::GET, "/fhir/metadata"), None);
        assert_eq!(required(&Method::GET, "/fhir/Claim"), Some(vec![("Claim".into(), 's')]));
        assert_eq!(required(&Method::GET, "/fhir/Claim/1"), Some(vec![("Claim".into(), 'r')]));
        assert_eq!(required(&Method::PUT, "/fhir/Condition/1"), Some(vec![("Condition".into(), 'u')]));
        assert_eq!(required(&Method::GET, "/fhir/CodeSystem/icd-10-cn-clinical/$lookup"), Some(vec![("CodeSystem".into(), 'r')]));
        assert!(required(&Method::POST, "/fhir/Bundle/$code").unwrap().contains(&("Claim".into(), 'c')));
    }
}
