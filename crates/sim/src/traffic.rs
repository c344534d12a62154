//! Vehicles and their trips, which become plate reads at the ANPR gantries and
//! service-area entrances they pass.
//!
//! Who drives (issue 8, DOMAIN.md "Illegal ride-hailing"):
//! - private commuters: home ↔ work, 8–40 km, two trips on working days;
//! - long-distance commuters: the same over 45–90 km, so they pass 85.8 km/day with only
//!   two trips (hard negatives for a distance-only rule);
//! - tourists and travellers: one trip (a quarter come back the same day), often from or
//!   to a road end, with a long service-area break now and then; fresh plates every day;
//! - trucks (yellow plates, `truck`) and intercity buses (yellow, `bus`, several trips a
//!   day between two towns: commercial, so never ride-hailing suspects);
//! - licensed operators (whitelisted) and illegal operators: four to seven trips a day
//!   (licensed: three to six) between the same two towns 20–50 km apart, short stops at
//!   service areas to take on passengers, active on most days — 80–350 km a day, around
//!   the 128.5 km/day the 2023 plate-camera study found for suspects;
//! - a few watchlisted suspect cars that travel now and then.
use std::sync::Arc;

use super::config::DAY_MS;
use super::network::{Route, SimNetwork};
use super::plates::{style_for, PlateFactory, PlateStyle};
use super::rng::Rng;
use super::truth::{DayActivity, GroundTruth, OperatorTruth, RecurringVehicle, WatchlistEntry};
use super::SimConfig;
use roadwatch_core::model::{PlateColor, VehicleClass};

const TAG_POPULATION: u64 = 0x0050_4F50;
const TAG_RECURRING: u64 = 0x0052_4543;
const TAG_ONE_OFF: u64 = 0x004F_4E45;

/// Relative trip starts by local hour: night lull, morning and evening peaks.
const CAR_HOURS: [f64; 24] = [
    0.25, 0.15, 0.1, 0.1, 0.15, 0.35, 0.8, 1.4, 1.6, 1.3, 1.2, 1.2, 1.1, 1.1, 1.2, 1.3, 1.5, 1.7,
    1.4, 1.0, 0.8, 0.6, 0.45, 0.35,
];
/// Freight runs around the clock with a flatter profile.
const TRUCK_HOURS: [f64; 24] = [
    0.6, 0.5, 0.5, 0.5, 0.6, 0.7, 0.9, 1.1, 1.2, 1.2, 1.2, 1.2, 1.1, 1.1, 1.2, 1.2, 1.2, 1.1, 1.0,
    0.9, 0.8, 0.8, 0.7, 0.7,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VehicleKind {
    PrivateCommuter,
    LongCommuter,
    Tourist,
    Truck,
    Bus,
    LicensedOperator,
    IllegalOperator,
    Suspect,
}

#[derive(Debug, Clone)]
pub(crate) struct Vehicle {
    pub plate: String,
    pub color: PlateColor,
    pub class: VehicleClass,
    pub kind: VehicleKind,
    /// The two trip ends of a recurring vehicle (home/work, the two towns).
    pub a: usize,
    pub b: usize,
    /// Probability of being on the road on a given day (operators).
    pub active_rate: f64,
    /// Index into `truth.illegal_operators` / `truth.licensed_operators`.
    pub operator: Option<usize>,
    /// Index into `truth.watchlist`.
    pub watch: Option<usize>,
}

/// One planned trip: when, who, where, how fast, and where it stops.
#[derive(Debug, Clone)]
pub(crate) struct TripPlan {
    /// Number in planning order (set by the simulator): seeds the trip's generator.
    pub id: u64,
    pub start_ms: i64,
    /// Shared with the plate reads in flight; a one-off vehicle lives as long as they do.
    pub vehicle: Arc<Vehicle>,
    pub from: usize,
    pub to: usize,
    pub speed_mps: f64,
    /// Service-area readers where the vehicle stops, with the dwell in seconds.
    pub stops: Vec<(usize, f64)>,
}

/// How a kind of vehicle uses service areas.
#[derive(Debug, Clone, Copy)]
struct StopPolicy {
    prob: f64,
    min_s: f64,
    max_s: f64,
    max_stops: usize,
}

const NO_STOPS: StopPolicy = StopPolicy {
    prob: 0.0,
    min_s: 0.0,
    max_s: 0.0,
    max_stops: 0,
};

pub(crate) struct Traffic {
    /// The recurring vehicles. One-off vehicles are not kept: they live in their trips.
    pub vehicles: Vec<Arc<Vehicle>>,
    plates: PlateFactory,
    /// Trip ends usable by one-off traffic (no hubs), with weights for cars and trucks.
    ends: Vec<usize>,
    car_weights: Vec<f64>,
    truck_weights: Vec<f64>,
    scratch: Vec<usize>,
}

pub(crate) fn local_day(ms: i64, offset_s: i32) -> i64 {
    (ms + i64::from(offset_s) * 1000).div_euclid(DAY_MS)
}

pub(crate) fn day_start_ms(day: i64, offset_s: i32) -> i64 {
    day * DAY_MS - i64::from(offset_s) * 1000
}

/// Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday).
pub(crate) fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

/// `YYYY-MM-DD` of a local day number.
pub(crate) fn date_text(day: i64) -> String {
    // Days from 0001-01-01 (CE day 1) to 1970-01-01.
    const UNIX_EPOCH_CE_DAYS: i64 = 719_163;
    i32::try_from(day + UNIX_EPOCH_CE_DAYS)
        .ok()
        .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
        .map_or_else(|| day.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

fn hour_offset_ms(rng: &mut Rng, profile: &[f64; 24]) -> i64 {
    let hour = rng.weighted(profile) as i64;
    hour * 3_600_000 + rng.int(0, 3_599_999)
}

impl Traffic {
    /// Creates the recurring population and registers operators, lists and hard
    /// negatives in the truth.
    pub fn new(sim: &SimNetwork, cfg: &SimConfig, truth: &mut GroundTruth) -> Traffic {
        let mut rng = Rng::derive(cfg.seed, TAG_POPULATION, 0);
        let ends: Vec<usize> = {
            let non_hub: Vec<usize> = (0..sim.nodes.len())
                .filter(|&n| !sim.nodes[n].hub)
                .collect();
            if non_hub.len() >= 2 {
                non_hub
            } else {
                (0..sim.nodes.len()).collect()
            }
        };
        let car_weights = ends
            .iter()
            .map(|&n| if sim.nodes[n].boundary { 5.0 } else { 1.0 })
            .collect();
        let truck_weights = ends
            .iter()
            .map(|&n| if sim.nodes[n].boundary { 10.0 } else { 1.0 })
            .collect();
        let mut t = Traffic {
            vehicles: Vec::new(),
            plates: PlateFactory::default(),
            ends,
            car_weights,
            truck_weights,
            scratch: Vec::new(),
        };
        let all_pairs = t.pairs(sim, 0.0, f64::INFINITY, false);
        if all_pairs.is_empty() {
            return t;
        }
        let pool = |t: &Traffic, lo: f64, hi: f64, sa: bool| {
            let p = t.pairs(sim, lo, hi, sa);
            if !p.is_empty() {
                return p;
            }
            let p = t.pairs(sim, lo, hi, false);
            if p.is_empty() {
                all_pairs.clone()
            } else {
                p
            }
        };
        let short = pool(&t, 8_000.0, 40_000.0, false);
        let long = pool(&t, 45_000.0, 90_000.0, false);
        let towns = pool(&t, 20_000.0, 50_000.0, true);
        let bus_lines = pool(&t, 30_000.0, 100_000.0, false);

        for _ in 0..cfg.private_commuters {
            let (a, b) = *rng.pick(&short);
            let local = rng.chance(0.9);
            t.add_recurring(
                &mut rng,
                VehicleKind::PrivateCommuter,
                VehicleClass::Car,
                a,
                b,
                local,
            );
        }
        for _ in 0..cfg.long_distance_commuters {
            let (a, b) = *rng.pick(&long);
            let v = t.add_recurring(
                &mut rng,
                VehicleKind::LongCommuter,
                VehicleClass::Car,
                a,
                b,
                true,
            );
            truth.hard_negatives.push(RecurringVehicle {
                plate: t.vehicles[v].plate.clone(),
                kind: "long_distance_commuter",
                route_km: route_km(sim, a, b),
            });
        }
        for _ in 0..cfg.buses {
            let (a, b) = *rng.pick(&bus_lines);
            let v = t.add_recurring(&mut rng, VehicleKind::Bus, VehicleClass::Bus, a, b, true);
            truth.hard_negatives.push(RecurringVehicle {
                plate: t.vehicles[v].plate.clone(),
                kind: "bus",
                route_km: route_km(sim, a, b),
            });
        }
        for _ in 0..cfg.licensed_operators {
            let (a, b) = *rng.pick(&towns);
            let v = t.add_recurring(
                &mut rng,
                VehicleKind::LicensedOperator,
                VehicleClass::Car,
                a,
                b,
                true,
            );
            t.vmut(v).active_rate = rng.range(0.75, 0.95);
            t.vmut(v).operator = Some(truth.licensed_operators.len());
            truth.whitelist_plates.push(t.vehicles[v].plate.clone());
            truth
                .licensed_operators
                .push(operator_truth(sim, &t.vehicles[v], false));
        }
        for i in 0..cfg.illegal_operators {
            let (a, b) = *rng.pick(&towns);
            let class = if rng.chance(0.25) {
                VehicleClass::Van
            } else {
                VehicleClass::Car
            };
            let v = t.add_recurring(&mut rng, VehicleKind::IllegalOperator, class, a, b, true);
            t.vmut(v).active_rate = rng.range(0.75, 0.97);
            t.vmut(v).operator = Some(truth.illegal_operators.len());
            let watched = i < cfg.watchlisted_operators;
            truth
                .illegal_operators
                .push(operator_truth(sim, &t.vehicles[v], watched));
            if watched {
                t.vmut(v).watch = Some(truth.watchlist.len());
                truth.watchlist.push(WatchlistEntry {
                    plate: t.vehicles[v].plate.clone(),
                    kind: "illegal_operator",
                    first_seen_ms: None,
                    reads: 0,
                });
            }
        }
        for _ in 0..cfg.watchlisted_suspects {
            let (a, b) = *rng.pick(&all_pairs);
            let local = rng.chance(0.5);
            let v = t.add_recurring(
                &mut rng,
                VehicleKind::Suspect,
                VehicleClass::Car,
                a,
                b,
                local,
            );
            t.vmut(v).watch = Some(truth.watchlist.len());
            truth.watchlist.push(WatchlistEntry {
                plate: t.vehicles[v].plate.clone(),
                kind: "suspect_vehicle",
                first_seen_ms: None,
                reads: 0,
            });
        }
        for _ in 0..cfg.watchlisted_absent {
            let plate = t.plates.make(&mut rng, PlateStyle::Ordinary, false);
            truth.watchlist.push(WatchlistEntry {
                plate,
                kind: "absent",
                first_seen_ms: None,
                reads: 0,
            });
        }
        truth.watchlist_plates = truth.watchlist.iter().map(|w| w.plate.clone()).collect();
        t
    }

    fn add_recurring(
        &mut self,
        rng: &mut Rng,
        kind: VehicleKind,
        class: VehicleClass,
        a: usize,
        b: usize,
        local: bool,
    ) -> usize {
        let (style, color) = style_for(rng, class);
        let plate = self.plates.make(rng, style, local);
        self.vehicles.push(Arc::new(Vehicle {
            plate,
            color,
            class,
            kind,
            a,
            b,
            active_rate: 1.0,
            operator: None,
            watch: None,
        }));
        self.vehicles.len() - 1
    }

    /// A recurring vehicle while the population is being built (before any trip shares it).
    fn vmut(&mut self, v: usize) -> &mut Vehicle {
        Arc::get_mut(&mut self.vehicles[v])
            .expect("vehicles are shared only once trips are planned")
    }

    /// Trip-end pairs (both orders) whose route length is in `[lo, hi]` metres,
    /// optionally only those passing a service area.
    fn pairs(&self, sim: &SimNetwork, lo: f64, hi: f64, need_sa: bool) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        for &a in &self.ends {
            for &b in &self.ends {
                if a == b {
                    continue;
                }
                let Some(route) = sim.route(a, b) else {
                    continue;
                };
                if route.length_m < lo || route.length_m > hi {
                    continue;
                }
                if need_sa && !passes_service_area(sim, route, &mut scratch) {
                    continue;
                }
                out.push((a, b));
            }
        }
        out
    }

    fn one_off(&mut self, rng: &mut Rng, kind: VehicleKind, class: VehicleClass) -> Arc<Vehicle> {
        let (style, color) = style_for(rng, class);
        let plate = self.plates.make_one_off(rng, style);
        Arc::new(Vehicle {
            plate,
            color,
            class,
            kind,
            a: 0,
            b: 0,
            active_rate: 1.0,
            operator: None,
            watch: None,
        })
    }

    /// Plans the trips of one local day. Recurring vehicles always; the one-off traffic
    /// only when `one_off` (the warm-up leaves it out: it adds load, not history).
    /// Trips starting outside `[from_ms, to_ms)` are dropped. Operator days are recorded
    /// in the truth.
    #[allow(clippy::too_many_arguments)]
    pub fn plan_day(
        &mut self,
        sim: &SimNetwork,
        cfg: &SimConfig,
        day: i64,
        one_off: bool,
        from_ms: i64,
        to_ms: i64,
        truth: &mut GroundTruth,
        out: &mut Vec<TripPlan>,
    ) {
        let day0 = day_start_ms(day, cfg.utc_offset_s);
        let wd = weekday(day);
        let first = out.len();
        let mut rng = Rng::derive(cfg.seed, TAG_RECURRING, day as u64);
        for v in 0..self.vehicles.len() {
            let vehicle = self.vehicles[v].clone();
            self.plan_recurring(sim, &mut rng, vehicle, day0, wd, out);
        }
        self.plates.new_day();

        if one_off {
            let mut rng = Rng::derive(cfg.seed, TAG_ONE_OFF, day as u64);
            let weekend = if wd >= 5 { 1.25 } else { 1.0 };
            let cars = rng.stratified_count(cfg.car_trips_per_day * cfg.traffic_scale * weekend);
            let car_stops = StopPolicy {
                prob: 0.35,
                min_s: 900.0,
                max_s: 2700.0,
                max_stops: 1,
            };
            for _ in 0..cars {
                let Some((a, b)) = self.random_pair(sim, &mut rng, false) else {
                    break;
                };
                let v = self.one_off(&mut rng, VehicleKind::Tourist, VehicleClass::Car);
                let start = day0 + hour_offset_ms(&mut rng, &CAR_HOURS);
                let speed = rng.normal(88.0, 12.0).clamp(60.0, 125.0) / 3.6;
                let trip = self.trip(sim, &mut rng, v.clone(), a, b, start, speed, car_stops);
                let end = start + trip_duration_ms(sim, &trip);
                out.push(trip);
                if rng.chance(0.25) {
                    let back = end + rng.int(3_600_000, 6 * 3_600_000);
                    let trip = self.trip(sim, &mut rng, v.clone(), b, a, back, speed, car_stops);
                    out.push(trip);
                }
            }
            let trucks = rng.stratified_count(cfg.truck_trips_per_day * cfg.traffic_scale);
            let truck_stops = StopPolicy {
                prob: 0.3,
                min_s: 1200.0,
                max_s: 5400.0,
                max_stops: 1,
            };
            for _ in 0..trucks {
                let Some((a, b)) = self.random_pair(sim, &mut rng, true) else {
                    break;
                };
                let v = self.one_off(&mut rng, VehicleKind::Truck, VehicleClass::Truck);
                let start = day0 + hour_offset_ms(&mut rng, &TRUCK_HOURS);
                let speed = rng.normal(68.0, 7.0).clamp(50.0, 90.0) / 3.6;
                let trip = self.trip(sim, &mut rng, v.clone(), a, b, start, speed, truck_stops);
                out.push(trip);
            }
        }

        // Keep what falls in the window; book operator activity for the truth.
        let mut kept = first;
        for i in first..out.len() {
            let start = out[i].start_ms;
            if start >= from_ms && start < to_ms {
                out.swap(kept, i);
                kept += 1;
            }
        }
        out.truncate(kept);
        for trip in &out[first..] {
            let v = &trip.vehicle;
            let Some(slot) = v.operator else { continue };
            let list = match v.kind {
                VehicleKind::IllegalOperator => &mut truth.illegal_operators,
                _ => &mut truth.licensed_operators,
            };
            let km = sim
                .route(trip.from, trip.to)
                .map_or(0.0, |r| r.length_m / 1000.0);
            let date = date_text(day);
            let days = &mut list[slot].days;
            match days.last_mut() {
                Some(d) if d.date == date => {
                    d.trips += 1;
                    d.km = round1(d.km + km);
                }
                _ => days.push(DayActivity {
                    date,
                    trips: 1,
                    km: round1(km),
                }),
            }
        }
    }

    fn plan_recurring(
        &mut self,
        sim: &SimNetwork,
        rng: &mut Rng,
        v: Arc<Vehicle>,
        day0: i64,
        wd: i64,
        out: &mut Vec<TripPlan>,
    ) {
        let (kind, a, b, active_rate) = (v.kind, v.a, v.b, v.active_rate);
        let hours = |h: f64| (h * 3_600_000.0) as i64;
        match kind {
            VehicleKind::PrivateCommuter | VehicleKind::LongCommuter => {
                let works = if wd < 5 {
                    rng.chance(0.95)
                } else {
                    rng.chance(0.1)
                };
                if !works {
                    return;
                }
                let speed = rng.normal(90.0, 10.0).clamp(65.0, 120.0) / 3.6;
                let stops = StopPolicy {
                    prob: 0.02,
                    min_s: 300.0,
                    max_s: 900.0,
                    max_stops: 1,
                };
                let morning = day0 + hours(rng.normal(7.75, 0.5).clamp(5.5, 10.0));
                let evening = day0 + hours(rng.normal(17.9, 0.7).clamp(15.5, 22.0));
                let t1 = self.trip(sim, rng, v.clone(), a, b, morning, speed, stops);
                out.push(t1);
                let t2 = self.trip(sim, rng, v.clone(), b, a, evening, speed, stops);
                out.push(t2);
            }
            VehicleKind::Bus => {
                let n = rng.int(4, 6);
                let speed = rng.normal(80.0, 6.0).clamp(65.0, 95.0) / 3.6;
                let stops = StopPolicy {
                    prob: 0.3,
                    min_s: 480.0,
                    max_s: 900.0,
                    max_stops: 1,
                };
                let mut t = day0 + hours(6.5) + rng.int(0, 3_600_000);
                for k in 0..n {
                    let (x, y) = if k % 2 == 0 { (a, b) } else { (b, a) };
                    let trip = self.trip(sim, rng, v.clone(), x, y, t, speed, stops);
                    let d = trip_duration_ms(sim, &trip);
                    out.push(trip);
                    t += d + rng.int(45 * 60_000, 90 * 60_000);
                }
            }
            VehicleKind::LicensedOperator | VehicleKind::IllegalOperator => {
                if !rng.chance(active_rate) {
                    return;
                }
                let illegal = kind == VehicleKind::IllegalOperator;
                let n = if illegal {
                    rng.int(4, 7)
                } else {
                    rng.int(3, 6)
                };
                let speed = rng.normal(95.0, 10.0).clamp(70.0, 125.0) / 3.6;
                let stops = if illegal {
                    // Short stops to pick up passengers waiting at the service area.
                    StopPolicy {
                        prob: 0.6,
                        min_s: 180.0,
                        max_s: 600.0,
                        max_stops: 2,
                    }
                } else {
                    StopPolicy {
                        prob: 0.3,
                        min_s: 300.0,
                        max_s: 900.0,
                        max_stops: 1,
                    }
                };
                let mut t = day0 + hours(6.0) + rng.int(0, 150 * 60_000);
                let (mut x, mut y) = if rng.chance(0.5) { (a, b) } else { (b, a) };
                for _ in 0..n {
                    if t > day0 + hours(22.5) {
                        break;
                    }
                    let trip = self.trip(sim, rng, v.clone(), x, y, t, speed, stops);
                    let d = trip_duration_ms(sim, &trip);
                    out.push(trip);
                    // Waiting at the terminus for the car to fill.
                    t += d + rng.int(15 * 60_000, 80 * 60_000);
                    std::mem::swap(&mut x, &mut y);
                }
            }
            VehicleKind::Suspect => {
                if !rng.chance(0.5) {
                    return;
                }
                let speed = rng.normal(95.0, 12.0).clamp(65.0, 125.0) / 3.6;
                let start = day0 + hour_offset_ms(rng, &CAR_HOURS);
                let trip = self.trip(sim, rng, v.clone(), a, b, start, speed, NO_STOPS);
                let back = start + trip_duration_ms(sim, &trip) + rng.int(3_600_000, 4 * 3_600_000);
                out.push(trip);
                let trip = self.trip(sim, rng, v.clone(), b, a, back, speed, NO_STOPS);
                out.push(trip);
            }
            VehicleKind::Tourist | VehicleKind::Truck => {}
        }
    }

    fn random_pair(&self, sim: &SimNetwork, rng: &mut Rng, truck: bool) -> Option<(usize, usize)> {
        if self.ends.len() < 2 {
            return None;
        }
        let weights = if truck {
            &self.truck_weights
        } else {
            &self.car_weights
        };
        for _ in 0..20 {
            let a = self.ends[rng.weighted(weights)];
            let b = self.ends[rng.weighted(weights)];
            if a != b && sim.route(a, b).is_some() {
                return Some((a, b));
            }
        }
        None
    }

    /// A trip with its service-area stops decided now, so its duration is known and
    /// the next trip of the same vehicle can be scheduled after it.
    #[allow(clippy::too_many_arguments)]
    fn trip(
        &mut self,
        sim: &SimNetwork,
        rng: &mut Rng,
        vehicle: Arc<Vehicle>,
        from: usize,
        to: usize,
        start_ms: i64,
        speed_mps: f64,
        policy: StopPolicy,
    ) -> TripPlan {
        let mut stops = Vec::new();
        if policy.max_stops > 0 {
            if let Some(route) = sim.route(from, to) {
                for leg in &route.legs {
                    sim.readers_between(leg, &mut self.scratch);
                    for &r in &self.scratch {
                        if sim.readers[r].service_area.is_some()
                            && stops.len() < policy.max_stops
                            && rng.chance(policy.prob)
                        {
                            stops.push((r, rng.range(policy.min_s, policy.max_s)));
                        }
                    }
                }
            }
        }
        TripPlan {
            id: 0,
            start_ms,
            vehicle,
            from,
            to,
            speed_mps,
            stops,
        }
    }

    /// The reader passes of a trip, in time order: `(ts, reader)`. Speed varies by a
    /// few per cent between gantries, as real traffic does.
    pub fn expand(
        &mut self,
        sim: &SimNetwork,
        trip: &TripPlan,
        rng: &mut Rng,
        out: &mut Vec<(i64, usize)>,
    ) {
        out.clear();
        let Some(route) = sim.route(trip.from, trip.to) else {
            return;
        };
        let v = trip.speed_mps.max(1.0);
        let mut t = trip.start_ms as f64;
        for leg in &route.legs {
            let road = &sim.roads[leg.road];
            t += leg.ramp_m / v * 1000.0;
            let mut pos = leg.from;
            sim.readers_between(leg, &mut self.scratch);
            for &r in &self.scratch {
                let reader = &sim.readers[r];
                let stop = trip.stops.iter().find(|s| s.0 == r);
                if reader.service_area.is_some() && stop.is_none() {
                    continue; // drove past the service area
                }
                let jitter = rng.range(0.96, 1.04);
                t += road.drive_m(leg.travel, pos, reader.stake) / (v * jitter) * 1000.0;
                pos = reader.stake;
                out.push((t as i64, r));
                if let Some((_, dwell_s)) = stop {
                    t += dwell_s * 1000.0;
                }
            }
            t += road.drive_m(leg.travel, pos, leg.to) / v * 1000.0;
        }
    }
}

fn route_km(sim: &SimNetwork, a: usize, b: usize) -> f64 {
    round1(sim.route(a, b).map_or(0.0, |r| r.length_m / 1000.0))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn passes_service_area(sim: &SimNetwork, route: &Route, scratch: &mut Vec<usize>) -> bool {
    route.legs.iter().any(|leg| {
        sim.readers_between(leg, scratch);
        scratch
            .iter()
            .any(|&r| sim.readers[r].service_area.is_some())
    })
}

/// Driving time plus stops.
pub(crate) fn trip_duration_ms(sim: &SimNetwork, trip: &TripPlan) -> i64 {
    let length = sim.route(trip.from, trip.to).map_or(0.0, |r| r.length_m);
    let dwell: f64 = trip.stops.iter().map(|s| s.1).sum();
    ((length / trip.speed_mps.max(1.0) + dwell) * 1000.0) as i64
}

fn operator_truth(sim: &SimNetwork, v: &Vehicle, watchlisted: bool) -> OperatorTruth {
    OperatorTruth {
        plate: v.plate.clone(),
        plate_color: v.color.as_str(),
        vehicle_class: v.class.as_str(),
        origin: sim.nodes[v.a].name.clone(),
        destination: sim.nodes[v.b].name.clone(),
        route_km: route_km(sim, v.a, v.b),
        watchlisted,
        days: Vec::new(),
        first_seen_ms: None,
        reads: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(date_text(0), "1970-01-01");
        let start = SimConfig::default().start_ms;
        let day = local_day(start, 8 * 3600);
        assert_eq!(date_text(day), "2026-11-23");
        assert_eq!(day_start_ms(day, 8 * 3600), start);
        assert_eq!(weekday(day), 0, "2026-11-23 is a Monday");
        assert_eq!(weekday(day + 5), 5, "2026-11-28 is a Saturday");
        assert_eq!(weekday(0), 3, "1970-01-01 was a Thursday");
    }
}
