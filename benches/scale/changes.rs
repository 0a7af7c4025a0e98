//! Changes to the bench's own objects as watches see them: replica Secrets
//! of one tenant (`secrets ADDED|MODIFIED|DELETED`) and the run's
//! GenericSecrets (`genericsecrets ...`). Unlike the apiserver's counters,
//! which are cluster-wide, these are exact when other clients share the
//! control plane; they miss writes that changed nothing (an apply of what is
//! already there), which the counters include.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use crate::cluster::{BENCH_LABEL, Cluster, TENANT_LABEL};
use crate::metrics::Counters;

pub struct Changes {
    counts: Arc<Mutex<Counters>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Changes {
    /// Starts watching the replicas of `tenant` and the run's GenericSecrets.
    pub fn watch(cluster: &Cluster, tenant: &str) -> Self {
        let counts = Arc::new(Mutex::new(Counters::new()));
        let replicas = watcher::Config::default().labels(&format!("{TENANT_LABEL}={tenant}"));
        let objects =
            watcher::Config::default().labels(&format!("{BENCH_LABEL}={}", cluster.run_id));
        let secrets = Api::<Secret>::all(cluster.client.clone());
        let tasks = vec![
            tokio::spawn(count(secrets, replicas, "secrets", counts.clone())),
            tokio::spawn(count(
                cluster.gsecs(None),
                objects,
                "genericsecrets",
                counts.clone(),
            )),
        ];
        Changes { counts, tasks }
    }

    /// Changes seen so far, by `resource EVENT`.
    pub fn snapshot(&self) -> Counters {
        lock(&self.counts).clone()
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

fn lock(counts: &Mutex<Counters>) -> std::sync::MutexGuard<'_, Counters> {
    counts
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts the events of one watch; objects listed when the watch (re)starts
/// are not changes.
async fn count<K>(
    api: Api<K>,
    config: watcher::Config,
    resource: &str,
    counts: Arc<Mutex<Counters>>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut known = HashSet::new();
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let Ok(event) = event else { continue };
        let key = |o: &K| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any());
        let change = match event {
            Event::InitApply(o) => {
                known.insert(key(&o));
                None
            }
            Event::Apply(o) if known.insert(key(&o)) => Some("ADDED"),
            Event::Apply(_) => Some("MODIFIED"),
            Event::Delete(o) => {
                known.remove(&key(&o));
                Some("DELETED")
            }
            Event::Init | Event::InitDone => None,
        };
        if let Some(change) = change {
            *lock(&counts)
                .entry(format!("{resource} {change}"))
                .or_default() += 1.0;
        }
    }
}
