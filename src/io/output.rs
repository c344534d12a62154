//! Where produced documents go: topic names and keys (CONTRACT.md section 3), shared by
//! replay, the demo and the Kafka runtime so that replay equals live.
use serde::Serialize;

use crate::config::Topics;
use crate::core::model::{format_rfc3339, Alert, DlqRecord, UtcOffset};

/// One record to produce: topic, key and the document.
#[derive(Debug, Clone, Serialize)]
pub struct Produced<'a, T: Serialize> {
    pub topic: &'a str,
    pub key: Option<&'a str>,
    pub value: &'a T,
}

/// The topics an alert goes to: always `alerts`, plus `dispatch.<unit_id>` when a unit
/// was assigned. Key = `alert_id` on both.
pub fn alert_topics(alert: &Alert, topics: &Topics) -> Vec<String> {
    let mut out = vec![topics.alerts.clone()];
    if let Some(d) = &alert.dispatch {
        out.push(format!("{}{}", topics.dispatch_prefix, d.unit_id));
    }
    out
}

/// Stamps `emitted_ts` with the wall clock at the moment of producing: the one field
/// that legitimately differs between live and replay.
pub fn stamp_emitted(alert: &mut Alert, now_ms: i64, offset: UtcOffset) {
    alert.emitted_ts = format_rfc3339(now_ms, offset);
}

pub fn dlq_line<'a>(record: &'a DlqRecord, topics: &'a Topics) -> Produced<'a, DlqRecord> {
    Produced {
        topic: &topics.dlq,
        key: None,
        value: record,
    }
}

/// Wall-clock epoch milliseconds (adapters only; the core never reads a clock).
pub fn wall_clock_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
