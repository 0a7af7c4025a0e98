//! The operator under test: the release binary as a child process, its
//! `/readyz` and `/metrics` (plain HTTP on 127.0.0.1), and its resident
//! memory and CPU time from `/proc/<pid>`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::metrics;
use crate::util::{Poll, Result, output, poll_until, root};

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`).
const CLK_TCK: f64 = 100.0;
/// How long a start may take until `/readyz` answers 200.
const START: Duration = Duration::from_secs(60);
/// How long a SIGTERM may take before the process is killed.
const STOP: Duration = Duration::from_secs(10);

/// The operator binary: `GSO_BENCH_OPERATOR` (`make bench` builds the
/// shipped `dist` profile), else the one `cargo bench` built.
pub fn binary() -> PathBuf {
    std::env::var_os("GSO_BENCH_OPERATOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_generic-secrets-operator").into())
}

pub struct Operator {
    args: Vec<String>,
    kubeconfig: PathBuf,
    /// Log of launch `i`: `target/bench/<name>-<i>.log`.
    name: String,
    launches: usize,
    child: Option<Child>,
    addr: String,
    log_path: PathBuf,
}

impl Operator {
    /// Starts the operator for `tenant` on the namespaces `selector` picks
    /// and waits until it is ready. Logs go to `target/bench/<name>-<i>.log`.
    pub async fn start(
        kubeconfig: &Path,
        tenant: &str,
        selector: &str,
        name: &str,
    ) -> Result<Self> {
        Self::start_with(kubeconfig, tenant, selector, name, &[]).await
    }

    /// [`Operator::start`] with `extra` flags (e.g. the REST API's).
    pub async fn start_with(
        kubeconfig: &Path,
        tenant: &str,
        selector: &str,
        name: &str,
        extra: &[&str],
    ) -> Result<Self> {
        std::fs::create_dir_all(log_dir())?;
        let args = [
            "run",
            "--tenant-namespace",
            tenant,
            "--namespace-selector",
            selector,
            "--http-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--resync-interval",
            "5m",
            "--override-interval",
            "10m",
        ];
        let mut operator = Operator {
            args: args.iter().chain(extra).map(|a| a.to_string()).collect(),
            kubeconfig: kubeconfig.to_owned(),
            name: name.to_owned(),
            launches: 0,
            child: None,
            addr: String::new(),
            log_path: PathBuf::new(),
        };
        operator.launch().await?;
        Ok(operator)
    }

    async fn launch(&mut self) -> Result<()> {
        self.launches += 1;
        let log_path = log_dir().join(format!("{}-{}.log", self.name, self.launches));
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(binary())
            .args(&self.args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            // As the image runs it (Dockerfile).
            .env("MALLOC_ARENA_MAX", "2")
            .env("MALLOC_MMAP_THRESHOLD_", "131072")
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()?;
        let child = self.child.insert(child);
        self.addr = logged_addr(child, &log_path, "serving /healthz").await?;
        self.log_path = log_path;
        let addr = self.addr.clone();
        poll_until(
            "the operator's /readyz",
            START,
            Duration::from_millis(100),
            || {
                let addr = addr.clone();
                async move {
                    Ok(match http_get(&addr, "/readyz").await {
                        Ok((200, _)) => Poll::Done(()),
                        Ok((status, _)) => Poll::Pending(format!("HTTP {status}")),
                        Err(e) => Poll::Pending(e.to_string()),
                    })
                }
            },
        )
        .await
    }

    /// The REST API's address (`--rest-api`), from the log.
    pub async fn rest_addr(&mut self) -> Result<String> {
        let child = self.child.as_mut().ok_or("the operator is not running")?;
        logged_addr(child, &self.log_path, "serving the REST API").await
    }

    /// SIGTERM, then SIGKILL if it has not exited after 10 s.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        output("kill", &["-TERM", &child.id().to_string()])?;
        let exited = poll_until(
            "the operator to exit",
            STOP,
            Duration::from_millis(50),
            || {
                let status = child.try_wait();
                async move { Ok(status?.map_or(Poll::Pending(String::new()), Poll::Done)) }
            },
        )
        .await;
        if exited.is_err() {
            eprintln!("[bench] operator ignored SIGTERM for {STOP:?}; killing it");
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Stops the process and starts it again with the same flags.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.launch().await
    }

    fn pid(&self) -> Result<u32> {
        Ok(self
            .child
            .as_ref()
            .ok_or("the operator is not running")?
            .id())
    }

    /// Reconciles so far: (successes, failures).
    pub async fn reconciles(&self) -> Result<(f64, f64)> {
        let (status, body) = http_get(&self.addr, "/metrics").await?;
        if status != 200 {
            return Err(format!("operator /metrics: HTTP {status}").into());
        }
        Ok(metrics::reconciles(&body))
    }

    /// User plus system CPU time so far, seconds.
    pub fn cpu_seconds(&self) -> Result<f64> {
        cpu_seconds(&self.pid()?.to_string())
    }

    /// Resident set size, MiB.
    pub fn rss_mib(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .ok_or("no VmRSS in /proc/<pid>/status")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kib / 1024.0)
    }

    /// RSS once it has not changed for a second (at most 30 s of waiting).
    pub async fn settled_rss_mib(&self) -> Result<f64> {
        let mut last = self.rss_mib()?;
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = self.rss_mib()?;
            if now == last {
                break;
            }
            last = now;
        }
        Ok(last)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn log_dir() -> PathBuf {
    root().join("target/bench")
}

/// The `fields.addr` of the operator's first log line with `message`.
async fn logged_addr(child: &mut Child, log: &Path, message: &str) -> Result<String> {
    poll_until(
        "the operator's listen address in its log",
        START,
        Duration::from_millis(50),
        || {
            let exited = child.try_wait();
            async move {
                if let Some(status) = exited? {
                    let log = log.display();
                    return Err(
                        format!("the operator exited at start ({status}); see {log}").into(),
                    );
                }
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let addr = text
                    .lines()
                    .filter(|l| l.contains(message))
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .find_map(|v| v["fields"]["addr"].as_str().map(str::to_owned));
                Ok(addr.map_or(Poll::Pending(log.display().to_string()), Poll::Done))
            }
        },
    )
    .await
}

/// A plain HTTP/1.1 GET on `addr`: (status, body).
async fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, crate::util::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange).await??;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status")?;
    Ok((status, body.to_owned()))
}

/// User plus system CPU time so far of process `pid` (or `self`), seconds.
pub fn cpu_seconds(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime 14 and stime 15.
    let (_, rest) = stat.rsplit_once(") ").ok_or("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks =
        |i: usize| -> Result<f64> { Ok(fields.get(i).ok_or("short /proc/<pid>/stat")?.parse()?) };
    Ok((ticks(11)? + ticks(12)?) / CLK_TCK)
}

/// CPU seconds so far of kube-apiserver plus etcd (by their recorded PIDs).
pub fn control_plane_cpu() -> Result<f64> {
    let run = crate::util::root().join("target/control-plane/run");
    let mut total = 0.0;
    for component in ["kube-apiserver", "etcd"] {
        let pid = std::fs::read_to_string(run.join(format!("{component}.pid")))?;
        total += cpu_seconds(pid.trim())?;
    }
    Ok(total)
}
