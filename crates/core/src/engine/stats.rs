//! Counters the engine keeps about itself; adapters turn them into metrics and summaries.
use crate::model::Stream;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Accepted records per stream, in `Stream::ALL` order.
    pub records: [u64; 6],
    pub late_dropped: u64,
    /// Camera detections of classes the contract does not list (ignored).
    pub unknown_classes: u64,
    pub alerts: u64,
    pub open_incidents: usize,
    pub weather_stations: usize,
    pub tracked_plates: usize,
    /// Plates dropped to stay within `ride_hailing.max_tracked_plates`.
    pub evicted_plates: u64,
    /// Patrol units known to the dispatcher, and alerts assigned to one.
    pub units: usize,
    pub open_assignments: usize,
    /// Weather stations silent for `weather.silent_after_s` or longer.
    pub silent_weather_stations: usize,
    /// Open escalated alerts nobody in the command center has acknowledged.
    pub escalated_unacknowledged: usize,
}

impl EngineStats {
    pub fn count(&mut self, stream: Stream) {
        let i = Stream::ALL.iter().position(|s| *s == stream).unwrap_or(0);
        self.records[i] += 1;
    }

    pub fn records_of(&self, stream: Stream) -> u64 {
        let i = Stream::ALL.iter().position(|s| *s == stream).unwrap_or(0);
        self.records[i]
    }
}
