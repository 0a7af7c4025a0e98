//! The chart's REST API values: TLS from a mounted Secret, plain HTTP only
//! when asked for, and the sample caller roles (off by default).

use serde_json::{Value, json};

use super::{chart_path, has_pair, only, render};
use crate::harness::helm;

fn args_of(manifests: &[Value]) -> Vec<String> {
    let container = &only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    serde_json::from_value(container["args"].clone()).expect("args are strings")
}

#[test]
fn chart_serves_the_rest_api_over_tls_from_a_mounted_secret() {
    let manifests = render(
        "gso",
        "chart-rest",
        &[
            "--set",
            "restApi.enabled=true,restApi.tls.secretName=gso-rest-tls",
        ],
    );
    let args = args_of(&manifests);
    let dir = "/etc/generic-secrets-operator/rest-tls";
    assert!(has_pair(&args, "--rest-addr", "0.0.0.0:8000"), "{args:?}");
    assert!(
        has_pair(&args, "--rest-tls-cert", &format!("{dir}/tls.crt")),
        "{args:?}"
    );
    assert!(
        has_pair(&args, "--rest-tls-key", &format!("{dir}/tls.key")),
        "{args:?}"
    );
    assert!(
        has_pair(&args, "--rest-max-concurrent-requests", "64"),
        "{args:?}"
    );
    assert!(
        !args.iter().any(|a| a == "--rest-allow-plain-http"),
        "{args:?}"
    );
    let pod = &only(&manifests, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"],
        json!([{"name": "rest-tls", "secret": {"secretName": "gso-rest-tls"}}])
    );
    assert_eq!(
        pod["containers"][0]["volumeMounts"],
        json!([{"name": "rest-tls", "mountPath": dir, "readOnly": true}])
    );

    // Plain HTTP only when asked for; neither is a render error.
    let plain = render(
        "gso",
        "chart-rest",
        &["--set", "restApi.enabled=true,restApi.allowPlainHttp=true"],
    );
    let args = args_of(&plain);
    assert!(
        args.iter().any(|a| a == "--rest-allow-plain-http"),
        "{args:?}"
    );
    assert!(
        !args.iter().any(|a| a.starts_with("--rest-tls")),
        "{args:?}"
    );
    let chart = chart_path();
    let refused = helm([
        "template",
        "gso",
        chart.as_str(),
        "--set",
        "restApi.enabled=true",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("restApi.enabled needs restApi.tls.secretName"),
        "{stderr}"
    );
}

#[test]
fn chart_ships_sample_caller_roles_only_when_asked() {
    let kinds = |manifests: &[Value], kind: &str| -> Vec<String> {
        let named = manifests.iter().filter(|m| m["kind"] == kind);
        named
            .map(|m| {
                m["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    let default = render("gso", "chart-rest", &[]);
    assert!(
        !kinds(&default, "ClusterRole")
            .iter()
            .any(|n| n.contains("rest-api"))
    );
    let subject = "restApi.callerRoles.bindings[0].subjects[0]";
    let manifests = render(
        "gso",
        "chart-rest",
        &[
            "--set",
            "restApi.callerRoles.enabled=true",
            "--set",
            "restApi.callerRoles.bindings[0].namespace=team-a,restApi.callerRoles.bindings[0].role=editor",
            "--set",
            &format!("{subject}.kind=Group,{subject}.name=team-a-admins"),
        ],
    );
    let roles: Vec<&Value> = manifests
        .iter()
        .filter(|m| {
            m["kind"] == "ClusterRole"
                && m["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.contains("rest-api"))
        })
        .collect();
    let editor = roles
        .iter()
        .find(|r| r["metadata"]["name"] == "gso-generic-secrets-operator-rest-api-editor")
        .expect("the editor role");
    assert_eq!(
        editor["rules"],
        json!([
            {"apiGroups": ["aicore.dev"], "resources": ["genericsecrets"],
             "verbs": ["get", "list", "create", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "patch", "delete"]}
        ])
    );
    let viewer = roles
        .iter()
        .find(|r| r["metadata"]["name"] == "gso-generic-secrets-operator-rest-api-viewer")
        .expect("the viewer role");
    assert_eq!(viewer["rules"][0]["verbs"], json!(["get", "list"]));
    assert_eq!(
        viewer["rules"].as_array().map(Vec::len),
        Some(1),
        "no Secret rights"
    );
    let binding = manifests
        .iter()
        .find(|m| m["kind"] == "RoleBinding" && m["metadata"]["namespace"] == "team-a")
        .expect("the binding");
    assert_eq!(
        binding["roleRef"]["name"],
        "gso-generic-secrets-operator-rest-api-editor"
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "Group", "name": "team-a-admins"}])
    );
    let chart = chart_path();
    let bad = "restApi.callerRoles.enabled=true,restApi.callerRoles.bindings[0].namespace=x,restApi.callerRoles.bindings[0].role=admin";
    let refused = helm(["template", "gso", chart.as_str(), "--set", bad]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("role must be editor or viewer"));
}
