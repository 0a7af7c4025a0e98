//! The AI Core REST API (`run --rest-api`) driven with SAP's own SDK clients,
//! as their users call them: the Python `sap-ai-sdk-core`
//! (`AICoreV2Client(...).secrets`, OAuth client credentials against a token
//! endpoint the driver serves) and the JS `@sap-ai-sdk/ai-api` (`SecretApi`
//! with a custom destination). Both are pinned in `tests/sdk/` and installed
//! into `target/sdk` by `tests/sdk/install.sh` (`make test` runs it; so does
//! the first test here). Each test runs one `tests/sdk/sdk_driver.py` or
//! `tests/sdk/sdk-driver.mjs` process, a command per line; every call is
//! printed (run with `--nocapture` to see them), without tokens or secret
//! values.
//!
//! Scopes are given the way each SDK sends them by default:
//! - Python: the client has a resource group (`AICoreV2Client(...,
//!   resource_group="rg-a")`) and every call sends `AI-Tenant-Scope: true`
//!   unless told `ai_tenant_scope=False`: `create(name, data)` is a
//!   main-tenant call (`true` + `rg-a`), `resource_group="*"` tenant-wide,
//!   `ai_tenant_scope=False` the client's resource group.
//! - JS: every call sends `AI-Resource-Group` (`default` unless given):
//!   `{"AI-Tenant-Scope": "true"}` is a main-tenant call (`true` +
//!   `default`), with `"AI-Resource-Group": "*"` tenant-wide,
//!   `{"AI-Resource-Group": "rg-a"}` alone that resource group.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};

use generic_secrets_operator::api::{GenericSecret, Scope};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Subject};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::{control_plane, repo_root, wait_for};
use crate::operator::{Operator, REACT, b64};

const REST: [&str; 3] = ["--rest-api", "--rest-addr", "127.0.0.1:0"];

/// Runs `tests/sdk/install.sh` once per test process (it returns at once
/// when `target/sdk` is up to date) and copies the JS driver next to the
/// installed `node_modules`, where Node resolves the SDK from.
fn installed() -> &'static PathBuf {
    static SDK: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = SDK.get_or_init(|| {
        let script = repo_root().join("tests/sdk/install.sh");
        let status = std::process::Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if !status.success() {
            return Err(format!("{} failed with {status}", script.display()));
        }
        let sdk = repo_root().join("target/sdk");
        std::fs::copy(
            repo_root().join("tests/sdk/sdk-driver.mjs"),
            sdk.join("js/sdk-driver.mjs"),
        )
        .map_err(|e| format!("copying the JS driver: {e}"))?;
        Ok(sdk)
    });
    match result {
        Ok(sdk) => sdk,
        Err(e) => panic!("SAP's SDK clients are not installed: {e}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sdk {
    Python,
    Js,
}

impl fmt::Display for Sdk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sdk::Python => "python sap-ai-sdk-core",
            Sdk::Js => "js @sap-ai-sdk/ai-api",
        })
    }
}

/// Where a call goes, as AI Core names it.
#[derive(Clone, Copy, Debug)]
enum Where<'a> {
    MainTenant,
    TenantWide,
    Group(&'a str),
}

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Where::MainTenant => f.write_str("main tenant"),
            Where::TenantWide => f.write_str("tenant-wide"),
            Where::Group(rg) => write!(f, "resource group {rg}"),
        }
    }
}

/// What a call returned: the SDK's result, or the HTTP status and body of
/// the error it raised.
#[derive(Debug)]
enum Outcome {
    Ok(Value),
    Err { status: u16, body: Value },
}

impl Outcome {
    fn ok(&self) -> &Value {
        match self {
            Outcome::Ok(value) => value,
            other => panic!("expected success, got {other:?}"),
        }
    }

    /// Asserts an AI Core error with `status` whose message contains `says`.
    fn refused(&self, status: u16, says: &str) {
        match self {
            Outcome::Err { status: got, body } if *got == status => {
                assert_eq!(body["error"]["code"], status.to_string(), "{body}");
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains(says), "{message:?} should say {says:?}");
            }
            other => panic!("expected HTTP {status}, got {other:?}"),
        }
    }
}

/// One driver process of an SDK (`tests/sdk/`): a command per line in, an
/// answer per line out. Shared by the clients of a test; ended when dropped.
struct Driver {
    sdk: Sdk,
    io: tokio::sync::Mutex<DriverIo>,
}

struct DriverIo {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Driver {
    fn start(sdk: Sdk) -> Arc<Driver> {
        let installed = installed();
        let mut command = match sdk {
            Sdk::Python => {
                let mut c = tokio::process::Command::new(installed.join("py/bin/python"));
                c.arg(repo_root().join("tests/sdk/sdk_driver.py"));
                c
            }
            Sdk::Js => {
                let mut c = tokio::process::Command::new(installed.join("bin/node"));
                c.arg(installed.join("js/sdk-driver.mjs"));
                c
            }
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {sdk} driver: {e}"));
        let stdin = child.stdin.take().expect("the driver's stdin");
        let stdout = BufReader::new(child.stdout.take().expect("the driver's stdout")).lines();
        Arc::new(Driver {
            sdk,
            io: tokio::sync::Mutex::new(DriverIo {
                _child: child,
                stdin,
                stdout,
            }),
        })
    }

    /// Sends one command, returns the driver's answer.
    async fn send(&self, command: &Value) -> Value {
        let mut io = self.io.lock().await;
        let line = format!("{command}\n");
        io.stdin
            .write_all(line.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("writing to the {} driver: {e}", self.sdk));
        io.stdin.flush().await.expect("flushing the command");
        let answer = io
            .stdout
            .next_line()
            .await
            .unwrap_or_else(|e| panic!("reading the {} driver: {e}", self.sdk))
            .unwrap_or_else(|| panic!("the {} driver ended (its stderr is above)", self.sdk));
        serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("the {} driver answered {answer:?}: {e}", self.sdk))
    }
}

/// One SDK client: its user's token, and (Python) the client's resource
/// group.
struct Client {
    sdk: Sdk,
    driver: Arc<Driver>,
    url: String,
    token: String,
    /// Who the token belongs to, for the printed lines.
    who: &'static str,
    /// `AICoreV2Client(resource_group=...)` (Python only).
    client_resource_group: Option<String>,
}

impl Client {
    fn new(driver: &Arc<Driver>, url: &str, token: &str, who: &'static str) -> Self {
        let sdk = driver.sdk;
        Client {
            sdk,
            driver: driver.clone(),
            url: url.to_owned(),
            token: token.to_owned(),
            who,
            client_resource_group: (sdk == Sdk::Python).then(|| "rg-a".to_owned()),
        }
    }

    /// The scope fields of a command, as the SDK's defaults send them (see
    /// the module comment).
    fn scope(&self, place: Where<'_>) -> serde_json::Map<String, Value> {
        let scope = match (self.sdk, place) {
            (Sdk::Python, Where::MainTenant) => json!({}),
            (Sdk::Python, Where::TenantWide) => json!({"resource_group": "*"}),
            (Sdk::Python, Where::Group(rg)) => json!({"resource_group": rg, "tenant_scope": false}),
            (Sdk::Js, Where::MainTenant) => json!({"tenant_scope": true}),
            (Sdk::Js, Where::TenantWide) => json!({"tenant_scope": true, "resource_group": "*"}),
            (Sdk::Js, Where::Group(rg)) => json!({"resource_group": rg}),
        };
        match scope {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    /// One call: `op` with `args`, in `place`.
    async fn call(&self, op: &str, place: Where<'_>, args: Value) -> Outcome {
        let mut command = self.scope(place);
        command.insert("op".into(), op.into());
        command.insert("url".into(), self.url.clone().into());
        command.insert("token".into(), self.token.clone().into());
        if let Some(rg) = &self.client_resource_group {
            command.insert("client_resource_group".into(), rg.clone().into());
        }
        if let Value::Object(args) = args {
            command.extend(args);
        }
        let input = Value::Object(command);
        let reply = self.driver.send(&input).await;
        assert!(
            reply.get("error").is_none(),
            "the {} driver failed on {op} in {place}: {}",
            self.sdk,
            reply["error"]
        );
        if self.sdk == Sdk::Python {
            assert!(
                reply["token_requests"].as_u64().unwrap_or_default() >= 1,
                "the Python SDK fetched its token from the token endpoint: {reply}"
            );
        }
        let outcome = if reply["ok"] == true {
            Outcome::Ok(reply["result"].clone())
        } else {
            let status = reply["status"].as_u64().expect("an HTTP status") as u16;
            Outcome::Err {
                status,
                body: reply["body"].clone(),
            }
        };
        let shown = match &outcome {
            Outcome::Ok(result) => format!("ok {result}"),
            Outcome::Err { status, body } => format!("HTTP {status} {body}"),
        };
        println!(
            "[{}] {} {op} {} in {place}: {shown}",
            self.sdk,
            self.who,
            args_for_log(input),
        );
        outcome
    }

    async fn create(&self, place: Where<'_>, name: &str, data: &[(&str, &str)]) -> Outcome {
        let args = json!({"name": name, "data": encoded(data)});
        self.call("create", place, args).await
    }

    async fn modify(&self, place: Where<'_>, name: &str, data: &[(&str, &str)]) -> Outcome {
        let args = json!({"name": name, "data": encoded(data)});
        self.call("modify", place, args).await
    }

    async fn get(&self, place: Where<'_>, name: &str) -> Outcome {
        self.call("get", place, json!({"name": name})).await
    }

    async fn delete(&self, place: Where<'_>, name: &str) -> Outcome {
        self.call("delete", place, json!({"name": name})).await
    }

    async fn list(&self, place: Where<'_>, paging: Value) -> Outcome {
        self.call("list", place, paging).await
    }
}

/// The command without token and data values, for the printed line.
fn args_for_log(mut command: Value) -> String {
    let map = command.as_object_mut().expect("an object");
    for key in ["url", "token", "op", "client_resource_group"] {
        map.remove(key);
    }
    if let Some(data) = map.get_mut("data").and_then(Value::as_object_mut) {
        for value in data.values_mut() {
            *value = "…".into();
        }
    }
    command.to_string()
}

fn encoded(data: &[(&str, &str)]) -> Value {
    data.iter()
        .map(|(k, v)| (k.to_string(), Value::String(b64(v))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Everything a refused call could have changed in the installation's
/// namespaces: each GenericSecret (uid, generation, spec) and Secret (uid,
/// type, a digest of its data and labels). Status is left out: the operator
/// writes it on its own.
async fn cluster_state(op: &Operator, namespaces: &[&str]) -> BTreeMap<String, String> {
    let mut state = BTreeMap::new();
    for ns in namespaces {
        let list = op
            .gsecs(ns)
            .list(&ListParams::default())
            .await
            .expect("listing GenericSecrets");
        for gs in list.items {
            let spec = serde_json::to_string(&gs.spec).expect("spec JSON");
            state.insert(
                format!("GenericSecret {ns}/{}", gs.name_any()),
                format!(
                    "uid={:?} generation={:?} spec-digest={}",
                    gs.uid(),
                    gs.meta().generation,
                    digest(&spec)
                ),
            );
        }
        let list = op
            .secrets(ns)
            .list(&ListParams::default())
            .await
            .expect("listing Secrets");
        for secret in list.items {
            let data = crate::operator::data_bytes(&secret);
            state.insert(
                format!("Secret {ns}/{}", secret.name_any()),
                format!(
                    "uid={:?} type={:?} data-digest={} labels={:?}",
                    secret.uid(),
                    secret.type_,
                    digest(&data),
                    secret.metadata.labels
                ),
            );
        }
    }
    state
}

fn digest<T: Hash>(value: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// Asserts that `outcome` is `status` with a message containing `says`, and
/// that the cluster state is what it was before the call.
async fn assert_refused(
    op: &Operator,
    namespaces: &[&str],
    before: &BTreeMap<String, String>,
    outcome: Outcome,
    status: u16,
    says: &str,
) {
    outcome.refused(status, says);
    let after = cluster_state(op, namespaces).await;
    assert_eq!(
        &after, before,
        "a refused call (HTTP {status}) changed the cluster"
    );
    println!(
        "    cluster state unchanged ({} objects compared)",
        after.len()
    );
}

/// The GenericSecret the REST API made carries no secret value: its data
/// lives in a Secret it references through `dataFrom`.
fn assert_no_inline_value(gs: &GenericSecret) {
    assert!(
        gs.spec.data.is_none(),
        "{}/{} holds its data inline (spec.data): the REST API should keep it in a Secret \
         referenced by spec.dataFrom",
        gs.namespace().unwrap_or_default(),
        gs.name_any()
    );
    assert!(
        gs.spec.data_from.is_some(),
        "{}/{} has no dataFrom",
        gs.namespace().unwrap_or_default(),
        gs.name_any()
    );
}

/// The data keys as each SDK sends them: the Python SDK's REST client
/// camel-cases every key of a request body, the data map's keys included
/// (`some-credential` → `someCredential`, `access_key` → `accessKey`,
/// `Token` → `token`; `AWS_ACCESS_KEY_ID` stays).
fn sent_key(sdk: Sdk, key: &'static str) -> &'static str {
    match (sdk, key) {
        (Sdk::Python, "some-credential") => "someCredential",
        (Sdk::Python, "access_key") => "accessKey",
        (Sdk::Python, "Token") => "token",
        _ => key,
    }
}

/// The replication map of a detail, under the name each SDK hands it over:
/// Python snake-cases response keys (`resource_group_secrets_sync_status`,
/// and the map's own keys: resource group `rgC` becomes `rg_c`), JS returns
/// the server's JSON as is.
fn sync_status(sdk: Sdk, detail: &Value) -> Value {
    match sdk {
        Sdk::Python => detail["resource_group_secrets_sync_status"].clone(),
        Sdk::Js => detail["resourceGroupSecretsSyncStatus"].clone(),
    }
}

fn names(list: &Value) -> Vec<String> {
    list["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect()
}

/// An admin's whole life cycle with one SDK: create in each scope with the
/// SDK's default headers, list with paging, PATCH, the replication map
/// turning true, DELETE.
async fn admin_lifecycle(sdk: Sdk) {
    let op = Operator::start(&REST).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    // An id with capitals, to show what the Python SDK does to map keys.
    let c = op.resource_group("rgC").await;
    let groups = [a.name(), b.name(), c.name()];
    let url = format!("http://{}", op.rest_addr().await);
    let driver = Driver::start(sdk);
    let admin = Client::new(&driver, &url, &admin_token(), "admin");
    let k = |key: &'static str| sent_key(sdk, key);

    // Create, one per scope, with the SDK's default headers.
    let v1 = [
        ("some-credential", "main-v1"),
        ("AWS_ACCESS_KEY_ID", "main-id"),
    ];
    let created = admin.create(Where::MainTenant, "main-1", &v1).await;
    let created = created.ok();
    assert_eq!(created["message"], "secret has been created", "{created}");
    let tw = [("access_key", "tw-v1"), ("Token", "tw-token")];
    admin
        .create(Where::TenantWide, "object-store-creds", &tw)
        .await
        .ok();
    let rg = [("some-credential", "rg-v1")];
    admin
        .create(Where::Group("rg-a"), "team-a-token", &rg)
        .await
        .ok();

    // Each landed in its scope, its replicas hold the keys as sent.
    let expectations = [
        (op.tenant.as_str(), "main-1", Scope::Tenant),
        (op.tenant.as_str(), "object-store-creds", Scope::TenantWide),
        (a.name(), "team-a-token", Scope::ResourceGroup),
    ];
    for (ns, name, scope) in expectations {
        let gs = op
            .gsecs(ns)
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{name} in {ns}: {e}"));
        assert_eq!(gs.spec.scope, scope, "{ns}/{name}");
        assert_no_inline_value(&gs);
    }
    op.wait_secret_data(
        &op.tenant,
        "main-1",
        &[
            (k("some-credential"), "main-v1"),
            (k("AWS_ACCESS_KEY_ID"), "main-id"),
        ],
    )
    .await;
    for ns in groups {
        op.wait_secret_data(
            ns,
            "object-store-creds",
            &[(k("access_key"), "tw-v1"), (k("Token"), "tw-token")],
        )
        .await;
    }
    op.wait_secret_data(a.name(), "team-a-token", &[(k("some-credential"), "rg-v1")])
        .await;

    if sdk == Sdk::Python {
        // The way round the camel-casing: the SDK's rest_client with
        // convert_body_to_camel_case=False.
        let raw = json!({"name": "main-raw", "data": encoded(&[("some-credential", "raw")]),
                         "keep_keys": true});
        admin.call("create", Where::MainTenant, raw).await.ok();
        op.wait_secret_data(&op.tenant, "main-raw", &[("some-credential", "raw")])
            .await;
        admin.delete(Where::MainTenant, "main-raw").await.ok();
        op.wait_secret_absent(&op.tenant, "main-raw").await;
    }

    // List with paging: count is the total in scope, whatever the page.
    for name in ["main-2", "main-3"] {
        admin
            .create(Where::MainTenant, name, &[("k", "listed")])
            .await
            .ok();
    }
    let page = admin.list(Where::MainTenant, json!({"top": 2})).await;
    let page = page.ok();
    assert_eq!(names(page), ["main-1", "main-2"], "{page}");
    assert_eq!(page["count"], 3, "count is the total, not the page: {page}");
    let page = admin
        .list(Where::MainTenant, json!({"top": 2, "skip": 2}))
        .await;
    let page = page.ok();
    assert_eq!(names(page), ["main-3"], "{page}");
    assert_eq!(page["count"], 3, "{page}");
    match sdk {
        // The Python SDK's Secret keeps name and data (None): createdAt and
        // labels are dropped by Secret.from_dict.
        Sdk::Python => assert_eq!(
            page["resources"][0],
            json!({"name": "main-3", "data": null})
        ),
        Sdk::Js => {
            assert_eq!(page["resources"][0]["name"], "main-3");
            assert!(page["resources"][0]["createdAt"].is_string(), "{page}");
        }
    }
    if sdk == Sdk::Js {
        let counted = admin
            .list(Where::MainTenant, json!({"top": 1, "count": true}))
            .await;
        assert_eq!(counted.ok()["count"], 3);
    }
    let wide = admin.list(Where::TenantWide, json!({})).await;
    assert_eq!(names(wide.ok()), ["object-store-creds"]);
    assert_eq!(wide.ok()["count"], 1);
    let group = admin.list(Where::Group("rg-a"), json!({})).await;
    assert_eq!(names(group.ok()), ["team-a-token"]);

    // GET: the tenant-wide secret's replication map turns true everywhere.
    let all_true = match sdk {
        Sdk::Python => json!({"rg-a": true, "rg-b": true, "rg_c": true}),
        Sdk::Js => json!({"rg-a": true, "rg-b": true, "rgC": true}),
    };
    let detail = wait_for("the replication map to be all true", REACT, || async {
        match admin.get(Where::TenantWide, "object-store-creds").await {
            Outcome::Ok(detail) if sync_status(sdk, &detail) == all_true => Ok(detail),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(detail["name"], "object-store-creds");
    match sdk {
        Sdk::Python => {
            assert!(detail["created_at"].is_string(), "{detail}");
            assert_eq!(detail["resource_group_secret_replication_status"], all_true);
        }
        Sdk::Js => assert!(detail["createdAt"].is_string(), "{detail}"),
    }
    assert!(detail.get("data").is_none(), "{detail}");

    // PATCH in each scope: the data map is replaced, replicas follow, the
    // map turns true again.
    let modified = admin
        .modify(
            Where::TenantWide,
            "object-store-creds",
            &[("access_key", "tw-v2")],
        )
        .await;
    let modified = modified.ok();
    assert_eq!(
        modified["message"], "The secret has been modified",
        "{modified}"
    );
    admin
        .modify(
            Where::MainTenant,
            "main-1",
            &[("some-credential", "main-v2")],
        )
        .await
        .ok();
    admin
        .modify(
            Where::Group("rg-a"),
            "team-a-token",
            &[("some-credential", "rg-v2")],
        )
        .await
        .ok();
    for ns in groups {
        op.wait_secret_data(ns, "object-store-creds", &[(k("access_key"), "tw-v2")])
            .await;
    }
    op.wait_secret_data(&op.tenant, "main-1", &[(k("some-credential"), "main-v2")])
        .await;
    op.wait_secret_data(a.name(), "team-a-token", &[(k("some-credential"), "rg-v2")])
        .await;
    wait_for("the replication map after the PATCH", REACT, || async {
        match admin.get(Where::TenantWide, "object-store-creds").await {
            Outcome::Ok(detail) if sync_status(sdk, &detail) == all_true => Ok(()),
            other => Err(other),
        }
    })
    .await;
    // Each scope sees only its own.
    admin
        .get(Where::MainTenant, "object-store-creds")
        .await
        .refused(404, "not found");
    admin
        .get(Where::Group("rg-b"), "team-a-token")
        .await
        .refused(404, "not found");

    // DELETE in each scope: objects and replicas go.
    let deleted = admin.delete(Where::TenantWide, "object-store-creds").await;
    let deleted = deleted.ok();
    assert_eq!(
        deleted["message"], "The secret has been deleted",
        "{deleted}"
    );
    for name in ["main-1", "main-2", "main-3"] {
        admin.delete(Where::MainTenant, name).await.ok();
    }
    admin
        .delete(Where::Group("rg-a"), "team-a-token")
        .await
        .ok();
    for ns in groups {
        op.wait_secret_absent(ns, "object-store-creds").await;
    }
    op.wait_secret_absent(&op.tenant, "main-1").await;
    op.wait_secret_absent(a.name(), "team-a-token").await;
    admin
        .get(Where::TenantWide, "object-store-creds")
        .await
        .refused(404, "not found");
    wait_for("an empty main-tenant list", REACT, || async {
        match admin.list(Where::MainTenant, json!({})).await {
            Outcome::Ok(list) if list["count"] == 0 => Ok(()),
            other => Err(other),
        }
    })
    .await;

    for ns in [a, b, c] {
        ns.cleanup().await;
    }
    op.cleanup().await;
}

/// `users[0].user.token` of the admin kubeconfig.
fn admin_token() -> String {
    crate::rest::token(&control_plane().kubeconfig)
}

/// A ServiceAccount of namespace `ns` that may manage GenericSecrets and
/// Secrets there and nowhere else (the sample resource-group admin Role of
/// deploy/examples/rbac/); returns a token of it (TokenRequest).
async fn namespace_admin(op: &Operator, ns: &str) -> (String, String) {
    let client = op.client.clone();
    let name = "rg-a-admin";
    let meta = || ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ns.to_owned()),
        ..ObjectMeta::default()
    };
    let pp = PostParams::default();
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), ns);
    accounts
        .create(
            &pp,
            &ServiceAccount {
                metadata: meta(),
                ..ServiceAccount::default()
            },
        )
        .await
        .expect("creating the ServiceAccount");
    let rule = |groups: &[&str], resources: &[&str]| PolicyRule {
        api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: [
            "get", "list", "watch", "create", "update", "patch", "delete",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..PolicyRule::default()
    };
    let rules = vec![
        rule(&["aicore.dev"], &["genericsecrets"]),
        rule(&[""], &["secrets"]),
    ];
    let account = Subject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(ns.to_owned()),
        ..Subject::default()
    };
    crate::harness::bind_role(&client, ns, name, rules, account).await;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec![]),
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let token = accounts
        .create_token_request(name, &pp, &request)
        .await
        .expect("a token of the ServiceAccount")
        .status
        .expect("token status")
        .token
        .expect("a token");
    (token, format!("system:serviceaccount:{ns}:{name}"))
}

/// A user with rights in one resource-group namespace only gets 403
/// everywhere else; a bad token gets 401; neither changes anything.
async fn refusals(sdk: Sdk) {
    let op = Operator::start(&REST).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    let namespaces = [op.tenant.as_str(), a.name(), b.name()];
    let url = format!("http://{}", op.rest_addr().await);
    let driver = Driver::start(sdk);
    let admin = Client::new(&driver, &url, &admin_token(), "admin");
    let (token, user) = namespace_admin(&op, a.name()).await;
    let user_client = Client::new(&driver, &url, &token, "rg-a admin (ServiceAccount)");
    let nobody = Client::new(&driver, &url, "not-a-token", "bad token");

    // Something to try to change in every scope, written by the admin.
    admin
        .create(Where::MainTenant, "main-secret", &[("k", "admin-main")])
        .await
        .ok();
    admin
        .create(Where::TenantWide, "wide-secret", &[("k", "admin-wide")])
        .await
        .ok();
    admin
        .create(Where::Group("rg-b"), "b-secret", &[("k", "admin-b")])
        .await
        .ok();
    op.wait_secret_data(&op.tenant, "main-secret", &[("k", "admin-main")])
        .await;
    for ns in [a.name(), b.name()] {
        op.wait_secret_data(ns, "wide-secret", &[("k", "admin-wide")])
            .await;
    }
    op.wait_secret_data(b.name(), "b-secret", &[("k", "admin-b")])
        .await;

    // Within its namespace the user works.
    user_client
        .create(Where::Group("rg-a"), "a-secret", &[("k", "user-a")])
        .await
        .ok();
    op.wait_secret_data(a.name(), "a-secret", &[("k", "user-a")])
        .await;
    let mine = user_client.list(Where::Group("rg-a"), json!({})).await;
    assert_eq!(names(mine.ok()), ["a-secret"]);
    user_client.get(Where::Group("rg-a"), "a-secret").await.ok();
    user_client
        .modify(Where::Group("rg-a"), "a-secret", &[("k", "user-a2")])
        .await
        .ok();
    op.wait_secret_data(a.name(), "a-secret", &[("k", "user-a2")])
        .await;
    op.wait_ready(&op.tenant, "wide-secret", "True", "Replicated")
        .await;

    // Everywhere else: 403, nothing changed. The user's client has resource
    // group rg-a, yet the SDKs' default headers make create a main-tenant
    // call: refused as well.
    let before = cluster_state(&op, &namespaces).await;
    let forbidden = format!("User \"{user}\" cannot");
    for place in [Where::MainTenant, Where::TenantWide, Where::Group("rg-b")] {
        let (name, secret) = match place {
            Where::MainTenant => ("main-secret", "new-main"),
            Where::TenantWide => ("wide-secret", "new-wide"),
            _ => ("b-secret", "new-b"),
        };
        let create = user_client.create(place, secret, &[("k", "user-x")]).await;
        assert_refused(&op, &namespaces, &before, create, 403, &forbidden).await;
        let list = user_client.list(place, json!({})).await;
        assert_refused(&op, &namespaces, &before, list, 403, &forbidden).await;
        let get = user_client.get(place, name).await;
        assert_refused(&op, &namespaces, &before, get, 403, &forbidden).await;
        let modify = user_client.modify(place, name, &[("k", "user-x")]).await;
        assert_refused(&op, &namespaces, &before, modify, 403, &forbidden).await;
        let delete = user_client.delete(place, name).await;
        assert_refused(&op, &namespaces, &before, delete, 403, &forbidden).await;
    }

    // A bad token: 401 in every scope, also for a resource group that does
    // not exist (it learns nothing about resource groups).
    let not_accepted = "not accepted";
    for place in [
        Where::MainTenant,
        Where::TenantWide,
        Where::Group("rg-a"),
        Where::Group("rg-unknown"),
    ] {
        let create = nobody.create(place, "bad-token", &[("k", "nobody")]).await;
        assert_refused(&op, &namespaces, &before, create, 401, not_accepted).await;
        let list = nobody.list(place, json!({})).await;
        assert_refused(&op, &namespaces, &before, list, 401, not_accepted).await;
        let modify = nobody.modify(place, "a-secret", &[("k", "nobody")]).await;
        assert_refused(&op, &namespaces, &before, modify, 401, not_accepted).await;
        let delete = nobody.delete(place, "a-secret").await;
        assert_refused(&op, &namespaces, &before, delete, 401, not_accepted).await;
    }

    user_client
        .delete(Where::Group("rg-a"), "a-secret")
        .await
        .ok();
    op.wait_secret_absent(a.name(), "a-secret").await;
    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_admin_creates_lists_patches_and_deletes_in_every_scope() {
    admin_lifecycle(Sdk::Python).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn js_sdk_admin_creates_lists_patches_and_deletes_in_every_scope() {
    admin_lifecycle(Sdk::Js).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_is_refused_outside_its_rights_and_with_a_bad_token() {
    refusals(Sdk::Python).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn js_sdk_is_refused_outside_its_rights_and_with_a_bad_token() {
    refusals(Sdk::Js).await;
}
