//! Road weather stations: a quiet baseline (diurnal temperature, light wind, clear air)
//! with episodes of fog, freezing (凝冻), wind gusts and heavy rain laid over it, sensor
//! noise, sensors that report `null` for a while, stations that go silent, and single
//! noisy readings that must not raise an alert.
//!
//! Each episode is a shape in time — build-up, hold, decay — scaled by an intensity in
//! 0..1. The truth is computed from the noise-free values with DOMAIN.md's default
//! thresholds; the reports add noise, so a detector's hysteresis is exercised.
use std::f64::consts::TAU;

use super::config::DAY_MS;
use super::rng::Rng;
use super::traffic::day_start_ms;
use super::truth::{GroundTruth, MissingSensor, WeatherDropout, WeatherEpisode};
use super::SimConfig;
use roadwatch_core::model::RoadSurfaceState;
use roadwatch_core::roads::RoadNetwork;

const TAG_STATIONS: u64 = 0x0057_5853;
const TAG_EPISODES: u64 = 0x0057_5845;
const TAG_REPORTS: u64 = 0x0057_5852;

/// DOMAIN.md defaults, used for the truth only (the engine has its own configuration).
const VISIBILITY_LEVELS_M: [f64; 4] = [500.0, 200.0, 100.0, 50.0];
const GUST_LEVELS_MS: [f64; 3] = [17.2, 24.5, 32.7];
const RAIN_LEVELS_MM_H: [f64; 2] = [20.0, 50.0];
/// Truth sampling step.
const TRUTH_STEP_MS: i64 = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WxKind {
    Fog,
    Ice,
    Wind,
    Rain,
}

impl WxKind {
    fn as_str(self) -> &'static str {
        match self {
            WxKind::Fog => "fog",
            WxKind::Ice => "ice",
            WxKind::Wind => "wind",
            WxKind::Rain => "rain",
        }
    }
}

#[derive(Debug, Clone)]
struct Episode {
    kind: WxKind,
    onset: i64,
    full: i64,
    fade: i64,
    over: i64,
    /// Visibility m (fog, rain), surface °C (ice), gust m/s (wind), mm/h (rain).
    peak: f64,
    /// Rain only: the visibility the heaviest rain brings.
    rain_visibility: f64,
    /// Ice only: whether the surface ices over (else it stays wet).
    ices: bool,
}

impl Episode {
    fn intensity(&self, t: i64) -> f64 {
        if t <= self.onset || t >= self.over {
            0.0
        } else if t < self.full {
            (t - self.onset) as f64 / (self.full - self.onset).max(1) as f64
        } else if t <= self.fade {
            1.0
        } else {
            (self.over - t) as f64 / (self.over - self.fade).max(1) as f64
        }
    }
}

/// Which measurements a report carries (a station may lack a sensor).
#[derive(Debug, Clone, Copy)]
struct Sensors {
    visibility: bool,
    wind: bool,
    surface: bool,
}

#[derive(Debug, Clone)]
struct Dropout {
    /// `None` = the whole station is silent.
    sensor: Option<Sensor>,
    from: i64,
    to: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sensor {
    Visibility,
    Precipitation,
    Wind,
    Surface,
    Air,
}

impl Sensor {
    const ALL: [Sensor; 5] = [
        Sensor::Visibility,
        Sensor::Precipitation,
        Sensor::Wind,
        Sensor::Surface,
        Sensor::Air,
    ];
    fn as_str(self) -> &'static str {
        match self {
            Sensor::Visibility => "visibility_m",
            Sensor::Precipitation => "precipitation_mm_h",
            Sensor::Wind => "wind",
            Sensor::Surface => "road_surface",
            Sensor::Air => "air_temp_c",
        }
    }
}

#[derive(Debug, Clone)]
struct StationSim {
    id: String,
    lon: f64,
    lat: f64,
    road: Option<(String, f64)>,
    interval_ms: i64,
    next_ms: i64,
    epoch_ts: bool,
    sensors: Sensors,
    temp_offset: f64,
    clear_visibility: f64,
    /// Top of the visibility sensor's range: clear air reads as this (10 or 20 km).
    visibility_range: f64,
    phase: f64,
    episodes: Vec<Episode>,
    dropouts: Vec<Dropout>,
    last_was_spike: bool,
    /// The station's own generator: how a run is cut into batches changes nothing.
    rng: Rng,
}

/// One weather report, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Observation {
    pub station: usize,
    pub visibility_m: Option<f64>,
    pub precipitation_mm_h: Option<f64>,
    pub wind_speed_mps: Option<f64>,
    pub wind_gust_mps: Option<f64>,
    pub road_surface_temp_c: Option<f64>,
    pub road_surface_state: Option<RoadSurfaceState>,
    pub air_temp_c: Option<f64>,
}

/// Noise-free values at one instant.
#[derive(Debug, Clone, Copy)]
struct TrueWeather {
    visibility: f64,
    precipitation: f64,
    wind: f64,
    gust: f64,
    surface: f64,
    state: RoadSurfaceState,
    air: f64,
}

pub(crate) struct Weather {
    stations: Vec<StationSim>,
    /// Single noisy readings emitted so far (truth: `weather_noise_readings`).
    pub spikes: u64,
    utc_offset_s: i32,
    base_air_temp_c: f64,
}

impl Weather {
    pub fn new(net: &RoadNetwork, cfg: &SimConfig, truth: &mut GroundTruth) -> Weather {
        let mut rng = Rng::derive(cfg.seed, TAG_STATIONS, 0);
        let mut stations: Vec<StationSim> = net
            .stations()
            .iter()
            .enumerate()
            .map(|(i, s)| StationSim {
                id: s.station_id.to_string(),
                lon: s.lon,
                lat: s.lat,
                road: s.road.as_ref().map(|r| (r.road_id.to_string(), r.stake_m)),
                // Stations report every 1–10 min (DOMAIN.md), each at its own pace.
                interval_ms: *rng.pick(&[60_000, 120_000, 300_000, 300_000, 600_000]),
                next_ms: 0,
                epoch_ts: i % 3 == 2,
                sensors: Sensors {
                    visibility: true,
                    wind: true,
                    surface: true,
                },
                temp_offset: rng.range(-2.0, 1.0),
                clear_visibility: rng.range(8_000.0, 20_000.0),
                visibility_range: if rng.chance(0.5) { 10_000.0 } else { 20_000.0 },
                phase: rng.range(0.0, TAU),
                episodes: Vec::new(),
                dropouts: Vec::new(),
                last_was_spike: false,
                rng: Rng::derive(cfg.seed, TAG_REPORTS, i as u64),
            })
            .collect();
        // A few stations lack a sensor for good: two have no anemometer, one no road
        // surface sensor. Episodes are never placed where they could not be measured.
        let n = stations.len();
        if n >= 4 {
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                order.swap(i, rng.index(i + 1));
            }
            for (k, &i) in order.iter().take(3).enumerate() {
                let sensor = if k < 2 {
                    stations[i].sensors.wind = false;
                    "wind"
                } else {
                    stations[i].sensors.surface = false;
                    "road_surface"
                };
                truth.missing_sensors.push(MissingSensor {
                    station_id: stations[i].id.clone(),
                    sensor,
                });
            }
            truth
                .missing_sensors
                .sort_by(|a, b| a.station_id.cmp(&b.station_id));
        }
        for s in &mut stations {
            s.next_ms = cfg.start_ms + rng.int(0, s.interval_ms - 1);
        }
        Weather {
            stations,
            spikes: 0,
            utc_offset_s: cfg.utc_offset_s,
            base_air_temp_c: cfg.base_air_temp_c,
        }
    }

    pub fn station_id(&self, i: usize) -> &str {
        &self.stations[i].id
    }

    pub fn station_position(&self, i: usize) -> (f64, f64) {
        (self.stations[i].lon, self.stations[i].lat)
    }

    pub fn epoch_ts(&self, i: usize) -> bool {
        self.stations[i].epoch_ts
    }

    /// Plans the episodes and drop-outs of one local day; those starting outside
    /// `[from_ms, to_ms)` are left out.
    pub fn plan_day(
        &mut self,
        cfg: &SimConfig,
        day: i64,
        from_ms: i64,
        to_ms: i64,
        truth: &mut GroundTruth,
    ) {
        if self.stations.is_empty() {
            return;
        }
        let mut rng = Rng::derive(cfg.seed, TAG_EPISODES, day as u64);
        let day0 = day_start_ms(day, self.utc_offset_s);
        let min = 60_000i64;
        let kinds = [
            (WxKind::Fog, cfg.fog_episodes_per_day),
            (WxKind::Ice, cfg.ice_episodes_per_day),
            (WxKind::Wind, cfg.wind_episodes_per_day),
            (WxKind::Rain, cfg.rain_episodes_per_day),
        ];
        for (kind, rate) in kinds {
            let count = rng.stratified_count(rate);
            for k in 0..count {
                // Shape: build-up, hold, decay (minutes), and when in the day it starts.
                let (onset_h, up, hold, down) = match kind {
                    // Radiation fog: night and early morning, sometimes evening.
                    WxKind::Fog => (
                        if rng.chance(0.8) {
                            rng.range(0.0, 8.0)
                        } else {
                            rng.range(17.0, 22.0)
                        },
                        rng.range(20.0, 60.0),
                        rng.range(40.0, 180.0),
                        rng.range(20.0, 60.0),
                    ),
                    WxKind::Ice => (
                        (rng.range(20.0, 28.0)) % 24.0,
                        rng.range(40.0, 90.0),
                        rng.range(60.0, 240.0),
                        rng.range(40.0, 90.0),
                    ),
                    WxKind::Wind => (
                        rng.range(0.0, 24.0),
                        rng.range(10.0, 30.0),
                        rng.range(20.0, 90.0),
                        rng.range(10.0, 30.0),
                    ),
                    WxKind::Rain => (
                        if rng.chance(0.7) {
                            rng.range(12.0, 20.0)
                        } else {
                            rng.range(0.0, 24.0)
                        },
                        rng.range(10.0, 20.0),
                        rng.range(20.0, 60.0),
                        rng.range(10.0, 30.0),
                    ),
                };
                let onset = day0 + (onset_h * 3_600_000.0) as i64;
                let full = onset + (up * min as f64) as i64;
                let fade = full + (hold * min as f64) as i64;
                let over = fade + (down * min as f64) as i64;
                let peak = match kind {
                    // Each day's first fog is dense (< 50 m, CMA red): the case that
                    // matters most must be in every run.
                    WxKind::Fog if k == 0 => rng.range(25.0, 45.0),
                    WxKind::Fog => {
                        let buckets = [(55.0, 95.0), (110.0, 190.0), (220.0, 450.0), (25.0, 45.0)];
                        let (lo, hi) = buckets[rng.weighted(&[0.3, 0.3, 0.25, 0.15])];
                        rng.range(lo, hi)
                    }
                    WxKind::Ice => rng.range(-4.0, -0.8),
                    WxKind::Wind => rng.range(18.5, 36.0),
                    WxKind::Rain => rng.range(22.0, 75.0),
                };
                let episode = Episode {
                    kind,
                    onset,
                    full,
                    fade,
                    over,
                    peak,
                    rain_visibility: rng.range(800.0, 2000.0),
                    // Each day's first freezing episode ices over (level 2, critical).
                    ices: k == 0 || rng.chance(0.6),
                };
                // A station that can measure it and has no such episode then.
                let mut placed = None;
                for _ in 0..10 {
                    let i = rng.index(self.stations.len());
                    let s = &self.stations[i];
                    let measurable = match kind {
                        WxKind::Fog => s.sensors.visibility,
                        WxKind::Ice => s.sensors.surface,
                        WxKind::Wind => s.sensors.wind,
                        WxKind::Rain => true,
                    };
                    let clash = s.episodes.iter().any(|e| {
                        e.kind == kind && e.onset < over + 3_600_000 && onset < e.over + 3_600_000
                    });
                    if measurable && !clash {
                        placed = Some(i);
                        break;
                    }
                }
                let Some(i) = placed else { continue };
                if onset < from_ms || onset >= to_ms {
                    continue;
                }
                if let Some(t) =
                    self.episode_truth(i, &episode, to_ms, truth.weather_episodes.len())
                {
                    truth.weather_episodes.push(t);
                }
                self.stations[i].episodes.push(episode);
            }
        }
        // Drop-outs: a sensor reporting null for a while, or a station gone silent.
        for i in 0..self.stations.len() {
            if rng.chance(0.3) {
                let sensor = *rng.pick(&Sensor::ALL);
                let from = day0 + rng.int(0, DAY_MS - 1);
                let to = from + rng.int(10, 90) * min;
                self.add_dropout(i, Some(sensor), from, to, from_ms, to_ms, truth);
            }
            if rng.chance(0.1) {
                let from = day0 + rng.int(0, DAY_MS - 1);
                let to = from + rng.int(20, 60) * min;
                self.add_dropout(i, None, from, to, from_ms, to_ms, truth);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_dropout(
        &mut self,
        i: usize,
        sensor: Option<Sensor>,
        from: i64,
        to: i64,
        from_ms: i64,
        to_ms: i64,
        truth: &mut GroundTruth,
    ) {
        if from < from_ms || from >= to_ms {
            return;
        }
        truth.weather_dropouts.push(WeatherDropout {
            station_id: self.stations[i].id.clone(),
            sensor: sensor.map_or("all", Sensor::as_str),
            start_ms: from,
            end_ms: to.min(to_ms),
        });
        self.stations[i].dropouts.push(Dropout { sensor, from, to });
    }

    /// The truth of an episode from its noise-free values; `None` when it never
    /// reaches level 1 before the run ends.
    fn episode_truth(
        &self,
        i: usize,
        e: &Episode,
        end_ms: i64,
        n: usize,
    ) -> Option<WeatherEpisode> {
        let s = &self.stations[i];
        let mut level_max = 0u8;
        let (mut start, mut end) = (None, None);
        let (mut peak_value, mut peak_ms) = (f64::NAN, e.onset);
        let mut t = e.onset;
        while t <= e.over && t < end_ms {
            // Only this episode: others at the station have their own truth.
            let w = self.true_weather(s, t, std::slice::from_ref(e));
            let (level, value) = match e.kind {
                WxKind::Fog => (visibility_level(w.visibility), w.visibility),
                WxKind::Ice => (ice_level(&w), w.surface),
                WxKind::Wind => (
                    GUST_LEVELS_MS.iter().filter(|g| w.gust >= **g).count() as u8,
                    w.gust,
                ),
                WxKind::Rain => (
                    RAIN_LEVELS_MM_H
                        .iter()
                        .filter(|r| w.precipitation >= **r)
                        .count() as u8,
                    w.precipitation,
                ),
            };
            let worse = match e.kind {
                WxKind::Fog | WxKind::Ice => peak_value.is_nan() || value < peak_value,
                _ => peak_value.is_nan() || value > peak_value,
            };
            if worse {
                peak_value = value;
                peak_ms = t;
            }
            if level >= 1 {
                start.get_or_insert(t);
                end = Some(t);
                level_max = level_max.max(level);
            }
            t += TRUTH_STEP_MS;
        }
        let (start, end) = (start?, end?);
        let severity = match (e.kind, level_max) {
            (WxKind::Fog, 1) => "warning",
            (WxKind::Fog, 2 | 3) => "severe",
            (WxKind::Fog, _) => "critical",
            (WxKind::Ice, 1) => "severe",
            (WxKind::Ice, _) => "critical",
            (WxKind::Wind, 1) => "warning",
            (WxKind::Wind, 2) => "severe",
            (WxKind::Wind, _) => "critical",
            (WxKind::Rain, 1) => "warning",
            (WxKind::Rain, _) => "severe",
        };
        Some(WeatherEpisode {
            id: format!("sim-wx-{:04}", n + 1),
            station_id: s.id.clone(),
            subtype: e.kind.as_str(),
            level: level_max,
            severity,
            start_ms: start,
            end_ms: end,
            onset_ms: e.onset,
            over_ms: e.over.min(end_ms),
            peak_value: (peak_value * 100.0).round() / 100.0,
            peak_ms,
            road_id: s.road.as_ref().map(|r| r.0.clone()),
            stake_m: s.road.as_ref().map(|r| r.1.round()),
        })
    }

    fn true_weather(&self, s: &StationSim, t: i64, episodes: &[Episode]) -> TrueWeather {
        let local_h =
            ((t + i64::from(self.utc_offset_s) * 1000).rem_euclid(DAY_MS)) as f64 / 3_600_000.0;
        // Warmest around 15:00, coldest around 03:00.
        let diurnal = (TAU * (local_h - 9.0) / 24.0).sin();
        let slow = (TAU * t as f64 / (DAY_MS as f64 * 1.7) + s.phase).sin();
        let air = self.base_air_temp_c + s.temp_offset + 4.0 * diurnal + 0.8 * slow;
        // The baseline never freezes: ice comes only from episodes, so the truth is clean.
        let mut surface = (air + 1.5 * diurnal + 0.5).max(1.0);
        let mut visibility = s.clear_visibility * (1.0 + 0.2 * slow);
        let mut precipitation = 0.0;
        let mut wind = 2.5 + 1.5 * (TAU * local_h / 24.0 + s.phase).sin().abs();
        let mut gust = wind * 1.6;
        let mut state = RoadSurfaceState::Dry;
        for e in episodes {
            let i = e.intensity(t);
            if i <= 0.0 {
                continue;
            }
            match e.kind {
                WxKind::Fog => {
                    let v = (visibility.ln() + (e.peak.ln() - visibility.ln()) * i).exp();
                    visibility = visibility.min(v);
                    if i > 0.5 && state == RoadSurfaceState::Dry {
                        state = RoadSurfaceState::Damp;
                    }
                }
                WxKind::Rain => {
                    precipitation += e.peak * i;
                    let v =
                        (visibility.ln() + (e.rain_visibility.ln() - visibility.ln()) * i).exp();
                    visibility = visibility.min(v);
                    if i > 0.1 && state != RoadSurfaceState::Ice {
                        state = RoadSurfaceState::Wet;
                    }
                }
                WxKind::Wind => {
                    gust = gust + (e.peak - gust) * i;
                    wind = wind.max(gust * 0.6);
                }
                WxKind::Ice => {
                    surface = surface + (e.peak - surface) * i;
                    if i > 0.3 {
                        // Freezing drizzle keeps the surface wet; it ices once cold enough.
                        precipitation += 0.3 + 1.2 * i;
                        state = if e.ices && surface <= -0.3 {
                            RoadSurfaceState::Ice
                        } else {
                            RoadSurfaceState::Wet
                        };
                    }
                }
            }
        }
        TrueWeather {
            visibility,
            precipitation,
            wind,
            gust,
            surface,
            state,
            air: air.min(surface + 3.0),
        }
    }

    /// The highest fog level (from true visibility) of the stations on `road_id` within
    /// `radius_m` of `stake_m` at `t`.
    pub fn true_fog_level(&self, road_id: &str, stake_m: f64, radius_m: f64, t: i64) -> u8 {
        self.stations
            .iter()
            .filter(|s| {
                s.road
                    .as_ref()
                    .is_some_and(|(r, st)| r == road_id && (st - stake_m).abs() <= radius_m)
            })
            .map(|s| visibility_level(self.true_weather(s, t, &s.episodes).visibility))
            .max()
            .unwrap_or(0)
    }

    /// The reports of every station in `[t0, t1)`: `(ts, observation)`.
    pub fn reports(&mut self, t0: i64, t1: i64, out: &mut Vec<(i64, Observation)>) {
        for i in 0..self.stations.len() {
            while self.stations[i].next_ms < t1 {
                let t = self.stations[i].next_ms;
                let jitter = self.stations[i].rng.int(-2_000, 2_000);
                self.stations[i].next_ms = t + self.stations[i].interval_ms + jitter;
                if t < t0 {
                    continue;
                }
                let s = &mut self.stations[i];
                let silent = s
                    .dropouts
                    .iter()
                    .any(|d| d.sensor.is_none() && d.from <= t && t < d.to);
                // One report in a hundred simply never arrives.
                if silent || s.rng.chance(0.01) {
                    continue;
                }
                let obs = self.observe(i, t);
                out.push((t, obs));
            }
        }
    }

    fn observe(&mut self, i: usize, t: i64) -> Observation {
        let w = {
            let s = &self.stations[i];
            self.true_weather(s, t, &s.episodes)
        };
        let StationSim {
            rng,
            dropouts,
            sensors,
            last_was_spike,
            visibility_range,
            ..
        } = &mut self.stations[i];
        let off = |sensor: Sensor| {
            dropouts
                .iter()
                .any(|d| d.sensor == Some(sensor) && d.from <= t && t < d.to)
        };
        let mut visibility =
            (w.visibility * (1.0 + rng.normal(0.0, 0.03))).clamp(5.0, *visibility_range);
        let quiet = w.visibility > 3_000.0;
        let spike = quiet && !*last_was_spike && rng.chance(0.003);
        if spike {
            // A spider on the lens, a puff of steam: one reading, then gone.
            visibility = rng.range(250.0, 450.0);
        }
        let precipitation = if w.precipitation > 0.0 {
            (w.precipitation * (1.0 + rng.normal(0.0, 0.08))).max(0.1)
        } else {
            0.0
        };
        let gust = (w.gust + rng.normal(0.0, 0.8)).max(0.0);
        let wind = (w.wind + rng.normal(0.0, 0.4)).clamp(0.0, gust);
        let surface = w.surface + rng.normal(0.0, 0.15);
        let air = w.air + rng.normal(0.0, 0.2);
        let sensors = *sensors;
        let obs = Observation {
            station: i,
            visibility_m: (sensors.visibility && !off(Sensor::Visibility))
                .then_some(round1(visibility)),
            precipitation_mm_h: (!off(Sensor::Precipitation)).then_some(round1(precipitation)),
            wind_speed_mps: (sensors.wind && !off(Sensor::Wind)).then_some(round1(wind)),
            wind_gust_mps: (sensors.wind && !off(Sensor::Wind)).then_some(round1(gust)),
            road_surface_temp_c: (sensors.surface && !off(Sensor::Surface))
                .then_some(round1(surface)),
            road_surface_state: (sensors.surface && !off(Sensor::Surface)).then_some(w.state),
            air_temp_c: (!off(Sensor::Air)).then_some(round1(air)),
        };
        *last_was_spike = spike;
        self.spikes += u64::from(spike);
        obs
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn visibility_level(v: f64) -> u8 {
    VISIBILITY_LEVELS_M.iter().filter(|l| v < **l).count() as u8
}

fn ice_level(w: &TrueWeather) -> u8 {
    if w.surface > 0.0 {
        return 0;
    }
    match w.state {
        RoadSurfaceState::Ice => 2,
        RoadSurfaceState::Wet | RoadSurfaceState::Snow => 1,
        _ if w.precipitation > 0.0 => 1,
        _ => 0,
    }
}
