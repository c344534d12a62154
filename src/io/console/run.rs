//! `roadwatch console`: the screens against a Kafka cluster (docs/CONSOLE.md).
use std::sync::Arc;

use anyhow::Context as _;

use super::auth::{new_secret, Accounts};
use super::kafka::{start_feed, KafkaOutbox};
use super::server::{serve, Console, ConsoleParts};
use crate::config::Settings;
use crate::core::roads::RoadNetwork;
use crate::io::http::Readiness;
use crate::io::metrics::Metrics;

/// The session key: configured, or made up for this process (sessions then end with it).
pub fn session_secret(settings: &Settings) -> String {
    if settings.console.session_secret.is_empty() {
        tracing::warn!(
            "console.session_secret is not set: using a random key, so sessions end when this process does and consoles side by side do not share them"
        );
        new_secret()
    } else {
        settings.console.session_secret.clone()
    }
}

/// The accounts file, or none (nobody can sign in: said at start).
pub fn accounts(settings: &Settings) -> anyhow::Result<Accounts> {
    match &settings.console.accounts_file {
        Some(path) => Accounts::load(path),
        None => {
            tracing::warn!("console.accounts_file is not set: nobody can sign in");
            Ok(Accounts::default())
        }
    }
}

pub fn run_console(settings: Settings, network: Arc<RoadNetwork>) -> anyhow::Result<()> {
    let accounts = accounts(&settings)?;
    let roads_geojson = std::fs::read(&settings.roads.file)
        .with_context(|| format!("reading roads.file {}", settings.roads.file.display()))?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("roadwatch-console")
        .enable_all()
        .build()
        .context("starting the console's tokio runtime")?;
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::default());
    // A wrong password, an untrusted certificate or a missing ACL stops start-up here,
    // named, rather than as a console that shows nothing.
    let k = &settings.kafka;
    crate::io::kafka::Probe::connect(k)?.require(
        &[
            ("kafka.topics.alerts", &k.topics.alerts),
            ("kafka.topics.ack", &k.topics.ack),
            ("kafka.topics.patrol", &k.topics.patrol),
            ("kafka.topics.weather", &k.topics.weather),
            ("kafka.topics.operator", &k.topics.operator),
        ],
        "read alerts, acks, positions and weather and write operator actions",
    )?;
    let console = Console::new(ConsoleParts {
        accounts,
        session_secret: session_secret(&settings),
        session_ttl_ms: settings.console.session_ttl_ms,
        login_max_failures: settings.console.login_max_failures,
        outbox: Arc::new(KafkaOutbox::new(&settings.kafka)?),
        roads_geojson,
        network,
        dispatch: settings.engine.dispatch.clone(),
        metrics: Some(metrics.clone()),
    });
    start_feed(
        &settings.kafka,
        console.clone(),
        settings.console.history_window_ms,
    )?;
    readiness.set(true, "reading the alerts topic");
    tokio.block_on(async {
        let m = crate::io::http::serve(settings.metrics.listen, metrics, readiness, None).await?;
        let addr = serve(settings.console.listen, console).await?;
        tracing::info!(%addr, metrics = %m, "console: open http://{addr}/ (operators) and http://{addr}/unit (patrol units)");
        eprintln!("roadwatch console: http://{addr}/ (operators), http://{addr}/unit (patrol units)");
        stop_signal().await;
        tracing::info!("console stopping");
        anyhow::Ok(())
    })
}

/// SIGTERM (a service manager, a container stop) or Ctrl-C.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
