//! `preview -f <manifest>`: read a GenericSecret manifest, let the
//! apiserver validate it with a server-side dry-run apply (CEL rules,
//! defaults; an existing object's uid, creation time and status come
//! back), then preview the object it would store. Writes nothing: the
//! only request that is not a read carries `dryRun=All`.

use std::io::Read;
use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

use super::Preview;
use super::cluster::{self, Known, Settings, Snapshot};
use crate::api::{GenericSecret, GenericSecretSpec};

/// Field manager of the dry-run apply (never persisted).
pub const FIELD_MANAGER: &str = "generic-secrets-operator-preview";

/// The manifest at `path` (`-`: stdin) as JSON, with its namespace set
/// (the kubeconfig's default when it names none).
pub fn read_manifest(path: &Path, default_namespace: &str) -> Result<Value, String> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading stdin: {e}"))?;
        text
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?
    };
    let mut value: Value =
        serde_saphyr::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?;
    if value["kind"] != "GenericSecret" || value["apiVersion"] != "aicore.dev/v1alpha1" {
        return Err(format!(
            "{} is not a GenericSecret (apiVersion aicore.dev/v1alpha1)",
            path.display()
        ));
    }
    if !value["metadata"]["name"].is_string() {
        return Err(format!("{}: metadata.name is missing", path.display()));
    }
    if !value["metadata"]["namespace"].is_string() {
        value["metadata"]["namespace"] = Value::from(default_namespace);
    }
    Ok(value)
}

/// What the dry-run apply said.
enum DryRun {
    /// The object as the apiserver would store it.
    Stored(Box<GenericSecret>),
    /// Refused as invalid (422): the apiserver's message.
    Invalid(String),
    /// Not allowed to dry-run (403): validated locally.
    Forbidden(String),
}

async fn dry_run(client: &Client, manifest: &Value) -> Result<DryRun, kube::Error> {
    let ns = manifest["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<GenericSecret> = Api::namespaced(client.clone(), ns);
    // Forced: a preview answers "what if this were applied", whoever
    // manages the fields now.
    let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
    match api.patch(name, &params, &Patch::Apply(manifest)).await {
        Ok(gs) => Ok(DryRun::Stored(Box::new(gs))),
        Err(kube::Error::Api(s)) if s.code == 422 => Ok(DryRun::Invalid(s.message)),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(DryRun::Forbidden(s.message)),
        Err(e) => Err(e),
    }
}

/// The preview of `manifest` against the cluster `client` talks to.
pub async fn preview(
    client: &Client,
    settings: &Settings,
    manifest: &Value,
) -> Result<Preview, String> {
    let local = local_object(manifest);
    let named = local.clone().unwrap_or_else(|_| lenient(manifest));
    let snapshot = cluster::snapshot(client, settings, &named)
        .await
        .map_err(|e| format!("reading the cluster: {}", describe(&e)))?;
    let dry = dry_run(client, manifest)
        .await
        .map_err(|e| format!("dry-run apply: {}", describe(&e)))?;
    let mut known = Known::default();
    let gs = match dry {
        DryRun::Stored(gs) => *gs,
        DryRun::Invalid(message) => {
            known.invalid = Some(format!("the apiserver refuses it: {message}"));
            as_stored(named, &snapshot)
        }
        DryRun::Forbidden(message) => {
            known.notes.push(format!(
                "the dry-run apply was refused ({message}); validated locally, without the \
                 apiserver's CEL rules"
            ));
            as_stored(local.map_err(|e| format!("the manifest: {e}"))?, &snapshot)
        }
    };
    cluster::preview_in(client, settings, &gs, &snapshot, known)
        .await
        .map_err(|e| format!("reading the cluster: {}", describe(&e)))
}

/// The apiserver's own message when it answered, else the client's error.
fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        e => e.to_string(),
    }
}

fn local_object(manifest: &Value) -> Result<GenericSecret, String> {
    serde_json::from_value(manifest.clone()).map_err(|e| e.to_string())
}

/// An object for a manifest that does not even deserialize: its name and
/// namespace, and its scope if that much is readable.
fn lenient(manifest: &Value) -> GenericSecret {
    let spec: GenericSecretSpec = serde_json::from_value(serde_json::json!({
        "scope": manifest["spec"]["scope"],
    }))
    .or_else(|_| serde_json::from_value(serde_json::json!({})))
    .unwrap_or_else(|_| GenericSecretSpec {
        scope: Default::default(),
        secret_name: None,
        type_: "Opaque".to_owned(),
        data: None,
        data_from: None,
        labels: Default::default(),
        rollout: None,
    });
    let mut gs = GenericSecret::new(
        manifest["metadata"]["name"].as_str().unwrap_or_default(),
        spec,
    );
    gs.metadata.namespace = manifest["metadata"]["namespace"]
        .as_str()
        .map(str::to_owned);
    gs
}

/// `gs` with the identity the apiserver would give it: the stored
/// object's (uid, creation time, status), or a new one's (created now).
fn as_stored(mut gs: GenericSecret, snapshot: &Snapshot) -> GenericSecret {
    let Some(stored) = snapshot.stored(&gs) else {
        gs.metadata.uid = Some(format!("preview-{}", gs.name_any()));
        gs.metadata.creation_timestamp = Some(Time(Timestamp::now()));
        gs.metadata.generation = Some(1);
        return gs;
    };
    let changed = stored.spec != gs.spec;
    let generation = stored.metadata.generation.unwrap_or(1) + i64::from(changed);
    gs.metadata.uid.clone_from(&stored.metadata.uid);
    gs.metadata
        .creation_timestamp
        .clone_from(&stored.metadata.creation_timestamp);
    gs.metadata
        .deletion_timestamp
        .clone_from(&stored.metadata.deletion_timestamp);
    gs.metadata.generation = Some(generation);
    gs.status.clone_from(&stored.status);
    gs
}
