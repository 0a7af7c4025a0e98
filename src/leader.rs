//! Leader election on a `coordination.k8s.io/v1` Lease in the tenant
//! namespace, so that several replicas can run and exactly one reconciles.
//! A standby takes over once the leader has not renewed for the lease
//! duration. Every write is an optimistic update at the read
//! resourceVersion, so two candidates can never both win.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

/// How the lease is held.
#[derive(Debug)]
pub struct Election {
    pub namespace: String,
    pub lease_name: String,
    /// Who we are (the pod name in a cluster).
    pub identity: String,
    /// A leader that has not renewed for this long is replaced (≤ 15 s
    /// takeover: the design's promise).
    pub lease_duration: Duration,
    /// A leader that could not renew for this long stops leading, well
    /// before a standby may take over (client-go's 10 s of 15 s).
    pub renew_deadline: Duration,
    /// Renew, and retry acquiring, this often.
    pub retry: Duration,
    /// The other holder's last renewal as this instance saw it change, on
    /// its own monotonic clock: expiry never depends on clock skew.
    observed: Mutex<Option<(String, Instant)>>,
}

impl Election {
    pub fn new(namespace: &str, identity: String) -> Self {
        Election {
            namespace: namespace.to_owned(),
            lease_name: "generic-secrets-operator".to_owned(),
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
            observed: Mutex::new(None),
        }
    }

    fn api(&self, client: &Client) -> Api<Lease> {
        Api::namespaced(client.clone(), &self.namespace)
    }

    /// Wait until this instance holds the lease.
    pub async fn acquire(&self, client: &Client) {
        loop {
            match self.try_acquire(client).await {
                Ok(true) => {
                    tracing::info!(lease = %self.lease_name, identity = %self.identity, "acquired leadership");
                    return;
                }
                Ok(false) => tracing::debug!("another instance leads; standing by"),
                Err(e) => tracing::warn!(error = %e, "leader election request failed"),
            }
            tokio::time::sleep(self.retry).await;
        }
    }

    /// Keep renewing; returns when leadership is lost: another holder, or no
    /// renewal within the renew deadline. Every attempt is bounded by that
    /// deadline, so a hanging request cannot keep a stale leader running.
    pub async fn hold(&self, client: &Client) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.retry).await;
            let sent = Instant::now();
            let left = self.renew_deadline.saturating_sub(renewed.elapsed());
            match tokio::time::timeout(left, self.try_acquire(client)).await {
                Ok(Ok(true)) => renewed = sent,
                Ok(Ok(false)) => {
                    tracing::error!("leadership taken over by another instance");
                    return;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "renewing the lease failed"),
                Err(_) => tracing::warn!("renewing the lease timed out"),
            }
            if renewed.elapsed() >= self.renew_deadline {
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
        if !ours && !self.expired(&spec) {
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

    fn spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: i32::try_from(self.lease_duration.as_secs()).ok(),
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
            .map_or(self.lease_duration, Duration::from_secs);
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
        let election = Election::new("tenant", "me".into());
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
}
