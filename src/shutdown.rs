//! SIGTERM (a rolling update, `kubectl delete pod`) and Ctrl-C. The handlers
//! are installed once, when `run` starts, so that a signal that arrives
//! while the operator is still starting (standing by for the Lease, syncing
//! its watches) is neither lost nor fatal: a leader still gets to release
//! its Lease. The first signal asks for a graceful stop, a second forces it.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// How many stop signals have arrived; cheap to clone, one per waiter.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<u32>);

impl Shutdown {
    /// Install the handlers and count the signals from now on.
    pub fn install() -> std::io::Result<Self> {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let (count, signals) = watch::channel(0);
        tokio::spawn(async move {
            for n in 1.. {
                let name = tokio::select! {
                    Some(()) = terminate.recv() => "SIGTERM",
                    Some(()) = interrupt.recv() => "SIGINT",
                    else => return,
                };
                match n {
                    1 => tracing::info!(
                        signal = name,
                        "stopping: finishing the running reconciles (a second signal stops at once)"
                    ),
                    _ => tracing::info!(signal = name, "stopping at once"),
                }
                count.send_replace(n);
            }
        });
        Ok(Shutdown(signals))
    }

    /// Resolves once a stop has been asked for (the first signal).
    pub async fn requested(self) {
        self.after(1).await;
    }

    /// Resolves on a second signal: stop without waiting for anything.
    pub async fn forced(self) {
        self.after(2).await;
    }

    async fn after(mut self, signals: u32) {
        // The sender lives as long as the runtime: an error means the
        // process is ending anyway.
        let _ = self.0.wait_for(|n| *n >= signals).await;
    }
}
