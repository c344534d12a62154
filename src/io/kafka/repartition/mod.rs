//! The repartition hop of the scale-out topology (docs/SCALING.md, "Topology"): the
//! locate stage reads the input partitions it was given, and sends each record to the
//! owner of the key its rule's state needs, over an internal topic per stream, whatever
//! key the record's producer gave it (cameras key by camera, readers by reader).
//!
//! - [`record`]: the sightings and watermarks those topics carry;
//! - [`route`]: which partition each record goes to.
pub(crate) mod lanes;
pub(crate) mod record;
pub(crate) mod route;

#[cfg(test)]
mod tests;

use crate::core::model::Stream;

/// The internal topics, named as Kafka Streams names its own:
/// `<application id>-<name>-repartition`, the application id being `kafka.group_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RepartitionTopics {
    pub camera: String,
    pub plate: String,
    pub weather: String,
}

impl RepartitionTopics {
    pub(crate) fn new(application_id: &str) -> Self {
        RepartitionTopics {
            camera: format!("{application_id}-camera-by-road-repartition"),
            plate: format!("{application_id}-plates-by-plate-repartition"),
            weather: format!("{application_id}-weather-by-station-repartition"),
        }
    }

    /// The topic a stream's records are repartitioned over; `None` for the streams
    /// every decision owner reads in full (positions, acks, operator actions).
    pub(crate) fn of(&self, stream: Stream) -> Option<&str> {
        match stream {
            Stream::Camera => Some(&self.camera),
            Stream::Plate => Some(&self.plate),
            Stream::Weather => Some(&self.weather),
            Stream::Patrol | Stream::Ack | Stream::Operator => None,
        }
    }

    pub(crate) fn all(&self) -> [&str; 3] {
        [&self.camera, &self.plate, &self.weather]
    }
}
