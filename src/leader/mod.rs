//! Leader election on a `coordination.k8s.io/v1` Lease in the tenant
//! namespace, so that several replicas can run and exactly one reconciles.
//! A standby takes over once the leader has not renewed for the lease
//! duration. Every write is an optimistic update at the read
//! resourceVersion, so two candidates can never both win.
//!
//! A leader's writes are fenced by its [`Term`] (see [`fence`]), and on a
//! graceful shutdown it releases the Lease, so that a rolling update hands
//! over within a retry period instead of a lease duration.

mod fence;

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

/// The lease's timing. A standby waits `lease_duration` after it last saw
/// a renewal; a leader stops writing `renew_deadline` after its last
/// renewal, which must come first.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    /// Renew, and retry acquiring, this often.
    pub retry_period: Duration,
}

impl Default for Timing {
    /// A standby takes over 10–14 s after the leader's last renewal (within
    /// the 15 s the product promises), and the leader stops 3 s before.
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(10),
            renew_deadline: Duration::from_secs(7),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl Timing {
    /// Checks that the leader stops before a standby may start.
    pub fn validate(self) -> Result<Self, String> {
        // The Lease stores whole seconds; a fraction would shorten it for
        // the standbys.
        if self.lease_duration.subsec_nanos() != 0 || self.lease_duration.is_zero() {
            return Err("the lease duration must be a whole number of seconds".into());
        }
        if self.retry_period >= self.renew_deadline {
            return Err("the retry period must be shorter than the renew deadline".into());
        }
        if self.renew_deadline >= self.lease_duration {
            return Err("the renew deadline must be shorter than the lease duration".into());
        }
        Ok(self)
    }
}

pub use fence::{Fence, Term};

/// How the lease is held.
#[derive(Debug)]
pub struct Election {
    pub namespace: String,
    pub lease_name: String,
    /// Who we are (the pod name in a cluster).
    pub identity: String,
    pub timing: Timing,
    /// Until when our writes are allowed.
    pub term: Term,
    /// The other holder's last renewal as this instance saw it change, on
    /// its own monotonic clock: expiry never depends on clock skew.
    observed: Mutex<Option<(String, Instant)>>,
}

impl Election {
    pub fn new(namespace: &str, identity: String, timing: Timing) -> Self {
        Election {
            namespace: namespace.to_owned(),
            lease_name: "generic-secrets-operator".to_owned(),
            identity,
            timing,
            term: Term::default(),
            observed: Mutex::new(None),
        }
    }

    fn api(&self, client: &Client) -> Api<Lease> {
        Api::namespaced(client.clone(), &self.namespace)
    }

    /// Wait until this instance holds the lease.
    pub async fn acquire(&self, client: &Client) {
        loop {
            let sent = Instant::now();
            match self.try_acquire(client).await {
                Ok(true) => {
                    self.term.extend_to(sent + self.timing.renew_deadline);
                    tracing::info!(lease = %self.lease_name, identity = %self.identity, "acquired leadership");
                    return;
                }
                Ok(false) => tracing::debug!("another instance leads; standing by"),
                Err(e) => tracing::warn!(error = %e, "leader election request failed"),
            }
            tokio::time::sleep(self.timing.retry_period).await;
        }
    }

    /// Keep renewing; returns when leadership is lost: another holder, or no
    /// renewal within the renew deadline (the term ran out). Every attempt
    /// is bounded by what is left of the term, so a hanging request cannot
    /// keep a stale leader running.
    pub async fn hold(&self, client: &Client) {
        loop {
            tokio::time::sleep(self.timing.retry_period).await;
            let sent = Instant::now();
            match tokio::time::timeout(self.term.remaining(), self.try_acquire(client)).await {
                Ok(Ok(true)) => self.term.extend_to(sent + self.timing.renew_deadline),
                Ok(Ok(false)) => {
                    tracing::error!("leadership taken over by another instance");
                    return;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "renewing the lease failed"),
                Err(_) => tracing::warn!("renewing the lease timed out"),
            }
            if !self.term.is_current() {
                tracing::error!("lease not renewed in time; leadership lost");
                return;
            }
        }
    }

    /// One attempt: create, renew or take over the lease. `Ok(false)` when a
    /// live leader holds it or another candidate won the race.
    async fn try_acquire(&self, client: &Client) -> Result<bool, kube::Error> {
        let api = self.api(client);
        let now = Timestamp::now();
        let Some(lease) = api.get_opt(&self.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.lease_name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, now, 0)),
            };
            return settle(api.create(&PostParams::default(), &lease).await);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let ours = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        // Released by its holder (a graceful shutdown): free at once.
        let released = spec.holder_identity.as_deref().is_none_or(str::is_empty);
        if !ours && !released && !self.expired(&spec) {
            return Ok(false);
        }
        let (acquired, transitions) = match ours {
            true => (
                spec.acquire_time.map_or(now, |t| t.0),
                spec.lease_transitions.unwrap_or(0),
            ),
            false => (now, spec.lease_transitions.unwrap_or(0) + 1),
        };
        let mut next = lease.clone();
        next.spec = Some(self.spec(acquired, now, transitions));
        // `replace` carries the read resourceVersion: a concurrent writer wins
        // and this attempt fails with 409.
        settle(
            api.replace(&lease.name_any(), &PostParams::default(), &next)
                .await,
        )
    }

    /// Give the lease up (graceful shutdown): no more writes from here, and
    /// a standby takes over at its next retry. Best effort: if it fails, the
    /// lease simply expires.
    pub async fn release(&self, client: &Client) {
        self.term.end();
        // Bounded: a stop must not hang on an unreachable apiserver.
        let give_up = self.give_up(client);
        if tokio::time::timeout(self.timing.renew_deadline, give_up)
            .await
            .is_err()
        {
            tracing::warn!("releasing the lease timed out; it expires instead");
        }
    }

    async fn give_up(&self, client: &Client) {
        let api = self.api(client);
        let Ok(Some(lease)) = api.get_opt(&self.lease_name).await else {
            return;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        let mut released = lease.clone();
        released.spec = Some(LeaseSpec {
            holder_identity: None,
            ..spec
        });
        match api
            .replace(&lease.name_any(), &PostParams::default(), &released)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.lease_name, "released leadership"),
            Err(e) => tracing::warn!(error = %e, "releasing the lease failed; it expires instead"),
        }
    }

    fn spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: i32::try_from(self.timing.lease_duration.as_secs()).ok(),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }
}

/// A 409 means another candidate wrote first: not an error, just not us.
fn settle(result: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

impl Election {
    /// Whether the holder has not renewed within its lease duration, as
    /// measured here: from when this instance first saw its current
    /// `renewTime`.
    fn expired(&self, spec: &LeaseSpec) -> bool {
        let Some(renewed) = spec.renew_time.as_ref() else {
            return true;
        };
        let record = format!(
            "{}@{}",
            spec.holder_identity.as_deref().unwrap_or_default(),
            renewed.0
        );
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.timing.lease_duration, Duration::from_secs);
        let Ok(mut observed) = self.observed.lock() else {
            return false;
        };
        match observed.as_ref() {
            Some((seen, since)) if *seen == record => since.elapsed() >= duration,
            _ => {
                *observed = Some((record, Instant::now()));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(renewed: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some("other".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renewed)),
            ..LeaseSpec::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_expires_a_full_duration_after_its_renewal_was_seen() {
        let election = Election::new("tenant", "me".into(), Timing::default());
        // Even a renewTime far in the past (clock skew) counts from now.
        let old = spec(Timestamp::UNIX_EPOCH);
        assert!(!election.expired(&old));
        tokio::time::advance(Duration::from_secs(14)).await;
        assert!(!election.expired(&old));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(election.expired(&old));
        // A renewal restarts the clock.
        let renewed = spec(Timestamp::now());
        assert!(!election.expired(&renewed));
        assert!(election.expired(&LeaseSpec::default()), "never renewed");
    }

    #[test]
    fn the_leader_must_stop_before_a_standby_may_start() {
        let secs = Duration::from_secs;
        let timing = |lease, renew, retry| Timing {
            lease_duration: secs(lease),
            renew_deadline: secs(renew),
            retry_period: secs(retry),
        };
        assert!(Timing::default().validate().is_ok());
        assert!(timing(10, 10, 2).validate().is_err());
        assert!(timing(10, 7, 7).validate().is_err());
        let fraction = Timing {
            lease_duration: Duration::from_millis(10_500),
            ..Timing::default()
        };
        assert!(fraction.validate().is_err());
    }
}
