//! Severe-weather detector (being written; see issue 4).
use crate::core::alert::AlertDraft;
use crate::core::model::WeatherObservation;
use crate::core::roads::RoadNetwork;
use crate::core::settings::{OutputSettings, WeatherSettings};

pub struct WeatherDetector {
    _settings: WeatherSettings,
    _output: OutputSettings,
}

impl WeatherDetector {
    pub fn new(settings: WeatherSettings, output: OutputSettings) -> Self {
        WeatherDetector {
            _settings: settings,
            _output: output,
        }
    }

    pub fn on_observation(
        &mut self,
        _obs: &WeatherObservation,
        _roads: &RoadNetwork,
        _out: &mut Vec<AlertDraft>,
    ) {
    }

    /// The highest visibility (fog) level currently active over `stake_m` of `road_id`.
    pub fn fog_level_at(&self, _road_id: &str, _stake_m: f64) -> u8 {
        0
    }

    pub fn stations(&self) -> usize {
        0
    }
}
