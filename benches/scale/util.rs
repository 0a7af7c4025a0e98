//! Small helpers every module uses: the error type, running a command,
//! bounded concurrency, timing and polling with a deadline.

use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// Size of the data of every Secret the bench writes or has written.
pub const SECRET_BYTES: usize = 1_024;
/// Requests the bench keeps in flight when it writes many objects.
pub const CONCURRENCY: usize = 32;
/// Pause between two status polls.
pub const POLL: Duration = Duration::from_millis(100);

/// The repository root: `CARGO_MANIFEST_DIR` as cargo sets it when it runs
/// the bench, else where the bench was built.
pub fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// Runs `program args`, fails unless it exits 0, returns its trimmed stdout.
pub fn output(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Result<String> {
    let program = program.as_ref();
    let out = Command::new(program).args(args).output()?;
    if !out.status.success() {
        return Err(format!(
            "{} {}: {}\n{}",
            program.to_string_lossy(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// `SECRET_BYTES` of `tag`: different tags make different data.
pub fn payload(tag: u8) -> Vec<u8> {
    vec![tag; SECRET_BYTES]
}

/// Runs `f` on every item, at most `limit` at a time; the first error wins.
pub async fn concurrently<T, F, Fut>(
    items: impl IntoIterator<Item = T>,
    limit: usize,
    f: F,
) -> Result<()>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    futures::stream::iter(items)
        .map(f)
        .buffer_unordered(limit)
        .try_for_each(|()| async { Ok(()) })
        .await
}

/// Seconds `work` took.
pub async fn timed(work: impl Future<Output = Result<()>>) -> Result<f64> {
    let start = Instant::now();
    work.await?;
    Ok(start.elapsed().as_secs_f64())
}

/// What one poll saw: done with a value, or not yet (and how far).
pub enum Poll<T> {
    Done(T),
    Pending(String),
}

/// Calls `check` every `interval` until it is done; fails after `timeout`
/// naming `what` and the last progress seen.
pub async fn poll_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let progress = match check().await? {
            Poll::Done(value) => return Ok(value),
            Poll::Pending(progress) => progress,
        };
        if Instant::now() >= deadline {
            return Err(
                format!("timed out after {timeout:?} waiting for {what} ({progress})").into(),
            );
        }
        tokio::time::sleep(interval).await;
    }
}

/// How long to wait for anything that scales with `n` resource groups.
pub fn deadline(n: usize) -> Duration {
    Duration::from_secs(60 + n as u64 * 6 / 10)
}
