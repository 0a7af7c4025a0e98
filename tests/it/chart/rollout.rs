//! `rollout.enabled`: the operator's rights on workloads, and the flag that
//! lets `spec.rollout` use them, exist only when asked for.

use serde_json::{Value, json};

use super::{only, render};

fn rules(manifests: &[Value]) -> Vec<Value> {
    let role = only(manifests, "ClusterRole");
    role["rules"].as_array().cloned().unwrap_or_default()
}

fn args(manifests: &[Value]) -> Vec<Value> {
    let container = &only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    container["args"].as_array().cloned().unwrap_or_default()
}

#[test]
fn chart_grants_workload_restarts_only_with_rollout_enabled() {
    let off = render("gso", "chart-rollout", &[]);
    let on = render("gso", "chart-rollout", &["--set", "rollout.enabled=true"]);
    let flag = json!("--workload-restarts");
    assert!(!args(&off).contains(&flag));
    assert!(args(&on).contains(&flag));
    // The one difference in the ClusterRole: list and patch on workloads.
    let (off, on) = (rules(&off), rules(&on));
    let added: Vec<&Value> = on.iter().filter(|r| !off.contains(r)).collect();
    assert_eq!(
        added,
        [&json!({
            "apiGroups": ["apps"],
            "resources": ["deployments", "statefulsets", "daemonsets"],
            "verbs": ["list", "patch"]
        })]
    );
    assert_eq!(on.len(), off.len() + 1);
    assert!(
        off.iter().all(|r| r["apiGroups"] != json!(["apps"])),
        "{off:#?}"
    );
}
