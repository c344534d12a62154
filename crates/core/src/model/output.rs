//! Output documents: alerts (CONTRACT.md section 3) and dead-letter records (section 6).
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::input::{wire_enum, Stream};
use super::reject::Reject;
use super::time::EventTimestamp;
use crate::roads::Direction;

wire_enum!(AlertKind {
    Pedestrian => "pedestrian",
    IllegalRideHailing => "illegal_ride_hailing",
    SevereWeather => "severe_weather",
});

wire_enum!(
    /// Ordered: `info < warning < severe < critical`.
    Severity {
        Info => "info",
        Warning => "warning",
        Severe => "severe",
        Critical => "critical",
    }
);

wire_enum!(AlertStatus {
    New => "new",
    Update => "update",
    Redispatch => "redispatch",
    Escalated => "escalated",
    Cleared => "cleared",
});

/// Where an alert happened. Road fields are `null` when the point is off every road.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertLocation {
    pub lon: f64,
    pub lat: f64,
    pub road_id: Option<String>,
    pub road_name: Option<String>,
    pub direction: Option<String>,
    pub stake: Option<String>,
    pub stake_m: Option<i64>,
    pub structure: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDispatch {
    pub unit_id: String,
    pub eta_s: i64,
    pub route_m: i64,
    pub attempt: u32,
    /// The operator who chose this unit (an `assign` action); absent when the ranking did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_by: Option<String>,
}

/// Who did something to an alert, and when (RFC 3339 on the wire): `acknowledged_by`, a
/// note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorStamp {
    pub operator_id: String,
    pub ts: EventTimestamp,
    /// A note's text; absent for an acknowledgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Who ended an alert: the unit that resolved it or the operator who closed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClosedBy {
    Unit {
        unit_id: String,
        ts: EventTimestamp,
    },
    Operator {
        operator_id: String,
        ts: EventTimestamp,
    },
}

/// One alert document, identical on `alerts` and `dispatch.<unit_id>`; key = `alert_id`.
/// The handling fields after `source_event_ids` are optional on the wire (CONTRACT
/// section 3): present once they apply, so consumers that ignore them lose nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub alert_id: String,
    pub kind: AlertKind,
    pub subtype: String,
    pub severity: Severity,
    pub status: AlertStatus,
    pub event_ts: EventTimestamp,
    /// Set by the adapter that produces the alert: the core has no clock. The core fills
    /// it with `event_ts` so that a value is always present.
    pub emitted_ts: String,
    pub location: AlertLocation,
    pub summary: String,
    pub details: serde_json::Map<String, serde_json::Value>,
    pub dispatch: Option<AlertDispatch>,
    pub source_event_ids: Vec<String>,
    /// `false` while the alert stays open although its detector no longer sees the
    /// condition; `true` again once it is seen again; absent before either happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<OperatorStamp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<OperatorStamp>,
    /// On the document that ends the alert (`cleared`): how it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<super::input::Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<ClosedBy>,
    /// Where a unit can stop the vehicle (ride-hailing alerts), for the dispatcher. It is
    /// published in `details.intercept`; a document read back from Kafka has `None`.
    #[serde(skip)]
    pub intercept: Option<Intercept>,
}

/// An interception point ahead of a vehicle, typed from the detector to the dispatcher.
/// In whole metres, as `details.intercept` shows it, so that a reader of the document can
/// check the dispatcher's choice.
#[derive(Debug, Clone, PartialEq)]
pub struct Intercept {
    pub road_id: std::sync::Arc<str>,
    pub direction: Direction,
    pub stake_m: f64,
    /// Along the road from the sighting.
    pub distance_m: f64,
}

/// Where a refused record came from. Kafka fills topic/partition/offset; replay fills
/// `line` (1-based) and the topic the stream is configured to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DlqSource {
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    pub line: Option<u64>,
}

/// A `roadwatch-dlq` document: the original bytes, where they came from, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DlqRecord {
    pub reason: &'static str,
    pub detail: String,
    pub stream: Option<&'static str>,
    pub source_topic: Option<String>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The original value as text when it is UTF-8 ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// ... and as standard base64 when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
    /// Set when `value` (or `value_base64`) holds only the first `DLQ_VALUE_MAX_BYTES`
    /// of the original: the size of the original, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_truncated_from: Option<usize>,
}

/// The most of a refused value a DLQ record copies. A hostile 10 MB record copied whole
/// would make a DLQ record larger than Kafka takes (1 MiB by default), and the
/// dead-lettering itself would fail; 64 KiB shows what the record was.
pub const DLQ_VALUE_MAX_BYTES: usize = 64 * 1024;

impl DlqRecord {
    pub fn new(reject: &Reject, stream: Option<Stream>, source: DlqSource, value: &[u8]) -> Self {
        let truncated_from = (value.len() > DLQ_VALUE_MAX_BYTES).then_some(value.len());
        let value = &value[..value.len().min(DLQ_VALUE_MAX_BYTES)];
        // A cut may split a UTF-8 character: keep what is valid text up to it.
        let value = match std::str::from_utf8(value) {
            Err(e) if truncated_from.is_some() && e.error_len().is_none() => {
                &value[..e.valid_up_to()]
            }
            _ => value,
        };
        let (text, b64) = match std::str::from_utf8(value) {
            Ok(s) => (Some(s.to_owned()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(value)),
            ),
        };
        DlqRecord {
            reason: reject.reason.as_str(),
            detail: reject.detail.clone(),
            stream: stream.map(Stream::as_str),
            source_topic: source.topic,
            partition: source.partition,
            offset: source.offset,
            line: source.line,
            value: text,
            value_base64: b64,
            value_truncated_from: truncated_from,
        }
    }
}
