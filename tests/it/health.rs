//! What GitOps tools make of real objects: `gso-health` (Go, built by
//! `tests/control-plane/build.sh` from `tests/control-plane/cmd/gso-health`)
//! runs Argo CD's Lua VM or kstatus on an object's JSON as the apiserver
//! serves it. Shared by the `argocd` and `kstatus` tests, with the helpers
//! that bring objects into each state.

use std::io::Write;
use std::process::{Command, Stdio};

use futures::{StreamExt, TryStreamExt};
use generic_secrets_operator::api::GenericSecret;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher;
use serde_json::Value;

use crate::harness::repo_root;
use crate::operator::{Operator, REACT};

/// A tool's verdict: Argo CD's health or kstatus' status, and the message.
#[derive(Debug, serde::Deserialize)]
pub struct Verdict {
    pub status: String,
    pub message: String,
}

impl Verdict {
    pub fn expect(&self, status: &str, message_part: &str) {
        assert!(
            self.status == status && self.message.contains(message_part),
            "expected {status} with a message containing {message_part:?}, got {self:?}"
        );
    }
}

/// Runs `gso-health <args>` with `obj` on stdin; `what` labels the output line.
pub fn judge(what: &str, args: &[&str], obj: &Value) -> Verdict {
    let bin = repo_root().join("target/control-plane/bin/gso-health");
    let mut child = Command::new(&bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "running {}: {e} (built by tests/control-plane/build.sh: make control-plane)",
                bin.display()
            )
        });
    let input = serde_json::to_vec(obj).expect("object as JSON");
    child
        .stdin
        .take()
        .expect("gso-health stdin")
        .write_all(&input)
        .expect("writing the object to gso-health");
    let out = child.wait_with_output().expect("waiting for gso-health");
    assert!(
        out.status.success(),
        "gso-health {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let verdict: Verdict = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("gso-health printed {:?}: {e}", out.stdout));
    let name = |key: &str| obj["metadata"][key].as_str().unwrap_or("?").to_owned();
    eprintln!(
        "{what} of {}/{}: {} | {}",
        name("namespace"),
        name("name"),
        verdict.status,
        verdict.message
    );
    verdict
}

pub fn raw_api(op: &Operator, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        op.client.clone(),
        ns,
        &ApiResource::erase::<GenericSecret>(&()),
    )
}

/// The object as the apiserver serves it.
pub async fn fetch(op: &Operator, ns: &str, name: &str) -> Value {
    let obj = raw_api(op, ns)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("getting {ns}/{name}: {e}"));
    serde_json::to_value(&obj).expect("object as JSON")
}

/// The Ready condition of a raw object.
pub fn ready(obj: &Value) -> Option<&Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

/// Watches `name` while `act` runs and returns every version seen until
/// Ready=True for the current generation (the transient ones included).
pub async fn versions_until_ready(
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
