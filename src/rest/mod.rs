//! The SAP AI Core REST API for generic secrets, `/v2/admin/secrets`
//! (`generic-secrets-operator run --rest-api`), as the AI Core documents'
//! `curl` examples call it. Each call reads or writes `GenericSecret`
//! objects, so kubectl, Argo CD and this API share one truth; secret data
//! goes in, never out (nor into a log line).
//!
//! - [`scope`]: the `AI-Tenant-Scope` / `AI-Resource-Group` headers.
//! - [`auth`]: the bearer token; the calls are made *as the caller* (why
//!   that beats a TokenReview + SubjectAccessReview: see there).
//! - [`model`]: request and response JSON and the pure mapping to objects.
//! - [`error`]: the JSON error shape and the status mapping.
//!
//! Handlers are thin: extract (auth, scope, name, body), check, one or two
//! apiserver calls, map the answer. The I/O is here.

pub mod auth;
pub mod error;
pub mod model;
pub mod scope;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Client, ResourceExt};

use crate::api::validation::kubernetes_name;
use crate::api::{GenericSecret, Scope};
use crate::controller::Config;
use crate::plan::Rules;
use auth::Caller;
use error::{ApiError, json};
use model::{CreateRequest, JsonBody, Message, Name, PatchRequest};
use scope::Requested;

/// Field manager of the writes made through this API (with the caller's
/// identity), so `managedFields` tell them from kubectl's.
const FIELD_MANAGER: &str = "aicore-rest-api";
/// Tries of a `PATCH` whose object changed between read and write.
const PATCH_ATTEMPTS: u32 = 5;

/// What the handlers share.
struct Server {
    /// The operator's own configuration: cluster URL and CA for the
    /// callers' clients.
    base: kube::Config,
    /// The operator's own client, only for the resource-group lookup.
    client: Client,
    /// Tenant namespace, quota and the rest of the planner's rules.
    rules: Rules,
    /// The installation's `--namespace-selector`.
    namespace_selector: Option<String>,
}

type Shared = State<Arc<Server>>;

/// Bind `addr` and serve the REST API until the process ends; returns the
/// bound address (port 0 picks a free one).
pub async fn serve(
    addr: SocketAddr,
    base: kube::Config,
    client: Client,
    config: &Config,
) -> std::io::Result<SocketAddr> {
    let server = Server {
        base,
        client,
        rules: config.rules(),
        namespace_selector: config.namespace_selector.clone(),
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(Arc::new(server));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "REST API server stopped");
        }
    });
    Ok(bound)
}

fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/v2/admin/secrets", get(list).post(create))
        .route(
            "/v2/admin/secrets/{name}",
            get(read).patch(modify).delete(remove),
        )
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        })
        .layer(DefaultBodyLimit::max(model::MAX_BODY_BYTES))
        .layer(middleware::from_fn(log_request))
        .with_state(server)
}

/// One log line per request: method, path, status, duration; never
/// headers or bodies (tokens, secret data).
async fn log_request(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        millis = started.elapsed().as_millis() as u64,
        "REST request"
    );
    response
}

/// Where a request acts: its scope, and its namespace through the caller's
/// client.
struct Target {
    scope: Scope,
    api: Api<GenericSecret>,
}

impl Server {
    async fn target(&self, caller: &Caller, requested: &Requested) -> Result<Target, ApiError> {
        let client = caller.client(&self.base)?;
        let namespace = match requested {
            Requested::Tenant | Requested::TenantWide => self.rules.tenant_namespace.clone(),
            Requested::ResourceGroup(rg) => self.resource_group(rg, &client).await?,
        };
        Ok(Target {
            scope: requested.scope(),
            api: Api::namespaced(client, &namespace),
        })
    }

    /// The namespace of resource group `rg`, looked up with the operator's
    /// own client; errors only for a caller Kubernetes accepts.
    async fn resource_group(&self, rg: &str, caller: &Client) -> Result<String, ApiError> {
        let selector = scope::namespace_selector(rg, self.namespace_selector.as_deref());
        let labelled = Api::<Namespace>::all(self.client.clone())
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| ApiError::internal("looking up the resource group", &e))?;
        let picked = scope::pick_namespace(rg, &labelled.items);
        // Any answer drawn from the operator's own view (not found, or which
        // namespaces collide) goes only to a caller Kubernetes accepts.
        if picked.is_err() {
            auth::authenticate(caller).await?;
        }
        picked
    }
}

impl Target {
    /// The visible object named `name` (AI Core name, any case mapping to
    /// the same Kubernetes name). Objects whose `metadata.name` differs from
    /// their AI Core name (made with kubectl) are found by a list.
    async fn find(&self, name: &str) -> Result<GenericSecret, ApiError> {
        let wanted = kubernetes_name(name);
        if let Some(gs) = self.api.get_opt(&wanted).await?
            && model::visible(&gs, self.scope)
            && gs.secret_name() == wanted
        {
            return Ok(gs);
        }
        let all = self.api.list(&ListParams::default()).await?.items;
        model::find_by_name(all, self.scope, &wanted)
            .ok_or_else(|| ApiError::not_found(format!("secret {name} not found")))
    }

    /// Applies `request` to the object named `name`, bound to the version
    /// read. The controller writes the finalizer and status right after a
    /// create, so a conflict is retried on a fresh read (like client-go's
    /// `RetryOnConflict`).
    async fn modify(&self, name: &str, request: &PatchRequest) -> Result<GenericSecret, ApiError> {
        let params = PatchParams {
            field_manager: field_manager(),
            ..PatchParams::default()
        };
        let mut attempt = 1;
        loop {
            let gs = self.find(name).await?;
            let spec = model::patched_spec(&gs.spec, request)?;
            let patch = Patch::Merge(model::merge_patch(&gs, &spec));
            match self.api.patch(&gs.name_any(), &params, &patch).await {
                Err(kube::Error::Api(s)) if s.code == 409 && attempt < PATCH_ATTEMPTS => {
                    tracing::debug!(attempt, "PATCH met a concurrent write; retrying");
                    attempt += 1;
                }
                result => return result.map_err(ApiError::from),
            }
        }
    }
}

fn field_manager() -> Option<String> {
    Some(FIELD_MANAGER.to_owned())
}

async fn list(
    State(server): Shared,
    caller: Caller,
    requested: Requested,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = model::parse_query(query.as_deref())?;
    let target = server.target(&caller, &requested).await?;
    let items = target.api.list(&ListParams::default()).await?.items;
    let visible = items
        .iter()
        .filter(|gs| model::visible(gs, target.scope))
        .map(model::summary)
        .collect();
    Ok(json(StatusCode::OK, &model::page(visible, &query)))
}

async fn create(
    State(server): Shared,
    caller: Caller,
    requested: Requested,
    JsonBody(request): JsonBody<CreateRequest>,
) -> Result<Response, ApiError> {
    let name = request.name.clone();
    let gs = model::new_generic_secret(requested.scope(), request)?;
    let target = server.target(&caller, &requested).await?;
    if target.scope == Scope::TenantWide {
        let existing = target.api.list(&ListParams::default()).await?.items;
        model::admit_tenant_wide(&server.rules, existing, &gs, Timestamp::now())?;
    }
    let params = PostParams {
        dry_run: false,
        field_manager: field_manager(),
    };
    match target.api.create(&params, &gs).await {
        Ok(_) => Ok(json(StatusCode::OK, &Message::created(&name))),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(ApiError::conflict(format!(
            "secret {name} already exists (or another whose name maps to the same \
             Kubernetes name {})",
            gs.name_any()
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn read(
    State(server): Shared,
    caller: Caller,
    requested: Requested,
    Name(name): Name,
) -> Result<Response, ApiError> {
    let target = server.target(&caller, &requested).await?;
    let gs = target.find(&name).await?;
    Ok(json(StatusCode::OK, &model::detail(&gs)))
}

async fn modify(
    State(server): Shared,
    caller: Caller,
    requested: Requested,
    Name(name): Name,
    JsonBody(request): JsonBody<PatchRequest>,
) -> Result<Response, ApiError> {
    let target = server.target(&caller, &requested).await?;
    let gs = target.modify(&name, &request).await?;
    Ok(json(StatusCode::OK, &Message::modified(gs.ai_core_name())))
}

async fn remove(
    State(server): Shared,
    caller: Caller,
    requested: Requested,
    Name(name): Name,
) -> Result<Response, ApiError> {
    let target = server.target(&caller, &requested).await?;
    let gs = target.find(&name).await?;
    // Exactly the object found: never another one that took its name since.
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: gs.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    target.api.delete(&gs.name_any(), &params).await?;
    Ok(json(StatusCode::OK, &Message::deleted(gs.ai_core_name())))
}
