//! Authorization and audit, decided on the routed request.
//!
//! Every route is registered with [`guarded!`](crate::guarded), which names a decide function: from the
//! route's decoded match (`{type}`, `{id}`, the operation's own path) and the method it says
//! which resource types and SMART permission letters the request needs, and what its
//! AuditEvent records. The guard runs after routing, so a percent-encoded path
//! (`/fhir/%43ondition/1`, `/Composition/%24code`) is judged as the route that serves it, and
//! the same decision writes the audit row. Handlers read the outcome as a [`Decision`]
//! extractor, which fails closed when a request reached them without one.

use actix_web::body::BoxBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, ResponseError};

use super::audit;
use super::auth::{bearer_principal, Principal, Reach};
use super::error::{ApiError, ErrorCode};
use super::AppState;


/// What one routed request needs and records.
#[derive(Debug, Clone, Default)]
pub struct Access {
    public: bool,
    needs: Vec<(String, char)>,
    /// The handler restricts what it answers to [`Decision::patient`], so `patient/` scopes
    /// may be served; elsewhere they are refused, not widened.
    patient_reach: bool,
    /// A GET that starts work (`$export`): refused cross-site like a write.
    starts_work: bool,
    /// The body may be of any content type (`POST /Binary` takes raw content).
    any_body: bool,
    audit: Option<audit::Entry>,
}

impl Access {
    /// Discovery and conformance: no token needed.
    pub fn public() -> Access {
        Access { public: true, ..Access::default() }
    }

    pub fn needs(ty: &str, letter: char) -> Access {
        Access::default().and(ty, letter)
    }

    pub fn and(mut self, ty: &str, letter: char) -> Access {
        self.needs.push((ty.to_owned(), letter));
        self
    }

    pub fn patient_reach(mut self) -> Access {
        self.patient_reach = true;
        self
    }

    pub fn starts_work(mut self) -> Access {
        self.starts_work = true;
        self
    }

    /// A body of any content type is read by the handler. Cross-site requests stay refused by
    /// the same-site check (auth off) and the bearer token (auth on).
    pub fn any_body(mut self) -> Access {
        self.any_body = true;
        self
    }

    pub fn audited(mut self, action: &'static str, interaction: &'static str, entity: impl Into<String>) -> Access {
        self.audit = Some(audit::Entry { action, interaction, entity: entity.into() });
        self
    }

    /// Audited when `ty` is one of [`audit::AUDITED`].
    pub fn audited_for(self, ty: &str, action: &'static str, interaction: &'static str, entity: impl Into<String>) -> Access {
        if audit::AUDITED.contains(&ty) {
            self.audited(action, interaction, entity)
        } else {
            self
        }
    }
}

/// The guard's answer, for handlers.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The verified token's principal; `None` with authentication off or on a public route.
    pub principal: Option<Principal>,
    /// Set when a `patient/` scope is what allowed the request: answer this patient's
    /// resources only.
    pub patient: Option<String>,
}

impl Decision {
    /// The client a request's remembered answers and export jobs belong to.
    pub fn client(&self) -> &str {
        self.principal.as_ref().map_or("anonymous", |p| p.subject.as_str())
    }
}

impl FromRequest for Decision {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Decision, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(req.extensions().get::<Decision>().cloned().ok_or_else(|| {
            tracing::error!("a request reached a handler without an access decision");
            ApiError::internal("this route has no access decision")
        }))
    }
}

/// Registers a resource (path) whose every route runs through the access guard; `$decide`
/// says, from the routed request and the state, what the request needs and records.
#[macro_export]
macro_rules! guarded {
    ($path:expr, $decide:expr) => {{
        let path = $path;
        $crate::server::access::record_route(::std::convert::AsRef::<str>::as_ref(&path));
        actix_web::web::resource(path).wrap(actix_web::middleware::from_fn(move |req, next| $crate::server::access::guard(req, next, $decide)))
    }};
}

/// Every path pattern registered with [`guarded!`] (under `/fhir`): what a test compares with
/// the CapabilityStatement, so that neither can serve or declare what the other does not.
static ROUTES: std::sync::Mutex<std::collections::BTreeSet<String>> = std::sync::Mutex::new(std::collections::BTreeSet::new());

pub fn record_route(path: &str) {
    ROUTES.lock().unwrap_or_else(|e| e.into_inner()).insert(path.to_owned());
}

/// The patterns registered so far (every worker registers the same ones).
pub fn routes_registered() -> Vec<String> {
    ROUTES.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
}

/// The middleware behind [`guarded!`].
pub async fn guard<D>(req: ServiceRequest, next: Next<BoxBody>, decide: D) -> Result<ServiceResponse<BoxBody>, actix_web::Error>
where
    D: Fn(&ServiceRequest, &AppState) -> Result<Access, ApiError>,
{
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(refuse(req, ApiError::internal("no application state")));
    };
    let access = match decide(&req, &state) {
        Ok(a) => a,
        Err(e) => return Ok(refuse(req, e)),
    };
    match decide_request(&state, &req, &access) {
        Err((who, e)) => {
            if let Some(entry) = &access.audit {
                audit::write(&state, entry, &who, e.status().as_u16());
            }
            Ok(refuse(req, e))
        }
        Ok(decision) => {
            let who = match &decision.principal {
                Some(p) => p.subject.clone(),
                None => "anonymous (auth off)".to_owned(),
            };
            req.extensions_mut().insert(decision);
            let res = next.call(req).await;
            if let Some(entry) = &access.audit {
                let status = match &res {
                    Ok(r) => r.status(),
                    Err(e) => e.as_response_error().status_code(),
                };
                audit::write(&state, entry, &who, status.as_u16());
            }
            res
        }
    }
}

fn refuse(req: ServiceRequest, e: ApiError) -> ServiceResponse<BoxBody> {
    let mut resp = e.error_response();
    if e.code == ErrorCode::Unauthenticated {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"jointcoder\""));
    }
    req.into_response(resp)
}

/// The decision, or who was refused (for the audit) and why.
fn decide_request(state: &AppState, req: &ServiceRequest, access: &Access) -> Result<Decision, (String, ApiError)> {
    let anonymous = |e: ApiError| ("anonymous".to_owned(), e);
    if !access.any_body {
        check_content_type(req).map_err(anonymous)?;
    }
    let Some(verifier) = &state.verifier else {
        check_same_site(req, access).map_err(anonymous)?;
        return Ok(Decision { principal: None, patient: None });
    };
    if access.public {
        return Ok(Decision { principal: None, patient: None });
    }
    let principal = match bearer_principal(verifier, req.headers()) {
        Ok(Some(p)) => p,
        Ok(None) => return Err(anonymous(ApiError::of(ErrorCode::Unauthenticated, "a bearer token is required"))),
        Err(e) => return Err(("unverified token".to_owned(), e)),
    };
    let forbidden = |m: String| (principal.subject.clone(), ApiError::of(ErrorCode::Forbidden, m));
    let mut patient = None;
    for (ty, letter) in &access.needs {
        match principal.reach(ty, *letter).map_err(forbidden)? {
            Reach::All => {}
            Reach::Patient(p) if access.patient_reach => patient = Some(p),
            Reach::Patient(_) => {
                return Err(forbidden(format!(
                    "a patient/ scope cannot be enforced on this interaction ('{letter}' on {ty}): it needs a system/ or user/ scope"
                )))
            }
        }
    }
    tracing::debug!(subject = %principal.subject, "authorized");
    Ok(Decision { principal: Some(principal), patient })
}

/// Request bodies are FHIR JSON: a body of another type (an HTML form, `text/plain`, which a
/// browser may send cross-site without asking) is refused before anything reads it.
fn check_content_type(req: &ServiceRequest) -> Result<(), ApiError> {
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        return Ok(());
    }
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0");
    if !has_body {
        return Ok(());
    }
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if is_json_type(ct) {
        return Ok(());
    }
    let shown = if ct.is_empty() { "no content type".to_owned() } else { format!("content type {ct}") };
    Err(ApiError::unsupported_media(format!("{shown} is not accepted: send application/fhir+json")))
}

/// `application/fhir+json`, `application/json` (and the DSTU2 `application/json+fhir`), with
/// any parameters.
fn is_json_type(ct: &str) -> bool {
    matches!(crate::fhir::inbound::media_type_essence(ct).as_str(), "application/fhir+json" | "application/json" | "application/json+fhir")
}

/// With authentication off the server trusts whoever reaches loopback, and a web page in the
/// coder's browser reaches it too: requests that change something must come from this
/// server's own pages, not from another site.
fn check_same_site(req: &ServiceRequest, access: &Access) -> Result<(), ApiError> {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) && !access.starts_work;
    if safe {
        return Ok(());
    }
    let cross = |why: String| ApiError::of(ErrorCode::Forbidden, format!("{why}: with authentication off, only this server's own pages and non-browser clients may change data"));
    if let Some(site) = req.headers().get("Sec-Fetch-Site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return Err(cross(format!("a {site} request")));
        }
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let origin_host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).unwrap_or("");
        if host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
            return Err(cross(format!("a request from origin {origin}")));
        }
    }
    Ok(())
}

/// For the app-level check that no routed handler answered without a decision.
pub fn decided(res: &ServiceResponse<BoxBody>) -> bool {
    res.request().extensions().get::<Decision>().is_some()
}

/// The element that names the patient a resource of the patient compartment belongs to, for
/// `patient/` scopes; its search parameter has the same name: `Condition.subject`,
/// `Procedure.subject`, `Claim.patient`.
pub fn patient_field(ty: &str) -> Option<&'static str> {
    match ty {
        "Condition" | "Procedure" => Some("subject"),
        "Claim" => Some("patient"),
        _ => None,
    }
}

/// Whether a resource belongs to `patient` (its reference is `Patient/{patient}`, relative
/// or absolute).
pub fn belongs_to(resource: &serde_json::Value, patient: &str) -> bool {
    let ty = resource["resourceType"].as_str().unwrap_or("");
    let Some(field) = patient_field(ty) else { return false };
    let want = format!("Patient/{patient}");
    resource[field]["reference"].as_str().is_some_and(|r| r == want || r.ends_with(&format!("/{want}")))
}

/// The routed path below the FHIR base, decoded as the router matched it (`/Bundle/$code`
/// for `/fhir/Bundle/%24code`).
pub fn routed_path(req: &ServiceRequest) -> &str {
    below_base(req.match_info())
}

/// The same, from a route's match (what both a guard and a handler have).
pub fn below_base(matched: &actix_web::dev::Path<actix_web::dev::Url>) -> &str {
    let p = matched.as_str();
    p.strip_prefix("/fhir").unwrap_or(p)
}
