//! The engine: one synchronous, deterministic state machine over all input streams,
//! driven by event time (DOMAIN.md "Time"). Adapters (Kafka, replay, demo, benches) call
//! [`Engine::on_record`] for every decoded record and [`Engine::advance_to`] when input is
//! idle; both append finished alerts to the caller's buffer.
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
use super::model::{Alert, EventTime, Record};
use super::roads::RoadNetwork;
use super::settings::EngineSettings;

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
    /// Reused between calls so the hot path does not allocate a buffer per record.
    drafts: Vec<AlertDraft>,
    stats: EngineStats,
}

impl Engine {
    pub fn new(settings: EngineSettings, roads: Arc<RoadNetwork>) -> Self {
        let output = settings.output.clone();
        Engine {
            pedestrian: PedestrianDetector::new(settings.pedestrian.clone(), output.clone()),
            weather: WeatherDetector::new(settings.weather.clone(), output.clone()),
            ride_hailing: RideHailingDetector::new(settings.ride_hailing.clone(), output.clone()),
            dispatcher: Dispatcher::new(settings.dispatch.clone(), output, &roads),
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
        s.open_incidents = self.pedestrian.open_incidents();
        s.weather_stations = self.weather.stations();
        s.tracked_plates = self.ride_hailing.tracked_plates();
        s.units = self.dispatcher.units();
        s.open_assignments = self.dispatcher.open_assignments();
        s
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
        self.stats.count(record.stream());
        let roads = &*self.roads;
        match record {
            Record::Camera(ev) => {
                self.stats.unknown_classes += u64::from(ev.unknown_classes);
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
                self.dispatcher
                    .on_ack(ack, ts.max(self.clock.now().unwrap_or(ts)), roads, out)
            }
        }
        self.flush(out);
        Applied::Accepted
    }

    /// Moves the clock forward to `now` (never back) and fires every timer due by then.
    /// Live mode calls this from the wall clock when input is idle.
    pub fn advance_to(&mut self, now: EventTime, out: &mut Vec<Alert>) {
        if !self.clock.advance(now) {
            return;
        }
        let now = self.clock.now().unwrap_or(now);
        self.pedestrian.on_time(
            now,
            self.settings.time.allowed_lateness_ms,
            &mut self.drafts,
        );
        self.ride_hailing.on_time(now, &mut self.drafts);
        self.flush(out);
        self.dispatcher.on_time(now, &self.roads, out);
    }

    /// Detector drafts → wire documents → dispatch, in the order the detectors decided.
    fn flush(&mut self, out: &mut Vec<Alert>) {
        let now = self.clock.now().unwrap_or_default();
        for draft in self.drafts.drain(..) {
            self.stats.alerts += 1;
            let alert = draft.build(&self.settings.output);
            self.dispatcher.on_alert(alert, now, &self.roads, out);
        }
    }
}

#[cfg(test)]
mod tests;
