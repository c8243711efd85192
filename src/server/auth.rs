//! SMART-style authentication: JWT bearer tokens checked against configured keys (RS256/ES256
//! public keys or a JWKS file; HS256 for development), `exp`/`nbf` validated and a configured
//! `iss`/`aud` required, and SMART v2 scopes parsed as the spec writes them (`system/Claim.rs`,
//! `user/Condition.cruds`, `patient/*.rs` with the token's `patient`, v1 `.read`/`.write`).
//! A token is only ever checked with the algorithm of the key it names, so `alg: none` and
//! algorithm confusion fail. What each routed request needs is decided in [`super::access`].

use std::path::Path;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::error::{ApiError, ErrorCode};
use super::AppState;
use crate::config::JwtConfig;

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
    /// SMART launch context: the patient a `patient/` scope is about.
    #[serde(default)]
    patient: Option<String>,
}

/// Who made a request (from a verified token only) and what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: String,
    pub grants: Vec<Grant>,
    /// The token's `patient` claim: the one patient `patient/` scopes reach.
    pub patient: Option<String>,
}

/// Whose data a SMART scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    System,
    User,
    Patient,
}

/// One scope as SMART App Launch v2 defines it: `context/Type.permissions[?restriction]`,
/// permissions a non-empty subset of `cruds` in that order, or v1 `read`, `write`, `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub context: Context,
    /// A resource type, or `*`.
    pub ty: String,
    /// Subset of `cruds`.
    pub letters: String,
    /// A `?param=value` restriction. This server enforces none, so a restricted scope grants
    /// nothing (a narrower grant must never be read as a wider one).
    pub restricted: bool,
}

impl Grant {
    /// `None` for anything that is not a well-formed SMART resource scope (`openid`,
    /// `launch/patient`, `system/*.readwrite`, `system/Condition.dru`, …).
    pub fn parse(scope: &str) -> Option<Grant> {
        let (ctx, rest) = scope.split_once('/')?;
        let context = match ctx {
            "system" => Context::System,
            "user" => Context::User,
            "patient" => Context::Patient,
            _ => return None,
        };
        let (body, restricted) = match rest.split_once('?') {
            Some((body, _)) => (body, true),
            None => (rest, false),
        };
        let (ty, perms) = body.split_once('.')?;
        let type_ok = ty == "*" || (ty.len() <= 64 && ty.starts_with(|c: char| c.is_ascii_uppercase()) && ty.chars().all(|c| c.is_ascii_alphanumeric()));
        if !type_ok {
            return None;
        }
        let letters = match perms {
            "read" => "rs".to_owned(),
            "write" => "cud".to_owned(),
            "*" => "cruds".to_owned(),
            p => {
                // Each letter once, in the order of `cruds`.
                let mut order = "cruds".chars();
                if p.is_empty() || !p.chars().all(|c| order.any(|o| o == c)) {
                    return None;
                }
                p.to_owned()
            }
        };
        Some(Grant { context, ty: ty.to_owned(), letters, restricted })
    }

    fn covers(&self, ty: &str, letter: char) -> bool {
        !self.restricted && (self.ty == "*" || self.ty == ty) && self.letters.contains(letter)
    }
}

/// How far a principal may go for one interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every resource of the type.
    All,
    /// Only resources of this patient (a `patient/` scope with the token's `patient` claim).
    Patient(String),
}

impl Principal {
    /// Whether the scopes allow `letter` on `ty`, and how far: a `system/` or `user/` scope
    /// reaches every resource, a `patient/` scope only the token's patient, and not at all
    /// when the token names none.
    pub fn reach(&self, ty: &str, letter: char) -> Result<Reach, String> {
        if self.grants.iter().any(|g| g.context != Context::Patient && g.covers(ty, letter)) {
            return Ok(Reach::All);
        }
        if self.grants.iter().any(|g| g.context == Context::Patient && g.covers(ty, letter)) {
            return match &self.patient {
                Some(p) => Ok(Reach::Patient(p.clone())),
                None => Err(format!("the token's patient/ scope allows '{letter}' on {ty} but the token names no patient")),
            };
        }
        Err(format!("the token's scopes do not allow '{letter}' on {ty}"))
    }
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
        let unauthorized = |m: String| ApiError::of(ErrorCode::Unauthenticated, m);
        let head = jsonwebtoken::decode_header(token).map_err(|e| unauthorized(format!("the bearer token is not a JWT this server accepts: {e}")))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.alg == head.alg && (head.kid.is_none() || k.kid.is_none() || k.kid == head.kid))
            .ok_or_else(|| unauthorized(format!("tokens signed with {:?} are not accepted here", head.alg)))?;
        let mut v = Validation::new(key.alg);
        v.validate_nbf = true;
        v.leeway = 30;
        // A configured issuer or audience is required, not only checked when present.
        let mut required = vec!["exp"];
        if let Some(i) = &self.issuer {
            v.set_issuer(&[i]);
            required.push("iss");
        }
        match &self.audience {
            Some(a) => {
                v.set_audience(&[a]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &v).map_err(|e| unauthorized(format!("the bearer token was refused: {e}")))?;
        let subject = data.claims.sub.filter(|s| !s.is_empty()).ok_or_else(|| unauthorized("the bearer token names no subject (sub)".into()))?;
        Ok(Principal {
            subject,
            grants: data.claims.scope.split_whitespace().filter_map(Grant::parse).collect(),
            patient: data.claims.patient.filter(|p| !p.is_empty()),
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The bearer token of a request, verified: `Ok(None)` when the request carries none.
pub fn bearer_principal(verifier: &Verifier, headers: &header::HeaderMap) -> Result<Option<Principal>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| ApiError::of(ErrorCode::Unauthenticated, "the Authorization header is not a bearer token"))?;
    verifier.verify(token).map(Some)
}

/// The authorization server's token endpoint as discovery and the CapabilityStatement
/// advertise it: only as configured, and only an absolute URL.
pub fn advertised_token_endpoint(cfg: &JwtConfig) -> Option<&str> {
    cfg.token_endpoint.as_deref().filter(|e| e.starts_with("https://") || e.starts_with("http://"))
}

/// `/.well-known/smart-configuration`: what a SMART backend-services client needs to know.
/// The token endpoint belongs to the authorization server, so it is served only as configured
/// (`JOINTCODER_SMART_TOKEN_ENDPOINT`, an absolute URL), never guessed; without one there is
/// no SMART discovery here (404), and `issuer` appears only when one is configured.
pub async fn smart_configuration(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let cfg = &state.config.jwt;
    let Some(token_endpoint) = advertised_token_endpoint(cfg) else {
        return Err(ApiError::of(
            ErrorCode::NotFound,
            "no SMART authorization server is configured: set JOINTCODER_SMART_TOKEN_ENDPOINT (jwt.token_endpoint) to its absolute token URL",
        ));
    };
    let mut body = serde_json::json!({
        "token_endpoint": token_endpoint,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "scopes_supported": [
            "system/Claim.rs", "system/Condition.cruds", "system/Procedure.cruds", "user/Condition.cruds",
            "user/Procedure.cruds", "system/*.rs", "patient/Condition.rs", "patient/Procedure.rs", "patient/Claim.rs", "system/CodeSystem.cu"
        ],
        "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1", "permission-patient"],
        "code_challenge_methods_supported": ["S256"]
    });
    if let Some(issuer) = &cfg.issuer {
        body["issuer"] = serde_json::json!(issuer);
    }
    Ok(HttpResponse::Ok().content_type("application/json").body(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(scopes: &[&str], patient: Option<&str>) -> Principal {
        Principal { subject: "t".into(), grants: scopes.iter().filter_map(|s| Grant::parse(s)).collect(), patient: patient.map(str::to_owned) }
    }

    #[test]
    fn scopes_are_parsed_as_smart_v2_defines_them() {
        let g = Grant::parse("system/Claim.rs").unwrap();
        assert_eq!((g.context, g.ty.as_str(), g.letters.as_str(), g.restricted), (Context::System, "Claim", "rs", false));
        assert_eq!(Grant::parse("user/Condition.read").unwrap().letters, "rs");
        assert_eq!(Grant::parse("user/Condition.write").unwrap().letters, "cud");
        assert_eq!(Grant::parse("system/*.*").unwrap().letters, "cruds");
        for bad in ["system/*.readwrite", "system/Condition.dru", "system/Condition.rr", "system/Condition.", "system/Condition", "Condition.read", "launch/patient", "openid", "admin/Condition.r", "system/condition.r"] {
            assert_eq!(Grant::parse(bad), None, "{bad}");
        }
        assert!(Grant::parse("system/*.rs?patient=p1").unwrap().restricted);
    }

    #[test]
    fn reach_follows_context_and_restrictions() {
        assert_eq!(who(&["system/Claim.rs"], None).reach("Claim", 's'), Ok(Reach::All));
        assert!(who(&["system/Claim.rs"], None).reach("Claim", 'c').is_err());
        assert!(who(&["system/Claim.rs"], None).reach("Condition", 'r').is_err());
        assert_eq!(who(&["user/Condition.cruds"], None).reach("Condition", 'u'), Ok(Reach::All));
        assert!(who(&["system/*.rs?patient=p1"], None).reach("Condition", 'r').is_err(), "restrictions are not widened");
        assert!(who(&["patient/*.rs"], None).reach("Condition", 'r').is_err(), "no patient claim");
        assert_eq!(who(&["patient/*.rs"], Some("p1")).reach("Condition", 'r'), Ok(Reach::Patient("p1".into())));
        assert!(who(&["system/Condition.dru"], None).reach("Condition", 'u').is_err());
        assert!(who(&["system/*.readwrite"], None).reach("Condition", 'r').is_err());
    }
}
