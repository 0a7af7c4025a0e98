//! Operator memory against the real control plane: what 1 000 unrelated
//! Secrets in the cluster cost it, next to what 100 replicas it manages cost,
//! measured side by side in one run. The operator watches only labelled
//! Secrets, so unrelated ones should cost (close to) nothing.
//!
//! Run: `make up && cargo bench --bench memory` (uses the running loopback
//! control plane; starts the operator binary itself).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

const UNRELATED: usize = 1_000;
const GROUPS: usize = 100;
/// Each unrelated Secret carries this much data.
const SECRET_BYTES: usize = 1_024;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn client(kubeconfig: &std::path::Path) -> Result<Client> {
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    Ok(Client::try_from(config)?)
}

fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// Resident set size of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// RSS once it has stopped moving (the operator has digested the change).
async fn settled_rss(pid: u32) -> u64 {
    let mut last = rss_kib(pid);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = rss_kib(pid);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// Waits until `count` replicas named `name` exist (label-selected list).
async fn wait_replicas(client: &Client, count: usize) -> Result<()> {
    let api: Api<Secret> = Api::all(client.clone());
    let params = kube::api::ListParams::default().labels("aicore.dev/tenant=gso-bench-tenant");
    let deadline = Instant::now() + Duration::from_secs(120);
    while api.list(&params).await?.items.len() < count {
        if Instant::now() > deadline {
            return Err("replicas did not appear in time".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let up = Command::new("bash")
        .arg(root().join("tests/control-plane/up.sh"))
        .output()?;
    let kubeconfig = String::from_utf8(up.stdout)?
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let kubeconfig = std::path::PathBuf::from(kubeconfig);
    let client = client(&kubeconfig).await?;
    let kubectl = root().join("target/control-plane/bin/kubectl");
    let crd = root().join("crds/genericsecret.yaml");
    Command::new(&kubectl)
        .args([
            "--kubeconfig",
            &kubeconfig.to_string_lossy(),
            "apply",
            "--server-side",
            "-f",
        ])
        .arg(&crd)
        .output()?;

    let nss: Api<Namespace> = Api::all(client.clone());
    let selector = ("gso-bench", "memory");
    for name in ["gso-bench-tenant", "gso-bench-unrelated"] {
        nss.create(&PostParams::default(), &namespace(name, &[selector]))
            .await?;
    }
    let operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_generic-secrets-operator"))
            .args(["run", "--tenant-namespace", "gso-bench-tenant"])
            .args([
                "--namespace-selector",
                "gso-bench=memory",
                "--http-addr",
                "127.0.0.1:0",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let pid = operator.0.id();
    let gsec: serde_json::Value = serde_json::json!({
        "apiVersion": "aicore.dev/v1alpha1", "kind": "GenericSecret",
        "metadata": {"name": "bench", "namespace": "gso-bench-tenant"},
        "spec": {"scope": "TenantWide", "data": {"k": "dmFsdWU="}}
    });
    let gsecs: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "gso-bench-tenant",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "aicore.dev",
            "v1alpha1",
            "GenericSecret",
        )),
    );
    gsecs
        .create(&PostParams::default(), &serde_json::from_value(gsec)?)
        .await?;
    let baseline = settled_rss(pid).await;

    // Unrelated Secrets: not labelled, not in any resource group.
    let unrelated: Api<Secret> = Api::namespaced(client.clone(), "gso-bench-unrelated");
    let payload = ByteString(vec![b'x'; SECRET_BYTES]);
    for i in 0..UNRELATED {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(format!("unrelated-{i}")),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([("k".to_owned(), payload.clone())])),
            ..Secret::default()
        };
        unrelated.create(&PostParams::default(), &secret).await?;
    }
    let after_unrelated = settled_rss(pid).await;

    // Managed replicas: one per resource group.
    for i in 0..GROUPS {
        let rg = format!("rg-{i}");
        let labels = [selector, ("aicore.dev/resource-group", rg.as_str())];
        nss.create(
            &PostParams::default(),
            &namespace(&format!("gso-bench-rg-{i}"), &labels),
        )
        .await?;
    }
    wait_replicas(&client, GROUPS).await?;
    let after_managed = settled_rss(pid).await;

    let per_unrelated = after_unrelated.saturating_sub(baseline) as f64 / UNRELATED as f64;
    let per_managed = after_managed.saturating_sub(after_unrelated) as f64 / GROUPS as f64;
    println!("operator RSS: baseline {baseline} KiB");
    println!(
        "  +{UNRELATED} unrelated Secrets ({SECRET_BYTES} B each): {after_unrelated} KiB ({per_unrelated:.2} KiB each)"
    );
    println!(
        "  +{GROUPS} resource groups with a managed replica: {after_managed} KiB ({per_managed:.2} KiB each)"
    );
    println!(
        "growth per unrelated Secret / per managed replica: {:.3}",
        per_unrelated / per_managed.max(f64::EPSILON)
    );

    drop(operator);
    // The bench objects go with their namespaces (no operator: drop finalizers first).
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    let _ = gsecs
        .patch(
            "bench",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await;
    let mut names = vec![
        "gso-bench-tenant".to_owned(),
        "gso-bench-unrelated".to_owned(),
    ];
    names.extend((0..GROUPS).map(|i| format!("gso-bench-rg-{i}")));
    for name in names {
        let _ = nss.delete(&name, &DeleteParams::default()).await;
    }
    Ok(())
}
