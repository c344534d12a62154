//! Counters the engine keeps about itself; adapters turn them into metrics and summaries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub late_dropped: u64,
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
