//! Prometheus metrics. Labels come from bounded sets only (result, error
//! category, write kind), never from object names or secret content.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Outcome {
    Success,
    Failure,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `Error::category()` of the failed step.
    pub category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    /// The watched kind (a fixed set).
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum WriteKind {
    Applied,
    Deleted,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabels {
    /// `Scope::as_str()` of the object (three values).
    pub scope: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub kind: WriteKind,
}

/// Every metric the operator exports, registered in one registry.
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub secret_writes: Family<WriteLabels, Counter>,
    /// Reconcile duration, seconds.
    pub reconcile_duration: Histogram,
    /// Targets not yet holding the current data, summed over objects as of
    /// their last reconcile (the replication lag a dashboard watches).
    pub pending_targets: Gauge,
    /// Seconds from a GenericSecret's last change to the reconcile that
    /// made every target current.
    pub replication_lag: Histogram,
    /// Seconds from the operator first seeing a data version to every
    /// target holding it, once per version, by scope.
    pub rotation_duration: Family<ScopeLabels, Histogram, fn() -> Histogram>,
    /// Workload restarts for rotations (`spec.rollout`).
    pub workload_restarts: Counter,
    /// 1 while this instance reconciles (the leader), 0 on a standby.
    pub leader: Gauge,
    pub watch_failures: Family<WatchLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("generic_secrets_operator");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let secret_writes = Family::<WriteLabels, Counter>::default();
        // 1 ms … ~16 s: a reconcile is a handful of API calls per target.
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let pending_targets = Gauge::default();
        // 10 ms … ~5 min: a watch reaction up to a leader takeover or backoff.
        let replication_lag = Histogram::new(exponential_buckets(0.01, 2.0, 15));
        let rotation_duration: Family<ScopeLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| {
                // 100 ms … ~55 min: a small fan-out up to a stuck target.
                Histogram::new(exponential_buckets(0.1, 2.0, 16))
            });
        let workload_restarts = Counter::default();
        let leader = Gauge::default();
        let watch_failures = Family::<WatchLabels, Counter>::default();
        registry.register(
            "watch_failures",
            "Failed watch requests by watched kind (each is retried)",
            watch_failures.clone(),
        );
        registry.register("reconciles", "Reconciles by outcome", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconciles by step",
            errors.clone(),
        );
        registry.register(
            "secret_writes",
            "Replica Secrets applied or deleted",
            secret_writes.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            reconcile_duration.clone(),
        );
        registry.register(
            "pending_targets",
            "Target namespaces not yet holding the current data",
            pending_targets.clone(),
        );
        registry.register(
            "replication_lag_seconds",
            "Time from a GenericSecret's last change until every target held its data",
            replication_lag.clone(),
        );
        registry.register(
            "rotation_duration_seconds",
            "Time from the operator first seeing a data version until every target held it",
            rotation_duration.clone(),
        );
        registry.register(
            "workload_restarts",
            "Deployments, StatefulSets and DaemonSets restarted after a rotation",
            workload_restarts.clone(),
        );
        registry.register(
            "leader",
            "1 while this instance is the leader and reconciles",
            leader.clone(),
        );
        Metrics {
            registry,
            reconciles,
            errors,
            secret_writes,
            reconcile_duration,
            pending_targets,
            replication_lag,
            rotation_duration,
            workload_restarts,
            leader,
            watch_failures,
        }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn watch_failed(&self, kind: &'static str) {
        self.watch_failures
            .get_or_create(&WatchLabels { kind })
            .inc();
    }

    pub fn wrote(&self, kind: WriteKind) {
        self.secret_writes
            .get_or_create(&WriteLabels { kind })
            .inc();
    }
}
