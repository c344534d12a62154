//! Whether the processing loop still turns (docs/KAFKA_RUNTIME.md, "A stuck loop").
//!
//! Every call the Kafka runtime makes into librdkafka has a timeout, and none is longer
//! than a minute, yet librdkafka can block past it. After a transaction coordinator
//! failover, `send_offsets_to_transaction` was seen waiting for good (confluentinc/
//! librdkafka#5511). The process then looked alive: its HTTP listener, on another
//! thread, kept answering /healthz. So the loop beats a [`Liveness`] on every turn, and
//! inside a state rebuild and a back-off. When it has not beaten for
//! `processing.stall_limit_s`, /healthz answers 503 and a watchdog thread exits the
//! process with [`EXIT_STALLED`], for its supervisor to restart it. A restart is what
//! the runtime is built to survive: the open transaction is aborted or fenced, and the
//! input since the last commit is read again.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The exit status of a process the watchdog stopped (EX_SOFTWARE, sysexits.h).
pub const EXIT_STALLED: i32 = 70;

/// How often the watchdog looks.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// The loop's heartbeat. Until the first beat the watchdog is not armed: start-up has
/// timeouts of its own, and a broker that is not there yet is no stall.
#[derive(Debug)]
pub struct Liveness {
    origin: Instant,
    /// Milliseconds after `origin` of the last beat, plus one; 0 = never beaten.
    last_beat: AtomicU64,
    limit: Duration,
}

/// What /healthz says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Beaten within the limit, or not armed yet.
    Alive,
    /// Not beaten for this long (more than the limit).
    Stalled(Duration),
}

impl Liveness {
    pub fn new(limit: Duration) -> Arc<Liveness> {
        Arc::new(Liveness {
            origin: Instant::now(),
            last_beat: AtomicU64::new(0),
            limit,
        })
    }

    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// The loop turned (or a long step of it made progress).
    pub fn beat(&self) {
        self.beat_at(Instant::now());
    }

    fn beat_at(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.origin).as_millis() as u64;
        self.last_beat.store(ms + 1, Ordering::Relaxed);
    }

    pub fn health(&self) -> Health {
        self.health_at(Instant::now())
    }

    fn health_at(&self, now: Instant) -> Health {
        let last = self.last_beat.load(Ordering::Relaxed);
        if last == 0 {
            return Health::Alive;
        }
        let beaten = self.origin + Duration::from_millis(last - 1);
        let quiet = now.saturating_duration_since(beaten);
        if quiet > self.limit {
            Health::Stalled(quiet)
        } else {
            Health::Alive
        }
    }
}

/// Starts the watchdog thread: once `liveness` is stalled it logs why and calls
/// `on_stall` (the binary exits with [`EXIT_STALLED`]; tests record the call). It looks
/// once a second, so it acts at most a second after the limit.
pub fn spawn_watchdog(
    liveness: Arc<Liveness>,
    on_stall: impl FnOnce(Duration) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("roadwatch-watchdog".into())
        .spawn(move || loop {
            std::thread::sleep(WATCH_EVERY);
            if let Health::Stalled(quiet) = liveness.health() {
                tracing::error!(
                    stalled_s = quiet.as_secs(),
                    limit_s = liveness.limit().as_secs(),
                    "the processing loop has not turned within processing.stall_limit_s (a call into librdkafka that does not return); exiting so that the supervisor restarts roadwatch"
                );
                on_stall(quiet);
                return;
            }
        })
}

/// What the binary does on a stall: exit at once. The open transaction is never
/// committed (the broker aborts it, or the restarted instance fences it).
pub fn exit_on_stall(_quiet: Duration) {
    std::process::exit(EXIT_STALLED);
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn not_armed_before_the_first_beat() {
        let l = Liveness::new(Duration::from_secs(1));
        assert_eq!(
            l.health_at(l.origin + Duration::from_secs(3600)),
            Health::Alive
        );
    }

    #[test]
    fn stalled_only_past_the_limit_after_the_last_beat() {
        let l = Liveness::new(Duration::from_secs(10));
        let t0 = l.origin + Duration::from_secs(5);
        l.beat_at(t0);
        assert_eq!(l.health_at(t0 + Duration::from_secs(10)), Health::Alive);
        assert_eq!(
            l.health_at(t0 + Duration::from_secs(11)),
            Health::Stalled(Duration::from_secs(11))
        );
        // A beat revives it.
        l.beat_at(t0 + Duration::from_secs(12));
        assert_eq!(l.health_at(t0 + Duration::from_secs(13)), Health::Alive);
    }

    #[test]
    fn the_watchdog_acts_once_on_a_stall_and_not_while_beaten() {
        let l = Liveness::new(Duration::from_millis(1500));
        let (tx, rx) = mpsc::channel();
        spawn_watchdog(l.clone(), move |quiet| tx.send(quiet).unwrap()).unwrap();
        // Beaten every 100 ms for 3 s: twice the limit, and no call.
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            l.beat();
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(rx.try_recv().is_err(), "no stall while the loop turns");
        // Then silence: the watchdog acts within the limit plus its one-second look.
        let quiet = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the watchdog acts on a stall");
        assert!(quiet > Duration::from_millis(1500), "{quiet:?}");
        assert!(rx.recv_timeout(Duration::from_secs(2)).is_err(), "once");
    }
}
