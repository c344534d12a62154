//! Flat dispatch (扁平化指挥, DOMAIN.md "Flat dispatch"): every alert goes straight to the
//! patrol unit best placed to act, by road-aware ETA, with no dispatcher in between; acks
//! drive re-dispatch and escalation.
//!
//! - Candidates: last position ≤ `max_position_age` old, reported `available`, holding no
//!   assignment. Ranked by route metres (eta.rs) / `speed_mps`; ties to the smaller id.
//! - The search visits units by increasing straight-line distance and stops once that
//!   distance alone exceeds the best route found: a route is never shorter than the
//!   straight line between the snapped points, so the choice is exact without computing
//!   a route for every unit (an oracle property test checks this).
//! - Pedestrian alerts go to the incident, weather alerts to the station's stretch,
//!   ride-hailing alerts to the interception point ahead of the vehicle
//!   (`details.intercept`) when a unit can be there first, else to the sighting.
//! - No `accepted` within `ack_timeout`, or a `declined`, re-dispatches to the next best
//!   unit (`redispatch`, attempt + 1, the refusing unit excluded); after `max_attempts`,
//!   or with no candidate, the alert is `escalated` with `dispatch: null`.
//! - A unit is busy from assignment until `resolved`, or `busy_after_arrived` after
//!   `arrived`. Acks from units not assigned to the alert are counted and ignored.
//! - An ack for an alert not held here (another instance's, with several instances in
//!   the group, or one raised before the state window) is counted as unknown, but its
//!   unit's answer still holds: `accepted`/`arrived` book the unit for
//!   `busy_after_arrived` (so it is not sent elsewhere meanwhile), and a unit that was
//!   assigned one of ours without accepting it yet is taken off ours at once
//!   (`redispatch`, no wait for the time-out); `declined`/`resolved` end the booking.
//! - The command center may send a unit of its choice (`assign`, any unit not
//!   `off_duty`): a `redispatch` with `dispatch.assigned_by`; a unit taken from another
//!   of our alerts has that one re-dispatched. The ack time-out applies as to any unit.
mod eta;
mod registry;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use eta::{route, OnRoad, Place, Route, RouteKind};
pub use registry::{Registry, Unit};

use crate::model::{
    AckStatus, Alert, AlertDispatch, AlertStatus, DispatchAck, EventTime, EventTimestamp,
    PatrolPosition, UnitStatus,
};
use crate::roads::{Direction, RoadNetwork};
use crate::settings::{DispatchSettings, OutputSettings};

/// Counters for metrics (`roadwatch_dispatch_total{outcome}`) and reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchStats {
    pub assigned: u64,
    pub redispatched: u64,
    pub escalated: u64,
    pub ack_timeouts: u64,
    pub acks_accepted: u64,
    pub acks_declined: u64,
    pub acks_arrived: u64,
    pub acks_resolved: u64,
    /// Acks naming an alert with no open assignment.
    pub acks_unknown_alert: u64,
    /// Acks from a unit that does not hold the alert.
    pub acks_wrong_unit: u64,
    /// Units booked by an ack for an alert not held here.
    pub booked_elsewhere: u64,
    /// Our unaccepted assignments re-dispatched because their unit accepted another alert.
    pub preempted: u64,
    /// Units sent by an operator (`assign`).
    pub operator_assigned: u64,
}

#[derive(Debug, Clone)]
struct Assignment {
    /// The last document sent for this alert, re-sent on re-dispatch and escalation.
    alert: Alert,
    target: Place,
    unit: Option<u32>,
    attempt: u32,
    assigned_ms: EventTime,
    accepted: bool,
    arrived_ms: Option<EventTime>,
    cleared_ms: Option<EventTime>,
    excluded: BTreeSet<u32>,
}

pub struct Dispatcher {
    settings: DispatchSettings,
    output: OutputSettings,
    registry: Registry,
    /// Open assignments by alert id (ordered, so timers fire deterministically).
    assignments: BTreeMap<String, Assignment>,
    /// Units busy on an alert not held here, known only from their acks: until when, by
    /// unit index. The alert is the unit's `assignment`.
    bookings: BTreeMap<u32, EventTime>,
    stats: DispatchStats,
    snap_m: f64,
}

impl Dispatcher {
    pub fn new(settings: DispatchSettings, output: OutputSettings, net: &RoadNetwork) -> Self {
        let lat = reference_latitude(net);
        let snap_m = net.max_snap_m();
        Dispatcher {
            settings,
            output,
            registry: Registry::new(lat, snap_m),
            assignments: BTreeMap::new(),
            bookings: BTreeMap::new(),
            stats: DispatchStats::default(),
            snap_m,
        }
    }

    pub fn stats(&self) -> &DispatchStats {
        &self.stats
    }

    pub fn units(&self) -> usize {
        self.registry.len()
    }

    pub fn open_assignments(&self) -> usize {
        self.assignments.len()
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn on_position(&mut self, p: &PatrolPosition, net: &RoadNetwork) {
        self.registry.on_position(p, net);
    }

    /// Whether a unit has accepted (or arrived at) this alert and still holds it.
    pub fn accepted(&self, alert_id: &str) -> bool {
        self.assignments.get(alert_id).is_some_and(|a| a.accepted)
    }

    /// Whether a unit is assigned to this alert.
    pub fn holds(&self, alert_id: &str) -> bool {
        self.assignments.contains_key(alert_id)
    }

    /// The alert was ended by a unit or an operator: its unit is free.
    pub fn close(&mut self, alert_id: &str) {
        if let Some(a) = self.assignments.remove(alert_id) {
            if let Some(u) = a.unit {
                self.release(u);
            }
        }
    }

    /// An operator sends `unit_id` to `alert` (its last document), whatever the ranking
    /// says. False when the unit is unknown or off duty (nothing changes).
    pub fn assign_to(
        &mut self,
        alert: Alert,
        unit_id: &str,
        operator_id: &str,
        now: EventTime,
        net: &RoadNetwork,
        out: &mut Vec<Alert>,
    ) -> bool {
        let Some(unit) = self.registry.index_of(unit_id) else {
            return false;
        };
        if self.registry.get(unit).status == UnitStatus::OffDuty {
            return false;
        }
        let id = alert.alert_id.clone();
        // Taken from another of our alerts: that one goes to the next best unit now.
        let held = self.registry.get(unit).assignment.clone();
        if let Some(other) = held.filter(|o| *o != id) {
            if let Some(a) = self.assignments.remove(&other) {
                if a.unit == Some(unit) {
                    self.redispatch(a, now, net, out);
                } else {
                    self.assignments.insert(other, a);
                }
            }
        }
        // The operator's word outweighs what another instance's ack told us.
        self.bookings.remove(&unit);
        let previous = self.assignments.remove(&id);
        if let Some(u) = previous.as_ref().and_then(|p| p.unit) {
            if u != unit {
                self.release(u);
            }
        }
        let (target, attempt, mut excluded) = match previous {
            Some(p) => (p.target, p.attempt + 1, p.excluded),
            None => (self.target_for(&alert), 1, BTreeSet::new()),
        };
        excluded.remove(&unit);
        let r = route(net, &self.settings, &self.registry.get(unit).place, &target);
        let mut a = Assignment {
            alert,
            target,
            unit: None,
            attempt,
            assigned_ms: now,
            accepted: false,
            arrived_ms: None,
            cleared_ms: None,
            excluded,
        };
        self.put_on(&mut a, unit, &r, Some(operator_id));
        a.alert.status = AlertStatus::Redispatch;
        a.alert.event_ts = EventTimestamp::new(now, self.output.utc_offset);
        self.stats.operator_assigned += 1;
        out.push(a.alert.clone());
        self.assignments.insert(id, a);
        true
    }

    /// Fills in `dispatch` (and possibly `status`) of an alert from a detector, and
    /// appends the document(s) to send.
    pub fn on_alert(
        &mut self,
        mut alert: Alert,
        now: EventTime,
        net: &RoadNetwork,
        out: &mut Vec<Alert>,
    ) {
        let existing = self.assignments.remove(&alert.alert_id);
        match (alert.status, existing) {
            (AlertStatus::Cleared, Some(mut a)) => {
                if let Some(u) = a.unit {
                    alert.dispatch = a.alert.dispatch.clone();
                    a.alert = alert.clone();
                    if a.accepted {
                        // The officer is on the way and hears it is over; the unit stays
                        // busy until it reports, or is released by the timer.
                        a.cleared_ms = Some(now);
                        self.assignments.insert(alert.alert_id.clone(), a);
                    } else {
                        self.release(u);
                    }
                }
                out.push(alert);
            }
            (AlertStatus::Cleared, None) => out.push(alert),
            (_, Some(mut a)) if a.unit.is_some() => {
                // An update of an assigned alert goes to the same unit (also when it
                // reopens an incident the unit was still on after its clear).
                alert.dispatch = a.alert.dispatch.clone();
                a.cleared_ms = None;
                a.alert = alert.clone();
                self.assignments.insert(alert.alert_id.clone(), a);
                out.push(alert);
            }
            (_, previous) => {
                let target = self.target_for(&alert);
                let attempt = previous.map_or(1, |p| p.attempt + 1);
                let mut a = Assignment {
                    alert,
                    target,
                    unit: None,
                    attempt,
                    assigned_ms: now,
                    accepted: false,
                    arrived_ms: None,
                    cleared_ms: None,
                    excluded: BTreeSet::new(),
                };
                self.assign(&mut a, now, net);
                out.push(a.alert.clone());
                if a.unit.is_some() {
                    self.assignments.insert(a.alert.alert_id.clone(), a);
                }
            }
        }
    }

    /// Applies an ack; returns its status when it came from the unit holding one of our
    /// alerts (for the alert's timeline and its end), `None` otherwise.
    pub fn on_ack(
        &mut self,
        ack: &DispatchAck,
        now: EventTime,
        net: &RoadNetwork,
        out: &mut Vec<Alert>,
    ) -> Option<AckStatus> {
        let Some(mut a) = self.assignments.remove(&ack.alert_id) else {
            self.stats.acks_unknown_alert += 1;
            self.on_ack_elsewhere(ack, now, net, out);
            return None;
        };
        let unit = self.registry.index_of(&ack.unit_id);
        if unit.is_none() || a.unit != unit {
            self.stats.acks_wrong_unit += 1;
            self.assignments.insert(ack.alert_id.clone(), a);
            return None;
        }
        let unit = unit.expect("checked above");
        match ack.status {
            AckStatus::Accepted => {
                self.stats.acks_accepted += 1;
                a.accepted = true;
            }
            AckStatus::Arrived => {
                self.stats.acks_arrived += 1;
                a.accepted = true;
                a.arrived_ms.get_or_insert(ack.ts);
            }
            AckStatus::Resolved => {
                self.stats.acks_resolved += 1;
                self.release(unit);
                return Some(ack.status);
            }
            AckStatus::Declined => {
                self.stats.acks_declined += 1;
                if a.arrived_ms.is_some() || a.cleared_ms.is_some() {
                    // Declining after arriving, or once the alert is over, changes
                    // nothing on the road: just free the unit.
                    self.release(unit);
                    return Some(ack.status);
                }
                self.redispatch(a, now, net, out);
                return Some(ack.status);
            }
        }
        self.assignments.insert(ack.alert_id.clone(), a);
        Some(ack.status)
    }

    /// An ack for an alert not held here: the unit's answer still says where it is going.
    fn on_ack_elsewhere(
        &mut self,
        ack: &DispatchAck,
        now: EventTime,
        net: &RoadNetwork,
        out: &mut Vec<Alert>,
    ) {
        let Some(unit) = self.registry.index_of(&ack.unit_id) else {
            return;
        };
        match ack.status {
            AckStatus::Accepted | AckStatus::Arrived => {
                let held = self.registry.get(unit).assignment.clone();
                if let Some(ours) = held.filter(|id| self.assignments.contains_key(id)) {
                    let a = self.assignments.remove(&ours).expect("checked above");
                    if a.accepted || a.cleared_ms.is_some() {
                        // On its way to ours too, by its own word: the acks that follow
                        // settle it.
                        self.assignments.insert(ours, a);
                        return;
                    }
                    // The unit went to the other incident: ours goes to the next best
                    // unit now rather than after the ack time-out.
                    self.stats.preempted += 1;
                    self.redispatch(a, now, net, out);
                }
                let until = now + self.settings.busy_after_arrived_ms;
                if self.bookings.insert(unit, until).is_none() {
                    self.stats.booked_elsewhere += 1;
                }
                self.registry.get_mut(unit).assignment = Some(ack.alert_id.clone());
            }
            AckStatus::Declined | AckStatus::Resolved => {
                let booked_for_it = self.bookings.contains_key(&unit)
                    && self.registry.get(unit).assignment.as_deref() == Some(&ack.alert_id);
                if booked_for_it {
                    self.bookings.remove(&unit);
                    self.release(unit);
                }
            }
        }
    }

    /// The earliest ack time-out or end of a busy period.
    pub fn next_deadline(&self) -> Option<EventTime> {
        let s = &self.settings;
        let assignments = self.assignments.values().filter_map(|a| {
            if !a.accepted && a.cleared_ms.is_none() {
                Some(a.assigned_ms + s.ack_timeout_ms)
            } else {
                a.arrived_ms
                    .or(a.cleared_ms)
                    .map(|t| t + s.busy_after_arrived_ms)
            }
        });
        assignments.chain(self.bookings.values().copied()).min()
    }

    /// Event time reached `now`: ack time-outs re-dispatch, busy periods end.
    pub fn on_time(&mut self, now: EventTime, net: &RoadNetwork, out: &mut Vec<Alert>) {
        let ended: Vec<u32> = self
            .bookings
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(u, _)| *u)
            .collect();
        for unit in ended {
            self.bookings.remove(&unit);
            self.release(unit);
        }
        let s = &self.settings;
        let mut due: Vec<(EventTime, String, bool)> = Vec::new();
        for (id, a) in &self.assignments {
            if !a.accepted && a.cleared_ms.is_none() {
                let deadline = a.assigned_ms + s.ack_timeout_ms;
                if deadline <= now {
                    due.push((deadline, id.clone(), true));
                }
            } else if let Some(t) = a.arrived_ms.or(a.cleared_ms) {
                let release = t + s.busy_after_arrived_ms;
                if release <= now {
                    due.push((release, id.clone(), false));
                }
            }
        }
        due.sort();
        for (deadline, id, timed_out) in due {
            let Some(a) = self.assignments.remove(&id) else {
                continue;
            };
            if timed_out {
                self.stats.ack_timeouts += 1;
                self.redispatch(a, deadline, net, out);
            } else if let Some(u) = a.unit {
                self.release(u);
            }
        }
    }

    fn release(&mut self, unit: u32) {
        self.registry.get_mut(unit).assignment = None;
    }

    fn redispatch(
        &mut self,
        mut a: Assignment,
        at: EventTime,
        net: &RoadNetwork,
        out: &mut Vec<Alert>,
    ) {
        if let Some(u) = a.unit.take() {
            self.release(u);
            a.excluded.insert(u);
        }
        a.alert.event_ts = EventTimestamp::new(at, self.output.utc_offset);
        a.attempt += 1;
        if a.attempt > self.settings.max_attempts {
            self.escalate(&mut a);
        } else {
            a.assigned_ms = at;
            a.accepted = false;
            self.assign(&mut a, at, net);
            if a.unit.is_some() {
                a.alert.status = AlertStatus::Redispatch;
                self.stats.redispatched += 1;
            }
        }
        out.push(a.alert.clone());
        if a.unit.is_some() {
            self.assignments.insert(a.alert.alert_id.clone(), a);
        }
    }

    fn escalate(&mut self, a: &mut Assignment) {
        a.alert.status = AlertStatus::Escalated;
        a.alert.dispatch = None;
        a.unit = None;
        self.stats.escalated += 1;
    }

    /// Picks the unit for an assignment and fills in the alert, or escalates.
    fn assign(&mut self, a: &mut Assignment, now: EventTime, net: &RoadNetwork) {
        let mut target = a.target.clone();
        if let Some(intercept) = intercept_place(&a.alert, net) {
            // A unit ahead of the vehicle wins when it can be at the interception
            // point before the vehicle; otherwise the best unit goes to the sighting.
            let vehicle_s = intercept.1 / self.settings.intercept_vehicle_speed_mps;
            if let Some((_, r)) = self.choose(&intercept.0, &a.excluded, now, net) {
                if r.metres / self.settings.speed_mps < vehicle_s {
                    target = intercept.0;
                }
            }
        }
        match self.choose(&target, &a.excluded, now, net) {
            Some((unit, r)) => {
                self.put_on(a, unit, &r, None);
                self.stats.assigned += 1;
            }
            None => self.escalate(a),
        }
    }

    /// Books `unit` for the assignment and names it, with its ETA, in the alert;
    /// `assigned_by`: the operator who chose it, when the ranking did not.
    fn put_on(&mut self, a: &mut Assignment, unit: u32, r: &Route, assigned_by: Option<&str>) {
        self.registry.get_mut(unit).assignment = Some(a.alert.alert_id.clone());
        a.unit = Some(unit);
        a.alert.dispatch = Some(AlertDispatch {
            unit_id: self.registry.get(unit).unit_id.to_string(),
            eta_s: (r.metres / self.settings.speed_mps).round() as i64,
            route_m: r.metres.round() as i64,
            attempt: a.attempt,
            assigned_by: assigned_by.map(str::to_owned),
        });
    }

    /// The eligible unit with the shortest route to `target` (ties: smaller id).
    pub fn choose(
        &self,
        target: &Place,
        excluded: &BTreeSet<u32>,
        now: EventTime,
        net: &RoadNetwork,
    ) -> Option<(u32, Route)> {
        let at = self.registry.project(target.lon, target.lat);
        // The planar index is within ~2% of the true straight line near its reference
        // latitude, and both ends may sit up to `snap_m` off their centre lines.
        let slack = 2.0 * self.snap_m;
        let mut best: Option<(u32, Route)> = None;
        for (i, planar_m) in self.registry.nearest(at) {
            if let Some((_, b)) = &best {
                if planar_m * 0.98 - slack > b.metres {
                    break;
                }
            }
            let u = self.registry.get(i);
            if !self.eligible(u, i, excluded, now) {
                continue;
            }
            let r = route(net, &self.settings, &u.place, target);
            let better = match &best {
                None => true,
                Some((bi, b)) => {
                    r.metres < b.metres
                        || (r.metres == b.metres && u.unit_id < self.registry.get(*bi).unit_id)
                }
            };
            if better {
                best = Some((i, r));
            }
        }
        best
    }

    fn eligible(&self, u: &Unit, i: u32, excluded: &BTreeSet<u32>, now: EventTime) -> bool {
        now - u.ts <= self.settings.max_position_age_ms
            && u.status == UnitStatus::Available
            && u.assignment.is_none()
            && !excluded.contains(&i)
    }

    /// Where units go for an alert: its location, placed on the road when it has one.
    fn target_for(&self, alert: &Alert) -> Place {
        let loc = &alert.location;
        let road = match (&loc.road_id, &loc.direction, loc.stake_m) {
            (Some(road_id), Some(dir), Some(stake)) => {
                parse_direction(dir).map(|direction| OnRoad {
                    road_id: Arc::from(road_id.as_str()),
                    direction,
                    stake_m: stake as f64,
                })
            }
            _ => None,
        };
        Place {
            lon: loc.lon,
            lat: loc.lat,
            road,
        }
    }
}

fn parse_direction(s: &str) -> Option<Direction> {
    match s {
        "up" => Some(Direction::Up),
        "down" => Some(Direction::Down),
        "both" => Some(Direction::Both),
        _ => None,
    }
}

/// For ride-hailing alerts: the interception point the detector chose, as a place, with
/// the vehicle's distance to it.
fn intercept_place(alert: &Alert, net: &RoadNetwork) -> Option<(Place, f64)> {
    let i = alert.intercept.as_ref()?;
    let line = net.carriageway_at(&i.road_id, i.direction, i.stake_m)?;
    let (lon, lat) = net.point_at(line, i.stake_m)?;
    let place = Place {
        lon,
        lat,
        road: Some(OnRoad {
            road_id: i.road_id.clone(),
            direction: i.direction,
            stake_m: i.stake_m,
        }),
    };
    Some((place, i.distance_m))
}

/// The mean latitude of the network's vertices: the planar index is exact there.
fn reference_latitude(net: &RoadNetwork) -> f64 {
    let (sum, n) = net
        .lines()
        .iter()
        .flat_map(|l| l.coords().first())
        .fold((0.0, 0usize), |(s, n), c| (s + c[1], n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

#[cfg(test)]
mod tests;
