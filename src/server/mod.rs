//! The actix-web application: routes, content negotiation, body limits, error bodies.

pub mod access;
mod audit;
mod binary;
pub mod auth;
pub(crate) mod code_routes;
pub mod error;
mod export_routes;
mod extract_routes;
pub mod format;
pub mod model_api;
pub(crate) mod resource_routes;
mod search;
mod terminology_routes;
pub mod workbench;

use std::net::TcpListener;
use std::sync::{Arc, RwLock};

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{Server, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, App, HttpResponse, HttpServer};

use crate::config::Config;
use crate::terminology::Terminology;

/// Shared by every worker. The terminology sits behind a lock of an `Arc` so that a rebuilt
/// edition can be swapped in whole while requests in flight finish on the old one.
/// What requests are served with, swapped whole when an admin loads a new edition version.
pub struct Served {
    pub terminology: Arc<Terminology>,
    pub pipeline: crate::pipeline::Pipeline,
}

pub struct AppState {
    pub config: Config,
    served: RwLock<Arc<Served>>,
    models: crate::agents::knowledge::KnowledgeModels,
    /// Language models of the roles configured for one, loaded once.
    llm: crate::llm::config::LoadedModels,
    /// Terminology writers take turns: each builds on the version the previous one swapped in.
    writer: std::sync::Mutex<()>,
    pub store: crate::store::Store,
    /// Code-system versions installed through the API, kept for the next start.
    installed_versions: crate::terminology::uploads::InstalledVersions,
    exports: export_routes::Jobs,
    /// `$code` requests coding at once: a few per core (a request also waits on its commit).
    coding_slots: Arc<tokio::sync::Semaphore>,
    /// Bounds the requests coding or waiting for a slot (`limits.waiting`).
    coding_queue: code_routes::CodingQueue,
    /// `None`: authentication off (loopback only).
    pub verifier: Option<auth::Verifier>,
    /// The workbench's batch uploads in progress.
    pub(crate) batches: workbench::Batches,
}

impl AppState {
    /// The knowledge pipeline uses the trained models of the data directory, or the hand-set
    /// defaults when there are none yet.
    pub fn new(config: Config, mut terminology: Terminology) -> Result<AppState, String> {
        let models = crate::agents::knowledge::KnowledgeModels::load(&config.data().models()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "trained models unreadable; using the hand-set defaults");
            Default::default()
        });
        let installed_versions = crate::terminology::uploads::InstalledVersions::new(config.data().code_system_versions());
        serve_installed_versions(&installed_versions, &mut terminology)?;
        let crate::app::App { terminology, models, llm, pipeline } = crate::app::App::assemble(&config, Arc::new(terminology), models)?;
        let store = crate::store::Store::open_configured(&config.data(), config.store_url.as_deref()).map_err(|e| format!("resource store: {e}"))?;
        tracing::info!(engine = store.engine(), "resource store open");
        let verifier = auth::Verifier::from_config(&config.jwt)?;
        // On the knowledge backend a request is CPU work and then a wait for its commit to
        // reach the disk: four per core keep the cores busy while commits flush (measured: two
        // per core left a fifth of the CPU idle; six or eight per core time-slice into a longer
        // tail). A role on a language model waits on it (a GPU box, a local model), so many
        // requests may wait at once.
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let coding_slots = if config.llm.is_empty() { cores * 4 } else { 64 };
        Ok(AppState {
            config,
            served: RwLock::new(Arc::new(Served { terminology, pipeline })),
            models,
            llm,
            writer: Default::default(),
            installed_versions,
            store,
            exports: Default::default(),
            coding_slots: Arc::new(tokio::sync::Semaphore::new(coding_slots)),
            coding_queue: Default::default(),
            verifier,
            batches: Default::default(),
        })
    }

    /// The terminology and pipeline of this moment: a request keeps the ones it started with
    /// even if a swap happens meanwhile.
    pub fn served(&self) -> Arc<Served> {
        self.served.read().expect("served lock").clone()
    }

    pub fn terminology(&self) -> Arc<Terminology> {
        self.served().terminology.clone()
    }

    /// Builds a new terminology from the current one with `change` (off the request path, no
    /// lock held by readers), then swaps terminology and pipeline in one step.
    pub fn update_terminology<T>(
        &self,
        change: impl FnOnce(&Terminology) -> Result<(Terminology, T), crate::terminology::TerminologyError>,
    ) -> Result<T, crate::terminology::TerminologyError> {
        let _turn = self.writer.lock().expect("writer lock");
        let current = self.terminology();
        let (next, out) = change(&current)?;
        let next = Arc::new(next);
        let pipeline = self.llm.pipeline(&self.config.llm, next.clone(), &self.models);
        *self.served.write().expect("served lock") = Arc::new(Served { terminology: next, pipeline });
        Ok(out)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/fhir", self.config.addr)
    }
}

/// Without authentication the server may only listen on loopback: clinical records must not be
/// reachable from the network by anyone who can open a socket.
pub fn check_bind_allowed(addr: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<std::net::SocketAddr> =
        addr.to_socket_addrs().map_err(|e| format!("cannot resolve {addr}: {e}"))?.collect();
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(format!(
            "refusing to listen on {addr}: authentication is off (no JWT keys configured), so only loopback addresses (127.0.0.1, ::1) are allowed"
        ));
    }
    Ok(())
}

/// Blocks running the server until it is stopped.
pub fn run(config: Config) -> Result<(), String> {
    let addr = config.addr.clone();
    let auth_on = auth::Verifier::from_config(&config.jwt)?.is_some();
    if auth_on {
        tracing::info!("bearer tokens required (SMART scopes)");
    } else {
        check_bind_allowed(&addr)?;
        tracing::warn!("authentication is off (no JWT keys configured): listening on loopback only");
    }
    let started = std::time::Instant::now();
    let terminology = crate::app::open_terminology(&config)?;
    tracing::info!(
        editions = terminology.all_versions().len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "terminology loaded"
    );
    train_in_background_if_missing(&config);
    let listener = TcpListener::bind(&addr).map_err(|e| format!("cannot bind {addr}: {e}"))?;
    tracing::info!(%addr, "FHIR base at http://{addr}/fhir");
    let state = web::Data::new(AppState::new(config, terminology)?);
    actix_web::rt::System::new().block_on(async move {
        let server = start(state, listener).map_err(|e| e.to_string())?;
        server.await.map_err(|e| e.to_string())
    })
}

/// Serves again, in install order, the code-system versions installed through the API before
/// this start. A kept file that does not read is reported (path and why) and left for the
/// admin; the configured tables and the other versions are still served.
fn serve_installed_versions(kept: &crate::terminology::uploads::InstalledVersions, terminology: &mut Terminology) -> Result<(), String> {
    let (versions, unreadable) = kept.load().map_err(|e| e.to_string())?;
    for e in unreadable {
        tracing::error!(error = %e, "a kept code-system version does not read and is not served");
    }
    for v in versions {
        let cs = crate::terminology::edition_from_rows(&v.spec, v.rows, &v.headers, &terminology.canonical_base);
        terminology.install_edition(cs, v.make_current).map_err(|e| format!("code-system version {} {}: {e}", v.spec.id, v.spec.version))?;
        tracing::info!(edition = %v.spec.id, version = %v.spec.version, "installed code-system version served again");
    }
    Ok(())
}

/// The knowledge models are trained on first start when missing (and cached in the data
/// directory); in the background, so the terminology API is up at once.
fn train_in_background_if_missing(config: &Config) {
    use crate::agents::knowledge::KnowledgeModels;
    use crate::train;
    let sources = train::TrainingSources::default_paths();
    if !config.auto_train || KnowledgeModels::present(&config.data().models()) || !sources.available() {
        return;
    }
    let config = config.clone();
    std::thread::spawn(move || {
        tracing::info!("knowledge models missing: training them in the background");
        match train::train_all(&config, &sources) {
            Ok(_) => tracing::info!("knowledge models trained"),
            Err(e) => tracing::warn!(error = %e, "training the knowledge models failed; hand-set defaults stay in use"),
        }
    });
}

/// Starts serving on `listener` (tests bind port 0 and pass it here).
pub fn start(state: web::Data<AppState>, listener: TcpListener) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        let max_body = state.config.max_body_bytes;
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(max_body))
            // Authorization and audit run per route, after routing ([`access`]); this layer only
            // makes sure no routed handler answered without an access decision.
            .wrap(actix_web::middleware::from_fn(every_answer_decided))
            .wrap(outcome_error_bodies())
            // One scope: actix does not fall through from one scope to another with the same
            // prefix, so every FHIR route lives under this one.
            .service(
                web::scope("/fhir")
                    .service(crate::guarded!("/.well-known/smart-configuration", |_, _| Ok(access::Access::public())).route(web::get().to(auth::smart_configuration)))
                    .configure(code_routes::configure)
                    .configure(extract_routes::configure)
                    .configure(export_routes::configure)
                    .configure(terminology_routes::configure)
                    .configure(resource_routes::configure),
            )
            // The coders' workbench, at the root beside the FHIR base.
            .configure(workbench::configure)
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(error::ApiError::not_found("no such resource or operation on this server"))
            }))
    })
    // A client that sends its head or body slowly is cut off instead of holding a connection
    // (and a worker's buffer) for minutes.
    .client_request_timeout(std::time::Duration::from_secs(10))
    .client_disconnect_timeout(std::time::Duration::from_secs(2))
    .listen(listener)?
    .run();
    Ok(server)
}

/// The backstop behind the per-route guards: a successful answer from a handler that no guard
/// decided on is withheld (a route registered without [`guarded!`] is a bug, and it must fail
/// closed rather than serve unaudited data).
async fn every_answer_decided(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    if res.status().is_success() && !access::decided(&res) {
        tracing::error!(path = %res.request().match_pattern().unwrap_or_default(), "a route answered without an access decision");
        let (req, _) = res.into_parts();
        let e = error::ApiError::internal("this route has no access decision");
        return Ok(ServiceResponse::new(req, actix_web::ResponseError::error_response(&e)));
    }
    Ok(res)
}

/// Gives framework-made error responses (413, 405, …) an OperationOutcome body.
fn outcome_error_bodies() -> ErrorHandlers<BoxBody> {
    let mut handlers = ErrorHandlers::new();
    for status in [400u16, 404, 405, 413, 415] {
        handlers = handlers.handler(
            actix_web::http::StatusCode::from_u16(status).expect("valid status"),
            replace_with_outcome,
        );
    }
    handlers
}

fn replace_with_outcome(res: ServiceResponse<BoxBody>) -> actix_web::Result<ErrorHandlerResponse<BoxBody>> {
    let already = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/fhir+json"));
    if already {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let Some((code, text)) = error::outcome_for_framework_status(status) else {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    };
    let (req, _) = res.into_parts();
    let body = error::outcome(code, text).to_string();
    let response = HttpResponse::build(status).content_type(format::FHIR_JSON).body(body);
    let res: ServiceResponse<EitherBody<BoxBody>> = ServiceResponse::new(req, response).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_loopback_without_auth() {
        assert!(super::check_bind_allowed("127.0.0.1:8080").is_ok());
        assert!(super::check_bind_allowed("[::1]:8080").is_ok());
        let e = super::check_bind_allowed("0.0.0.0:8080").unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        assert!(super::check_bind_allowed("10.1.2.3:80").is_err());
    }
}
