//! Leader election on a `coordination.k8s.io/v1` Lease in the tenant
//! namespace, so that several replicas can run and exactly one reconciles.
//! A standby takes over once the leader has not renewed for the lease
//! duration. Every write is an optimistic update at the read
//! resourceVersion, so two candidates can never both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

/// How the lease is held.
#[derive(Clone, Debug)]
pub struct Election {
    pub namespace: String,
    pub lease_name: String,
    /// Who we are (the pod name in a cluster).
    pub identity: String,
    /// A leader that has not renewed for this long is replaced (≤ 15 s
    /// takeover: the design's promise).
    pub lease_duration: Duration,
    /// Renew, and retry acquiring, this often.
    pub retry: Duration,
}

impl Election {
    pub fn new(namespace: &str, identity: String) -> Self {
        Election {
            namespace: namespace.to_owned(),
            lease_name: "generic-secrets-operator".to_owned(),
            identity,
            lease_duration: Duration::from_secs(15),
            retry: Duration::from_secs(3),
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

    /// Keep renewing; returns when leadership is lost (another holder, or no
    /// successful renewal within the lease duration).
    pub async fn hold(&self, client: &Client) {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.retry).await;
            match self.try_acquire(client).await {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!("leadership taken over by another instance");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "renewing the lease failed"),
            }
            if last_renewal.elapsed() >= self.lease_duration {
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
        if !ours && !expired(&spec, now) {
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

/// Whether the holder has not renewed within its lease duration.
fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().map(|t| t.0) else {
        return true;
    };
    let duration = SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(0).into());
    renewed + duration < now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(renewed_secs_ago: i64, duration: i32) -> LeaseSpec {
        let now = Timestamp::now();
        LeaseSpec {
            holder_identity: Some("other".into()),
            lease_duration_seconds: Some(duration),
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(renewed_secs_ago))),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_expires_only_after_its_duration() {
        let now = Timestamp::now();
        assert!(!expired(&spec(5, 15), now));
        assert!(expired(&spec(16, 15), now));
        assert!(expired(&LeaseSpec::default(), now), "never renewed");
    }
}
