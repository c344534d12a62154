//! Typed, validated settings the core runs on. Built by roadwatch's `config` module from
//! the layered configuration; durations are event-time milliseconds so they add to timestamps directly.
use super::model::UtcOffset;
use super::pseudonym::PseudonymKey;

/// Bounds on one input record, so that hostile input costs bounded memory and time
/// (docs/SECURITY.md): beyond them a record goes to the DLQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// Larger record values are refused unparsed (`record_too_large`).
    pub max_record_bytes: usize,
    /// Camera events with more detections are refused (`too_many_detections`).
    pub max_detections: usize,
}

impl InputLimits {
    /// config/default.toml's values (a test or a bench that builds its own context).
    pub const DEFAULT: InputLimits = InputLimits {
        max_record_bytes: 1_048_576,
        max_detections: 1_000,
    };
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimeSettings {
    /// Records up to this much older than the engine clock are still applied.
    pub allowed_lateness_ms: i64,
    /// A `ts` further than this ahead of the reference clock is bad input.
    pub max_future_skew_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PedestrianSettings {
    pub min_confidence: f64,
    pub confirm_single_confidence: f64,
    pub confirm_window_ms: i64,
    pub confirm_distance_m: f64,
    pub incident_radius_m: f64,
    pub clear_after_ms: i64,
    pub critical_fog_level: u8,
    /// An incident out of sight that no unit accepted closes (`unknown`) after this.
    pub unverified_close_ms: i64,
    /// A cleared incident can be reopened by a detection nearby for this long.
    pub reopen_within_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeatherSettings {
    pub stretch_m: f64,
    /// Thresholds of visibility levels 1..4, strictly decreasing.
    pub visibility_levels_m: [f64; 4],
    pub ice_surface_temp_c: f64,
    /// Gust thresholds of Beaufort force 8, 10, 12, increasing.
    pub wind_gust_levels_mps: [f64; 3],
    /// Rain thresholds for warning and severe, increasing.
    pub rain_levels_mm_h: [f64; 2],
    pub enter_count: u32,
    pub enter_count_critical: u32,
    pub leave_count: u32,
    pub leave_margin: f64,
    pub forecast_enabled: bool,
    pub forecast_visibility_m: f64,
    /// Visibility below which a falling trend is considered at all (fog, WMO: < 1 km).
    pub forecast_max_visibility_m: f64,
    pub forecast_horizon_ms: i64,
    pub forecast_min_observations: u32,
    /// A station with no observation for this long turns its alerts `observed: false`.
    pub silent_after_ms: i64,
}

/// What ends alerts whose condition has no end of its own (docs/LIFECYCLE.md).
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleSettings {
    /// A ride-hailing alert that no unit holds closes `unknown` this long after its last
    /// document.
    pub unattended_close_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RideHailingSettings {
    pub watchlist_cooldown_ms: i64,
    pub trip_gap_ms: i64,
    pub window_ms: i64,
    pub daily_distance_km: f64,
    pub score_threshold: f64,
    pub pattern_cooldown_ms: i64,
    pub max_tracked_plates: usize,
    /// Key of the plates' pseudonyms in alert ids (`privacy.plate_key`).
    pub plate_key: PseudonymKey,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DispatchSettings {
    pub max_position_age_ms: i64,
    pub speed_mps: f64,
    pub straight_line_factor: f64,
    pub ack_timeout_ms: i64,
    pub max_attempts: u32,
    pub busy_after_arrived_ms: i64,
    pub allow_median_uturn: bool,
    /// Speed assumed for a vehicle being intercepted, to tell whether a unit gets to the
    /// interception point first.
    pub intercept_vehicle_speed_mps: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    ZhCn,
    En,
}

impl Locale {
    pub fn parse(s: &str) -> Option<Locale> {
        match s {
            "zh-CN" => Some(Locale::ZhCn),
            "en" => Some(Locale::En),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutputSettings {
    pub locale: Locale,
    pub utc_offset: UtcOffset,
}

/// Everything the engine needs, in one value that tests can build by hand.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    pub input: InputLimits,
    pub time: TimeSettings,
    pub pedestrian: PedestrianSettings,
    pub weather: WeatherSettings,
    pub ride_hailing: RideHailingSettings,
    pub dispatch: DispatchSettings,
    pub lifecycle: LifecycleSettings,
    pub output: OutputSettings,
}

impl EngineSettings {
    /// The values of config/default.toml, for tests and benches that build an engine
    /// without the configuration loader (which lives outside this crate). The loader's
    /// test `engine_defaults_are_default_toml` keeps the two equal. The pseudonym key has
    /// no default: the caller chooses it, as `privacy.plate_key` does.
    pub fn documented_defaults(plate_key: PseudonymKey) -> Self {
        const MINUTE: i64 = 60_000;
        EngineSettings {
            input: InputLimits::DEFAULT,
            time: TimeSettings {
                allowed_lateness_ms: 30_000,
                max_future_skew_ms: 5 * MINUTE,
            },
            pedestrian: PedestrianSettings {
                min_confidence: 0.5,
                confirm_single_confidence: 0.85,
                confirm_window_ms: 10_000,
                confirm_distance_m: 100.0,
                incident_radius_m: 500.0,
                clear_after_ms: 2 * MINUTE,
                critical_fog_level: 2,
                unverified_close_ms: 30 * MINUTE,
                reopen_within_ms: 5 * MINUTE,
            },
            weather: WeatherSettings {
                stretch_m: 5000.0,
                visibility_levels_m: [500.0, 200.0, 100.0, 50.0],
                ice_surface_temp_c: 0.0,
                wind_gust_levels_mps: [17.2, 24.5, 32.7],
                rain_levels_mm_h: [20.0, 50.0],
                enter_count: 2,
                enter_count_critical: 1,
                leave_count: 3,
                leave_margin: 0.2,
                forecast_enabled: true,
                forecast_visibility_m: 200.0,
                forecast_max_visibility_m: 1000.0,
                forecast_horizon_ms: 30 * MINUTE,
                forecast_min_observations: 3,
                silent_after_ms: 30 * MINUTE,
            },
            ride_hailing: RideHailingSettings {
                watchlist_cooldown_ms: 30 * MINUTE,
                trip_gap_ms: 30 * MINUTE,
                window_ms: 7 * 24 * 60 * MINUTE,
                daily_distance_km: 85.8,
                score_threshold: 0.7,
                pattern_cooldown_ms: 24 * 60 * MINUTE,
                max_tracked_plates: 2_000_000,
                plate_key,
            },
            dispatch: DispatchSettings {
                max_position_age_ms: 2 * MINUTE,
                speed_mps: 25.0,
                straight_line_factor: 1.3,
                ack_timeout_ms: MINUTE,
                max_attempts: 3,
                busy_after_arrived_ms: 30 * MINUTE,
                allow_median_uturn: false,
                intercept_vehicle_speed_mps: 27.8,
            },
            lifecycle: LifecycleSettings {
                unattended_close_ms: 30 * MINUTE,
            },
            output: OutputSettings {
                locale: Locale::ZhCn,
                utc_offset: UtcOffset::china_standard_time(),
            },
        }
    }
}

/// The documented defaults with a fixed key: the unit tests' settings.
#[cfg(test)]
pub(crate) fn test_settings() -> EngineSettings {
    EngineSettings::documented_defaults(PseudonymKey::from_bytes(b"roadwatch core unit tests"))
}
