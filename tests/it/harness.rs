//! Test harness shared by every integration test in this binary.
//!
//! * One control plane per test process: the first test that asks for it runs
//!   `tests/control-plane/up.sh` (which reuses an already running, healthy
//!   instance), or attaches to the kubeconfig named by `GSO_TEST_KUBECONFIG`.
//!   The control plane outlives the test process; `make down` stops it.
//! * Clients are built per test: a `kube::Client` is bound to the tokio runtime
//!   it was created on, and every `#[tokio::test]` has its own runtime.
//! * Every test works in its own namespace ([`TestNamespace`]), labelled
//!   `gso-test=<run id>`, so tests run in parallel without seeing each other.
//! * Waiting is done with [`wait_for`], which polls with a deadline.
#![allow(dead_code)] // not every test module uses every helper

use std::ffi::OsStr;
use std::fmt::Debug;
use std::future::Future;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

/// Label put on every namespace a test creates; the value is [`run_id`].
pub const TEST_LABEL: &str = "gso-test";

/// How often [`wait_for`] polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(150);

/// A generous default deadline for things the control plane does on its own
/// (namespace deletion, garbage collection, controller reconciliation).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Paths of the shared control plane.
#[derive(Debug)]
pub struct ControlPlane {
    /// Admin kubeconfig (user in `system:masters`).
    pub kubeconfig: PathBuf,
    /// Kubeconfig of user `developer`, member of `system:authenticated` only.
    pub developer_kubeconfig: PathBuf,
    /// Directory holding the built `kubectl`, `helm`, `kube-apiserver`, ...
    pub bin_dir: PathBuf,
}

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/it-logs`, created if needed: operator logs, generated
/// kubeconfigs and manifests of the tests.
pub fn scratch_dir() -> PathBuf {
    let dir = repo_root().join("target/it-logs");
    std::fs::create_dir_all(&dir).expect("creating target/it-logs");
    dir
}

/// The shared control plane, started (or attached to) on first use.
///
/// Panics in every caller if it cannot be started; the failure is remembered,
/// so the start-up is attempted once per process.
pub fn control_plane() -> &'static ControlPlane {
    static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
    match CONTROL_PLANE.get_or_init(init_control_plane) {
        Ok(control_plane) => control_plane,
        Err(e) => panic!("control plane unavailable: {e}"),
    }
}

fn init_control_plane() -> Result<ControlPlane, String> {
    let root = repo_root();
    let bin_dir = root.join("target/control-plane/bin");
    let kubeconfig = match std::env::var_os("GSO_TEST_KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => start_control_plane(root)?,
    };
    if !kubeconfig.is_file() {
        return Err(format!(
            "kubeconfig {} does not exist",
            kubeconfig.display()
        ));
    }
    let developer_kubeconfig = std::env::var_os("GSO_TEST_KUBECONFIG_DEVELOPER")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| kubeconfig.with_file_name("kubeconfig-developer"));
    Ok(ControlPlane {
        kubeconfig,
        developer_kubeconfig,
        bin_dir,
    })
}

/// Runs `up.sh` (builds the binaries if needed, reuses a running instance)
/// and returns the admin kubeconfig path it prints last.
fn start_control_plane(root: &Path) -> Result<PathBuf, String> {
    let script = root.join("tests/control-plane/up.sh");
    let output = Command::new("bash")
        .arg(&script)
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed with {}",
            script.display(),
            output.status
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| format!("{} printed no kubeconfig path", script.display()))
}

async fn client_from(path: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("reading kubeconfig {}: {e}", path.display()));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("loading kubeconfig {}: {e}", path.display()));
    Client::try_from(config).unwrap_or_else(|e| panic!("client for {}: {e}", path.display()))
}

/// The admin kubeconfig as `edit` changes it, written to the scratch
/// directory as `kubeconfig-<name>` (e.g. another user's credentials).
pub fn admin_kubeconfig_edited(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let admin = std::fs::read_to_string(&control_plane().kubeconfig).expect("admin kubeconfig");
    let mut config: serde_json::Value = serde_saphyr::from_str(&admin).expect("kubeconfig YAML");
    edit(&mut config);
    let path = scratch_dir().join(format!("kubeconfig-{name}"));
    let yaml = serde_saphyr::to_string(&config).expect("kubeconfig YAML");
    std::fs::write(&path, yaml).expect("writing the kubeconfig");
    path
}

/// A client authenticated as the cluster admin.
pub async fn client() -> Client {
    client_from(&control_plane().kubeconfig).await
}

/// A client authenticated as `developer`, who has no RBAC grants at all
/// unless a test creates some.
pub async fn developer_client() -> Client {
    client_from(&control_plane().developer_kubeconfig).await
}

/// A short random lowercase hex string (std only: randomly keyed SipHash over
/// a counter, the time and the PID).
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.write_u32(std::process::id());
    format!("{:08x}", hasher.finish() & 0xffff_ffff)
}

/// Identifies this test process; the value of the [`TEST_LABEL`] label.
pub fn run_id() -> &'static str {
    static RUN_ID: OnceLock<String> = OnceLock::new();
    RUN_ID.get_or_init(unique_suffix)
}

/// `prefix` reduced to a DNS-1123 label fragment, followed by `-<suffix>`.
pub fn unique_name(prefix: &str) -> String {
    let mut cleaned: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    cleaned.truncate(40);
    let cleaned = cleaned.trim_matches('-');
    let cleaned = if cleaned.is_empty() { "t" } else { cleaned };
    format!("{cleaned}-{}", unique_suffix())
}

/// A namespace owned by one test. Call [`TestNamespace::cleanup`] at the end
/// of the test; if the test panics before that, dropping it deletes the
/// namespace with kubectl (unless `GSO_TEST_KEEP_NAMESPACES` is set, to keep
/// failed tests' objects for inspection).
#[derive(Debug)]
pub struct TestNamespace {
    name: String,
    cleaned_up: bool,
}

impl TestNamespace {
    /// Creates `<prefix>-<random>` labelled `gso-test=<run id>`.
    pub async fn new(prefix: &str) -> Self {
        Self::with_labels(prefix, &[]).await
    }

    /// Like [`TestNamespace::new`], with extra labels.
    pub async fn with_labels(prefix: &str, labels: &[(&str, &str)]) -> Self {
        let name = unique_name(prefix);
        let mut all_labels = std::collections::BTreeMap::new();
        all_labels.insert(TEST_LABEL.to_owned(), run_id().to_owned());
        for (key, value) in labels {
            all_labels.insert((*key).to_owned(), (*value).to_owned());
        }
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(all_labels),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client().await)
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        Self {
            name,
            cleaned_up: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the namespace (without waiting for it to be gone).
    pub async fn cleanup(mut self) {
        self.cleaned_up = true;
        let result = Api::<Namespace>::all(client().await)
            .delete(&self.name, &DeleteParams::default())
            .await;
        match result {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => panic!("deleting namespace {}: {e}", self.name),
        }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.cleaned_up {
            return;
        }
        if std::thread::panicking() && std::env::var_os("GSO_TEST_KEEP_NAMESPACES").is_some() {
            eprintln!("keeping namespace {} (GSO_TEST_KEEP_NAMESPACES)", self.name);
            return;
        }
        // Best effort, synchronous: Drop cannot await.
        let _ = kubectl([
            "delete",
            "namespace",
            self.name.as_str(),
            "--wait=false",
            "--ignore-not-found",
        ]);
    }
}

/// What a [`wait_for`] probe returns: done (with a value) or not yet (with a
/// description of what was observed, reported on timeout).
pub trait Probe {
    type Output;
    fn into_result(self) -> Result<Self::Output, String>;
}

impl<T> Probe for Option<T> {
    type Output = T;
    fn into_result(self) -> Result<T, String> {
        self.ok_or_else(|| "None".to_owned())
    }
}

impl Probe for bool {
    type Output = ();
    fn into_result(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("false".to_owned())
        }
    }
}

/// `Err(observed)` means "not yet"; its `Debug` form is reported on timeout.
impl<T, E: Debug> Probe for Result<T, E> {
    type Output = T;
    fn into_result(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Polls `probe` every [`POLL_INTERVAL`] until it returns `Some`, `true` or
/// `Ok`, and returns that value. Panics naming `what` and the last observed
/// value when `timeout` passes (a probe still running at the deadline is
/// abandoned).
pub async fn wait_for<P, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> P::Output
where
    P: Probe,
    F: FnMut() -> Fut,
    Fut: Future<Output = P>,
{
    let start = tokio::time::Instant::now();
    let deadline = start + timeout;
    let mut last = String::from("<never polled>");
    loop {
        match tokio::time::timeout_at(deadline, probe()).await {
            Ok(result) => match result.into_result() {
                Ok(value) => return value,
                Err(observed) => last = observed,
            },
            Err(_) => last = format!("<probe still running at the deadline; before: {last}>"),
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            panic!(
                "timed out after {:.1?} waiting for {what}; last observed: {last}",
                now - start
            );
        }
        tokio::time::sleep_until((now + POLL_INTERVAL).min(deadline)).await;
    }
}

/// Waits until `GET name` answers 404.
pub async fn wait_deleted<K>(api: &Api<K>, name: &str, timeout: Duration)
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    wait_for(&format!("{name} to be deleted"), timeout, || async {
        match api.get_opt(name).await {
            Ok(None) => Ok(()),
            Ok(Some(object)) => Err(format!(
                "still present (deletionTimestamp: {:?}, finalizers: {:?})",
                object.meta().deletion_timestamp,
                object.meta().finalizers
            )),
            Err(e) => Err(format!("GET failed: {e}")),
        }
    })
    .await;
}

/// The HTTP status code of an API error, if it is one.
pub fn api_error_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

pub fn is_not_found(error: &kube::Error) -> bool {
    api_error_code(error) == Some(404)
}

/// A command for one of the built control-plane programs (`kubectl`, `helm`,
/// ...) with `KUBECONFIG` set to `kubeconfig`, the bin dir first on `PATH`
/// and helm's state kept under `target/control-plane/helm`.
pub fn tool_command(program: &str, kubeconfig: &Path) -> Command {
    let control_plane = control_plane();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![control_plane.bin_dir.clone()];
    paths.extend(std::env::split_paths(&path));
    let helm_home = repo_root().join("target/control-plane/helm");
    let mut command = Command::new(control_plane.bin_dir.join(program));
    command
        .env("KUBECONFIG", kubeconfig)
        .env(
            "PATH",
            std::env::join_paths(paths).unwrap_or_else(|_| path.clone()),
        )
        .env("HELM_CACHE_HOME", helm_home.join("cache"))
        .env("HELM_CONFIG_HOME", helm_home.join("config"))
        .env("HELM_DATA_HOME", helm_home.join("data"))
        .stdin(Stdio::null());
    command
}

fn run<I, S>(program: &str, kubeconfig: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    tool_command(program, kubeconfig)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// Runs the built `kubectl` as admin.
pub fn kubectl<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run("kubectl", &control_plane().kubeconfig, args)
}

/// Runs the built `kubectl` as `developer`.
pub fn kubectl_as_developer<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run("kubectl", &control_plane().developer_kubeconfig, args)
}

/// Runs the built `helm` as admin.
pub fn helm<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run("helm", &control_plane().kubeconfig, args)
}

/// Asserts the command succeeded and returns its stdout.
pub fn expect_success(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Role `name` in `ns` with `rules`, bound to `subject` by a RoleBinding of
/// the same name.
pub async fn bind_role(
    client: &Client,
    ns: &str,
    name: &str,
    rules: Vec<PolicyRule>,
    subject: Subject,
) {
    let meta = || ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ns.to_owned()),
        ..ObjectMeta::default()
    };
    let role = Role {
        metadata: meta(),
        rules: Some(rules),
    };
    Api::<Role>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("creating the Role");
    let binding = RoleBinding {
        metadata: meta(),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: name.into(),
        },
        subjects: Some(vec![subject]),
    };
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("creating the RoleBinding");
}
