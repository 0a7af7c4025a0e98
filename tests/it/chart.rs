//! The Helm chart `charts/generic-secrets-operator`, with the built `helm`
//! against the real apiserver: lint, install, the shape of the installed
//! objects, the admission policy with the release's tenant namespace,
//! rendering options, uninstall. There is no kubelet: pods never run, only
//! the objects are checked.

use generic_secrets_operator::api::GenericSecret;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, PostParams};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::harness::{
    DEFAULT_TIMEOUT, TestNamespace, client, expect_success, helm, repo_root, unique_name,
    unique_suffix, wait_deleted, wait_for,
};
use crate::operator::install_crd;

const CHART: &str = "charts/generic-secrets-operator";
const CHART_NAME: &str = "generic-secrets-operator";
/// Label of the test namespace that the admission policy is bound to, so
/// that it never applies in other tests' namespaces.
const POLICY_LABEL: &str = "gso-chart-test";

fn chart_path() -> String {
    repo_root().join(CHART).to_string_lossy().into_owned()
}

/// The documents `helm template` prints, as JSON values.
fn parse_manifests(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).expect("rendered YAML"))
        .filter(|document| !document.is_null())
        .collect()
}

/// `helm template` of the chart as release `release` in `ns` with `args`.
fn render(release: &str, ns: &str, args: &[&str]) -> Vec<Value> {
    let chart = chart_path();
    let mut command = vec!["template", release, chart.as_str(), "-n", ns];
    command.extend_from_slice(args);
    let out = helm(&command);
    parse_manifests(&expect_success(&out, "helm template"))
}

/// The one rendered object of `kind`; panics if there is not exactly one.
fn only<'a>(manifests: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = manifests.iter().filter(|m| m["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind}, rendered {found:#?}");
    found[0]
}

fn has_pair(args: &[String], flag: &str, value: &str) -> bool {
    args.windows(2).any(|w| w[0] == flag && w[1] == value)
}

/// Deletes the release on drop if the test did not uninstall it (a panic):
/// its cluster-scoped objects would outlive the namespace.
struct Release {
    name: String,
    namespace: String,
    uninstalled: bool,
}

impl Drop for Release {
    fn drop(&mut self) {
        if !self.uninstalled {
            let _ = helm(["uninstall", &self.name, "-n", &self.namespace]);
        }
    }
}

#[test]
fn chart_crd_is_a_copy_of_crds_genericsecret_yaml() {
    let read = |path: &str| {
        std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    assert!(
        read("crds/genericsecret.yaml") == read(&format!("{CHART}/crds/genericsecret.yaml")),
        "{CHART}/crds/genericsecret.yaml is stale: cp crds/genericsecret.yaml {CHART}/crds/"
    );
}

#[test]
fn chart_renders_the_options() {
    let ns = "chart-render";
    let manifests = render(
        "gso",
        ns,
        &[
            "--set",
            "restApi.enabled=true,tenantNamespace=tenant-x,namespaceSelector=tenant=x",
            "--set",
            "leaderElection=false,adoptExisting=true,replicas=3",
        ],
    );
    let deployment = only(&manifests, "Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> =
        serde_json::from_value(container["args"].clone()).expect("args are strings");
    assert!(
        has_pair(&args, "--tenant-namespace", "tenant-x"),
        "{args:?}"
    );
    assert!(
        has_pair(&args, "--namespace-selector", "tenant=x"),
        "{args:?}"
    );
    assert!(has_pair(&args, "--rest-addr", "0.0.0.0:8000"), "{args:?}");
    assert!(args.iter().any(|a| a == "--rest-api"), "{args:?}");
    assert!(args.iter().any(|a| a == "--adopt-existing"), "{args:?}");
    assert!(!args.iter().any(|a| a == "--leader-election"), "{args:?}");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert!(
        container["ports"]
            .as_array()
            .expect("ports")
            .contains(&json!({"name": "rest", "containerPort": 8000})),
        "{container:#}"
    );
    let service = only(&manifests, "Service");
    assert!(
        service["spec"]["ports"]
            .as_array()
            .expect("service ports")
            .iter()
            .any(|p| p["name"] == "rest" && p["port"] == 8000),
        "{service:#}"
    );
    // The admission policy follows the tenant namespace.
    let policy = only(&manifests, "ValidatingAdmissionPolicy");
    assert!(
        policy["spec"]["variables"]
            .as_array()
            .expect("variables")
            .contains(&json!({"name": "tenantNamespace", "expression": "'tenant-x'"})),
        "{policy:#}"
    );

    // Off by default: no REST API; the policy can be left out.
    let manifests = render("gso", ns, &["--set", "admissionPolicy.enabled=false"]);
    let deployment = only(&manifests, "Deployment");
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(!args.contains("--rest-api"), "{args}");
    assert!(!args.contains("8000"), "{args}");
    assert!(
        !manifests.iter().any(|m| m["kind"]
            .as_str()
            .is_some_and(|k| k.starts_with("ValidatingAdmissionPolicy"))),
        "admissionPolicy.enabled=false still renders a policy"
    );
}

/// A `GenericSecret` of `scope`, created as a dry run: it goes through
/// admission but is never stored.
async fn dry_run_create(client: &Client, ns: &str, scope: &str) -> Result<(), kube::Error> {
    let object: GenericSecret = serde_json::from_value(json!({
        "apiVersion": "aicore.dev/v1alpha1",
        "kind": "GenericSecret",
        "metadata": {"name": format!("probe-{}", unique_suffix())},
        "spec": {"scope": scope, "data": {"k": "YQ=="}},
    }))
    .expect("GenericSecret");
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    Api::<GenericSecret>::namespaced(client.clone(), ns)
        .create(&params, &object)
        .await
        .map(drop)
}

#[tokio::test(flavor = "multi_thread")]
async fn chart_installs_the_operator_and_uninstalls_cleanly() {
    // The CRD is there before the chart: Helm then skips the chart's crds/.
    install_crd();
    let chart = chart_path();
    expect_success(&helm(["lint", "--strict", chart.as_str()]), "helm lint");

    let selector = unique_suffix();
    let ns = TestNamespace::with_labels("chart", &[(POLICY_LABEL, selector.as_str())]).await;
    let ns_name = ns.name();
    let client = client().await;
    let release = unique_name("gso");
    let fullname = format!("{release}-{CHART_NAME}");
    // The admission policy applies only in this test's namespace.
    let values = [
        "--set",
        "admissionPolicy.enabled=true",
        "--set-string",
        &format!("admissionPolicy.namespaceSelector.matchLabels.{POLICY_LABEL}={selector}"),
    ];
    // Never install a policy that would reach other tests' namespaces.
    let binding = only(
        &render(&release, ns_name, &values),
        "ValidatingAdmissionPolicyBinding",
    )
    .clone();
    assert_eq!(
        binding["spec"]["matchResources"]["namespaceSelector"],
        json!({"matchLabels": {POLICY_LABEL: selector}}),
        "the binding must be restricted to the test namespace"
    );

    let mut install = vec!["install", release.as_str(), chart.as_str(), "-n", ns_name];
    install.extend_from_slice(&values);
    let mut installed = Release {
        name: release.clone(),
        namespace: ns_name.to_owned(),
        uninstalled: false,
    };
    expect_success(&helm(&install), "helm install");

    // The Deployment, as the values say.
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns_name)
        .get(&fullname)
        .await
        .expect("the Deployment");
    assert_eq!(
        deployment.metadata.labels.as_ref().expect("labels")["app.kubernetes.io/managed-by"],
        "Helm"
    );
    let spec = deployment.spec;
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(pod.service_account_name.as_deref(), Some(fullname.as_str()));
    let container = &pod.containers[0];
    let args = container.args.clone().expect("args");
    assert_eq!(args.first().map(String::as_str), Some("run"), "{args:?}");
    assert!(has_pair(&args, "--tenant-namespace", ns_name), "{args:?}");
    assert!(args.iter().any(|a| a == "--leader-election"), "{args:?}");
    assert!(!args.iter().any(|a| a == "--rest-api"), "{args:?}");
    let env = container.env.as_ref().expect("env");
    assert!(env.iter().any(|e| e.name == "POD_NAME"), "{env:?}");
    let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(
        probe_path(&container.liveness_probe).as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        probe_path(&container.readiness_probe).as_deref(),
        Some("/readyz")
    );

    // Its identity and permissions.
    Api::<ServiceAccount>::namespaced(client.clone(), ns_name)
        .get(&fullname)
        .await
        .expect("the ServiceAccount");
    Api::<Service>::namespaced(client.clone(), ns_name)
        .get(&fullname)
        .await
        .expect("the Service");
    let roles = Api::<ClusterRole>::all(client.clone());
    let role = roles.get(&fullname).await.expect("the ClusterRole");
    let rules = role.rules.expect("rules");
    let grants = |group: &str, resource: &str| {
        rules.iter().any(|rule| {
            rule.api_groups.iter().flatten().any(|g| g == group)
                && rule.resources.iter().flatten().any(|r| r == resource)
        })
    };
    assert!(grants("aicore.dev", "genericsecrets"), "{rules:?}");
    assert!(grants("", "secrets"), "{rules:?}");
    let bindings = Api::<ClusterRoleBinding>::all(client.clone());
    let role_binding = bindings
        .get(&fullname)
        .await
        .expect("the ClusterRoleBinding");
    let subject = &role_binding.subjects.expect("subjects")[0];
    assert_eq!(
        (subject.name.as_str(), subject.namespace.as_deref()),
        (fullname.as_str(), Some(ns_name))
    );

    // The admission policy knows the release namespace as the tenant
    // namespace (it takes effect once the apiserver has loaded it).
    let policy_name = format!("{fullname}-scope.aicore.dev");
    let rejection = wait_for(
        "the admission policy to take effect",
        DEFAULT_TIMEOUT,
        || {
            let client = client.clone();
            async move {
                match dry_run_create(&client, ns_name, "ResourceGroup").await {
                    Err(kube::Error::Api(status)) => Ok(status.message),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;
    assert!(
        rejection.contains("needs a resource-group namespace") && rejection.contains(&policy_name),
        "{rejection}"
    );
    dry_run_create(&client, ns_name, "TenantWide")
        .await
        .expect("a TenantWide object in the tenant namespace is admitted");

    // Uninstalling removes the release's cluster-scoped objects, not the CRD.
    expect_success(
        &helm(["uninstall", release.as_str(), "-n", ns_name]),
        "helm uninstall",
    );
    installed.uninstalled = true;
    wait_deleted(&roles, &fullname, DEFAULT_TIMEOUT).await;
    wait_deleted(&bindings, &fullname, DEFAULT_TIMEOUT).await;
    let policies = Api::<ValidatingAdmissionPolicy>::all(client.clone());
    wait_deleted(&policies, &policy_name, DEFAULT_TIMEOUT).await;
    let policy_bindings = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone());
    wait_deleted(&policy_bindings, &policy_name, DEFAULT_TIMEOUT).await;
    Api::<CustomResourceDefinition>::all(client.clone())
        .get("genericsecrets.aicore.dev")
        .await
        .expect("the CRD stays after helm uninstall");

    ns.cleanup().await;
}
