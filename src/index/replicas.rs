//! A compact cache of the Secrets this installation wrote: per replica only
//! what the write decisions need (identity, version, writer, type, our labels
//! and annotations, the data's keys and hash), never the data itself nor
//! `managedFields`. Indexed by namespace/name and by the writing object.
//! No I/O.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;

use super::Key;
use crate::api::LABEL_PREFIX;
use crate::replicas::{self, ADOPT_ANNOTATION, HASH_ANNOTATION, OWNER_ANNOTATION, data_hash};

/// (namespace, name) of a Secret.
pub type SecretKey = (String, String);

/// A few string pairs sorted by key. A `BTreeMap` allocates a node for
/// eleven (~550 bytes) even for the five a replica carries, and the cache
/// holds one per replica: thousands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pairs(Box<[(String, String)]>);

impl Pairs {
    pub fn get(&self, key: &str) -> Option<&String> {
        let i = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
        Some(&self.0[i].1)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }
}

impl FromIterator<(String, String)> for Pairs {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut pairs: Vec<_> = pairs.into_iter().collect();
        pairs.sort_unstable();
        pairs.dedup_by(|a, b| a.0 == b.0);
        Pairs(pairs.into_boxed_slice())
    }
}

/// What the operator keeps of one replica.
#[derive(Clone, Debug, PartialEq)]
pub struct Replica {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// `<namespace>/<name>` of the GenericSecret that wrote it.
    pub writer: Option<String>,
    pub managed: bool,
    /// Its owner consents to a takeover (`--adopt-existing`).
    pub adoptable: bool,
    pub type_: Option<String>,
    /// Hash of the live data (the same hash as `status.dataHash`).
    pub data_hash: String,
    pub data_keys: Box<[String]>,
    /// Our labels and the `ext.ai.sap.com/` ones: what a replica carries.
    pub labels: Pairs,
    /// Our annotations (writer, data hash).
    pub annotations: Pairs,
    pub owner_references: Option<Vec<OwnerReference>>,
}

impl Replica {
    /// The compact form of `secret`, as seen by installation `tenant`.
    pub fn of(secret: &Secret, tenant: &str) -> Replica {
        let empty = BTreeMap::new();
        let data = secret.data.as_ref().unwrap_or(&empty);
        let ours = |k: &String| k.starts_with(LABEL_PREFIX) || k.starts_with("aicore.dev/");
        let labels = secret
            .labels()
            .iter()
            .filter(|(k, _)| ours(k) || *k == replicas::MANAGED_BY_LABEL)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let annotations = secret
            .annotations()
            .iter()
            .filter(|(k, _)| [OWNER_ANNOTATION, HASH_ANNOTATION].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Replica {
            namespace: secret.namespace().unwrap_or_default(),
            name: secret.name_any(),
            uid: secret.uid(),
            resource_version: secret.resource_version(),
            writer: secret.annotations().get(OWNER_ANNOTATION).cloned(),
            managed: replicas::is_managed(secret, tenant),
            adoptable: secret
                .annotations()
                .get(ADOPT_ANNOTATION)
                .map(String::as_str)
                == Some("true"),
            type_: secret.type_.clone(),
            data_hash: data_hash(data),
            data_keys: data.keys().cloned().collect(),
            labels,
            annotations,
            owner_references: secret.metadata.owner_references.clone(),
        }
    }

    pub fn key(&self) -> SecretKey {
        (self.namespace.clone(), self.name.clone())
    }

    /// The writer as a queue key.
    pub fn writer_key(&self) -> Option<Key> {
        let (ns, name) = self.writer.as_deref()?.split_once('/')?;
        Some(Key::new(name).within(ns))
    }

    /// Equal but for the version: what a wake-up decision compares.
    pub fn same_content(&self, other: &Replica) -> bool {
        Replica {
            resource_version: None,
            ..self.clone()
        } == Replica {
            resource_version: None,
            ..other.clone()
        }
    }
}

/// The replicas, by Secret and by writer.
#[derive(Debug, Default)]
pub struct Replicas {
    by_key: HashMap<SecretKey, Replica>,
    by_writer: HashMap<String, HashSet<SecretKey>>,
    /// The version each replica had when the watch saw it deleted, so that
    /// a late write-through of that very version cannot bring it back.
    deleted: HashMap<SecretKey, (Option<String>, Instant)>,
    /// When each tombstone was laid, oldest first: a write-through comes
    /// within moments of its write, so tombstones go after
    /// [`TOMBSTONE_TTL`] rather than piling up with every deletion.
    laid: VecDeque<(Instant, SecretKey)>,
}

pub const TOMBSTONE_TTL: Duration = Duration::from_secs(120);

impl Replicas {
    pub fn get(&self, namespace: &str, name: &str) -> Option<&Replica> {
        self.by_key.get(&(namespace.to_owned(), name.to_owned()))
    }

    /// Replicas written by the object `<namespace>/<name>`.
    pub fn written_by(&self, object_key: &str) -> Vec<&Replica> {
        self.by_writer
            .get(object_key)
            .into_iter()
            .flatten()
            .filter_map(|k| self.by_key.get(k))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Insert or replace; returns the replica replaced.
    pub fn upsert(&mut self, replica: Replica) -> Option<Replica> {
        let key = replica.key();
        self.deleted.remove(&key);
        let old = self.remove(&key);
        if let Some(writer) = &replica.writer {
            self.by_writer
                .entry(writer.clone())
                .or_default()
                .insert(key.clone());
        }
        self.by_key.insert(key, replica);
        old
    }

    pub fn remove(&mut self, key: &SecretKey) -> Option<Replica> {
        let old = self.by_key.remove(key)?;
        if let Some(writer) = &old.writer
            && let Some(set) = self.by_writer.get_mut(writer)
        {
            set.remove(key);
            if set.is_empty() {
                self.by_writer.remove(writer);
            }
        }
        Some(old)
    }

    /// Record what a write of ours returned, unless the cache moved on
    /// meanwhile (a newer event from the watch wins). `based_on` is the
    /// version the write was made against (None: created).
    pub fn record_write(&mut self, written: Replica, based_on: Option<&str>) {
        let key = written.key();
        if self.deleted.get(&key).map(|(version, _)| version) == Some(&written.resource_version) {
            return;
        }
        let cached = self.by_key.get(&key);
        if cached.and_then(|c| c.resource_version.as_deref()) == based_on {
            self.upsert(written);
        }
    }

    /// A deletion the watch saw.
    pub fn observe_delete(&mut self, key: &SecretKey) -> Option<Replica> {
        let old = self.remove(key)?;
        let now = Instant::now();
        self.forget_tombstones(now);
        self.deleted
            .insert(key.clone(), (old.resource_version.clone(), now));
        self.laid.push_back((now, key.clone()));
        Some(old)
    }

    /// Drop the tombstones laid more than [`TOMBSTONE_TTL`] before `now`.
    pub fn forget_tombstones(&mut self, now: Instant) {
        while let Some((at, _)) = self.laid.front() {
            if now.duration_since(*at) < TOMBSTONE_TTL {
                break;
            }
            let Some((at, key)) = self.laid.pop_front() else {
                break;
            };
            // Unless a newer tombstone took its place.
            if self.deleted.get(&key).is_some_and(|(_, laid)| *laid == at) {
                self.deleted.remove(&key);
            }
        }
    }

    pub fn tombstones(&self) -> usize {
        self.deleted.len()
    }

    /// Forget a replica we deleted, unless the cache holds a newer version.
    pub fn record_delete(&mut self, key: &SecretKey, version: Option<&str>) {
        let cached = self.by_key.get(key);
        if cached.is_some_and(|c| c.resource_version.as_deref() == version) {
            self.remove(key);
        }
    }

    /// Writers of replicas whose content differs between `self` and `old`
    /// (after a re-list).
    pub fn writers_changed_since(&self, old: &Replicas) -> HashSet<Key> {
        let mut writers = HashSet::new();
        let differs = |a: &Replica, b: Option<&Replica>| b.is_none_or(|b| !a.same_content(b));
        for (key, replica) in &self.by_key {
            if differs(replica, old.by_key.get(key)) {
                writers.extend(replica.writer_key());
                writers.extend(old.by_key.get(key).and_then(Replica::writer_key));
            }
        }
        for (key, replica) in &old.by_key {
            if !self.by_key.contains_key(key) {
                writers.extend(replica.writer_key());
            }
        }
        writers
    }
}
