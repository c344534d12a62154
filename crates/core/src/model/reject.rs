//! Why a record was refused. The snake_case name of each reason is part of the external
//! contract: it is the DLQ `reason` field and the `reason` label of `roadwatch_dlq_total`,
//! so names are never renamed, only added.
use std::fmt;

/// A stable, machine-readable reason for sending a record to the dead-letter topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Not UTF-8, not JSON, or not a JSON object.
    InvalidJson,
    /// A required field is absent or `null`.
    MissingField,
    /// A field has the wrong JSON type (e.g. a string where a number belongs).
    InvalidFieldType,
    /// `ts` is neither RFC 3339 with an offset nor integer epoch milliseconds.
    InvalidTimestamp,
    /// `ts` lies further in the future than `time.max_future_skew_s`.
    FutureTimestamp,
    /// An identifier is not 1–64 characters of `[A-Za-z0-9._-]`.
    InvalidIdentifier,
    /// `lat` outside ±90 degrees.
    LatOutOfRange,
    /// `lon` outside ±180 degrees.
    LonOutOfRange,
    /// `confidence` outside 0–1.
    ConfidenceOutOfRange,
    /// A measurement that cannot be negative is (visibility, precipitation, wind, speed).
    NegativeMeasurement,
    /// A plate that fits neither the ordinary nor the new-energy format (DOMAIN.md).
    InvalidPlate,
    /// An enumerated field (status, colour, class...) holds a value the contract lacks.
    UnknownEnumValue,
    /// A replay line names a `stream` the processor does not know.
    UnknownStream,
    /// An operator's note is longer than 500 characters.
    TextTooLong,
    /// The record value is larger than `input.max_record_bytes`; it is not parsed.
    RecordTooLarge,
    /// A camera event carries more than `input.max_detections_per_record` detections.
    TooManyDetections,
}

impl RejectReason {
    /// Every reason, for metric pre-registration and documentation tests.
    pub const ALL: [RejectReason; 16] = [
        RejectReason::InvalidJson,
        RejectReason::MissingField,
        RejectReason::InvalidFieldType,
        RejectReason::InvalidTimestamp,
        RejectReason::FutureTimestamp,
        RejectReason::InvalidIdentifier,
        RejectReason::LatOutOfRange,
        RejectReason::LonOutOfRange,
        RejectReason::ConfidenceOutOfRange,
        RejectReason::NegativeMeasurement,
        RejectReason::InvalidPlate,
        RejectReason::UnknownEnumValue,
        RejectReason::UnknownStream,
        RejectReason::TextTooLong,
        RejectReason::RecordTooLarge,
        RejectReason::TooManyDetections,
    ];

    /// The stable snake_case name used on the wire and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::MissingField => "missing_field",
            RejectReason::InvalidFieldType => "invalid_field_type",
            RejectReason::InvalidTimestamp => "invalid_timestamp",
            RejectReason::FutureTimestamp => "future_timestamp",
            RejectReason::InvalidIdentifier => "invalid_identifier",
            RejectReason::LatOutOfRange => "lat_out_of_range",
            RejectReason::LonOutOfRange => "lon_out_of_range",
            RejectReason::ConfidenceOutOfRange => "confidence_out_of_range",
            RejectReason::NegativeMeasurement => "negative_measurement",
            RejectReason::InvalidPlate => "invalid_plate",
            RejectReason::UnknownEnumValue => "unknown_enum_value",
            RejectReason::UnknownStream => "unknown_stream",
            RejectReason::TextTooLong => "text_too_long",
            RejectReason::RecordTooLarge => "record_too_large",
            RejectReason::TooManyDetections => "too_many_detections",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused record: the reason plus a human-readable detail naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub reason: RejectReason,
    pub detail: String,
}

impl Reject {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Reject {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for Reject {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_are_unique_snake_case() {
        let mut names: Vec<&str> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
        for n in &names {
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{n}");
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), RejectReason::ALL.len());
    }
}
