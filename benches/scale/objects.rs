//! GenericSecrets as plain JSON (`DynamicObject`), so the bench does not
//! depend on the operator's internals: building them, reading from the
//! status whether the operator is done with them, and waiting for that.

use base64::Engine;
use kube::ResourceExt;
use kube::api::{DynamicObject, ListParams};
use serde_json::{Value, json};

use crate::cluster::{BENCH_LABEL, Cluster};
use crate::util::{POLL, Poll, Result, deadline, payload, poll_until};
use crate::watches::Watches;

/// Label telling the bench's sets of GenericSecrets apart.
pub const SET_LABEL: &str = "gso-bench-set";

/// `spec.data`: key `k` with 1 KiB of `tag`, base64-encoded.
pub fn data(tag: u8) -> Value {
    let encoded = base64::engine::general_purpose::STANDARD.encode(payload(tag));
    json!({ "k": encoded })
}

/// A GenericSecret `ns/name` of `scope`, labelled as part of `set`.
pub fn generic_secret(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    scope: &str,
    set: &str,
) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "aicore.dev/v1alpha1",
        "kind": "GenericSecret",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": { BENCH_LABEL: cluster.run_id, SET_LABEL: set },
        },
        "spec": { "scope": scope, "data": data(b'a') },
    }))?)
}

/// The label selector for `set` of this run.
pub fn set_selector(cluster: &Cluster, set: &str) -> ListParams {
    ListParams::default().labels(&format!(
        "{BENCH_LABEL}={},{SET_LABEL}={set}",
        cluster.run_id
    ))
}

fn status(gs: &DynamicObject) -> &Value {
    &gs.data["status"]
}

pub fn generation(gs: &DynamicObject) -> i64 {
    gs.metadata.generation.unwrap_or(0)
}

pub fn data_hash(gs: &DynamicObject) -> Option<&str> {
    status(gs)["dataHash"].as_str()
}

/// Ready=True for the current generation.
pub fn is_current(gs: &DynamicObject) -> bool {
    let status = status(gs);
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    ready && status["observedGeneration"].as_i64() == Some(generation(gs))
}

/// Current, and `resourceGroupSecretReplicationStatus` has `n` entries, all true.
pub fn is_replicated(gs: &DynamicObject, n: usize) -> bool {
    let map = status(gs)["resourceGroupSecretReplicationStatus"].as_object();
    let all_true = map.is_some_and(|m| m.len() == n && m.values().all(|v| v == true));
    all_true && is_current(gs)
}

/// Polls the bench's cache of its GenericSecrets until `done` holds for
/// the `count` objects of `set` (in `ns`, or anywhere); returns them.
pub async fn wait_set(
    watches: &Watches,
    ns: Option<&str>,
    set: &str,
    count: usize,
    n: usize,
    done: impl Fn(&DynamicObject) -> bool,
) -> Result<Vec<DynamicObject>> {
    let what = format!("{count} GenericSecrets of set {set} to be done");
    let in_set = |gs: &DynamicObject| {
        gs.labels().get(SET_LABEL).map(String::as_str) == Some(set)
            && ns.is_none_or(|ns| gs.namespace().as_deref() == Some(ns))
    };
    // Clones only the answer: a deep copy of 2000 objects every 100 ms
    // cost the bench ~10 CPU seconds per run, on the cores it measures.
    poll_until(&what, deadline(n), POLL, || async {
        let objects = watches.objects();
        let items: Vec<&DynamicObject> = objects
            .iter()
            .map(AsRef::as_ref)
            .filter(|gs| in_set(gs))
            .collect();
        let finished = items.iter().filter(|gs| done(gs)).count();
        Ok(if items.len() == count && finished == count {
            Poll::Done(items.into_iter().cloned().collect())
        } else {
            Poll::Pending(format!("{finished}/{} done", items.len()))
        })
    })
    .await
}

/// Waits until no GenericSecret of `set` is left.
pub async fn wait_set_gone(watches: &Watches, set: &str, n: usize) -> Result<()> {
    wait_set(watches, None, set, 0, n, |_| true).await?;
    Ok(())
}
