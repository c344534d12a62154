//! The simulated expressway (issue 8): a deterministic generator of the five input
//! streams, with ground truth, for `roadwatch simulate`, `roadwatch demo` and benches.
//! docs/SIMULATOR.md describes the model and how the truth is defined.
//!
//! Pure: no I/O, no clock, no threads, no tokio. Event time starts from
//! [`SimConfig::start_ms`]; the same seed, configuration and road network give
//! byte-identical records and truth.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use roadwatch_core::roads::{LoadOptions, RoadNetwork};
//! use roadwatch_sim::{SimConfig, Simulator, write_replay_lines};
//! # let bytes = std::fs::read("config/roads/bijie.geojson").unwrap();
//! let roads = Arc::new(RoadNetwork::from_geojson(&bytes, &LoadOptions::default()).unwrap());
//! let mut sim = Simulator::new(SimConfig { seed: 7, ..SimConfig::default() }, roads);
//! let mut batch = Vec::new();
//! let mut out = std::io::stdout().lock();
//! while sim.next_batch(&mut batch) {
//!     write_replay_lines(&batch, &mut out).unwrap();
//!     batch.clear();
//!     // In the demo: feed the batch to the engine, then `sim.on_alert(&alert)` for
//!     // every alert it produced, so the simulated patrol apps answer dispatches.
//! }
//! let truth = sim.truth();
//! # let _ = truth;
//! ```
//!
//! Map of the module:
//! - `config.rs` — [`SimConfig`], the knobs and their defaults.
//! - `network.rs` — devices placed on the road network (ANPR gantries every 5–10 km,
//!   service-area readers, cameras on open road and in tunnels), trip ends and routes.
//! - `traffic.rs` — vehicles (commuters, tourists, trucks, buses, licensed and illegal
//!   operators, suspects) and their trips → plate reads.
//! - `people.rs` — pedestrians and cyclists on the carriageway (incidents), people where
//!   they may be, passing vehicles and detection noise → camera events.
//! - `weather.rs` — stations, fog/ice/wind/rain episodes, drop-outs → observations.
//! - `patrol.rs` — patrol units, their positions, and their answers to dispatches.
//! - `render.rs` — device JSON and the deliberately broken copies for the DLQ.
//! - `truth.rs` — [`GroundTruth`]; `ndjson.rs` — replay-format and truth writers.
//! - `plates.rs`, `rng.rs` — valid plates; the seeded generator.
mod config;
mod ndjson;
mod network;
mod one_job;
mod patrol;
mod people;
mod plates;
mod render;
mod rng;
mod traffic;
mod truth;
mod weather;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

pub use config::{SimConfig, DAY_MS};
pub use ndjson::{write_replay_line, write_replay_lines, write_truth};
pub use one_job::OneJobAtATime;
pub use truth::*;

use network::{CameraSite, SimNetwork};
use patrol::{AckOut, Patrol, PatrolFix};
use people::{CamEvent, People, PeopleActivity};
use render::{Corrupt, Renderer};
use rng::Rng;
use roadwatch_core::model::{Alert, RejectReason, Stream, UtcOffset};
use roadwatch_core::roads::RoadNetwork;
use traffic::{day_start_ms, local_day, Traffic, TripPlan, VehicleKind};
use weather::{Observation, Weather};

const TAG_NOISE: u64 = 0x004E_4F49;
const TAG_DELIVERY: u64 = 0x0044_4C56;
const TAG_TRIP: u64 = 0x0054_5250;
const TAG_ACTIVITY: u64 = 0x0041_4354;
/// The warm-up has only plate reads: bigger batches cost nothing.
const WARMUP_BATCH_MS: i64 = 600_000;
/// Late records arrive at most this much after their time (the engine accepts 30 s).
const MAX_LATENESS_MS: i64 = 25_000;

/// One generated record: what a device put on a Kafka topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRecord {
    pub stream: Stream,
    /// Event time of the record (epoch ms), also for broken copies.
    pub ts: i64,
    /// The Kafka key (CONTRACT section 1): camera_id, plate, station_id, unit_id.
    pub key: String,
    /// The value bytes exactly as the device sent them.
    pub value: Vec<u8>,
    /// `Some` for a deliberately broken record: the reason the decoder must refuse it
    /// with. `None` records decode.
    pub expect_reject: Option<RejectReason>,
}

/// What is still to be rendered.
#[derive(Debug)]
enum Item {
    Camera(CamEvent),
    Plate {
        reader: usize,
        vehicle: Arc<traffic::Vehicle>,
        /// The plate read when the reader got it wrong.
        misread: Option<String>,
        confidence: f64,
    },
    // Boxed: the observation is the largest item and heap moves are the hot path.
    Weather(Box<Observation>),
    Patrol(PatrolFix),
    Ack(AckOut),
}

/// Who produced a pending record: ties in delivery time are broken by it, so the order
/// is total and the same however the run is cut into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Trip(u64),
    Activity(u64),
    Camera(usize),
    Station(usize),
    Unit(usize),
    Ack(u64),
}

/// A record waiting in time order. `key` is when it is delivered: its `ts`, or later
/// for a late record; then `ts`, the source and the source's own count order the rest.
#[derive(Debug)]
struct Pending {
    key: i64,
    ts: i64,
    source: Source,
    n: u64,
    item: Item,
}

impl Pending {
    fn order(&self) -> (i64, i64, Source, u64) {
        (self.key, self.ts, self.source, self.n)
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.order().cmp(&self.order())
    }
}

/// The simulator. See the module documentation.
pub struct Simulator {
    cfg: SimConfig,
    roads: Arc<RoadNetwork>,
    sim: SimNetwork,
    traffic: Traffic,
    people: People,
    weather: Weather,
    patrol: Patrol,
    truth: GroundTruth,
    heap: BinaryHeap<Pending>,
    /// Start of the next batch: everything before it has been emitted.
    now: i64,
    end: i64,
    next_day: i64,
    trips: Vec<TripPlan>,
    trip_cursor: usize,
    next_trip_id: u64,
    acts: Vec<(u64, PeopleActivity)>,
    act_cursor: usize,
    next_act_id: u64,
    /// Lateness of routine camera events and patrol fixes, per device.
    camera_delivery: Vec<Rng>,
    unit_delivery: Vec<Rng>,
    /// Counts of routine records per device, per station, per unit; acks.
    camera_n: Vec<u64>,
    station_n: Vec<u64>,
    unit_n: Vec<u64>,
    ack_n: u64,
    /// Breakage of records, drawn in delivery order.
    noise: Rng,
    renderer: Renderer,
    /// `event_id` counters per camera, reader and station, in delivery order.
    camera_seq: Vec<u64>,
    reader_seq: Vec<u64>,
    station_seq: Vec<u64>,
    passes: Vec<(i64, usize)>,
    cam_events: Vec<CamEvent>,
    wx_reports: Vec<(i64, Observation)>,
    fixes: Vec<(i64, PatrolFix)>,
    done: bool,
}

impl Simulator {
    /// A simulator over `roads`. Panics on an invalid configuration; call
    /// [`SimConfig::problems`] (or [`Simulator::try_new`]) first to report it nicely.
    pub fn new(cfg: SimConfig, roads: Arc<RoadNetwork>) -> Simulator {
        match Simulator::try_new(cfg, roads) {
            Ok(sim) => sim,
            Err(problems) => panic!("invalid simulator configuration: {}", problems.join("; ")),
        }
    }

    /// Like [`Simulator::new`], with every configuration problem returned at once.
    pub fn try_new(cfg: SimConfig, roads: Arc<RoadNetwork>) -> Result<Simulator, Vec<String>> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(problems);
        }
        let offset = UtcOffset::from_seconds(cfg.utc_offset_s)
            .ok_or_else(|| vec!["utc_offset_s is not a valid offset".to_owned()])?;
        let sim_start = cfg.start_ms - cfg.warmup_ms;
        let mut truth = GroundTruth {
            seed: cfg.seed,
            start_ms: cfg.start_ms,
            end_ms: cfg.end_ms(),
            warmup_start_ms: sim_start,
            ..GroundTruth::default()
        };
        let sim = SimNetwork::build(&roads, &cfg);
        truth.devices = Devices {
            cameras: sim.cameras.len(),
            tunnel_cameras: sim
                .cameras
                .iter()
                .filter(|c| c.site == CameraSite::Tunnel)
                .count(),
            anpr_gantries: sim
                .readers
                .iter()
                .filter(|r| r.service_area.is_none())
                .count(),
            service_area_readers: sim
                .readers
                .iter()
                .filter(|r| r.service_area.is_some())
                .count(),
            weather_stations: roads.stations().len(),
            trip_ends: sim.nodes.len(),
        };
        let traffic = Traffic::new(&sim, &cfg, &mut truth);
        let people = People::new(&sim, &cfg);
        let weather = Weather::new(&roads, &cfg, &mut truth);
        let patrol = Patrol::new(&roads, &sim, &cfg, &mut truth);
        let units = truth.patrol_units.len();
        Ok(Simulator {
            camera_delivery: (0..sim.cameras.len())
                .map(|c| Rng::derive(cfg.seed, TAG_DELIVERY, c as u64))
                .collect(),
            unit_delivery: (0..units)
                .map(|u| Rng::derive(cfg.seed, TAG_DELIVERY, 1_000_000 + u as u64))
                .collect(),
            camera_n: vec![0; sim.cameras.len()],
            station_n: vec![0; roads.stations().len()],
            unit_n: vec![0; units],
            ack_n: 0,
            next_trip_id: 0,
            next_act_id: 0,
            camera_seq: vec![0; sim.cameras.len()],
            reader_seq: vec![0; sim.readers.len()],
            station_seq: vec![0; roads.stations().len()],
            noise: Rng::derive(cfg.seed, TAG_NOISE, 0),
            renderer: Renderer::new(offset),
            now: sim_start,
            end: cfg.end_ms(),
            next_day: local_day(sim_start, cfg.utc_offset_s),
            cfg,
            roads,
            sim,
            traffic,
            people,
            weather,
            patrol,
            truth,
            heap: BinaryHeap::new(),
            trips: Vec::new(),
            trip_cursor: 0,
            acts: Vec::new(),
            act_cursor: 0,
            passes: Vec::new(),
            cam_events: Vec::new(),
            wx_reports: Vec::new(),
            fixes: Vec::new(),
            done: false,
        })
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The ground truth so far; complete once [`Simulator::next_batch`] returned false.
    pub fn truth(&self) -> &GroundTruth {
        &self.truth
    }

    pub fn into_truth(self) -> GroundTruth {
        self.truth
    }

    /// Event time up to which records have been emitted.
    pub fn now_ms(&self) -> i64 {
        self.now
    }

    /// Event time just past the last record.
    pub fn end_ms(&self) -> i64 {
        self.end
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Appends the next batch of records (the next `batch_ms` of event time; ten
    /// minutes at a time during the warm-up) to `out`, in delivery order: `ts`
    /// non-decreasing except for deliberately late records, which are never more than
    /// 25 s behind the latest `ts` before them. Returns false, appending nothing, once
    /// the run is over. A batch may be empty.
    pub fn next_batch(&mut self, out: &mut Vec<SimRecord>) -> bool {
        if self.done {
            return false;
        }
        let start = self.cfg.start_ms;
        let t0 = self.now;
        let step = if t0 < start {
            WARMUP_BATCH_MS.max(self.cfg.batch_ms)
        } else {
            self.cfg.batch_ms
        };
        let mut t1 = t0.saturating_add(step).min(self.end);
        if t0 < start && t1 > start {
            t1 = start;
        }
        self.plan_until(t1);
        self.expand_trips(t1);
        if t1 > start {
            self.expand_people(t1);
            self.routine(t0.max(start), t1);
        }
        let last = t1 >= self.end;
        self.emit(t1, last, out);
        self.now = t1;
        self.done = last;
        true
    }

    /// Generates the whole run at once (for tests and small runs without an engine).
    pub fn run_to_end(&mut self) -> Vec<SimRecord> {
        let mut out = Vec::new();
        while self.next_batch(&mut out) {}
        out
    }

    /// An alert the engine produced. When it dispatches one of the simulated patrol
    /// units, that unit's app answers (accepts, declines or stays silent) with a
    /// realistic delay, and an accepting unit drives there, reports `arrived` and later
    /// `resolved`. The acks come out in later batches. Without an engine nobody calls
    /// this and the run has no acks.
    pub fn on_alert(&mut self, alert: &Alert) {
        if self.done {
            return;
        }
        let alert_ms = alert.event_ts.ms.ms();
        let acks = self.patrol.on_alert(
            &self.roads,
            &self.sim,
            alert,
            alert_ms,
            self.now,
            &mut self.truth,
        );
        for ack in acks {
            if ack.ts < self.end {
                self.ack_n += 1;
                let source = Source::Ack(self.ack_n);
                self.push(ack.ts, ack.ts, source, 0, Item::Ack(ack));
            }
        }
    }

    fn push(&mut self, key: i64, ts: i64, source: Source, n: u64, item: Item) {
        if key > ts && ts < self.end {
            self.truth.late_records += 1;
        }
        self.heap.push(Pending {
            key,
            ts,
            source,
            n,
            item,
        });
    }

    /// When a record of time `ts` is delivered: usually at once, sometimes late.
    fn delivery(rng: &mut Rng, late_rate: f64, ts: i64) -> i64 {
        if rng.chance(late_rate) {
            ts + rng.int(1_000, MAX_LATENESS_MS)
        } else {
            ts
        }
    }

    /// Plans every local day that begins before `t1`.
    fn plan_until(&mut self, t1: i64) {
        let off = self.cfg.utc_offset_s;
        while day_start_ms(self.next_day, off) < t1 {
            let day = self.next_day;
            self.next_day += 1;
            let d1 = day_start_ms(day + 1, off);
            let start = self.cfg.start_ms;
            let sim_start = self.cfg.start_ms - self.cfg.warmup_ms;

            self.trips.drain(..self.trip_cursor);
            self.trip_cursor = 0;
            let first = self.trips.len();
            let one_off = d1 > start;
            self.traffic.plan_day(
                &self.sim,
                &self.cfg,
                day,
                one_off,
                sim_start,
                self.end,
                &mut self.truth,
                &mut self.trips,
            );
            // One-off traffic only from the scored start: the warm-up is history.
            let mut kept = first;
            for i in first..self.trips.len() {
                let v = &self.trips[i].vehicle;
                let one_off_kind = matches!(v.kind, VehicleKind::Tourist | VehicleKind::Truck);
                if !(one_off_kind && self.trips[i].start_ms < start) {
                    self.trips.swap(kept, i);
                    kept += 1;
                }
            }
            self.trips.truncate(kept);
            for trip in &mut self.trips[first..] {
                trip.id = self.next_trip_id;
                self.next_trip_id += 1;
            }
            // Stable: equal start times keep their planning order.
            self.trips.sort_by_key(|t| t.start_ms);

            if one_off {
                self.acts.drain(..self.act_cursor);
                self.act_cursor = 0;
                let mut acts = Vec::new();
                self.people.plan_day(
                    &self.roads,
                    &self.sim,
                    &self.cfg,
                    day,
                    start,
                    self.end,
                    &mut acts,
                );
                for act in acts {
                    self.acts.push((self.next_act_id, act));
                    self.next_act_id += 1;
                }
                self.acts.sort_by_key(|a| a.1.start_ms());
                self.weather
                    .plan_day(&self.cfg, day, start, self.end, &mut self.truth);
            }
        }
    }

    fn expand_trips(&mut self, t1: i64) {
        while self.trip_cursor < self.trips.len() && self.trips[self.trip_cursor].start_ms < t1 {
            let trip = self.trips[self.trip_cursor].clone();
            self.trip_cursor += 1;
            // Everything about one trip comes from its own generator.
            let mut rng = Rng::derive(self.cfg.seed, TAG_TRIP, trip.id);
            let mut passes = std::mem::take(&mut self.passes);
            self.traffic.expand(&self.sim, &trip, &mut rng, &mut passes);
            for (n, &(ts, reader)) in passes.iter().enumerate() {
                if ts >= self.end {
                    break;
                }
                if rng.chance(self.cfg.missed_read_rate) {
                    self.truth.plate_reads_missed += 1;
                    continue;
                }
                let misread = if rng.chance(self.cfg.misread_rate) {
                    self.truth.plate_misreads += 1;
                    Some(plates::misread(&mut rng, &trip.vehicle.plate))
                } else {
                    None
                };
                let confidence = if misread.is_some() {
                    rng.range(0.6, 0.85)
                } else {
                    rng.range(0.85, 0.99)
                };
                let key = Self::delivery(&mut rng, self.cfg.late_rate, ts);
                let item = Item::Plate {
                    reader,
                    vehicle: trip.vehicle.clone(),
                    misread,
                    confidence,
                };
                self.push(key, ts, Source::Trip(trip.id), n as u64, item);
            }
            self.passes = passes;
        }
    }

    fn expand_people(&mut self, t1: i64) {
        let mut events = std::mem::take(&mut self.cam_events);
        while self.act_cursor < self.acts.len() && self.acts[self.act_cursor].1.start_ms() < t1 {
            let (id, act) = self.acts[self.act_cursor].clone();
            self.act_cursor += 1;
            let mut rng = Rng::derive(self.cfg.seed, TAG_ACTIVITY, id);
            let mut delivery = Rng::derive(self.cfg.seed, TAG_DELIVERY, 2_000_000 + id);
            // Track ids of activities live apart from the cameras' routine counters.
            let track_base = 1_000_000 + id * 8;
            events.clear();
            let incidents_before = self.truth.pedestrian_incidents.len();
            self.people.expand(
                &self.roads,
                &self.sim,
                &act,
                &mut rng,
                track_base,
                self.end,
                &mut self.truth,
                &mut events,
            );
            // Fog on the stretch makes an incident critical (DOMAIN.md): ±5 km.
            for inc in &mut self.truth.pedestrian_incidents[incidents_before..] {
                let at = inc.first_detection_ms.unwrap_or(inc.start_ms);
                inc.fog_level =
                    self.weather
                        .true_fog_level(&inc.road_id, inc.stake_start_m, 5_000.0, at);
                if inc.fog_level >= 2 {
                    inc.expected_severity = "critical";
                }
            }
            for (n, ev) in events.drain(..).enumerate() {
                let ts = ev.ts;
                let key = Self::delivery(&mut delivery, self.cfg.late_rate, ts);
                self.push(key, ts, Source::Activity(id), n as u64, Item::Camera(ev));
            }
        }
        self.cam_events = events;
    }

    /// The periodic devices: routine camera events, weather reports, patrol positions.
    fn routine(&mut self, t0: i64, t1: i64) {
        let mut events = std::mem::take(&mut self.cam_events);
        events.clear();
        self.people.routine(
            &self.roads,
            &self.sim,
            &self.cfg,
            t0,
            t1,
            &mut self.truth,
            &mut events,
        );
        for ev in events.drain(..) {
            let (ts, c) = (ev.ts, ev.camera);
            let key = Self::delivery(&mut self.camera_delivery[c], self.cfg.late_rate, ts);
            self.camera_n[c] += 1;
            let n = self.camera_n[c];
            self.push(key, ts, Source::Camera(c), n, Item::Camera(ev));
        }
        self.cam_events = events;

        let mut reports = std::mem::take(&mut self.wx_reports);
        reports.clear();
        self.weather.reports(t0, t1, &mut reports);
        self.truth.weather_noise_readings = self.weather.spikes;
        for (ts, obs) in reports.drain(..) {
            let i = obs.station;
            self.station_n[i] += 1;
            let n = self.station_n[i];
            self.push(ts, ts, Source::Station(i), n, Item::Weather(Box::new(obs)));
        }
        self.wx_reports = reports;

        let mut fixes = std::mem::take(&mut self.fixes);
        fixes.clear();
        self.patrol
            .reports(&self.roads, &self.sim, t0, t1, &mut fixes);
        for (ts, fix) in fixes.drain(..) {
            let u = fix.unit;
            let key = Self::delivery(&mut self.unit_delivery[u], self.cfg.late_rate, ts);
            self.unit_n[u] += 1;
            let n = self.unit_n[u];
            self.push(key, ts, Source::Unit(u), n, Item::Patrol(fix));
        }
        self.fixes = fixes;
    }

    /// Renders every pending record delivered before `t1` (all of them at the end).
    fn emit(&mut self, t1: i64, last: bool, out: &mut Vec<SimRecord>) {
        while let Some(top) = self.heap.peek() {
            if !last && top.key >= t1 {
                break;
            }
            let Some(p) = self.heap.pop() else { break };
            if p.ts >= self.end {
                continue;
            }
            self.render(p, out);
        }
    }

    fn corruption(&mut self, stream: Stream, has_coords: bool, plate: Option<&str>) -> Corrupt {
        let mut options = vec![Corrupt::Truncate, Corrupt::BadId, Corrupt::NoTs];
        if has_coords {
            options.push(Corrupt::BadLat);
        }
        if stream == Stream::Plate {
            if let Some(p) = plate {
                // A broken plate is the commonest fault of an ANPR reader.
                let bad = plates::invalid_plate(&mut self.noise, p);
                options.push(Corrupt::BadPlate(bad.clone()));
                options.push(Corrupt::BadPlate(bad));
            }
        }
        let k = self.noise.index(options.len());
        options.swap_remove(k)
    }

    fn record(
        &mut self,
        stream: Stream,
        ts: i64,
        key: String,
        value: Vec<u8>,
        c: &Corrupt,
        out: &mut Vec<SimRecord>,
    ) {
        let reason = c.reason();
        if let Some(r) = reason {
            *self
                .truth
                .expected_dlq
                .entry(r.as_str().to_owned())
                .or_default() += 1;
        }
        *self
            .truth
            .records_by_stream
            .entry(stream.as_str().to_owned())
            .or_default() += 1;
        out.push(SimRecord {
            stream,
            ts,
            key,
            value,
            expect_reject: reason,
        });
    }

    fn render(&mut self, p: Pending, out: &mut Vec<SimRecord>) {
        let dirty = self.noise.chance(self.cfg.dirty_rate);
        let cut_at = self.noise.range(0.2, 0.9);
        let ts = p.ts;
        match p.item {
            Item::Camera(ev) => {
                self.camera_seq[ev.camera] += 1;
                let seq = self.camera_seq[ev.camera];
                let cam = &self.sim.cameras[ev.camera];
                let (id, epoch) = (cam.id.clone(), cam.epoch_ts);
                let value =
                    self.renderer
                        .camera(&id, seq, ts, epoch, &ev.dets, &Corrupt::None, cut_at);
                self.record(Stream::Camera, ts, id.clone(), value, &Corrupt::None, out);
                if dirty {
                    let c = self.corruption(Stream::Camera, !ev.dets.is_empty(), None);
                    let value = self
                        .renderer
                        .camera(&id, seq, ts, epoch, &ev.dets, &c, cut_at);
                    self.record(Stream::Camera, ts, id, value, &c, out);
                }
            }
            Item::Plate {
                reader,
                vehicle,
                misread,
                confidence,
            } => {
                self.reader_seq[reader] += 1;
                let seq = self.reader_seq[reader];
                let v = &vehicle;
                let (color, class) = (v.color, v.class);
                let plate = misread.unwrap_or_else(|| {
                    // Only true reads count as sightings of the vehicle.
                    if let Some(i) = v.operator {
                        let list = if v.kind == VehicleKind::IllegalOperator {
                            &mut self.truth.illegal_operators
                        } else {
                            &mut self.truth.licensed_operators
                        };
                        list[i].reads += 1;
                        list[i].first_seen_ms.get_or_insert(ts);
                    }
                    if let Some(i) = v.watch {
                        self.truth.watchlist[i].reads += 1;
                        self.truth.watchlist[i].first_seen_ms.get_or_insert(ts);
                    }
                    v.plate.clone()
                });
                let r = &self.sim.readers[reader];
                let (id, lon, lat) = (r.id.clone(), r.lon, r.lat);
                let value = self.renderer.plate(
                    &id,
                    seq,
                    ts,
                    &plate,
                    color,
                    class,
                    lon,
                    lat,
                    confidence,
                    &Corrupt::None,
                    cut_at,
                );
                self.record(Stream::Plate, ts, plate.clone(), value, &Corrupt::None, out);
                if dirty {
                    let c = self.corruption(Stream::Plate, true, Some(&plate));
                    let value = self.renderer.plate(
                        &id, seq, ts, &plate, color, class, lon, lat, confidence, &c, cut_at,
                    );
                    // The gateway keys a record by the plate it carries, broken or not.
                    let key = match &c {
                        Corrupt::BadPlate(bad) => bad.clone(),
                        _ => plate,
                    };
                    self.record(Stream::Plate, ts, key, value, &c, out);
                }
            }
            Item::Weather(obs) => {
                let i = obs.station;
                self.station_seq[i] += 1;
                let seq = self.station_seq[i];
                let id = self.weather.station_id(i).to_owned();
                let (lon, lat) = self.weather.station_position(i);
                let epoch = self.weather.epoch_ts(i);
                let value = self.renderer.weather(
                    &id,
                    seq,
                    ts,
                    epoch,
                    lon,
                    lat,
                    &obs,
                    &Corrupt::None,
                    cut_at,
                );
                self.record(Stream::Weather, ts, id.clone(), value, &Corrupt::None, out);
                if dirty {
                    let c = self.corruption(Stream::Weather, true, None);
                    let value = self
                        .renderer
                        .weather(&id, seq, ts, epoch, lon, lat, &obs, &c, cut_at);
                    self.record(Stream::Weather, ts, id, value, &c, out);
                }
            }
            Item::Patrol(fix) => {
                let id = self.patrol.unit_id(fix.unit).to_owned();
                let value = self.renderer.patrol(&id, ts, &fix, &Corrupt::None, cut_at);
                self.record(Stream::Patrol, ts, id.clone(), value, &Corrupt::None, out);
                if dirty {
                    let c = self.corruption(Stream::Patrol, true, None);
                    let value = self.renderer.patrol(&id, ts, &fix, &c, cut_at);
                    self.record(Stream::Patrol, ts, id, value, &c, out);
                }
            }
            Item::Ack(ack) => {
                let id = self.patrol.unit_id(ack.unit).to_owned();
                let value = self.renderer.ack(&id, &ack, &Corrupt::None, cut_at);
                self.record(Stream::Ack, ts, id, value, &Corrupt::None, out);
            }
        }
    }
}

// The demo may run the simulator on its own thread.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Simulator>();
};

#[cfg(test)]
mod tests;
