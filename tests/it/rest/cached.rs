//! List and get answer from the operator's watch cache, yet RBAC decides
//! as the caller: a caller without `list`/`get` in a namespace gets 403
//! although the cache holds its objects, and revoked rights stop the reads
//! within the access-review cache's 10 s. A write through the API shows in
//! the very next read (read-your-writes), with no wait in between.

use std::time::Duration;

use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use super::data::grant;
use super::{REST, Rest, SECRETS, TENANT, secret, token};
use crate::harness::{control_plane, wait_for};
use crate::operator::{Operator, REACT};

/// The server's access-review TTL (src/rest/access.rs), and some slack.
const REVIEW_TTL: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn rest_cached_reads_keep_rbac_and_revocations_apply_within_the_ttl() {
    let op = Operator::start(&REST).await;
    let a = op.resource_group("rg-a").await;
    let ns = a.name();
    let rest = Rest::new(&op).await;
    let rg_a: &[(&str, &str)] = &[("AI-Resource-Group", "rg-a")];
    rest.post(rg_a, secret("CACHED", &[("k", "cached-value")]))
        .await
        .expect(200);
    // The admin reads it at once: the cache holds it.
    assert_eq!(rest.list("", rg_a).await.names(), ["CACHED"]);
    rest.get("CACHED", rg_a).await.expect(200);

    let developer = token(&control_plane().developer_kubeconfig);
    let as_developer = |method: &'static str, path: String| {
        let (rest, developer) = (&rest, &developer);
        async move {
            rest.curl(Some(developer), method, &path, rg_a, None, &[])
                .await
        }
    };
    let one = format!("{SECRETS}/CACHED");
    // No rights: 403 from the apiserver's own check, never the cache.
    as_developer("GET", SECRETS.into()).await.expect_error(
        403,
        "User \"developer\" cannot list resource \"genericsecrets\"",
    );
    as_developer("GET", one.clone()).await.expect_error(
        403,
        "User \"developer\" cannot get resource \"genericsecrets\"",
    );
    // Only `get`: the one object, not the list.
    grant(
        &op.client,
        ns,
        "gsec-getter",
        &[("aicore.dev", "genericsecrets", &["get"])],
    )
    .await;
    as_developer("GET", one.clone()).await.expect(200);
    as_developer("GET", SECRETS.into())
        .await
        .expect_error(403, "cannot list resource \"genericsecrets\"");

    grant(
        &op.client,
        ns,
        "gsec-lister",
        &[("aicore.dev", "genericsecrets", &["list"])],
    )
    .await;
    assert_eq!(
        as_developer("GET", SECRETS.into()).await.names(),
        ["CACHED"]
    );
    // Not in another namespace: the tenant's objects stay refused.
    rest.curl(Some(&developer), "GET", SECRETS, TENANT, None, &[])
        .await
        .expect_error(403, "cannot list resource \"genericsecrets\"");

    // Revoked: refused again once the allowed review expires.
    let bindings = Api::<RoleBinding>::namespaced(op.client.clone(), ns);
    for name in ["gsec-getter", "gsec-lister"] {
        bindings
            .delete(name, &DeleteParams::default())
            .await
            .expect("deleting the RoleBinding");
    }
    let revoked = std::time::Instant::now();
    wait_for(
        "the revocation to stop cached reads",
        REVIEW_TTL + REACT,
        || async {
            let list = as_developer("GET", SECRETS.into()).await;
            let get = as_developer("GET", one.clone()).await;
            (list.code == 403 && get.code == 403).then_some(())
        },
    )
    .await;
    // The apiserver's authorizer lags a little; the review cache adds at
    // most its TTL.
    assert!(
        revoked.elapsed() < REVIEW_TTL + Duration::from_secs(5),
        "{:?}",
        revoked.elapsed()
    );
    rest.assert_never_returned(&["cached-value"]);
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_reads_its_own_writes_from_the_cache() {
    let op = Operator::start(&REST).await;
    let a = op.resource_group("rg-a").await;
    let rest = Rest::new(&op).await;
    let rg_a: &[(&str, &str)] = &[("AI-Resource-Group", "rg-a")];
    for scope in [rg_a, TENANT] {
        for i in 0..8 {
            let name = format!("RYW_{i}");
            let path = format!("{SECRETS}/{name}");
            rest.post(scope, secret(&name, &[("k", "ryw-value")]))
                .await
                .expect(200);
            // Each read straight after the write, no polling.
            rest.get(&name, scope).await.expect(200);
            assert!(rest.list("", scope).await.names().contains(&name));

            let label =
                json!({"labels": [{"key": "ext.ai.sap.com/round", "value": i.to_string()}]});
            rest.admin("PATCH", &path, scope, Some(label))
                .await
                .expect(200);
            let detail = rest.get(&name, scope).await;
            assert_eq!(
                detail.expect(200)["labels"],
                json!([{"key": "ext.ai.sap.com/round", "value": i.to_string()}])
            );
            let listed = rest.list("", scope).await;
            let entry = listed.expect(200)["resources"]
                .as_array()
                .expect("resources")
                .iter()
                .find(|r| r["name"] == name.as_str())
                .cloned()
                .expect("listed");
            assert_eq!(entry["labels"][0]["value"], i.to_string());

            rest.admin("DELETE", &path, scope, None).await.expect(200);
            rest.get(&name, scope)
                .await
                .expect_error(404, &format!("secret {name} not found"));
            assert!(!rest.list("", scope).await.names().contains(&name));
        }
    }
    rest.assert_never_returned(&["ryw-value"]);
    a.cleanup().await;
    op.cleanup().await;
}
