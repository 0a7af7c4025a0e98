//! The operator's own identity, so that its requests can be told from
//! everyone else's on a shared control plane: a ServiceAccount (bound to
//! `cluster-admin`) whose token the operator's kubeconfig carries, and one
//! FlowSchema per resource and verb that matches only that ServiceAccount.
//! The apiserver counts dispatched requests per FlowSchema
//! (`apiserver_flowcontrol_dispatched_requests_total`), which makes exact
//! per-verb counts of the operator's requests. The FlowSchemas use the
//! `exempt` priority level, as the admin identity would: no queueing.
//!
//! Verbs are RBAC verbs shown in the apiserver's spelling (create → POST,
//! update → PUT, patch → PATCH, which includes server-side apply).

use std::path::PathBuf;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::flowcontrol::v1::FlowSchema;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};

use crate::cluster::{BENCH_LABEL, Cluster};
use crate::metrics::{Counters, samples};
use crate::util::{Result, root};

const ACCOUNT: &str = "operator";
/// RBAC verb and how the report spells it.
const VERBS: [(&str, &str); 7] = [
    ("create", "POST"),
    ("update", "PUT"),
    ("patch", "PATCH"),
    ("delete", "DELETE"),
    ("get", "GET"),
    ("list", "LIST"),
    ("watch", "WATCH"),
];
/// (key, API group, resource) of the counted resources.
const RESOURCES: [(&str, &str, &str); 4] = [
    ("secrets", "", "secrets"),
    ("genericsecrets", "aicore.dev", "genericsecrets"),
    (
        "genericsecrets/status",
        "aicore.dev",
        "genericsecrets/status",
    ),
    ("events", "*", "events"),
];
/// Key of the operator's requests on anything else.
const OTHER: &str = "other";

/// One counted (resource, verb) per FlowSchema: its key in `Counters`.
fn schemas() -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for (key, group, resource) in RESOURCES {
        for (verb, spelled) in VERBS {
            let rule = json!({
                "verbs": [verb], "apiGroups": [group], "resources": [resource],
                "namespaces": ["*"], "clusterScope": true,
            });
            all.push((
                format!("{key} {spelled}"),
                json!({ "resourceRules": [rule] }),
            ));
        }
    }
    let everything = json!({
        "resourceRules": [{
            "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
            "namespaces": ["*"], "clusterScope": true,
        }],
        "nonResourceRules": [{ "verbs": ["*"], "nonResourceURLs": ["*"] }],
    });
    all.push((OTHER.to_owned(), everything));
    all
}

fn schema_name(cluster: &Cluster, i: usize) -> String {
    format!("gso-bench-{}-{i}", cluster.run_id)
}

/// Creates the identity and the FlowSchemas; returns the operator's kubeconfig.
pub async fn setup(cluster: &Cluster) -> Result<PathBuf> {
    let ns = cluster.namespace_name("identity");
    cluster.create_namespace(&ns, &[]).await?;
    let labels = json!({ BENCH_LABEL: cluster.run_id });
    let account: ServiceAccount = serde_json::from_value(json!({
        "metadata": { "name": ACCOUNT, "namespace": ns },
    }))?;
    let post = PostParams::default();
    Api::<ServiceAccount>::namespaced(cluster.client.clone(), &ns)
        .create(&post, &account)
        .await?;
    let subject = json!({ "kind": "ServiceAccount", "name": ACCOUNT, "namespace": ns });
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": { "name": format!("gso-bench-{}", cluster.run_id), "labels": labels },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
        "subjects": [subject],
    }))?;
    Api::<ClusterRoleBinding>::all(cluster.client.clone())
        .create(&post, &binding)
        .await?;
    let flow_schemas = Api::<FlowSchema>::all(cluster.client.clone());
    let subject =
        json!({ "kind": "ServiceAccount", "serviceAccount": { "name": ACCOUNT, "namespace": ns } });
    for (i, (key, mut rule)) in schemas().into_iter().enumerate() {
        rule["subjects"] = json!([subject]);
        // The catch-all comes last: a higher number matches later.
        let precedence = if key == OTHER { 60 } else { 50 };
        let schema: FlowSchema = serde_json::from_value(json!({
            "metadata": { "name": schema_name(cluster, i), "labels": labels },
            "spec": {
                "priorityLevelConfiguration": { "name": "exempt" },
                "matchingPrecedence": precedence,
                "rules": [rule],
            },
        }))?;
        flow_schemas.create(&post, &schema).await?;
    }
    kubeconfig(cluster, &ns)
}

/// The admin kubeconfig with the ServiceAccount's token instead of admin's.
fn kubeconfig(cluster: &Cluster, ns: &str) -> Result<PathBuf> {
    let token = cluster.kubectl(&["create", "token", ACCOUNT, "-n", ns, "--duration=24h"])?;
    let mut config: Value = serde_saphyr::from_str(&std::fs::read_to_string(&cluster.kubeconfig)?)?;
    let users = config["users"]
        .as_array_mut()
        .ok_or("kubeconfig without users")?;
    for user in users {
        user["user"] = json!({ "token": token });
    }
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("kubeconfig-operator");
    std::fs::write(&path, serde_saphyr::to_string(&config)?)?;
    Ok(path)
}

/// The operator's requests by `resource VERB`, from the apiserver's metrics text.
pub fn operator_requests(cluster: &Cluster, text: &str) -> Counters {
    let keys: Vec<String> = schemas().into_iter().map(|(key, _)| key).collect();
    let mut counters = Counters::new();
    let dispatched =
        samples(text).filter(|s| s.name == "apiserver_flowcontrol_dispatched_requests_total");
    for s in dispatched {
        let found = (0..keys.len()).find(|&i| s.label("flow_schema") == schema_name(cluster, i));
        if let Some(i) = found {
            *counters.entry(keys[i].clone()).or_default() += s.value;
        }
    }
    counters
}

/// Deletes the cluster-scoped objects (the ServiceAccount goes with its namespace).
pub async fn cleanup(cluster: &Cluster) -> Result<()> {
    let mine = ListParams::default().labels(&format!("{BENCH_LABEL}={}", cluster.run_id));
    let params = DeleteParams::default();
    Api::<FlowSchema>::all(cluster.client.clone())
        .delete_collection(&params, &mine)
        .await?;
    Api::<ClusterRoleBinding>::all(cluster.client.clone())
        .delete_collection(&params, &mine)
        .await?;
    Ok(())
}
