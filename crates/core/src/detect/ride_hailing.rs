//! Illegal ride-hailing (非法营运) — DOMAIN.md "Illegal ride-hailing".
//!
//! Two alerts, both `illegal_ride_hailing`:
//!
//! - `watchlist`: a plate on the watchlist is read anywhere → an alert at once (at most one
//!   per plate per `watchlist_cooldown`), with the next interchange and service area ahead
//!   so that a unit there can intercept.
//! - `pattern`: each private car's reads are rebuilt into trips (a gap longer than
//!   `trip_gap` ends one; its ends are the nearest interchange or service area to its first
//!   and last read). Six evidence features over the last `window` operating days are
//!   combined into a score in 0..1; a plate with enough days of evidence whose score reaches
//!   `score_threshold` is alerted at most once per `pattern_cooldown`.
//!
//! Only private passenger cars count: `car`/`van` with a blue (ordinary) or green (small
//! new-energy) plate, not on the whitelist of licensed operators. Anything else leaves no
//! state at all.
//!
//! Memory is the constraint (hundreds of thousands of plates a week): per plate the state
//! is one fixed-size record, a day bitmask and a short vector of 20-byte trip records; no
//! read is kept beyond the last one. State expires by event time and the number of plates
//! is capped (least recently seen evicted). docs/DETECTION.md has the rules, the sources,
//! the weights and the measured bytes per plate.
//!
//! Plates are personal data: alert ids carry the plate's keyed pseudonym
//! (`core::pseudonym`, HMAC-SHA256 under `privacy.plate_key`), never the plate, and
//! nothing here logs (the core never does). `details.plate` and the summary show it in
//! full because the command center has to identify the vehicle (see docs).
// foldhash: SipHash on plate keys showed in perf; plates are not attacker-chosen keys.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::fmt;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::alert::{alert_id, describe_place, location, stake_text, AlertDraft};
use crate::model::{
    format_rfc3339, is_valid_plate, AlertKind, AlertStatus, EventTime, Intercept, PlateCode,
    PlateColor, PlateRead, Severity, UtcOffset, VehicleClass,
};
use crate::roads::{
    distance_m, Direction, RoadNetwork, RoadPosition, Zone, ZoneKind, ZONE_ROAD_SNAP_M,
};
use crate::settings::{Locale, OutputSettings, RideHailingSettings};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Operating days run from 04:00 to 04:00 local time (as transit agencies count service
/// days), so a trip home after midnight does not make one more "active day".
const DAY_START_MS: i64 = 4 * HOUR_MS;

/// A pattern alert needs reads on at least this many operating days of the window.
/// A weekend trip (out Friday, back Sunday) or one long drive looks like an operator on
/// the days it happens; operators are active on most days. The 320 → 14 lesson (DOMAIN.md)
/// says an unconfirmable alert costs a patrol's time, so a pattern must repeat.
const MIN_ACTIVE_DAYS: u32 = 3;

/// A mid-trip stop at a service area or toll plaza counts as "short" (taking on
/// passengers, not a meal) when the estimated dwell is at most this long.
const SHORT_STOP_MAX_MS: f64 = 20.0 * 60_000.0;
/// Speed assumed for the driving part between a stop read and the next read, so that the
/// dwell estimate is never too long (120 km/h, the expressway limit).
const STOP_TRAVEL_SPEED_MS: f64 = 120.0 / 3.6;

/// A trip that reverses the previous one (B→A after A→B) counts as a quick round trip
/// when it starts at most this long after the previous ended. A commuter's evening return
/// comes hours later; an operator turns around once the car is full.
const TURNAROUND_MAX_MS: i64 = 2 * HOUR_MS;
/// A trip that ends where it began is a loop only if it drove at least this far (two reads
/// near one interchange are not a loop).
const LOOP_MIN_M: f64 = 5_000.0;

/// Distance between consecutive reads that would need more than this speed is not counted:
/// a misread or a cloned plate (套牌) must not inflate the daily distance.
const MAX_PLAUSIBLE_SPEED_MS: f64 = 200.0 / 3.6;
/// Slack for the positions of two readers of the same spot (snapping, ramp readers).
const POSITION_SLACK_M: f64 = 2_000.0;

/// An intercept point nearer than this is passed (at 100 km/h, in 36 s) before a unit can
/// act on the alert, so the next one ahead is named instead.
const MIN_AHEAD_M: f64 = 1_000.0;

/// At most this many closed trips per plate (an operator makes ~10 a day, so a week fits);
/// beyond it the oldest go. Bounds the worst case of a plate seen by every gantry with
/// gaps over 30 min (e.g. a cloned plate).
const MAX_TRIPS_PER_PLATE: usize = 128;

/// Expiry walks every plate, so it runs at most this often in event time (the engine calls
/// `on_time` for every record).
const SWEEP_INTERVAL_MS: i64 = 5 * MINUTE_MS;

/// Width of the active-day bitmask; the window is clamped to it (config allows 90 days).
const MAX_WINDOW_DAYS: i64 = 127;

const NO_ROAD: u16 = u16::MAX;
/// Place index 0 = unknown (off the network, or a road without interchanges/service
/// areas); known places are 1.. in the order of their keys ([`Places`]).
const NO_PLACE: u16 = 0;
/// The key of no place: [`place_key`] never returns it.
const NO_PLACE_KEY: u32 = 0;
/// A trip record's start minute has 26 bits (up to 2097-08); its stop count the other 6.
const START_MIN_BITS: u32 = 26;
const MAX_TRIP_STOPS: u8 = (1 << (32 - START_MIN_BITS)) - 1;
const NEVER: EventTime = EventTime::MIN;

// ---------------------------------------------------------------------------------------
// Plate lists
// ---------------------------------------------------------------------------------------

/// A watchlist or whitelist: UTF-8 text, one plate per line, `#` starts a comment (also
/// after a plate), blank lines ignored; invalid plates are reported (line numbers) not fatal.
///
/// Lines are normalised before validation: a leading byte-order mark, whitespace
/// (including the full-width space), `·` and `-` separators are removed and ASCII letters
/// upper-cased, so `贵F·1234 5` and `贵f12345` both mean `贵F12345`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PlateList {
    plates: HashSet<Box<str>>,
}

/// Plates are personal data: a list prints as its size only.
impl fmt::Debug for PlateList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlateList({} plates)", self.plates.len())
    }
}

impl PlateList {
    /// Parses a list file's text. Problems name the line (1-based) and what is wrong, but
    /// never the text of the line: the adapter logs them, and a near-plate is still
    /// personal data.
    pub fn parse(text: &str) -> (PlateList, Vec<String>) {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut plates: HashSet<Box<str>> = HashSet::new();
        let mut first_line: HashMap<String, usize> = HashMap::new();
        let mut problems = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let content = raw.split('#').next().unwrap_or("");
            let plate = normalize_plate(content);
            if plate.is_empty() {
                continue;
            }
            if is_valid_plate(&plate).is_none() {
                problems.push(format!(
                    "line {line_no}: not a valid plate ({} characters; expected province + letter + 5 or 6 characters)",
                    plate.chars().count()
                ));
                continue;
            }
            if let Some(first) = first_line.get(&plate) {
                problems.push(format!(
                    "line {line_no}: duplicate of line {first}, ignored"
                ));
                continue;
            }
            first_line.insert(plate.clone(), line_no);
            plates.insert(plate.into_boxed_str());
        }
        (PlateList { plates }, problems)
    }

    pub fn empty() -> Self {
        PlateList::default()
    }

    /// Whether the list holds this plate (as read: validated plates are already canonical).
    pub fn contains(&self, plate: &str) -> bool {
        self.plates.contains(plate)
    }

    pub fn len(&self) -> usize {
        self.plates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plates.is_empty()
    }
}

fn normalize_plate(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '·' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Per-plate state
// ---------------------------------------------------------------------------------------

/// The last read of a plate: where distances and stops are measured from.
#[derive(Debug, Clone, Copy)]
struct LastRead {
    ms: EventTime,
    stake_m: f64,
    /// `f32` degrees are ~1 m here: plenty for a straight-line fallback distance.
    lon: f32,
    lat: f32,
    /// The nearest interchange / service area ([`Places`]; [`NO_PLACE`] if unknown).
    place: u16,
    /// Id + 1 of the service area or toll plaza the read lies in; 0 = none (also for a
    /// zone id beyond `u16`, as roads beyond `u16` are [`NO_ROAD`]).
    stop_zone: u16,
    /// Index into `RoadNetwork::roads()`; [`NO_ROAD`] off the network.
    road: u16,
    direction: Direction,
}

/// The trip a plate is on (or last was on): full precision, one per plate.
#[derive(Debug, Clone, Copy)]
struct OpenTrip {
    start_ms: EventTime,
    from: u16,
    to: u16,
    distance_m: f64,
    reads: u16,
    stops: u8,
    /// The stop zone counted last, so that exit and re-entry at one plaza count once.
    last_stop_zone: u16,
}

impl OpenTrip {
    fn start(ms: EventTime, place: u16) -> OpenTrip {
        OpenTrip {
            start_ms: ms,
            from: place,
            to: place,
            distance_m: 0.0,
            reads: 1,
            stops: 0,
            last_stop_zone: 0,
        }
    }

    fn record(&self, end_ms: EventTime) -> TripRec {
        let minutes = |t: EventTime| t.ms().div_euclid(MINUTE_MS);
        let start_min = minutes(self.start_ms);
        let duration_min = (minutes(end_ms) - start_min).max(0);
        let start_min = start_min.clamp(0, (1 << START_MIN_BITS) - 1) as u32;
        TripRec {
            start_and_stops: start_min << (32 - START_MIN_BITS)
                | u32::from(self.stops.min(MAX_TRIP_STOPS)),
            from: self.from,
            to: self.to,
            duration_min: duration_min.min(i64::from(u16::MAX)) as u16,
            // Hectometres: 0.1 km resolution up to 6553 km per trip.
            distance_hm: (self.distance_m / 100.0)
                .round()
                .clamp(0.0, f64::from(u16::MAX)) as u16,
        }
    }
}

/// A closed trip, compact: 12 bytes (a week of a commuter's trips is most of a plate's
/// memory, docs/DETECTION.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TripRec {
    /// Minutes since the epoch in the top 26 bits (to 2097-08; later clamps), short stops
    /// in the low 6 (at most 63 per trip; a trip with more still counts 63).
    start_and_stops: u32,
    from: u16,
    to: u16,
    duration_min: u16,
    distance_hm: u16,
}

impl TripRec {
    fn start_ms(&self) -> EventTime {
        EventTime::from_ms(i64::from(self.start_and_stops >> (32 - START_MIN_BITS)) * MINUTE_MS)
    }
    fn stops(&self) -> u8 {
        (self.start_and_stops & u32::from(MAX_TRIP_STOPS)) as u8
    }
    fn end_ms(&self) -> EventTime {
        self.start_ms() + i64::from(self.duration_min) * MINUTE_MS
    }
    fn distance_m(&self) -> f64 {
        f64::from(self.distance_hm) * 100.0
    }
}

#[derive(Debug, Clone)]
struct PlateState {
    pattern_alert_ms: EventTime,
    /// Bit `i` set = a read on operating day `active_top - i`. Two words rather than a
    /// `u128`, whose 16-byte alignment would pad the struct.
    active_lo: u64,
    active_hi: u64,
    active_top: i32,
    /// The last read, also the largest `ts` seen (an older read changes no trip): expiry
    /// and eviction order.
    last: LastRead,
    open: OpenTrip,
    /// Closed trips, oldest first. A boxed slice, not a `Vec`: no spare capacity and
    /// 8 bytes less per plate; a trip closes at most every `trip_gap`, so the
    /// reallocation per close costs nothing measurable.
    trips: Box<[TripRec]>,
}

impl PlateState {
    fn new(read: LastRead, day: i64) -> PlateState {
        PlateState {
            pattern_alert_ms: NEVER,
            active_lo: 1,
            active_hi: 0,
            active_top: clamp_day(day),
            last: read,
            open: OpenTrip::start(read.ms, read.place),
            trips: Box::default(),
        }
    }

    fn active_mask(&self) -> u128 {
        (u128::from(self.active_hi) << 64) | u128::from(self.active_lo)
    }

    fn set_active_mask(&mut self, mask: u128) {
        self.active_lo = mask as u64;
        self.active_hi = (mask >> 64) as u64;
    }

    fn mark_day(&mut self, day: i64) {
        let top = i64::from(self.active_top);
        let mut mask = self.active_mask();
        if day > top {
            let shift = day - top;
            mask = if shift >= 128 { 0 } else { mask << shift };
            mask |= 1;
            self.active_top = clamp_day(day);
        } else if top - day < 128 {
            mask |= 1u128 << (top - day);
        }
        self.set_active_mask(mask);
    }

    /// Operating days in `first..=last` with at least one read.
    fn active_days_between(&self, first: i64, last: i64) -> u32 {
        let top = i64::from(self.active_top);
        // Bit index of a day is `top - day`: later days have lower bits.
        let lo = (top - last).max(0);
        let hi = (top - first).min(127);
        if lo > hi {
            return 0;
        }
        let width = hi - lo + 1;
        let window = if width >= 128 {
            u128::MAX
        } else {
            ((1u128 << width) - 1) << lo
        };
        (self.active_mask() & window).count_ones()
    }

    fn close_open_trip(&mut self) {
        let mut trips = std::mem::take(&mut self.trips).into_vec();
        if trips.len() >= MAX_TRIPS_PER_PLATE {
            trips.remove(0);
        } else {
            trips.reserve_exact(1);
        }
        trips.push(self.open.record(self.last.ms));
        self.trips = trips.into_boxed_slice();
    }

    /// Bytes this plate costs: its map entry (key, value, control byte) at hashbrown's
    /// maximum load of 7/8, plus the trips' heap (the key has none).
    #[cfg(test)]
    fn bytes(&self) -> usize {
        let entry = std::mem::size_of::<(PlateCode, PlateState)>() + 1;
        entry * 8 / 7 + self.trips.len() * std::mem::size_of::<TripRec>()
    }
}

fn clamp_day(day: i64) -> i32 {
    day.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

// ---------------------------------------------------------------------------------------
// Evidence
// ---------------------------------------------------------------------------------------

/// One evidence feature: its value, where it starts to count and where it saturates.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Feature {
    name: &'static str,
    value: f64,
    zero_at: f64,
    full_at: f64,
    weight: f64,
}

impl Feature {
    /// 0 at or below `zero_at`, 1 at or above `full_at`, linear between.
    fn strength(&self) -> f64 {
        let s = (self.value - self.zero_at) / (self.full_at - self.zero_at);
        if s.is_nan() {
            0.0
        } else {
            s.clamp(0.0, 1.0)
        }
    }
}

/// The weights (sum 1). Daily distance is the one number the literature measured on plate
/// cameras (85.8 km/day line; suspects 128.5, private cars 25.1), so it weighs most; trips
/// on one corridor is what separates an operator from a commuter, who makes two; quick
/// round trips / loops and time on the road are the toll-data patent's signals; active-day
/// share and short service-area stops support but do not decide (commuters are active on
/// weekdays too; a long trip has a fuel stop).
pub const WEIGHT_DAILY_KM: f64 = 0.25;
pub const WEIGHT_CORRIDOR_TRIPS: f64 = 0.20;
pub const WEIGHT_TURNAROUNDS: f64 = 0.15;
pub const WEIGHT_ROAD_HOURS: f64 = 0.15;
pub const WEIGHT_ACTIVE_SHARE: f64 = 0.15;
pub const WEIGHT_SHORT_STOPS: f64 = 0.10;

/// What the window says about one plate.
#[derive(Debug, Clone, PartialEq)]
struct Evidence {
    window_days: u32,
    active_days: u32,
    trips: u32,
    km_per_day: f64,
    /// The most frequent pair of trip ends (places, as its first trip went) and its
    /// trip count.
    main_pair: Option<(u16, u16, u32)>,
    features: [Feature; 6],
    score: f64,
}

// ---------------------------------------------------------------------------------------
// The detector
// ---------------------------------------------------------------------------------------

pub struct RideHailingDetector {
    settings: RideHailingSettings,
    output: OutputSettings,
    /// The configured UTC offset in ms: operating days are local days.
    offset_ms: i64,
    window_days: i64,
    min_active_days: u32,
    watchlist: PlateList,
    whitelist: PlateList,
    /// Plate → time of its last watchlist alert (only listed plates; pruned by time).
    watch_alerted: HashMap<Box<str>, EventTime>,
    plates: HashMap<PlateCode, PlateState>,
    /// The network's trip-end places, built on the first read (a detector serves one
    /// network, as its road indices already assume).
    places: Option<Places>,
    /// Plates dropped to stay within `max_tracked_plates` (a flood of new plates).
    evicted: u64,
    next_sweep_ms: EventTime,
}

impl RideHailingDetector {
    pub fn new(settings: RideHailingSettings, output: OutputSettings) -> Self {
        let window_days =
            ((settings.window_ms.max(1) + DAY_MS - 1) / DAY_MS).clamp(1, MAX_WINDOW_DAYS);
        RideHailingDetector {
            offset_ms: offset_ms(output.utc_offset),
            window_days,
            // A window shorter than the minimum could never alert; use all of it then.
            min_active_days: MIN_ACTIVE_DAYS.min(window_days as u32),
            settings,
            output,
            watchlist: PlateList::empty(),
            whitelist: PlateList::empty(),
            watch_alerted: HashMap::new(),
            plates: HashMap::new(),
            places: None,
            evicted: 0,
            next_sweep_ms: NEVER,
        }
    }

    /// Replace the plate lists (the adapter re-reads the files when they change, no restart).
    /// Plates now on the whitelist lose their state at once.
    pub fn set_lists(&mut self, watchlist: PlateList, whitelist: PlateList) {
        for plate in &whitelist.plates {
            if let Some(code) = PlateCode::new(plate) {
                self.plates.remove(&code);
            }
        }
        self.watchlist = watchlist;
        self.whitelist = whitelist;
    }

    /// Sizes of the watchlist and the whitelist, for the adapter's metrics.
    pub fn list_sizes(&self) -> (usize, usize) {
        (self.watchlist.len(), self.whitelist.len())
    }

    pub fn on_plate_read(
        &mut self,
        read: &PlateRead,
        roads: &RoadNetwork,
        out: &mut Vec<AlertDraft>,
    ) {
        if !is_private_car(read) || self.whitelist.contains(&read.plate) {
            return;
        }
        let pos = locate_read(roads, read);
        if self.watchlist.contains(&read.plate) {
            self.watchlist_hit(read, pos.as_ref(), roads, out);
        }
        if let Some(evidence) = self.track(read, pos.as_ref(), roads) {
            out.push(self.pattern_alert(read, pos.as_ref(), roads, &evidence));
        }
    }

    /// Event time advanced (the engine calls this as its watermark moves): expire state.
    /// No alert is due on time alone: both alerts fire on a read.
    pub fn on_time(&mut self, now_ms: EventTime) {
        if now_ms < self.next_sweep_ms {
            return;
        }
        self.next_sweep_ms = now_ms.saturating_add(SWEEP_INTERVAL_MS);
        let unseen_since = now_ms.saturating_sub(self.settings.window_ms);
        let first_day = self.day_of(now_ms) - self.window_days + 1;
        let offset_ms = self.offset_ms;
        self.plates.retain(|_, st| {
            if st.last.ms <= unseen_since {
                return false;
            }
            let keep = |t: &TripRec| operating_day(t.start_ms(), offset_ms) >= first_day;
            if !st.trips.iter().all(keep) {
                let mut trips = std::mem::take(&mut st.trips).into_vec();
                trips.retain(keep);
                st.trips = trips.into_boxed_slice();
            }
            true
        });
        let cooldown = self.settings.watchlist_cooldown_ms;
        self.watch_alerted
            .retain(|_, at| now_ms.since(*at) < cooldown);
    }

    pub fn tracked_plates(&self) -> usize {
        self.plates.len()
    }

    /// Plates evicted so far because the map was full.
    pub fn evicted_plates(&self) -> u64 {
        self.evicted
    }

    /// Estimated bytes of all per-plate state (map table included), for metrics and the
    /// memory budget in docs/DETECTION.md. Walks every plate: call it rarely (a scrape).
    pub fn approx_state_bytes(&self) -> usize {
        let table = self.plates.capacity() * (std::mem::size_of::<(PlateCode, PlateState)>() + 1);
        let heap: usize = self
            .plates
            .values()
            .map(|st| st.trips.len() * std::mem::size_of::<TripRec>())
            .sum();
        table + heap
    }

    fn day_of(&self, ms: EventTime) -> i64 {
        operating_day(ms, self.offset_ms)
    }

    /// When operating day `day` begins (04:00 local).
    fn day_start_ms(&self, day: i64) -> EventTime {
        EventTime::from_ms(
            day.saturating_mul(DAY_MS)
                .saturating_add(DAY_START_MS)
                .saturating_sub(self.offset_ms),
        )
    }

    // --- watchlist ---------------------------------------------------------------------

    fn watchlist_hit(
        &mut self,
        read: &PlateRead,
        pos: Option<&RoadPosition>,
        roads: &RoadNetwork,
        out: &mut Vec<AlertDraft>,
    ) {
        if let Some(&at) = self.watch_alerted.get(read.plate.as_str()) {
            if read.ts.since(at) < self.settings.watchlist_cooldown_ms {
                return;
            }
        }
        self.watch_alerted
            .insert(read.plate.clone().into_boxed_str(), read.ts);

        let locale = self.output.locale;
        let loc = location(read.lon, read.lat, pos);
        let place = describe_place(&loc, locale);
        let ahead = pos.map(|p| Ahead::find(roads, p)).unwrap_or_default();
        let plate = read.plate.as_str();
        let summary = match (locale, ahead.intercept()) {
            (Locale::ZhCn, Some(w)) if w.here => {
                format!("重点车辆 {plate} 出现在 {place}，现位于 {}", w.name)
            }
            (Locale::ZhCn, Some(w)) => format!(
                "重点车辆 {plate} 出现在 {place}，前方 {} {:.1} km",
                w.name,
                w.distance_m / 1000.0
            ),
            (Locale::ZhCn, None) => format!("重点车辆 {plate} 出现在 {place}"),
            (Locale::En, Some(w)) if w.here => {
                format!(
                    "Watchlist vehicle {plate} seen at {place}; now in {}",
                    w.name
                )
            }
            (Locale::En, Some(w)) => format!(
                "Watchlist vehicle {plate} seen at {place}; ahead: {} {:.1} km",
                w.name,
                w.distance_m / 1000.0
            ),
            (Locale::En, None) => format!("Watchlist vehicle {plate} seen at {place}"),
        };
        let mut details = read_details(read, pos, &ahead);
        details.insert(
            "cooldown_s".into(),
            json!(self.settings.watchlist_cooldown_ms / 1000),
        );
        out.push(AlertDraft {
            alert_id: alert_id(
                "rh",
                &["watchlist", &self.settings.plate_key.pseudonym(plate)],
                read.ts,
            ),
            kind: AlertKind::IllegalRideHailing,
            subtype: "watchlist",
            // A named vehicle police asked to stop, now on the road: dispatch-worthy, but
            // not a danger to life like a pedestrian in a tunnel (`critical`).
            severity: Severity::Severe,
            status: AlertStatus::New,
            event_ms: read.ts,
            location: loc,
            summary,
            details,
            source_event_ids: vec![read.event_id.clone()],
            observed: None,
            intercept: ahead.intercept().map(Waypoint::to_intercept),
        });
    }

    // --- pattern -----------------------------------------------------------------------

    /// Folds the read into the plate's state; returns the evidence when a pattern alert is
    /// due (and records that it was raised).
    fn track(
        &mut self,
        read: &PlateRead,
        pos: Option<&RoadPosition>,
        roads: &RoadNetwork,
    ) -> Option<Evidence> {
        // Decoding validated the plate; a plate that is not valid has no state.
        let code = PlateCode::new(&read.plate)?;
        let places = self.places.get_or_insert_with(|| Places::of(roads));
        let now = LastRead {
            ms: read.ts,
            stake_m: pos.map_or(0.0, |p| p.stake_m),
            lon: read.lon as f32,
            lat: read.lat as f32,
            place: pos.map_or(NO_PLACE, |p| places.index(place_of(roads, p))),
            stop_zone: pos.map_or(0, stop_zone_of),
            road: pos.map_or(NO_ROAD, |p| road_index(roads, &p.road_id)),
            direction: pos.map_or(Direction::Both, |p| p.direction),
        };
        let today = self.day_of(read.ts);
        let Some(st) = self.plates.get_mut(&code) else {
            self.make_room();
            self.plates.insert(code, PlateState::new(now, today));
            return None;
        };
        if read.ts.since(st.last.ms) >= self.settings.window_ms {
            // Unseen for a whole window: what the sweep would have removed. Starting afresh
            // here keeps the outcome independent of when the last sweep ran.
            *st = PlateState::new(now, today);
            return None;
        }
        st.mark_day(today);
        if read.ts < st.last.ms {
            // Out of order for this plate (per-key order is all the contract promises, and
            // the engine admits 30 s of lateness): it proves the day was active, but a
            // negative gap cannot extend a trip.
            return None;
        }
        let gap_ms = read.ts - st.last.ms;
        if gap_ms > self.settings.trip_gap_ms {
            st.close_open_trip();
            st.open = OpenTrip::start(read.ts, now.place);
        } else {
            let d = leg_distance_m(roads, &st.last, &now);
            if d <= POSITION_SLACK_M + MAX_PLAUSIBLE_SPEED_MS * gap_ms as f64 / 1000.0 {
                st.open.distance_m += d;
            }
            // The previous read was in a service area / toll plaza, was not where the trip
            // began, and the trip went on: a mid-trip stop. Short if the time left after
            // driving the leg is small.
            let prev_zone = st.last.stop_zone;
            if prev_zone != 0 && st.open.reads >= 2 && prev_zone != st.open.last_stop_zone {
                let dwell_ms = gap_ms as f64 - d / STOP_TRAVEL_SPEED_MS * 1000.0;
                if dwell_ms <= SHORT_STOP_MAX_MS {
                    st.open.stops = st.open.stops.saturating_add(1);
                    st.open.last_stop_zone = prev_zone;
                }
            }
            st.open.reads = st.open.reads.saturating_add(1);
            if now.place != NO_PLACE {
                if st.open.from == NO_PLACE {
                    st.open.from = now.place;
                }
                st.open.to = now.place;
            }
        }
        st.last = now;

        let cooldown_over = st.pattern_alert_ms == NEVER
            || read.ts.since(st.pattern_alert_ms) >= self.settings.pattern_cooldown_ms;
        let first_day = today - self.window_days + 1;
        if !cooldown_over || st.active_days_between(first_day, today) < self.min_active_days {
            return None;
        }
        let evidence = evidence(st, today, self.window_days, self.offset_ms, &self.settings);
        if evidence.score < self.settings.score_threshold {
            return None;
        }
        st.pattern_alert_ms = read.ts;
        Some(evidence)
    }

    /// Keeps the number of plates within `max_tracked_plates`: before a new plate is added
    /// to a full map, the least recently seen go. A full map evicts 1% at once, so that the
    /// O(n) selection is paid once per many inserts, not on every one. Ties on time go by
    /// plate, so the choice never depends on hash order.
    fn make_room(&mut self) {
        let max = self.settings.max_tracked_plates.max(1);
        if self.plates.len() < max {
            return;
        }
        let batch = (self.plates.len() + 1 - max).max(max / 100).max(1);
        // PlateCode orders as the plates' strings do.
        let mut order: Vec<(EventTime, PlateCode)> =
            self.plates.iter().map(|(k, st)| (st.last.ms, *k)).collect();
        let batch = batch.min(order.len());
        if batch < order.len() {
            order.select_nth_unstable(batch - 1);
        }
        self.evicted += batch as u64;
        for (_, k) in &order[..batch] {
            self.plates.remove(k);
        }
    }

    fn pattern_alert(
        &self,
        read: &PlateRead,
        pos: Option<&RoadPosition>,
        roads: &RoadNetwork,
        ev: &Evidence,
    ) -> AlertDraft {
        let locale = self.output.locale;
        let loc = location(read.lon, read.lat, pos);
        let place = describe_place(&loc, locale);
        let ahead = pos.map(|p| Ahead::find(roads, p)).unwrap_or_default();
        let plate = read.plate.as_str();
        let name = |place: u16| {
            self.places
                .as_ref()
                .and_then(|p| p.key(place))
                .and_then(|key| place_name(roads, key))
                .unwrap_or_else(|| "?".into())
        };
        let route = ev.main_pair.map(|(a, b, n)| (name(a), name(b), n));
        let summary = match locale {
            Locale::ZhCn => {
                let mut s = format!(
                    "疑似非法营运车辆 {plate}：近{}天活跃{}天，日均 {:.1} km，共 {} 趟",
                    ev.window_days, ev.active_days, ev.km_per_day, ev.trips
                );
                if let Some((a, b, n)) = &route {
                    s.push_str(&format!("（{a}—{b} {n} 趟）"));
                }
                s.push_str(&format!("，评分 {:.2}，现于 {place}", ev.score));
                s
            }
            Locale::En => {
                let mut s = format!(
                    "Suspected illegal ride-hailing vehicle {plate}: active {} of {} days, {:.1} km/day, {} trips",
                    ev.active_days, ev.window_days, ev.km_per_day, ev.trips
                );
                if let Some((a, b, n)) = &route {
                    s.push_str(&format!(" ({n} between {a} and {b})"));
                }
                s.push_str(&format!(", score {:.2}; now at {place}", ev.score));
                s
            }
        };
        let mut details = read_details(read, pos, &ahead);
        details.insert("score".into(), json!(round_to(ev.score, 3)));
        details.insert("threshold".into(), json!(self.settings.score_threshold));
        details.insert("window_days".into(), json!(ev.window_days));
        details.insert("active_days".into(), json!(ev.active_days));
        details.insert("trips".into(), json!(ev.trips));
        details.insert("km_per_day".into(), json!(round_to(ev.km_per_day, 1)));
        let features: Map<String, Value> = ev
            .features
            .iter()
            .map(|f| {
                (
                    f.name.to_owned(),
                    json!({
                        "value": round_to(f.value, 3),
                        "zero_at": round_to(f.zero_at, 3),
                        "full_at": round_to(f.full_at, 3),
                        "strength": round_to(f.strength(), 3),
                        "weight": f.weight,
                    }),
                )
            })
            .collect();
        details.insert("features".into(), Value::Object(features));
        details.insert(
            "main_route".into(),
            route.map_or(
                Value::Null,
                |(a, b, n)| json!({"from": a, "to": b, "trips": n}),
            ),
        );
        details.insert(
            "since".into(),
            json!(format_rfc3339(
                self.day_start_ms(self.day_of(read.ts) - i64::from(ev.window_days) + 1)
                    .ms(),
                self.output.utc_offset
            )),
        );
        AlertDraft {
            alert_id: alert_id(
                "rh",
                &["pattern", &self.settings.plate_key.pseudonym(plate)],
                read.ts,
            ),
            kind: AlertKind::IllegalRideHailing,
            subtype: "pattern",
            // A statistical suspicion to be checked (DOMAIN.md: 320 alerts, 14 confirmed),
            // not an emergency: below the watchlist's `severe`.
            severity: Severity::Warning,
            status: AlertStatus::New,
            event_ms: read.ts,
            location: loc,
            summary,
            details,
            source_event_ids: vec![read.event_id.clone()],
            observed: None,
            intercept: ahead.intercept().map(Waypoint::to_intercept),
        }
    }
}

/// Private passenger cars: `car`/`van` with a blue (small ordinary) or green (small
/// new-energy) plate. Yellow and yellow-green plates are large or commercial vehicles,
/// white ones police/military and black ones foreign: none is a private car.
fn is_private_car(read: &PlateRead) -> bool {
    matches!(read.vehicle_class, VehicleClass::Car | VehicleClass::Van)
        && matches!(read.plate_color, PlateColor::Blue | PlateColor::Green)
}

/// The read's road position. A reader beyond the snap distance is accepted only inside a
/// service area or toll plaza polygon: those readers stand off the carriageway.
fn locate_read(roads: &RoadNetwork, read: &PlateRead) -> Option<RoadPosition> {
    roads.locate(read.lon, read.lat, read.ts).or_else(|| {
        let zone = roads.zone_at(read.lon, read.lat, read.ts)?;
        if !matches!(zone.kind(), ZoneKind::ServiceArea | ZoneKind::TollPlaza) {
            return None;
        }
        roads.locate_within(read.lon, read.lat, read.ts, ZONE_ROAD_SNAP_M)
    })
}

fn road_index(roads: &RoadNetwork, road_id: &str) -> u16 {
    roads
        .roads()
        .iter()
        .position(|r| r.road_id() == road_id)
        .and_then(|i| u16::try_from(i).ok())
        .unwrap_or(NO_ROAD)
}

fn stop_zone_of(pos: &RoadPosition) -> u16 {
    match (pos.zone, pos.zone_id) {
        (Some(ZoneKind::ServiceArea | ZoneKind::TollPlaza), Some(id)) => {
            u16::try_from(id.0.saturating_add(1)).unwrap_or(0)
        }
        _ => 0,
    }
}

/// Metres between two consecutive reads: along the carriageway when both are on the same
/// road and direction, else the straight line (a turn or a change of road).
fn leg_distance_m(roads: &RoadNetwork, a: &LastRead, b: &LastRead) -> f64 {
    if a.road != NO_ROAD && a.road == b.road && a.direction == b.direction {
        if let Some(road) = roads.roads().get(usize::from(a.road)) {
            if let Some(d) = roads.distance_along(road.road_id(), a.direction, a.stake_m, b.stake_m)
            {
                if d.is_finite() {
                    return d;
                }
            }
        }
    }
    let d = distance_m(
        [f64::from(a.lon), f64::from(a.lat)],
        [f64::from(b.lon), f64::from(b.lat)],
    );
    if d.is_finite() {
        d
    } else {
        0.0
    }
}

/// Operating day number of an instant at a UTC offset (days start at 04:00 local).
fn operating_day(ms: EventTime, offset_ms: i64) -> i64 {
    ms.ms()
        .saturating_add(offset_ms)
        .saturating_sub(DAY_START_MS)
        .div_euclid(DAY_MS)
}

/// `UtcOffset` exposes no seconds; its RFC 3339 rendering does. Computed once.
fn offset_ms(offset: UtcOffset) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&format_rfc3339(0, offset))
        .map_or(0, |t| i64::from(t.offset().local_minus_utc()) * 1000)
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    let r = (x * p).round() / p;
    if r.is_finite() {
        r
    } else {
        0.0
    }
}

/// The evidence of a plate's window ending on operating day `today` (closed trips that
/// started in it, plus the trip it is on).
fn evidence(
    st: &PlateState,
    today: i64,
    window_days: i64,
    offset_ms: i64,
    settings: &RideHailingSettings,
) -> Evidence {
    let first_day = today - window_days + 1;
    let in_window = |t: &TripRec| operating_day(t.start_ms(), offset_ms) >= first_day;
    let open = st.open.record(st.last.ms);
    let trips: Vec<TripRec> = st
        .trips
        .iter()
        .copied()
        .chain(std::iter::once(open))
        .filter(in_window)
        .collect();
    let active_days = st.active_days_between(first_day, today);
    let per_day = f64::from(active_days.max(1));

    let total_m: f64 = trips.iter().map(TripRec::distance_m).sum();
    let km_per_day = total_m / 1000.0 / per_day;

    // Trips between the same two (different, known) ends, either way round.
    // Place indices order as their keys do (Places), so ties go as they did by key.
    let mut pairs: Vec<(u16, u16)> = trips
        .iter()
        .filter(|t| t.from != NO_PLACE && t.to != NO_PLACE && t.from != t.to)
        .map(|t| (t.from.min(t.to), t.from.max(t.to)))
        .collect();
    pairs.sort_unstable();
    let mut busiest: Option<((u16, u16), u32)> = None;
    let mut i = 0;
    while i < pairs.len() {
        let run = pairs[i..].iter().take_while(|p| **p == pairs[i]).count();
        if busiest.map_or(true, |(_, n)| run as u32 > n) {
            busiest = Some((pairs[i], run as u32));
        }
        i += run;
    }
    let corridor_trips = busiest.map_or(0, |(_, n)| n);
    // Named the way its first trip in the window went (the pair itself is unordered).
    let main_pair = busiest.and_then(|((a, b), n)| {
        trips
            .iter()
            .find(|t| (t.from, t.to) == (a, b) || (t.from, t.to) == (b, a))
            .map(|t| (t.from, t.to, n))
    });

    // Quick reversals (B→A soon after A→B) and loops (out and back within one trip).
    let reversals = trips
        .windows(2)
        .filter(|w| {
            let (prev, next) = (&w[0], &w[1]);
            prev.from != NO_PLACE
                && prev.to != NO_PLACE
                && prev.from != prev.to
                && next.from == prev.to
                && next.to == prev.from
                && next.start_ms() - prev.end_ms() <= TURNAROUND_MAX_MS
        })
        .count();
    let loops = trips
        .iter()
        .filter(|t| t.from != NO_PLACE && t.from == t.to && t.distance_m() >= LOOP_MIN_M)
        .count();
    let stops: u32 = trips.iter().map(|t| u32::from(t.stops())).sum();
    let road_minutes: u32 = trips.iter().map(|t| u32::from(t.duration_min)).sum();

    let line_km = settings.daily_distance_km;
    let features = [
        Feature {
            name: "daily_km",
            value: km_per_day,
            // The study's line maps to 0.5; its suspects' mean (128.5) to ~1 and private
            // cars' (25.1) to 0.
            zero_at: 0.5 * line_km,
            full_at: 1.5 * line_km,
            weight: WEIGHT_DAILY_KM,
        },
        Feature {
            name: "corridor_trips_per_day",
            value: f64::from(corridor_trips) / per_day,
            // A commuter makes two; an operator four and more.
            zero_at: 2.0,
            full_at: 4.0,
            weight: WEIGHT_CORRIDOR_TRIPS,
        },
        Feature {
            name: "turnarounds_per_day",
            value: (reversals + loops) as f64 / per_day,
            zero_at: 0.5,
            full_at: 2.0,
            weight: WEIGHT_TURNAROUNDS,
        },
        Feature {
            name: "road_hours_per_day",
            value: f64::from(road_minutes) / 60.0 / per_day,
            zero_at: 1.0,
            full_at: 4.0,
            weight: WEIGHT_ROAD_HOURS,
        },
        Feature {
            name: "active_day_share",
            value: f64::from(active_days) / window_days as f64,
            // 3 of 7 days → 0, 6 of 7 → 1.
            zero_at: 3.0 / 7.0,
            full_at: 6.0 / 7.0,
            weight: WEIGHT_ACTIVE_SHARE,
        },
        Feature {
            name: "short_stops_per_day",
            value: f64::from(stops) / per_day,
            zero_at: 0.0,
            full_at: 2.0,
            weight: WEIGHT_SHORT_STOPS,
        },
    ];
    let score = features
        .iter()
        .map(|f| f.weight * f.strength())
        .sum::<f64>()
        .clamp(0.0, 1.0);
    Evidence {
        window_days: window_days as u32,
        active_days,
        trips: trips.len() as u32,
        km_per_day,
        main_pair,
        features,
        score,
    }
}

// ---------------------------------------------------------------------------------------
// Places: trip ends and intercept points
// ---------------------------------------------------------------------------------------

/// A stable key for a trip end: FNV-1a of kind, road and name. Paired service areas (one
/// polygon per carriageway) and OSM junction nodes mapped on each carriageway share a name,
/// so A→B and B→A meet at the same keys. Unnamed places (the loader's default name) add
/// their stake in km to stay apart.
fn place_key(kind: u8, road_id: &str, name: &str, stake_m: f64) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    eat(&[kind]);
    eat(road_id.as_bytes());
    eat(&[0]);
    eat(name.as_bytes());
    if name == "interchange" || name == "service_area" || name.is_empty() {
        eat(&[0]);
        eat(&((stake_m / 1000.0).round() as i64).to_le_bytes());
    }
    if h == NO_PLACE_KEY {
        1
    } else {
        h
    }
}

fn interchange_key(ic: &crate::roads::Interchange) -> u32 {
    place_key(b'i', &ic.road_id, &ic.name, ic.stake_m)
}

fn service_area_key(z: &Zone) -> u32 {
    let (road, stake) = z.road().map_or(("", 0.0), |r| (&*r.road_id, r.stake_m));
    place_key(b's', road, z.name(), stake)
}

/// The trip end nearest a read: the service area it is in, else the nearest interchange or
/// service area on its road by stake (interchange on a tie).
fn place_of(roads: &RoadNetwork, pos: &RoadPosition) -> u32 {
    if pos.zone == Some(ZoneKind::ServiceArea) {
        if let Some(z) = pos.zone_id.and_then(|id| roads.zone(id)) {
            return service_area_key(z);
        }
    }
    let mut best: Option<(f64, u8, u32)> = None;
    let mut consider = |stake: f64, rank: u8, key: u32| {
        let d = (stake - pos.stake_m).abs();
        if best.map_or(true, |(bd, br, _)| (d, rank) < (bd, br)) {
            best = Some((d, rank, key));
        }
    };
    for ahead in [true, false] {
        if let Some(ic) = roads.next_interchange(&pos.road_id, pos.direction, pos.stake_m, ahead) {
            consider(ic.stake_m, 0, interchange_key(ic));
        }
        if let Some(z) = roads.next_service_area(&pos.road_id, pos.direction, pos.stake_m, ahead) {
            if let Some(r) = z.road() {
                consider(r.stake_m, 1, service_area_key(z));
            }
        }
    }
    best.map_or(NO_PLACE_KEY, |(_, _, key)| key)
}

/// The network's trip-end places (interchanges and service areas) by key, so that a
/// plate's state holds a 2-byte index instead of the 4-byte key. Index `i + 1` is the
/// `i`-th smallest key: comparing indices compares keys, and paired places that share
/// a key share an index.
#[derive(Debug)]
struct Places {
    keys: Vec<u32>,
}

impl Places {
    fn of(roads: &RoadNetwork) -> Places {
        let mut keys: Vec<u32> = roads
            .interchanges()
            .iter()
            .map(interchange_key)
            .chain(
                roads
                    .zones()
                    .iter()
                    .filter(|z| z.kind() == ZoneKind::ServiceArea)
                    .map(service_area_key),
            )
            .collect();
        keys.sort_unstable();
        keys.dedup();
        // Beyond 65,534 places the rest are unknown (NO_PLACE), as roads beyond u16 are.
        keys.truncate(usize::from(u16::MAX - 1));
        Places { keys }
    }

    fn index(&self, key: u32) -> u16 {
        match self.keys.binary_search(&key) {
            Ok(i) => (i + 1) as u16,
            Err(_) => NO_PLACE,
        }
    }

    fn key(&self, place: u16) -> Option<u32> {
        let i = usize::from(place).checked_sub(1)?;
        self.keys.get(i).copied()
    }
}

/// A place's name from its key (a scan of the network: only when an alert is built).
fn place_name(roads: &RoadNetwork, key: u32) -> Option<String> {
    if let Some(ic) = roads
        .interchanges()
        .iter()
        .find(|ic| interchange_key(ic) == key)
    {
        return Some(ic.name.to_string());
    }
    roads
        .zones()
        .iter()
        .filter(|z| z.kind() == ZoneKind::ServiceArea)
        .find(|z| service_area_key(z) == key)
        .map(|z| z.name().to_owned())
}

/// An interchange or service area where a unit can meet the vehicle.
#[derive(Debug, Clone, PartialEq)]
struct Waypoint {
    kind: &'static str,
    name: String,
    road_id: String,
    direction: Direction,
    stake_m: f64,
    distance_m: f64,
    /// The vehicle is inside this service area now.
    here: bool,
}

impl Waypoint {
    /// For the dispatcher, in the whole metres `to_json` publishes.
    fn to_intercept(&self) -> Intercept {
        Intercept {
            road_id: Arc::from(self.road_id.as_str()),
            direction: self.direction,
            stake_m: self.stake_m.round(),
            distance_m: self.distance_m.round(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "kind": self.kind,
            "name": self.name,
            "road_id": self.road_id,
            "direction": self.direction.as_str(),
            "stake": stake_text(self.stake_m),
            "stake_m": self.stake_m.round() as i64,
            "distance_m": self.distance_m.round() as i64,
        })
    }
}

/// What lies ahead of a vehicle in its direction of travel.
#[derive(Debug, Clone, Default, PartialEq)]
struct Ahead {
    here: Option<Waypoint>,
    interchange: Option<Waypoint>,
    service_area: Option<Waypoint>,
}

impl Ahead {
    fn find(roads: &RoadNetwork, pos: &RoadPosition) -> Ahead {
        let road_id = &*pos.road_id;
        let dir = pos.direction;
        let distance = |stake: f64| {
            roads
                .distance_along(road_id, dir, pos.stake_m, stake)
                .filter(|d| d.is_finite())
                .unwrap_or((stake - pos.stake_m).abs())
        };
        let waypoint = |kind, name: &str, stake: f64, here| Waypoint {
            kind,
            name: name.to_owned(),
            road_id: road_id.to_owned(),
            direction: dir,
            stake_m: stake,
            distance_m: if here { 0.0 } else { distance(stake) },
            here,
        };
        let current = match (pos.zone, pos.zone_id) {
            (Some(ZoneKind::ServiceArea), Some(id)) => roads.zone(id),
            _ => None,
        };
        let here = current.map(|z| {
            let stake = z.road().map_or(pos.stake_m, |r| r.stake_m);
            waypoint("service_area", z.name(), stake, true)
        });
        // Points closer than MIN_AHEAD_M are passed before anyone can act: step past them
        // (and past the service area the vehicle is in, and its twin on the other
        // carriageway, which has the same name) and look again.
        let step = if dir.ahead_is_increasing() { 1.0 } else { -1.0 };
        let mut from = pos.stake_m;
        let mut interchange = None;
        for _ in 0..8 {
            let Some(ic) = roads.next_interchange(road_id, dir, from, true) else {
                break;
            };
            if distance(ic.stake_m) >= MIN_AHEAD_M {
                interchange = Some(waypoint("interchange", &ic.name, ic.stake_m, false));
                break;
            }
            from = ic.stake_m + step;
        }
        let mut from = pos.stake_m;
        let mut service_area = None;
        for _ in 0..8 {
            let Some(z) = roads.next_service_area(road_id, dir, from, true) else {
                break;
            };
            let Some(stake) = z.road().map(|r| r.stake_m) else {
                break;
            };
            let same = current.is_some_and(|c| c.id() == z.id() || c.name() == z.name());
            if !same && distance(stake) >= MIN_AHEAD_M {
                service_area = Some(waypoint("service_area", z.name(), stake, false));
                break;
            }
            from = stake + step;
        }
        Ahead {
            here,
            interchange,
            service_area,
        }
    }

    /// Where to intercept: the service area the vehicle is in, else whichever of the next
    /// interchange and service area comes first (it may leave at that exit); a service
    /// area on a tie, as it is the safer place to stop a car.
    fn intercept(&self) -> Option<&Waypoint> {
        if let Some(h) = &self.here {
            return Some(h);
        }
        match (&self.interchange, &self.service_area) {
            (Some(i), Some(s)) => Some(if s.distance_m <= i.distance_m { s } else { i }),
            (i, s) => s.as_ref().or(i.as_ref()),
        }
    }
}

/// Details both subtypes share: the read, where it is, and where to intercept.
fn read_details(read: &PlateRead, pos: Option<&RoadPosition>, ahead: &Ahead) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("plate".into(), json!(read.plate));
    d.insert("reader_id".into(), json!(read.reader_id));
    d.insert("plate_color".into(), json!(read.plate_color.as_str()));
    d.insert("vehicle_class".into(), json!(read.vehicle_class.as_str()));
    if let Some(c) = read.confidence {
        d.insert("confidence".into(), json!(c));
    }
    d.insert(
        "position".into(),
        pos.map_or(Value::Null, |p| {
            json!({
                "road_id": &*p.road_id,
                "road_name": &*p.name,
                "direction": p.direction.as_str(),
                "stake": p.stake.to_string(),
                "stake_m": p.stake_m.round() as i64,
                "zone": p.zone.map(|z| z.as_str()),
            })
        }),
    );
    d.insert(
        "direction".into(),
        pos.map_or(Value::Null, |p| json!(p.direction.as_str())),
    );
    let wp = |w: &Option<Waypoint>| w.as_ref().map_or(Value::Null, Waypoint::to_json);
    d.insert("next_interchange".into(), wp(&ahead.interchange));
    d.insert("next_service_area".into(), wp(&ahead.service_area));
    d.insert(
        "intercept".into(),
        ahead.intercept().map_or(Value::Null, Waypoint::to_json),
    );
    d
}

#[cfg(test)]
#[path = "ride_hailing_tests.rs"]
mod tests;
