//! Wall-clock helpers for adapters (the core never reads a clock).

/// Wall-clock epoch milliseconds.
pub fn wall_clock_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
