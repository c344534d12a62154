//! The detection half of the engine: the three detectors, whose state is keyed by road,
//! station and plate (docs/SCALING.md, "Which state each rule needs"). It turns input
//! records and the passing of event time into alert drafts, and needs from the decision
//! half only whether a unit has accepted an alert and when an alert ended.
use crate::alert::AlertDraft;
use crate::detect::pedestrian::PedestrianDetector;
use crate::detect::ride_hailing::{PlateList, RideHailingDetector};
use crate::detect::weather::WeatherDetector;
use crate::model::{EventTime, Record};
use crate::roads::RoadNetwork;
use crate::settings::EngineSettings;

pub struct Detection {
    pedestrian: PedestrianDetector,
    weather: WeatherDetector,
    ride_hailing: RideHailingDetector,
    allowed_lateness_ms: i64,
}

impl Detection {
    pub fn new(settings: &EngineSettings) -> Self {
        let output = &settings.output;
        Detection {
            pedestrian: PedestrianDetector::new(settings.pedestrian.clone(), output.clone()),
            weather: WeatherDetector::new(settings.weather.clone(), output.clone()),
            ride_hailing: RideHailingDetector::new(settings.ride_hailing.clone(), output.clone()),
            allowed_lateness_ms: settings.time.allowed_lateness_ms,
        }
    }

    /// A camera event, weather observation or plate read; other records are not
    /// detection's (false).
    pub fn on_record(
        &mut self,
        record: &Record,
        roads: &RoadNetwork,
        out: &mut Vec<AlertDraft>,
    ) -> bool {
        match record {
            Record::Camera(ev) => {
                let weather = &self.weather;
                self.pedestrian.on_camera(
                    ev,
                    roads,
                    |road, stake| weather.fog_level_at(road, stake),
                    out,
                );
            }
            Record::Weather(obs) => self.weather.on_observation(obs, roads, out),
            Record::Plate(read) => self.ride_hailing.on_plate_read(read, roads, out),
            Record::Patrol(_) | Record::Ack(_) | Record::Operator(_) => return false,
        }
        true
    }

    /// Every detector timer due by `now`. `accepted(alert_id)`: a unit has accepted the
    /// alert, as the decision half has it now.
    pub fn on_time(
        &mut self,
        now: EventTime,
        accepted: &dyn Fn(&str) -> bool,
        out: &mut Vec<AlertDraft>,
    ) {
        self.pedestrian
            .on_time(now, self.allowed_lateness_ms, accepted, out);
        self.weather.on_time(now, out);
        self.ride_hailing.on_time(now);
    }

    pub fn next_deadline(&self) -> Option<EventTime> {
        [
            self.pedestrian.next_deadline(),
            self.weather.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// An alert ended by a unit or an operator: its detector forgets the condition, so
    /// that more of it is a new alert, not a change to a closed one.
    pub fn close(&mut self, alert_id: &str) {
        self.pedestrian.close(alert_id);
        self.weather.close(alert_id);
    }

    pub fn set_plate_lists(&mut self, watchlist: PlateList, whitelist: PlateList) {
        self.ride_hailing.set_lists(watchlist, whitelist);
    }

    pub fn open_incidents(&self) -> usize {
        self.pedestrian.open_incidents()
    }

    pub fn weather_stations(&self) -> usize {
        self.weather.stations()
    }

    pub fn silent_weather_stations(&self) -> usize {
        self.weather.silent_stations()
    }

    pub fn tracked_plates(&self) -> usize {
        self.ride_hailing.tracked_plates()
    }

    pub fn evicted_plates(&self) -> u64 {
        self.ride_hailing.evicted_plates()
    }
}
