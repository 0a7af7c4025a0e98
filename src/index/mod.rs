//! Indexes over the watch caches, kept up to date from the watch events, so
//! that a reconcile and a wake-up decision cost O(what they touch), never
//! O(all objects / all namespaces / all replicas). No I/O.
//!
//! - [`Objects`]: what planning needs of every GenericSecret ([`Facts`]), by
//!   key, by (namespace, Secret name), by Secret name, by namespace and by
//!   `dataFrom` source. Facts are computed once per watch event, so no
//!   reconcile decodes another object's data.
//! - [`Groups`]: the installation's namespaces and their resource-group ids.
//! - [`replicas`]: a compact cache of the Secrets the operator wrote.

pub mod replicas;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use crate::api::validation::validate_spec;
use crate::api::{GenericSecret, RESOURCE_GROUP_LABEL, Scope, ShadowStatus};

/// A GenericSecret's identity in the indexes and the controller's queue.
pub type Key = ObjectRef<GenericSecret>;

/// Creation order: creationTimestamp, then name.
pub type CreationKey = (Option<Timestamp>, String);

/// Condition reason with which an object reports a missing `dataFrom` source.
pub const SOURCE_NOT_FOUND: &str = "SourceNotFound";

/// What the planner needs to know of one GenericSecret; two objects' plans
/// depend on each other only through these fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    pub key: Key,
    pub namespace: String,
    pub uid: String,
    pub scope: Scope,
    /// Kubernetes name of its replicas.
    pub secret_name: String,
    pub created: CreationKey,
    /// Not being deleted.
    pub live: bool,
    /// Why the spec is invalid, if it is.
    pub invalid: Option<String>,
    pub generation: Option<i64>,
    /// Its shadow record (resource-group objects), as stored in status.
    pub shadow: Option<ShadowStatus>,
    /// It reported, for its current generation, a missing `dataFrom` source.
    pub lacks_source: bool,
    /// Name of its `dataFrom` source Secret.
    pub source: Option<String>,
}

impl Facts {
    /// The facts of `gs`, validating its spec.
    pub fn of(gs: &GenericSecret) -> Facts {
        Facts::with_validity(gs, validate_spec(&gs.spec).err())
    }

    /// The facts of `gs` whose spec the caller validated already.
    pub fn with_validity(gs: &GenericSecret, invalid: Option<String>) -> Facts {
        let status = gs.status.as_ref();
        let observed = status.and_then(|s| s.observed_generation);
        let lacks_source = observed == gs.metadata.generation
            && gs
                .ready_condition()
                .is_some_and(|c| c.reason == SOURCE_NOT_FOUND);
        Facts {
            key: ObjectRef::from(gs),
            namespace: gs.namespace().unwrap_or_default(),
            uid: gs.uid().unwrap_or_default(),
            scope: gs.spec.scope,
            secret_name: gs.secret_name(),
            created: creation_key(gs),
            live: gs.metadata.deletion_timestamp.is_none(),
            invalid,
            generation: gs.metadata.generation,
            shadow: status.and_then(|s| s.shadow.clone()),
            lacks_source,
            source: gs
                .spec
                .data_from
                .as_ref()
                .map(|f| f.secret_ref.name.clone()),
        }
    }

    /// `<namespace>/<name>`.
    pub fn object_key(&self) -> String {
        format!("{}/{}", self.namespace, self.key.name)
    }
}

/// Creation order: creationTimestamp, then name.
pub fn creation_key(gs: &GenericSecret) -> CreationKey {
    (gs.creation_timestamp().map(|t| t.0), gs.name_any())
}

type Pair = (String, String);

/// Every GenericSecret's [`Facts`], with the look-ups planning and wake-ups
/// need. Facts live once, in `facts`; the sets share one key per object
/// (most hold one or two, and a key is ~100 bytes and two strings), and
/// the facts are boxed, as a map's table keeps up to twice its entries.
#[derive(Debug, Default)]
pub struct Objects {
    facts: HashMap<Arc<Key>, Box<Facts>>,
    /// (namespace, Secret name) → objects (one or two: a collision).
    by_secret: HashMap<Pair, HashSet<Arc<Key>>>,
    /// Secret name → resource-group objects (the shadowing candidates).
    resource_groups_by_name: HashMap<String, HashSet<Arc<Key>>>,
    by_namespace: HashMap<String, HashSet<Arc<Key>>>,
    /// (namespace, source Secret) → objects reading it.
    by_source: HashMap<Pair, HashSet<Arc<Key>>>,
}

impl Objects {
    /// An index of `objects` (the REST API plans a request against a list).
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a GenericSecret>) -> Self {
        let mut index = Objects::default();
        for gs in objects {
            index.upsert(Facts::of(gs));
        }
        index
    }

    pub fn get(&self, key: &Key) -> Option<&Facts> {
        self.facts.get(key).map(|f| &**f)
    }

    pub fn len(&self) -> usize {
        self.facts.len()
    }

    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.facts.keys().map(|k| &**k)
    }

    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }

    /// Insert or replace; returns the facts replaced.
    pub fn upsert(&mut self, facts: Facts) -> Option<Facts> {
        let old = self.remove(&facts.key);
        let key = Arc::new(facts.key.clone());
        link(
            &mut self.by_secret,
            pair(&facts.namespace, &facts.secret_name),
            &key,
        );
        if facts.scope == Scope::ResourceGroup {
            link(
                &mut self.resource_groups_by_name,
                facts.secret_name.clone(),
                &key,
            );
        }
        link(&mut self.by_namespace, facts.namespace.clone(), &key);
        if let Some(source) = &facts.source {
            link(&mut self.by_source, pair(&facts.namespace, source), &key);
        }
        self.facts.insert(key, Box::new(facts));
        old
    }

    pub fn remove(&mut self, key: &Key) -> Option<Facts> {
        let old = self.facts.remove(key)?;
        unlink(
            &mut self.by_secret,
            &pair(&old.namespace, &old.secret_name),
            key,
        );
        unlink(&mut self.resource_groups_by_name, &old.secret_name, key);
        unlink(&mut self.by_namespace, &old.namespace, key);
        if let Some(source) = &old.source {
            unlink(&mut self.by_source, &pair(&old.namespace, source), key);
        }
        Some(*old)
    }

    /// Objects in `namespace` whose replicas are named `secret_name`, live
    /// or not, oldest first.
    pub fn named(&self, namespace: &str, secret_name: &str) -> Vec<&Facts> {
        let keys = self.by_secret.get(&pair(namespace, secret_name));
        self.sorted(keys)
    }

    /// Resource-group objects whose replicas are named `secret_name`, in
    /// any namespace.
    pub fn resource_groups_named(&self, secret_name: &str) -> Vec<&Facts> {
        self.sorted(self.resource_groups_by_name.get(secret_name))
    }

    /// Objects in `namespace`.
    pub fn in_namespace(&self, namespace: &str) -> Vec<&Facts> {
        self.sorted(self.by_namespace.get(namespace))
    }

    /// Objects reading Secret `source` of `namespace` (`dataFrom`).
    pub fn reading(&self, namespace: &str, source: &str) -> Vec<&Facts> {
        self.sorted(self.by_source.get(&pair(namespace, source)))
    }

    fn sorted(&self, keys: Option<&HashSet<Arc<Key>>>) -> Vec<&Facts> {
        let mut found: Vec<&Facts> = keys
            .into_iter()
            .flatten()
            .filter_map(|k| self.get(k))
            .collect();
        found.sort_by(|a, b| a.created.cmp(&b.created));
        found
    }
}

fn pair(a: &str, b: &str) -> Pair {
    (a.to_owned(), b.to_owned())
}

fn link<I: std::hash::Hash + Eq>(
    map: &mut HashMap<I, HashSet<Arc<Key>>>,
    index: I,
    key: &Arc<Key>,
) {
    map.entry(index).or_default().insert(key.clone());
}

fn unlink<I, Q>(map: &mut HashMap<I, HashSet<Arc<Key>>>, index: &Q, key: &Key)
where
    I: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(set) = map.get_mut(index) {
        set.remove(key);
        if set.is_empty() {
            map.remove(index);
        }
    }
}

/// What a namespace event changed, for the wake-ups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    None,
    /// It joined or left the installation, as no resource group: only the
    /// objects inside it care (whether the installation handles them).
    Membership,
    /// It became, stopped being, or changed its id as a resource group.
    Group,
}

impl Change {
    /// From the resource-group id before to after (outer None: unknown).
    fn between(old: Option<&Option<String>>, new: Option<&Option<String>>) -> Change {
        let group = |v: Option<&Option<String>>| v.cloned().flatten();
        if group(old) != group(new) {
            Change::Group
        } else if old.is_some() != new.is_some() {
            Change::Membership
        } else {
            Change::None
        }
    }
}

/// The installation's namespaces (as selected by `--namespace-selector`) and
/// the resource groups among them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Groups {
    /// Every selected namespace → its resource-group id, if it is one.
    namespaces: HashMap<String, Option<String>>,
    /// Resource-group namespaces → id, in name order: the fan-out targets.
    groups: BTreeMap<String, String>,
}

impl Groups {
    /// Record a namespace; returns what changed.
    pub fn upsert(&mut self, ns: &Namespace) -> Change {
        let name = ns.name_any();
        // A terminating namespace takes no new Secrets.
        let id = ns
            .labels()
            .get(RESOURCE_GROUP_LABEL)
            .filter(|id| !id.is_empty() && ns.metadata.deletion_timestamp.is_none())
            .cloned();
        let old = self.namespaces.insert(name.clone(), id.clone());
        match &id {
            Some(id) => self.groups.insert(name, id.clone()),
            None => self.groups.remove(&name),
        };
        Change::between(old.as_ref(), Some(&id))
    }

    /// Forget a namespace; returns what changed.
    pub fn remove(&mut self, name: &str) -> Change {
        self.groups.remove(name);
        let old = self.namespaces.remove(name);
        Change::between(old.as_ref(), None)
    }

    /// Whether the namespace belongs to this installation.
    pub fn contains(&self, namespace: &str) -> bool {
        self.namespaces.contains_key(namespace)
    }

    /// The resource-group id of `namespace`, if it is a resource group.
    pub fn group_of(&self, namespace: &str) -> Option<&str> {
        self.groups.get(namespace).map(String::as_str)
    }

    /// Resource-group namespaces → id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.groups
            .iter()
            .map(|(ns, id)| (ns.as_str(), id.as_str()))
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Namespaces whose resource-group id differs between `self` and `other`.
    pub fn changed_since<'a>(&'a self, other: &'a Groups) -> Vec<String> {
        let mut changed: Vec<String> = self
            .namespaces
            .iter()
            .filter(|(ns, id)| other.namespaces.get(*ns) != Some(id))
            .map(|(ns, _)| ns.clone())
            .collect();
        changed.extend(
            other
                .namespaces
                .keys()
                .filter(|ns| !self.namespaces.contains_key(*ns))
                .cloned(),
        );
        changed
    }
}

#[cfg(test)]
mod tests;
