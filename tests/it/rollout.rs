//! `spec.rollout`: after a rotation, the workloads of a target namespace that
//! read the replica at start get exactly one restart (a pod-template
//! annotation, as `kubectl rollout restart` does). No kubelet runs here: the
//! tests assert on the objects.

use generic_secrets_operator::api::{GenericSecret, Rollout, Scope};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::generic_secrets::events_about;
use crate::harness::{TestNamespace, wait_for};
use crate::operator::{Operator, REACT, generic_secret};

const ANNOTATION: &str = "rollout.aicore.dev/creds";

/// A Deployment whose one container reads `pod` (env, volumes...).
fn deployment(name: &str, pod: serde_json::Value) -> Deployment {
    let mut spec = json!({"containers": [{"name": "app", "image": "registry.invalid/app"}]});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), pod.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec}
        }
    }))
    .expect("a Deployment")
}

fn reads_by_env(secret: &str) -> serde_json::Value {
    json!({"containers": [{"name": "app", "image": "registry.invalid/app",
        "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": secret, "key": "k"}}}]}]})
}

fn mounts(secret: &str) -> serde_json::Value {
    json!({"volumes": [{"name": "s", "secret": {"secretName": secret}}],
        "containers": [{"name": "app", "image": "registry.invalid/app",
            "volumeMounts": [{"name": "s", "mountPath": "/s"}]}]})
}

/// (generation, restart annotation) of each Deployment.
async fn states(api: &Api<Deployment>, names: &[&str]) -> Vec<(i64, Option<String>)> {
    let mut out = Vec::new();
    for name in names {
        let d = api.get(name).await.expect("the Deployment");
        let annotation = d
            .spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(ANNOTATION).cloned());
        out.push((d.metadata.generation.unwrap_or_default(), annotation));
    }
    out
}

/// Rotates `creds` to `value`; waits until its restarts are done and
/// returns the new data hash.
async fn rotate(op: &Operator, ns: &str, value: &str) -> String {
    let before = op.gsecs(ns).get("creds").await.expect("creds");
    let old = before.status.and_then(|s| s.data_hash);
    op.set_data(ns, "creds", &[("k", value)]).await;
    let api = op.gsecs(ns);
    wait_for("the rotation's restarts done", REACT, || async {
        let gs: GenericSecret = api.get("creds").await.map_err(|e| e.to_string())?;
        let newest = gs
            .status
            .as_ref()
            .and_then(|s| s.rotations.first().cloned());
        match newest {
            Some(r)
                if Some(&r.data_hash) != old.as_ref()
                    && r.restarts.as_ref().is_some_and(|x| x.done) =>
            {
                Ok(r.data_hash)
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// A resource group holding `creds` (data v1, `spec.rollout: {}`),
/// replicated; its namespace's name and Deployments.
async fn replicated_with_rollout(op: &Operator) -> (TestNamespace, String, Api<Deployment>) {
    let rg = op.resource_group("rg-a").await;
    let ns = rg.name().to_owned();
    let mut gs = generic_secret("creds", Scope::ResourceGroup, &[("k", "v1")]);
    gs.spec.rollout = Some(Rollout::default());
    op.create(&ns, &gs).await;
    op.wait_ready(&ns, "creds", "True", "Replicated").await;
    let deployments = Api::namespaced(op.client.clone(), &ns);
    (rg, ns, deployments)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_restarts_once_the_workloads_that_read_the_replica_at_start() {
    let mut op = Operator::start(&["--workload-restarts"]).await;
    let (_rg, ns, deployments) = replicated_with_rollout(&op).await;
    let names = ["by-env", "by-mount", "unrelated"];
    for (name, pod) in [
        ("by-env", reads_by_env("creds")),
        ("by-mount", mounts("creds")),
        ("unrelated", reads_by_env("other")),
    ] {
        deployments
            .create(&PostParams::default(), &deployment(name, pod))
            .await
            .expect("a Deployment");
    }

    let v2 = rotate(&op, &ns, "v2").await;
    assert_eq!(
        states(&deployments, &names).await,
        [(2, Some(v2.clone())), (1, None), (1, None)],
        "only the env reader restarts, once"
    );
    let events = events_about(&op, &ns, "creds").await;
    assert!(
        events.iter().any(|e| e.starts_with("WorkloadsRestarted")
            && e.contains("Deployment/")
            && e.contains("/by-env")),
        "{events:?}"
    );

    // A resync (a restarted operator reconciles everything) restarts nothing.
    op.restart();
    wait_for("a reconcile after the restart", REACT, || async {
        op.reconciles().await > 0
    })
    .await;
    let v3 = rotate(&op, &ns, "v3").await;
    assert_eq!(
        states(&deployments, &names).await,
        [(3, Some(v3)), (1, None), (1, None)],
        "one restart per rotation, none on the resync"
    );

    // Asked to, mounts restart too.
    let include = json!({"spec": {"rollout": {"includeVolumeMounts": true}}});
    op.gsecs(&ns)
        .patch("creds", &PatchParams::default(), &Patch::Merge(&include))
        .await
        .expect("patch");
    let v4 = rotate(&op, &ns, "v4").await;
    assert_eq!(
        states(&deployments, &names).await,
        [(4, Some(v4.clone())), (2, Some(v4)), (1, None)]
    );
    let gs = op.gsecs(&ns).get("creds").await.expect("creds");
    let counts: Vec<i64> = gs
        .status
        .iter()
        .flat_map(|s| &s.rotations)
        .filter_map(|r| r.restarts.as_ref().map(|x| x.workloads))
        .collect();
    assert_eq!(
        counts,
        [2, 1, 1],
        "restarted workloads per rotation, newest first"
    );
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_installation_allowing_it_rollout_is_ignored_with_a_warning() {
    let op = Operator::start(&[]).await;
    let (_rg, ns, deployments) = replicated_with_rollout(&op).await;
    deployments
        .create(
            &PostParams::default(),
            &deployment("by-env", reads_by_env("creds")),
        )
        .await
        .expect("a Deployment");
    op.set_data(&ns, "creds", &[("k", "v2")]).await;
    op.wait_secret_data(&ns, "creds", &[("k", "v2")]).await;
    wait_for("a RolloutDisabled event", REACT, || async {
        events_about(&op, &ns, "creds")
            .await
            .iter()
            .any(|e| e.starts_with("RolloutDisabled"))
    })
    .await;
    assert_eq!(states(&deployments, &["by-env"]).await, [(1, None)]);
    op.cleanup().await;
}
