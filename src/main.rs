//! `generic-secrets-operator`: parse flags, set up logging, run.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Parser, Subcommand};
use generic_secrets_operator::controller::{self, Config};
use generic_secrets_operator::http::{self, Health};
use generic_secrets_operator::leader::{self, Election, Timing};
use generic_secrets_operator::plan::Rules;
use generic_secrets_operator::shutdown::Shutdown;
use generic_secrets_operator::{api, preview, rest, telemetry};
use k8s_openapi::jiff::SignedDuration;

#[derive(Parser)]
#[command(version, about = "SAP AI Core generic secrets as Kubernetes objects")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller against the current kubeconfig / in-cluster config.
    Run(Box<RunArgs>),
    /// Print the GenericSecret CRD as YAML.
    Crd,
    /// Show what the operator would do with a GenericSecret manifest, as
    /// the cluster stands now, without writing anything.
    #[command(after_help = PREVIEW_HELP)]
    Preview(Box<PreviewArgs>),
}

const PREVIEW_HELP: &str = "\
The manifest is first applied with a server-side dry run (dryRun=All), so
that the apiserver validates it; nothing is ever written. Secrets are read
as metadata only.

Exit codes:
  0  it would replicate cleanly (Ready=True), or reach that by itself
     (Progressing, Shadowed)
  2  it would be blocked and write nothing (InvalidSpec, TenantWideQuotaExceeded,
     NameCollision, WrongNamespace, SourceNotFound)
  3  it would write, but a target needs someone to act (a conflict with an
     unmanaged Secret)
  1  no preview: the manifest or the cluster could not be read

-o json prints one object: {object, scope, secretName, exists, verdict
(replicates|blocked|needsAction), ready {status, reason, message},
replicated, secrets [{namespace, resourceGroup, name, action
(create|update|unchanged|adopt|conflict|leave|delete), message, until}],
notes}. Fields are only ever added.";

#[derive(clap::Args)]
struct PreviewArgs {
    /// The GenericSecret manifest (YAML or JSON); - reads stdin.
    #[arg(short = 'f', long = "filename")]
    file: std::path::PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: OutputFormat,
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    planner: PlannerArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

/// How to reach the cluster (shared by `run` and `preview`).
#[derive(clap::Args)]
struct ClusterArgs {
    /// The kubeconfig file to use instead of $KUBECONFIG, ~/.kube/config or
    /// the in-cluster service account.
    #[arg(long, env = "GSO_KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use instead of its current one.
    #[arg(long, env = "GSO_CONTEXT")]
    context: Option<String>,
}

/// The planner's settings (shared by `run` and `preview`, so that a
/// preview plans with the flags the operator runs with).
#[derive(clap::Args)]
struct PlannerArgs {
    /// The tenant's namespace: Tenant and TenantWide objects live here.
    #[arg(long, env = "GSO_TENANT_NAMESPACE", default_value = "aicore-system")]
    tenant_namespace: String,
    /// How long a resource-group secret shadows a tenant-wide one of the
    /// same name before the tenant-wide data overrides it (e.g. 10m, 30s).
    #[arg(long, env = "GSO_OVERRIDE_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    override_interval: SignedDuration,
    /// Tenant-wide secrets per tenant (AI Core allows 5).
    #[arg(long, env = "GSO_MAX_TENANT_WIDE_SECRETS", default_value_t = 5)]
    max_tenant_wide_secrets: usize,
    /// Take over existing Secrets that lack the managed-by label, if their
    /// owner annotated them aicore.dev/adopt=true (the owner's consent:
    /// otherwise anyone allowed to create a GenericSecret could overwrite,
    /// and later delete, any Secret of that name).
    #[arg(long, env = "GSO_ADOPT_EXISTING")]
    adopt_existing: bool,
    /// Label selector for the namespaces of this installation (several
    /// tenants in one cluster). Default: all namespaces.
    #[arg(long, env = "GSO_NAMESPACE_SELECTOR")]
    namespace_selector: Option<String>,
}

impl PlannerArgs {
    fn settings(&self) -> preview::cluster::Settings {
        preview::cluster::Settings {
            rules: Rules {
                tenant_namespace: self.tenant_namespace.clone(),
                override_interval: self.override_interval,
                max_tenant_wide: self.max_tenant_wide_secrets,
            },
            adopt_existing: self.adopt_existing,
            namespace_selector: self.namespace_selector.clone(),
        }
    }
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    planner: PlannerArgs,
    /// Full reconcile of every object, behind the watches.
    #[arg(long, env = "GSO_RESYNC_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    resync_interval: SignedDuration,
    /// Replica writes in flight at once, per object and across all objects
    /// (more only queues up in the apiserver).
    #[arg(long, env = "GSO_WRITE_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    write_concurrency: u16,
    /// GenericSecrets reconciled at once (their replica writes share
    /// --write-concurrency; their other writes are one at a time each).
    #[arg(long, env = "GSO_RECONCILE_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    reconcile_concurrency: u16,
    /// Log lines as JSON (for log collectors) or as text.
    #[arg(long, env = "GSO_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: telemetry::LogFormat,
    /// Run as one of several replicas: only the holder of the Lease
    /// `generic-secrets-operator` in the tenant namespace reconciles; a
    /// standby takes over a lease duration after it last saw the leader renew.
    #[arg(long, env = "GSO_LEADER_ELECTION")]
    leader_election: bool,
    /// How long a standby waits after the leader's last renewal it saw.
    #[arg(long, env = "GSO_LEASE_DURATION", default_value = "10s", value_parser = parse_duration)]
    lease_duration: SignedDuration,
    /// A leader that could not renew for this long stops writing and exits;
    /// shorter than the lease duration.
    #[arg(long, env = "GSO_RENEW_DEADLINE", default_value = "7s", value_parser = parse_duration)]
    renew_deadline: SignedDuration,
    /// How often the leader renews and a standby retries.
    #[arg(long, env = "GSO_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    retry_period: SignedDuration,
    /// Address of /healthz, /readyz and /metrics (port 0: any free port).
    #[arg(long, env = "GSO_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// Data versions kept in each object's status.rotations.
    #[arg(long, env = "GSO_ROTATION_HISTORY", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=50))]
    rotation_history: u16,
    /// A rotation not in every target this long after the operator first
    /// saw it gets a Warning event (RotationOverdue).
    #[arg(long, env = "GSO_ROTATION_WARNING_AFTER", default_value = "10m", value_parser = parse_duration)]
    rotation_warning_after: SignedDuration,
    /// Let spec.rollout restart the Deployments, StatefulSets and DaemonSets
    /// that read a rotated replica (needs list and patch on them; the chart
    /// grants it with rollout.enabled=true).
    #[arg(long, env = "GSO_WORKLOAD_RESTARTS")]
    workload_restarts: bool,
    #[command(flatten)]
    rest: rest::Options,
}

/// The client configuration: the flags' kubeconfig and context when given,
/// otherwise what kubectl would use (or the in-cluster service account).
async fn client_config(args: &ClusterArgs) -> Result<kube::Config, String> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    match &args.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| e.to_string())
        }
        None if args.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| e.to_string()),
        None => kube::Config::infer().await.map_err(|e| e.to_string()),
    }
}

fn parse_duration(s: &str) -> Result<SignedDuration, String> {
    let d: SignedDuration = s.parse().map_err(|e| format!("{e}"))?;
    if d.is_negative() || d.is_zero() {
        return Err("must be positive".into());
    }
    Ok(d)
}

/// Retry delay for a missing `dataFrom` source Secret.
const SOURCE_RETRY: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Crd => match api::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: rendering the CRD: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => run(*args).await,
        Command::Preview(args) => preview_command(*args).await,
    }
}

/// `preview`: the exit code is the verdict's (see `PREVIEW_HELP`).
async fn preview_command(args: PreviewArgs) -> ExitCode {
    let result = async {
        let kube_config = client_config(&args.cluster).await?;
        let client = kube::Client::try_from(kube_config).map_err(|e| e.to_string())?;
        let manifest = preview::manifest::read_manifest(&args.file, client.default_namespace())?;
        preview::manifest::preview(&client, &args.planner.settings(), &manifest).await
    };
    let preview = match result.await {
        Ok(preview) => preview,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.output {
        OutputFormat::Text => print!("{}", preview::text::render(&preview)),
        OutputFormat::Json => match serde_json::to_string_pretty(&preview) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
    }
    ExitCode::from(preview.verdict.exit_code())
}

async fn run(args: RunArgs) -> ExitCode {
    telemetry::init(args.log_format);
    let shutdown = match Shutdown::install() {
        Ok(shutdown) => shutdown,
        Err(e) => {
            tracing::error!(error = %e, "cannot install the signal handlers");
            return ExitCode::FAILURE;
        }
    };
    // One configuration: the controller's client, and the cluster URL and
    // CA of the REST API's per-caller clients.
    let kube_config = match client_config(&args.cluster).await {
        Ok(kube_config) => kube_config,
        Err(e) => {
            tracing::error!(error = %e, "no Kubernetes client configuration");
            return ExitCode::FAILURE;
        }
    };
    let timing = Timing {
        lease_duration: args.lease_duration.unsigned_abs(),
        renew_deadline: args.renew_deadline.unsigned_abs(),
        retry_period: args.retry_period.unsigned_abs(),
    };
    let timing = match timing.validate() {
        Ok(timing) => timing,
        Err(e) => {
            tracing::error!(error = %e, "invalid leader-election timing");
            return ExitCode::FAILURE;
        }
    };
    let client = match kube::Client::try_from(kube_config.clone()) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Kubernetes client");
            return ExitCode::FAILURE;
        }
    };
    let PlannerArgs {
        tenant_namespace,
        override_interval,
        max_tenant_wide_secrets,
        adopt_existing,
        namespace_selector,
    } = args.planner;
    let config = Config {
        tenant_namespace,
        override_interval,
        max_tenant_wide: max_tenant_wide_secrets,
        adopt_existing,
        namespace_selector,
        resync_interval: args.resync_interval.unsigned_abs(),
        source_retry: SOURCE_RETRY,
        write_concurrency: usize::from(args.write_concurrency),
        reconcile_concurrency: args.reconcile_concurrency,
        rotation_history: usize::from(args.rotation_history),
        rotation_warning_after: args.rotation_warning_after,
        workload_restarts: args.workload_restarts,
    };
    let health = Health::default();
    match http::serve(args.http_addr, health.clone()).await {
        Ok(addr) => tracing::info!(%addr, "serving /healthz, /readyz and /metrics"),
        Err(e) => {
            tracing::error!(error = %e, addr = %args.http_addr, "cannot bind the HTTP port");
            return ExitCode::FAILURE;
        }
    }
    // Every replica serves the REST API, a standby too: it only talks to
    // the apiserver.
    if args.rest.rest_api {
        match rest::serve(&args.rest, kube_config.clone(), client.clone(), &config).await {
            Ok((addr, tls)) => tracing::info!(%addr, tls, "serving the REST API"),
            Err(e) => {
                tracing::error!(error = %e, "cannot serve the REST API");
                return ExitCode::FAILURE;
            }
        }
    }
    if !args.leader_election {
        tracing::info!(tenant_namespace = %config.tenant_namespace, "starting controller");
        health.metrics.leader.set(1);
        controller::run(client, config, health, shutdown).await;
        return ExitCode::SUCCESS;
    }
    let election = Election::new(&config.tenant_namespace, instance_name(), timing);
    // The controller writes through a client fenced by the leader's term;
    // the election itself uses the plain one.
    let fenced = match kube::client::ClientBuilder::try_from(kube_config) {
        Ok(builder) => builder
            .with_layer(&leader::Fence(election.term.clone()))
            .build(),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Kubernetes client");
            return ExitCode::FAILURE;
        }
    };
    // A standby is healthy and ready: it is doing its job, waiting.
    health.ready.store(true, Ordering::Relaxed);
    tokio::select! {
        () = election.acquire(&client) => {}
        // A standby has nothing to hand over.
        () = shutdown.clone().requested() => return ExitCode::SUCCESS,
    }
    health.ready.store(false, Ordering::Relaxed);
    health.metrics.leader.set(1);
    tracing::info!(tenant_namespace = %config.tenant_namespace, "starting controller");
    tokio::select! {
        // A graceful stop (SIGTERM of a rolling update): hand over now.
        () = controller::run(fenced, config, health, shutdown) => {
            election.release(&client).await;
            ExitCode::SUCCESS
        }
        // Exit rather than go on half-leading; the restarted process
        // competes for the lease again like any standby.
        () = election.hold(&client) => ExitCode::FAILURE,
    }
}

/// This instance's name in the Lease: the pod name in a cluster, else
/// host and process id.
fn instance_name() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}
