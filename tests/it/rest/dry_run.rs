//! Extension: `?dryRun=true` on POST and PATCH answers the preview of what
//! the operator would do, with the caller's authorization, and writes
//! nothing.

use super::{REST, Rest, SECRETS, TENANT_WIDE, secret, token};
use crate::harness::control_plane;
use crate::operator::{Operator, b64};
use crate::preview::actions;

#[tokio::test(flavor = "multi_thread")]
async fn rest_dry_run_answers_the_preview_and_writes_nothing() {
    let op = Operator::start(&REST).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    let rest = Rest::new(&op).await;
    let dry = format!("{SECRETS}?dryRun=true");
    let body = secret("DRY_CREDS", &[("k", "v1-s3cr3t")]);

    let reply = rest
        .admin("POST", &dry, TENANT_WIDE, Some(body.clone()))
        .await;
    let preview = reply.expect(200);
    assert_eq!(preview["verdict"], "replicates", "{preview}");
    assert_eq!(preview["exists"], false);
    assert_eq!(preview["secretName"], "dry-creds");
    assert_eq!(preview["ready"]["reason"], "Replicated");
    let creates = |action: &str| {
        let mut want = vec![
            (a.name().to_owned(), action.to_owned()),
            (b.name().to_owned(), action.to_owned()),
        ];
        want.sort();
        want
    };
    assert_eq!(actions(preview), creates("create"));
    // Nothing was written: no object, no data Secret, no replica.
    let gsecs = op.gsecs(&op.tenant);
    assert!(gsecs.get_opt("dry-creds").await.expect("get").is_none());
    let data = op.secrets(&op.tenant).list(&Default::default()).await;
    assert!(data.expect("list").items.is_empty());
    op.assert_no_secret(a.name(), "dry-creds").await;

    // The caller's own authorization: developer may not create it.
    let developer = token(&control_plane().developer_kubeconfig);
    let body_text = body.to_string();
    let refused = rest
        .curl(
            Some(&developer),
            "POST",
            &dry,
            TENANT_WIDE,
            Some(&body_text),
            &[],
        )
        .await;
    assert_eq!(refused.code, 403, "{refused:?}");

    // A rotation previewed: every replica would be updated, none is.
    rest.post(TENANT_WIDE, body).await.expect(200);
    op.wait_ready(&op.tenant, "dry-creds", "True", "Replicated")
        .await;
    let patch = serde_json::json!({"data": {"k": b64("v2-s3cr3t")}});
    let path = format!("{SECRETS}/DRY_CREDS?dryRun=true");
    let reply = rest.admin("PATCH", &path, TENANT_WIDE, Some(patch)).await;
    let preview = reply.expect(200);
    assert_eq!(preview["exists"], true, "{preview}");
    assert_eq!(actions(preview), creates("update"));
    for ns in [a.name(), b.name()] {
        op.wait_secret_data(ns, "dry-creds", &[("k", "v1-s3cr3t")])
            .await;
    }
    rest.assert_never_returned(&["v1-s3cr3t", "v2-s3cr3t"]);
    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}
