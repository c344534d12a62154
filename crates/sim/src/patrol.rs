//! Patrol units: cars that drive laps of their section, stop now and then, go off duty
//! at night (day-shift units), report their position every 10–30 s, and answer
//! dispatches the way crews do — usually accepting within a minute, sometimes late,
//! sometimes declining, sometimes not answering at all — then drive there (turning only
//! at interchanges), report `arrived`, stay a while and report `resolved` (or forget to).
//!
//! A unit's movement is a plan: time-contiguous segments (drive along a carriageway,
//! park, or drive cross-country where the network does not connect), extended lap by
//! lap as time goes on and replaced from the moment a dispatch is accepted.
use super::network::SimNetwork;
use super::rng::Rng;
use super::truth::{DispatchAnswer, GroundTruth, PatrolUnitTruth};
use super::SimConfig;
use roadwatch_core::model::EventTime;
use roadwatch_core::model::{AckStatus, Alert, AlertStatus, Outcome, UnitStatus};
use roadwatch_core::roads::{distance_m, Direction, RoadNetwork};

const TAG_PATROL: u64 = 0x0050_4154;
const TAG_ANSWERS: u64 = 0x0041_4E53;

/// How a crew answers a dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Accept,
    Decline,
    /// No answer at all: the engine's ack time-out must re-dispatch.
    Silent,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    /// On a carriageway (lateral metres right of its centre line).
    Road {
        road: usize,
        travel: Direction,
        stake: f64,
    },
    /// Off the network (the base, or cross-country), by coordinates.
    At { lon: f64, lat: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SegKind {
    Drive {
        road: usize,
        travel: Direction,
        from: f64,
        to: f64,
        metres: f64,
    },
    Park(Place),
    /// Straight line between two points (where the network does not connect).
    Straight {
        from: (f64, f64),
        to: (f64, f64),
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Seg {
    t0: i64,
    t1: i64,
    kind: SegKind,
    status: UnitStatus,
}

#[derive(Debug, Clone)]
struct Unit {
    id: String,
    road: usize,
    lo: f64,
    hi: f64,
    base: (f64, f64),
    day_shift: bool,
    silent_off_duty: bool,
    interval_ms: i64,
    next_report: i64,
    plan: Vec<Seg>,
    /// The unit's own generator: how a run is cut into batches changes nothing.
    rng: Rng,
}

/// One patrol position before rendering.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PatrolFix {
    pub unit: usize,
    pub lon: f64,
    pub lat: f64,
    pub status: UnitStatus,
    pub speed_kmh: f64,
}

/// One dispatch answer before rendering.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AckOut {
    pub ts: i64,
    pub alert_id: String,
    pub unit: usize,
    pub status: AckStatus,
    /// What the crew found, on a `resolved` (from the ground truth at its arrival).
    pub outcome: Option<Outcome>,
}

pub(crate) struct Patrol {
    units: Vec<Unit>,
    answers_rng: Rng,
    utc_offset_s: i32,
    accept_share: f64,
    decline_share: f64,
    /// (alert id, unit, attempt) already answered: an `update` repeats the dispatch.
    answered: std::collections::BTreeSet<(String, usize, u32)>,
}

impl Patrol {
    pub fn new(
        net: &RoadNetwork,
        sim: &SimNetwork,
        cfg: &SimConfig,
        truth: &mut GroundTruth,
    ) -> Patrol {
        let mut rng = Rng::derive(cfg.seed, TAG_PATROL, 0);
        let mut units = Vec::new();
        let lengths: Vec<f64> = sim.roads.iter().map(|r| r.hi - r.lo).collect();
        let total: f64 = lengths.iter().sum();
        let n = cfg.patrol_units as usize;
        if total > 0.0 && n > 0 {
            // Units per road in proportion to its length (largest remainder), then each
            // road cut into that many sections ending at interchanges.
            let mut per_road: Vec<usize> = lengths
                .iter()
                .map(|l| (l / total * n as f64).floor() as usize)
                .collect();
            let mut rema: Vec<(f64, usize)> = lengths
                .iter()
                .enumerate()
                .map(|(i, l)| (l / total * n as f64 - per_road[i] as f64, i))
                .collect();
            rema.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut k = 0;
            while per_road.iter().sum::<usize>() < n {
                per_road[rema[k % rema.len()].1] += 1;
                k += 1;
            }
            for (road, &count) in per_road.iter().enumerate() {
                let r = &sim.roads[road];
                for j in 0..count {
                    let raw_lo = r.lo + (r.hi - r.lo) * j as f64 / count as f64;
                    let raw_hi = r.lo + (r.hi - r.lo) * (j + 1) as f64 / count as f64;
                    let snap = |s: f64| {
                        sim.road_nodes[road]
                            .iter()
                            .map(|&n| sim.nodes[n].stake)
                            .min_by(|a, b| (a - s).abs().total_cmp(&(b - s).abs()))
                            .unwrap_or(s)
                    };
                    let (mut lo, mut hi) = (snap(raw_lo), snap(raw_hi));
                    if hi - lo < 3_000.0 {
                        (lo, hi) = (raw_lo, raw_hi);
                    }
                    let base_node = sim.road_nodes[road].iter().copied().min_by(|&a, &b| {
                        (sim.nodes[a].stake - lo)
                            .abs()
                            .total_cmp(&(sim.nodes[b].stake - lo).abs())
                    });
                    let travels: Vec<Direction> = r.travels().collect();
                    let travel = *rng.pick(&travels);
                    let stake = rng.range(lo, hi);
                    let base = base_node
                        .map(|b| (sim.nodes[b].lon, sim.nodes[b].lat))
                        .or_else(|| sim.point(net, road, travel, lo))
                        .unwrap_or((0.0, 0.0));
                    let idx = units.len();
                    let day_shift = rng.chance(0.3);
                    units.push(Unit {
                        id: format!("P-{:02}", idx + 1),
                        road,
                        lo,
                        hi,
                        base,
                        day_shift,
                        silent_off_duty: rng.chance(0.5),
                        interval_ms: rng.int(10_000, 30_000),
                        next_report: 0,
                        rng: Rng::derive(cfg.seed, TAG_PATROL, 1 + idx as u64),
                        plan: vec![Seg {
                            t0: cfg.start_ms,
                            t1: cfg.start_ms,
                            kind: SegKind::Park(Place::Road {
                                road,
                                travel,
                                stake,
                            }),
                            status: UnitStatus::Available,
                        }],
                    });
                    truth.patrol_units.push(PatrolUnitTruth {
                        unit_id: units[idx].id.clone(),
                        road_id: r.id.to_string(),
                        section: format!(
                            "{}–{}",
                            roadwatch_core::roads::Stake(lo),
                            roadwatch_core::roads::Stake(hi)
                        ),
                        shift: if day_shift { "day" } else { "24h" },
                    });
                }
            }
        }
        for u in &mut units {
            u.next_report = cfg.start_ms + rng.int(0, u.interval_ms - 1);
        }
        Patrol {
            units,
            answers_rng: Rng::derive(cfg.seed, TAG_ANSWERS, 0),
            utc_offset_s: cfg.utc_offset_s,
            accept_share: cfg.accept_share,
            decline_share: cfg.decline_share,
            answered: std::collections::BTreeSet::new(),
        }
    }

    pub fn unit_id(&self, i: usize) -> &str {
        &self.units[i].id
    }

    fn off_hours(&self, t: i64) -> bool {
        let h = (t + i64::from(self.utc_offset_s) * 1000).rem_euclid(86_400_000) / 3_600_000;
        !(7..23).contains(&h)
    }

    /// Position reports in `[t0, t1)`.
    pub fn reports(
        &mut self,
        net: &RoadNetwork,
        sim: &SimNetwork,
        t0: i64,
        t1: i64,
        out: &mut Vec<(i64, PatrolFix)>,
    ) {
        for i in 0..self.units.len() {
            while self.units[i].next_report < t1 {
                let t = self.units[i].next_report;
                self.extend_plan(net, sim, i, t);
                let seg = *self.seg_at(i, t);
                let off = seg.status == UnitStatus::OffDuty;
                let (lon, lat) = self.place_at(net, sim, &seg, t);
                let u = &mut self.units[i];
                let step = if off { 60_000 } else { u.interval_ms };
                u.next_report = t + step + u.rng.int(-1_000, 1_000);
                if t < t0 || (off && u.silent_off_duty) {
                    continue;
                }
                let speed = seg_speed_kmh(&seg);
                let noise = 0.00003; // ~3 m of GPS scatter
                out.push((
                    t,
                    PatrolFix {
                        unit: i,
                        lon: round6(lon + u.rng.normal(0.0, noise)),
                        lat: round6(lat + u.rng.normal(0.0, noise)),
                        status: seg.status,
                        speed_kmh: if speed > 0.0 {
                            ((speed + u.rng.normal(0.0, 3.0)).max(0.0) * 10.0).round() / 10.0
                        } else {
                            0.0
                        },
                    },
                ));
            }
            // Forget segments long past: the plan stays short on multi-day runs.
            let keep_from = t0 - 3_600_000;
            let plan = &mut self.units[i].plan;
            let drop = plan.iter().take_while(|s| s.t1 < keep_from).count();
            if drop > 0 && drop < plan.len() {
                plan.drain(..drop);
            }
        }
    }

    fn seg_at(&self, i: usize, t: i64) -> &Seg {
        let plan = &self.units[i].plan;
        let k = plan.partition_point(|s| s.t1 <= t).min(plan.len() - 1);
        &plan[k]
    }

    fn place_at(&self, net: &RoadNetwork, sim: &SimNetwork, seg: &Seg, t: i64) -> (f64, f64) {
        let frac = if seg.t1 > seg.t0 {
            ((t - seg.t0) as f64 / (seg.t1 - seg.t0) as f64).clamp(0.0, 1.0)
        } else {
            1.0
        };
        match seg.kind {
            SegKind::Drive {
                road,
                travel,
                from,
                to,
                ..
            } => {
                let stake = from + (to - from) * frac;
                sim.point(net, road, travel, stake).unwrap_or((0.0, 0.0))
            }
            SegKind::Park(Place::Road {
                road,
                travel,
                stake,
            }) => {
                // On the shoulder.
                match sim.frame(net, road, travel, stake, t) {
                    Some(f) => f.offset(f.half_width_m - 1.5),
                    None => sim.point(net, road, travel, stake).unwrap_or((0.0, 0.0)),
                }
            }
            SegKind::Park(Place::At { lon, lat }) => (lon, lat),
            SegKind::Straight { from, to } => (
                from.0 + (to.0 - from.0) * frac,
                from.1 + (to.1 - from.1) * frac,
            ),
        }
    }

    /// Where a segment ends.
    fn end_place(net: &RoadNetwork, sim: &SimNetwork, seg: &Seg) -> Place {
        match seg.kind {
            SegKind::Drive {
                road, travel, to, ..
            } => Place::Road {
                road,
                travel,
                stake: to,
            },
            SegKind::Park(p) => p,
            SegKind::Straight { to, .. } => {
                // Back on the network at the nearest carriageway when there is one.
                match net.locate_within(to.0, to.1, EventTime::from_ms(0), 500.0) {
                    Some(pos) => match sim.road_index(&pos.road_id) {
                        Some(road) => Place::Road {
                            road,
                            travel: if pos.direction == Direction::Down {
                                Direction::Down
                            } else {
                                Direction::Up
                            },
                            stake: pos.stake_m,
                        },
                        None => Place::At {
                            lon: to.0,
                            lat: to.1,
                        },
                    },
                    None => Place::At {
                        lon: to.0,
                        lat: to.1,
                    },
                }
            }
        }
    }

    /// Appends patrol laps (or the night at the base) until the plan covers `t`.
    fn extend_plan(&mut self, net: &RoadNetwork, sim: &SimNetwork, i: usize, t: i64) {
        let mut guard = 0;
        while self.units[i].plan.last().is_some_and(|s| s.t1 <= t) && guard < 64 {
            guard += 1;
            let last = *self.units[i].plan.last().expect("plan is never empty");
            let now = last.t1;
            let place = Self::end_place(net, sim, &last);
            let u = &self.units[i];
            if u.day_shift && self.off_hours(now) {
                // Drive to the base and stay off duty until 07:00.
                let base = Place::At {
                    lon: u.base.0,
                    lat: u.base.1,
                };
                let mut segs = Vec::new();
                if place != base && last.status != UnitStatus::OffDuty {
                    let from = self.place_coords(net, sim, place);
                    let d = distance_m([from.0, from.1], [u.base.0, u.base.1]);
                    segs.push(Seg {
                        t0: now,
                        t1: now + (d / 20.0 * 1000.0) as i64 + 1_000,
                        kind: SegKind::Straight { from, to: u.base },
                        status: UnitStatus::OffDuty,
                    });
                }
                let from = segs.last().map_or(now, |s: &Seg| s.t1);
                let local = (from + i64::from(self.utc_offset_s) * 1000).rem_euclid(86_400_000);
                let until = if local >= 23 * 3_600_000 {
                    from - local + 86_400_000 + 7 * 3_600_000
                } else {
                    from - local + 7 * 3_600_000
                };
                segs.push(Seg {
                    t0: from,
                    t1: until.max(from + 60_000),
                    kind: SegKind::Park(base),
                    status: UnitStatus::OffDuty,
                });
                self.units[i].plan.extend(segs);
                continue;
            }
            let lap = self.lap(net, sim, i, place, now);
            self.units[i].plan.extend(lap);
        }
    }

    fn place_coords(&self, net: &RoadNetwork, sim: &SimNetwork, p: Place) -> (f64, f64) {
        match p {
            Place::Road {
                road,
                travel,
                stake,
            } => sim.point(net, road, travel, stake).unwrap_or((0.0, 0.0)),
            Place::At { lon, lat } => (lon, lat),
        }
    }

    /// One stretch of patrol from `place`: to the section end ahead (back into the
    /// section first if outside it), then turn at the interchange; sometimes a stop.
    fn lap(
        &mut self,
        net: &RoadNetwork,
        sim: &SimNetwork,
        i: usize,
        place: Place,
        now: i64,
    ) -> Vec<Seg> {
        let (home, lo, hi) = (self.units[i].road, self.units[i].lo, self.units[i].hi);
        let speed = self.units[i].rng.range(70.0, 100.0) / 3.6;
        let mut segs = Vec::new();
        match place {
            Place::At { lon, lat } => {
                // Back from the base (or off the network) to the section start.
                let travel = sim.roads[home].travels().next().unwrap_or(Direction::Up);
                let to = sim.point(net, home, travel, lo).unwrap_or((lon, lat));
                let d = distance_m([lon, lat], [to.0, to.1]);
                segs.push(Seg {
                    t0: now,
                    t1: now + (d / speed * 1000.0) as i64 + 1_000,
                    kind: SegKind::Straight {
                        from: (lon, lat),
                        to,
                    },
                    status: UnitStatus::Available,
                });
                segs.push(Seg {
                    t0: segs[0].t1,
                    t1: segs[0].t1 + 1_000,
                    kind: SegKind::Park(Place::Road {
                        road: home,
                        travel,
                        stake: lo,
                    }),
                    status: UnitStatus::Available,
                });
            }
            Place::Road {
                road,
                travel,
                stake,
            } => {
                let inside = road == home && stake >= lo - 1.0 && stake <= hi + 1.0;
                if !inside {
                    let target = (home, Direction::Up, lo);
                    match sim.route_between_points((road, travel, stake), target) {
                        Some(route) => append_route(
                            &mut segs,
                            sim,
                            &route.legs,
                            now,
                            speed,
                            UnitStatus::Available,
                        ),
                        None => {
                            let from = sim.point(net, road, travel, stake).unwrap_or((0.0, 0.0));
                            let to = sim.point(net, home, Direction::Up, lo).unwrap_or(from);
                            let d = distance_m([from.0, from.1], [to.0, to.1]);
                            segs.push(Seg {
                                t0: now,
                                t1: now + (d / speed * 1000.0) as i64 + 1_000,
                                kind: SegKind::Straight { from, to },
                                status: UnitStatus::Available,
                            });
                        }
                    }
                    if segs.is_empty() {
                        // Already there: a short pause keeps the plan moving forward.
                        segs.push(Seg {
                            t0: now,
                            t1: now + 60_000,
                            kind: SegKind::Park(place),
                            status: UnitStatus::Available,
                        });
                    }
                    return segs;
                }
                let end = if travel == Direction::Down { lo } else { hi };
                let rng = &mut self.units[i].rng;
                let stop_at = if rng.chance(0.3) {
                    Some(stake + (end - stake) * rng.range(0.2, 0.8))
                } else {
                    None
                };
                let mut t = now;
                let mut pos = stake;
                if let Some(s) = stop_at {
                    let m = sim.roads[road].drive_m(travel, pos, s);
                    let t1 = t + (m / speed * 1000.0) as i64 + 1;
                    segs.push(drive_seg(
                        t,
                        t1,
                        road,
                        travel,
                        pos,
                        s,
                        m,
                        UnitStatus::Available,
                    ));
                    t = t1;
                    pos = s;
                    let t1 = t + self.units[i].rng.int(5 * 60_000, 15 * 60_000);
                    segs.push(Seg {
                        t0: t,
                        t1,
                        kind: SegKind::Park(Place::Road {
                            road,
                            travel,
                            stake: pos,
                        }),
                        status: UnitStatus::Available,
                    });
                    t = t1;
                }
                let m = sim.roads[road].drive_m(travel, pos, end);
                let t1 = t + (m / speed * 1000.0) as i64 + 1;
                segs.push(drive_seg(
                    t,
                    t1,
                    road,
                    travel,
                    pos,
                    end,
                    m,
                    UnitStatus::Available,
                ));
                // Turning at the interchange: off, round and back on the other side.
                let other = if travel == Direction::Down {
                    Direction::Up
                } else {
                    Direction::Down
                };
                let other = if sim.roads[road].line_dir(other).is_some() {
                    other
                } else {
                    travel
                };
                segs.push(Seg {
                    t0: t1,
                    t1: t1 + self.units[i].rng.int(60_000, 120_000),
                    kind: SegKind::Park(Place::Road {
                        road,
                        travel: other,
                        stake: end,
                    }),
                    status: UnitStatus::Available,
                });
            }
        }
        segs
    }

    /// A dispatch reached the unit's app. Returns the acks to emit; `now_ms` is the
    /// earliest event time still to be emitted (answers cannot travel back in time).
    pub fn on_alert(
        &mut self,
        net: &RoadNetwork,
        sim: &SimNetwork,
        alert: &Alert,
        alert_ms: i64,
        now_ms: i64,
        truth: &mut GroundTruth,
    ) -> Vec<AckOut> {
        let mut acks = Vec::new();
        let Some(dispatch) = &alert.dispatch else {
            return acks;
        };
        if !matches!(
            alert.status,
            AlertStatus::New | AlertStatus::Update | AlertStatus::Redispatch
        ) {
            return acks;
        }
        let Some(i) = self.units.iter().position(|u| u.id == dispatch.unit_id) else {
            return acks;
        };
        if !self
            .answered
            .insert((alert.alert_id.clone(), i, dispatch.attempt))
        {
            return acks;
        }
        let received = alert_ms.max(now_ms);
        self.extend_plan(net, sim, i, received);
        let seg = *self.seg_at(i, received);
        let rng = &mut self.answers_rng;
        let roll = rng.f64();
        let busy = seg.status != UnitStatus::Available;
        let decision = if busy {
            // Already on a job or off duty: say so, or ignore the app.
            if rng.chance(0.6) {
                Decision::Decline
            } else {
                Decision::Silent
            }
        } else if roll < self.accept_share {
            Decision::Accept
        } else if roll < self.accept_share + self.decline_share {
            Decision::Decline
        } else {
            Decision::Silent
        };
        let mut answer = DispatchAnswer {
            alert_id: alert.alert_id.clone(),
            unit_id: self.units[i].id.clone(),
            attempt: dispatch.attempt,
            alert_kind: alert.kind.as_str(),
            received_ms: received,
            decision: "silent",
            answer_ms: None,
            arrived_ms: None,
            resolved_ms: None,
            route_m: None,
        };
        match decision {
            Decision::Decline => {
                let t = received + rng.int(5_000, 30_000);
                answer.decision = "declined";
                answer.answer_ms = Some(t);
                acks.push(AckOut {
                    ts: t,
                    alert_id: alert.alert_id.clone(),
                    unit: i,
                    status: AckStatus::Declined,
                    outcome: None,
                });
            }
            Decision::Accept => {
                // Most crews answer within the minute; some are slower than the timeout.
                let delay = if rng.chance(0.9) {
                    rng.int(5_000, 45_000)
                } else {
                    rng.int(50_000, 90_000)
                };
                let t_ack = received + delay;
                let speed = rng.range(25.0, 30.5);
                let on_scene = rng.int(5 * 60_000, 25 * 60_000);
                let send_arrived = rng.chance(0.9);
                let send_resolved = rng.chance(0.85);
                answer.decision = "accepted";
                answer.answer_ms = Some(t_ack);
                acks.push(AckOut {
                    ts: t_ack,
                    alert_id: alert.alert_id.clone(),
                    unit: i,
                    status: AckStatus::Accepted,
                    outcome: None,
                });
                let (arrive, metres) = self.respond(net, sim, i, alert, t_ack, speed);
                let done = arrive + on_scene;
                // The job: parked on scene, busy, then back to patrol.
                let scene = Self::end_place(
                    net,
                    sim,
                    self.units[i].plan.last().expect("plan is never empty"),
                );
                self.units[i].plan.push(Seg {
                    t0: arrive,
                    t1: done,
                    kind: SegKind::Park(scene),
                    status: UnitStatus::Busy,
                });
                answer.route_m = Some(metres.round());
                answer.arrived_ms = Some(arrive);
                answer.resolved_ms = Some(done);
                if send_arrived {
                    acks.push(AckOut {
                        ts: arrive,
                        alert_id: alert.alert_id.clone(),
                        unit: i,
                        status: AckStatus::Arrived,
                        outcome: None,
                    });
                }
                if send_resolved {
                    // The crew says what it found there (DOMAIN.md: every alert ends with
                    // an outcome), as the ground truth has it when it arrived.
                    acks.push(AckOut {
                        ts: done,
                        alert_id: alert.alert_id.clone(),
                        unit: i,
                        status: AckStatus::Resolved,
                        outcome: Some(truth.on_scene(alert, alert_ms, arrive)),
                    });
                }
            }
            Decision::Silent => {}
        }
        truth.dispatch_answers.push(answer);
        acks
    }

    /// Replaces the plan from `t` with the drive to the alert; returns arrival time and
    /// metres driven.
    fn respond(
        &mut self,
        net: &RoadNetwork,
        sim: &SimNetwork,
        i: usize,
        alert: &Alert,
        t: i64,
        speed: f64,
    ) -> (i64, f64) {
        self.extend_plan(net, sim, i, t);
        let seg = *self.seg_at(i, t);
        let (lon, lat) = self.place_at(net, sim, &seg, t);
        let here = match seg.kind {
            SegKind::Drive {
                road,
                travel,
                from,
                to,
                ..
            } => {
                let frac = if seg.t1 > seg.t0 {
                    ((t - seg.t0) as f64 / (seg.t1 - seg.t0) as f64).clamp(0.0, 1.0)
                } else {
                    1.0
                };
                Place::Road {
                    road,
                    travel,
                    stake: from + (to - from) * frac,
                }
            }
            SegKind::Park(p) => p,
            SegKind::Straight { .. } => Place::At { lon, lat },
        };
        // Cut the plan at `t`.
        let plan = &mut self.units[i].plan;
        let k = plan.partition_point(|s| s.t1 <= t).min(plan.len() - 1);
        plan.truncate(k + 1);
        if let Some(last) = plan.last_mut() {
            if last.t1 > t {
                let cut = Seg {
                    t0: last.t0,
                    t1: t,
                    kind: match last.kind {
                        SegKind::Drive {
                            road, travel, from, ..
                        } => match here {
                            Place::Road { stake, .. } => SegKind::Drive {
                                road,
                                travel,
                                from,
                                to: stake,
                                metres: sim.roads[road].drive_m(travel, from, stake),
                            },
                            Place::At { .. } => last.kind,
                        },
                        SegKind::Straight { from, .. } => SegKind::Straight {
                            from,
                            to: (lon, lat),
                        },
                        other => other,
                    },
                    status: last.status,
                };
                *last = cut;
            }
        }
        let target_road = alert
            .location
            .road_id
            .as_deref()
            .and_then(|r| sim.road_index(r));
        let target_travel = match alert.location.direction.as_deref() {
            Some("down") => Direction::Down,
            _ => Direction::Up,
        };
        let route = match (here, target_road, alert.location.stake_m) {
            (
                Place::Road {
                    road,
                    travel,
                    stake,
                },
                Some(tr),
                Some(ts),
            ) => sim.route_between_points((road, travel, stake), (tr, target_travel, ts as f64)),
            _ => None,
        };
        let mut segs = Vec::new();
        let metres = match route {
            Some(route) => {
                append_route(&mut segs, sim, &route.legs, t, speed, UnitStatus::Busy);
                route.length_m
            }
            None => {
                let to = (alert.location.lon, alert.location.lat);
                let d = distance_m([lon, lat], [to.0, to.1]) * 1.3;
                segs.push(Seg {
                    t0: t,
                    t1: t + (d / speed * 1000.0) as i64 + 1_000,
                    kind: SegKind::Straight {
                        from: (lon, lat),
                        to,
                    },
                    status: UnitStatus::Busy,
                });
                d
            }
        };
        let arrive = segs.last().map_or(t + 1_000, |s| s.t1);
        if segs.is_empty() {
            segs.push(Seg {
                t0: t,
                t1: arrive,
                kind: SegKind::Park(here),
                status: UnitStatus::Busy,
            });
        }
        self.units[i].plan.extend(segs);
        (arrive, metres)
    }
}

#[allow(clippy::too_many_arguments)]
fn drive_seg(
    t0: i64,
    t1: i64,
    road: usize,
    travel: Direction,
    from: f64,
    to: f64,
    metres: f64,
    status: UnitStatus,
) -> Seg {
    Seg {
        t0,
        t1,
        kind: SegKind::Drive {
            road,
            travel,
            from,
            to,
            metres,
        },
        status,
    }
}

/// Drive segments for route legs from `t` at `speed`; hub ramps and turns take time.
fn append_route(
    segs: &mut Vec<Seg>,
    sim: &SimNetwork,
    legs: &[super::network::Leg],
    t: i64,
    speed: f64,
    status: UnitStatus,
) {
    let mut t = t;
    for (k, leg) in legs.iter().enumerate() {
        let m = sim.roads[leg.road].drive_m(leg.travel, leg.from, leg.to);
        // A turn at an interchange (or a hub ramp) between legs.
        let extra_m = leg.ramp_m + if k > 0 { 600.0 } else { 0.0 };
        let t0 = t + (extra_m / speed * 1000.0) as i64;
        let t1 = t0 + (m / speed * 1000.0) as i64 + 1;
        if t0 > t {
            segs.push(Seg {
                t0: t,
                t1: t0,
                kind: SegKind::Park(Place::Road {
                    road: leg.road,
                    travel: leg.travel,
                    stake: leg.from,
                }),
                status,
            });
        }
        segs.push(drive_seg(
            t0, t1, leg.road, leg.travel, leg.from, leg.to, m, status,
        ));
        t = t1;
    }
}

fn seg_speed_kmh(seg: &Seg) -> f64 {
    let secs = (seg.t1 - seg.t0) as f64 / 1000.0;
    if secs <= 0.0 {
        return 0.0;
    }
    match seg.kind {
        SegKind::Drive { metres, .. } => metres / secs * 3.6,
        SegKind::Straight { from, to } => distance_m([from.0, from.1], [to.0, to.1]) / secs * 3.6,
        SegKind::Park(_) => 0.0,
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
