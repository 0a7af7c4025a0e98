//! The reads behind a preview: a handful of list calls whatever the number
//! of namespaces (every GenericSecret; the installation's namespaces and
//! the Secrets named like the replicas, metadata only; this object's
//! replicas by label), never a Secret's data. No writes.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, ObjectMeta, PartialObjectMeta};
use kube::{Api, Client, ResourceExt};

use super::{Input, Preview, compute};
use crate::api::GenericSecret;
use crate::api::validation::{Source, validate};
use crate::controller::SOURCE_LABEL;
use crate::index::replicas::Replica;
use crate::index::{Groups, Objects};
use crate::plan::{Rules, World};
use crate::replicas::{self, HASH_ANNOTATION, OWNER_LABEL, Payload};

/// The planner flags of `run`, as a preview needs them.
#[derive(Clone, Debug)]
pub struct Settings {
    pub rules: Rules,
    pub adopt_existing: bool,
    pub namespace_selector: Option<String>,
}

/// What the cluster holds that a preview of one object reads.
pub struct Snapshot {
    pub objects: Vec<GenericSecret>,
    pub groups: Groups,
    /// Secrets named like the replicas, and this object's replicas.
    pub secrets: Vec<Replica>,
}

impl Snapshot {
    /// The stored version of `gs` (same namespace and name), if any.
    pub fn stored(&self, gs: &GenericSecret) -> Option<&GenericSecret> {
        let key = replicas::object_key(gs);
        self.objects.iter().find(|o| replicas::object_key(o) == key)
    }
}

/// Read what planning `gs` needs: four list calls, run at once.
pub async fn snapshot(
    client: &Client,
    settings: &Settings,
    gs: &GenericSecret,
) -> Result<Snapshot, kube::Error> {
    let tenant = &settings.rules.tenant_namespace;
    let objects = Api::<GenericSecret>::all(client.clone());
    let namespaces = Api::<Namespace>::all(client.clone());
    let secrets = Api::<Secret>::all(client.clone());
    let ns_params = match &settings.namespace_selector {
        Some(selector) => ListParams::default().labels(selector),
        None => ListParams::default(),
    };
    let named = ListParams::default().fields(&format!("metadata.name={}", gs.secret_name()));
    let ours = format!(
        "{},{OWNER_LABEL}={}",
        replicas::selector(tenant),
        replicas::owner_label(gs)
    );
    let ours = ListParams::default().labels(&ours);
    let all = ListParams::default();
    let (objects, namespaces, named, ours) = futures::try_join!(
        objects.list(&all),
        namespaces.list_metadata(&ns_params),
        secrets.list_metadata(&named),
        secrets.list_metadata(&ours),
    )?;
    let mut groups = Groups::default();
    for ns in namespaces {
        groups.upsert(&as_namespace(ns));
    }
    let mut seen = BTreeSet::new();
    let secrets = named
        .into_iter()
        .chain(ours)
        .map(|meta| replica_of(meta, tenant))
        .filter(|r| seen.insert(r.key()))
        .collect();
    Ok(Snapshot {
        objects: objects.items,
        groups,
        secrets,
    })
}

fn as_namespace(meta: PartialObjectMeta<Namespace>) -> Namespace {
    Namespace {
        metadata: meta.metadata,
        ..Namespace::default()
    }
}

/// A Secret's metadata in the controller's compact form; its data hash is
/// the one our annotation records (a hand edit of the data is not seen).
pub fn replica_of(meta: PartialObjectMeta<Secret>, tenant: &str) -> Replica {
    replica_of_meta(meta.metadata, tenant)
}

pub fn replica_of_meta(metadata: ObjectMeta, tenant: &str) -> Replica {
    let secret = Secret {
        metadata,
        ..Secret::default()
    };
    let hash = secret.annotations().get(HASH_ANNOTATION).cloned();
    Replica {
        data_hash: hash.unwrap_or_default().into(),
        ..Replica::of(&secret, tenant)
    }
}

/// Why `gs`'s `dataFrom` source cannot be read (metadata only: whether it
/// exists and consents to being copied), if it cannot.
pub async fn source_problem(
    client: &Client,
    gs: &GenericSecret,
    source: &str,
) -> Result<Option<String>, kube::Error> {
    let ns = gs.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let found = api.get_metadata_opt(source).await?;
    Ok(match found {
        None => Some(format!(
            "dataFrom.secretRef: Secret {ns}/{source} does not exist or has no data; create \
             it, labelled {SOURCE_LABEL}=true"
        )),
        Some(s) if s.labels().get(SOURCE_LABEL).map(String::as_str) != Some("true") => {
            Some(format!(
                "dataFrom.secretRef: Secret {ns}/{source} is not labelled {SOURCE_LABEL}=true; \
                 its owner labels it to allow copying it into replicas"
            ))
        }
        Some(_) => None,
    })
}

/// What is known of `gs` beyond itself before planning.
#[derive(Default)]
pub struct Known {
    /// Why the spec is invalid (e.g. the apiserver's 422 message).
    pub invalid: Option<String>,
    /// Hash of the data, when the caller has it (the REST API's request).
    pub data_hash: Option<String>,
    pub notes: Vec<String>,
}

/// The preview of `gs` (as it would be stored) against the cluster now.
pub async fn preview(
    client: &Client,
    settings: &Settings,
    gs: &GenericSecret,
    known: Known,
) -> Result<Preview, kube::Error> {
    let snapshot = snapshot(client, settings, gs).await?;
    preview_in(client, settings, gs, &snapshot, known).await
}

/// [`preview`] over a snapshot read already; reads at most the `dataFrom`
/// source's metadata.
pub async fn preview_in(
    client: &Client,
    settings: &Settings,
    gs: &GenericSecret,
    snapshot: &Snapshot,
    mut known: Known,
) -> Result<Preview, kube::Error> {
    let mut source_missing = None;
    match (known.invalid.is_some(), validate(&gs.spec)) {
        (true, _) => {}
        (false, Err(msg)) => known.invalid = Some(msg),
        (false, Ok(Source::Inline(data))) => {
            known.data_hash.get_or_insert(Payload::new(data).hash);
        }
        // The data comes with the request (the REST API writes the source
        // in the same call): nothing to look at.
        (false, Ok(Source::Secret(_))) if known.data_hash.is_some() => {}
        (false, Ok(Source::Secret(name))) => {
            source_missing = source_problem(client, gs, &name).await?;
            if source_missing.is_none() {
                known.notes.push(format!(
                    "the data of Secret {name} (dataFrom) is not read: replicas are compared \
                     with the data last replicated"
                ));
            }
        }
    }
    Ok(from_snapshot(settings, gs, snapshot, known, source_missing))
}

/// The pure part of [`preview`].
pub fn from_snapshot(
    settings: &Settings,
    gs: &GenericSecret,
    snapshot: &Snapshot,
    known: Known,
    source_missing: Option<String>,
) -> Preview {
    let key = replicas::object_key(gs);
    let others = snapshot
        .objects
        .iter()
        .filter(|o| replicas::object_key(o) != key);
    let objects = Objects::from_objects(others.chain([gs]));
    let world = World {
        rules: &settings.rules,
        objects: &objects,
        groups: &snapshot.groups,
        now: Timestamp::now(),
    };
    compute(Input {
        object: gs,
        exists: snapshot.stored(gs).is_some(),
        world,
        invalid: known.invalid,
        source_missing,
        data_hash: known.data_hash,
        secrets: &snapshot.secrets,
        adopt_existing: settings.adopt_existing,
        notes: known.notes,
    })
}
