//! Scenarios 2–7 for one size N and one repetition, against one operator
//! process with a fresh tenant namespace:
//!
//! 2. fan-out: one tenant-wide object until all N resource groups hold it;
//! 3. rotation: new data for 5 tenant-wide objects at once, until all 5N
//!    replicas hold it;
//! 4. many objects: 2N resource-group objects until all are ready, then a
//!    quiet window in which nothing changes;
//! 6. RSS once that has settled (before 5, which starts a new process);
//! 5. no-op restart: the operator restarted on converged state must write
//!    nothing;
//! 7. apiserver requests during 2, 3 and 4 (recorded per repetition, divided
//!    per replica by the report).
//!
//! The operator runs as its own ServiceAccount, so its requests are counted
//! exactly (`identity.rs`); the bench itself only creates, patches and
//! deletes GenericSecrets and watches them and the replicas.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use kube::ResourceExt;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::cluster::Cluster;
use crate::objects::{
    data, data_hash, generation, generic_secret, is_current, is_replicated, set_selector, wait_set,
    wait_set_gone,
};
use crate::operator::Operator;
use crate::results::Results;
use crate::util::{CONCURRENCY, POLL, Poll, Result, concurrently, deadline, poll_until, timed};
use crate::watches::Watches;
use crate::windows::{Counts, Usage};
use crate::{Config, Only};

/// Tenant-wide objects in the rotation (the per-tenant maximum).
const WIDE: usize = 5;
/// The two names every resource group gets a GenericSecret of.
const RG_NAMES: [&str; 2] = ["object-store", "hf-token"];
/// How long the restarted operator is watched after it is ready again.
const AFTER_RESTART: Duration = Duration::from_secs(20);

struct Scenario<'a> {
    cluster: &'a Cluster,
    n: usize,
    tenant: String,
    op: Operator,
    watches: Watches,
}

/// Runs scenarios 2–7 for size `n`, repetition `rep`.
pub async fn run(
    cluster: &Cluster,
    n: usize,
    rep: usize,
    config: &Config,
    results: &mut Results,
) -> Result<()> {
    let tenant = cluster.namespace_name(&format!("t{n}-r{rep}"));
    cluster.create_namespace(&tenant, &[]).await?;
    let selector = Cluster::size_selector(n);
    let name = format!("operator-n{n}-r{rep}");
    let watches = Watches::start(cluster).await?;
    let op = Operator::start(&cluster.operator_kubeconfig, &tenant, &selector, &name).await?;
    let mut s = Scenario {
        cluster,
        n,
        tenant,
        op,
        watches,
    };
    s.fan_out(results).await?;
    s.rotation(results).await?;
    if config.only == Only::TenantWide {
        return s.teardown().await;
    }
    s.many_objects(config.quiet, results).await?;
    let rss = s.op.settled_rss_mib().await?;
    results.record(n, "rss.mib", rss);
    eprintln!("[bench] N={n}: operator RSS {rss:.1} MiB");
    s.restart(results).await?;
    s.teardown().await
}

impl Scenario<'_> {
    async fn fan_out(&mut self, results: &mut Results) -> Result<()> {
        let (cluster, n) = (self.cluster, self.n);
        let fan = generic_secret(cluster, &self.tenant, "fan", "TenantWide", "fan")?;
        let before = self.counts().await?;
        let secs = timed(async {
            self.create_all(vec![fan]).await?;
            let tenant = Some(self.tenant.as_str());
            wait_set(&self.watches, tenant, "fan", 1, n, |gs| {
                is_replicated(gs, n)
            })
            .await?;
            Ok(())
        })
        .await?;
        let window = before.until(&self.counts().await?, &[("genericsecrets POST 2xx", 1.0)]);
        results.record(n, "fanout.secs", secs);
        window.record_requests(n, "fanout", results);
        eprintln!("[bench] N={n}: fan-out {secs:.2} s");
        self.delete_sets(&["fan"]).await
    }

    async fn rotation(&mut self, results: &mut Results) -> Result<()> {
        let (cluster, n) = (self.cluster, self.n);
        let wide = (0..WIDE)
            .map(|i| {
                generic_secret(
                    cluster,
                    &self.tenant,
                    &format!("wide-{i}"),
                    "TenantWide",
                    "wide",
                )
            })
            .collect::<Result<Vec<_>>>()?;
        self.create_all(wide).await?;
        let tenant = Some(self.tenant.as_str());
        let old = wait_set(&self.watches, tenant, "wide", WIDE, n, |gs| {
            is_replicated(gs, n)
        })
        .await?;
        let old_hash: BTreeMap<String, Option<String>> = old
            .iter()
            .map(|gs| (gs.name_any(), data_hash(gs).map(str::to_owned)))
            .collect();
        let before = self.counts().await?;
        let usage = Usage::take(&self.op).await?;
        let start = Instant::now();
        let generations = self.rotate(&old).await?;
        let rotated = |gs: &DynamicObject| {
            let name = gs.name_any();
            generations.get(&name) == Some(&generation(gs))
                && old_hash.get(&name).and_then(Option::as_deref) != data_hash(gs)
                && is_replicated(gs, n)
        };
        wait_set(&self.watches, tenant, "wide", WIDE, n, rotated).await?;
        let secs = start.elapsed().as_secs_f64();
        usage.record_until(&Usage::take(&self.op).await?, n, "rotation", results);
        let own = [("genericsecrets PATCH 2xx", WIDE as f64)];
        let window = before.until(&self.counts().await?, &own);
        results.record(n, "rotation.secs", secs);
        window.record_requests(n, "rotation", results);
        eprintln!("[bench] N={n}: rotation of {WIDE} {secs:.2} s");
        Ok(())
    }

    /// New data for every object in `objects` at once; their new generations.
    async fn rotate(&self, objects: &[DynamicObject]) -> Result<BTreeMap<String, i64>> {
        let patch = json!({ "spec": { "data": data(b'b') } });
        let api = self.cluster.gsecs(Some(&self.tenant));
        let patches = objects.iter().map(|gs| {
            let (api, patch, name) = (&api, &patch, gs.name_any());
            async move {
                let params = PatchParams::default();
                let patched = api.patch(&name, &params, &Patch::Merge(patch)).await?;
                Ok::<_, kube::Error>((name, generation(&patched)))
            }
        });
        Ok(try_join_all(patches).await?.into_iter().collect())
    }

    async fn many_objects(&mut self, quiet: Duration, results: &mut Results) -> Result<()> {
        let (cluster, n) = (self.cluster, self.n);
        let objects = (0..n)
            .flat_map(|i| RG_NAMES.map(|name| (cluster.rg_namespace(i), name)))
            .map(|(ns, name)| generic_secret(cluster, &ns, name, "ResourceGroup", "many"))
            .collect::<Result<Vec<_>>>()?;
        let (usage, counts) = (Usage::take(&self.op).await?, self.counts().await?);
        let secs = timed(async {
            self.create_all(objects).await?;
            wait_set(&self.watches, None, "many", 2 * n, n, is_current).await?;
            Ok(())
        })
        .await?;
        let (converged, converged_counts) = (Usage::take(&self.op).await?, self.counts().await?);
        results.record(n, "many.secs", secs);
        usage.record_until(&converged, n, "many", results);
        let own = [("genericsecrets POST 2xx", 2.0 * n as f64)];
        let window = counts.until(&converged_counts, &own);
        window.record_requests(n, "many", results);
        // From here on the replicas' changes count (quiet, restart); the
        // watch's list is no change, and the bench's own LIST is left out.
        self.watches
            .count_replicas(self.cluster, &self.tenant)
            .await?;
        let (converged, converged_counts) = (Usage::take(&self.op).await?, self.counts().await?);
        eprintln!(
            "[bench] N={n}: {} resource-group objects {secs:.2} s",
            2 * n
        );

        tokio::time::sleep(quiet).await;
        converged.record_until(&Usage::take(&self.op).await?, n, "quiet", results);
        let window = converged_counts.until(&self.counts().await?, &[]);
        window.record_writes(n, "quiet", results);
        Ok(())
    }

    async fn restart(&mut self, results: &mut Results) -> Result<()> {
        let before = self.counts().await?;
        self.op.restart().await?;
        tokio::time::sleep(AFTER_RESTART).await;
        let window = before.until(&self.counts().await?, &[]);
        let n = self.n;
        window.record_writes(n, "restart", results);
        results.record(n, "restart.reconciles", self.op.reconciles().await?.0);
        eprintln!(
            "[bench] N={n}: operator requests after the restart {:?}",
            window.operator
        );
        Ok(())
    }

    /// Deletes every object while the operator runs (so its finalizer
    /// removes the replicas), waits for that, stops the operator.
    async fn teardown(mut self) -> Result<()> {
        self.delete_sets(&["many", "wide"]).await?;
        self.op.stop().await
    }

    async fn create_all(&self, objects: Vec<DynamicObject>) -> Result<()> {
        concurrently(objects, CONCURRENCY, |gs| async move {
            let api = self.cluster.gsecs(gs.namespace().as_deref());
            api.create(&PostParams::default(), &gs).await?;
            Ok(())
        })
        .await
    }

    /// Deletes the objects of `sets`, waits until they and all replicas are gone.
    async fn delete_sets(&self, sets: &[&str]) -> Result<()> {
        let (cluster, n) = (self.cluster, self.n);
        for set in sets {
            let objects = cluster
                .gsecs(None)
                .list_metadata(&set_selector(cluster, set))
                .await?;
            concurrently(objects.items, CONCURRENCY, |gs| async move {
                let api = cluster.gsecs(gs.namespace().as_deref());
                api.delete(&gs.name_any(), &DeleteParams::default()).await?;
                Ok(())
            })
            .await?;
        }
        for set in sets {
            wait_set_gone(&self.watches, set, n).await?;
        }
        let what = format!("the replicas of tenant {} to be deleted", self.tenant);
        poll_until(&what, deadline(n), POLL * 5, || async {
            Ok(match cluster.replica_count(&self.tenant).await? {
                0 => Poll::Done(()),
                left => Poll::Pending(format!("{left} left")),
            })
        })
        .await
    }

    async fn counts(&self) -> Result<Counts> {
        Counts::take(self.cluster, &self.watches).await
    }
}

/// Settled RSS of an operator without GenericSecrets (on the smallest
/// size's resource groups), before and after `unrelated` unrelated Secrets
/// are created (those stay until the end of the run).
pub async fn idle_rss(
    cluster: &Cluster,
    n: usize,
    unrelated: usize,
    results: &mut Results,
) -> Result<()> {
    let tenant = cluster.namespace_name("idle");
    cluster.create_namespace(&tenant, &[]).await?;
    let selector = Cluster::size_selector(n);
    let mut op = Operator::start(
        &cluster.operator_kubeconfig,
        &tenant,
        &selector,
        "operator-idle",
    )
    .await?;
    results.set_global("idle.rss_before", op.settled_rss_mib().await?);
    let secs = timed(cluster.create_unrelated(unrelated)).await?;
    eprintln!("[bench] created {unrelated} unrelated Secrets in {secs:.1} s");
    results.set_global("idle.rss_after", op.settled_rss_mib().await?);
    op.stop().await
}
