//! Ground truth: what really happened in a simulated run, for scoring detectors
//! (precision, recall, time to alert) and for checking the DLQ. docs/SIMULATOR.md
//! defines each entry. Times are epoch milliseconds of event time; lists are in the
//! order the simulator created them, which is deterministic.
use std::collections::BTreeMap;

use serde::Serialize;

use roadwatch_core::model::{Alert, AlertKind, Outcome};

/// Everything the simulator knows about a run. Complete once the run has ended; the
/// parts that depend on emitted records (first sightings, counts) grow while it runs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroundTruth {
    pub seed: u64,
    /// First event time of the scored run (`SimConfig::start_ms`).
    pub start_ms: i64,
    /// Event time just past the last record.
    pub end_ms: i64,
    /// First event time of the plate-read warm-up (equals `start_ms` without warm-up).
    pub warmup_start_ms: i64,
    pub devices: Devices,

    /// People and non-motor vehicles on the carriageway: the incidents to detect.
    pub pedestrian_incidents: Vec<PedestrianIncident>,
    /// People the cameras saw where they are allowed to be: not incidents.
    pub people_not_incidents: PeopleNotIncidents,
    /// Detections that are noise, by kind.
    pub camera_noise: CameraNoise,

    pub illegal_operators: Vec<OperatorTruth>,
    /// Licensed operators: they drive like operators but are on the whitelist.
    pub licensed_operators: Vec<OperatorTruth>,
    /// The whitelist to give the engine (`ride_hailing.whitelist_file`).
    pub whitelist_plates: Vec<String>,
    /// The watchlist to give the engine (`ride_hailing.watchlist_file`).
    pub watchlist_plates: Vec<String>,
    /// Each watchlisted plate: what it is and when it was first read.
    pub watchlist: Vec<WatchlistEntry>,
    /// Recurring vehicles that are not operators but drive far or often (long-distance
    /// commuters, buses): where a pattern detector's false alarms come from.
    pub hard_negatives: Vec<RecurringVehicle>,

    pub weather_episodes: Vec<WeatherEpisode>,
    pub weather_dropouts: Vec<WeatherDropout>,
    /// Stations that lack a sensor for the whole run (always `null`).
    pub missing_sensors: Vec<MissingSensor>,
    /// Single noisy readings that look like weather but are not (must not alert).
    pub weather_noise_readings: u64,

    pub patrol_units: Vec<PatrolUnitTruth>,
    /// How the simulated patrol apps answered dispatches (demo only; empty without an
    /// engine).
    pub dispatch_answers: Vec<DispatchAnswer>,

    /// Records deliberately broken, by the DLQ reason they must be refused with.
    pub expected_dlq: BTreeMap<String, u64>,
    /// Records emitted, by stream (dirty copies included).
    pub records_by_stream: BTreeMap<String, u64>,
    /// Records delivered after later ones (always within 30 s).
    pub late_records: u64,
    pub plate_reads_missed: u64,
    pub plate_misreads: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Devices {
    pub cameras: usize,
    pub tunnel_cameras: usize,
    pub anpr_gantries: usize,
    pub service_area_readers: usize,
    pub weather_stations: usize,
    pub trip_ends: usize,
}

/// A person, bicycle or tricycle on a carriageway.
#[derive(Debug, Clone, Serialize)]
pub struct PedestrianIncident {
    pub id: String,
    /// `pedestrian`, `bicycle` or `tricycle`.
    pub class: &'static str,
    pub road_id: String,
    pub direction: &'static str,
    /// `tunnel`, `bridge` or `null` where the incident began.
    pub structure: Option<&'static str>,
    pub stake_start_m: f64,
    pub stake_end_m: f64,
    pub lon: f64,
    pub lat: f64,
    /// When the person was on the carriageway.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Cameras that reported them.
    pub cameras: Vec<String>,
    pub detections: u32,
    /// Detections that qualify under DOMAIN.md (class, confidence ≥ 0.5, on the
    /// carriageway, outside service areas, toll plazas and active work zones).
    pub qualifying_detections: u32,
    /// Whether the emitted detections meet DOMAIN.md's confirmation rule (two
    /// qualifying ≤ 10 s and ≤ 100 m apart, or one ≥ 0.85): a detector following the
    /// rules must alert; the others are the hard, poorly seen cases.
    pub detectable: bool,
    /// The event time at which the rule is first met: the earliest possible alert.
    pub confirmable_at_ms: Option<i64>,
    pub first_detection_ms: Option<i64>,
    pub last_detection_ms: Option<i64>,
    /// Highest fog level (DOMAIN.md, from the true visibility) at a station within 5 km
    /// on the same road when the person was first seen.
    pub fog_level: u8,
    /// DOMAIN.md severity: `critical` in a tunnel, on a bridge or in fog of level 2 or
    /// more (true visibility; an engine sees fog only after its entry rule), else
    /// `severe`.
    pub expected_severity: &'static str,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PeopleNotIncidents {
    /// People walking in service areas.
    pub service_area: u64,
    /// People beside the road, off the carriageway.
    pub roadside: u64,
    /// Work-zone crews (people inside an active work zone).
    pub work_zone_crews: Vec<WorkZoneCrew>,
    /// Detections of all of the above.
    pub detections: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkZoneCrew {
    pub zone: String,
    pub workers: u32,
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CameraNoise {
    /// Pedestrians below confidence 0.5 (never qualify).
    pub low_confidence: u64,
    /// Lone false pedestrians with confidence 0.5–0.8 on the carriageway, one frame
    /// each (never confirmed alone).
    pub phantom_single: u64,
    /// Confident false detections off the road.
    pub off_road: u64,
    pub animal: u64,
    pub other: u64,
    /// Classes the contract does not list (counted and ignored).
    pub unknown_class: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OperatorTruth {
    pub plate: String,
    pub plate_color: &'static str,
    pub vehicle_class: &'static str,
    /// The two trip ends it shuttles between.
    pub origin: String,
    pub destination: String,
    pub route_km: f64,
    pub watchlisted: bool,
    /// Per local day with trips: date, trips, km.
    pub days: Vec<DayActivity>,
    pub first_seen_ms: Option<i64>,
    pub reads: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayActivity {
    /// Local date, `YYYY-MM-DD`.
    pub date: String,
    pub trips: u32,
    pub km: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WatchlistEntry {
    pub plate: String,
    /// `illegal_operator`, `suspect_vehicle` or `absent` (never on this network).
    pub kind: &'static str,
    pub first_seen_ms: Option<i64>,
    pub reads: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecurringVehicle {
    pub plate: String,
    /// `long_distance_commuter` or `bus`.
    pub kind: &'static str,
    pub route_km: f64,
}

/// A spell of severe weather at one station.
#[derive(Debug, Clone, Serialize)]
pub struct WeatherEpisode {
    pub id: String,
    pub station_id: String,
    /// `fog`, `ice`, `wind` or `rain`.
    pub subtype: &'static str,
    /// Highest DOMAIN.md level the true (noise-free) values reach.
    pub level: u8,
    /// Severity of that level.
    pub severity: &'static str,
    /// When the true values are at level 1 or above.
    pub start_ms: i64,
    pub end_ms: i64,
    /// The whole episode, build-up and decay included.
    pub onset_ms: i64,
    pub over_ms: i64,
    /// Worst true value: visibility m, surface °C, gust m/s, rain mm/h.
    pub peak_value: f64,
    pub peak_ms: i64,
    pub road_id: Option<String>,
    pub stake_m: Option<f64>,
}

/// A sensor that reported `null`, or a station that sent nothing, for a while.
#[derive(Debug, Clone, Serialize)]
pub struct WeatherDropout {
    pub station_id: String,
    /// The measurement affected, or `all` when no report was sent.
    pub sensor: &'static str,
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MissingSensor {
    pub station_id: String,
    pub sensor: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct PatrolUnitTruth {
    pub unit_id: String,
    pub road_id: String,
    pub section: String,
    /// `24h` or `day` (07:00–23:00 local).
    pub shift: &'static str,
}

/// One dispatch the simulated patrol app received and how it answered.
#[derive(Debug, Clone, Serialize)]
pub struct DispatchAnswer {
    pub alert_id: String,
    pub unit_id: String,
    pub attempt: u32,
    pub alert_kind: &'static str,
    /// Event time of the alert that carried the dispatch.
    pub received_ms: i64,
    /// `accepted`, `declined` or `silent`.
    pub decision: &'static str,
    pub answer_ms: Option<i64>,
    pub arrived_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
    /// Metres the unit drove to get there (accepted only).
    pub route_m: Option<f64>,
}

/// How far (stake metres) and how late after a pedestrian incident a crew still counts
/// the alert as that incident: the demo's scoring uses narrower windows for the first
/// raise; a crew may come on a re-dispatch minutes later.
const ON_SCENE_STAKE_SLACK_M: f64 = 600.0;
const ON_SCENE_LATE_MS: i64 = 30 * 60_000;
/// A crew arriving this long after the person left finds nobody (`not_found`).
const GONE_AFTER_MS: i64 = 60_000;

impl GroundTruth {
    /// What a crew that arrives at `arrived_ms` finds for `alert` (whose document is of
    /// `alert_ms`): `confirmed` when the truth has the incident, weather or vehicle,
    /// `not_found` when the person had left the road well before it came, `false_alarm`
    /// when the truth has nothing there.
    pub fn on_scene(&self, alert: &Alert, alert_ms: i64, arrived_ms: i64) -> Outcome {
        match alert.kind {
            AlertKind::Pedestrian => {
                let loc = &alert.location;
                let hit = self.pedestrian_incidents.iter().find(|i| {
                    let (lo, hi) = (
                        i.stake_start_m.min(i.stake_end_m),
                        i.stake_start_m.max(i.stake_end_m),
                    );
                    loc.road_id.as_deref() == Some(i.road_id.as_str())
                        && loc.direction.as_deref() == Some(i.direction)
                        && loc.stake_m.is_some_and(|s| {
                            (lo - ON_SCENE_STAKE_SLACK_M..=hi + ON_SCENE_STAKE_SLACK_M)
                                .contains(&(s as f64))
                        })
                        && (i.start_ms - 30_000..=i.end_ms + ON_SCENE_LATE_MS).contains(&alert_ms)
                });
                match hit {
                    Some(i) if arrived_ms > i.end_ms + GONE_AFTER_MS => Outcome::NotFound,
                    Some(_) => Outcome::Confirmed,
                    None => Outcome::FalseAlarm,
                }
            }
            AlertKind::SevereWeather => {
                let station = alert.details.get("station_id").and_then(|v| v.as_str());
                let real = self.weather_episodes.iter().any(|e| {
                    station == Some(e.station_id.as_str())
                        && alert.subtype == e.subtype
                        && (e.start_ms - ON_SCENE_LATE_MS..=e.over_ms + ON_SCENE_LATE_MS)
                            .contains(&alert_ms)
                });
                if real {
                    Outcome::Confirmed
                } else {
                    Outcome::FalseAlarm
                }
            }
            AlertKind::IllegalRideHailing => {
                let plate = alert.details.get("plate").and_then(|v| v.as_str());
                let real = plate.is_some_and(|p| match alert.subtype.as_str() {
                    "watchlist" => self.watchlist_plates.iter().any(|w| w == p),
                    _ => self.illegal_operators.iter().any(|o| o.plate == p),
                });
                if real {
                    Outcome::Confirmed
                } else {
                    Outcome::FalseAlarm
                }
            }
        }
    }
}
