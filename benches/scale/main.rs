//! The scale benchmark: the release operator against the loopback control
//! plane, for N = 10, 100 and 1 000 resource groups, compared with what the
//! bench's own client needs for the same Secret writes (the raw limit).
//! Writes `docs/benchmarks.md` and `docs/benchmarks.svg` and prints the
//! markdown.
//!
//! Run: `make bench` (builds the control plane and the release operator,
//! then `cargo bench --locked --bench scale`). Settings, from the
//! environment: `GSO_BENCH_SIZES` (default `10,100,1000`), `GSO_BENCH_REPS`
//! (3), `GSO_BENCH_QUIET_SECS` (60), `GSO_BENCH_UNRELATED` (10000),
//! `GSO_BENCH_ONLY=rest` (only scenario 8, REST speed, which otherwise runs
//! once after the others).
//!
//! Resource-group namespaces are created once for the largest N; namespace
//! `i` carries `gso-bench-n<N>=true` for every N > i, so the operator of size
//! N selects exactly N of them. Everything the bench creates is labelled
//! `gso-bench=<run id>` and deleted at the end (not waited for).

mod cluster;
mod identity;
mod metrics;
mod objects;
mod operator;
mod plot;
mod raw;
mod report;
mod rest;
mod results;
mod scenarios;
mod tables;
mod util;
mod watches;
mod windows;

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use cluster::Cluster;
use results::Results;
use util::Result;

pub struct Config {
    /// Ascending, without duplicates.
    pub sizes: Vec<usize>,
    pub reps: usize,
    pub quiet: Duration,
    pub unrelated: usize,
    /// `GSO_BENCH_ONLY`: a part of the run, for experiments.
    pub only: Only,
}

/// A part of the run (`GSO_BENCH_ONLY`); the report needs the whole run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Only {
    All,
    /// The REST scenario (`rest`).
    Rest,
    /// The raw baseline, fan-out and rotation (`tenant-wide`); prints the
    /// figures instead of writing the report.
    TenantWide,
}

impl Config {
    fn from_env() -> Result<Self> {
        let mut sizes = std::env::var("GSO_BENCH_SIZES")
            .unwrap_or_else(|_| "10,100,1000".to_owned())
            .split(',')
            .map(|s| s.trim().parse::<usize>())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        sizes.sort_unstable();
        sizes.dedup();
        if sizes.is_empty() || sizes[0] == 0 {
            return Err("GSO_BENCH_SIZES must list sizes > 0".into());
        }
        Ok(Config {
            sizes,
            reps: env_number("GSO_BENCH_REPS", 3)?.max(1),
            quiet: Duration::from_secs(env_number("GSO_BENCH_QUIET_SECS", 60)?),
            unrelated: env_number("GSO_BENCH_UNRELATED", 10_000)?,
            only: match std::env::var("GSO_BENCH_ONLY").as_deref() {
                Ok("rest") => Only::Rest,
                Ok("tenant-wide") => Only::TenantWide,
                Ok("") | Err(_) => Only::All,
                Ok(other) => {
                    return Err(format!("GSO_BENCH_ONLY={other}: rest or tenant-wide").into());
                }
            },
        })
    }
}

fn env_number<T>(name: &str, default: T) -> Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match std::env::var(name) {
        Ok(value) => Ok(value.trim().parse()?),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[bench] failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let config = Config::from_env()?;
    let run_id = format!("{:x}", jiff::Timestamp::now().as_second() % 0x100_0000);
    let mut cluster = Cluster::connect(run_id).await?;
    cluster.wait_quiet().await?;
    eprintln!("[bench] run {}: sizes {:?}", cluster.run_id, config.sizes);
    let measured = match identity::setup(&cluster).await {
        Ok(kubeconfig) => {
            cluster.operator_kubeconfig = kubeconfig;
            measure(&cluster, &config).await
        }
        Err(e) => Err(e),
    };
    let cleaned = (cluster.cleanup().await, identity::cleanup(&cluster).await);
    let results = measured?;
    cleaned.0?;
    cleaned.1?;
    if config.only == Only::TenantWide {
        results.print();
        return Ok(());
    }
    let md = report::write(&config, &results)?;
    println!("{md}");
    Ok(())
}

async fn measure(cluster: &Cluster, config: &Config) -> Result<Results> {
    let mut results = Results::default();
    cluster.create_resource_groups(&config.sizes).await?;
    let selector = Cluster::size_selector(config.sizes[0]);
    if config.only == Only::Rest {
        rest::run(cluster, &selector, &mut results).await?;
        return Ok(results);
    }
    scenarios::idle_rss(cluster, config.sizes[0], config.unrelated, &mut results).await?;
    for &n in &config.sizes {
        for rep in 0..config.reps {
            eprintln!("[bench] N={n}, repetition {}/{}", rep + 1, config.reps);
            raw::run(cluster, n, &mut results).await?;
            scenarios::run(cluster, n, rep, config, &mut results).await?;
        }
    }
    if config.only == Only::TenantWide {
        return Ok(results);
    }
    rest::run(cluster, &selector, &mut results).await?;
    Ok(results)
}
