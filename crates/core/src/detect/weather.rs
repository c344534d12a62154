//! Severe-weather detector (DOMAIN.md "Severe weather"; rules and choices in
//! docs/DETECTION.md, "Severe weather").
//!
//! Per road weather station, four independent quantities (`fog`, `ice`, `wind`, `rain`),
//! each a ladder of levels with hysteresis: a level is entered after `enter_count`
//! consecutive observations meet it (`enter_count_critical` for critical levels) and left
//! after `leave_count` consecutive observations clear it by `leave_margin`. On top, a
//! least-squares trend of the station's visibility gives an early fog warning.
//!
//! Pure: driven by validated observations whose `ts` is the only time it knows; no I/O,
//! no clock. State is a `BTreeMap` by station id, so nothing depends on hash order, and
//! bounded per station (a ring of trend readings and a few source ids per quantity).
use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Map, Value};

use crate::alert::{alert_id, describe_place, location, AlertDraft};
use crate::model::{
    AlertKind, AlertLocation, AlertStatus, EventTime, RoadSurfaceState, Severity,
    WeatherObservation,
};
use crate::roads::{
    Direction, LineKind, RoadNetwork, RoadPosition, Stretch, CARRIAGEWAY_STAKE_TOLERANCE_M,
};
use crate::settings::{Locale, OutputSettings, WeatherSettings};

/// Source event ids an alert names at most: the run that decided a change is 1–3
/// observations with the default counts; a longer configured run names its latest five.
const MAX_SOURCE_IDS: usize = 5;
/// Trend readings kept per station at least: 30 min of one-minute reports, with slack.
/// `forecast_min_observations` raises it when configured higher.
const MIN_TREND_CAPACITY: usize = 32;
/// The longest ladder (fog has four visibility levels).
const MAX_LEVELS: usize = 4;
/// The early warning needs a fall distinguishable from sensor noise: the fitted slope at
/// least this many standard errors below zero (a one-sided t-test, ~95% for a long fit).
/// A method constant, not a weather threshold: visibility sensors scatter 10–20% in fog,
/// and three noisy readings can tilt a line steeply.
const TREND_MIN_T: f64 = 2.0;

/// The four quantities a station is judged on; each is an alert `subtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Subtype {
    Fog,
    Ice,
    Wind,
    Rain,
}

impl Subtype {
    /// Output order within one observation is this order, so it is deterministic.
    const ALL: [Subtype; 4] = [Subtype::Fog, Subtype::Ice, Subtype::Wind, Subtype::Rain];

    fn as_str(self) -> &'static str {
        match self {
            Subtype::Fog => "fog",
            Subtype::Ice => "ice",
            Subtype::Wind => "wind",
            Subtype::Rain => "rain",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Severity of levels 1..=n (DOMAIN.md tables). The number of levels is the length.
    fn severities(self) -> &'static [Severity] {
        use Severity::{Critical, Severe, Warning};
        match self {
            Subtype::Fog => &[Warning, Severe, Severe, Critical],
            Subtype::Ice => &[Severe, Critical],
            Subtype::Wind => &[Warning, Severe, Critical],
            Subtype::Rain => &[Warning, Severe],
        }
    }

    fn severity(self, level: u8) -> Option<Severity> {
        let k = usize::from(level).checked_sub(1)?;
        self.severities().get(k).copied()
    }
}

/// What one observation says about one level of a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Not measured (`null`): neither for nor against, and no counter is reset.
    Unknown,
    /// Meets the level's threshold.
    Meets,
    /// Neither meets it nor clears it by the margin (the hysteresis band): it breaks
    /// both an entering run and a leaving run.
    Between,
    /// Clears the threshold by `leave_margin`.
    Clears,
}

type Readings = [Reading; MAX_LEVELS];

fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// A "below" threshold (visibility): meets when `v < t`, clears when `v ≥ t·(1+margin)`.
fn below(v: f64, t: f64, margin: f64) -> Reading {
    if v < t {
        Reading::Meets
    } else if v >= t * (1.0 + margin) {
        Reading::Clears
    } else {
        Reading::Between
    }
}

/// An "at or above" threshold (gusts, rain): meets when `v ≥ t`, clears when
/// `v < t·(1−margin)`.
fn at_or_above(v: f64, t: f64, margin: f64) -> Reading {
    if v >= t {
        Reading::Meets
    } else if v < t * (1.0 - margin) {
        Reading::Clears
    } else {
        Reading::Between
    }
}

/// Three-valued (Kleene) logic, so that one missing sensor does not decide a compound
/// condition the other sensor already settles.
fn kleene_or(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

fn kleene_and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

/// Ice level 1: surface at or below `ice_surface_temp_c` and moisture (state wet/snow, or
/// precipitation > 0). A reported `ice` state meets it outright: level 2 implies level 1.
/// The condition is categorical, so there is no margin band: it meets or it clears.
fn ice_risk(obs: &WeatherObservation, s: &WeatherSettings) -> Reading {
    if obs.road_surface_state == Some(RoadSurfaceState::Ice) {
        return Reading::Meets;
    }
    let cold = finite(obs.road_surface_temp_c).map(|t| t <= s.ice_surface_temp_c);
    let wet_surface = obs
        .road_surface_state
        .map(|st| matches!(st, RoadSurfaceState::Wet | RoadSurfaceState::Snow));
    let falling = finite(obs.precipitation_mm_h).map(|p| p > 0.0);
    match kleene_and(cold, kleene_or(wet_surface, falling)) {
        Some(true) => Reading::Meets,
        Some(false) => Reading::Clears,
        None => Reading::Unknown,
    }
}

/// The readings of one observation for every level of `subtype`.
fn readings(subtype: Subtype, obs: &WeatherObservation, s: &WeatherSettings) -> Readings {
    let margin = s.leave_margin;
    let mut r = [Reading::Unknown; MAX_LEVELS];
    match subtype {
        Subtype::Fog => {
            if let Some(v) = finite(obs.visibility_m) {
                for (slot, t) in r.iter_mut().zip(s.visibility_levels_m) {
                    *slot = below(v, t, margin);
                }
            }
        }
        Subtype::Wind => {
            if let Some(v) = finite(obs.wind_gust_mps) {
                for (slot, t) in r.iter_mut().zip(s.wind_gust_levels_mps) {
                    *slot = at_or_above(v, t, margin);
                }
            }
        }
        Subtype::Rain => {
            if let Some(v) = finite(obs.precipitation_mm_h) {
                for (slot, t) in r.iter_mut().zip(s.rain_levels_mm_h) {
                    *slot = at_or_above(v, t, margin);
                }
            }
        }
        Subtype::Ice => {
            r[0] = ice_risk(obs, s);
            r[1] = match obs.road_surface_state {
                Some(RoadSurfaceState::Ice) => Reading::Meets,
                Some(_) => Reading::Clears,
                None => Reading::Unknown,
            };
        }
    }
    nest(&mut r, subtype.severities().len());
    r
}

/// Levels are nested: meeting a level meets every level below it, and clearing a level
/// clears every level above it. Threshold ladders are nested by construction; this makes
/// ice (two conditions from different sensors) obey it too, so that e.g. a warm dry
/// surface with no state sensor still lets ice level 2 go.
fn nest(r: &mut Readings, n: usize) {
    for k in 1..n {
        if r[k - 1] == Reading::Clears {
            r[k] = Reading::Clears;
        }
    }
    for k in (1..n).rev() {
        if r[k] == Reading::Meets {
            r[k - 1] = Reading::Meets;
        }
    }
}

/// Hysteresis over the levels of one quantity of one station.
#[derive(Debug, Clone, Default)]
struct Ladder {
    /// Active level, 0 = none.
    level: u8,
    /// Per level: consecutive measured observations meeting it.
    meet_run: [u32; MAX_LEVELS],
    /// Per level: consecutive measured observations clearing it by the margin.
    clear_run: [u32; MAX_LEVELS],
}

/// A level change and the length of the run of observations that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Change {
    from: u8,
    to: u8,
    run: u32,
}

impl Ladder {
    /// Applies one observation's readings; returns the change it causes, if any.
    ///
    /// The new level is the higher of
    /// - up: the highest level whose meet run has reached its enter count, and
    /// - down: the active level, lowered one level at a time while the active level's
    ///   clear run has reached `leave_count`.
    ///
    /// So a drop from 3 to 2 needs three readings clearing level 3 by the margin, and
    /// lands on the highest level not itself cleared (it may skip levels at once when the
    /// readings clear them too). Meet and clear runs of one level exclude each other, so
    /// up never undoes a drop made on the same readings.
    fn step(
        &mut self,
        r: &Readings,
        severities: &[Severity],
        s: &WeatherSettings,
    ) -> Option<Change> {
        let n = severities.len();
        for (k, reading) in r.iter().enumerate().take(n) {
            match reading {
                Reading::Unknown => {}
                Reading::Meets => {
                    self.meet_run[k] = self.meet_run[k].saturating_add(1);
                    self.clear_run[k] = 0;
                }
                Reading::Between => {
                    self.meet_run[k] = 0;
                    self.clear_run[k] = 0;
                }
                Reading::Clears => {
                    self.meet_run[k] = 0;
                    self.clear_run[k] = self.clear_run[k].saturating_add(1);
                }
            }
        }
        let needed = |k: usize| {
            if severities[k] == Severity::Critical {
                s.enter_count_critical
            } else {
                s.enter_count
            }
        };
        let up = (0..n)
            .rev()
            .find(|&k| self.meet_run[k] >= needed(k))
            .map_or(0, |k| k + 1);
        let from = usize::from(self.level);
        let mut down = from;
        while down > 0 && self.clear_run[down - 1] >= s.leave_count {
            down -= 1;
        }
        let to = up.max(down);
        if to == from {
            return None;
        }
        let run = if to > from {
            self.meet_run[to - 1]
        } else {
            self.clear_run[from - 1]
        };
        // Both are at most MAX_LEVELS.
        self.level = to as u8;
        Some(Change {
            from: from as u8,
            to: to as u8,
            run,
        })
    }
}

/// One open alert of a station's quantity: from `new` to `cleared`.
#[derive(Debug, Clone)]
struct Episode {
    alert_id: String,
    /// Severity of the last message, repeated on `cleared`.
    severity: Severity,
    /// The fog early warning fires at most once per episode.
    forecast_fired: bool,
    /// An episode opened by the early warning alone (no fog level yet) is withdrawn after
    /// `leave_count` consecutive visibility readings whose trend no longer forecasts.
    withdraw_run: u32,
    /// The last document sent, re-sent when the station falls silent or reports again.
    last: Option<AlertDraft>,
    /// The station fell silent during this episode: its documents say `observed`.
    was_silent: bool,
    /// The summary before the silent document's note ("station silent; warning kept")
    /// was added: the document re-sent when the station reports again goes back to it.
    observed_summary: Option<String>,
}

impl Episode {
    /// Its last document again as an `update` at `at`: `observed` false while the
    /// station is silent (with the reason), true once it reports again.
    fn resend(&mut self, at: EventTime, observed: bool) -> Option<AlertDraft> {
        let mut d = self.last.clone()?;
        d.status = AlertStatus::Update;
        d.event_ms = at;
        d.observed = Some(observed);
        if observed {
            d.details.remove("reason");
            if let Some(summary) = self.observed_summary.take() {
                d.summary = summary;
            }
        } else {
            d.details.insert("reason".into(), json!("station_silent"));
            self.was_silent = true;
            self.observed_summary = Some(d.summary.clone());
        }
        self.last = Some(d.clone());
        Some(d)
    }
}

#[derive(Debug, Clone, Default)]
struct Quantity {
    ladder: Ladder,
    episode: Option<Episode>,
    /// Event ids of the latest in-order observations that measured this quantity.
    recent_ids: VecDeque<String>,
}

/// The part of the road an active fog alert covers, for `fog_level_at`.
#[derive(Debug, Clone, PartialEq)]
struct Coverage {
    road_id: String,
    from_m: i64,
    to_m: i64,
}

#[derive(Debug, Clone, Default)]
struct StationState {
    /// The newest `ts` applied to the ladders; older or equal ones are late.
    last_ts: Option<EventTime>,
    quantities: [Quantity; 4],
    /// Visibility readings `(ts, metres)` sorted by `ts`, within the forecast horizon of
    /// the newest, at most `trend_capacity` of them.
    trend: VecDeque<(EventTime, f64)>,
    /// Stretch of the station's latest alert.
    coverage: Option<Coverage>,
    /// No observation for `silent_after` (event time): its open alerts are `observed:
    /// false` until it reports again. A broken sensor must not lift a fog warning.
    silent: bool,
}

/// The early-warning fit.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Forecast {
    /// Time from the observation until the fitted line crosses `forecast_visibility_m`
    /// (0 when the fit is already below it).
    within_ms: i64,
    slope_m_per_min: f64,
    /// Readings in the fit.
    readings: usize,
}

/// What the ladder and the forecast decided for one quantity on one observation.
#[derive(Debug, Clone)]
struct Emission {
    subtype: Subtype,
    status: AlertStatus,
    level: u8,
    severity: Severity,
    alert_id: String,
    forecast: Option<Forecast>,
    source_event_ids: Vec<String>,
}

/// The covered stake range of one carriageway, in whole metres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    direction: Direction,
    from_m: i64,
    to_m: i64,
}

/// One span per carriageway: a road file splits a carriageway into lines at tunnels,
/// bridges and chain breaks, and [`RoadNetwork::stretch`] returns a piece per line.
/// Pieces of one direction that meet (within the network's own tolerance for stake gaps
/// where lines join) are one span; a real gap keeps two. Sorted by direction, then stake.
fn spans(pieces: &[Stretch]) -> Vec<Span> {
    let mut sorted = pieces.to_vec();
    sorted.sort_by(|a, b| {
        a.direction
            .cmp(&b.direction)
            .then(a.stake_from_m.total_cmp(&b.stake_from_m))
    });
    let mut merged: Vec<(Direction, f64, f64)> = Vec::new();
    for p in sorted {
        match merged.last_mut() {
            Some(last)
                if last.0 == p.direction
                    && p.stake_from_m <= last.2 + CARRIAGEWAY_STAKE_TOLERANCE_M =>
            {
                last.2 = last.2.max(p.stake_to_m);
            }
            _ => merged.push((p.direction, p.stake_from_m, p.stake_to_m)),
        }
    }
    merged
        .into_iter()
        .map(|(direction, from, to)| Span {
            direction,
            from_m: from.round() as i64,
            to_m: to.round() as i64,
        })
        .collect()
}

/// Where a station's alerts are placed and what road they cover.
#[derive(Debug, Clone)]
struct Place {
    location: AlertLocation,
    station_name: Option<String>,
    /// The station's road; `None` off every road.
    road_id: Option<String>,
    stretches: Vec<Span>,
    /// Union of the stretches, in whole metres.
    range: Option<(i64, i64)>,
}

pub struct WeatherDetector {
    settings: WeatherSettings,
    output: OutputSettings,
    stations: BTreeMap<String, StationState>,
    /// [`Self::next_deadline`], kept up to date: the engine asks for it before every
    /// record (timers fire at their deadlines), and stations change only when they
    /// report or fall silent, a few times a minute against thousands of records.
    next_due: Option<EventTime>,
}

impl WeatherDetector {
    pub fn new(settings: WeatherSettings, output: OutputSettings) -> Self {
        WeatherDetector {
            settings,
            output,
            stations: BTreeMap::new(),
            next_due: None,
        }
    }

    /// One validated observation; pushes alert drafts for every change it causes.
    ///
    /// An observation whose `ts` is not newer than the station's newest applied one
    /// (late, or a redelivered duplicate) only adds its visibility to the trend: the
    /// ladders already reflect newer evidence, and a count of "consecutive" readings
    /// must follow the station's own time order.
    pub fn on_observation(
        &mut self,
        obs: &WeatherObservation,
        roads: &RoadNetwork,
        out: &mut Vec<AlertDraft>,
    ) {
        let trend_capacity = self.trend_capacity();
        let WeatherDetector {
            settings,
            output,
            stations,
            ..
        } = self;
        let state = stations.entry(obs.station_id.clone()).or_default();
        if let Some(v) = finite(obs.visibility_m) {
            record_visibility(
                &mut state.trend,
                obs.ts,
                v,
                settings.forecast_horizon_ms,
                trend_capacity,
            );
        }
        if state.last_ts.is_some_and(|last| obs.ts <= last) {
            return;
        }
        state.last_ts = Some(obs.ts);
        let woke = std::mem::take(&mut state.silent);

        let mut place: Option<Place> = None;
        for subtype in Subtype::ALL {
            let trend = &state.trend;
            let fit = || forecast(trend, obs.ts, settings);
            let quantity = &mut state.quantities[subtype.index()];
            let was_silent = quantity.episode.as_ref().is_some_and(|e| e.was_silent);
            let Some(emission) = step_quantity(quantity, subtype, obs, settings, fit) else {
                if woke {
                    // Reporting again: the alert is seen again, at its level as it stands.
                    let resent = quantity
                        .episode
                        .as_mut()
                        .and_then(|ep| ep.resend(obs.ts, true));
                    out.extend(resent);
                }
                continue;
            };
            let place = place.get_or_insert_with(|| resolve_place(obs, roads, settings.stretch_m));
            let mut d = draft(&emission, obs, place, settings, output.locale);
            if was_silent || woke && emission.status != AlertStatus::New {
                d.observed = Some(true);
            }
            if let Some(ep) = quantity.episode.as_mut() {
                ep.last = Some(d.clone());
            }
            out.push(d);
        }
        if let Some(place) = place {
            state.coverage = match (&place.road_id, place.range) {
                (Some(road_id), Some((from_m, to_m))) => Some(Coverage {
                    road_id: road_id.clone(),
                    from_m,
                    to_m,
                }),
                _ => None,
            };
        }
        self.next_due = self.scan_next_due();
    }

    /// Highest visibility (fog) level currently active over `stake_m` of `road_id`
    /// (0 = none): the pedestrian detector raises severity under fog level ≥ 2. An early
    /// warning alone (no level yet) does not count.
    pub fn fog_level_at(&self, road_id: &str, stake_m: f64) -> u8 {
        self.stations
            .values()
            .filter(|st| {
                st.coverage.as_ref().is_some_and(|c| {
                    c.road_id == road_id && c.from_m as f64 <= stake_m && stake_m <= c.to_m as f64
                })
            })
            .map(|st| st.quantities[Subtype::Fog.index()].ladder.level)
            .max()
            .unwrap_or(0)
    }

    /// Number of stations with state (for metrics).
    pub fn stations(&self) -> usize {
        self.stations.len()
    }

    /// The earliest time a reporting station falls silent.
    pub fn next_deadline(&self) -> Option<EventTime> {
        self.next_due
    }

    fn scan_next_due(&self) -> Option<EventTime> {
        self.stations
            .values()
            .filter(|s| !s.silent)
            .filter_map(|s| s.last_ts)
            .min()
            .map(|t| t + self.settings.silent_after_ms)
    }

    /// Stations silent for `silent_after` or longer (for metrics).
    pub fn silent_stations(&self) -> usize {
        self.stations.values().filter(|s| s.silent).count()
    }

    /// Event time reached `now`: a station with no observation for `silent_after` turns
    /// its open alerts `observed: false` (`details.reason: "station_silent"`); they stay
    /// open until it reports again or an operator closes them.
    pub fn on_time(&mut self, now: EventTime, out: &mut Vec<AlertDraft>) {
        if self.next_due.map_or(true, |due| due > now) {
            return;
        }
        let after = self.settings.silent_after_ms;
        let locale = self.output.locale;
        let mut due: Vec<(EventTime, AlertDraft)> = Vec::new();
        for state in self.stations.values_mut() {
            let Some(last) = state.last_ts else { continue };
            if state.silent || last + after > now {
                continue;
            }
            state.silent = true;
            for q in state.quantities.iter_mut() {
                let Some(ep) = q.episode.as_mut() else {
                    continue;
                };
                let Some(mut d) = ep.resend(last + after, false) else {
                    continue;
                };
                d.summary.push_str(match locale {
                    Locale::ZhCn => "（气象站无数据，预警保持）",
                    Locale::En => " (station silent; warning kept)",
                });
                ep.last = Some(d.clone());
                due.push((last + after, d));
            }
        }
        self.next_due = self.scan_next_due();
        // In deadline order, as a finer clock would have fired them (stable: station order).
        due.sort_by_key(|(at, _)| *at);
        out.extend(due.into_iter().map(|(_, d)| d));
    }

    /// A unit or an operator ended the alert: the station's quantity starts afresh, so
    /// weather that goes on is a new alert after the usual entry readings.
    pub fn close(&mut self, alert_id: &str) {
        for state in self.stations.values_mut() {
            for q in state.quantities.iter_mut() {
                if q.episode.as_ref().is_some_and(|e| e.alert_id == alert_id) {
                    *q = Quantity::default();
                }
            }
        }
    }

    fn trend_capacity(&self) -> usize {
        (self.settings.forecast_min_observations as usize).max(MIN_TREND_CAPACITY)
    }
}

/// Inserts a visibility reading in time order (late ones too: the fit uses timestamps,
/// not arrival order), skips a duplicate `ts`, and keeps only the horizon and capacity.
fn record_visibility(
    trend: &mut VecDeque<(EventTime, f64)>,
    ts: EventTime,
    v: f64,
    horizon_ms: i64,
    capacity: usize,
) {
    let at = trend.partition_point(|&(t, _)| t < ts);
    if trend.get(at).is_some_and(|&(t, _)| t == ts) {
        return;
    }
    trend.insert(at, (ts, v));
    let newest = trend.back().map_or(ts, |&(t, _)| t);
    let oldest_kept = newest.saturating_sub(horizon_ms);
    while trend.front().is_some_and(|&(t, _)| t < oldest_kept) || trend.len() > capacity {
        trend.pop_front();
    }
}

/// The early warning: least-squares lines through the latest `k` readings within the
/// horizon before `now`, for every `k` from `forecast_min_observations` up to all of
/// them; the longest window that forecasts wins (the most evidence). Trying the shorter
/// windows too means a fall that has just begun is not hidden by the steady readings
/// before it. One pass from the newest reading back, with running sums: O(readings).
///
/// A window forecasts when its line falls and is below `forecast_visibility_m` within
/// `forecast_horizon_ms` of now. Noise guards: its newest reading must be below its
/// oldest, and with three or more readings the slope at least [`TREND_MIN_T`] standard
/// errors below zero.
fn forecast(
    trend: &VecDeque<(EventTime, f64)>,
    now: EventTime,
    s: &WeatherSettings,
) -> Option<Forecast> {
    let from = now.saturating_sub(s.forecast_horizon_ms);
    let min_n = (s.forecast_min_observations as usize).max(2);
    let horizon_min = s.forecast_horizon_ms as f64 / 60_000.0;
    let target = s.forecast_visibility_m;
    let newest = trend.back().filter(|&&(t, _)| t <= now)?.1;
    // Only a visibility already in fog (WMO: below 1 km) is trended: above it, sensors
    // saturate and scatter by kilometres, and a noisy line through 15 km readings would
    // "forecast" fog on a clear night.
    if newest >= s.forecast_max_visibility_m {
        return None;
    }
    let (mut st, mut sv, mut stt, mut stv, mut svv) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut best = None;
    // Only the latest unbroken run of readings in fog counts: a single noisy dip after
    // clear readings must not line up with them into a steep "fall".
    let readings = trend
        .iter()
        .rev()
        .filter(|&&(t, _)| t <= now)
        .take_while(|&&(t, v)| t >= from && v < s.forecast_max_visibility_m);
    for (i, &(t, v)) in readings.enumerate() {
        // Minutes relative to `now` keep the sums small and well conditioned.
        let t = (t - now) as f64 / 60_000.0;
        (st, sv) = (st + t, sv + v);
        (stt, stv, svv) = (stt + t * t, stv + t * v, svv + v * v);
        let n = i + 1;
        if n < min_n || newest >= v {
            continue;
        }
        let k = n as f64;
        let sxx = stt - st * st / k;
        let sxy = stv - st * sv / k;
        if sxx <= 0.0 {
            continue;
        }
        let slope = sxy / sxx;
        if !slope.is_finite() || slope >= 0.0 {
            continue;
        }
        if n > 2 {
            let syy = svv - sv * sv / k;
            let sse = (syy - slope * sxy).max(0.0);
            let std_err = (sse / (k - 2.0) / sxx).sqrt();
            if slope > -TREND_MIN_T * std_err {
                continue;
            }
        }
        let fitted_now = sv / k - slope * st / k;
        if fitted_now + slope * horizon_min >= target {
            continue;
        }
        let minutes = ((fitted_now - target) / -slope).max(0.0);
        best = Some(Forecast {
            within_ms: (minutes * 60_000.0).round() as i64,
            slope_m_per_min: slope,
            readings: n,
        });
    }
    best
}

/// Whether the early warning still matters at fog `level`: not once the active level
/// already means visibility below `forecast_visibility_m` (level ≥ 2 by default).
fn forecast_relevant(level: u8, s: &WeatherSettings) -> bool {
    match usize::from(level).checked_sub(1) {
        None => true,
        Some(k) => s.visibility_levels_m[k] > s.forecast_visibility_m,
    }
}

/// Runs one quantity's ladder (and, for fog, the early warning) on an in-order
/// observation and says what to emit.
fn step_quantity(
    q: &mut Quantity,
    subtype: Subtype,
    obs: &WeatherObservation,
    s: &WeatherSettings,
    fit: impl FnOnce() -> Option<Forecast>,
) -> Option<Emission> {
    let severities = subtype.severities();
    let r = readings(subtype, obs, s);
    if r[..severities.len()].iter().all(|x| *x == Reading::Unknown) {
        return None;
    }
    q.recent_ids.push_back(obs.event_id.clone());
    while q.recent_ids.len() > MAX_SOURCE_IDS {
        q.recent_ids.pop_front();
    }
    let change = q.ladder.step(&r, severities, s);
    let level = q.ladder.level;

    let mut forecast = None;
    let mut withdrawn = false;
    let fog_visible = subtype == Subtype::Fog && finite(obs.visibility_m).is_some();
    let just_cleared = change.is_some_and(|c| c.to == 0);
    if fog_visible && s.forecast_enabled && !just_cleared {
        match q.episode.as_mut() {
            Some(ep) if ep.forecast_fired => {
                if level == 0 {
                    if fit().is_some() {
                        ep.withdraw_run = 0;
                    } else {
                        ep.withdraw_run = ep.withdraw_run.saturating_add(1);
                        withdrawn = ep.withdraw_run >= s.leave_count;
                    }
                }
            }
            _ => {
                if forecast_relevant(level, s) {
                    forecast = fit();
                }
            }
        }
    }

    // `run`: how many of the latest measured observations caused this message.
    let (status, run) = match change {
        Some(c) if c.to == 0 => (AlertStatus::Cleared, c.run),
        Some(c) if c.from == 0 && q.episode.is_none() => (AlertStatus::New, c.run),
        Some(c) => (AlertStatus::Update, c.run),
        None => match (forecast, &q.episode) {
            (Some(f), None) => (AlertStatus::New, f.readings as u32),
            (Some(f), Some(_)) => (AlertStatus::Update, f.readings as u32),
            (None, _) if withdrawn => (AlertStatus::Cleared, s.leave_count),
            (None, _) => return None,
        },
    };

    let severity = match (status, &q.episode) {
        (AlertStatus::Cleared, Some(ep)) => ep.severity,
        _ => subtype.severity(level).unwrap_or(Severity::Warning),
    };
    if status == AlertStatus::New {
        q.episode = Some(Episode {
            alert_id: alert_id("wx", &[&obs.station_id, subtype.as_str()], obs.ts),
            severity,
            forecast_fired: false,
            withdraw_run: 0,
            last: None,
            was_silent: false,
            observed_summary: None,
        });
    }
    let Some(ep) = q.episode.as_mut() else {
        debug_assert!(false, "a change from an open level has an episode");
        return None;
    };
    ep.severity = severity;
    if forecast.is_some() {
        ep.forecast_fired = true;
        ep.withdraw_run = 0;
    }
    let alert_id = ep.alert_id.clone();
    if status == AlertStatus::Cleared {
        q.episode = None;
    }

    let take = (run.max(1) as usize).min(q.recent_ids.len());
    let source_event_ids = q
        .recent_ids
        .iter()
        .skip(q.recent_ids.len() - take)
        .cloned()
        .collect();
    Some(Emission {
        subtype,
        status,
        level,
        severity,
        alert_id,
        forecast,
        source_event_ids,
    })
}

/// The station's road position: the network's station record when it has one on a
/// carriageway; else the station's (or the observation's) point located on a
/// carriageway, or any line, within the network's snap distance; else off the road.
fn resolve_place(obs: &WeatherObservation, roads: &RoadNetwork, stretch_m: f64) -> Place {
    let station = roads.station(&obs.station_id);
    let (lon, lat) = station.map_or((obs.lon, obs.lat), |st| (st.lon, st.lat));
    let pos: Option<RoadPosition> = station
        .and_then(|st| st.road.as_ref())
        .and_then(|r| roads.position_at_stake(r.line, r.stake_m, obs.ts))
        .or_else(|| {
            roads.locate_filtered(lon, lat, obs.ts, roads.max_snap_m(), |l| {
                l.kind == LineKind::Carriageway
            })
        })
        .or_else(|| roads.locate(lon, lat, obs.ts));
    let station_name = station.map(|st| st.name.to_string());
    let Some(pos) = pos else {
        return Place {
            location: location(lon, lat, None),
            station_name,
            road_id: None,
            stretches: Vec::new(),
            range: None,
        };
    };
    let stretches = spans(&roads.stretch(&pos.road_id, pos.stake_m, stretch_m));
    let range = stretches
        .iter()
        .map(|sp| (sp.from_m, sp.to_m))
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
        // No carriageway of the road reaches the stake (a ramp-only match): the plain
        // ± stretch_m around the station still says where the warning applies.
        .unwrap_or((
            (pos.stake_m - stretch_m).round() as i64,
            (pos.stake_m + stretch_m).round() as i64,
        ));
    Place {
        location: location(pos.snapped.0, pos.snapped.1, Some(&pos)),
        station_name,
        road_id: Some(pos.road_id.to_string()),
        stretches,
        range: Some(range),
    }
}

/// Advice for a level: speed limit, minimum gap and text (DOMAIN.md for fog; docs for
/// the others).
struct Advice {
    speed_limit_kmh: Option<u32>,
    min_gap_m: Option<u32>,
    zh: &'static str,
    en: &'static str,
    /// For the summary line when there is no speed limit to quote.
    zh_short: &'static str,
    en_short: &'static str,
}

const fn advice_row(
    speed_limit_kmh: Option<u32>,
    min_gap_m: Option<u32>,
    zh: &'static str,
    en: &'static str,
    zh_short: &'static str,
    en_short: &'static str,
) -> Advice {
    Advice {
        speed_limit_kmh,
        min_gap_m,
        zh,
        en,
        zh_short,
        en_short,
    }
}

fn advice(subtype: Subtype, level: u8) -> Advice {
    match (subtype, level) {
        // Road Traffic Safety Law Implementing Regulations art. 81; CMA fog signals.
        (Subtype::Fog, 1) => advice_row(
            None,
            None,
            "开启雾灯和近光灯，谨慎驾驶（大雾黄色预警）",
            "Fog lights and dipped headlights on, drive with caution (CMA yellow)",
            "开启雾灯 谨慎驾驶",
            "fog lights on, caution",
        ),
        (Subtype::Fog, 2) => advice_row(
            Some(60),
            Some(100),
            "开启雾灯、近光灯、示廓灯和前后位灯，车速不超过 60 km/h，与同车道前车保持 100 米以上距离",
            "Fog lights, dipped headlights, side and rear lights on; at most 60 km/h; keep at least 100 m from the vehicle ahead",
            "",
            "",
        ),
        (Subtype::Fog, 3) => advice_row(
            Some(40),
            Some(50),
            "开启雾灯、近光灯、示廓灯、前后位灯和危险报警闪光灯，车速不超过 40 km/h，与同车道前车保持 50 米以上距离",
            "Fog lights, dipped headlights, side and rear lights and hazard lights on; at most 40 km/h; keep at least 50 m from the vehicle ahead",
            "",
            "",
        ),
        (Subtype::Fog, _) => advice_row(
            Some(20),
            None,
            "开启雾灯、近光灯、示廓灯、前后位灯和危险报警闪光灯，车速不超过 20 km/h，从最近的出口尽快驶离高速公路；建议封闭道路（大雾红色预警）",
            "Fog lights, dipped headlights, side and rear lights and hazard lights on; at most 20 km/h; leave the expressway at the next exit; consider closing the road (CMA red)",
            "",
            "",
        ),
        (Subtype::Ice, 1) => advice_row(
            Some(60),
            Some(100),
            "路面湿冷可能结冰，车速不超过 60 km/h，与前车保持 100 米以上距离，避免急刹车和急转向",
            "Wet or snowy surface at freezing temperature, ice likely: at most 60 km/h, keep at least 100 m from the vehicle ahead, no sudden braking or steering",
            "",
            "",
        ),
        // Implementing Regulations art. 46 (4): at most 30 km/h on icy roads.
        (Subtype::Ice, _) => advice_row(
            Some(30),
            Some(100),
            "路面结冰，车速不超过 30 km/h，与前车保持 100 米以上距离；建议撒布融雪剂、带道通行或封闭道路（道路结冰预警）",
            "Ice on the road: at most 30 km/h, keep at least 100 m from the vehicle ahead; consider de-icing, escorted convoys or closing the road (CMA road-icing signal)",
            "",
            "",
        ),
        (Subtype::Wind, 1) => advice_row(
            Some(80),
            None,
            "大风，减速慢行，握稳方向盘，桥梁、隧道口和垭口注意横风；高边车辆和空载货车谨慎行驶",
            "Gale-force gusts: slow down, hold the wheel firmly, expect crosswinds on bridges, at tunnel portals and passes; high-sided and empty lorries take care",
            "",
            "",
        ),
        (Subtype::Wind, 2) => advice_row(
            Some(60),
            None,
            "狂风，车速不超过 60 km/h；高边车辆、空载货车和危险货物运输车辆限行",
            "Storm-force gusts: at most 60 km/h; restrict high-sided and empty lorries and dangerous goods vehicles",
            "",
            "",
        ),
        (Subtype::Wind, _) => advice_row(
            Some(40),
            None,
            "飓风级阵风，车速不超过 40 km/h，从最近的出口驶离；建议封闭道路",
            "Hurricane-force gusts: at most 40 km/h, leave at the next exit; consider closing the road",
            "",
            "",
        ),
        (Subtype::Rain, 1) => advice_row(
            Some(80),
            Some(100),
            "短时强降水，开启近光灯、示廓灯和前后位灯，车速不超过 80 km/h，与前车保持 100 米以上距离，谨防水滑",
            "Heavy rain: dipped headlights, side and rear lights on; at most 80 km/h; keep at least 100 m from the vehicle ahead; beware of aquaplaning",
            "",
            "",
        ),
        (Subtype::Rain, _) => advice_row(
            Some(60),
            Some(100),
            "暴雨，开启雾灯、近光灯、示廓灯和前后位灯，车速不超过 60 km/h，与前车保持 100 米以上距离，注意积水路段",
            "Torrential rain: fog lights, dipped headlights, side and rear lights on; at most 60 km/h; keep at least 100 m from the vehicle ahead; watch for standing water",
            "",
            "",
        ),
    }
}

const FORECAST_ADVICE: Advice = advice_row(
    None,
    None,
    "能见度快速下降，可能出现团雾：提前减速，开启雾灯和近光灯，加大车距",
    "Visibility falling fast, dense fog likely: slow down early, fog lights and dipped headlights on, increase the gap",
    "提前减速",
    "slow down early",
);

const CLEARED_ADVICE: Advice = advice_row(
    None,
    None,
    "恶劣天气已解除，恢复正常通行，注意路况",
    "Severe weather has cleared; normal driving, mind the road",
    "",
    "",
);

fn level_word_zh(level: u8) -> &'static str {
    match level {
        1 => "一级",
        2 => "二级",
        3 => "三级",
        _ => "四级",
    }
}

/// "能见度 80 米" / "visibility 80 m", and the like; `None` when the value is missing.
fn measured_text(subtype: Subtype, obs: &WeatherObservation, locale: Locale) -> Option<String> {
    let zh = locale == Locale::ZhCn;
    match subtype {
        Subtype::Fog => finite(obs.visibility_m).map(|v| {
            if zh {
                format!("能见度 {v:.0} 米")
            } else {
                format!("visibility {v:.0} m")
            }
        }),
        Subtype::Ice => finite(obs.road_surface_temp_c).map(|t| {
            if zh {
                format!("路温 {t:.1} °C")
            } else {
                format!("surface {t:.1} °C")
            }
        }),
        Subtype::Wind => finite(obs.wind_gust_mps).map(|g| {
            if zh {
                format!("阵风 {g:.1} m/s")
            } else {
                format!("gusts {g:.1} m/s")
            }
        }),
        Subtype::Rain => finite(obs.precipitation_mm_h).map(|p| {
            if zh {
                format!("雨强 {p:.1} mm/h")
            } else {
                format!("rain {p:.1} mm/h")
            }
        }),
    }
}

fn phenomenon(subtype: Subtype, level: u8, locale: Locale) -> &'static str {
    match (subtype, level, locale) {
        (Subtype::Fog, _, Locale::ZhCn) => "团雾",
        (Subtype::Fog, _, Locale::En) => "Fog",
        (Subtype::Ice, 1, Locale::ZhCn) => "路面湿滑易结冰",
        (Subtype::Ice, 1, Locale::En) => "Ice risk",
        (Subtype::Ice, _, Locale::ZhCn) => "路面结冰",
        (Subtype::Ice, _, Locale::En) => "Ice",
        (Subtype::Wind, _, Locale::ZhCn) => "大风",
        (Subtype::Wind, _, Locale::En) => "Strong gusts",
        (Subtype::Rain, _, Locale::ZhCn) => "短时强降水",
        (Subtype::Rain, _, Locale::En) => "Heavy rain",
    }
}

fn minutes_text(ms: i64) -> i64 {
    // Rounded up and at least one: "within 0 minutes" reads as a mistake.
    ((ms + 59_999) / 60_000).max(1)
}

/// The summary line, e.g. "G76 厦蓉高速 K1203+450 附近团雾 能见度 80 米 (三级) 限速 40 km/h",
/// "Fog near G76 厦蓉高速 K1203+450: visibility 80 m (level 3), limit 40 km/h".
fn summary(
    e: &Emission,
    obs: &WeatherObservation,
    place: &str,
    s: &WeatherSettings,
    locale: Locale,
) -> String {
    let zh = locale == Locale::ZhCn;
    let measured = measured_text(e.subtype, obs, locale);
    if e.status == AlertStatus::Cleared {
        // `level` is 0 now; the phenomenon is named as in the alert's main messages.
        let noun = phenomenon(e.subtype, 2, locale);
        return match (zh, measured) {
            (true, Some(m)) => format!("{place} 附近{noun}已解除 {m}"),
            (true, None) => format!("{place} 附近{noun}已解除"),
            (false, Some(m)) => format!("{noun} near {place} cleared ({m})"),
            (false, None) => format!("{noun} near {place} cleared"),
        };
    }
    let thr = s.forecast_visibility_m;
    let mins = e.forecast.map(|f| minutes_text(f.within_ms));
    if e.level == 0 {
        // The early warning alone.
        let now = finite(obs.visibility_m).unwrap_or(f64::NAN);
        let mins = mins.unwrap_or(1);
        return if zh {
            format!("{place} 附近能见度快速下降 当前 {now:.0} 米 预计 {mins} 分钟内低于 {thr:.0} 米 (团雾预警)")
        } else {
            format!("Visibility falling near {place}: {now:.0} m now, below {thr:.0} m expected within {mins} min (fog early warning)")
        };
    }
    let noun = phenomenon(e.subtype, e.level, locale);
    let adv = advice(e.subtype, e.level);
    let mut text = if zh {
        format!("{place} 附近{noun}")
    } else {
        format!("{noun} near {place}")
    };
    if let Some(m) = measured {
        text.push_str(if zh { " " } else { ": " });
        text.push_str(&m);
    }
    let limit = match (adv.speed_limit_kmh, zh) {
        (Some(kmh), true) => format!("限速 {kmh} km/h"),
        (Some(kmh), false) => format!("limit {kmh} km/h"),
        (None, true) => adv.zh_short.to_owned(),
        (None, false) => adv.en_short.to_owned(),
    };
    if zh {
        text.push_str(&format!(" ({}) {limit}", level_word_zh(e.level)));
        if let Some(mins) = mins {
            text.push_str(&format!(
                " 能见度快速下降 预计 {mins} 分钟内低于 {thr:.0} 米"
            ));
        }
    } else {
        text.push_str(&format!(" (level {}), {limit}", e.level));
        if let Some(mins) = mins {
            text.push_str(&format!(
                ", falling: below {thr:.0} m expected within {mins} min"
            ));
        }
    }
    text
}

fn num(x: Option<f64>) -> Value {
    finite(x).map_or(Value::Null, |v| json!(v))
}

/// The measured values behind the alert, by subtype; `null` where not measured.
fn measured_details(subtype: Subtype, obs: &WeatherObservation, d: &mut Map<String, Value>) {
    match subtype {
        Subtype::Fog => {
            d.insert("visibility_m".into(), num(obs.visibility_m));
        }
        Subtype::Ice => {
            d.insert("road_surface_temp_c".into(), num(obs.road_surface_temp_c));
            d.insert(
                "road_surface_state".into(),
                obs.road_surface_state
                    .map_or(Value::Null, |st| json!(st.as_str())),
            );
            d.insert("precipitation_mm_h".into(), num(obs.precipitation_mm_h));
            d.insert("air_temp_c".into(), num(obs.air_temp_c));
        }
        Subtype::Wind => {
            d.insert("wind_gust_ms".into(), num(obs.wind_gust_mps));
            d.insert("wind_speed_ms".into(), num(obs.wind_speed_mps));
        }
        Subtype::Rain => {
            d.insert("precipitation_mm_h".into(), num(obs.precipitation_mm_h));
        }
    }
}

fn draft(
    e: &Emission,
    obs: &WeatherObservation,
    place: &Place,
    s: &WeatherSettings,
    locale: Locale,
) -> AlertDraft {
    let mut d = Map::new();
    d.insert("level".into(), json!(e.level));
    d.insert("station_id".into(), json!(obs.station_id));
    if let Some(name) = &place.station_name {
        d.insert("station_name".into(), json!(name));
    }
    let (from, to) = place
        .range
        .map_or((Value::Null, Value::Null), |(a, b)| (json!(a), json!(b)));
    d.insert("stake_from_m".into(), from);
    d.insert("stake_to_m".into(), to);
    let stretches: Vec<Value> = place
        .stretches
        .iter()
        .map(|sp| {
            json!({
                "direction": sp.direction.as_str(),
                "stake_from_m": sp.from_m,
                "stake_to_m": sp.to_m,
            })
        })
        .collect();
    d.insert("stretches".into(), Value::Array(stretches));
    measured_details(e.subtype, obs, &mut d);

    let adv = if e.status == AlertStatus::Cleared {
        CLEARED_ADVICE
    } else if e.level == 0 {
        FORECAST_ADVICE
    } else {
        advice(e.subtype, e.level)
    };
    d.insert("speed_limit_kmh".into(), json!(adv.speed_limit_kmh));
    d.insert("min_gap_m".into(), json!(adv.min_gap_m));
    let text = match locale {
        Locale::ZhCn => adv.zh,
        Locale::En => adv.en,
    };
    d.insert("advice".into(), json!(text));

    if e.subtype == Subtype::Fog {
        d.insert("forecast".into(), json!(e.forecast.is_some()));
        if let Some(f) = e.forecast {
            d.insert(
                "forecast_visibility_m".into(),
                json!(s.forecast_visibility_m),
            );
            d.insert("forecast_within_s".into(), json!(f.within_ms / 1000));
            d.insert(
                "trend_m_per_min".into(),
                json!((f.slope_m_per_min * 10.0).round() / 10.0),
            );
        }
    }

    // The alert covers both carriageways, so the summary names no direction; the
    // location keeps the station's own carriageway for routing.
    let mut place_loc = place.location.clone();
    place_loc.direction = None;
    let place_text = describe_place(&place_loc, locale);
    AlertDraft {
        alert_id: e.alert_id.clone(),
        kind: AlertKind::SevereWeather,
        subtype: e.subtype.as_str(),
        severity: e.severity,
        status: e.status,
        event_ms: obs.ts,
        location: place.location.clone(),
        summary: summary(e, obs, &place_text, s, locale),
        details: d,
        source_event_ids: e.source_event_ids.clone(),
        observed: None,
        intercept: None,
    }
}

#[cfg(test)]
#[path = "weather_tests.rs"]
mod tests;
