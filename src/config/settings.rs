//! The merged configuration tree → typed, validated [`Settings`]. Each key is read on
//! its own so that one bad value does not hide the next; every rule names its key.
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

use super::errors::{ConfigError, ConfigErrors};
use super::kafka_security::KafkaSecurity;
use crate::core::model::{Stream, UtcOffset};
use crate::core::pseudonym::{PseudonymKey, KEY_BYTES_MIN};
use crate::core::settings::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    ExactlyOnce,
    AtLeastOnce,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub camera: String,
    pub plate: String,
    pub weather: String,
    pub patrol: String,
    pub ack: String,
    pub operator: String,
    pub alerts: String,
    pub dlq: String,
    pub dispatch_prefix: String,
}

impl Topics {
    /// The topic an input stream is read from.
    pub fn input(&self, stream: Stream) -> &str {
        match stream {
            Stream::Camera => &self.camera,
            Stream::Plate => &self.plate,
            Stream::Weather => &self.weather,
            Stream::Patrol => &self.patrol,
            Stream::Ack => &self.ack,
            Stream::Operator => &self.operator,
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    pub group_id: String,
    pub client_id: String,
    pub create_topics: bool,
    pub dispatch_topic_partitions: i32,
    pub dispatch_topic_replication: i32,
    pub topics: Topics,
    /// librdkafka properties by their dotted names, passed through verbatim.
    pub options: BTreeMap<String, String>,
    /// Suffix of the transactional id; empty = the host name.
    pub instance_id: String,
    /// `[kafka.security]`: authentication and encryption of every client.
    pub security: KafkaSecurity,
}

/// Written by hand so that secrets in `options` never reach a log line.
impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options: BTreeMap<&str, &str> = self
            .options
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_option(k) {
                    "********"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("group_id", &self.group_id)
            .field("client_id", &self.client_id)
            .field("create_topics", &self.create_topics)
            .field("dispatch_topic_partitions", &self.dispatch_topic_partitions)
            .field(
                "dispatch_topic_replication",
                &self.dispatch_topic_replication,
            )
            .field("topics", &self.topics)
            .field("options", &options)
            .field("instance_id", &self.instance_id)
            .field("security", &self.security)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingSettings {
    pub guarantee: Guarantee,
    pub commit_interval_ms: u64,
    pub max_in_flight_records: usize,
    /// `None` when idle advance is disabled.
    pub idle_advance_after_ms: Option<u64>,
    /// Input re-read before the committed offsets to rebuild detector state (wall-clock ms).
    pub state_rebuild_window_ms: u64,
    /// /readyz is false while the summed consumer lag exceeds this.
    pub ready_max_lag_records: u64,
    /// Records held per partition by the event-time merge before it pauses the partition.
    pub merge_lane_records: usize,
    /// Longest time an empty partition that is behind holds the merge up.
    pub merge_wait_ms: u64,
    /// The Kafka loop not turning for this long is a stall: /healthz fails and the
    /// process exits ([`crate::io::liveness`]).
    pub stall_limit_ms: u64,
}

/// `[scaling]`: the keyed topology of docs/SCALING.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingSettings {
    /// Partitions of each repartition topic (`scaling.partitions`).
    pub partitions: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoadsSettings {
    pub file: PathBuf,
    pub max_snap_m: f64,
    pub strict: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RideHailingFiles {
    pub watchlist_file: Option<PathBuf>,
    pub whitelist_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    pub listen: SocketAddr,
}

/// `roadwatch console` and the demo's console (docs/CONSOLE.md).
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    pub listen: SocketAddr,
    pub accounts_file: Option<PathBuf>,
    /// Empty: a random key per process.
    pub session_secret: String,
    pub session_ttl_ms: u64,
    pub history_window_ms: u64,
    pub login_max_failures: u32,
}

/// Written by hand so that the session key never reaches a log line.
impl fmt::Debug for ConsoleSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleSettings")
            .field("listen", &self.listen)
            .field("accounts_file", &self.accounts_file)
            .field(
                "session_secret",
                &if self.session_secret.is_empty() {
                    ""
                } else {
                    "********"
                },
            )
            .field("session_ttl_ms", &self.session_ttl_ms)
            .field("history_window_ms", &self.history_window_ms)
            .field("login_max_failures", &self.login_max_failures)
            .finish()
    }
}

/// Everything roadwatch runs on: the engine's settings plus the adapters'.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub engine: EngineSettings,
    pub kafka: KafkaSettings,
    pub processing: ProcessingSettings,
    pub scaling: ScalingSettings,
    pub roads: RoadsSettings,
    pub ride_hailing_files: RideHailingFiles,
    pub metrics: MetricsSettings,
    pub console: ConsoleSettings,
    /// Where the plates' pseudonym key (`engine.ride_hailing.plate_key`) came from.
    pub plate_key_source: PlateKeySource,
}

/// Where the pseudonym key came from; a generated one is announced at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlateKeySource {
    /// `privacy.plate_key`, from a file or the environment.
    Configured,
    /// `privacy.plate_key_file`.
    File(PathBuf),
    /// Neither was set: random bytes for this process only.
    Generated,
}

/// Option names that hold credentials: their values are masked wherever shown.
pub(super) fn is_secret_option(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "secret", "token", "pem", "credential"]
        .iter()
        .any(|s| n.contains(s))
}

/// librdkafka names use dots and never underscores, so an environment variable's
/// `SASL_PASSWORD` (which cannot hold a dot) is `sasl.password`.
pub(super) fn option_name(key: &str) -> String {
    key.replace('_', ".")
}

/// Reads keys one at a time, collecting every problem.
pub(super) struct Reader<'a> {
    cfg: &'a config::Config,
    errors: Vec<ConfigError>,
}

impl Reader<'_> {
    pub(super) fn fail(&mut self, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            key: key.to_owned(),
            message: message.into(),
        });
    }

    /// The value, or `None` after recording why it could not be read (so that range
    /// checks do not pile a second message onto a type error).
    pub(super) fn get<T: DeserializeOwned>(&mut self, key: &str, expected: &str) -> Option<T> {
        match self.cfg.get::<T>(key) {
            Ok(v) => Some(v),
            Err(config::ConfigError::NotFound(_)) => {
                self.fail(key, "missing (its section was replaced by a value)");
                None
            }
            Err(_) => {
                let got = self
                    .cfg
                    .get::<config::Value>(key)
                    .map(|v| format!("{v}"))
                    .unwrap_or_default();
                self.fail(key, format!("expected {expected}, got {got:?}"));
                None
            }
        }
    }

    pub(super) fn string(&mut self, key: &str) -> String {
        self.get(key, "a string").unwrap_or_default()
    }

    fn non_empty(&mut self, key: &str) -> String {
        let Some(s) = self.get::<String>(key, "a string") else {
            return String::new();
        };
        if s.trim().is_empty() {
            self.fail(key, "must not be empty");
        }
        s
    }

    pub(super) fn boolean(&mut self, key: &str) -> bool {
        self.get(key, "true or false").unwrap_or_default()
    }

    fn float(&mut self, key: &str, min: f64, max: f64) -> f64 {
        let Some(x) = self.get::<f64>(key, "a number") else {
            return min;
        };
        if !(min..=max).contains(&x) {
            self.fail(key, format!("{x} is outside {min}..={max}"));
        }
        x
    }

    fn positive(&mut self, key: &str) -> f64 {
        let Some(x) = self.get::<f64>(key, "a number") else {
            return 1.0;
        };
        if !(x.is_finite() && x > 0.0) {
            self.fail(key, format!("{x} must be a positive number"));
        }
        x
    }

    fn int(&mut self, key: &str, min: i64, max: i64) -> i64 {
        let Some(x) = self.get::<i64>(key, "an integer") else {
            return min;
        };
        if !(min..=max).contains(&x) {
            self.fail(key, format!("{x} is outside {min}..={max}"));
        }
        x
    }

    /// A duration key in seconds, as event-time milliseconds.
    fn seconds_ms(&mut self, key: &str, min_s: i64) -> i64 {
        self.int(key, min_s, 365 * 86_400) * 1000
    }

    /// A fixed-length list of thresholds, strictly monotonic in the given direction.
    fn levels<const N: usize>(&mut self, key: &str, decreasing: bool) -> [f64; N] {
        let Some(v) = self.get::<Vec<f64>>(key, "a list of numbers") else {
            return [0.0; N];
        };
        let Ok(arr) = <[f64; N]>::try_from(v.clone()) else {
            self.fail(key, format!("expected {N} numbers, got {}", v.len()));
            return [0.0; N];
        };
        let ordered = arr
            .windows(2)
            .all(|w| if decreasing { w[0] > w[1] } else { w[0] < w[1] });
        if !ordered || arr.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
            let order = if decreasing {
                "decreasing"
            } else {
                "increasing"
            };
            self.fail(
                key,
                format!("must be {N} positive numbers, strictly {order}"),
            );
        }
        arr
    }

    pub(super) fn optional_path(&mut self, key: &str) -> Option<PathBuf> {
        let s = self.string(key);
        (!s.trim().is_empty()).then(|| PathBuf::from(s))
    }

    fn topic(&mut self, key: &str) -> String {
        let s = self.non_empty(key);
        if !is_valid_topic_name(&s) {
            self.fail(
                key,
                format!("{s:?} is not a Kafka topic name ([A-Za-z0-9._-], at most 249)"),
            );
        }
        s
    }
}

fn is_valid_topic_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 249
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

pub(super) fn from_config(cfg: &config::Config) -> Result<Settings, ConfigErrors> {
    let mut r = Reader {
        cfg,
        errors: Vec::new(),
    };

    let kafka = KafkaSettings {
        bootstrap_servers: r.non_empty("kafka.bootstrap_servers"),
        group_id: r.non_empty("kafka.group_id"),
        client_id: r.non_empty("kafka.client_id"),
        create_topics: r.boolean("kafka.create_topics"),
        dispatch_topic_partitions: r.int("kafka.dispatch_topic_partitions", 1, 10_000) as i32,
        dispatch_topic_replication: {
            let rf = r.int("kafka.dispatch_topic_replication", -1, 32);
            if rf == 0 {
                r.fail(
                    "kafka.dispatch_topic_replication",
                    "must be at least 1, or -1 for the broker default",
                );
            }
            rf as i32
        },
        topics: Topics {
            camera: r.topic("kafka.topics.camera"),
            plate: r.topic("kafka.topics.plate"),
            weather: r.topic("kafka.topics.weather"),
            patrol: r.topic("kafka.topics.patrol"),
            ack: r.topic("kafka.topics.ack"),
            operator: r.topic("kafka.topics.operator"),
            alerts: r.topic("kafka.topics.alerts"),
            dlq: r.topic("kafka.topics.dlq"),
            dispatch_prefix: r.topic("kafka.topics.dispatch_prefix"),
        },
        options: {
            let raw: BTreeMap<String, config::Value> =
                r.get("kafka.options", "a table").unwrap_or_default();
            raw.into_iter()
                .map(|(k, v)| (option_name(&k), v.to_string()))
                .collect()
        },
        instance_id: {
            let id = r.string("kafka.instance_id");
            if !id.is_empty() && !is_valid_topic_name(&id) {
                r.fail(
                    "kafka.instance_id",
                    format!("{id:?} may hold only [A-Za-z0-9._-] (it becomes part of the transactional id)"),
                );
            }
            id
        },
        security: super::kafka_security::read(&mut r),
    };

    let guarantee = match r.string("processing.guarantee").as_str() {
        "exactly_once" => Guarantee::ExactlyOnce,
        "at_least_once" => Guarantee::AtLeastOnce,
        other => {
            r.fail(
                "processing.guarantee",
                format!("{other:?} is not \"exactly_once\" or \"at_least_once\""),
            );
            Guarantee::ExactlyOnce
        }
    };
    let processing = ProcessingSettings {
        guarantee,
        commit_interval_ms: r.int("processing.commit_interval_ms", 1, 60_000) as u64,
        max_in_flight_records: r.int("processing.max_in_flight_records", 1, 10_000_000) as usize,
        idle_advance_after_ms: match r.int("time.idle_advance_after_s", 0, 86_400) {
            0 => None,
            s => Some(s as u64 * 1000),
        },
        state_rebuild_window_ms: r.int("processing.state_rebuild_window_s", 0, 90 * 86_400) as u64
            * 1000,
        ready_max_lag_records: r.int("processing.ready_max_lag_records", 1, i64::MAX) as u64,
        merge_lane_records: r.int("processing.merge_lane_records", 1, 10_000_000) as usize,
        merge_wait_ms: r.int("processing.merge_wait_ms", 0, 600_000) as u64,
        stall_limit_ms: r.int("processing.stall_limit_s", 10, 86_400) as u64 * 1000,
    };

    let scaling = ScalingSettings {
        partitions: r.int("scaling.partitions", 1, 10_000) as i32,
    };

    let time = TimeSettings {
        allowed_lateness_ms: r.seconds_ms("time.allowed_lateness_s", 0),
        max_future_skew_ms: r.seconds_ms("time.max_future_skew_s", 0),
    };

    let roads = RoadsSettings {
        file: PathBuf::from(r.non_empty("roads.file")),
        max_snap_m: r.positive("roads.max_snap_m"),
        strict: r.boolean("roads.strict"),
    };

    let pedestrian = PedestrianSettings {
        min_confidence: r.float("pedestrian.min_confidence", 0.0, 1.0),
        confirm_single_confidence: r.float("pedestrian.confirm_single_confidence", 0.0, 1.0),
        confirm_window_ms: r.seconds_ms("pedestrian.confirm_window_s", 1),
        confirm_distance_m: r.positive("pedestrian.confirm_distance_m"),
        incident_radius_m: r.positive("pedestrian.incident_radius_m"),
        clear_after_ms: r.seconds_ms("pedestrian.clear_after_s", 1),
        critical_fog_level: r.int("pedestrian.critical_fog_level", 1, 4) as u8,
        unverified_close_ms: r.seconds_ms("pedestrian.unverified_close_s", 1),
        reopen_within_ms: r.seconds_ms("pedestrian.reopen_within_s", 0),
    };

    let weather = WeatherSettings {
        stretch_m: r.positive("weather.stretch_m"),
        visibility_levels_m: r.levels("weather.visibility_levels_m", true),
        ice_surface_temp_c: r.float("weather.ice_surface_temp_c", -30.0, 10.0),
        wind_gust_levels_mps: r.levels("weather.wind_gust_levels_ms", false),
        rain_levels_mm_h: r.levels("weather.rain_levels_mm_h", false),
        enter_count: r.int("weather.enter_count", 1, 100) as u32,
        enter_count_critical: r.int("weather.enter_count_critical", 1, 100) as u32,
        leave_count: r.int("weather.leave_count", 1, 100) as u32,
        leave_margin: r.float("weather.leave_margin", 0.0, 0.99),
        forecast_enabled: r.boolean("weather.forecast_enabled"),
        forecast_visibility_m: r.positive("weather.forecast_visibility_m"),
        forecast_max_visibility_m: r.positive("weather.forecast_max_visibility_m"),
        forecast_horizon_ms: r.seconds_ms("weather.forecast_horizon_s", 1),
        forecast_min_observations: r.int("weather.forecast_min_observations", 2, 1000) as u32,
        silent_after_ms: r.seconds_ms("weather.silent_after_s", 1),
    };
    let lifecycle = LifecycleSettings {
        unattended_close_ms: r.seconds_ms("lifecycle.unattended_close_s", 1),
    };

    let input = InputLimits {
        max_record_bytes: r.int("input.max_record_bytes", 1024, 100 * 1_048_576) as usize,
        max_detections: r.int("input.max_detections_per_record", 1, 1_000_000) as usize,
    };
    let (plate_key, plate_key_source) = plate_key(&mut r);
    let ride_hailing = RideHailingSettings {
        watchlist_cooldown_ms: r.seconds_ms("ride_hailing.watchlist_cooldown_s", 0),
        trip_gap_ms: r.seconds_ms("ride_hailing.trip_gap_s", 1),
        window_ms: r.int("ride_hailing.window_days", 1, 90) * 86_400_000,
        daily_distance_km: r.positive("ride_hailing.daily_distance_km"),
        score_threshold: r.float("ride_hailing.score_threshold", 0.01, 1.0),
        pattern_cooldown_ms: r.seconds_ms("ride_hailing.pattern_cooldown_s", 0),
        max_tracked_plates: r.int("ride_hailing.max_tracked_plates", 1, 100_000_000) as usize,
        plate_key,
    };
    let ride_hailing_files = RideHailingFiles {
        watchlist_file: r.optional_path("ride_hailing.watchlist_file"),
        whitelist_file: r.optional_path("ride_hailing.whitelist_file"),
    };

    let dispatch = DispatchSettings {
        max_position_age_ms: r.seconds_ms("dispatch.max_position_age_s", 1),
        speed_mps: r.positive("dispatch.speed_ms"),
        straight_line_factor: r.float("dispatch.straight_line_factor", 1.0, 10.0),
        ack_timeout_ms: r.seconds_ms("dispatch.ack_timeout_s", 1),
        max_attempts: r.int("dispatch.max_attempts", 1, 100) as u32,
        busy_after_arrived_ms: r.seconds_ms("dispatch.busy_after_arrived_s", 0),
        allow_median_uturn: r.boolean("dispatch.allow_median_uturn"),
        intercept_vehicle_speed_mps: r.positive("dispatch.intercept_vehicle_speed_ms"),
    };

    let locale_text = r.string("output.locale");
    let locale = Locale::parse(&locale_text).unwrap_or_else(|| {
        r.fail(
            "output.locale",
            format!("{locale_text:?} is not \"zh-CN\" or \"en\""),
        );
        Locale::ZhCn
    });
    let offset_text = r.string("output.utc_offset");
    let utc_offset = UtcOffset::parse(&offset_text).unwrap_or_else(|| {
        r.fail(
            "output.utc_offset",
            format!("{offset_text:?} is not an offset like \"+08:00\""),
        );
        UtcOffset::china_standard_time()
    });
    let output = OutputSettings { locale, utc_offset };

    let listen_text = r.string("metrics.listen");
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        r.fail(
            "metrics.listen",
            format!("{listen_text:?} is not an address like \"127.0.0.1:9898\""),
        );
        SocketAddr::from(([127, 0, 0, 1], 9898))
    });

    let console_listen_text = r.string("console.listen");
    let console_listen = console_listen_text
        .parse::<SocketAddr>()
        .unwrap_or_else(|_| {
            r.fail(
                "console.listen",
                format!("{console_listen_text:?} is not an address like \"127.0.0.1:8080\""),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
    let console = ConsoleSettings {
        listen: console_listen,
        accounts_file: r.optional_path("console.accounts_file"),
        session_secret: r.string("console.session_secret"),
        session_ttl_ms: r.seconds_ms("console.session_ttl_s", 60) as u64,
        history_window_ms: r.seconds_ms("console.history_window_s", 0) as u64,
        login_max_failures: r.int("console.login_max_failures", 1, 1_000) as u32,
    };

    if !r.errors.is_empty() {
        return Err(ConfigErrors(r.errors));
    }
    Ok(Settings {
        engine: EngineSettings {
            input,
            time,
            pedestrian,
            weather,
            ride_hailing,
            dispatch,
            lifecycle,
            output,
        },
        kafka,
        processing,
        roads,
        ride_hailing_files,
        metrics: MetricsSettings { listen },
        console,
        plate_key_source,
        scaling,
    })
}

/// `privacy.plate_key` or `privacy.plate_key_file` (one of them), or a random key.
fn plate_key(r: &mut Reader<'_>) -> (PseudonymKey, PlateKeySource) {
    const KEY: &str = "privacy.plate_key";
    const FILE: &str = "privacy.plate_key_file";
    let inline = r.string(KEY);
    let file = r.optional_path(FILE);
    let (text, key, source) = match (inline.trim().is_empty(), file) {
        (true, None) => {
            // One key per process, however often configuration is loaded, so that all of
            // a run's ids agree; from the operating system's generator.
            static GENERATED: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
            let bytes = GENERATED.get_or_init(|| {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).expect("the operating system's random generator");
                bytes
            });
            return (PseudonymKey::from_bytes(bytes), PlateKeySource::Generated);
        }
        (false, Some(_)) => {
            r.fail(KEY, format!("set either {KEY} or {FILE}, not both"));
            return (
                PseudonymKey::from_bytes(&[0; 32]),
                PlateKeySource::Configured,
            );
        }
        (false, None) => (inline, KEY, PlateKeySource::Configured),
        (true, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(text) => (text, FILE, PlateKeySource::File(path)),
            Err(e) => {
                r.fail(FILE, format!("cannot read {}: {e}", path.display()));
                return (
                    PseudonymKey::from_bytes(&[0; 32]),
                    PlateKeySource::File(path),
                );
            }
        },
    };
    // The value itself never goes into a message: it is the secret.
    match PseudonymKey::from_hex(&text) {
        Some(k) if k.len() >= KEY_BYTES_MIN => (k, source),
        Some(k) => {
            r.fail(
                key,
                format!(
                    "the key has {} bytes; at least {KEY_BYTES_MIN} (32 hex characters) are needed",
                    k.len()
                ),
            );
            (k, source)
        }
        None => {
            r.fail(
                key,
                "not a key in hex (e.g. the output of `openssl rand -hex 32`)",
            );
            (PseudonymKey::from_bytes(&[0; 32]), source)
        }
    }
}
