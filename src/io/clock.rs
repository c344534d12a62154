//! The clocks an adapter reads, injected: the Kafka runtime's sink waits, times its
//! commit intervals and measures alert latency through a [`Clock`], so that its unit
//! tests drive time instead of sleeping (event time needs no such seam: the core takes
//! it from the records).
use std::sync::Arc;
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

/// Monotonic time for intervals and deadlines, wall-clock time for latencies.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    /// Wall-clock epoch milliseconds.
    fn wall_ms(&self) -> i64;
}

/// The process's own clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall_ms(&self) -> i64 {
        super::output::wall_clock_ms()
    }
}

pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to (unit tests). Both readings move together.
#[cfg(test)]
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    wall_base_ms: i64,
    elapsed: std::sync::Mutex<Duration>,
}

#[cfg(test)]
impl ManualClock {
    pub fn new(wall_base_ms: i64) -> Arc<Self> {
        Arc::new(ManualClock {
            base: Instant::now(),
            wall_base_ms,
            elapsed: std::sync::Mutex::new(Duration::ZERO),
        })
    }

    pub fn advance(&self, by: Duration) {
        *self.elapsed.lock().expect("clock lock") += by;
    }

    fn elapsed(&self) -> Duration {
        *self.elapsed.lock().expect("clock lock")
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + self.elapsed()
    }

    fn wall_ms(&self) -> i64 {
        self.wall_base_ms + self.elapsed().as_millis() as i64
    }
}
