//! The GenericSecret controller: configuration, errors, the reconcile entry
//! point (finalizer, then `reconcile::apply` or `cleanup::cleanup`), the
//! error policy, and `run`, which wires the watches to the controller.
//!
//! - [`watches`]: the watch streams and the indexes they keep.
//! - [`reconcile`]: the pipeline validate → plan → write → status.
//! - [`write`]: the replica writes; [`cleanup`]: deletion.
//! - [`status`]: the status computation (pure); [`report`]: its patching.

mod cleanup;
mod conflicts;
mod context;
mod finalizer;
mod reconcile;
mod report;
mod rollout;
pub mod rotations;
pub mod status;
mod watches;
mod write;
mod written;

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio::sync::Semaphore;

use crate::api::GenericSecret;
use crate::http::Health;
use crate::index::Key;
use crate::metrics::{ErrorLabels, Outcome, ReconcileLabels};
use crate::plan::Rules;
use crate::replicas::{self, MANAGER};
use crate::shutdown::Shutdown;
pub use context::{Context, Indexes};

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
    pub override_interval: k8s_openapi::jiff::SignedDuration,
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
    /// Replica writes in flight at once, per object and in all.
    pub write_concurrency: usize,
    /// Objects reconciled at once.
    pub reconcile_concurrency: u16,
    /// Data versions kept in `status.rotations`.
    pub rotation_history: usize,
    /// When an incomplete rotation gets a Warning event.
    pub rotation_warning_after: k8s_openapi::jiff::SignedDuration,
    /// Whether `spec.rollout` restarts workloads (the RBAC to patch them
    /// is granted only then).
    pub workload_restarts: bool,
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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the dataFrom source Secret")]
    ReadSource(#[source] kube::Error),
    #[error("patching status")]
    PatchStatus(#[source] kube::Error),
    #[error("writing replicas failed in some namespaces (see status)")]
    Replicas,
    #[error("the apiserver did not answer some replica writes")]
    Unreachable,
    #[error("deleting replicas")]
    DeleteReplica(#[source] kube::Error),
    #[error("adding the finalizer")]
    AddFinalizer(#[source] kube::Error),
    #[error("removing the finalizer")]
    RemoveFinalizer(#[source] kube::Error),
    #[error("restarting workloads after a rotation")]
    Restart(#[source] kube::Error),
}

impl Error {
    /// Whether the apiserver did not answer (an outage), rather than refuse:
    /// then a retry soon is cheap and likely to work.
    pub fn unreachable(&self) -> bool {
        let no_answer = |e: &kube::Error| !matches!(e, kube::Error::Api(_));
        match self {
            Error::Unreachable => true,
            Error::ReadSource(e)
            | Error::PatchStatus(e)
            | Error::DeleteReplica(e)
            | Error::AddFinalizer(e)
            | Error::RemoveFinalizer(e)
            | Error::Restart(e) => no_answer(e),
            Error::Replicas => false,
        }
    }

    /// Bounded name of the failed step, for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::ReadSource(_) => "read_source",
            Error::PatchStatus(_) => "patch_status",
            Error::Replicas => "write_replicas",
            Error::Unreachable => "unreachable",
            Error::DeleteReplica(_) => "delete_replica",
            Error::AddFinalizer(_) => "add_finalizer",
            Error::RemoveFinalizer(_) => "remove_finalizer",
            Error::Restart(_) => "restart_workloads",
        }
    }
}

/// Reconcile one GenericSecret: clean up a deleted one that carries our
/// finalizer; otherwise make sure it carries it, then apply it.
async fn reconcile(gs: Arc<GenericSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let gs = ctx.written.fresh(gs);
    let result = dispatch(&gs, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    let outcome = match result {
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    };
    ctx.metrics
        .reconciles
        .get_or_create(&ReconcileLabels { outcome })
        .inc();
    if result.is_ok() {
        ctx.failures
            .lock()
            .map(|mut f| f.remove(&Key::from(gs.as_ref())))
            .ok();
        tracing::debug!(object = %replicas::object_key(&gs), "reconciled");
    }
    result
}

async fn dispatch(gs: &GenericSecret, ctx: &Context) -> Result<Action, Error> {
    let ours = finalizer::holds(gs, &ctx.finalizer);
    if gs.metadata.deletion_timestamp.is_some() {
        if !ours {
            return Ok(Action::await_change());
        }
        let action = cleanup::cleanup(gs, ctx).await?;
        finalizer::remove(gs, ctx).await?;
        return Ok(action);
    }
    if !ctx.handles(&gs.namespace().unwrap_or_default()) {
        // Another installation's namespace, or one our cache has not seen
        // yet: when it arrives, the namespace watch brings this object back.
        return Ok(Action::await_change());
    }
    if !ours {
        finalizer::add(gs, ctx).await?;
    }
    reconcile::apply(gs, ctx).await
}

/// Retry delay while the apiserver does not answer.
const UNREACHABLE_RETRY: Duration = Duration::from_secs(1);

/// Report a failed reconcile once (log + Warning event) and back off.
fn error_policy(gs: Arc<GenericSecret>, error: &Error, ctx: Arc<Context>) -> Action {
    let chain = error_chain(error);
    let category = error.category();
    ctx.metrics
        .errors
        .get_or_create(&ErrorLabels { category })
        .inc();
    tracing::warn!(object = %replicas::object_key(&gs), category, error = %chain, "reconcile failed");
    // An outage ends by itself: retry every second, so that reconciling
    // resumes right after it (and no event: it could not be published).
    if error.unreachable() {
        return Action::requeue(UNREACHABLE_RETRY);
    }
    let attempts = ctx
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(Key::from(gs.as_ref())).or_insert(0);
            *n += 1;
            *n
        })
        .unwrap_or(1);
    let ctx2 = ctx.clone();
    tokio::spawn(async move {
        ctx2.publish(&gs, EventType::Warning, "ReconcileFailed", &chain)
            .await;
    });
    // A refusal backs off: 1 s, 2 s, 4 s … capped at 5 minutes.
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

/// Run the controller until `shutdown` asks it to stop; `health` turns
/// ready once every watch has synced.
pub async fn run(client: Client, config: Config, health: Health, shutdown: Shutdown) {
    let rules = config.rules();
    let indexes = Arc::new(RwLock::new(Indexes::default()));
    let replica_cache = Arc::default();
    let (wakes, woken) = mpsc::channel(watches::WAKE_QUEUE);

    // The namespace and replica indexes are ready before the first
    // reconcile: plans read them, and an empty index would look like "no
    // resource groups" and flap status.
    let ns_config = match &config.namespace_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let mut namespaces_synced = watches::spawn_namespaces(
        Api::<Namespace>::all(client.clone()),
        ns_config,
        indexes.clone(),
        rules.clone(),
        wakes.clone(),
        health.clone(),
    );
    let selector = replicas::selector(&config.tenant_namespace);
    let mut replicas_synced = watches::spawn_replicas(
        Api::<Secret>::all(client.clone()),
        watcher::Config::default().labels(&selector),
        config.tenant_namespace.clone(),
        Arc::clone(&replica_cache),
        wakes.clone(),
        health.clone(),
    );
    let conflicts = conflicts::Conflicts::new(client.clone(), wakes.clone());
    let written = Arc::new(written::Written::default());
    let (store, trigger, mut objects_synced) = watches::generic_secrets(
        Api::all(client.clone()),
        written.clone(),
        indexes.clone(),
        rules.clone(),
        wakes,
        health.clone(),
    );
    let synced = async {
        let _ = tokio::join!(
            namespaces_synced.wait_for(|synced| *synced),
            replicas_synced.wait_for(|synced| *synced)
        );
    };
    tokio::select! {
        () = synced => {}
        () = shutdown.clone().requested() => return,
    }

    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        rules,
        finalizer: finalizer_name(&config.tenant_namespace),
        conflicts,
        writes: Semaphore::new(config.write_concurrency.max(1)),
        store: store.clone(),
        indexes: indexes.clone(),
        replicas: replica_cache,
        failures: Default::default(),
        metrics: health.metrics.clone(),
        pending: Default::default(),
        last_progress: Default::default(),
        overdue: Default::default(),
        written,
        config,
    });
    // Ready once the GenericSecret watch has synced too (kube's own
    // `Store::wait_until_ready` wakes only one waiter: the controller's).
    let ready = health.ready.clone();
    tokio::spawn(async move {
        if objects_synced.wait_for(|synced| *synced).await.is_ok() {
            ready.store(true, Ordering::Relaxed);
        }
    });

    let sources = watcher::Config::default().labels(&format!("{SOURCE_LABEL}=true"));
    let controller_config =
        controller::Config::default().concurrency(ctx.config.reconcile_concurrency);
    let store_ready = store.clone();
    Controller::for_stream(trigger, store)
        .with_config(controller_config)
        .watches(
            Api::<Secret>::all(ctx.client.clone()),
            sources,
            move |s: Secret| reading_from(&indexes, &s),
        )
        .reconcile_on(woken)
        .graceful_shutdown_on(shutdown.clone().requested())
        .run(reconcile, error_policy, ctx)
        .take_until(stop_at_once(shutdown, store_ready))
        .for_each(|result| async move {
            // Reconcile errors are reported by the error policy; a failing
            // watch (the dataFrom sources') is worth a warning.
            match result {
                Err(e @ controller::Error::QueueError(_)) => {
                    tracing::warn!(error = %e, "watch failed; retrying");
                }
                Err(e) => tracing::debug!(error = %e, "controller event"),
                Ok(_) => {}
            }
        })
        .await;
}

/// When to stop without waiting for the running reconciles: on a second
/// signal, or at the first while the GenericSecret store has not synced.
/// kube holds every reconcile until that store is ready, and a graceful stop
/// ends the very watch that would make it ready, so the wait would never
/// end; and with nothing reconciled yet there is nothing to wait for.
async fn stop_at_once(shutdown: Shutdown, store: Store<GenericSecret>) {
    shutdown.clone().requested().await;
    if store.wait_until_ready().now_or_never().is_none() {
        tracing::info!("stopping before the GenericSecret watch has synced");
        return;
    }
    shutdown.forced().await;
}

/// A labelled `dataFrom` source changed: the objects reading it look again.
fn reading_from(indexes: &RwLock<Indexes>, secret: &Secret) -> Vec<Key> {
    let ns = secret.namespace().unwrap_or_default();
    let guard = indexes.read().unwrap_or_else(|e| e.into_inner());
    guard
        .objects
        .reading(&ns, &secret.name_any())
        .into_iter()
        .map(|f| f.key.clone())
        .collect()
}
