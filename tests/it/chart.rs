//! The Helm chart `charts/generic-secrets-operator`, with the built `helm`
//! against the real apiserver: lint, install, the shape of the installed
//! objects, the admission policy with the release's tenant namespace,
//! rendering options, uninstall. There is no kubelet: pods never run, only
//! the objects are checked.

use std::path::{Path, PathBuf};

use generic_secrets_operator::api::{GenericSecret, Scope};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

use crate::harness::{
    DEFAULT_TIMEOUT, TestNamespace, client, control_plane, expect_success, helm, repo_root,
    unique_name, unique_suffix, wait_deleted, wait_for,
};
use crate::harness::{admin_kubeconfig_edited, kubectl, scratch_dir};
use crate::operator::{Operator, generic_secret, install_crd};

mod rest;
mod rollout;

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
    serde_saphyr::from_multiple::<Value>(yaml)
        .expect("rendered YAML")
        .into_iter()
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
fn deploy_manifests_are_the_rendered_chart() {
    let script = repo_root().join("deploy/render.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .env("HELM", control_plane().bin_dir.join("helm"))
        .output()
        .expect("running deploy/render.sh");
    let rendered = expect_success(&out, "deploy/render.sh");
    let path = repo_root().join("deploy/generic-secrets-operator.yaml");
    let committed = std::fs::read_to_string(&path).expect("deploy/generic-secrets-operator.yaml");
    assert!(
        rendered == committed,
        "deploy/generic-secrets-operator.yaml is stale: run `make manifests`"
    );
    let manifests = parse_manifests(&committed);
    for kind in [
        "CustomResourceDefinition",
        "Deployment",
        "ClusterRole",
        "Role",
    ] {
        assert!(manifests.iter().any(|m| m["kind"] == kind), "no {kind}");
    }
}

#[test]
fn chart_renders_the_options() {
    let ns = "chart-render";
    let manifests = render(
        "gso",
        ns,
        &[
            "--set",
            "restApi.enabled=true,restApi.allowPlainHttp=true,tenantNamespace=tenant-x,namespaceSelector=tenant=x",
            "--set",
            "leaderElection.enabled=false,adoptExisting=true,replicas=1,logLevel=debug",
            "--set",
            "metrics.serviceMonitor.enabled=true,metrics.serviceMonitor.labels.release=prom",
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
    assert!(
        !manifests.iter().any(|m| m["kind"] == "Role"),
        "no Lease permissions without leader election"
    );
    assert!(
        container["env"]
            .as_array()
            .expect("env")
            .contains(&json!({"name": "RUST_LOG", "value": "debug"})),
        "{container:#}"
    );
    assert_eq!(deployment["spec"]["replicas"], 1);
    let monitor = only(&manifests, "ServiceMonitor");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prom");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert!(
        !manifests.iter().any(|m| m["kind"] == "PodDisruptionBudget"),
        "one replica needs no disruption budget"
    );
    // Several replicas without leader election would all reconcile.
    let chart = chart_path();
    let refused = helm([
        "template",
        "gso",
        chart.as_str(),
        "--set",
        "leaderElection.enabled=false,replicas=2",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("needs leaderElection.enabled"), "{stderr}");
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

    // Off by default: no REST API, no ServiceMonitor; the policy can be
    // left out. Two replicas get a disruption budget.
    let manifests = render("gso", ns, &["--set", "admissionPolicy.enabled=false"]);
    let deployment = only(&manifests, "Deployment");
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(!args.contains("--rest-api"), "{args}");
    assert!(!args.contains("8000"), "{args}");
    assert!(!manifests.iter().any(|m| m["kind"] == "ServiceMonitor"));
    assert_eq!(
        only(&manifests, "PodDisruptionBudget")["spec"]["maxUnavailable"],
        1
    );
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

/// `kubectl apply` of a GenericSecret of `scope` in `ns`, expected to be
/// refused; returns kubectl's error output.
fn kubectl_apply_error(ns: &str, scope: &str) -> String {
    let manifest = format!(
        "apiVersion: aicore.dev/v1alpha1\nkind: GenericSecret\nmetadata:\n  name: creds\n\
         spec:\n  scope: {scope}\n  data:\n    token: dDBw\n"
    );
    let path = scratch_dir().join(format!("gsec-{}.yaml", unique_suffix()));
    std::fs::write(&path, manifest).expect("writing the manifest");
    let out = kubectl(["apply", "-n", ns, "-f", &path.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "kubectl apply of {scope} in {ns} was admitted"
    );
    eprintln!("$ kubectl apply -n {ns} -f <{scope} GenericSecret>\n{stderr}");
    stderr
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
    assert!(has_pair(&args, "--lease-duration", "10s"), "{args:?}");
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

    // What a user sees from `kubectl apply`.
    let elsewhere = TestNamespace::with_labels(
        "chart-rg",
        &[
            (POLICY_LABEL, selector.as_str()),
            ("aicore.dev/resource-group", "rg-1"),
        ],
    )
    .await;
    let refused = kubectl_apply_error(elsewhere.name(), "TenantWide");
    assert!(
        refused.contains(&format!("only allowed in the tenant namespace {ns_name}"))
            && refused.contains(&format!("create it in namespace {ns_name}")),
        "{refused}"
    );
    let refused = kubectl_apply_error(ns_name, "ResourceGroup");
    assert!(
        refused.contains("needs a resource-group namespace")
            && refused.contains("label this namespace aicore.dev/resource-group="),
        "{refused}"
    );
    elsewhere.cleanup().await;

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

/// A copy of the admin kubeconfig that authenticates with `token` instead.
fn kubeconfig_with_token(token: &str, name: &str) -> PathBuf {
    admin_kubeconfig_edited(name, |config| {
        config["users"][0]["user"] = json!({ "token": token });
    })
}

async fn client_from(kubeconfig: &Path) -> Client {
    let file = Kubeconfig::read_from(kubeconfig).expect("reading the kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .expect("client configuration");
    Client::try_from(config).expect("client")
}

fn assert_forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

/// The chart's RBAC is enough and no more: the operator binary runs with a
/// token of the chart's ServiceAccount (TokenRequest, as a pod gets one),
/// leads, replicates, rotates and cleans up, while that identity is refused
/// what the operator does not need.
#[tokio::test(flavor = "multi_thread")]
async fn the_operator_runs_with_the_chart_service_account_and_no_more() {
    let mut op = Operator::configure(&["--leader-election"]).await;
    let tenant = op.tenant.clone();
    let release = unique_name("gso");
    let fullname = format!("{release}-{CHART_NAME}");
    let chart = chart_path();
    // No kubelet runs the chart's pods: the test runs the same binary with a
    // token of the chart's ServiceAccount. The admission policy is left out:
    // it would apply to other tests' namespaces too.
    let install = [
        "install",
        release.as_str(),
        chart.as_str(),
        "-n",
        tenant.as_str(),
        "--set",
        "admissionPolicy.enabled=false",
    ];
    let mut installed = Release {
        name: release.clone(),
        namespace: tenant.clone(),
        uninstalled: false,
    };
    expect_success(&helm(install), "helm install");

    let token = expect_success(
        &kubectl([
            "create",
            "token",
            fullname.as_str(),
            "-n",
            tenant.as_str(),
            "--duration",
            "1h",
        ]),
        "kubectl create token",
    );
    let kubeconfig = kubeconfig_with_token(token.trim(), &op.id);
    op.start_as(kubeconfig.clone());

    // Sufficient: lead, replicate, rotate, delete with cleanup.
    let rgs = [
        op.resource_group("rg-a").await,
        op.resource_group("rg-b").await,
    ];
    let gs = generic_secret("creds", Scope::TenantWide, &[("token", "v1")]);
    op.create(&tenant, &gs).await;
    op.wait_ready(&tenant, "creds", "True", "Replicated").await;
    op.set_data(&tenant, "creds", &[("token", "v2")]).await;
    for rg in &rgs {
        op.wait_secret_data(rg.name(), "creds", &[("token", "v2")])
            .await;
    }
    op.wait_ready(&tenant, "creds", "True", "Replicated").await;
    let lease = Api::<Lease>::namespaced(op.client.clone(), &tenant)
        .get("generic-secrets-operator")
        .await
        .expect("the operator holds the Lease");
    assert!(lease.spec.and_then(|s| s.holder_identity).is_some());
    op.delete(&tenant, "creds").await;
    for rg in &rgs {
        op.wait_secret_absent(rg.name(), "creds").await;
    }
    // The deletion's Normal event was published too (or it would log a 403).
    let logs = op.logs();
    assert!(logs.contains("replicas removed") || logs.contains("replica deleted"));
    assert!(
        !logs.to_lowercase().contains("forbidden"),
        "the operator was refused something it needs:\n{logs}"
    );

    // Narrow: the same identity is refused everything else.
    let sa = client_from(&kubeconfig).await;
    let rg = rgs[0].name();
    assert_forbidden(
        "listing ConfigMaps",
        Api::<ConfigMap>::namespaced(sa.clone(), &tenant)
            .list(&ListParams::default())
            .await,
    );
    assert_forbidden(
        "reading another Lease in the tenant namespace",
        Api::<Lease>::namespaced(sa.clone(), &tenant)
            .get("kube-scheduler")
            .await,
    );
    assert_forbidden(
        "listing Leases in a resource group",
        Api::<Lease>::namespaced(sa.clone(), rg)
            .list(&ListParams::default())
            .await,
    );
    assert_forbidden(
        "deleting a GenericSecret",
        Api::<GenericSecret>::namespaced(sa.clone(), &tenant)
            .delete("anything", &DeleteParams::default())
            .await,
    );
    assert_forbidden(
        "listing Deployments (rollout.enabled is off)",
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(sa.clone(), rg)
            .list(&ListParams::default())
            .await,
    );
    assert_forbidden(
        "deleting a namespace",
        Api::<Namespace>::all(sa.clone())
            .delete(rg, &DeleteParams::default())
            .await,
    );
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "probe"}, "data": {"k": "YQ=="}
    }))
    .expect("Secret");
    assert_forbidden(
        "replacing (PUT) a Secret",
        Api::<Secret>::namespaced(sa.clone(), rg)
            .replace("probe", &PostParams::default(), &secret)
            .await,
    );

    op.cleanup().await;
    expect_success(
        &helm(["uninstall", release.as_str(), "-n", tenant.as_str()]),
        "helm uninstall",
    );
    installed.uninstalled = true;
    for rg in rgs {
        rg.cleanup().await;
    }
}
