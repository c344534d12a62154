//! Illegal ride-hailing detector (being written; see issue 4).
use crate::core::alert::AlertDraft;
use crate::core::model::{EventTime, PlateRead};
use crate::core::roads::RoadNetwork;
use crate::core::settings::{OutputSettings, RideHailingSettings};

pub struct RideHailingDetector {
    _settings: RideHailingSettings,
    _output: OutputSettings,
}

impl RideHailingDetector {
    pub fn new(settings: RideHailingSettings, output: OutputSettings) -> Self {
        RideHailingDetector {
            _settings: settings,
            _output: output,
        }
    }

    pub fn on_plate_read(
        &mut self,
        _read: &PlateRead,
        _roads: &RoadNetwork,
        _out: &mut Vec<AlertDraft>,
    ) {
    }

    pub fn on_time(&mut self, _now_ms: EventTime, _out: &mut Vec<AlertDraft>) {}

    pub fn tracked_plates(&self) -> usize {
        0
    }
}
