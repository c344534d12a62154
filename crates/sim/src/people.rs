//! What the cameras see: people and non-motor vehicles on the carriageway (the
//! incidents), people where they are allowed (service areas, work-zone crews, beside
//! the road), passing vehicles, and the noise of real video analytics.
//!
//! An incident is a person walking (or cycling) along the shoulder of a carriageway.
//! Every camera whose view covers their position reports them every ~2 s while they are
//! there, with confidence drawn around a per-incident level (lower at night, much lower
//! for the "hard" ones) and a frame missed now and then. The truth records which of
//! those detections qualify under DOMAIN.md, using the same road geometry the engine
//! uses, and when the confirmation rule is first met.
use super::network::{CameraSite, Frame, SimNetwork};
use super::rng::Rng;
use super::traffic::day_start_ms;
use super::truth::{GroundTruth, PedestrianIncident, WorkZoneCrew};
use super::SimConfig;
use roadwatch_core::model::DetectionClass;
use roadwatch_core::model::EventTime;
use roadwatch_core::roads::{distance_m, Direction, RoadNetwork, ZoneKind};

const TAG_PEOPLE: u64 = 0x0050_454F;
const TAG_ROUTINE: u64 = 0x0052_4F55;

/// DOMAIN.md defaults, for the truth only.
const MIN_CONFIDENCE: f64 = 0.5;
const SINGLE_CONFIRM: f64 = 0.85;
const CONFIRM_WINDOW_MS: i64 = 10_000;
const CONFIRM_DISTANCE_M: f64 = 100.0;

/// Relative traffic by local hour, for the vehicles in routine frames.
const TRAFFIC_BY_HOUR: [f64; 24] = [
    0.3, 0.2, 0.15, 0.15, 0.2, 0.4, 0.8, 1.3, 1.5, 1.3, 1.2, 1.2, 1.1, 1.1, 1.2, 1.3, 1.5, 1.6,
    1.3, 1.0, 0.8, 0.6, 0.5, 0.4,
];

/// A detection class as sent: one of the contract's, or a vendor class it lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Known(DetectionClass),
    Unknown(&'static str),
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Known(c) => c.as_str(),
            Class::Unknown(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Det {
    pub class: Class,
    pub confidence: f64,
    pub lon: f64,
    pub lat: f64,
    pub track: Option<u64>,
}

/// One camera event before rendering.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CamEvent {
    pub ts: i64,
    pub camera: usize,
    pub dets: Vec<Det>,
}

#[derive(Debug, Clone)]
pub(crate) enum PeopleActivity {
    Incident {
        start_ms: i64,
        camera: usize,
        class: DetectionClass,
        hard: bool,
    },
    ServiceArea {
        start_ms: i64,
        camera: usize,
    },
    Roadside {
        start_ms: i64,
        camera: usize,
    },
    WorkCrew {
        start_ms: i64,
        end_ms: i64,
        camera: usize,
        workers: u32,
    },
}

impl PeopleActivity {
    pub fn start_ms(&self) -> i64 {
        match self {
            PeopleActivity::Incident { start_ms, .. }
            | PeopleActivity::ServiceArea { start_ms, .. }
            | PeopleActivity::Roadside { start_ms, .. }
            | PeopleActivity::WorkCrew { start_ms, .. } => *start_ms,
        }
    }
}

pub(crate) struct People {
    /// Next routine event per camera.
    next_routine: Vec<i64>,
    /// Next track id per camera (routine events; activities bring their own).
    next_track: Vec<u32>,
    /// One generator per camera for routine events.
    routine_rng: Vec<Rng>,
    utc_offset_s: i32,
}

impl People {
    pub fn new(sim: &SimNetwork, cfg: &SimConfig) -> People {
        let period = (cfg.camera_event_interval_s * 1000.0) as i64;
        let mut routine_rng: Vec<Rng> = (0..sim.cameras.len())
            .map(|c| Rng::derive(cfg.seed, TAG_ROUTINE, c as u64))
            .collect();
        let next_routine = routine_rng
            .iter_mut()
            .map(|rng| cfg.start_ms + rng.int(0, period.max(1) - 1))
            .collect();
        People {
            next_routine,
            next_track: vec![1; sim.cameras.len()],
            routine_rng,
            utc_offset_s: cfg.utc_offset_s,
        }
    }

    fn local_hour(&self, t: i64) -> usize {
        ((t + i64::from(self.utc_offset_s) * 1000).rem_euclid(86_400_000) / 3_600_000) as usize
    }

    fn hour_factor(&self, t: i64) -> f64 {
        TRAFFIC_BY_HOUR[self.local_hour(t)]
    }

    /// Plans one local day of people; those starting outside `[from_ms, to_ms)` are
    /// left out.
    #[allow(clippy::too_many_arguments)]
    pub fn plan_day(
        &mut self,
        net: &RoadNetwork,
        sim: &SimNetwork,
        cfg: &SimConfig,
        day: i64,
        from_ms: i64,
        to_ms: i64,
        out: &mut Vec<PeopleActivity>,
    ) {
        let mut rng = Rng::derive(cfg.seed, TAG_PEOPLE, day as u64);
        let day0 = day_start_ms(day, cfg.utc_offset_s);
        let at = |rng: &mut Rng| day0 + rng.int(0, 86_400_000 - 1);
        let first = out.len();
        let road_cams: Vec<usize> = (0..sim.cameras.len())
            .filter(|&c| sim.cameras[c].site == CameraSite::Road)
            .collect();
        let structure_cams: Vec<usize> = (0..sim.cameras.len())
            .filter(|&c| {
                matches!(sim.cameras[c].site, CameraSite::Road | CameraSite::Tunnel)
                    && sim.cameras[c].structure.is_some()
            })
            .collect();
        let sa_cams: Vec<usize> = (0..sim.cameras.len())
            .filter(|&c| matches!(sim.cameras[c].site, CameraSite::ServiceArea(_)))
            .collect();

        if !road_cams.is_empty() {
            let n = rng.stratified_count(cfg.pedestrian_incidents_per_day);
            for _ in 0..n {
                let camera =
                    if !structure_cams.is_empty() && rng.chance(cfg.structure_incident_share) {
                        *rng.pick(&structure_cams)
                    } else {
                        *rng.pick(&road_cams)
                    };
                let class = match rng.weighted(&[0.65, 0.25, 0.10]) {
                    0 => DetectionClass::Pedestrian,
                    1 => DetectionClass::Bicycle,
                    _ => DetectionClass::Tricycle,
                };
                out.push(PeopleActivity::Incident {
                    start_ms: at(&mut rng),
                    camera,
                    class,
                    hard: rng.chance(0.15),
                });
            }
            let n = rng.stratified_count(cfg.roadside_people_per_day);
            for _ in 0..n {
                out.push(PeopleActivity::Roadside {
                    start_ms: day0 + rng.int(6 * 3_600_000, 20 * 3_600_000),
                    camera: *rng.pick(&road_cams),
                });
            }
        }
        if !sa_cams.is_empty() {
            let n = rng.stratified_count(cfg.service_area_people_per_day);
            for _ in 0..n {
                // People use service areas mostly by day.
                let hour = rng.weighted(&TRAFFIC_BY_HOUR) as i64;
                out.push(PeopleActivity::ServiceArea {
                    start_ms: day0 + hour * 3_600_000 + rng.int(0, 3_599_999),
                    camera: *rng.pick(&sa_cams),
                });
            }
        }
        for c in 0..sim.cameras.len() {
            let CameraSite::WorkZone(zone) = sim.cameras[c].site else {
                continue;
            };
            let start = day0 + 8 * 3_600_000 + rng.int(0, 30 * 60_000);
            let end = day0 + 17 * 3_600_000 + rng.int(0, 60 * 60_000);
            let active = net.zone(zone).is_some_and(|z| {
                z.is_active(EventTime::from_ms(start)) || z.is_active(EventTime::from_ms(end))
            });
            let workers = rng.int(2, 4) as u32;
            if active {
                out.push(PeopleActivity::WorkCrew {
                    start_ms: start,
                    end_ms: end,
                    camera: c,
                    workers,
                });
            }
        }
        let mut kept = first;
        for i in first..out.len() {
            let s = out[i].start_ms();
            if s >= from_ms && s < to_ms {
                out.swap(kept, i);
                kept += 1;
            }
        }
        out.truncate(kept);
    }

    /// All camera events of one activity. Events at or after `end_ms` are not made.
    #[allow(clippy::too_many_arguments)]
    pub fn expand(
        &self,
        net: &RoadNetwork,
        sim: &SimNetwork,
        act: &PeopleActivity,
        rng: &mut Rng,
        track_base: u64,
        end_ms: i64,
        truth: &mut GroundTruth,
        out: &mut Vec<CamEvent>,
    ) {
        match *act {
            PeopleActivity::Incident {
                start_ms,
                camera,
                class,
                hard,
            } => self.incident(
                net, sim, rng, track_base, start_ms, camera, class, hard, end_ms, truth, out,
            ),
            PeopleActivity::ServiceArea { start_ms, camera } => self.service_area_walker(
                net, sim, rng, track_base, start_ms, camera, end_ms, truth, out,
            ),
            PeopleActivity::Roadside { start_ms, camera } => self.roadside(
                net, sim, rng, track_base, start_ms, camera, end_ms, truth, out,
            ),
            PeopleActivity::WorkCrew {
                start_ms,
                end_ms: crew_end,
                camera,
                workers,
            } => self.work_crew(
                net, sim, rng, track_base, start_ms, crew_end, camera, workers, end_ms, truth, out,
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn incident(
        &self,
        net: &RoadNetwork,
        sim: &SimNetwork,
        rng: &mut Rng,
        track_base: u64,
        start_ms: i64,
        camera: usize,
        class: DetectionClass,
        hard: bool,
        end_ms: i64,
        truth: &mut GroundTruth,
        out: &mut Vec<CamEvent>,
    ) {
        let cam = &sim.cameras[camera];
        let road = cam.road;
        let travels: Vec<Direction> = sim.roads[road].travels().collect();
        if travels.is_empty() {
            return;
        }
        let travel = cam.travel.unwrap_or_else(|| *rng.pick(&travels));
        // Somewhere in view, on the shoulder, not where people are allowed.
        let right_side = rng.chance(0.85);
        let mut start = None;
        for _ in 0..8 {
            let s0 = rng.range(cam.lo, cam.hi);
            let Some(frame) = sim.frame(net, road, travel, s0, start_ms) else {
                continue;
            };
            let lateral = shoulder_offset(rng, &frame, right_side);
            let (lon, lat) = frame.offset(lateral);
            if in_excluding_zone(net, lon, lat, start_ms) {
                continue;
            }
            start = Some((s0, frame, lateral));
            break;
        }
        let Some((s0, frame0, lateral)) = start else {
            return;
        };
        let (speed, minutes) = match class {
            DetectionClass::Pedestrian => (rng.range(0.8, 1.5), rng.range(2.0, 15.0)),
            DetectionClass::Bicycle => (rng.range(2.5, 5.0), rng.range(1.0, 6.0)),
            _ => (rng.range(2.0, 4.0), rng.range(1.5, 8.0)),
        };
        // Cyclists ride with the traffic; walkers go either way.
        let with_traffic = class != DetectionClass::Pedestrian || rng.chance(0.5);
        let up = (travel == Direction::Up) == with_traffic;
        let sign = if up { 1.0 } else { -1.0 };
        let hour = self.local_hour(start_ms);
        let night = !(7..19).contains(&hour);
        let base = if hard {
            rng.range(0.3, 0.5)
        } else if frame0.structure == Some(roadwatch_core::roads::Structure::Tunnel) {
            // Tunnels are lit day and night.
            rng.range(0.6, 0.92)
        } else if night {
            rng.range(0.5, 0.85)
        } else {
            rng.range(0.6, 0.95)
        };
        let duration_ms = (minutes * 60_000.0) as i64;
        let (lo, hi) = (sim.roads[road].lo, sim.roads[road].hi);

        // Per camera: next frame time and the track id it gave this person.
        let mut tracking: Vec<(usize, i64, u64)> = Vec::new();
        let mut emitted: Vec<(i64, f64, f64, f64, usize)> = Vec::new(); // ts, conf, lon, lat, camera
        let mut last_t = start_ms;
        let mut stake = s0;
        let mut t = start_ms;
        let step = 500;
        while t < start_ms + duration_ms && t < end_ms {
            stake = s0 + sign * speed * (t - start_ms) as f64 / 1000.0;
            if stake < lo || stake > hi {
                break;
            }
            last_t = t;
            for &c in &sim.cameras_by_road[road] {
                if !sim.cameras[c].sees(travel, stake) {
                    continue;
                }
                let slot = match tracking.iter().position(|x| x.0 == c) {
                    Some(i) => i,
                    None => {
                        // One person, one track id, whichever camera sees them.
                        tracking.push((c, t, track_base));
                        tracking.len() - 1
                    }
                };
                if tracking[slot].1 > t {
                    continue;
                }
                tracking[slot].1 = t + rng.int(1_700, 2_300);
                if rng.chance(0.15) {
                    continue; // occluded by a truck, motion blur
                }
                let Some(frame) = sim.frame(net, road, travel, stake, t) else {
                    continue;
                };
                let conf = rng.normal(base, 0.07).clamp(0.05, 0.99);
                let (lon, lat) = frame.offset(lateral + rng.normal(0.0, 0.4));
                let mut dets = vec![Det {
                    class: Class::Known(class),
                    confidence: round2(conf),
                    lon: round6(lon),
                    lat: round6(lat),
                    track: Some(tracking[slot].2),
                }];
                vehicles_in_view(
                    rng,
                    &sim.cameras[c].lanes,
                    self.hour_factor(t),
                    &mut dets,
                    0.6,
                    None,
                );
                emitted.push((t, round2(conf), round6(lon), round6(lat), c));
                out.push(CamEvent {
                    ts: t,
                    camera: c,
                    dets,
                });
            }
            t += step;
        }

        // Truth: which detections qualify, and when the confirmation rule is first met.
        let mut qualifying: Vec<(i64, f64, f64, f64)> = Vec::new();
        let mut confirm: Option<i64> = None;
        for &(ts, conf, lon, lat, _) in &emitted {
            if conf < MIN_CONFIDENCE || !qualifies_at(net, lon, lat, ts) {
                continue;
            }
            let confirmed = conf >= SINGLE_CONFIRM
                || qualifying.iter().any(|&(t2, _, x, y)| {
                    ts - t2 <= CONFIRM_WINDOW_MS
                        && distance_m([x, y], [lon, lat]) <= CONFIRM_DISTANCE_M
                });
            if confirmed && confirm.is_none() {
                confirm = Some(ts);
            }
            qualifying.push((ts, conf, lon, lat));
        }
        let mut cameras: Vec<String> = Vec::new();
        for &(_, _, _, _, c) in &emitted {
            let id = &sim.cameras[c].id;
            if !cameras.contains(id) {
                cameras.push(id.clone());
            }
        }
        let (lon0, lat0) = frame0.offset(lateral);
        truth.pedestrian_incidents.push(PedestrianIncident {
            id: format!("sim-ped-{:04}", truth.pedestrian_incidents.len() + 1),
            class: class.as_str(),
            road_id: sim.roads[road].id.to_string(),
            direction: travel.as_str(),
            structure: frame0.structure.map(|s| s.as_str()),
            stake_start_m: s0.round(),
            stake_end_m: stake.clamp(lo, hi).round(),
            lon: round6(lon0),
            lat: round6(lat0),
            start_ms,
            end_ms: last_t,
            cameras,
            detections: emitted.len() as u32,
            qualifying_detections: qualifying.len() as u32,
            detectable: confirm.is_some(),
            confirmable_at_ms: confirm,
            first_detection_ms: emitted.first().map(|e| e.0),
            last_detection_ms: emitted.last().map(|e| e.0),
            // The simulator adds the fog, which this module does not see.
            fog_level: 0,
            expected_severity: if frame0.structure.is_some() {
                "critical"
            } else {
                "severe"
            },
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn service_area_walker(
        &self,
        net: &RoadNetwork,
        sim: &SimNetwork,
        rng: &mut Rng,
        track_base: u64,
        start_ms: i64,
        camera: usize,
        end_ms: i64,
        truth: &mut GroundTruth,
        out: &mut Vec<CamEvent>,
    ) {
        let cam = &sim.cameras[camera];
        let CameraSite::ServiceArea(sa) = cam.site else {
            return;
        };
        if cam.interior.is_empty() {
            return;
        }
        let zone = net.zone(sim.service_areas[sa].zone);
        let class = if rng.chance(0.9) {
            DetectionClass::Pedestrian
        } else {
            DetectionClass::Bicycle
        };
        let track = track_base;
        let duration = rng.int(60_000, 300_000);
        let mut spot = *rng.pick(&cam.interior);
        let mut t = start_ms;
        let mut n = 0;
        while t < start_ms + duration && t < end_ms {
            if rng.chance(0.05) {
                spot = *rng.pick(&cam.interior);
            }
            let (mut lon, mut lat) = (
                round6(spot.0 + rng.normal(0.0, 0.00002)),
                round6(spot.1 + rng.normal(0.0, 0.00002)),
            );
            // Never let the jitter carry them out of the car park (the spots are inside
            // and off the carriageway; the rounded point is what the detector gets).
            let inside = zone.is_some_and(|z| z.contains(lon, lat))
                && !net
                    .locate(lon, lat, EventTime::from_ms(t))
                    .is_some_and(|p| p.on_carriageway);
            if !inside {
                (lon, lat) = spot;
            }
            let mut dets = vec![Det {
                class: Class::Known(class),
                confidence: round2(rng.range(0.6, 0.95)),
                lon: round6(lon),
                lat: round6(lat),
                track: Some(track),
            }];
            parked_cars(rng, &sim.cameras[camera].interior, &mut dets, None);
            out.push(CamEvent {
                ts: t,
                camera,
                dets,
            });
            n += 1;
            t += rng.int(2_500, 3_500);
        }
        truth.people_not_incidents.service_area += 1;
        truth.people_not_incidents.detections += n;
    }

    #[allow(clippy::too_many_arguments)]
    fn roadside(
        &self,
        net: &RoadNetwork,
        sim: &SimNetwork,
        rng: &mut Rng,
        track_base: u64,
        start_ms: i64,
        camera: usize,
        end_ms: i64,
        truth: &mut GroundTruth,
        out: &mut Vec<CamEvent>,
    ) {
        let cam = &sim.cameras[camera];
        let travels: Vec<Direction> = sim.roads[cam.road].travels().collect();
        if travels.is_empty() {
            return;
        }
        let travel = *rng.pick(&travels);
        // The right of a carriageway is the outer side: the other one is on its left.
        let lateral = rng.range(20.0, 70.0);
        let s0 = rng.range(cam.lo, cam.hi);
        let sign = if rng.chance(0.5) { 1.0 } else { -1.0 };
        let speed = rng.range(0.6, 1.3);
        let duration = rng.int(60_000, 300_000);
        let track = track_base;
        let mut t = start_ms;
        let mut n = 0;
        while t < start_ms + duration && t < end_ms {
            let stake = s0 + sign * speed * (t - start_ms) as f64 / 1000.0;
            if stake < cam.lo || stake > cam.hi {
                break;
            }
            if let Some(frame) = sim.frame(net, cam.road, travel, stake, t) {
                let (lon, lat) = frame.offset(lateral);
                let (lon, lat) = (round6(lon), round6(lat));
                // Beside a ramp or the other road this could be paved: leave it out.
                if !net
                    .locate(lon, lat, EventTime::from_ms(t))
                    .is_some_and(|p| p.on_carriageway)
                {
                    let mut dets = vec![Det {
                        class: Class::Known(DetectionClass::Pedestrian),
                        confidence: round2(rng.range(0.55, 0.95)),
                        lon,
                        lat,
                        track: Some(track),
                    }];
                    vehicles_in_view(
                        rng,
                        &sim.cameras[camera].lanes,
                        self.hour_factor(t),
                        &mut dets,
                        0.5,
                        None,
                    );
                    out.push(CamEvent {
                        ts: t,
                        camera,
                        dets,
                    });
                    n += 1;
                }
            }
            t += rng.int(2_000, 3_000);
        }
        truth.people_not_incidents.roadside += 1;
        truth.people_not_incidents.detections += n;
    }

    #[allow(clippy::too_many_arguments)]
    fn work_crew(
        &self,
        net: &RoadNetwork,
        sim: &SimNetwork,
        rng: &mut Rng,
        track_base: u64,
        start_ms: i64,
        crew_end: i64,
        camera: usize,
        workers: u32,
        end_ms: i64,
        truth: &mut GroundTruth,
        out: &mut Vec<CamEvent>,
    ) {
        let cam = &sim.cameras[camera];
        let CameraSite::WorkZone(zone_id) = cam.site else {
            return;
        };
        let Some(zone) = net.zone(zone_id) else {
            return;
        };
        if cam.interior.is_empty() {
            return;
        }
        let tracks: Vec<u64> = (0..u64::from(workers)).map(|k| track_base + k).collect();
        let mut spots: Vec<(f64, f64)> = (0..workers).map(|_| *rng.pick(&cam.interior)).collect();
        let mut t = start_ms;
        let mut n = 0;
        let mut last = start_ms;
        while t < crew_end && t < end_ms {
            if zone.is_active(EventTime::from_ms(t)) {
                for s in spots.iter_mut() {
                    if rng.chance(0.03) {
                        *s = *rng.pick(&cam.interior);
                    }
                }
                let mut dets = Vec::with_capacity(workers as usize);
                for (k, s) in spots.iter().enumerate() {
                    if rng.chance(0.1) {
                        continue; // behind the machinery
                    }
                    dets.push(Det {
                        class: Class::Known(DetectionClass::Pedestrian),
                        confidence: round2(rng.range(0.6, 0.95)),
                        lon: round6(s.0),
                        lat: round6(s.1),
                        track: Some(tracks[k]),
                    });
                }
                n += dets.len() as u64;
                out.push(CamEvent {
                    ts: t,
                    camera,
                    dets,
                });
                last = t;
            }
            t += rng.int(15_000, 25_000);
        }
        if n > 0 {
            truth
                .people_not_incidents
                .work_zone_crews
                .push(WorkZoneCrew {
                    zone: zone.name().to_owned(),
                    workers,
                    start_ms,
                    end_ms: last,
                });
            truth.people_not_incidents.detections += n;
        }
    }

    /// Routine camera events in `[t0, t1)`: passing vehicles and the noise. Each camera
    /// draws from its own generator, so how the run is cut into batches changes nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn routine(
        &mut self,
        net: &RoadNetwork,
        sim: &SimNetwork,
        cfg: &SimConfig,
        t0: i64,
        t1: i64,
        truth: &mut GroundTruth,
        out: &mut Vec<CamEvent>,
    ) {
        let period = cfg.camera_event_interval_s * 1000.0;
        for c in 0..sim.cameras.len() {
            while self.next_routine[c] < t1 {
                let t = self.next_routine[c];
                let factor = self.hour_factor(t);
                let rng = &mut self.routine_rng[c];
                self.next_routine[c] = t + (period * rng.range(0.5, 1.5)) as i64;
                if t < t0 {
                    continue;
                }
                let cam = &sim.cameras[c];
                let mut dets = Vec::new();
                let track = &mut self.next_track[c];
                match cam.site {
                    CameraSite::ServiceArea(_) => {
                        parked_cars(rng, &cam.interior, &mut dets, Some(track))
                    }
                    _ => vehicles_in_view(rng, &cam.lanes, factor, &mut dets, 2.0, Some(track)),
                }
                noise(net, sim, cfg, c, t, rng, truth, &mut dets);
                out.push(CamEvent {
                    ts: t,
                    camera: c,
                    dets,
                });
            }
        }
    }
}

fn next_track(counter: Option<&mut u32>) -> Option<u64> {
    counter.map(|c| {
        let t = *c;
        *c = c.wrapping_add(1).max(1);
        u64::from(t)
    })
}

/// Vehicles passing in a camera's view: Poisson around `mean`, scaled by the hour.
/// Track ids come from the camera's counter when given (routine events).
fn vehicles_in_view(
    rng: &mut Rng,
    lanes: &[Frame],
    hour_factor: f64,
    dets: &mut Vec<Det>,
    mean: f64,
    mut track: Option<&mut u32>,
) {
    if lanes.is_empty() {
        return;
    }
    let n = rng.poisson(mean * hour_factor);
    for _ in 0..n {
        let lane = *rng.pick(lanes);
        let (lon, lat) = lane.offset(rng.range(-3.5, 3.5));
        let class = if rng.chance(0.8) {
            DetectionClass::Vehicle
        } else {
            DetectionClass::Other
        };
        dets.push(Det {
            class: Class::Known(class),
            confidence: round2(rng.range(0.7, 0.99)),
            lon: round6(lon),
            lat: round6(lat),
            track: next_track(track.as_deref_mut()),
        });
    }
}

/// Cars parked in a service area.
fn parked_cars(
    rng: &mut Rng,
    interior: &[(f64, f64)],
    dets: &mut Vec<Det>,
    mut track: Option<&mut u32>,
) {
    if interior.is_empty() {
        return;
    }
    let n = rng.poisson(1.5);
    for _ in 0..n {
        let (lon, lat) = *rng.pick(interior);
        dets.push(Det {
            class: Class::Known(DetectionClass::Vehicle),
            confidence: round2(rng.range(0.7, 0.99)),
            lon: round6(lon),
            lat: round6(lat),
            track: next_track(track.as_deref_mut()),
        });
    }
}

/// The noise of real video analytics in a routine frame of a road or tunnel camera.
#[allow(clippy::too_many_arguments)]
fn noise(
    net: &RoadNetwork,
    sim: &SimNetwork,
    cfg: &SimConfig,
    c: usize,
    t: i64,
    rng: &mut Rng,
    truth: &mut GroundTruth,
    dets: &mut Vec<Det>,
) {
    let cam = &sim.cameras[c];
    let on_road = matches!(cam.site, CameraSite::Road | CameraSite::Tunnel);
    if !on_road || cam.lanes.is_empty() {
        return;
    }
    let lane = *rng.pick(&cam.lanes);
    let hw = lane.half_width_m;
    if rng.chance(cfg.low_confidence_noise_rate) {
        let (lon, lat) = lane.offset(rng.range(-hw + 0.5, hw - 0.5));
        dets.push(Det {
            class: Class::Known(DetectionClass::Pedestrian),
            confidence: round2(rng.range(0.1, 0.49)),
            lon: round6(lon),
            lat: round6(lat),
            track: None,
        });
        truth.camera_noise.low_confidence += 1;
    }
    if rng.chance(cfg.phantom_noise_rate) {
        let (lon, lat) = lane.offset(rng.range(-hw + 1.0, hw - 1.0));
        let class = if rng.chance(0.8) {
            DetectionClass::Pedestrian
        } else {
            DetectionClass::Bicycle
        };
        dets.push(Det {
            class: Class::Known(class),
            confidence: round2(rng.range(0.5, 0.8)),
            lon: round6(lon),
            lat: round6(lat),
            track: None,
        });
        truth.camera_noise.phantom_single += 1;
    }
    if cam.site == CameraSite::Road && rng.chance(cfg.off_road_noise_rate) {
        // A scarecrow on the hillside, a sign, a reflection: confident, but off the road.
        let (lon, lat) = lane.offset(rng.range(25.0, 90.0));
        let (lon, lat) = (round6(lon), round6(lat));
        let confidence = round2(rng.range(0.5, 0.95));
        if !net
            .locate(lon, lat, EventTime::from_ms(t))
            .is_some_and(|p| p.on_carriageway)
        {
            dets.push(Det {
                class: Class::Known(DetectionClass::Pedestrian),
                confidence,
                lon,
                lat,
                track: None,
            });
            truth.camera_noise.off_road += 1;
        }
    }
    if rng.chance(0.005) {
        let (lon, lat) = lane.offset(rng.range(-hw, hw + 10.0));
        dets.push(Det {
            class: Class::Known(DetectionClass::Animal),
            confidence: round2(rng.range(0.5, 0.9)),
            lon: round6(lon),
            lat: round6(lat),
            track: None,
        });
        truth.camera_noise.animal += 1;
    }
    if rng.chance(0.01) {
        let (lon, lat) = lane.offset(rng.range(-hw, hw));
        dets.push(Det {
            class: Class::Known(DetectionClass::Other),
            confidence: round2(rng.range(0.3, 0.8)),
            lon: round6(lon),
            lat: round6(lat),
            track: None,
        });
        truth.camera_noise.other += 1;
    }
    if rng.chance(0.002) {
        let (lon, lat) = lane.offset(rng.range(-hw, hw));
        let class = if rng.chance(0.5) {
            "traffic_cone"
        } else {
            "debris"
        };
        dets.push(Det {
            class: Class::Unknown(class),
            confidence: round2(rng.range(0.4, 0.9)),
            lon: round6(lon),
            lat: round6(lat),
            track: None,
        });
        truth.camera_noise.unknown_class += 1;
    }
}

/// On the shoulder: inside the paved width, close to its edge.
fn shoulder_offset(rng: &mut Rng, frame: &Frame, right: bool) -> f64 {
    let from_edge = rng.range(0.8, 2.0).min(frame.half_width_m * 0.5);
    let d = frame.half_width_m - from_edge;
    if right {
        d
    } else {
        -d
    }
}

/// Inside a service area, toll plaza or active work zone, where people may be.
fn in_excluding_zone(net: &RoadNetwork, lon: f64, lat: f64, at_ms: i64) -> bool {
    net.zones_at(lon, lat, EventTime::from_ms(at_ms))
        .iter()
        .any(|z| {
            matches!(
                z.kind(),
                ZoneKind::ServiceArea | ZoneKind::TollPlaza | ZoneKind::WorkZone
            )
        })
}

/// DOMAIN.md's place test for a qualifying detection.
fn qualifies_at(net: &RoadNetwork, lon: f64, lat: f64, at_ms: i64) -> bool {
    net.locate(lon, lat, EventTime::from_ms(at_ms))
        .is_some_and(|p| p.on_carriageway)
        && !in_excluding_zone(net, lon, lat, at_ms)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
