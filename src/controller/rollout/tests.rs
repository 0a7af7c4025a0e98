use k8s_openapi::api::core::v1::PodSpec;
use serde_json::json;

use super::{Reads, reads};

fn spec(value: serde_json::Value) -> PodSpec {
    serde_json::from_value(value).expect("a pod spec")
}

fn container(extra: serde_json::Value) -> serde_json::Value {
    let mut c = json!({"name": "app", "image": "app"});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

#[test]
fn env_and_env_from_are_read_at_start() {
    let env = spec(json!({"containers": [container(json!({"env": [{"name": "P",
        "valueFrom": {"secretKeyRef": {"name": "creds", "key": "p"}}}]}))]}));
    assert_eq!(reads(&env, "creds"), Reads::AtStart);
    assert_eq!(reads(&env, "other"), Reads::Not);
    let env_from = spec(
        json!({"initContainers": [container(json!({"envFrom": [{"secretRef": {"name": "creds"}}]}))],
        "containers": [container(json!({}))]}),
    );
    assert_eq!(reads(&env_from, "creds"), Reads::AtStart);
}

#[test]
fn a_volume_is_mounted_unless_a_container_uses_a_sub_path() {
    let volumes = json!([
        {"name": "direct", "secret": {"secretName": "creds"}},
        {"name": "projected", "projected": {"sources": [{"secret": {"name": "other"}}]}}
    ]);
    let mounted = spec(
        json!({"volumes": volumes, "containers": [container(json!({"volumeMounts": [
        {"name": "direct", "mountPath": "/creds"}]}))]}),
    );
    assert_eq!(reads(&mounted, "creds"), Reads::Mounted);
    assert_eq!(
        reads(&mounted, "other"),
        Reads::Mounted,
        "projected sources count"
    );
    let sub_path = spec(
        json!({"volumes": volumes, "containers": [container(json!({"volumeMounts": [
        {"name": "projected", "mountPath": "/p", "subPath": "p"}]}))]}),
    );
    assert_eq!(reads(&sub_path, "other"), Reads::AtStart);
    assert_eq!(reads(&sub_path, "creds"), Reads::Mounted);
}
