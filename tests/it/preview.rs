//! `generic-secrets-operator preview -f <manifest>`: the real binary against
//! the test control plane, as a user runs it before `kubectl apply`. Each
//! test has its own installation (tenant namespace, namespace selector) and
//! checks the answer, the exit code, and that nothing was written.

use std::process::{Command, Output};

use generic_secrets_operator::api::{GenericSecret, Scope};
use generic_secrets_operator::replicas::MANAGED_BY_LABEL;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use serde_json::{Value, json};

use crate::harness::{control_plane, scratch_dir, unique_suffix};
use crate::operator::{INSTANCE_LABEL, Operator, b64, generic_secret};

/// Runs `preview` for `manifest` with `op`'s planner flags (and `extra`).
fn preview(op: &Operator, manifest: &Value, extra: &[&str]) -> Output {
    let path = scratch_dir().join(format!("preview-{}.json", unique_suffix()));
    std::fs::write(&path, manifest.to_string()).expect("writing the manifest");
    let selector = format!("{INSTANCE_LABEL}={}", op.id);
    Command::new(env!("CARGO_BIN_EXE_generic-secrets-operator"))
        .arg("preview")
        .arg("-f")
        .arg(&path)
        .arg("--kubeconfig")
        .arg(&control_plane().kubeconfig)
        .args(["--tenant-namespace", &op.tenant])
        .args(["--namespace-selector", &selector])
        .args(extra)
        .output()
        .expect("running preview")
}

/// `preview -o json`, parsed; also returns the exit code.
fn preview_json(op: &Operator, manifest: &Value) -> (i32, Value) {
    let out = preview(op, manifest, &["-o", "json"]);
    let code = out.status.code().expect("an exit code");
    let parsed = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "preview -o json printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, parsed)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn manifest(name: &str, ns: &str, scope: &str, value: &str) -> Value {
    json!({
        "apiVersion": "aicore.dev/v1alpha1",
        "kind": "GenericSecret",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"scope": scope, "data": {"key": b64(value)}},
    })
}

/// (namespace, action) of every Secret in a JSON preview.
pub fn actions(preview: &Value) -> Vec<(String, String)> {
    let mut actions: Vec<(String, String)> = preview["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .map(|s| {
            let field = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
            (field("namespace"), field("action"))
        })
        .collect();
    actions.sort();
    actions
}

#[tokio::test]
async fn a_clean_object_lists_its_creates_and_writes_nothing() {
    let op = Operator::configure(&[]).await;
    let groups = op.resource_groups(2).await;
    let m = manifest("clean", &op.tenant, "TenantWide", "v1");

    let out = preview(&op, &m, &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for rg in &groups {
        assert!(
            said.contains(&format!("create    {}/clean", rg.name())),
            "{said}"
        );
    }
    assert!(said.contains("Ready would be True (Replicated)"), "{said}");

    let (code, json) = preview_json(&op, &m);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["verdict"], "replicates");
    assert_eq!(json["exists"], false);
    assert_eq!(json["ready"]["status"], "True");
    let want: Vec<(String, String)> = groups
        .iter()
        .map(|g| (g.name().to_owned(), "create".to_owned()))
        .collect();
    assert_eq!(actions(&json), want);

    // A dry run only: neither the object nor any Secret exists.
    assert!(
        op.gsecs(&op.tenant)
            .get_opt("clean")
            .await
            .expect("get")
            .is_none()
    );
    for rg in &groups {
        op.assert_no_secret(rg.name(), "clean").await;
    }
    for rg in groups {
        rg.cleanup().await;
    }
    op.cleanup().await;
}

#[tokio::test]
async fn an_unmanaged_secret_in_a_target_is_a_conflict() {
    let op = Operator::configure(&[]).await;
    let groups = op.resource_groups(2).await;
    let taken = groups[1].name();
    let unmanaged = Secret {
        metadata: ObjectMeta {
            name: Some("creds".into()),
            ..ObjectMeta::default()
        },
        string_data: Some([("mine".to_owned(), "x".to_owned())].into()),
        ..Secret::default()
    };
    op.secrets(taken)
        .create(&PostParams::default(), &unmanaged)
        .await
        .expect("creating the unmanaged Secret");
    let m = manifest("creds", &op.tenant, "TenantWide", "v1");

    let out = preview(&op, &m, &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains(&format!("CONFLICT  {taken}/creds")), "{said}");
    assert!(
        said.contains("not created by this generic-secrets-operator"),
        "{said}"
    );

    let (code, json) = preview_json(&op, &m);
    assert_eq!(code, 3, "{json}");
    assert_eq!(json["verdict"], "needsAction");
    assert_eq!(json["ready"]["reason"], "Conflict");
    let mut want = vec![
        (groups[0].name().to_owned(), "create".to_owned()),
        (taken.to_owned(), "conflict".to_owned()),
    ];
    want.sort();
    assert_eq!(actions(&json), want);
    // The unmanaged Secret is untouched.
    let secret = op.secrets(taken).get("creds").await.expect("get");
    assert!(
        !secret
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key(MANAGED_BY_LABEL)
    );
    for rg in groups {
        rg.cleanup().await;
    }
    op.cleanup().await;
}

#[tokio::test]
async fn a_sixth_tenant_wide_secret_exceeds_the_quota() {
    let op = Operator::configure(&[]).await;
    let groups = op.resource_groups(1).await;
    for i in 1..=5 {
        let gs = generic_secret(&format!("tw-{i}"), Scope::TenantWide, &[("k", "v")]);
        op.create(&op.tenant, &gs).await;
    }
    let m = manifest("tw-6", &op.tenant, "TenantWide", "v1");

    let out = preview(&op, &m, &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("TenantWideQuotaExceeded"), "{said}");
    assert!(said.contains("at most 5 tenant-wide secrets"), "{said}");

    let (code, json) = preview_json(&op, &m);
    assert_eq!(code, 2, "{json}");
    assert_eq!(json["verdict"], "blocked");
    assert_eq!(json["ready"]["status"], "False");
    assert_eq!(json["ready"]["reason"], "TenantWideQuotaExceeded");
    assert_eq!(actions(&json), Vec::<(String, String)>::new());
    assert!(
        op.gsecs(&op.tenant)
            .get_opt("tw-6")
            .await
            .expect("get")
            .is_none()
    );
    for rg in groups {
        rg.cleanup().await;
    }
    op.cleanup().await;
}

#[tokio::test]
async fn an_update_of_a_replicated_object_lists_its_updates() {
    let op = Operator::start(&[]).await;
    let groups = op.resource_groups(2).await;
    let gs: GenericSecret = serde_json::from_value(manifest("rot", &op.tenant, "TenantWide", "v1"))
        .expect("a GenericSecret");
    op.create(&op.tenant, &gs).await;
    op.wait_ready(&op.tenant, "rot", "True", "Replicated").await;
    let names = |action: &str| -> Vec<(String, String)> {
        groups
            .iter()
            .map(|g| (g.name().to_owned(), action.to_owned()))
            .collect()
    };

    // The manifest as applied: nothing to do.
    let (code, same) = preview_json(&op, &manifest("rot", &op.tenant, "TenantWide", "v1"));
    assert_eq!(code, 0, "{same}");
    assert_eq!(same["exists"], true);
    assert_eq!(actions(&same), names("unchanged"));

    // New data: every replica is updated.
    let rotated = manifest("rot", &op.tenant, "TenantWide", "v2");
    let (code, json) = preview_json(&op, &rotated);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["verdict"], "replicates");
    assert_eq!(actions(&json), names("update"));
    let out = preview(&op, &rotated, &[]);
    assert!(text(&out).contains("existing object"), "{}", text(&out));

    // Still the old data everywhere: the preview wrote nothing.
    for rg in &groups {
        op.wait_secret_data(rg.name(), "rot", &[("key", "v1")])
            .await;
    }
    let stored = op.gsecs(&op.tenant).get("rot").await.expect("get");
    assert_eq!(stored.spec, gs.spec);
    for rg in groups {
        rg.cleanup().await;
    }
    op.cleanup().await;
}
