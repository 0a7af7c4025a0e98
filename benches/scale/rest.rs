//! Scenario 8, REST speed: 1 000 GenericSecrets in one resource group and
//! 32 concurrent clients, each call through the REST API (`run --rest-api`,
//! plain HTTP on loopback, the bench's admin token) and, side by side, the
//! apiserver's own answer to the same call (the bench's kube client on the
//! GenericSecrets of that namespace, same identity and concurrency): list
//! (`$top=1000`), get one, create, patch (a label), delete. Measured once per
//! run, with its own operator; p50/p99 latency and req/s of each.

use std::fmt::Write as _;
use std::future::Future;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::objects::{generic_secret, is_current, set_selector};
use crate::operator::Operator;
use crate::results::Results;
use crate::tables::{Unit, number};
use crate::util::{CONCURRENCY, Poll, Result, concurrently, deadline, payload, poll_until};

/// Objects in the resource group while reads are measured.
const SEEDED: usize = 1_000;
/// Requests per measurement: reads, and writes (each write set's objects).
const LISTS: usize = 256;
const GETS: usize = 2_048;
const WRITES: usize = 512;
const SET: &str = "rest";
/// The resource group: namespace 0, which every size selects.
const GROUP: &str = "rg-0";
const CALLS: [&str; 5] = ["list", "get", "create", "patch", "delete"];
const SIDES: [&str; 2] = ["rest", "apiserver"];

pub async fn run(cluster: &Cluster, selector: &str, results: &mut Results) -> Result<()> {
    let tenant = cluster.namespace_name("rest-tenant");
    cluster.create_namespace(&tenant, &[]).await?;
    let flags = ["--rest-api", "--rest-addr", "127.0.0.1:0"];
    let kubeconfig = &cluster.operator_kubeconfig;
    let mut op =
        Operator::start_with(kubeconfig, &tenant, selector, "operator-rest", &flags).await?;
    let url = format!("http://{}", op.rest_addr().await?);
    let rest = Rest::connect(cluster, &url).await?;
    let ns = cluster.rg_namespace(0);
    let api = cluster.gsecs(Some(&ns));

    let seeds: Vec<usize> = (0..SEEDED).collect();
    concurrently(&seeds, CONCURRENCY, |i| {
        let gs = generic_secret(cluster, &ns, &format!("seed-{i}"), "ResourceGroup", SET);
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &gs?).await?;
            Ok(())
        }
    })
    .await?;
    wait_ready(cluster, &ns, SEEDED).await?;
    let (rest, api) = (&rest, &api);
    let listed = rest.call("GET", "?$top=1000".into(), None).await?;
    if listed["count"] != SEEDED {
        return Err(format!("the REST list counts {}, not {SEEDED}", listed["count"]).into());
    }

    let mut record = |call: &str, side: &str, m: Measured| {
        eprintln!(
            "[bench] REST scenario: {call} via {side}: p50 {:.1} ms, p99 {:.1} ms, {:.0} req/s",
            m.p50 * 1e3,
            m.p99 * 1e3,
            m.rps
        );
        results.set_global(&format!("rest.{call}.{side}.p50"), m.p50);
        results.set_global(&format!("rest.{call}.{side}.p99"), m.p99);
        results.set_global(&format!("rest.{call}.{side}.rps"), m.rps);
    };
    let list = &ListParams::default();
    let listed = measure(LISTS, move |_| rest.call("GET", "?$top=1000".into(), None));
    record("list", "rest", listed.await?);
    let listed = measure(LISTS, move |_| async move { Ok(api.list(list).await?) });
    record("list", "apiserver", listed.await?);
    let one = |i: usize| format!("seed-{}", i * 7 % SEEDED);
    let got = measure(GETS, move |i| {
        rest.call("GET", format!("/{}", one(i)), None)
    });
    record("get", "rest", got.await?);
    let got = measure(GETS, move |i| async move { Ok(api.get(&one(i)).await?) });
    record("get", "apiserver", got.await?);

    let encoded = base64::engine::general_purpose::STANDARD.encode(payload(b'r'));
    let encoded = &encoded;
    let created = measure(WRITES, move |i| {
        let body = json!({"name": format!("REST_W_{i}"), "data": {"k": encoded}});
        rest.call("POST", String::new(), Some(body))
    });
    record("create", "rest", created.await?);
    let ns = &ns;
    let created = measure(WRITES, move |i| {
        let gs = generic_secret(cluster, ns, &format!("api-w-{i}"), "ResourceGroup", SET);
        async move { Ok(api.create(&PostParams::default(), &gs?).await?) }
    });
    record("create", "apiserver", created.await?);

    let label = |i: usize| json!([{"key": "ext.ai.sap.com/bench", "value": i.to_string()}]);
    let patched = measure(WRITES, move |i| {
        let body = json!({"labels": label(i)});
        rest.call("PATCH", format!("/REST_W_{i}"), Some(body))
    });
    record("patch", "rest", patched.await?);
    let patched = measure(WRITES, move |i| {
        let patch = json!({"spec": {"labels": {"ext.ai.sap.com/bench": i.to_string()}}});
        async move {
            let params = PatchParams::default();
            Ok(api
                .patch(&format!("api-w-{i}"), &params, &Patch::Merge(patch))
                .await?)
        }
    });
    record("patch", "apiserver", patched.await?);

    let removed = measure(WRITES, move |i| {
        rest.call("DELETE", format!("/REST_W_{i}"), None)
    });
    record("delete", "rest", removed.await?);
    let removed = measure(WRITES, move |i| async move {
        Ok(api
            .delete(&format!("api-w-{i}"), &DeleteParams::default())
            .await?)
    });
    record("delete", "apiserver", removed.await?);

    // The operator removes the finalizers, so it stops only once all are gone.
    api.delete_collection(&DeleteParams::default(), &set_selector(cluster, SET))
        .await?;
    wait_ready(cluster, ns, 0).await?;
    op.stop().await
}

/// Until exactly `count` objects exist in `ns`, all of them current (the
/// REST API's objects carry no bench label, so all of `ns` is counted).
async fn wait_ready(cluster: &Cluster, ns: &str, count: usize) -> Result<()> {
    poll_until(
        "the REST scenario's objects",
        deadline(SEEDED),
        Duration::from_millis(500),
        || async {
            let all = cluster
                .gsecs(Some(ns))
                .list(&ListParams::default())
                .await?
                .items;
            let current = all.iter().filter(|gs| is_current(gs)).count();
            Ok(match (all.len(), current) {
                (len, current) if len == count && current == count => Poll::Done(()),
                (len, current) => Poll::Pending(format!("{current} current of {len}")),
            })
        },
    )
    .await
}

/// The REST API as an HTTP client: a kube client pointed at its URL, which
/// sends the bench's bearer token and keeps connections open.
struct Rest {
    client: Client,
}

impl Rest {
    async fn connect(cluster: &Cluster, url: &str) -> Result<Self> {
        let kubeconfig = Kubeconfig::read_from(&cluster.kubeconfig)?;
        let mut config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        config.cluster_url = url.parse()?;
        config.root_cert = None;
        Ok(Rest {
            client: Client::try_from(config)?,
        })
    }

    /// `method /v2/admin/secrets<path>` in [`GROUP`]; the JSON answer.
    async fn call(&self, method: &str, path: String, body: Option<Value>) -> Result<Value> {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("/v2/admin/secrets{path}"))
            .header("AI-Resource-Group", GROUP)
            .header("Content-Type", "application/json")
            .body(body.map_or_else(Vec::new, |b| b.to_string().into_bytes()))?;
        let text = self.client.request_text(request).await?;
        Ok(serde_json::from_str(&text)?)
    }
}

struct Measured {
    p50: f64,
    p99: f64,
    rps: f64,
}

/// Calls `call(0..count)`, [`CONCURRENCY`] at a time.
async fn measure<T, F, Fut>(count: usize, call: F) -> Result<Measured>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let start = Instant::now();
    let mut secs: Vec<f64> = futures::stream::iter(0..count)
        .map(|i| {
            let request = call(i);
            async move {
                let sent = Instant::now();
                request.await?;
                Ok::<_, crate::util::Error>(sent.elapsed().as_secs_f64())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let wall = start.elapsed().as_secs_f64();
    secs.sort_by(f64::total_cmp);
    let at = |q: f64| secs[((secs.len() as f64 * q).ceil() as usize).clamp(1, secs.len()) - 1];
    Ok(Measured {
        p50: at(0.50),
        p99: at(0.99),
        rps: count as f64 / wall,
    })
}

/// Section 8 of `docs/benchmarks.md`, when the scenario ran.
pub fn section(results: &Results) -> String {
    let get =
        |call: &str, side: &str, what: &str| results.global(&format!("rest.{call}.{side}.{what}"));
    if get("list", "rest", "rps").is_none() {
        return String::new();
    }
    let mut out = format!(
        "\n## 8. REST API speed\n\n{SEEDED} GenericSecrets in one resource group, \
         {CONCURRENCY} concurrent clients; each call through the REST API and, beside it, \
         the apiserver's own answer to the same call (the bench's kube client on the \
         GenericSecrets of that namespace). List: {LISTS} requests with `$top=1000`; get: \
         {GETS}; create, patch (a label) and delete: {WRITES} each. A REST create also \
         writes the data Secret and its owner; REST reads come from the operator's watch \
         cache after an access review as the caller (cached 10 s).\n\n\
         | call | REST p50 | REST p99 | REST req/s | apiserver p50 | apiserver p99 | \
         apiserver req/s | req/s ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let ms = |v: Option<f64>| v.map_or("n/a".to_owned(), |s| format!("{:.1} ms", s * 1e3));
    for call in CALLS {
        let mut row = format!("| {call} |");
        for side in SIDES {
            let rps = get(call, side, "rps").map(f64::round);
            let _ = write!(
                row,
                " {} | {} | {} |",
                ms(get(call, side, "p50")),
                ms(get(call, side, "p99")),
                number(rps, Unit::Count)
            );
        }
        let ratio = get(call, "rest", "rps")
            .zip(get(call, "apiserver", "rps"))
            .map(|(r, a)| r / a);
        let _ = writeln!(
            row,
            " {} |",
            ratio.map_or("n/a".to_owned(), |r| format!("{r:.2}×"))
        );
        out += &row;
    }
    out
}
