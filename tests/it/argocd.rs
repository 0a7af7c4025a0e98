//! The Argo CD health check (`deploy/argocd/health.lua`) run by `lua5.1` on
//! the JSON the real operator leaves on real objects, as Argo CD would see it:
//! the object as the apiserver serves it, JSON `null`s dropped.

use std::io::Write;
use std::process::{Command, Stdio};

use futures::{StreamExt, TryStreamExt};
use generic_secrets_operator::api::{GenericSecret, Scope};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, ObjectMeta, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::harness::{TestNamespace, expect_success, kubectl, repo_root};
use crate::operator::{Operator, REACT, generic_secret};

const CM_KEY: &str = "resource.customizations.health.aicore.dev_GenericSecret";

fn script_path() -> std::path::PathBuf {
    repo_root().join("deploy/argocd/health.lua")
}

/// What the script returned.
#[derive(Debug)]
struct Health {
    status: String,
    message: String,
}

impl Health {
    fn expect(&self, status: &str, message_part: &str) {
        assert!(
            self.status == status && self.message.contains(message_part),
            "expected {status} with a message containing {message_part:?}, got {self:?}"
        );
    }
}

/// A Lua 5.1 string literal: printable ASCII as is, every other byte (and
/// the quote and backslash) as a `\ddd` escape, so any UTF-8 survives.
fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => out.push_str(&format!("\\{b:03}")),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// A Lua table constructor for `v`. Like Argo CD's conversion, a `null`
/// member is left out (in Lua a nil field does not exist).
fn lua_value(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_value).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(members) => {
            let members: Vec<String> = members
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_value(v)))
                .collect();
            format!("{{{}}}", members.join(", "))
        }
    }
}

/// Runs health.lua with `obj` as Argo CD does: a global `obj`, the script
/// a chunk whose `return hs` is the result.
fn run_health(obj: &Value) -> Health {
    let program = format!(
        "obj = {}\nlocal hs = assert(loadfile({}))()\nio.write(tostring(hs.status), \"\\n\", tostring(hs.message))\n",
        lua_value(obj),
        lua_string(&script_path().to_string_lossy())
    );
    let mut child = Command::new("lua5.1")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => panic!(
                "lua5.1 not found: install the Debian package lua5.1 (apt-get install lua5.1)"
            ),
            _ => panic!("running lua5.1: {e}"),
        });
    child
        .stdin
        .take()
        .expect("lua5.1 stdin")
        .write_all(program.as_bytes())
        .expect("writing the program to lua5.1");
    let out = child.wait_with_output().expect("waiting for lua5.1");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lua5.1 failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, message) = stdout.split_once('\n').expect("status and message lines");
    let health = Health {
        status: status.to_owned(),
        message: message.to_owned(),
    };
    let name = |key: &str| obj["metadata"][key].as_str().unwrap_or("?").to_owned();
    eprintln!(
        "argocd health of {}/{}: {} | {}",
        name("namespace"),
        name("name"),
        health.status,
        health.message
    );
    health
}

fn raw_api(op: &Operator, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        op.client.clone(),
        ns,
        &ApiResource::erase::<GenericSecret>(&()),
    )
}

/// The object as the apiserver serves it.
async fn fetch(op: &Operator, ns: &str, name: &str) -> Value {
    let obj = raw_api(op, ns)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("getting {ns}/{name}: {e}"));
    serde_json::to_value(&obj).expect("object as JSON")
}

/// Health of `ns/name` as it is now.
async fn health(op: &Operator, ns: &str, name: &str) -> Health {
    run_health(&fetch(op, ns, name).await)
}

/// The Ready condition of a raw object.
fn ready(obj: &Value) -> Option<&Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

/// Watches `name` while `act` runs and returns every version seen until
/// Ready=True for the current generation (the transient ones included).
async fn versions_until_ready(
    api: Api<DynamicObject>,
    name: &str,
    act: impl FnOnce(),
) -> Vec<Value> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, config).boxed();
    let deadline = tokio::time::Instant::now() + REACT;
    let mut next = async || {
        tokio::time::timeout_at(deadline, events.try_next())
            .await
            .unwrap_or_else(|_| panic!("timed out watching {name} until Ready"))
            .expect("watch")
            .expect("watch ended")
    };
    // Act only once the watch is established, so that no version is missed.
    while !matches!(next().await, watcher::Event::InitDone) {}
    act();
    let mut seen = Vec::new();
    loop {
        if let watcher::Event::Apply(obj) = next().await {
            let obj = serde_json::to_value(&obj).expect("object as JSON");
            let done = ready(&obj).is_some_and(|c| c["status"] == "True")
                && obj["status"]["observedGeneration"] == obj["metadata"]["generation"];
            seen.push(obj);
            if done {
                return seen;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_wide_secret_is_progressing_then_healthy() {
    // An hour's override keeps the shadowing below in place for the test.
    let mut op = Operator::start(&["--override-interval", "1h"]).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    let tenant = op.tenant.clone();

    // Created while the operator is down: no status yet.
    op.stop();
    op.create(
        &tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "v1")]),
    )
    .await;
    let obj = fetch(&op, &tenant, "creds").await;
    assert!(obj.get("status").is_none(), "{obj}");
    run_health(&obj).expect(
        "Progressing",
        "Waiting for the operator to observe generation 1",
    );

    op.restart();
    op.wait_ready(&tenant, "creds", "True", "Replicated").await;
    let obj = fetch(&op, &tenant, "creds").await;
    assert_eq!(
        obj["status"]["resourceGroupSecretReplicationStatus"],
        json!({"rg-a": true, "rg-b": true})
    );
    run_health(&obj).expect("Healthy", "2 of 2 targets hold the current data");
    // Ready=True with a resource group still false, which the operator does
    // not report together today: the script still says Progressing.
    let mut partial = obj.clone();
    partial["status"]["resourceGroupSecretReplicationStatus"]["rg-b"] = json!(false);
    run_health(&partial).expect(
        "Progressing",
        "1 resource group(s) awaiting the current data: rg-b",
    );

    // A rotation while the operator is down: the status is a generation behind.
    op.stop();
    op.set_data(&tenant, "creds", &[("k", "v2")]).await;
    let obj = fetch(&op, &tenant, "creds").await;
    let generation = obj["metadata"]["generation"].as_i64().expect("generation");
    assert_eq!(
        obj["status"]["observedGeneration"].as_i64(),
        Some(generation - 1)
    );
    run_health(&obj).expect(
        "Progressing",
        &format!("Waiting for the operator to observe generation {generation}"),
    );
    // Back up, the operator first reports the new data as not yet written.
    let versions = versions_until_ready(raw_api(&op, &tenant), "creds", || op.restart()).await;
    let writing = versions
        .iter()
        .find(|o| ready(o).is_some_and(|c| c["reason"] == "Progressing"))
        .expect("a Ready=False/Progressing version before the writes");
    run_health(writing).expect("Progressing", "Progressing: 2 of 2 targets not yet written");
    let last = versions.last().expect("the Ready version");
    run_health(last).expect("Healthy", "2 of 2 targets hold the current data");

    // A resource-group secret of the same name shadows it in rg-a.
    op.create(
        a.name(),
        &generic_secret("creds", Scope::ResourceGroup, &[("k", "group")]),
    )
    .await;
    op.wait_ready(a.name(), "creds", "True", "Shadowing").await;
    health(&op, a.name(), "creds")
        .await
        .expect("Healthy", "shadows a tenant-wide secret");
    op.wait_ready(&tenant, "creds", "False", "Shadowed").await;
    health(&op, &tenant, "creds").await.expect(
        "Progressing",
        "Shadowed: 1 of 2 resource groups hold a shadowing resource-group secret",
    );

    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}

/// A Secret nobody asked the operator to manage.
fn unmanaged_secret(name: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some([("k".to_owned(), ByteString(b"theirs".to_vec()))].into()),
        ..Secret::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_and_blocked_objects_are_degraded() {
    let op = Operator::start(&["--max-tenant-wide-secrets", "1"]).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    let tenant = op.tenant.clone();

    op.secrets(a.name())
        .create(&PostParams::default(), &unmanaged_secret("creds"))
        .await
        .expect("creating the unmanaged Secret");
    op.create(
        &tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "ours")]),
    )
    .await;
    op.wait_ready(&tenant, "creds", "False", "Conflict").await;
    let conflict = health(&op, &tenant, "creds").await;
    conflict.expect("Degraded", "Conflict: 1 of 2 targets conflict: ");
    conflict.expect("Degraded", &format!("{}/creds", a.name()));

    // The second tenant-wide secret is over the quota of one.
    op.create(
        &tenant,
        &generic_secret("extra", Scope::TenantWide, &[("k", "x")]),
    )
    .await;
    op.wait_ready(&tenant, "extra", "False", "TenantWideQuotaExceeded")
        .await;
    health(&op, &tenant, "extra").await.expect(
        "Degraded",
        "TenantWideQuotaExceeded: at most 1 tenant-wide secrets per tenant",
    );

    // A resource-group secret in the tenant namespace.
    op.create(
        &tenant,
        &generic_secret("lost", Scope::ResourceGroup, &[("k", "v")]),
    )
    .await;
    op.wait_ready(&tenant, "lost", "False", "WrongNamespace")
        .await;
    health(&op, &tenant, "lost")
        .await
        .expect("Degraded", "WrongNamespace: ");

    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}

#[test]
fn lua_literals_survive_quotes_escapes_and_unicode() {
    let tricky = "a \"quoted\" \\ back\nslash ünï 名 \u{7f}1";
    let obj = json!({
        "metadata": {"generation": 1, "gone": null},
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "False", "reason": "InvalidSpec", "message": tricky}]
        }
    });
    let health = run_health(&obj);
    assert_eq!(health.status, "Degraded");
    assert_eq!(health.message, format!("InvalidSpec: {tricky}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn argocd_cm_patch_embeds_the_script_verbatim_and_applies() {
    let script = std::fs::read_to_string(script_path()).expect("reading health.lua");
    let patch_file = repo_root().join("deploy/argocd/argocd-cm-patch.yaml");
    let patch: Value = serde_yaml::from_str(
        &std::fs::read_to_string(&patch_file).expect("reading argocd-cm-patch.yaml"),
    )
    .expect("argocd-cm-patch.yaml is YAML");
    assert_eq!(
        patch["data"][CM_KEY].as_str(),
        Some(script.as_str()),
        "argocd-cm-patch.yaml must embed deploy/argocd/health.lua verbatim"
    );

    // The README's command, against a stand-in argocd-cm.
    let ns = TestNamespace::new("argocd").await;
    let out = kubectl(["-n", ns.name(), "create", "configmap", "argocd-cm"]);
    expect_success(&out, "creating argocd-cm");
    let patch_file = patch_file.to_string_lossy();
    let out = kubectl([
        "-n",
        ns.name(),
        "patch",
        "configmap",
        "argocd-cm",
        "--patch-file",
        &patch_file,
    ]);
    expect_success(&out, "kubectl patch argocd-cm");
    let jsonpath = format!("jsonpath={{.data.{}}}", CM_KEY.replace('.', "\\."));
    let out = kubectl([
        "-n",
        ns.name(),
        "get",
        "configmap",
        "argocd-cm",
        "-o",
        &jsonpath,
    ]);
    assert_eq!(expect_success(&out, "reading argocd-cm"), script);
    ns.cleanup().await;
}
