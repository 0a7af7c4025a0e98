//! The five calls of `/v2/admin/secrets`. Each extracts (token, scope,
//! name, body), checks what it can without the apiserver, makes its calls
//! as the caller (list and get read the operator's cache once the caller's
//! access review allows it, see [`super::reads`]) and maps the answer. The
//! REST API's I/O on objects and data Secrets is here; so are the
//! operations' OpenAPI attributes.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, Preconditions};
use kube::{Api, Client, ResourceExt};

use super::auth::Caller;
use super::cache::Written;
use super::data::{self, Source};
use super::dry_run::{self, patch_params, post_params};
use super::error::{ApiError, ErrorBody, json};
use super::model::{CreateRequest, Detail, JsonBody, Label, List, Message, Name, PatchRequest};
use super::objects::{self, NewSecret};
use super::openapi::{Refused, TAG};
use super::scope::Requested;
use super::{Server, query};
use crate::api::validation::kubernetes_name;
use crate::api::{Data, GenericSecret, Scope, SecretData};
use crate::replicas::data_hash;

/// Tries of a `PATCH` whose object changed between read and write.
const PATCH_ATTEMPTS: u32 = 5;

type Shared = State<Arc<Server>>;

/// Exactly the object read: never another that took its name since.
fn exactly(uid: Option<String>) -> DeleteParams {
    DeleteParams {
        preconditions: Some(Preconditions {
            uid,
            resource_version: None,
        }),
        ..DeleteParams::default()
    }
}

/// Where a request acts: its scope, and its namespace's objects and
/// Secrets through the caller's client.
pub struct Target {
    pub scope: Scope,
    pub api: Api<GenericSecret>,
    pub secrets: Api<Secret>,
    pub client: Client,
    pub namespace: String,
}

impl Target {
    /// The visible object named `name` (AI Core name, any case mapping to
    /// the same Kubernetes name). Objects whose `metadata.name` differs from
    /// their AI Core name (made with kubectl) are found by a list.
    pub(super) async fn find(&self, name: &str) -> Result<GenericSecret, ApiError> {
        let wanted = kubernetes_name(name);
        if let Some(gs) = self.api.get_opt(&wanted).await?
            && objects::visible(&gs, self.scope)
            && gs.secret_name() == wanted
        {
            return Ok(gs);
        }
        let all = self.api.list(&ListParams::default()).await?.items;
        objects::find_by_name(all, self.scope, &wanted)
            .ok_or_else(|| ApiError::not_found(format!("secret {name} not found")))
    }

    /// Patches `gs` (inline data, labels), bound to the version read. The
    /// controller writes the finalizer and status right after a create, so
    /// a conflict is retried on a fresh read (client-go's `RetryOnConflict`).
    async fn patch_object(
        &self,
        mut gs: GenericSecret,
        name: &str,
        data: Option<&SecretData>,
        labels: Option<&[Label]>,
        dry_run: bool,
    ) -> Result<GenericSecret, ApiError> {
        let mut attempt = 1;
        loop {
            let spec = objects::patched_spec(&gs.spec, data, labels)?;
            let patch = Patch::Merge(objects::merge_patch(&gs, &spec));
            match self
                .api
                .patch(&gs.name_any(), &patch_params(dry_run), &patch)
                .await
            {
                Err(kube::Error::Api(s)) if s.code == 409 && attempt < PATCH_ATTEMPTS => {
                    tracing::debug!(attempt, "PATCH met a concurrent write; retrying");
                    attempt += 1;
                    gs = self.find(name).await?;
                }
                result => return result.map_err(ApiError::from),
            }
        }
    }

    /// Replaces the data in `gs`'s data Secret, only while `gs` owns it.
    async fn rotate(&self, gs: &GenericSecret, data: &Data, dry_run: bool) -> Result<(), ApiError> {
        let name = data::secret_name(&gs.name_any());
        let patch = Patch::<()>::Json(data::rotation(gs, data)?);
        match self
            .secrets
            .patch(&name, &patch_params(dry_run), &patch)
            .await
        {
            Ok(_) => Ok(()),
            // Deleted by hand: written anew, owned from the start.
            Err(kube::Error::Api(s)) if s.code == 404 => {
                let mut secret = data::new_secret(&gs.name_any(), &gs.spec.type_, data.clone());
                secret.metadata.owner_references = Some(vec![data::owner_reference(gs)?]);
                self.secrets.create(&post_params(dry_run), &secret).await?;
                Ok(())
            }
            // The patch's `test` failed: someone else's Secret by that name.
            Err(kube::Error::Api(s)) if s.code == 422 => Err(ApiError::conflict(format!(
                "Secret {name} is not owned by secret {}, so its data is not rotated; \
                 an administrator must delete or rename that Secret",
                gs.ai_core_name()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes back a write of a refused create. Best effort: the refusal is
    /// what the caller hears; a leftover is logged.
    async fn undo<K>(&self, api: &Api<K>, written: &K)
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let name = written.meta().name.clone().unwrap_or_default();
        let uid = written.meta().uid.clone();
        if let Err(e) = api.delete(&name, &exactly(uid)).await {
            tracing::warn!(error = %e, kind = K::kind(&()).as_ref(), name, "could not take back a write of a refused create; delete it by hand");
        }
    }
}

/// List the secrets in scope
///
/// Metadata only, never data: `count` is every secret in scope, `$skip` and
/// `$top` page `resources`.
#[utoipa::path(get, path = "/v2/admin/secrets", tag = TAG,
    operation_id = "kubesubmitV4GenericSecretsGetAll",
    params(Requested, query::Raw),
    responses((status = 200, description = "The secrets in scope", body = List), Refused))]
pub async fn list(
    State(server): Shared,
    caller: Caller,
    requested: Requested,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = query::parse(raw.as_deref())?;
    let target = server.target(&caller, &requested).await?;
    let items = server.list_objects(&caller, &target).await?;
    let visible = items
        .iter()
        .filter(|gs| objects::visible(gs, target.scope))
        .map(|gs| objects::summary(gs))
        .collect();
    Ok(json(StatusCode::OK, &query::page(visible, &query)))
}

/// Create a generic secret
///
/// In a resource group, the main tenant or tenant-wide (replicated into
/// every resource group). The data goes into a Secret owned by the object.
#[utoipa::path(post, path = "/v2/admin/secrets", tag = TAG,
    operation_id = "kubesubmitV4GenericSecretsCreate",
    params(Requested, dry_run::Raw), request_body = CreateRequest,
    responses((status = 200, description = "Created (extension: with dryRun=true nothing is \
            created and the body is a Preview)", body = Message,
            example = json!({"message": "secret has been created", "name": "my-generic-secret"})),
        (status = 413, description = "Extension: the body is over 1 MiB", body = ErrorBody),
        Refused))]
pub async fn create(
    State(server): Shared,
    caller: Caller,
    requested: Requested,
    RawQuery(raw): RawQuery,
    JsonBody(request): JsonBody<CreateRequest>,
) -> Result<Response, ApiError> {
    let dry_run = dry_run::requested(raw.as_deref())?;
    let name = request.name.clone();
    let NewSecret { object, data } = objects::new_generic_secret(requested.scope(), request)?;
    let target = server.target(&caller, &requested).await?;
    // One tenant-wide create at a time: another's check cannot pass between
    // this check and this create (in this process; the controller stays the
    // final authority across replicas).
    let _slot = match target.scope {
        Scope::TenantWide => Some(server.tenant_wide.lock().await),
        _ => None,
    };
    if target.scope == Scope::TenantWide {
        let existing = target.api.list(&ListParams::default()).await?.items;
        objects::admit_tenant_wide(&server.rules, existing, &object, Timestamp::now())?;
    }
    let taken = || {
        ApiError::conflict(format!(
            "secret {name} already exists (or another whose name maps to the same \
             Kubernetes name {})",
            object.name_any()
        ))
    };
    let conflict_or = |e: kube::Error| match e {
        kube::Error::Api(s) if s.code == 409 => taken(),
        e => ApiError::from(e),
    };
    // The data first: the controller's first reconcile of the object finds
    // its source, rather than reporting it missing and waiting.
    let hash = data_hash(&data);
    let secret = data::new_secret(&object.name_any(), &object.spec.type_, data);
    let written = target
        .secrets
        .create(&post_params(dry_run), &secret)
        .await
        .map_err(conflict_or)?;
    let created = match target.api.create(&post_params(dry_run), &object).await {
        Ok(created) => created,
        Err(e) if dry_run => return Err(conflict_or(e)),
        Err(e) => {
            target.undo(&target.secrets, &written).await;
            return Err(conflict_or(e));
        }
    };
    if dry_run {
        return server.preview(&created, Some(hash)).await;
    }
    // From here the garbage collector deletes the data with the object.
    let owned = match data::owner_reference(&created) {
        Ok(owner) => {
            let patch = data::owner_patch(&owner, written.resource_version().as_deref());
            let patch = Patch::Merge(patch);
            target
                .secrets
                .patch(&written.name_any(), &patch_params(false), &patch)
                .await
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    if let Err(e) = owned {
        target.undo(&target.api, &created).await;
        target.undo(&target.secrets, &written).await;
        return Err(e);
    }
    if let Some(rv) = created.resource_version() {
        server
            .written(&target, &created.name_any(), Written::Version(rv))
            .await;
    }
    Ok(json(StatusCode::OK, &Message::created(&name)))
}

/// Get a secret
///
/// Metadata only, never data; a tenant-wide secret adds its replication
/// map.
#[utoipa::path(get, path = "/v2/admin/secrets/{secretName}", tag = TAG,
    operation_id = "kubesubmitV4GenericSecretsGet",
    params(Name, Requested),
    responses((status = 200, description = "The secret", body = Detail, examples(
            ("generic-secret" = (summary = "A main-tenant or resource-group secret",
                value = json!({"name": "my-generic-secret", "createdAt": "2026-01-01T00:00:00Z"}))),
            ("tenant-wide-secret" = (summary = "A tenant-wide secret", value = json!({
                "name": "my-generic-secret", "createdAt": "2026-01-01T00:00:00Z",
                "resourceGroupSecretReplicationStatus": {"rg-id-a": true, "rg-id-b": false},
                "resourceGroupSecretsSyncStatus": {"rg-id-a": true, "rg-id-b": false}})))
        )), Refused))]
pub async fn read(
    State(server): Shared,
    caller: Caller,
    requested: Requested,
    Name(name): Name,
) -> Result<Response, ApiError> {
    let target = server.target(&caller, &requested).await?;
    let gs = server.find_object(&caller, &target, &name).await?;
    Ok(json(StatusCode::OK, &objects::detail(&gs)))
}

/// Update a secret
///
/// `data` replaces the whole data map (rotation); labels are set, or
/// removed with value "".
#[utoipa::path(patch, path = "/v2/admin/secrets/{secretName}", tag = TAG,
    operation_id = "kubesubmitV4GenericSecretsUpdate",
    params(Name, Requested, dry_run::Raw), request_body = PatchRequest,
    responses((status = 200, description = "Modified (extension: with dryRun=true nothing is \
            modified and the body is a Preview)", body = Message,
            example = json!({"message": "The secret has been modified", "name": "my-generic-secret"})),
        (status = 413, description = "Extension: the body is over 1 MiB", body = ErrorBody),
        Refused))]
pub async fn modify(
    State(server): Shared,
    caller: Caller,
    requested: Requested,
    Name(name): Name,
    RawQuery(raw): RawQuery,
    JsonBody(request): JsonBody<PatchRequest>,
) -> Result<Response, ApiError> {
    let dry_run = dry_run::requested(raw.as_deref())?;
    objects::check_patch(&request)?;
    let PatchRequest { data, labels } = request;
    let target = server.target(&caller, &requested).await?;
    let gs = target.find(&name).await?;
    // The hash of data rotated in the data Secret (inline data is in the spec).
    let mut rotated = None;
    let inline = match (data.as_ref(), data::source(&gs)) {
        (None, _) => None,
        (Some(data), Source::Inline) => Some(data),
        (Some(data), Source::Owned(_)) => {
            // The whole request is checked first: a refused PATCH writes nothing.
            let decoded = objects::checked_data(data, &gs.spec.type_)?;
            objects::patched_spec(&gs.spec, None, labels.as_deref())?;
            target.rotate(&gs, &decoded, dry_run).await?;
            rotated = Some(data_hash(&decoded));
            None
        }
        (Some(_), Source::Foreign(source)) => {
            return Err(ApiError::conflict(format!(
                "secret {name} takes its data from Secret {source} (dataFrom), which this \
                 API does not write; change that Secret instead"
            )));
        }
    };
    let gs = match (inline, labels.as_deref()) {
        (None, None) => gs,
        (inline, labels) if dry_run => {
            target
                .patch_object(gs, &name, inline, labels, dry_run)
                .await?
        }
        (inline, labels) => {
            let gs = target
                .patch_object(gs, &name, inline, labels, dry_run)
                .await?;
            if let Some(rv) = gs.resource_version() {
                server
                    .written(&target, &gs.name_any(), Written::Version(rv))
                    .await;
            }
            gs
        }
    };
    if dry_run {
        return server.preview(&gs, rotated).await;
    }
    Ok(json(StatusCode::OK, &Message::modified(gs.ai_core_name())))
}

/// Delete a secret
///
/// Its replicas and its data Secret go with it.
#[utoipa::path(delete, path = "/v2/admin/secrets/{secretName}", tag = TAG,
    operation_id = "kubesubmitV4GenericSecretsDelete",
    params(Name, Requested),
    responses((status = 200, description = "Deleted (extension: AI Core sends no body)",
            body = Message,
            example = json!({"message": "The secret has been deleted", "name": "my-generic-secret"})),
        Refused))]
pub async fn remove(
    State(server): Shared,
    caller: Caller,
    requested: Requested,
    Name(name): Name,
) -> Result<Response, ApiError> {
    let target = server.target(&caller, &requested).await?;
    let gs = target.find(&name).await?;
    // The finalizer removes the replicas, the garbage collector the data.
    target
        .api
        .delete(&gs.name_any(), &exactly(gs.uid()))
        .await?;
    // Gone, or waiting for its finalizer: either way no read shows it.
    server
        .written(&target, &gs.name_any(), Written::Gone(gs.uid()))
        .await;
    Ok(json(StatusCode::OK, &Message::deleted(gs.ai_core_name())))
}
