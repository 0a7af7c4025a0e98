use std::sync::Arc;

use kube::runtime::watcher::Event;

use super::Written;
use crate::api::{GenericSecret, GenericSecretSpec, GenericSecretStatus};

fn object(version: &str, hash: Option<&str>) -> GenericSecret {
    let spec: GenericSecretSpec =
        serde_json::from_value(serde_json::json!({"data": {"k": "YQ=="}})).expect("a spec");
    let mut gs = GenericSecret::new("creds", spec);
    gs.metadata.namespace = Some("ns".into());
    gs.metadata.resource_version = Some(version.into());
    gs.status = hash.map(|h| GenericSecretStatus {
        data_hash: Some(h.into()),
        ..GenericSecretStatus::default()
    });
    gs
}

fn hash(gs: &GenericSecret) -> Option<&str> {
    gs.status.as_ref()?.data_hash.as_deref()
}

#[test]
fn a_cache_behind_our_write_reads_as_the_write_until_its_event_arrives() {
    let written = Written::default();
    let stale = Arc::new(object("1", None));
    let status = GenericSecretStatus {
        data_hash: Some("h".into()),
        ..GenericSecretStatus::default()
    };
    written.wrote(&stale, Some("3".into()), &status);
    assert_eq!(hash(&written.fresh(stale.clone())), Some("h"));
    // An event before our write's (the finalizer, say) changes nothing.
    written.seen(&Event::Apply(object("2", None)));
    assert_eq!(hash(&written.fresh(Arc::new(object("2", None)))), Some("h"));
    // Our write's event: the cache shows it now.
    written.seen(&Event::Apply(object("3", Some("h"))));
    assert_eq!(hash(&written.fresh(stale)), None, "the entry is gone");
}

#[test]
fn a_relist_or_a_deletion_drops_what_was_written() {
    let written = Written::default();
    let gs = Arc::new(object("1", None));
    let status = GenericSecretStatus::default();
    written.wrote(&gs, Some("2".into()), &status);
    written.seen(&Event::Init);
    assert!(written.fresh(gs.clone()).status.is_none());
    written.wrote(&gs, Some("2".into()), &status);
    written.seen(&Event::Delete(object("1", None)));
    assert!(written.fresh(gs).status.is_none());
}
