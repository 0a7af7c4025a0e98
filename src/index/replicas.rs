//! A compact cache of the Secrets this installation wrote: per replica only
//! what the write decisions need (identity, version, writer, type, our labels
//! and annotations, the data's keys and hash), never the data itself nor
//! `managedFields`. Indexed by name/namespace and by the writing object.
//! Strings that replicas share (namespaces, names, label keys and values,
//! writers, data hashes: a tenant-wide object's thousand replicas differ
//! only in their namespace) are held once. No I/O.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;

use super::Key;
use crate::api::LABEL_PREFIX;
use crate::replicas::{self, ADOPT_ANNOTATION, HASH_ANNOTATION, OWNER_ANNOTATION, data_hash};

/// (namespace, name) of a Secret.
pub type SecretKey = (Arc<str>, Arc<str>);

/// One copy of each string the cached replicas share.
#[derive(Debug, Default)]
struct Strings {
    set: HashSet<Arc<str>>,
    /// Insertions since strings no replica holds were dropped.
    since_sweep: usize,
}

/// How many replicas are cached between two sweeps of unused strings.
const SWEEP_EVERY: usize = 4096;

impl Strings {
    fn share(&mut self, s: &mut Arc<str>) {
        match self.set.get(&**s) {
            Some(shared) => *s = shared.clone(),
            None => {
                self.set.insert(s.clone());
            }
        }
    }

    fn share_replica(&mut self, r: &mut Replica) {
        self.share(&mut r.namespace);
        self.share(&mut r.name);
        self.share(&mut r.data_hash);
        for s in r.writer.iter_mut().chain(r.type_.iter_mut()) {
            self.share(s);
        }
        for s in r.data_keys.iter_mut() {
            self.share(s);
        }
        for (k, v) in r.labels.0.iter_mut().chain(r.annotations.0.iter_mut()) {
            self.share(k);
            self.share(v);
        }
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            self.since_sweep = 0;
            self.set.retain(|s| Arc::strong_count(s) > 1);
        }
    }
}

/// A few string pairs sorted by key. A `BTreeMap` allocates a node for
/// eleven (~550 bytes) even for the five a replica carries, and the cache
/// holds one per replica: thousands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pairs(Box<[(Arc<str>, Arc<str>)]>);

impl Pairs {
    pub fn get(&self, key: &str) -> Option<&str> {
        let i = self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
        Some(&self.0[i].1)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| &**k)
    }
}

impl FromIterator<(Arc<str>, Arc<str>)> for Pairs {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, Arc<str>)>>(pairs: I) -> Self {
        let mut pairs: Vec<_> = pairs.into_iter().collect();
        pairs.sort_unstable();
        pairs.dedup_by(|a, b| a.0 == b.0);
        Pairs(pairs.into_boxed_slice())
    }
}

/// What the operator keeps of one replica.
#[derive(Clone, Debug, PartialEq)]
pub struct Replica {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// `<namespace>/<name>` of the GenericSecret that wrote it.
    pub writer: Option<Arc<str>>,
    pub managed: bool,
    /// Its owner consents to a takeover (`--adopt-existing`).
    pub adoptable: bool,
    pub type_: Option<Arc<str>>,
    /// Hash of the live data (the same hash as `status.dataHash`).
    pub data_hash: Arc<str>,
    pub data_keys: Box<[Arc<str>]>,
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
            .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
            .collect();
        let annotations = secret
            .annotations()
            .iter()
            .filter(|(k, _)| [OWNER_ANNOTATION, HASH_ANNOTATION].contains(&k.as_str()))
            .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
            .collect();
        Replica {
            namespace: secret.namespace().unwrap_or_default().into(),
            name: secret.name_any().into(),
            uid: secret.uid(),
            resource_version: secret.resource_version(),
            writer: secret
                .annotations()
                .get(OWNER_ANNOTATION)
                .map(|w| w.as_str().into()),
            managed: replicas::is_managed(secret, tenant),
            adoptable: secret
                .annotations()
                .get(ADOPT_ANNOTATION)
                .map(String::as_str)
                == Some("true"),
            type_: secret.type_.as_deref().map(Arc::from),
            data_hash: data_hash(data).into(),
            data_keys: data.keys().map(|k| k.as_str().into()).collect(),
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
    /// Name → namespace → replica: looked up by `&str`, without building a key.
    /// Boxed: a map's table keeps room for up to twice its entries, and a
    /// tenant-wide name has one per resource group (8 bytes a slot, not 200).
    by_name: HashMap<Arc<str>, HashMap<Arc<str>, Box<Replica>>>,
    by_writer: HashMap<Arc<str>, HashSet<SecretKey>>,
    /// The version each replica had when the watch saw it deleted, so that
    /// a late write-through of that very version cannot bring it back.
    deleted: HashMap<SecretKey, (Option<String>, Instant)>,
    /// When each tombstone was laid, oldest first: a write-through comes
    /// within moments of its write, so tombstones go after
    /// [`TOMBSTONE_TTL`] rather than piling up with every deletion.
    laid: VecDeque<(Instant, SecretKey)>,
    strings: Strings,
    len: usize,
}

pub const TOMBSTONE_TTL: Duration = Duration::from_secs(120);

impl Replicas {
    pub fn get(&self, namespace: &str, name: &str) -> Option<&Replica> {
        self.by_name.get(name)?.get(namespace).map(|r| &**r)
    }

    fn get_key(&self, (namespace, name): &SecretKey) -> Option<&Replica> {
        self.get(namespace, name)
    }

    fn iter(&self) -> impl Iterator<Item = &Replica> {
        self.by_name
            .values()
            .flat_map(HashMap::values)
            .map(|r| &**r)
    }

    /// Replicas written by the object `<namespace>/<name>`.
    pub fn written_by(&self, object_key: &str) -> Vec<&Replica> {
        self.by_writer
            .get(object_key)
            .into_iter()
            .flatten()
            .filter_map(|k| self.get_key(k))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Insert or replace; returns the replica replaced.
    pub fn upsert(&mut self, mut replica: Replica) -> Option<Replica> {
        self.strings.share_replica(&mut replica);
        let key = replica.key();
        self.deleted.remove(&key);
        let old = self.remove(&key);
        if let Some(writer) = &replica.writer {
            self.by_writer
                .entry(writer.clone())
                .or_default()
                .insert(key.clone());
        }
        let (namespace, name) = key;
        let by_namespace = self.by_name.entry(name).or_default();
        by_namespace.insert(namespace, Box::new(replica));
        self.len += 1;
        old
    }

    pub fn remove(&mut self, key: &SecretKey) -> Option<Replica> {
        let (namespace, name) = key;
        let by_namespace = self.by_name.get_mut(name)?;
        let old = by_namespace.remove(namespace)?;
        if by_namespace.is_empty() {
            self.by_name.remove(name);
        }
        self.len -= 1;
        if let Some(writer) = &old.writer
            && let Some(set) = self.by_writer.get_mut(writer)
        {
            set.remove(key);
            if set.is_empty() {
                self.by_writer.remove(writer);
            }
        }
        Some(*old)
    }

    /// Record what a write of ours returned, unless the cache moved on
    /// meanwhile (a newer event from the watch wins). `based_on` is the
    /// version the write was made against (None: created).
    pub fn record_write(&mut self, written: Replica, based_on: Option<&str>) {
        let key = written.key();
        if self.deleted.get(&key).map(|(version, _)| version) == Some(&written.resource_version) {
            return;
        }
        let cached = self.get_key(&key);
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
        let cached = self.get_key(key);
        if cached.is_some_and(|c| c.resource_version.as_deref() == version) {
            self.remove(key);
        }
    }

    /// Writers of replicas whose content differs between `self` and `old`
    /// (after a re-list).
    pub fn writers_changed_since(&self, old: &Replicas) -> HashSet<Key> {
        let mut writers = HashSet::new();
        let differs = |a: &Replica, b: Option<&Replica>| b.is_none_or(|b| !a.same_content(b));
        for replica in self.iter() {
            let before = old.get(&replica.namespace, &replica.name);
            if differs(replica, before) {
                writers.extend(replica.writer_key());
                writers.extend(before.and_then(Replica::writer_key));
            }
        }
        for replica in old.iter() {
            if self.get(&replica.namespace, &replica.name).is_none() {
                writers.extend(replica.writer_key());
            }
        }
        writers
    }
}
