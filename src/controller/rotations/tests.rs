use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::{Version, add_restarts, completed, incomplete, record, restarts_due};
use crate::api::GenericSecretStatus;

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).expect("a valid time")
}

fn version(hash: &str, seen: i64) -> Version<'_> {
    Version {
        hash,
        seen: at(seen),
        keep: 3,
        restarts: true,
    }
}

/// The status after reporting `pending` targets for `hash`.
fn report(
    status: &GenericSecretStatus,
    hash: &str,
    seen: i64,
    pending: usize,
    now: i64,
) -> GenericSecretStatus {
    GenericSecretStatus {
        data_hash: Some(hash.to_owned()),
        rotations: record(status, &version(hash, seen), pending, at(now)),
        ..status.clone()
    }
}

#[test]
fn a_new_version_starts_when_seen_and_completes_when_no_target_is_pending() {
    let started = report(&GenericSecretStatus::default(), "h1", 10, 4, 11);
    let r = &started.rotations[0];
    assert_eq!((r.data_hash.as_str(), r.pending_targets), ("h1", 4));
    assert_eq!(r.start_time, Time(at(10)));
    assert_eq!(r.completion_time, None);
    let done = report(&started, "h1", 20, 0, 13);
    let r = &done.rotations[0];
    assert_eq!(
        r.start_time,
        Time(at(10)),
        "the start is when it was first seen"
    );
    assert_eq!(
        (r.completion_time.clone(), r.duration_seconds),
        (Some(Time(at(13))), Some(3))
    );
    assert_eq!(r.pending_targets, 0);
    assert!(completed(Some(&started), &done).is_some());
    assert!(completed(Some(&done), &done).is_none(), "completes once");
}

#[test]
fn a_resync_of_the_same_version_computes_the_same_history() {
    let done = report(&GenericSecretStatus::default(), "h1", 10, 0, 10);
    assert_eq!(report(&done, "h1", 500, 0, 500), done);
    // A resource group labelled later is a fan-out, not part of the rotation.
    assert_eq!(report(&done, "h1", 600, 1, 600).rotations, done.rotations);
}

#[test]
fn the_history_is_bounded_newest_first_and_restarts_only_for_a_rotation() {
    let mut s = GenericSecretStatus::default();
    for (i, hash) in ["h1", "h2", "h3", "h4"].into_iter().enumerate() {
        s = report(&s, hash, i as i64 * 10, 0, i as i64 * 10 + 1);
    }
    let hashes: Vec<&str> = s.rotations.iter().map(|r| r.data_hash.as_str()).collect();
    assert_eq!(hashes, ["h4", "h3", "h2"]);
    let first = report(&GenericSecretStatus::default(), "h1", 0, 0, 0);
    assert_eq!(
        first.rotations[0].restarts, None,
        "an object's first data restarts nothing"
    );
    assert!(s.rotations[0].restarts.is_some());
}

#[test]
fn data_replicated_before_history_was_kept_records_nothing_until_it_rotates() {
    let upgraded = GenericSecretStatus {
        data_hash: Some("h1".into()),
        ..GenericSecretStatus::default()
    };
    assert!(report(&upgraded, "h1", 0, 0, 0).rotations.is_empty());
    assert_eq!(report(&upgraded, "h2", 5, 0, 6).rotations.len(), 1);
}

#[test]
fn restarts_accumulate_until_done_and_overdue_counts_from_the_start() {
    let first = report(&GenericSecretStatus::default(), "h1", 0, 0, 0);
    let mut s = report(&first, "h2", 100, 2, 100);
    assert!(restarts_due(Some(&s), "h2"));
    let (r, due) = incomplete(&s, SignedDuration::from_mins(10)).expect("incomplete");
    assert_eq!((r.data_hash.as_str(), due), ("h2", at(700)));
    add_restarts(&mut s, 2, false);
    s = report(&s, "h2", 200, 0, 200);
    add_restarts(&mut s, 1, true);
    let restarts = s.rotations[0].restarts.clone().expect("restarts");
    assert_eq!((restarts.workloads, restarts.done), (3, true));
    assert!(!restarts_due(Some(&s), "h2"));
    assert!(incomplete(&s, SignedDuration::from_mins(10)).is_none());
}
