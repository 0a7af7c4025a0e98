//! The SAP AI Core REST API for generic secrets, `/v2/admin/secrets`
//! (`generic-secrets-operator run --rest-api`), as the AI Core documents'
//! `curl` examples and SAP's SDK clients call it. Each call reads or writes
//! `GenericSecret` objects, so kubectl, Argo CD and this API share one
//! truth; secret data goes in, into a Secret, never out (nor into a log
//! line).
//!
//! - [`scope`]: the `AI-Tenant-Scope` / `AI-Resource-Group` headers.
//! - [`auth`]: the bearer token; the calls are made *as the caller*.
//! - [`clients`]: one client per caller token, reused briefly.
//! - [`groups`]: which namespace a resource group is (a watch).
//! - [`cache`]: every object (a watch), for list and get; [`access`]: the
//!   caller's access reviews that guard those reads; [`reads`]: both.
//! - [`model`], [`query`]: request and response JSON, the list query.
//! - [`objects`]: requests to objects and back; [`data`]: the data Secret.
//! - [`dry_run`]: `?dryRun=true`, the preview of a create or update.
//! - [`handlers`]: the calls; [`layers`]: request id, log line, 429.
//! - [`tls`]: the listeners; [`error`]: the JSON error shape.
//! - [`openapi`]: `GET /v2/admin/openapi.json`, from the handlers' attributes.

pub mod access;
pub mod auth;
pub mod cache;
pub mod clients;
pub mod data;
pub mod dry_run;
pub mod error;
pub mod groups;
mod handlers;
pub mod layers;
pub mod model;
pub mod objects;
pub mod openapi;
pub mod query;
mod reads;
pub mod scope;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use kube::{Api, Client};
use tokio::sync::{Mutex, Semaphore};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::controller::Config;
use crate::plan::Rules;
use auth::Caller;
use error::ApiError;
use handlers::Target;
use scope::Requested;

/// The `run` flags of the REST API (each also from a `GSO_*` variable).
#[derive(clap::Args, Clone, Debug)]
pub struct Options {
    /// Serve the SAP AI Core REST API (/v2/admin/secrets); callers
    /// authenticate with their own Kubernetes bearer token.
    #[arg(long, env = "GSO_REST_API")]
    pub rest_api: bool,
    /// Address of the REST API (port 0: any free port). Plain HTTP only on
    /// loopback, unless --rest-allow-plain-http.
    #[arg(long, env = "GSO_REST_ADDR", default_value = "127.0.0.1:8000")]
    pub rest_addr: SocketAddr,
    /// TLS certificate chain (PEM) of the REST API; read again whenever the
    /// file changes (cert-manager rotations).
    #[arg(long, env = "GSO_REST_TLS_CERT", requires = "rest_tls_key")]
    pub rest_tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of the REST API, beside --rest-tls-cert.
    #[arg(long, env = "GSO_REST_TLS_KEY", requires = "rest_tls_cert")]
    pub rest_tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback --rest-addr (bearer tokens in
    /// the clear: only behind a TLS-terminating proxy or service mesh).
    #[arg(long, env = "GSO_REST_ALLOW_PLAIN_HTTP")]
    pub rest_allow_plain_http: bool,
    /// REST requests in flight at once; more are answered 429 with
    /// Retry-After.
    #[arg(long, env = "GSO_REST_MAX_CONCURRENT_REQUESTS", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub rest_max_concurrent_requests: u16,
}

/// What the handlers share.
struct Server {
    /// The callers' clients.
    clients: clients::Clients,
    /// Resource groups, watched with the operator's own client.
    groups: Arc<groups::Cache>,
    /// Every object, watched with the operator's own client.
    objects: Arc<cache::Cache>,
    /// The callers' allowed reads, briefly.
    reviews: access::Reviews,
    /// Tenant namespace, quota and the rest of the planner's rules.
    rules: Rules,
    /// Held from the quota check to the create of a tenant-wide secret.
    tenant_wide: Mutex<()>,
    /// The operator's own client: the reads of a dry run's preview, made
    /// after the caller's own dry-run request was allowed.
    client: Client,
    /// The planner flags, for the preview.
    settings: crate::preview::cluster::Settings,
}

impl Server {
    /// The caller's client (authenticated) and the scope's namespace.
    async fn target(&self, caller: &Caller, requested: &Requested) -> Result<Target, ApiError> {
        let client = self.clients.get(caller.token()).await?;
        let namespace = match requested {
            Requested::Tenant | Requested::TenantWide => self.rules.tenant_namespace.clone(),
            Requested::ResourceGroup(rg) => self.groups.namespace_of(rg).await?,
        };
        Ok(Target {
            scope: requested.scope(),
            api: Api::namespaced(client.clone(), &namespace),
            secrets: Api::namespaced(client.clone(), &namespace),
            client,
            namespace,
        })
    }
}

/// Bind `options.rest_addr` and serve the REST API until the process ends;
/// returns the bound address (port 0 picks a free one) and whether it is
/// TLS. `base` is the operator's configuration (cluster URL and CA of the
/// callers' clients), `client` the operator's own.
pub async fn serve(
    options: &Options,
    base: kube::Config,
    client: Client,
    config: &Config,
) -> Result<(SocketAddr, bool), String> {
    let acceptor = match (&options.rest_tls_cert, &options.rest_tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })?),
        (None, None) => None,
        _ => return Err("--rest-tls-cert and --rest-tls-key go together".to_owned()),
    };
    let addr = options.rest_addr;
    tls::check_listener(addr, acceptor.is_some(), options.rest_allow_plain_http)?;
    let server = Server {
        clients: clients::Clients::new(base),
        groups: groups::Cache::spawn(client.clone(), config.namespace_selector.clone()),
        objects: cache::Cache::spawn(client.clone()),
        reviews: access::Reviews::default(),
        rules: config.rules(),
        tenant_wide: Mutex::new(()),
        client,
        settings: crate::preview::cluster::Settings {
            rules: config.rules(),
            adopt_existing: config.adopt_existing,
            namespace_selector: config.namespace_selector.clone(),
        },
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("binding {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("binding {addr}: {e}"))?;
    let in_flight = usize::from(options.rest_max_concurrent_requests);
    let app = router(Arc::new(server), in_flight);
    let tls = acceptor.is_some();
    match acceptor {
        Some(acceptor) => {
            tokio::spawn(tls::serve(listener, acceptor, app));
        }
        None => {
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "REST API server stopped");
                }
            });
        }
    }
    Ok((bound, tls))
}

/// The API's routes and their OpenAPI document, both from the handlers'
/// `#[utoipa::path]` attributes: a route cannot go undocumented.
fn routes() -> (Router<Arc<Server>>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(openapi::Doc::openapi())
        .routes(routes!(handlers::list, handlers::create))
        .routes(routes!(handlers::read, handlers::modify, handlers::remove))
        .split_for_parts();
    (router, openapi::complete(doc))
}

fn router(server: Arc<Server>, in_flight: usize) -> Router {
    let (api, doc) = routes();
    let doc = Arc::new(doc);
    let document = move || {
        let doc = Arc::clone(&doc);
        async move { error::json(StatusCode::OK, &*doc) }
    };
    api.route(openapi::PATH, get(document))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        })
        .layer(DefaultBodyLimit::max(model::MAX_BODY_BYTES))
        // Layers run outermost last-added: the id and log line see the 429s.
        .layer(from_fn_with_state(
            Arc::new(Semaphore::new(in_flight)),
            layers::limit,
        ))
        .layer(from_fn(layers::trace))
        .with_state(server)
}
