//! The engine: one synchronous, deterministic state machine over all input streams,
//! driven by event time (DOMAIN.md "Time"). Adapters (Kafka, replay, demo, benches) call
//! [`Engine::on_record`] for every decoded record and [`Engine::advance_to`] when input is
//! idle; both append finished alerts to the caller's buffer.
//!
//! Every document goes out through the lifecycle book ([`Book`], docs/LIFECYCLE.md),
//! which adds what the command center and the units did to the alert and how it ended.
//!
//! The clock is the largest `ts` seen and never moves back. Before a record is applied,
//! the clock advances to its `ts` and every timer due by then fires (incident clears,
//! state expiry), so the order of outputs depends only on the input order. Records more
//! than `allowed_lateness` behind the clock are counted and dropped.
mod clock;
mod stats;

use std::sync::Arc;

pub use clock::EventClock;
pub use stats::EngineStats;

use super::alert::AlertDraft;
use super::detect::pedestrian::PedestrianDetector;
use super::detect::ride_hailing::{PlateList, RideHailingDetector};
use super::detect::weather::WeatherDetector;
use super::dispatch::{DispatchStats, Dispatcher};
use super::lifecycle::{ActionResult, Book, LifecycleEvent, Step};
use super::model::{AckStatus, Action, Alert, ClosedBy, EventTime, OperatorAction, Record};
use super::roads::RoadNetwork;
use super::settings::EngineSettings;

const MAX_TIMER_STEPS: usize = 10_000;

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Accepted,
    /// Older than the clock minus the allowed lateness: counted and dropped.
    Late,
}

pub struct Engine {
    settings: EngineSettings,
    roads: Arc<RoadNetwork>,
    clock: EventClock,
    pedestrian: PedestrianDetector,
    weather: WeatherDetector,
    ride_hailing: RideHailingDetector,
    dispatcher: Dispatcher,
    book: Book,
    /// Reused between calls so the hot path does not allocate a buffer per record.
    drafts: Vec<AlertDraft>,
    /// Documents decided, on their way through the book to the caller.
    sent: Vec<Alert>,
    stats: EngineStats,
}

impl Engine {
    pub fn new(settings: EngineSettings, roads: Arc<RoadNetwork>) -> Self {
        let output = settings.output.clone();
        Engine {
            pedestrian: PedestrianDetector::new(settings.pedestrian.clone(), output.clone()),
            weather: WeatherDetector::new(settings.weather.clone(), output.clone()),
            ride_hailing: RideHailingDetector::new(settings.ride_hailing.clone(), output.clone()),
            book: Book::new(
                output.utc_offset,
                settings.lifecycle.unattended_close_ms,
                settings.dispatch.busy_after_arrived_ms,
            ),
            dispatcher: Dispatcher::new(settings.dispatch.clone(), output, &roads),
            clock: EventClock::default(),
            drafts: Vec::new(),
            sent: Vec::new(),
            stats: EngineStats::default(),
            settings,
            roads,
        }
    }

    pub fn roads(&self) -> &Arc<RoadNetwork> {
        &self.roads
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// The event clock (largest `ts` applied, or advanced to), if any record was seen.
    pub fn clock(&self) -> Option<EventTime> {
        self.clock.now()
    }

    pub fn stats(&self) -> EngineStats {
        let mut s = self.stats.clone();
        s.open_incidents = self.pedestrian.open_incidents();
        s.weather_stations = self.weather.stations();
        s.tracked_plates = self.ride_hailing.tracked_plates();
        s.evicted_plates = self.ride_hailing.evicted_plates();
        s.units = self.dispatcher.units();
        s.open_assignments = self.dispatcher.open_assignments();
        s.silent_weather_stations = self.weather.silent_stations();
        s.escalated_unacknowledged = self.book.escalated_unacknowledged();
        s
    }

    /// What the lifecycle did since the last call, for the adapter's metrics.
    pub fn take_lifecycle_events(&mut self) -> Vec<LifecycleEvent> {
        self.book.take_events()
    }

    pub fn dispatch_stats(&self) -> &DispatchStats {
        self.dispatcher.stats()
    }

    /// Replaces the watchlist and whitelist (the adapter re-reads changed files).
    pub fn set_plate_lists(&mut self, watchlist: PlateList, whitelist: PlateList) {
        self.ride_hailing.set_lists(watchlist, whitelist);
    }

    /// Applies one validated record; appends every alert it (and the timers due before
    /// it) produced to `out`.
    pub fn on_record(&mut self, record: &Record, out: &mut Vec<Alert>) -> Applied {
        let ts = record.ts();
        if let Some(now) = self.clock.now() {
            if ts < now - self.settings.time.allowed_lateness_ms {
                self.stats.late_dropped += 1;
                return Applied::Late;
            }
        }
        self.advance_to(ts, out);
        let roads = &*self.roads;
        match record {
            Record::Camera(ev) => {
                let weather = &self.weather;
                self.pedestrian.on_camera(
                    ev,
                    roads,
                    |road, stake| weather.fog_level_at(road, stake),
                    &mut self.drafts,
                );
            }
            Record::Weather(obs) => self.weather.on_observation(obs, roads, &mut self.drafts),
            Record::Plate(read) => self
                .ride_hailing
                .on_plate_read(read, roads, &mut self.drafts),
            Record::Patrol(p) => self.dispatcher.on_position(p, roads),
            Record::Ack(ack) => {
                let now = ts.max(self.clock.now().unwrap_or(ts));
                let applied = self.dispatcher.on_ack(ack, now, roads, &mut self.sent);
                let id = &ack.alert_id;
                match applied {
                    Some(AckStatus::Accepted) => self.book.step(id, Step::Accepted, ack.ts),
                    Some(AckStatus::Arrived) => {
                        self.book.step(id, Step::Accepted, ack.ts);
                        self.book.step(id, Step::Arrived, ack.ts);
                    }
                    Some(AckStatus::Resolved) => {
                        if let Some(doc) = self.book.resolved(id, &ack.unit_id, ack.outcome, now) {
                            self.close_detectors(id);
                            self.sent.push(doc);
                        }
                    }
                    Some(AckStatus::Declined) | None => {}
                }
            }
            Record::Operator(action) => {
                let now = ts.max(self.clock.now().unwrap_or(ts));
                self.on_action(action, now);
            }
        }
        self.flush(out);
        Applied::Accepted
    }

    /// An operator's action on an alert open here (others are counted and ignored: with
    /// several instances the one holding the alert applies it).
    fn on_action(&mut self, a: &OperatorAction, now: EventTime) {
        let kind = a.action.kind();
        if self.book.open(&a.alert_id).is_none() {
            self.book.action(kind, ActionResult::NotOpen);
            return;
        }
        let result = match &a.action {
            Action::Acknowledge => {
                if let Some(doc) = self.book.acknowledge(&a.alert_id, &a.operator_id, now) {
                    self.sent.push(doc);
                }
                ActionResult::Applied
            }
            Action::Note { text } => {
                self.book.note(&a.alert_id, &a.operator_id, text, now);
                ActionResult::Applied
            }
            Action::Close { outcome } => {
                let by = ClosedBy::Operator {
                    operator_id: a.operator_id.clone(),
                    ts: crate::model::EventTimestamp::new(now, self.settings.output.utc_offset),
                };
                match self.book.closing(&a.alert_id, *outcome, by, now) {
                    Some(doc) => {
                        self.dispatcher.close(&a.alert_id);
                        self.close_detectors(&a.alert_id);
                        self.sent.push(doc);
                        ActionResult::Applied
                    }
                    None => ActionResult::NotOpen,
                }
            }
            Action::Assign { unit_id } => {
                let last = self
                    .book
                    .open(&a.alert_id)
                    .cloned()
                    .expect("open: checked above");
                let roads = &*self.roads;
                if self.dispatcher.assign_to(
                    last,
                    unit_id,
                    &a.operator_id,
                    now,
                    roads,
                    &mut self.sent,
                ) {
                    ActionResult::Applied
                } else {
                    ActionResult::Refused
                }
            }
        };
        self.book.action(kind, result);
    }

    /// An alert ended by a unit or an operator: its detector forgets the condition, so
    /// that more of it is a new alert, not a change to a closed one.
    fn close_detectors(&mut self, alert_id: &str) {
        self.pedestrian.close(alert_id);
        self.weather.close(alert_id);
    }

    /// Moves the clock forward to `now` (never back) and fires every timer due by then.
    /// Live mode calls this from the wall clock when input is idle.
    ///
    /// Timers of different parts act on one alert (an incident out of sight, its ack
    /// time-out), so they fire in deadline order, each part at its own deadline, however
    /// far the clock moved: the documents of an alert follow each other in event time,
    /// and the answer does not depend on how many unrelated records drove the clock
    /// there (docs/SCALING.md, "Exactness": keyed instances see fewer of them).
    pub fn advance_to(&mut self, now: EventTime, out: &mut Vec<Alert>) {
        let before = self.clock.now();
        if !self.clock.advance(now) {
            return;
        }
        let now = self.clock.now().unwrap_or(now);
        if before.is_some() {
            // Each step consumes or moves the deadline it fired; the bound only guards
            // against a part that would not (it would otherwise spin here for ever).
            for _ in 0..MAX_TIMER_STEPS {
                let Some(due) = self.next_deadline().filter(|t| *t < now) else {
                    break;
                };
                self.fire_timers(due, out);
            }
        }
        self.fire_timers(now, out);
    }

    fn next_deadline(&self) -> Option<EventTime> {
        [
            self.pedestrian.next_deadline(),
            self.weather.next_deadline(),
            self.dispatcher.next_deadline(),
            self.book.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Every timer due by `now` (the clock is already there or past it).
    fn fire_timers(&mut self, now: EventTime, out: &mut Vec<Alert>) {
        let dispatcher = &self.dispatcher;
        self.pedestrian.on_time(
            now,
            self.settings.time.allowed_lateness_ms,
            &|id| dispatcher.accepted(id),
            &mut self.drafts,
        );
        self.weather.on_time(now, &mut self.drafts);
        self.ride_hailing.on_time(now);
        self.flush_at(now, out);
        self.dispatcher.on_time(now, &self.roads, &mut self.sent);
        let dispatcher = &self.dispatcher;
        for doc in self.book.on_time(now, &|id| dispatcher.holds(id)) {
            self.sent.push(doc);
        }
        self.emit_at(now, out);
    }

    fn flush(&mut self, out: &mut Vec<Alert>) {
        let now = self.clock.now().unwrap_or(EventTime::from_ms(0));
        self.flush_at(now, out);
    }

    /// Detector drafts → wire documents → dispatch → the book, in the order decided;
    /// `now` is when they were decided (a timer's deadline, or the clock).
    fn flush_at(&mut self, now: EventTime, out: &mut Vec<Alert>) {
        for draft in self.drafts.drain(..) {
            self.stats.alerts += 1;
            let alert = draft.build(&self.settings.output);
            self.dispatcher
                .on_alert(alert, now, &self.roads, &mut self.sent);
        }
        self.emit_at(now, out);
    }

    /// Every decided document through the book (handling fields, outcome) to the caller.
    fn emit_at(&mut self, now: EventTime, out: &mut Vec<Alert>) {
        for mut alert in self.sent.drain(..) {
            self.book.stamp(&mut alert, now);
            out.push(alert);
        }
    }
}

#[cfg(test)]
mod tests;
