//! Rotation history in status: the last versions of an object's data, when
//! the operator first saw each and when every target held it. Pure, like
//! [`super::status`]: times come in as arguments and a history nothing
//! happened to is computed equal, so a no-op resync writes nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{GenericSecretStatus, Restarts, Rotation};

/// The data version one reconcile replicates.
#[derive(Clone, Copy, Debug)]
pub struct Version<'a> {
    /// `sha256:<hex>` of the data.
    pub hash: &'a str,
    /// When this reconcile started: the start time of a new version.
    pub seen: Timestamp,
    /// How many versions status keeps (`--rotation-history`).
    pub keep: usize,
    /// Whether a rotation of this object restarts workloads.
    pub restarts: bool,
}

/// The history once `pending` targets are known not to hold `v` yet.
pub fn record(
    previous: &GenericSecretStatus,
    v: &Version<'_>,
    pending: usize,
    now: Timestamp,
) -> Vec<Rotation> {
    let mut history = previous.rotations.clone();
    match history.first_mut() {
        Some(newest) if newest.data_hash == v.hash => progress(newest, pending, now),
        // Replicated before this operator kept a history: when it started
        // is unknown, and making it up would rewrite every status on upgrade.
        None if previous.data_hash.as_deref() == Some(v.hash) => {}
        _ => {
            // An object's first data is no rotation: nothing runs with old data.
            let rotated = previous.data_hash.is_some();
            let mut new = Rotation {
                data_hash: v.hash.to_owned(),
                start_time: Time(whole_seconds(v.seen)),
                completion_time: None,
                duration_seconds: None,
                pending_targets: 0,
                restarts: (rotated && v.restarts).then(Restarts::default),
            };
            progress(&mut new, pending, now);
            history.insert(0, new);
            history.truncate(v.keep.max(1));
        }
    }
    history
}

/// A complete rotation stays as it completed: targets added later (a new
/// resource group) are a fan-out, not part of it.
fn progress(rotation: &mut Rotation, pending: usize, now: Timestamp) {
    if rotation.completion_time.is_some() {
        return;
    }
    rotation.pending_targets = i64::try_from(pending).unwrap_or(i64::MAX);
    if pending == 0 {
        let done = whole_seconds(now);
        rotation.duration_seconds = Some(done.duration_since(rotation.start_time.0).as_secs());
        rotation.completion_time = Some(Time(done));
    }
}

/// What the apiserver stores of a time, so a record reads back equal.
fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// The newest version if `after` completed it and `before` did not.
pub fn completed<'a>(
    before: Option<&GenericSecretStatus>,
    after: &'a GenericSecretStatus,
) -> Option<&'a Rotation> {
    let newest = after.rotations.first()?;
    let was = before
        .and_then(|s| s.rotations.first())
        .filter(|r| r.data_hash == newest.data_hash);
    let done = |r: &Rotation| r.completion_time.is_some();
    (done(newest) && !was.is_some_and(done)).then_some(newest)
}

/// The newest version while incomplete, and when it counts as overdue.
pub fn incomplete(
    status: &GenericSecretStatus,
    after: SignedDuration,
) -> Option<(&Rotation, Timestamp)> {
    let newest = status.rotations.first()?;
    let due = newest.start_time.0.checked_add(after).ok()?;
    newest.completion_time.is_none().then_some((newest, due))
}

/// Count `restarted` workloads for the newest version, `done` once every
/// target namespace was looked at after it completed.
pub fn add_restarts(status: &mut GenericSecretStatus, restarted: usize, done: bool) {
    let Some(restarts) = status
        .rotations
        .first_mut()
        .and_then(|r| r.restarts.as_mut())
    else {
        return;
    };
    restarts.workloads += i64::try_from(restarted).unwrap_or(i64::MAX);
    restarts.done |= done;
}

/// Whether the newest version still has workloads to restart.
pub fn restarts_due(status: Option<&GenericSecretStatus>, hash: &str) -> bool {
    status
        .and_then(|s| s.rotations.first())
        .filter(|r| r.data_hash == hash)
        .and_then(|r| r.restarts.as_ref())
        .is_some_and(|r| !r.done)
}

#[cfg(test)]
mod tests;
