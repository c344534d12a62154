//! Wire types: every message of CONTRACT.md, decoded and validated at the boundary.
//!
//! Input records are decoded from the exact bytes Kafka (or a replay line) carries into
//! owned, validated domain values (`Record`), or rejected with a typed [`Reject`] whose
//! [`RejectReason`] name is the DLQ `reason` and the metric label.
mod decode;
mod ident;
mod input;
mod output;
mod reject;
mod time;

pub use decode::{decode_record, DecodeContext};
pub use ident::{is_valid_identifier, is_valid_plate, PlateCode, PlateKind};
pub use input::{
    AckStatus, Action, ActionKind, CameraEvent, Detection, DetectionClass, DispatchAck,
    OperatorAction, Outcome, PatrolPosition, PlateColor, PlateRead, Record, RoadSurfaceState,
    Stream, UnitStatus, VehicleClass, WeatherObservation, MAX_NOTE_CHARS,
};
pub use output::{
    Alert, AlertDispatch, AlertKind, AlertLocation, AlertStatus, ClosedBy, DlqRecord, DlqSource,
    Intercept, OperatorStamp, Severity, DLQ_VALUE_MAX_BYTES,
};
pub use reject::{Reject, RejectReason};
pub use time::{format_rfc3339, parse_rfc3339_ms, EventTime, EventTimestamp, UtcOffset};

#[cfg(test)]
mod tests;
