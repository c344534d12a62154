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
mod decision;
mod detection;
mod stats;

use std::sync::Arc;

pub use clock::EventClock;
pub use decision::Decision;
pub use detection::Detection;
pub use stats::EngineStats;

use super::alert::AlertDraft;
use super::detect::ride_hailing::PlateList;
use super::dispatch::DispatchStats;
use super::lifecycle::LifecycleEvent;
use super::model::{Alert, EventTime, Record};
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

/// The two halves of the state, composed in one process on one clock: [`Detection`]
/// (keyed by road, station, plate) hands built alerts to [`Decision`] (dispatch and the
/// book, about every unit), which answers detection's one question, whether a unit has
/// accepted an alert, and tells it which alerts ended (docs/SCALING.md).
pub struct Engine {
    settings: EngineSettings,
    roads: Arc<RoadNetwork>,
    clock: EventClock,
    detection: Detection,
    decision: Decision,
    /// Reused between calls so the hot path does not allocate a buffer per record.
    drafts: Vec<AlertDraft>,
    stats: EngineStats,
}

impl Engine {
    pub fn new(settings: EngineSettings, roads: Arc<RoadNetwork>) -> Self {
        Engine {
            detection: Detection::new(&settings),
            decision: Decision::new(&settings, &roads),
            clock: EventClock::default(),
            drafts: Vec::new(),
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
        s.open_incidents = self.detection.open_incidents();
        s.weather_stations = self.detection.weather_stations();
        s.tracked_plates = self.detection.tracked_plates();
        s.evicted_plates = self.detection.evicted_plates();
        s.units = self.decision.units();
        s.open_assignments = self.decision.open_assignments();
        s.silent_weather_stations = self.detection.silent_weather_stations();
        s.escalated_unacknowledged = self.decision.escalated_unacknowledged();
        s
    }

    /// What the lifecycle did since the last call, for the adapter's metrics.
    pub fn take_lifecycle_events(&mut self) -> Vec<LifecycleEvent> {
        self.decision.take_lifecycle_events()
    }

    pub fn dispatch_stats(&self) -> &DispatchStats {
        self.decision.dispatch_stats()
    }

    /// Replaces the watchlist and whitelist (the adapter re-reads changed files).
    pub fn set_plate_lists(&mut self, watchlist: PlateList, whitelist: PlateList) {
        self.detection.set_plate_lists(watchlist, whitelist);
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
        if !self.detection.on_record(record, roads, &mut self.drafts) {
            // Acks and actions count from the clock when they arrive late.
            let now = ts.max(self.clock.now().unwrap_or(ts));
            let ended = match record {
                Record::Patrol(p) => {
                    self.decision.on_position(p, roads);
                    None
                }
                Record::Ack(ack) => self.decision.on_ack(ack, now, roads),
                Record::Operator(action) => self.decision.on_action(action, now, roads),
                Record::Camera(_) | Record::Weather(_) | Record::Plate(_) => None,
            };
            if let Some(id) = ended {
                self.detection.close(id);
            }
        }
        self.flush(out);
        Applied::Accepted
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
            self.detection.next_deadline(),
            self.decision.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Every timer due by `now` (the clock is already there or past it): detection's
    /// first, their drafts decided, then dispatch's and the book's.
    fn fire_timers(&mut self, now: EventTime, out: &mut Vec<Alert>) {
        let decision = &self.decision;
        self.detection
            .on_time(now, &|id| decision.accepted(id), &mut self.drafts);
        self.flush_at(now, out);
        self.decision.on_time(now, &self.roads);
        self.decision.emit(now, out);
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
            self.decision.on_alert(alert, now, &self.roads);
        }
        self.decision.emit(now, out);
    }
}

#[cfg(test)]
mod tests;
