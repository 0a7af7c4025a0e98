//! The calls as the AI Core documents' `curl` examples make them: each
//! scope's lifecycle, listing and isolation, refusals, the tenant-wide quota.

use generic_secrets_operator::api::Scope;
use serde_json::json;

use super::{NO_SCOPE, REST, Rest, SECRETS, TENANT, TENANT_WIDE, secret, token};
use crate::harness::{control_plane, wait_deleted, wait_for};
use crate::operator::{Operator, REACT, b64};

#[tokio::test(flavor = "multi_thread")]
async fn rest_tenant_wide_secret_lifecycle() {
    let op = Operator::start(&REST).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    let rest = Rest::new(&op).await;

    let mut body = secret("OBJECT_STORE_CREDS", &[("some-credential", "v1-s3cr3t")]);
    body["labels"] = json!([{"key": "ext.ai.sap.com/team", "value": "ml"}]);
    let created = rest.post(TENANT_WIDE, body).await;
    assert_eq!(
        created.expect(200),
        &json!({"message": "secret has been created", "name": "OBJECT_STORE_CREDS"})
    );
    // A GenericSecret like any other: Kubernetes name, AI Core name, scope.
    let gs = op
        .gsecs(&op.tenant)
        .get("object-store-creds")
        .await
        .expect("the GenericSecret the REST API created");
    assert_eq!(gs.spec.scope, Scope::TenantWide);
    assert_eq!(gs.spec.secret_name.as_deref(), Some("OBJECT_STORE_CREDS"));
    assert_eq!(gs.spec.labels["ext.ai.sap.com/team"], "ml");
    let managers: Vec<_> = gs
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|f| f.manager.as_deref())
        .collect();
    assert!(managers.contains(&"aicore-rest-api"), "{managers:?}");

    for ns in [a.name(), b.name()] {
        op.wait_secret_data(
            ns,
            "object-store-creds",
            &[("some-credential", "v1-s3cr3t")],
        )
        .await;
    }
    let all_true = json!({"rg-a": true, "rg-b": true});
    let detail = wait_for("replication status via REST", REACT, || async {
        let reply = rest.get("OBJECT_STORE_CREDS", TENANT_WIDE).await;
        (reply.body["resourceGroupSecretReplicationStatus"] == all_true).then_some(reply)
    })
    .await;
    let detail = detail.expect(200);
    assert_eq!(detail["name"], "OBJECT_STORE_CREDS");
    assert!(detail["createdAt"].is_string(), "{detail}");
    assert_eq!(
        detail["labels"],
        json!([{"key": "ext.ai.sap.com/team", "value": "ml"}])
    );
    assert_eq!(detail["resourceGroupSecretsSyncStatus"], all_true);
    assert!(detail.get("data").is_none(), "{detail}");

    // Rotation: the data map is replaced, every replica follows.
    let path = format!("{SECRETS}/OBJECT_STORE_CREDS");
    let rotate = json!({"data": {"rotated-credential": b64("v2-s3cr3t")}});
    let modified = rest.admin("PATCH", &path, TENANT_WIDE, Some(rotate)).await;
    assert_eq!(
        modified.expect(200),
        &json!({"message": "The secret has been modified", "name": "OBJECT_STORE_CREDS"})
    );
    for ns in [a.name(), b.name()] {
        op.wait_secret_data(
            ns,
            "object-store-creds",
            &[("rotated-credential", "v2-s3cr3t")],
        )
        .await;
    }
    wait_for("replication status after the rotation", REACT, || async {
        rest.get("OBJECT_STORE_CREDS", TENANT_WIDE).await.body["resourceGroupSecretReplicationStatus"]
            == all_true
    })
    .await;

    // Labels: "" removes one, others are set; replicas carry them.
    let labels = json!({"labels": [
        {"key": "ext.ai.sap.com/team", "value": ""},
        {"key": "ext.ai.sap.com/stage", "value": "prod"}
    ]});
    rest.admin("PATCH", &path, TENANT_WIDE, Some(labels))
        .await
        .expect(200);
    let detail = rest.get("OBJECT_STORE_CREDS", TENANT_WIDE).await;
    assert_eq!(
        detail.expect(200)["labels"],
        json!([{"key": "ext.ai.sap.com/stage", "value": "prod"}])
    );
    let replicas = op.secrets(a.name());
    wait_for("replica labels updated", REACT, || async {
        let secret = replicas.get("object-store-creds").await.expect("replica");
        let labels = secret.metadata.labels.unwrap_or_default();
        labels.get("ext.ai.sap.com/stage").map(String::as_str) == Some("prod")
            && !labels.contains_key("ext.ai.sap.com/team")
    })
    .await;
    // The apiserver's CEL rule refuses an immutable label, with its message.
    let immutable =
        json!({"labels": [{"key": "ext.ai.sap.com/document-grounding", "value": "true"}]});
    rest.admin("PATCH", &path, TENANT_WIDE, Some(immutable))
        .await
        .expect_error(400, "cannot change after creation");

    let deleted = rest.admin("DELETE", &path, TENANT_WIDE, None).await;
    assert_eq!(
        deleted.expect(200),
        &json!({"message": "The secret has been deleted", "name": "OBJECT_STORE_CREDS"})
    );
    wait_deleted(&op.gsecs(&op.tenant), "object-store-creds", REACT).await;
    for ns in [a.name(), b.name()] {
        op.wait_secret_absent(ns, "object-store-creds").await;
    }
    rest.get("OBJECT_STORE_CREDS", TENANT_WIDE)
        .await
        .expect_error(404, "secret OBJECT_STORE_CREDS not found");

    rest.assert_never_returned(&["v1-s3cr3t", "v2-s3cr3t"]);
    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_resource_group_scope_listing_and_isolation() {
    let op = Operator::start(&REST).await;
    let a = op.resource_group("rg-a").await;
    let rest = Rest::new(&op).await;
    let rg_a: &[(&str, &str)] = &[("AI-Resource-Group", "rg-a")];

    // The documents' example, byte for byte.
    let example = "{\n\t\"name\": \"MY_GENERIC_SECRET\",\n\t\"data\": {\n\t\t\"some-credential\": \"bXktc2Vuc2l0aXZlLWRhdGE=\"\n\t\t\t}\n}";
    let token = rest.admin.clone();
    rest.curl(Some(&token), "POST", SECRETS, rg_a, Some(example), &[])
        .await
        .expect(200);
    let gs = op
        .gsecs(a.name())
        .get("my-generic-secret")
        .await
        .expect("created in the resource group's namespace");
    assert_eq!(gs.spec.scope, Scope::ResourceGroup);
    assert_eq!(gs.spec.secret_name.as_deref(), Some("MY_GENERIC_SECRET"));
    // A PATCH at once, while the operator adds its finalizer and status.
    let label = json!({"labels": [{"key": "ext.ai.sap.com/team", "value": "ml"}]});
    let path = format!("{SECRETS}/MY_GENERIC_SECRET");
    rest.admin("PATCH", &path, rg_a, Some(label))
        .await
        .expect(200);
    op.wait_secret_data(
        a.name(),
        "my-generic-secret",
        &[("some-credential", "my-sensitive-data")],
    )
    .await;
    let detail = rest.get("MY_GENERIC_SECRET", rg_a).await;
    assert_eq!(detail.expect(200)["name"], "MY_GENERIC_SECRET");
    assert_eq!(
        detail.body["labels"],
        json!([{"key": "ext.ai.sap.com/team", "value": "ml"}])
    );
    assert!(
        detail
            .body
            .get("resourceGroupSecretReplicationStatus")
            .is_none()
    );
    // The Kubernetes form of the name finds the same secret.
    let lower = rest.get("my-generic-secret", rg_a).await;
    assert_eq!(lower.expect(200)["name"], "MY_GENERIC_SECRET");

    rest.curl(Some(&token), "POST", SECRETS, rg_a, Some(example), &[])
        .await
        .expect_error(409, "secret MY_GENERIC_SECRET already exists");
    rest.post(
        &[("AI-Resource-Group", "rg-unknown")],
        secret("s", &[("k", "listed-value")]),
    )
    .await
    .expect_error(404, "resource group rg-unknown not found");
    // Another scope does not see it.
    rest.get("MY_GENERIC_SECRET", TENANT)
        .await
        .expect_error(404, "not found");

    // Three main-tenant secrets and a tenant-wide one share the tenant
    // namespace; each scope lists only its own.
    for name in ["t-1", "t-2", "t-3"] {
        rest.post(TENANT, secret(name, &[("k", "listed-value")]))
            .await
            .expect(200);
    }
    rest.post(TENANT_WIDE, secret("tw-1", &[("k", "listed-value")]))
        .await
        .expect(200);
    let all = rest.list("", TENANT).await;
    assert_eq!(all.names(), ["t-1", "t-2", "t-3"]);
    assert_eq!(all.body["count"], 3);
    assert!(all.body["resources"][0]["createdAt"].is_string());
    let page = rest.list("?$top=2&$skip=1&$count=true", TENANT).await;
    assert_eq!(page.names(), ["t-2", "t-3"]);
    assert_eq!(page.body["count"], 3);
    // `count` is the total in scope, whatever the page and `$count`.
    let page = rest.list("?$top=1&$count=false", TENANT).await;
    assert_eq!(page.names(), ["t-1"]);
    assert_eq!(page.body["count"], 3);
    assert_eq!(rest.list("", TENANT_WIDE).await.names(), ["tw-1"]);
    assert_eq!(rest.list("", rg_a).await.names(), ["MY_GENERIC_SECRET"]);
    rest.list("?$top=many", TENANT)
        .await
        .expect_error(400, "$top must be a non-negative integer");
    rest.get("t-1", TENANT_WIDE)
        .await
        .expect_error(404, "not found");
    rest.admin("DELETE", &format!("{SECRETS}/tw-1"), TENANT, None)
        .await
        .expect_error(404, "not found");
    assert_eq!(rest.list("", TENANT_WIDE).await.names(), ["tw-1"]);
    rest.list("", NO_SCOPE)
        .await
        .expect_error(400, "AI-Resource-Group");

    rest.admin(
        "DELETE",
        &format!("{SECRETS}/MY_GENERIC_SECRET"),
        rg_a,
        None,
    )
    .await
    .expect(200);
    op.wait_secret_absent(a.name(), "my-generic-secret").await;
    wait_deleted(&op.gsecs(a.name()), "my-generic-secret", REACT).await;

    rest.assert_never_returned(&["my-sensitive-data", "listed-value"]);
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_refuses_unauthenticated_unauthorised_and_invalid_requests() {
    let op = Operator::start(&REST).await;
    let a = op.resource_group("rg-a").await;
    let rest = Rest::new(&op).await;
    let body = secret("refused", &[("token", "t0p-s3cr3t")]).to_string();
    let rg_a: &[(&str, &str)] = &[("AI-Resource-Group", "rg-a")];

    rest.curl(None, "POST", SECRETS, TENANT, Some(&body), &[])
        .await
        .expect_error(401, "Authorization: Bearer");
    rest.curl(Some("not-a-token"), "GET", SECRETS, TENANT, None, &[])
        .await
        .expect_error(401, "not accepted");
    // A bad token learns nothing about resource groups.
    let unknown: &[(&str, &str)] = &[("AI-Resource-Group", "rg-unknown")];
    rest.curl(Some("not-a-token"), "GET", SECRETS, unknown, None, &[])
        .await
        .expect_error(401, "not accepted");
    // RBAC decides as the caller: developer has no grants (the data
    // Secret is the first write of a create).
    let developer = token(&control_plane().developer_kubeconfig);
    rest.curl(Some(&developer), "POST", SECRETS, TENANT, Some(&body), &[])
        .await
        .expect_error(403, "User \"developer\" cannot create resource \"secrets\"");
    rest.curl(Some(&developer), "GET", SECRETS, rg_a, None, &[])
        .await
        .expect_error(403, "cannot list resource \"genericsecrets\"");

    let invalid = json!({"name": "bad-b64", "data": {"token": "dDBwLXMzY3IzdA!="}});
    rest.post(TENANT, invalid)
        .await
        .expect_error(400, "data[token] is not valid base64");
    // The documents' PATCH example misses a comma: refused as JSON.
    let docs_patch = "{\n\t\t\"data\": {\n\t\t\t\"some-credential\": \"bXktc2Vuc2l0aXZlLWRhdGE=\"\n\t\t\t}\n\t\t\"labels\": []\n}";
    let token = rest.admin.clone();
    rest.curl(
        Some(&token),
        "PATCH",
        &format!("{SECRETS}/MY_GENERIC_SECRET"),
        rg_a,
        Some(docs_patch),
        &[],
    )
    .await
    .expect_error(400, "request body is not valid: expected `,` or `}`");
    rest.post(TENANT, json!({"name": "bad name", "data": {"k": "YQ=="}}))
        .await
        .expect_error(400, "must be alphanumerics");
    rest.get("bad.name", TENANT)
        .await
        .expect_error(400, "must be alphanumerics");
    rest.post(
        TENANT,
        json!({"name": "s", "data": {"k": "YQ=="}, "labels": [{"key": "team", "value": "ml"}]}),
    )
    .await
    .expect_error(400, "must start with ext.ai.sap.com/");

    // More than 1 MiB.
    let dir = std::env::temp_dir().join(format!("gso-rest-{}", op.id));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let big = dir.join("big.json");
    let padding = "A".repeat(2 * 1024 * 1024);
    std::fs::write(
        &big,
        json!({"name": "big", "data": {"k": padding}}).to_string(),
    )
    .expect("writing the big body");
    let upload = format!("@{}", big.display());
    rest.curl(
        Some(&token),
        "POST",
        SECRETS,
        TENANT,
        None,
        &["--data-binary", &upload],
    )
    .await
    .expect_error(413, "larger than");
    let _ = std::fs::remove_dir_all(&dir);

    rest.admin("GET", "/v2/admin/other", TENANT, None)
        .await
        .expect_error(404, "no such endpoint");
    let left = op
        .gsecs(&op.tenant)
        .list(&Default::default())
        .await
        .expect("listing");
    assert!(left.items.is_empty(), "nothing was created: {left:?}");
    let secrets = op
        .secrets(&op.tenant)
        .list(&Default::default())
        .await
        .expect("listing Secrets");
    assert!(
        secrets.items.is_empty(),
        "no Secret was written: {secrets:?}"
    );

    rest.assert_never_returned(&["t0p-s3cr3t"]);
    assert!(
        !rest
            .bodies
            .lock()
            .expect("bodies")
            .iter()
            .any(|b| b.contains("dDBwLXMzY3IzdA")),
        "the invalid base64 value was echoed"
    );
    assert!(!op.logs().contains("t0p-s3cr3t") && !op.logs().contains(&b64("t0p-s3cr3t")));
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_refuses_tenant_wide_secrets_beyond_the_quota() {
    let mut args = REST.to_vec();
    args.extend(["--max-tenant-wide-secrets", "1"]);
    let op = Operator::start(&args).await;
    let a = op.resource_group("rg-a").await;
    let rest = Rest::new(&op).await;

    rest.post(TENANT_WIDE, secret("first", &[("k", "quota-one")]))
        .await
        .expect(200);
    op.wait_secret_data(a.name(), "first", &[("k", "quota-one")])
        .await;
    rest.post(TENANT_WIDE, secret("second", &[("k", "quota-two")]))
        .await
        .expect_error(
            409,
            "at most 1 tenant-wide secrets per tenant, and 1 exist; delete one",
        );
    assert!(
        op.gsecs(&op.tenant)
            .get_opt("second")
            .await
            .expect("get")
            .is_none()
    );
    // Main-tenant secrets hold no tenant-wide slot.
    rest.post(TENANT, secret("main", &[("k", "quota-main")]))
        .await
        .expect(200);

    rest.admin("DELETE", &format!("{SECRETS}/first"), TENANT_WIDE, None)
        .await
        .expect(200);
    rest.post(TENANT_WIDE, secret("second", &[("k", "quota-two")]))
        .await
        .expect(200);
    op.wait_secret_data(a.name(), "second", &[("k", "quota-two")])
        .await;
    op.wait_secret_absent(a.name(), "first").await;

    rest.assert_never_returned(&["quota-one", "quota-two", "quota-main"]);
    a.cleanup().await;
    op.cleanup().await;
}
