//! Measurement windows: what happened between two moments of a scenario.
//! The operator's own requests (exact, from its FlowSchemas, see
//! `identity.rs`); the apiserver's cluster-wide request counters by code
//! class, less the bench's own, with a count of what another client must
//! have sent (GenericSecret GET, POST or DELETE beyond the bench's own: the
//! operator only lists, watches and patches them); the changes the watches
//! saw; the operator's CPU time and reconciles.

use crate::cluster::Cluster;
use crate::identity;
use crate::metrics::{self, Counters, delta, writes_to};
use crate::operator::Operator;
use crate::results::Results;
use crate::util::Result;
use crate::watches::Watches;

/// The apiserver's counters and the watches' change counts at one moment.
pub struct Counts {
    operator: Counters,
    requests: Counters,
    changes: Counters,
}

impl Counts {
    pub async fn take(cluster: &Cluster, watches: &Watches) -> Result<Self> {
        let text = cluster.apiserver_metrics().await?;
        Ok(Counts {
            operator: identity::operator_requests(cluster, &text),
            requests: metrics::apiserver_requests(&text),
            changes: watches.changes(),
        })
    }

    /// The window from `self` to `later`; `own` are the bench's own
    /// requests in it (subtracted).
    pub fn until(&self, later: &Counts, own: &[(&str, f64)]) -> Window {
        let mut requests = delta(&self.requests, &later.requests);
        for (key, count) in own {
            if let Some(value) = requests.get_mut(*key) {
                *value -= count;
            }
        }
        let foreign = requests
            .iter()
            .filter(|(key, _)| is_foreign(key))
            .map(|(_, v)| v)
            .sum::<f64>()
            + 0.0;
        requests.retain(|key, value| is_operators(key) && *value != 0.0);
        Window {
            operator: delta(&self.operator, &later.operator),
            requests,
            foreign,
            changes: delta(&self.changes, &later.changes),
        }
    }
}

/// Requests on what the operator works on: besides the operator's, other
/// clients' of a shared control plane and the bench's own replica watch.
fn is_operators(key: &str) -> bool {
    key.starts_with("secrets ")
        || metrics::is_write_to(key, "genericsecrets")
        || metrics::is_write_to(key, "genericsecrets/status")
}

/// Requests the operator never sends.
fn is_foreign(key: &str) -> bool {
    ["GET", "POST", "DELETE"]
        .iter()
        .any(|verb| key.starts_with(&format!("genericsecrets {verb} ")))
}

pub struct Window {
    /// The operator's requests, by `resource VERB`.
    pub operator: Counters,
    /// Cluster-wide requests that should be the operator's (see `is_operators`).
    requests: Counters,
    /// Requests another client sent: the counters are not the operator's alone.
    foreign: f64,
    changes: Counters,
}

impl Window {
    /// Keeps the requests of `scenario` (per replica in the report): the
    /// operator's as `scenario`, the cluster-wide as `<scenario>.cluster`;
    /// records `<scenario>.foreign`.
    pub fn record_requests(self, n: usize, scenario: &str, results: &mut Results) {
        results.record(n, format!("{scenario}.foreign"), self.foreign);
        results.record_requests(n, scenario, self.operator);
        results.record_requests(n, &format!("{scenario}.cluster"), self.requests);
    }

    /// Records the writes and changes of a window in which the bench wrote
    /// nothing: `<prefix>.{secret,status,object,event}_writes` of the operator,
    /// `<prefix>.{secret,object}_changes` from the watches, `<prefix>.foreign`.
    pub fn record_writes(&self, n: usize, prefix: &str, results: &mut Results) {
        let writes = [
            ("secret_writes", "secrets"),
            ("status_writes", "genericsecrets/status"),
            ("object_writes", "genericsecrets"),
            ("event_writes", "events"),
        ];
        for (name, resource) in writes {
            let count = writes_to(&self.operator, resource);
            results.record(n, format!("{prefix}.{name}"), count);
        }
        let changed = |resource: &str| {
            let prefix = format!("{resource} ");
            let counts = self.changes.iter().filter(|(k, _)| k.starts_with(&prefix));
            counts.map(|(_, v)| v).sum::<f64>() + 0.0
        };
        results.record(n, format!("{prefix}.secret_changes"), changed("secrets"));
        results.record(
            n,
            format!("{prefix}.object_changes"),
            changed("genericsecrets"),
        );
        results.record(n, format!("{prefix}.foreign"), self.foreign);
    }
}

/// The operator's CPU seconds and reconciles, and the CPU seconds of the
/// control plane (kube-apiserver + etcd) and of the bench, at one moment.
pub struct Usage {
    cpu: f64,
    ok: f64,
    failed: f64,
    control_plane: f64,
    bench: f64,
}

impl Usage {
    pub async fn take(op: &Operator) -> Result<Self> {
        let (ok, failed) = op.reconciles().await?;
        Ok(Usage {
            cpu: op.cpu_seconds()?,
            ok,
            failed,
            control_plane: crate::operator::control_plane_cpu()?,
            bench: crate::operator::cpu_seconds("self")?,
        })
    }

    /// Records `<prefix>.{cpu,reconciles,failed}` from `self` to `later`.
    pub fn record_until(&self, later: &Usage, n: usize, prefix: &str, results: &mut Results) {
        results.record(n, format!("{prefix}.cpu"), later.cpu - self.cpu);
        results.record(n, format!("{prefix}.reconciles"), later.ok - self.ok);
        results.record(n, format!("{prefix}.failed"), later.failed - self.failed);
        let control_plane = later.control_plane - self.control_plane;
        results.record(n, format!("{prefix}.cp_cpu"), control_plane);
        results.record(n, format!("{prefix}.bench_cpu"), later.bench - self.bench);
    }
}
