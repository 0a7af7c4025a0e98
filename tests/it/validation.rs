//! What the apiserver itself refuses, through `kubectl apply` as a user runs
//! it: the CRD schema and its CEL rules. No operator needed.

use crate::harness::{TestNamespace, kubectl};
use crate::operator::install_crd;

/// `kubectl apply` of `yaml` in `ns`; returns (success, stderr).
fn apply(ns: &str, yaml: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("gso-{}", crate::harness::unique_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("object.yaml");
    std::fs::write(&file, yaml).expect("write manifest");
    let out = kubectl(["apply", "-n", ns, "-f", &file.to_string_lossy()]);
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn manifest(spec: &str) -> String {
    format!(
        "apiVersion: aicore.dev/v1alpha1\nkind: GenericSecret\nmetadata:\n  name: subject\nspec:\n{spec}"
    )
}

fn assert_rejected(ns: &str, spec: &str, message: &str) {
    let (ok, stderr) = apply(ns, &manifest(spec));
    assert!(!ok, "the apiserver accepted:\n{spec}");
    assert!(
        stderr.contains(message),
        "rejection of\n{spec}\nshould say {message:?}; kubectl said: {stderr}"
    );
}

/// Specs the apiserver refuses, with what its message must say.
const REFUSED: &[(&str, &str)] = &[
    ("  data: {token: 'not base64!'}\n", "spec.data.token"),
    ("  data: {}\n", "should have at least 1 properties"),
    (
        "  data: {'bad/key': YQ==}\n",
        "data keys must consist of alphanumerics",
    ),
    (
        "  data: {k: YQ==}\n  labels: {team: ml}\n",
        "label keys must start with ext.ai.sap.com/",
    ),
    (
        "  data: {k: YQ==}\n  dataFrom: {secretRef: {name: src}}\n",
        "exactly one of data or dataFrom must be set",
    ),
    (
        "  scope: Everywhere\n  data: {k: YQ==}\n",
        "Unsupported value",
    ),
    (
        "  secretName: bad.name\n  data: {k: YQ==}\n",
        "spec.secretName",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn invalid_objects_are_refused_with_clear_messages() {
    install_crd();
    let ns = TestNamespace::new("validation").await;
    let ns_name = ns.name();
    for (spec, message) in REFUSED {
        assert_rejected(ns_name, spec, message);
    }
    let long = format!("  secretName: {}\n  data: {{k: YQ==}}\n", "a".repeat(254));
    assert_rejected(ns_name, &long, "spec.secretName");
    let long_name = manifest("  data: {k: YQ==}\n")
        .replace("name: subject", &format!("name: {}", "a".repeat(254)));
    let (ok, stderr) = apply(ns_name, &long_name);
    assert!(!ok && stderr.contains("253"), "{stderr}");
    // Nothing of it was stored.
    let api: kube::Api<generic_secrets_operator::api::GenericSecret> =
        kube::Api::namespaced(crate::harness::client().await, ns_name);
    assert!(
        api.list(&Default::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    ns.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scope_and_immutable_labels_cannot_change() {
    install_crd();
    let ns = TestNamespace::new("immutable").await;
    let ns_name = ns.name();
    let created = "  scope: TenantWide\n  data: {k: YQ==}\n  labels: {ext.ai.sap.com/document-grounding: 'true', ext.ai.sap.com/team: ml}\n";
    let (ok, stderr) = apply(ns_name, &manifest(created));
    assert!(ok, "valid object refused: {stderr}");

    assert_rejected(
        ns_name,
        "  scope: ResourceGroup\n  data: {k: YQ==}\n  labels: {ext.ai.sap.com/document-grounding: 'true'}\n",
        "scope is immutable",
    );
    assert_rejected(
        ns_name,
        "  scope: TenantWide\n  data: {k: YQ==}\n  labels: {ext.ai.sap.com/document-grounding: 'false'}\n",
        "cannot change after creation",
    );
    assert_rejected(
        ns_name,
        "  scope: TenantWide\n  data: {k: YQ==}\n  labels: {ext.ai.sap.com/documentRepositoryType: vector}\n",
        "cannot change after creation",
    );
    // Other labels and the data may change.
    let changed = "  scope: TenantWide\n  data: {k: Yg==}\n  labels: {ext.ai.sap.com/document-grounding: 'true', ext.ai.sap.com/team: ai}\n";
    let (ok, stderr) = apply(ns_name, &manifest(changed));
    assert!(ok, "allowed change refused: {stderr}");
    ns.cleanup().await;
}

#[test]
fn checked_in_crd_matches_the_rust_types() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_generic-secrets-operator"))
        .arg("crd")
        .output()
        .expect("running generic-secrets-operator crd");
    assert!(out.status.success(), "crd subcommand failed");
    let generated = String::from_utf8(out.stdout).expect("utf-8");
    let checked_in =
        std::fs::read_to_string(crate::harness::repo_root().join("crds/genericsecret.yaml"))
            .expect("crds/genericsecret.yaml");
    assert!(
        generated == checked_in,
        "crds/genericsecret.yaml is stale: run `cargo run -- crd > crds/genericsecret.yaml`"
    );
}
