//! The scope headers as SAP's SDKs send them by default, in every scope,
//! and paging as they page: `count` is the total in scope. The Python SDK
//! sends `AI-Tenant-Scope: true` with its client's resource group on every
//! call; the JS SDK sends `AI-Resource-Group` on every call.

use generic_secrets_operator::api::{GenericSecret, Scope};
use kube::Api;
use serde_json::{Value, json};

use super::{NO_SCOPE, REST, Rest, SECRETS, secret};
use crate::operator::Operator;

/// Python SDK defaults (`AICoreV2Client(..., resource_group="rg-a")`).
const PY_MAIN: &[(&str, &str)] = &[("AI-Tenant-Scope", "true"), ("AI-Resource-Group", "rg-a")];
/// JS SDK, main tenant: its default resource group rides along.
const JS_MAIN: &[(&str, &str)] = &[
    ("AI-Tenant-Scope", "true"),
    ("AI-Resource-Group", "default"),
];
const TENANT_WIDE: &[(&str, &str)] = &[("AI-Tenant-Scope", "true"), ("AI-Resource-Group", "*")];
/// Python SDK with `ai_tenant_scope=False`.
const PY_GROUP: &[(&str, &str)] = &[("AI-Tenant-Scope", "false"), ("AI-Resource-Group", "rg-a")];
/// JS SDK, resource group.
const JS_GROUP: &[(&str, &str)] = &[("AI-Resource-Group", "rg-a")];

async fn names_in(api: &Api<GenericSecret>, scope: Scope) -> Vec<String> {
    let list = api.list(&Default::default()).await.expect("listing");
    list.items
        .iter()
        .filter(|gs| gs.spec.scope == scope)
        .map(|gs| gs.ai_core_name().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_accepts_the_sdks_default_headers_in_every_scope() {
    let op = Operator::start(&REST).await;
    let a = op.resource_group("rg-a").await;
    let rest = Rest::new(&op).await;
    let tenant = op.gsecs(&op.tenant);
    let group = op.gsecs(a.name());

    // Each scope, created with one SDK's headers, seen with the other's.
    for (headers, seen_with, name) in [
        (PY_MAIN, JS_MAIN, "MAIN_PY"),
        (JS_MAIN, PY_MAIN, "MAIN_JS"),
        (TENANT_WIDE, TENANT_WIDE, "WIDE"),
        (PY_GROUP, JS_GROUP, "GROUP_PY"),
        (JS_GROUP, PY_GROUP, "GROUP_JS"),
    ] {
        let created = rest
            .post(headers, secret(name, &[("k", "sdk-value")]))
            .await;
        assert_eq!(
            created.expect(200),
            &json!({"message": "secret has been created", "name": name}),
            "{headers:?}"
        );
        let detail = rest.get(name, seen_with).await;
        assert_eq!(detail.expect(200)["name"], name, "{seen_with:?}");
        let path = format!("{SECRETS}/{name}");
        let label = json!({"labels": [{"key": "ext.ai.sap.com/sdk", "value": "yes"}]});
        rest.admin("PATCH", &path, seen_with, Some(label))
            .await
            .expect(200);
    }
    assert_eq!(
        names_in(&tenant, Scope::Tenant).await,
        ["MAIN_JS", "MAIN_PY"]
    );
    assert_eq!(names_in(&tenant, Scope::TenantWide).await, ["WIDE"]);
    assert_eq!(
        names_in(&group, Scope::ResourceGroup).await,
        ["GROUP_JS", "GROUP_PY"]
    );

    // What an SDK user gets back (the JSON on the wire).
    let list = rest.list("", PY_MAIN).await;
    assert_eq!(list.names(), ["MAIN_JS", "MAIN_PY"]);
    eprintln!("GET {SECRETS} (main tenant) -> {}", rest.last_body());
    let main = &list.body["resources"][0];
    let mut keys: Vec<&String> = main.as_object().expect("an object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["createdAt", "labels", "name"]);
    assert_eq!(
        main["labels"],
        json!([{"key": "ext.ai.sap.com/sdk", "value": "yes"}])
    );
    let wide = rest.get("WIDE", TENANT_WIDE).await;
    eprintln!("GET {SECRETS}/WIDE (tenant-wide) -> {}", rest.last_body());
    assert!(
        wide.body["resourceGroupSecretReplicationStatus"].is_object(),
        "{wide:?}"
    );
    assert_eq!(
        rest.list("", JS_GROUP).await.names(),
        ["GROUP_JS", "GROUP_PY"]
    );

    // No scope at all: 400 naming the header to send, nothing written.
    let before = names_in(&tenant, Scope::Tenant).await;
    rest.post(NO_SCOPE, secret("NOWHERE", &[("k", "sdk-value")]))
        .await
        .expect_error(400, "send header AI-Resource-Group: <resource group>");
    assert_eq!(names_in(&tenant, Scope::Tenant).await, before);

    for (headers, name) in [
        (JS_MAIN, "MAIN_PY"),
        (PY_MAIN, "MAIN_JS"),
        (JS_GROUP, "GROUP_PY"),
    ] {
        let path = format!("{SECRETS}/{name}");
        rest.admin("DELETE", &path, headers, None).await.expect(200);
    }
    rest.assert_never_returned(&["sdk-value"]);
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_pages_with_count_the_total_in_scope() {
    let op = Operator::start(&REST).await;
    let a = op.resource_group("rg-a").await;
    let rest = Rest::new(&op).await;
    for name in ["p-1", "p-2", "p-3", "p-4", "p-5"] {
        rest.post(JS_GROUP, secret(name, &[("k", "paged")]))
            .await
            .expect(200);
    }
    // Another scope's secret is not counted.
    rest.post(PY_MAIN, secret("other", &[("k", "paged")]))
        .await
        .expect(200);
    let mut seen: Vec<String> = Vec::new();
    for skip in [0, 2, 4] {
        let page = rest.list(&format!("?$top=2&$skip={skip}"), JS_GROUP).await;
        assert_eq!(page.expect(200)["count"], 5, "{page:?}");
        seen.extend(page.names());
    }
    assert_eq!(seen, ["p-1", "p-2", "p-3", "p-4", "p-5"]);
    for query in ["?$count=true", "?$count=false&$top=1", "?$skip=7"] {
        let page = rest.list(query, PY_GROUP).await;
        assert_eq!(page.expect(200)["count"], Value::from(5), "{query}");
    }
    assert!(rest.list("?$skip=7", PY_GROUP).await.names().is_empty());
    rest.assert_never_returned(&["paged"]);
    a.cleanup().await;
    op.cleanup().await;
}
