//! The chart's sample caller roles are what a REST caller needs: bound to
//! `developer` in a resource group, the editor role creates, lists,
//! rotates and deletes through the REST API, yet cannot read the data
//! Secret with kubectl.

use super::{REST, Rest, SECRETS, secret, token};
use crate::harness::{
    control_plane, expect_success, helm, kubectl, kubectl_as_developer, repo_root, scratch_dir,
    unique_name, wait_for,
};
use crate::operator::{Operator, REACT, b64};

#[tokio::test(flavor = "multi_thread")]
async fn rest_callers_need_no_more_than_the_charts_editor_role() {
    let op = Operator::start(&REST).await;
    let a = op.resource_group("rg-a").await;
    let ns = a.name();
    let release = unique_name("roles");
    let chart = repo_root().join("charts/generic-secrets-operator");
    let chart = chart.to_string_lossy();
    let binding = format!(
        "restApi.callerRoles.enabled=true,restApi.callerRoles.bindings[0].namespace={ns},\
         restApi.callerRoles.bindings[0].role=editor,\
         restApi.callerRoles.bindings[0].subjects[0].kind=User,\
         restApi.callerRoles.bindings[0].subjects[0].name=developer"
    );
    let rendered = expect_success(
        &helm([
            "template",
            &release,
            &chart,
            "--set",
            &binding,
            "--show-only",
            "templates/rest-api-roles.yaml",
        ]),
        "helm template",
    );
    let file = scratch_dir().join(format!("{release}.yaml"));
    std::fs::write(&file, rendered).expect("writing the roles");
    let file = file.to_string_lossy().into_owned();
    expect_success(&kubectl(["apply", "-f", &file]), "kubectl apply");
    wait_for("the editor role to take effect", REACT, || async {
        let out = kubectl_as_developer(["auth", "can-i", "create", "secrets", "-n", ns]);
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    })
    .await;

    let rest = Rest::new(&op).await;
    let developer = token(&control_plane().developer_kubeconfig);
    let rg_a: &[(&str, &str)] = &[("AI-Resource-Group", "rg-a")];
    let call = |method: &'static str, path: String, body: Option<String>| {
        let (rest, developer) = (&rest, &developer);
        async move {
            rest.curl(Some(developer), method, &path, rg_a, body.as_deref(), &[])
                .await
        }
    };
    let new = secret("TEAM_TOKEN", &[("token", "role-v1")]).to_string();
    call("POST", SECRETS.into(), Some(new)).await.expect(200);
    let path = format!("{SECRETS}/TEAM_TOKEN");
    assert_eq!(
        call("GET", SECRETS.into(), None).await.names(),
        ["TEAM_TOKEN"]
    );
    call("GET", path.clone(), None).await.expect(200);
    let rotate = format!(r#"{{"data": {{"token": "{}"}}}}"#, b64("role-v2"));
    call("PATCH", path.clone(), Some(rotate)).await.expect(200);
    op.wait_secret_data(ns, "team-token", &[("token", "role-v2")])
        .await;
    let read = kubectl_as_developer(["get", "secret", "team-token.data", "-n", ns]);
    assert!(
        !read.status.success(),
        "the editor role cannot read Secrets"
    );
    call("DELETE", path, None).await.expect(200);
    op.wait_secret_absent(ns, "team-token.data").await;

    rest.assert_never_returned(&["role-v1", "role-v2"]);
    expect_success(&kubectl(["delete", "-f", &file]), "kubectl delete");
    a.cleanup().await;
    op.cleanup().await;
}
