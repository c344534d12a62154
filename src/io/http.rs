//! The metrics listener: `/metrics` (Prometheus text), `/healthz` (the process is alive)
//! and `/readyz` (ready to do its job; what "ready" means is set by the command that
//! runs: the Kafka runtime reports partitions assigned, broker reachable, lag bounded).
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::liveness::{Health, Liveness};
use super::metrics::Metrics;

/// Readiness, set by the running command; `reason` explains a `false` on /readyz.
#[derive(Default)]
pub struct Readiness {
    ready: AtomicBool,
    reason: Mutex<String>,
}

impl Readiness {
    pub fn set(&self, ready: bool, reason: impl Into<String>) {
        self.ready.store(ready, Ordering::Relaxed);
        if let Ok(mut r) = self.reason.lock() {
            *r = reason.into();
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    /// The processing loop's heartbeat, for commands that have one.
    liveness: Option<Arc<Liveness>>,
}

async fn metrics_page(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    match s.liveness.as_ref().map(|l| (l.health(), l.limit())) {
        Some((Health::Stalled(quiet), limit)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "stalled: the processing loop has not turned for {} s (processing.stall_limit_s = {})\n",
                quiet.as_secs(),
                limit.as_secs()
            ),
        ),
        _ => (StatusCode::OK, "ok\n".to_owned()),
    }
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let reason = s
        .readiness
        .reason
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    if s.readiness.is_ready() {
        (StatusCode::OK, format!("ready {reason}\n"))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
    }
}

/// Binds the listener (so a bad address fails start-up) and serves until the runtime
/// ends. Returns the bound address (port 0 picks a free one, for tests).
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    liveness: Option<Arc<Liveness>>,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the metrics listener on {listen} (metrics.listen)"))?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState {
            metrics,
            readiness,
            liveness,
        });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        answer
    }

    /// /healthz follows the loop's heartbeat: ok before the loop starts and while it
    /// beats, 503 with the reason once it has been quiet past the limit.
    #[tokio::test]
    async fn healthz_fails_once_the_loop_stops_turning() {
        let liveness = Liveness::new(Duration::from_millis(300));
        let addr = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(Metrics::new()),
            Arc::new(Readiness::default()),
            Some(liveness.clone()),
        )
        .await
        .unwrap();
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.0 200"));
        liveness.beat();
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.0 200"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let answer = get(addr, "/healthz").await;
        assert!(answer.starts_with("HTTP/1.0 503"), "{answer}");
        assert!(answer.contains("processing.stall_limit_s"), "{answer}");
        liveness.beat();
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.0 200"));
    }
}
