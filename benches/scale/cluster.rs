//! The loopback control plane as the bench sees it: the admin client, the
//! bench's namespaces (all labelled `gso-bench=<run id>`), the apiserver's
//! metrics and the clean-up at the end.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, ObjectMeta, Patch,
    PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use serde_json::json;

use crate::util::{CONCURRENCY, Result, concurrently, output, payload, root};

/// Label on everything the bench creates; its value is the run id.
pub const BENCH_LABEL: &str = "gso-bench";
const RG_LABEL: &str = "aicore.dev/resource-group";
pub const TENANT_LABEL: &str = "aicore.dev/tenant";

pub struct Cluster {
    pub client: Client,
    /// Admin's, for the bench.
    pub kubeconfig: PathBuf,
    /// The operator's (`identity::setup`; admin's until then).
    pub operator_kubeconfig: PathBuf,
    pub run_id: String,
}

impl Cluster {
    /// Starts (or reuses) the control plane, connects, installs the CRD.
    pub async fn connect(run_id: String) -> Result<Self> {
        let up = output(
            "bash",
            &[&root().join("tests/control-plane/up.sh").to_string_lossy()],
        )?;
        let kubeconfig = PathBuf::from(up.lines().last().ok_or("up.sh printed nothing")?);
        let config = Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&kubeconfig)?,
            &KubeConfigOptions::default(),
        )
        .await?;
        let cluster = Cluster {
            client: Client::try_from(config)?,
            operator_kubeconfig: kubeconfig.clone(),
            kubeconfig,
            run_id,
        };
        let crd = root().join("crds/genericsecret.yaml");
        let crd = crd.to_string_lossy();
        cluster.kubectl(&["apply", "--server-side", "--force-conflicts", "-f", &crd])?;
        cluster.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd/genericsecrets.aicore.dev",
            "--timeout=60s",
        ])?;
        Ok(cluster)
    }

    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        let kubeconfig = self.kubeconfig.to_string_lossy();
        let mut all = vec!["--kubeconfig", &kubeconfig];
        all.extend_from_slice(args);
        output(root().join("target/control-plane/bin/kubectl"), &all)
    }

    /// The name of resource-group namespace `i`.
    pub fn rg_namespace(&self, i: usize) -> String {
        format!("gso-bench-{}-rg-{i}", self.run_id)
    }

    /// A namespace name of this run for `what`.
    pub fn namespace_name(&self, what: &str) -> String {
        format!("gso-bench-{}-{what}", self.run_id)
    }

    /// Label selector for the resource groups of size `n`.
    pub fn size_selector(n: usize) -> String {
        format!("gso-bench-n{n}=true")
    }

    /// Creates namespace `name` with the bench label and `labels`.
    pub async fn create_namespace(&self, name: &str, labels: &[(String, String)]) -> Result<()> {
        let mut all = BTreeMap::from([(BENCH_LABEL.to_owned(), self.run_id.clone())]);
        all.extend(labels.iter().cloned());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(all),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(())
    }

    /// Resource-group namespaces `0..max(sizes)`; namespace `i` is selected
    /// by `size_selector(n)` for every size `n > i`.
    pub async fn create_resource_groups(&self, sizes: &[usize]) -> Result<()> {
        let max = sizes.iter().copied().max().unwrap_or(0);
        concurrently(0..max, CONCURRENCY, |i| async move {
            let mut labels = vec![(RG_LABEL.to_owned(), format!("rg-{i}"))];
            for n in sizes.iter().filter(|n| i < **n) {
                labels.push((format!("gso-bench-n{n}"), "true".to_owned()));
            }
            self.create_namespace(&self.rg_namespace(i), &labels).await
        })
        .await
    }

    /// `count` unlabelled 1 KiB Secrets in a namespace no operator selects.
    pub async fn create_unrelated(&self, count: usize) -> Result<()> {
        let ns = self.namespace_name("unrelated");
        self.create_namespace(&ns, &[]).await?;
        let (api, ns) = (&self.secrets(&ns), &ns);
        concurrently(0..count, CONCURRENCY, |i| async move {
            let secret = secret(ns, &format!("unrelated-{i}"), b'u');
            api.create(&PostParams::default(), &secret).await?;
            Ok(())
        })
        .await
    }

    pub fn secrets(&self, ns: &str) -> Api<Secret> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// GenericSecrets in `ns`, or in every namespace.
    pub fn gsecs(&self, ns: Option<&str>) -> Api<DynamicObject> {
        let resource = gsec_resource();
        match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Replica Secrets of `tenant` left in the cluster.
    pub async fn replica_count(&self, tenant: &str) -> Result<usize> {
        let params = ListParams::default().labels(&format!("{TENANT_LABEL}={tenant}"));
        let list = Api::<Secret>::all(self.client.clone())
            .list_metadata(&params)
            .await?;
        Ok(list.items.len())
    }

    /// The apiserver's `/metrics` text.
    pub async fn apiserver_metrics(&self) -> Result<String> {
        let request = http::Request::get("/metrics").body(vec![])?;
        Ok(self.client.request_text(request).await?)
    }

    /// Drops the finalizers of GenericSecrets left behind (a failed run:
    /// no operator will remove them), then deletes the bench's namespaces
    /// without waiting for them to go.
    /// Waits until no namespace of an earlier run is still being deleted:
    /// the controller manager deleting a thousand namespaces would compete
    /// for the cores with what this run measures.
    pub async fn wait_quiet(&self) -> Result<()> {
        let earlier = ListParams::default().labels(BENCH_LABEL);
        let namespaces = Api::<Namespace>::all(self.client.clone());
        let started = std::time::Instant::now();
        loop {
            let left = namespaces.list_metadata(&earlier).await?.items.len();
            if left == 0 {
                return Ok(());
            }
            if started.elapsed() > std::time::Duration::from_secs(900) {
                return Err(format!("{left} namespaces of earlier runs still exist").into());
            }
            eprintln!("[bench] waiting for {left} namespaces of earlier runs to go");
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    }

    pub async fn cleanup(&self) -> Result<()> {
        let mine = ListParams::default().labels(&format!("{BENCH_LABEL}={}", self.run_id));
        let left = self.gsecs(None).list_metadata(&mine).await?.items;
        let unfinalize = json!({"metadata": {"finalizers": null}});
        for gs in left {
            let api = self.gsecs(gs.namespace().as_deref());
            let patch = Patch::Merge(&unfinalize);
            api.patch(&gs.name_any(), &PatchParams::default(), &patch)
                .await?;
        }
        let namespaces = Api::<Namespace>::all(self.client.clone());
        let names = namespaces.list_metadata(&mine).await?.items;
        concurrently(names, CONCURRENCY, |ns| {
            let namespaces = namespaces.clone();
            async move {
                namespaces
                    .delete(&ns.name_any(), &DeleteParams::default())
                    .await?;
                Ok(())
            }
        })
        .await
    }
}

/// The GenericSecret kind, for `DynamicObject`s.
pub fn gsec_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "aicore.dev",
        "v1alpha1",
        "GenericSecret",
    ))
}

/// A Secret `ns/name` with 1 KiB of `tag`.
pub fn secret(ns: &str, name: &str, tag: u8) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(ns.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".to_owned(), ByteString(payload(tag)))])),
        ..Secret::default()
    }
}
