//! Watches on the Secrets in the way: a target in `Conflict` (an unmanaged
//! Secret holds the name) must clear itself within seconds of that Secret's
//! deletion or rename, without a cluster-wide Secret watch. So for every
//! Secret name that some object is in conflict on, one metadata-only watch
//! selected by `metadata.name` runs while the conflict lasts; its deletions
//! wake the objects in conflict. Bounded: at most [`MAX_WATCHED`] names (the
//! rest wait for the resync), and no data of a foreign Secret is read.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::task::AbortHandle;

use super::watches::{Wakes, backoff};
use crate::index::Key;

/// Distinct Secret names watched at once.
pub const MAX_WATCHED: usize = 100;

struct Watched {
    objects: HashSet<Key>,
    task: AbortHandle,
}

type Registry = Arc<Mutex<HashMap<String, Watched>>>;

pub struct Conflicts {
    client: Client,
    wakes: Wakes,
    watched: Registry,
}

impl Conflicts {
    pub fn new(client: Client, wakes: Wakes) -> Self {
        Conflicts {
            client,
            wakes,
            watched: Registry::default(),
        }
    }

    /// Record whether `object` is in conflict on Secret name `name`: the
    /// first object in conflict on a name starts its watch, the last one
    /// to leave stops it.
    pub fn report(&self, object: &Key, name: &str, conflicting: bool) {
        let Ok(mut watched) = self.watched.lock() else {
            return;
        };
        if conflicting {
            if let Some(w) = watched.get_mut(name) {
                w.objects.insert(object.clone());
            } else if watched.len() < MAX_WATCHED {
                let task = self.spawn(name, object.clone());
                let objects = HashSet::from([object.clone()]);
                watched.insert(name.to_owned(), Watched { objects, task });
            } else {
                tracing::warn!(
                    secret = name,
                    "too many conflicting names watched; this one waits for the resync"
                );
            }
            return;
        }
        let done = watched.get_mut(name).is_some_and(|w| {
            w.objects.remove(object);
            w.objects.is_empty()
        });
        if done && let Some(w) = watched.remove(name) {
            w.task.abort();
        }
    }

    /// Objects in conflict on `name`.
    fn objects(watched: &Registry, name: &str) -> HashSet<Key> {
        let guard = watched.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .get(name)
            .map(|w| w.objects.clone())
            .unwrap_or_default()
    }

    fn spawn(&self, name: &str, first: Key) -> AbortHandle {
        // Metadata only: the foreign Secret's data is never read.
        let api: Api<PartialObjectMeta<Secret>> = Api::all(self.client.clone());
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut wakes = self.wakes.clone();
        let name = name.to_owned();
        let registry = self.watched.clone();
        tokio::spawn(async move {
            let mut events = std::pin::pin!(watcher::watcher(api, config).backoff(backoff()));
            while let Some(event) = events.next().await {
                let woken = match event {
                    // A deletion (or rename) frees the name, a change may be
                    // the owner's consent to adoption; after a (re)list a
                    // deletion may have passed unseen: look again.
                    Ok(Event::Delete(_) | Event::Apply(_) | Event::InitDone) => {
                        Conflicts::objects(&registry, &name)
                    }
                    _ => continue,
                };
                // The first event may come before the entry is registered.
                let woken = if woken.is_empty() {
                    HashSet::from([first.clone()])
                } else {
                    woken
                };
                for key in woken {
                    if wakes.send(key).await.is_err() {
                        return;
                    }
                }
            }
        })
        .abort_handle()
    }
}
