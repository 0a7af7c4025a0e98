//! Read-your-writes for status. A reconcile can start from a cached object
//! whose status predates the one the previous reconcile wrote: the watch
//! event is still on its way (a wake-up from another object, say). Started
//! from the cache, it would compute anew what it wrote already: write it a
//! second time, restart rotation clocks, count a completed rotation twice.
//! The operator alone writes status, so until the watch delivers our last
//! write, that write is the object's status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use kube::runtime::watcher::Event;

use crate::api::{GenericSecret, GenericSecretStatus};
use crate::index::Key;

/// Status writes the cache does not show yet, by object. An entry lives
/// from a write until its watch event: milliseconds, a handful of entries.
#[derive(Debug, Default)]
pub struct Written(Mutex<HashMap<Key, Entry>>);

#[derive(Debug)]
struct Entry {
    /// resourceVersion our write produced.
    version: String,
    status: GenericSecretStatus,
}

impl Written {
    fn map(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The apiserver stored `status` for `gs` as `version`.
    pub fn wrote(&self, gs: &GenericSecret, version: Option<String>, status: &GenericSecretStatus) {
        let key = Key::from(gs);
        match version {
            Some(version) => {
                let status = status.clone();
                self.map().insert(key, Entry { version, status });
            }
            None => {
                self.map().remove(&key);
            }
        }
    }

    /// `gs`, with the status last written if the cache does not show it yet.
    pub fn fresh(&self, gs: Arc<GenericSecret>) -> Arc<GenericSecret> {
        let map = self.map();
        match map.get(&Key::from(gs.as_ref())) {
            Some(e) if gs.metadata.resource_version.as_ref() != Some(&e.version) => {
                let mut fresh = (*gs).clone();
                fresh.status = Some(e.status.clone());
                Arc::new(fresh)
            }
            _ => gs,
        }
    }

    /// The watch delivered `event`: forget the writes the cache now shows.
    /// Events come in resourceVersion order, so an object's entry goes with
    /// the event of our write; a re-list rebuilds the cache: trust it.
    pub fn seen(&self, event: &Event<GenericSecret>) {
        match event {
            Event::Apply(gs) | Event::Delete(gs) => {
                let key = Key::from(gs);
                let mut map = self.map();
                let shown = map
                    .get(&key)
                    .is_some_and(|e| gs.metadata.resource_version.as_ref() == Some(&e.version));
                if shown || matches!(event, Event::Delete(_)) {
                    map.remove(&key);
                }
            }
            Event::Init => self.map().clear(),
            Event::InitApply(_) | Event::InitDone => {}
        }
    }
}

#[cfg(test)]
mod tests;
