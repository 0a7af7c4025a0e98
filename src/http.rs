//! The operator's HTTP port: `/healthz` (the process serves), `/readyz` (its
//! caches are synced and the controller runs) and `/metrics` (Prometheus).
//! Probes are not traced: they would drown the log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// A watch failing for longer than this makes the operator unready (and
/// is logged as an error): brief failures (an apiserver restart) are normal.
/// A watch whose last failure is this old works again: its retries come
/// within 2 s (4 s with jitter), and a watch that resumes emits no event.
pub const WATCH_GRACE: Duration = Duration::from_secs(5);

/// One watch's failures: the first of this episode, the latest, and
/// whether the episode was logged as an error.
#[derive(Clone, Copy)]
struct Failing {
    since: Instant,
    last: Instant,
    logged: bool,
}

impl Failing {
    fn ongoing(&self) -> bool {
        self.last.elapsed() < WATCH_GRACE
    }
}

/// What the endpoints read.
#[derive(Clone, Default)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    /// Set once the controller has started with synced caches.
    pub ready: Arc<AtomicBool>,
    /// Watches failing now, by kind.
    failing: Arc<Mutex<HashMap<&'static str, Failing>>>,
}

impl Health {
    /// A watch of `kind` failed (it retries by itself).
    pub fn watch_failed(&self, kind: &'static str, error: &dyn std::fmt::Display) {
        self.metrics.watch_failed(kind);
        let Ok(mut failing) = self.failing.lock() else {
            return;
        };
        let now = Instant::now();
        let fresh = Failing {
            since: now,
            last: now,
            logged: false,
        };
        let episode = failing.entry(kind).or_insert(fresh);
        if !episode.ongoing() {
            *episode = fresh;
        }
        episode.last = now;
        if episode.since.elapsed() >= WATCH_GRACE && !episode.logged {
            episode.logged = true;
            let seconds = episode.since.elapsed().as_secs();
            tracing::error!(kind, error = %error, seconds, "watch failing; not ready until it recovers");
        } else {
            tracing::warn!(kind, error = %error, "watch failed; retrying");
        }
    }

    /// A watch of `kind` delivered an event: it works.
    pub fn watch_ok(&self, kind: &'static str) {
        let Ok(mut failing) = self.failing.lock() else {
            return;
        };
        if let Some(episode) = failing.remove(kind) {
            let seconds = episode.since.elapsed().as_secs();
            tracing::info!(kind, seconds, "watch recovered");
        }
    }

    /// Why the operator is not ready, if it is not.
    pub fn unready(&self) -> Option<String> {
        if !self.ready.load(Ordering::Relaxed) {
            return Some("caches not synced".to_owned());
        }
        let failing = self.failing.lock().ok()?;
        let kinds: Vec<&str> = failing
            .iter()
            .filter(|(_, f)| f.ongoing() && f.since.elapsed() >= WATCH_GRACE)
            .map(|(kind, _)| *kind)
            .collect();
        (!kinds.is_empty()).then(|| format!("watch failing: {}", kinds.join(", ")))
    }
}

/// Bind `addr` and serve until the process ends. Returns the bound address
/// (so `:0` picks a free port) and the serving task.
pub async fn serve(addr: SocketAddr, health: Health) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    Ok(bound)
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    match health.unready() {
        None => (StatusCode::OK, "ok".to_owned()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        health.metrics.render(),
    )
}
