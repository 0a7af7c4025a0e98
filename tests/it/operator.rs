//! One operator installation per test: the real binary, run as a child
//! process against the shared control plane, with its own tenant namespace and
//! a namespace selector so that parallel tests never see each other's
//! resource groups. Its log (JSON, debug level) is kept for assertions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use generic_secrets_operator::api::{GenericSecret, GenericSecretSpec, Scope, SecretData};
use generic_secrets_operator::replicas;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::harness::{
    TestNamespace, client, control_plane, expect_success, kubectl, repo_root, scratch_dir,
    unique_suffix, wait_for,
};

/// Label that ties the resource-group namespaces of one test to its operator.
pub const INSTANCE_LABEL: &str = "gso-test-instance";
/// Deadline for anything the operator does from a watch event.
pub const REACT: Duration = Duration::from_secs(30);

/// Installs the CRD once per test process and waits until it is served.
pub fn install_crd() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let crd = repo_root().join("crds/genericsecret.yaml");
        let crd = crd.to_string_lossy();
        let out = kubectl(["apply", "--server-side", "--force-conflicts", "-f", &crd]);
        expect_success(&out, "kubectl apply CRD");
        let out = kubectl([
            "wait",
            "--for=condition=Established",
            "crd/genericsecrets.aicore.dev",
            "--timeout=60s",
        ]);
        expect_success(&out, "CRD established");
    });
}

pub struct Operator {
    pub id: String,
    /// The tenant namespace's name.
    pub tenant: String,
    tenant_ns: Option<TestNamespace>,
    pub client: Client,
    args: Vec<String>,
    /// Whom the operator runs as: admin unless `start_as` says otherwise.
    kubeconfig: PathBuf,
    log: PathBuf,
    /// `RUST_LOG` of the process.
    log_filter: String,
    child: Option<Child>,
    /// Length of the log when the running process started: its lines follow.
    log_start: usize,
}

impl Operator {
    /// Starts an operator with `extra` flags, which replace the defaults of
    /// the same name (3 s override; 10 min resync, so that prompt reactions
    /// prove the watches, not the resync).
    pub async fn start(extra: &[&str]) -> Self {
        let mut op = Self::configure(extra).await;
        op.spawn();
        op
    }

    /// An installation whose tenant namespace exists but whose process is not
    /// started yet: `start_as` starts it.
    pub async fn configure(extra: &[&str]) -> Self {
        install_crd();
        let id = unique_suffix();
        let tenant = TestNamespace::new("tenant").await;
        let selector = format!("{INSTANCE_LABEL}={id}");
        let defaults = [
            ("--tenant-namespace", tenant.name()),
            ("--namespace-selector", selector.as_str()),
            ("--override-interval", "3s"),
            ("--resync-interval", "10m"),
            // Any free port: tests run several operators side by side.
            ("--http-addr", "127.0.0.1:0"),
        ];
        let mut args = vec!["run".to_owned()];
        for (flag, value) in defaults {
            if !extra.contains(&flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = scratch_dir().join(format!("operator-{id}.log"));
        Operator {
            id,
            tenant: tenant.name().to_owned(),
            tenant_ns: Some(tenant),
            client: client().await,
            args,
            kubeconfig: control_plane().kubeconfig.clone(),
            log,
            log_filter: operator_log_filter(),
            child: None,
            log_start: 0,
        }
    }

    /// Starts the process logging with `RUST_LOG=filter`.
    pub fn start_logging(&mut self, filter: &str) {
        self.log_filter = filter.to_owned();
        self.restart();
    }

    /// Starts the process with the credentials in `kubeconfig`.
    pub fn start_as(&mut self, kubeconfig: PathBuf) {
        self.kubeconfig = kubeconfig;
        self.restart();
    }

    fn spawn(&mut self) {
        self.log_start = self.logs().len();
        self.child = Some(self.launch(&self.log));
    }

    /// Start the binary with this installation's flags, logging to `path`.
    fn launch(&self, path: &std::path::Path) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("operator log file");
        Command::new(env!("CARGO_BIN_EXE_generic-secrets-operator"))
            .args(&self.args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", &self.log_filter)
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the operator")
    }

    /// A second replica of this installation (same flags), e.g. a standby.
    pub fn replica(&self) -> Replica {
        let log = self.log.with_extension("replica.log");
        Replica {
            child: self.launch(&log),
            log,
        }
    }

    /// Stops the operator (SIGKILL: a crash is the harder case for restarts).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to the running process.
    pub fn signal(&self, signal: &str) {
        send_signal(self.child.as_ref().expect("the operator runs"), signal);
    }

    /// The exit status, once the process has ended by itself.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()?
            .try_wait()
            .expect("polling the operator")
    }

    /// Waits (`REACT`) for the process to end by itself: `what` it is.
    pub async fn wait_exited(&mut self, what: &str) -> std::process::ExitStatus {
        wait_exit(what, self.child.as_mut().expect("the operator runs")).await
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Restart with `flag` set to `value` (an operator reconfigured).
    pub fn restart_with(&mut self, flag: &str, value: &str) {
        match self.args.iter().position(|a| a == flag) {
            Some(i) => self.args[i + 1] = value.to_owned(),
            None => self.args.extend([flag.to_owned(), value.to_owned()]),
        }
        self.restart();
    }

    /// The address of the operator's HTTP port, from its start-up log line.
    pub async fn http_addr(&self) -> String {
        self.logged_addr("serving /healthz").await
    }

    /// The address of the REST API (`--rest-api`), from its start-up log line.
    pub async fn rest_addr(&self) -> String {
        self.logged_addr("serving the REST API").await
    }

    /// The `addr` field of the first log line containing `message`.
    async fn logged_addr(&self, message: &str) -> String {
        wait_for(
            &format!("{message:?} in the operator's log"),
            REACT,
            || async {
                // This process's lines: a restarted one listens elsewhere.
                self.logs()
                    .get(self.log_start..)?
                    .lines()
                    .find(|l| l.contains(message))
                    .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .and_then(|v| v["fields"]["addr"].as_str().map(str::to_owned))
            },
        )
        .await
    }

    /// Reconciles so far (both outcomes), from the operator's `/metrics`.
    pub async fn reconciles(&self) -> u64 {
        let (_, metrics) = http_get(&self.http_addr().await, "/metrics").await;
        metrics
            .lines()
            .filter(|l| l.starts_with("generic_secrets_operator_reconciles_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Everything the operator logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A resource-group namespace of this installation.
    pub async fn resource_group(&self, rg: &str) -> TestNamespace {
        TestNamespace::with_labels(
            rg,
            &[
                (INSTANCE_LABEL, &self.id),
                ("aicore.dev/resource-group", rg),
            ],
        )
        .await
    }

    /// `n` resource groups `rg-00` … of this installation.
    pub async fn resource_groups(&self, n: usize) -> Vec<TestNamespace> {
        let names: Vec<String> = (0..n).map(|i| format!("rg-{i:02}")).collect();
        futures::future::join_all(names.iter().map(|name| self.resource_group(name))).await
    }

    /// How many of this installation's replicas named `name` hold `data`
    /// (decoded strings).
    pub async fn replicas_holding(&self, name: &str, data: &[(&str, &str)]) -> usize {
        let params = ListParams::default().labels(&replicas::selector(&self.tenant));
        let list = Api::<Secret>::all(self.client.clone())
            .list(&params)
            .await
            .expect("listing replicas");
        let holds = |s: &Secret| {
            data.iter().all(|(k, v)| {
                s.data.as_ref().and_then(|d| d.get(*k)).map(|b| &b.0[..]) == Some(v.as_bytes())
            })
        };
        list.items
            .iter()
            .filter(|s| s.metadata.name.as_deref() == Some(name) && holds(s))
            .count()
    }

    /// A namespace of this installation that is not a resource group.
    pub async fn plain_namespace(&self) -> TestNamespace {
        TestNamespace::with_labels("plain", &[(INSTANCE_LABEL, &self.id)]).await
    }

    pub fn gsecs(&self, ns: &str) -> Api<GenericSecret> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub fn secrets(&self, ns: &str) -> Api<Secret> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub async fn create(&self, ns: &str, gs: &GenericSecret) -> GenericSecret {
        self.gsecs(ns)
            .create(&PostParams::default(), gs)
            .await
            .unwrap_or_else(|e| panic!("creating GenericSecret {ns}/{}: {e}", gs.name_any()))
    }

    pub async fn delete(&self, ns: &str, name: &str) {
        self.gsecs(ns)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting GenericSecret {ns}/{name}: {e}"));
    }

    /// Replace `spec.data` with a merge patch (a rotation).
    pub async fn set_data(&self, ns: &str, name: &str, data: &[(&str, &str)]) {
        let data: BTreeMap<_, _> = data.iter().map(|(k, v)| (*k, b64(v))).collect();
        let patch = json!({"spec": {"data": data}});
        self.gsecs(ns)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("patching {ns}/{name}: {e}"));
    }

    /// Waits until `ns/name` Ready has `status` and `reason`; returns the object.
    pub async fn wait_ready(
        &self,
        ns: &str,
        name: &str,
        status: &str,
        reason: &str,
    ) -> GenericSecret {
        let api = self.gsecs(ns);
        wait_for(
            &format!("{ns}/{name} Ready={status} ({reason})"),
            REACT,
            || async {
                let gs = api.get(name).await.map_err(|e| e.to_string())?;
                let current = gs.metadata.generation
                    == gs.status.as_ref().and_then(|s| s.observed_generation);
                match gs.ready_condition() {
                    Some(c) if current && c.status == status && c.reason == reason => Ok(gs),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await
    }

    /// Waits until `ns/name` is Ready=False with `reason`; returns its message.
    pub async fn wait_blocked(&self, ns: &str, name: &str, reason: &str) -> String {
        let gs = self.wait_ready(ns, name, "False", reason).await;
        gs.ready_condition()
            .map(|c| c.message.clone())
            .unwrap_or_default()
    }

    /// Asserts that there is no Secret `ns/name` (nothing was written).
    pub async fn assert_no_secret(&self, ns: &str, name: &str) {
        let secret = self.secrets(ns).get_opt(name).await.expect("get");
        assert!(secret.is_none(), "Secret {ns}/{name} exists");
    }

    /// Waits until Secret `ns/name` holds exactly `data` (decoded strings).
    pub async fn wait_secret_data(&self, ns: &str, name: &str, data: &[(&str, &str)]) -> Secret {
        let api = self.secrets(ns);
        let want: BTreeMap<String, Vec<u8>> = data
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        wait_for(
            &format!("Secret {ns}/{name} to hold {:?}", want.keys()),
            REACT,
            || async {
                let secret = api.get_opt(name).await.map_err(|e| e.to_string())?;
                let Some(secret) = secret else {
                    return Err("absent".to_owned());
                };
                let have = data_bytes(&secret);
                if have == want {
                    Ok(secret)
                } else {
                    Err(format!("keys {:?}", have.keys().collect::<Vec<_>>()))
                }
            },
        )
        .await
    }

    pub async fn wait_secret_absent(&self, ns: &str, name: &str) {
        let api = self.secrets(ns);
        wait_for(
            &format!("Secret {ns}/{name} to be absent"),
            REACT,
            || async { matches!(api.get_opt(name).await, Ok(None)) },
        )
        .await
    }

    /// Deletes every GenericSecret of this installation while the operator
    /// still runs (so their finalizers complete and no namespace is left
    /// terminating), then stops it and deletes the tenant namespace.
    pub async fn cleanup(mut self) {
        let api: Api<GenericSecret> = Api::all(self.client.clone());
        let selector = ListParams::default().labels(&format!("{INSTANCE_LABEL}={}", self.id));
        let namespaces = Api::<Namespace>::all(self.client.clone())
            .list(&selector)
            .await
            .expect("listing namespaces");
        let mut mine: Vec<String> = namespaces.items.iter().map(|n| n.name_any()).collect();
        mine.push(self.tenant.clone());
        let ours = |gs: &GenericSecret| mine.contains(&gs.namespace().unwrap_or_default());
        let list = api
            .list(&Default::default())
            .await
            .expect("listing GenericSecrets");
        let mut left: Vec<(String, String)> = Vec::new();
        for gs in list.items.iter().filter(|g| ours(g)) {
            let ns = gs.namespace().unwrap_or_default();
            let _ = self
                .gsecs(&ns)
                .delete(&gs.name_any(), &DeleteParams::default())
                .await;
            left.push((ns, gs.name_any()));
        }
        for (ns, name) in left {
            crate::harness::wait_deleted(&self.gsecs(&ns), &name, REACT).await;
        }
        self.stop();
        if let Some(tenant) = self.tenant_ns.take() {
            tenant.cleanup().await;
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("operator log: {}", self.log.display());
        }
    }
}

/// Debug logs from the operator (the canary test needs them), without the
/// HTTP stack's noise; `GSO_TEST_OPERATOR_LOG` overrides it.
fn operator_log_filter() -> String {
    std::env::var("GSO_TEST_OPERATOR_LOG")
        .unwrap_or_else(|_| "debug,hyper=info,tower=info,rustls=info,kube_client=info".to_owned())
}

/// Another process of the same installation; killed when dropped.
pub struct Replica {
    child: Child,
    log: PathBuf,
}

impl Replica {
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: &str) {
        send_signal(&self.child, signal);
    }

    /// Waits (`REACT`) for the process to end by itself: `what` it is.
    pub async fn wait_exited(&mut self, what: &str) -> std::process::ExitStatus {
        wait_exit(what, &mut self.child).await
    }
}

async fn wait_exit(what: &str, child: &mut Child) -> std::process::ExitStatus {
    wait_for(&format!("{what} to exit"), REACT, || {
        let exited = child.try_wait().expect("polling the process");
        async move { exited }
    })
    .await
}

fn send_signal(child: &Child, signal: &str) {
    let pid = child.id();
    let out = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .output()
        .expect("running kill");
    assert!(out.status.success(), "kill -{signal} {pid}: {out:?}");
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET; returns (status code, body).
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_default();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A GenericSecret with string data (base64-encoded here, as users do).
pub fn generic_secret(name: &str, scope: Scope, data: &[(&str, &str)]) -> GenericSecret {
    GenericSecret::new(
        name,
        GenericSecretSpec {
            scope,
            secret_name: None,
            type_: "Opaque".into(),
            data: Some(SecretData(
                data.iter().map(|(k, v)| (k.to_string(), b64(v))).collect(),
            )),
            data_from: None,
            labels: BTreeMap::new(),
            rollout: None,
        },
    )
}

/// Relabels a namespace (merge patch; `None` removes the label).
pub async fn label_namespace(name: &str, key: &str, value: Option<&str>) {
    let patch = json!({"metadata": {"labels": {key: value}}});
    Api::<Namespace>::all(client().await)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("labelling namespace {name}: {e}"));
}

/// A Secret's data as bytes by key.
pub fn data_bytes(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let data = secret.data.clone().unwrap_or_default();
    data.into_iter().map(|(k, v)| (k, v.0)).collect()
}
