//! Limits and tracing: requests over `--rest-max-concurrent-requests` get
//! 429 with `Retry-After` (and change nothing), and `x-request-id` is
//! echoed (or made) and logged; concurrent tenant-wide creates respect the
//! quota.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{REST, Rest, SECRETS, TENANT, TENANT_WIDE, secret};
use crate::harness::wait_for;
use crate::operator::{Operator, REACT};

#[tokio::test(flavor = "multi_thread")]
async fn rest_answers_429_over_the_limit_and_echoes_request_ids() {
    let mut args = REST.to_vec();
    args.extend(["--rest-max-concurrent-requests", "1"]);
    let op = Operator::start(&args).await;
    let addr = op.rest_addr().await;
    let rest = Rest::new(&op).await;

    // One request held in flight: its body is not all sent yet.
    let body = secret("HELD", &[("k", "held-value")]).to_string();
    let mut held = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST {SECRETS} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         AI-Tenant-Scope: true\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        rest.admin,
        body.len()
    );
    held.write_all(head.as_bytes()).await.expect("send");
    held.write_all(&body.as_bytes()[..1]).await.expect("send");
    let refused = wait_for("a 429 while a request is in flight", REACT, || async {
        let reply = rest.list("", TENANT).await;
        (reply.code == 429).then_some(reply)
    })
    .await;
    refused.expect_error(429, "too many requests in flight");
    assert_eq!(refused.retry_after, "1");
    assert_eq!(refused.request_id.len(), 32, "{refused:?}");
    // Refused creates write nothing.
    rest.post(TENANT, secret("REFUSED", &[("k", "held-value")]))
        .await
        .expect_error(429, "retry after 1 s");
    assert!(
        op.gsecs(&op.tenant)
            .get_opt("refused")
            .await
            .expect("get")
            .is_none()
    );

    held.write_all(&body.as_bytes()[1..]).await.expect("send");
    let mut response = String::new();
    held.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(rest.list("", TENANT).await.names(), ["HELD"]);

    // The caller's id is echoed and logged; without one a new one is made.
    let extra = ["--header", "x-request-id: it-request-7f3a"];
    let token = rest.admin.clone();
    let reply = rest
        .curl(Some(&token), "GET", SECRETS, TENANT, None, &extra)
        .await;
    assert_eq!(
        (reply.code, reply.request_id.as_str()),
        (200, "it-request-7f3a")
    );
    let made = rest.list("", TENANT).await.request_id;
    assert!(made.len() == 32 && made != refused.request_id, "{made}");
    wait_for("request ids in the log", REACT, || async {
        let logs = op.logs();
        let logged = |id: &str| {
            logs.lines()
                .any(|l| l.contains("REST request") && l.contains(id))
        };
        logged("it-request-7f3a") && logged(&made)
    })
    .await;

    rest.assert_never_returned(&["held-value"]);
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_concurrent_tenant_wide_creates_never_pass_the_quota_together() {
    let mut args = REST.to_vec();
    args.extend(["--max-tenant-wide-secrets", "2"]);
    let op = Operator::start(&args).await;
    let rest = Rest::new(&op).await;
    let names: Vec<String> = (0..6).map(|i| format!("race-{i}")).collect();
    let replies = futures::future::join_all(
        names
            .iter()
            .map(|name| rest.post(TENANT_WIDE, secret(name, &[("k", "raced")]))),
    )
    .await;
    let mut codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    codes.sort();
    assert_eq!(codes, [200, 200, 409, 409, 409, 409], "{replies:?}");
    for refused in replies.iter().filter(|r| r.code == 409) {
        refused.expect_error(409, "at most 2 tenant-wide secrets per tenant");
    }
    let objects = op
        .gsecs(&op.tenant)
        .list(&Default::default())
        .await
        .expect("list");
    assert_eq!(objects.items.len(), 2, "{:?}", objects.items);
    // Neither object nor data Secret is left of a refused create.
    let secrets = op
        .secrets(&op.tenant)
        .list(&Default::default())
        .await
        .expect("list");
    assert_eq!(secrets.items.len(), 2, "{:?}", secrets.items);
    rest.assert_never_returned(&["raced"]);
    op.cleanup().await;
}
