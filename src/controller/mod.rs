//! The GenericSecret controller: watches, the shared [`Context`], the
//! reconcile entry point (a finalizer dispatching to `apply::apply` and
//! `apply::cleanup`) and the error policy.

mod apply;
pub mod plan;
pub mod status;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::ListParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use crate::api::{GenericSecret, Scope};
use crate::http::Health;
use crate::metrics::{ErrorLabels, Metrics, Outcome, ReconcileLabels};
use crate::replicas::{self, MANAGER, OWNER_LABEL};
use plan::{Rules, Snapshot};

/// Label (`=true`) a Secret needs to serve as a `dataFrom` source: its
/// owner's consent to being copied, and what the source watch selects, so
/// that rotating it reaches the replicas at once.
pub const SOURCE_LABEL: &str = "aicore.dev/source";

/// Finalizer that guards replica cleanup, one per installation
/// (`replicas.aicore.dev/<tenant namespace>`): an object is cleaned up by the
/// installation that wrote its replicas, even if its namespace has left that
/// installation's selector since, and never by another one.
pub fn finalizer_name(tenant_namespace: &str) -> String {
    format!("replicas.aicore.dev/{tenant_namespace}")
}

/// How the operator runs; set from `generic-secrets-operator run` flags.
#[derive(Clone, Debug)]
pub struct Config {
    pub tenant_namespace: String,
    pub override_interval: SignedDuration,
    pub max_tenant_wide: usize,
    /// Take over existing Secrets that lack the managed-by label.
    pub adopt_existing: bool,
    /// Only namespaces matching this label selector belong to this
    /// installation (several tenants in one cluster); None: all namespaces.
    pub namespace_selector: Option<String>,
    /// Periodic full reconcile, a safety net behind the watches.
    pub resync_interval: Duration,
    /// Retry delay when a `dataFrom` source Secret is missing.
    pub source_retry: Duration,
}

impl Config {
    /// What the planner needs of the configuration.
    pub fn rules(&self) -> Rules {
        Rules {
            tenant_namespace: self.tenant_namespace.clone(),
            override_interval: self.override_interval,
            max_tenant_wide: self.max_tenant_wide,
        }
    }
}

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    pub client: Client,
    /// Publishes Kubernetes Events on GenericSecrets.
    pub recorder: Recorder,
    pub config: Config,
    /// The planner's view of `config`.
    rules: Rules,
    /// This installation's finalizer.
    finalizer: String,
    /// The controller's own cache of GenericSecrets.
    pub generic_secrets: Store<GenericSecret>,
    /// Namespaces of this installation (label-selected when configured).
    pub namespaces: Store<Namespace>,
    /// Replicas written by this installation (label-selected).
    pub replicas: Store<Secret>,
    /// Asks the controller to reconcile another object (shadowing peers,
    /// quota waiters).
    notify: mpsc::UnboundedSender<ObjectRef<GenericSecret>>,
    /// Consecutive failures per object, for the retry backoff.
    failures: Mutex<HashMap<ObjectRef<GenericSecret>, u32>>,
    pub metrics: Arc<Metrics>,
    /// Pending targets per object as last reported, behind the gauge.
    pending: Mutex<HashMap<ObjectRef<GenericSecret>, i64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the dataFrom source Secret")]
    ReadSource(#[source] kube::Error),
    #[error("patching status")]
    PatchStatus(#[source] kube::Error),
    #[error("writing replicas failed in some namespaces (see status)")]
    Replicas,
    #[error("deleting replicas")]
    DeleteReplica(#[source] kube::Error),
    #[error("finalizer")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// Bounded name of the failed step, for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::ReadSource(_) => "read_source",
            Error::PatchStatus(_) => "patch_status",
            Error::Replicas => "write_replicas",
            Error::DeleteReplica(_) => "delete_replica",
            Error::Finalizer(_) => "finalizer",
        }
    }
}

impl Context {
    pub fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    /// The cached namespaces and GenericSecrets, read once per reconcile.
    fn world(&self) -> (BTreeMap<String, Option<String>>, Vec<Arc<GenericSecret>>) {
        (self.namespace_map(), self.generic_secrets.state())
    }

    fn snapshot<'a>(
        &'a self,
        namespaces: &'a BTreeMap<String, Option<String>>,
        all: &'a [Arc<GenericSecret>],
        now: Timestamp,
    ) -> Snapshot<'a> {
        Snapshot::new(&self.rules, namespaces, all, now)
    }

    fn notify(&self, object: ObjectRef<GenericSecret>) {
        // The receiver lives as long as the controller; a send can only fail
        // during shutdown, when nothing needs reconciling any more.
        let _ = self.notify.unbounded_send(object);
    }

    fn cached_replica(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        self.replicas.get(&ObjectRef::new(name).within(namespace))
    }

    fn cached_replicas_of(&self, gs: &GenericSecret) -> Vec<Arc<Secret>> {
        self.replicas
            .state()
            .into_iter()
            .filter(|s| replicas::is_written_by(s, gs, &self.config.tenant_namespace))
            .collect()
    }

    async fn list_replicas_of(&self, gs: &GenericSecret) -> Result<Vec<Secret>, kube::Error> {
        let selector = format!(
            "{},{OWNER_LABEL}={}",
            replicas::selector(&self.config.tenant_namespace),
            replicas::owner_label(gs)
        );
        let params = ListParams::default().labels(&selector);
        let api: Api<Secret> = Api::all(self.client.clone());
        let list = api.list(&params).await?;
        Ok(list
            .items
            .into_iter()
            .filter(|s| replicas::is_written_by(s, gs, &self.config.tenant_namespace))
            .collect())
    }

    /// Next reconcile: when the plan changes by itself, else the resync.
    fn requeue_until(&self, wake_at: Option<Timestamp>, now: Timestamp) -> Action {
        let resync = self.config.resync_interval;
        let wait = wake_at
            .and_then(|t| Duration::try_from(t.duration_since(now)).ok())
            .map_or(resync, |d| d.min(resync));
        // A little past the due time, so the clock has surely passed it.
        Action::requeue(wait + Duration::from_millis(50))
    }

    /// Record how many targets of `object` still wait for the current data.
    fn set_pending(&self, object: ObjectRef<GenericSecret>, pending: Option<i64>) {
        let Ok(mut map) = self.pending.lock() else {
            return;
        };
        let old = match pending {
            Some(n) => map.insert(object, n),
            None => map.remove(&object),
        };
        self.metrics
            .pending_targets
            .inc_by(pending.unwrap_or(0) - old.unwrap_or(0));
    }

    /// Whether this installation handles objects in `namespace`.
    fn handles(&self, namespace: &str) -> bool {
        self.config.namespace_selector.is_none()
            || namespace == self.config.tenant_namespace
            || self.namespaces.get(&ObjectRef::new(namespace)).is_some()
    }
}

/// Reconcile one GenericSecret: the finalizer is the only top-level action.
async fn reconcile(gs: Arc<GenericSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = gs.namespace().unwrap_or_default();
    let ours_to_clean = gs.metadata.deletion_timestamp.is_some()
        && gs.finalizers().iter().any(|f| *f == ctx.finalizer);
    if !ctx.handles(&ns) && !ours_to_clean {
        // Another installation's namespace, or one our cache has not seen
        // yet: when it arrives, the namespace watch brings this object back.
        return Ok(Action::await_change());
    }
    let api: Api<GenericSecret> = Api::namespaced(ctx.client.clone(), &ns);
    let key = ObjectRef::from(gs.as_ref());
    let started = std::time::Instant::now();
    let result = finalizer(&api, &ctx.finalizer, gs, |event| async {
        match event {
            Finalizer::Apply(gs) => apply::apply(gs, ctx.clone()).await,
            Finalizer::Cleanup(gs) => apply::cleanup(gs, ctx.clone()).await,
        }
    })
    .await
    .or_else(|e| match e {
        // A second look at an object whose finalizer the first one removed:
        // it is gone, which is what cleanup wanted.
        kube::runtime::finalizer::Error::RemoveFinalizer(kube::Error::Api(s)) if s.code == 404 => {
            Ok(Action::await_change())
        }
        e => Err(Error::Finalizer(Box::new(e))),
    });
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    let outcome = if result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    ctx.metrics
        .reconciles
        .get_or_create(&ReconcileLabels { outcome })
        .inc();
    if result.is_ok() {
        ctx.failures.lock().map(|mut f| f.remove(&key)).ok();
        tracing::debug!(object = %format!("{}/{}", ns, key.name), "reconciled");
    }
    result
}

/// Report a failed reconcile once (log + Warning event) and back off.
fn error_policy(gs: Arc<GenericSecret>, error: &Error, ctx: Arc<Context>) -> Action {
    let chain = error_chain(error);
    let category = error.category();
    ctx.metrics
        .errors
        .get_or_create(&ErrorLabels { category })
        .inc();
    tracing::warn!(object = %replicas::object_key(&gs), category, error = %chain, "reconcile failed");
    let attempts = ctx
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(ObjectRef::from(gs.as_ref())).or_insert(0);
            *n += 1;
            *n
        })
        .unwrap_or(1);
    let ctx2 = ctx.clone();
    tokio::spawn(async move {
        ctx2.publish(&gs, EventType::Warning, "ReconcileFailed", &chain)
            .await;
    });
    // 1 s, 2 s, 4 s … capped at 5 minutes.
    let secs = 1u64 << attempts.min(9).saturating_sub(1);
    Action::requeue(Duration::from_secs(secs.min(300)))
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    parts.join(": ")
}

/// Run the controller until a shutdown signal; `health` turns ready once the
/// caches have synced.
pub async fn run(client: Client, config: Config, health: Health) {
    let gsecs: Api<GenericSecret> = Api::all(client.clone());
    let controller = Controller::new(gsecs, watcher::Config::default());
    let generic_secrets = controller.store();
    let (notify, notified) = mpsc::unbounded();

    // The namespace and replica caches run on their own tasks and are ready
    // before the first reconcile: plans read them, and an empty cache would
    // look like "no resource groups" and flap status.
    let ns_config = match &config.namespace_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let tenant = config.tenant_namespace.clone();
    let store = generic_secrets.clone();
    let namespaces = spawn_cache(
        Api::<Namespace>::all(client.clone()),
        ns_config,
        notify.clone(),
        move |ns| affected_by_namespace(&store, &tenant, &ns.name_any()),
    );
    let replica_selector = replicas::selector(&config.tenant_namespace);
    let store = generic_secrets.clone();
    let replica_store = spawn_cache(
        Api::<Secret>::all(client.clone()),
        watcher::Config::default().labels(&replica_selector),
        notify.clone(),
        move |s| written_by(&store, s).into_iter().collect(),
    );
    let _ = tokio::join!(
        namespaces.wait_until_ready(),
        replica_store.wait_until_ready()
    );

    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        rules: config.rules(),
        finalizer: finalizer_name(&config.tenant_namespace),
        config,
        generic_secrets: generic_secrets.clone(),
        namespaces,
        replicas: replica_store,
        notify,
        failures: Mutex::default(),
        metrics: health.metrics.clone(),
        pending: Mutex::default(),
    });
    health.ready.store(true, Ordering::Relaxed);

    let sources = watcher::Config::default().labels(&format!("{SOURCE_LABEL}=true"));
    controller
        .watches(
            Api::<Secret>::all(ctx.client.clone()),
            sources,
            move |s: Secret| reading_from(&generic_secrets, &s),
        )
        .reconcile_on(notified)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}

/// A cache of `K` kept by its own task; every change asks the controller to
/// reconcile the GenericSecrets `affected` names.
fn spawn_cache<K>(
    api: Api<K>,
    config: watcher::Config,
    notify: mpsc::UnboundedSender<ObjectRef<GenericSecret>>,
    affected: impl Fn(&K) -> Vec<ObjectRef<GenericSecret>> + Send + 'static,
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let events = reflector(writer, watcher(api, config))
        .default_backoff()
        .touched_objects();
    tokio::spawn(events.for_each(move |event| {
        match event {
            Ok(object) => affected(&object).into_iter().for_each(|r| {
                // Fails only when the controller has shut down.
                let _ = notify.unbounded_send(r);
            }),
            Err(e) => tracing::warn!(error = %e, kind = %K::kind(&()), "watch failed; retrying"),
        }
        futures::future::ready(())
    }));
    store
}

/// A namespace changed: tenant-wide objects and the objects inside it care.
fn affected_by_namespace(
    store: &Store<GenericSecret>,
    tenant_namespace: &str,
    namespace: &str,
) -> Vec<ObjectRef<GenericSecret>> {
    store
        .state()
        .iter()
        .filter(|g| {
            let ns = g.namespace().unwrap_or_default();
            ns == namespace || ns == tenant_namespace && g.spec.scope == Scope::TenantWide
        })
        .map(|g| ObjectRef::from(g.as_ref()))
        .collect()
}

/// A labelled `dataFrom` source changed: the objects reading it look again.
fn reading_from(store: &Store<GenericSecret>, secret: &Secret) -> Vec<ObjectRef<GenericSecret>> {
    let ns = secret.namespace();
    store
        .state()
        .iter()
        .filter(|g| g.namespace() == ns)
        .filter(|g| {
            g.spec
                .data_from
                .as_ref()
                .is_some_and(|f| f.secret_ref.name == secret.name_any())
        })
        .map(|g| ObjectRef::from(g.as_ref()))
        .collect()
}

/// A replica changed (edited, deleted): the object that wrote it looks again.
fn written_by(store: &Store<GenericSecret>, secret: &Secret) -> Option<ObjectRef<GenericSecret>> {
    let (ns, name) = replicas::writer_of(secret)?;
    let key = ObjectRef::new(&name).within(&ns);
    store.get(&key).map(|_| key)
}
