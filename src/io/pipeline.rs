//! The path every adapter shares: bytes of one record → decode → engine → the records to
//! produce (alerts on `alerts` and `dispatch.<unit_id>`, refusals on the DLQ), serialized.
//! Replay, the demo and the Kafka runtime all go through here, which is what makes replay
//! equal live. Metrics are observed here when the caller supplies them.
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Settings, Topics};
use crate::core::engine::{Applied, Engine};
use crate::core::model::{
    decode_record, format_rfc3339, Alert, AlertKind, DecodeContext, DlqRecord, DlqSource,
    EventTime, Record, Reject, RejectReason, Stream, UtcOffset,
};
use crate::core::settings::InputLimits;
use crate::io::metrics::{Metrics, Stage};

/// One record to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Produced {
    pub topic: String,
    /// `None`: the producer's partitioner picks one from the key. The repartition
    /// records name theirs, by Kafka's own partitioner (`core::keys::partition`).
    pub partition: Option<i32>,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    /// What the payload is, typed, so that adapters count and time it without reading
    /// the payload back.
    pub content: Content,
}

/// What a [`Produced`] record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// The first copy of an alert: its kind and triggering event time, so that the
    /// adapter can observe event→alert latency once the record is really out.
    Alert {
        kind: AlertKind,
        event_ms: EventTime,
    },
    /// A further copy of that alert (a `dispatch.<unit_id>` topic).
    AlertCopy,
    /// A dead-letter record, with its reason.
    Dlq(RejectReason),
    /// A record of an internal topic (a repartition topic's sighting or watermark).
    Internal,
}

impl Content {
    /// Kind and event time of the first copy of an alert.
    pub fn alert(self) -> Option<(AlertKind, EventTime)> {
        match self {
            Content::Alert { kind, event_ms } => Some((kind, event_ms)),
            _ => None,
        }
    }
}

/// A record decoded but not applied yet ([`Pipeline::decode`]).
#[derive(Debug, Clone)]
pub enum Decoded {
    Record(Record),
    Refused { reject: Reject, value: Vec<u8> },
}

impl Decoded {
    /// A decoder's answer; a refusal keeps a copy of the bytes for the DLQ.
    fn of(decoded: Result<Record, Reject>, value: &[u8]) -> Decoded {
        match decoded {
            Ok(record) => Decoded::Record(record),
            Err(reject) => Decoded::Refused {
                reject,
                value: value.to_vec(),
            },
        }
    }

    /// Event time of a decoded record; `None` for a refused one.
    pub fn ts(&self) -> Option<EventTime> {
        match self {
            Decoded::Record(r) => Some(r.ts()),
            Decoded::Refused { .. } => None,
        }
    }
}

/// Decoding alone, without the engine: a copy can decode on another thread while the
/// pipeline applies in order (`roadwatch replay` does).
#[derive(Debug, Clone, Copy)]
pub struct RecordDecoder {
    skew_ms: i64,
    limits: InputLimits,
}

impl RecordDecoder {
    /// The future-skew allowance (`time.max_future_skew_s`) and the input limits.
    pub fn new(skew_ms: i64, limits: InputLimits) -> Self {
        RecordDecoder { skew_ms, limits }
    }

    /// [`Pipeline::decode`] without the stage timing.
    pub fn decode(&self, stream: Stream, value: &[u8], now_ms: Option<i64>) -> Decoded {
        Decoded::of(self.decode_record(stream, value, now_ms), value)
    }

    fn decode_record(
        &self,
        stream: Stream,
        value: &[u8],
        now_ms: Option<i64>,
    ) -> Result<Record, Reject> {
        let ctx = DecodeContext {
            now_ms,
            max_future_skew_ms: self.skew_ms,
            limits: self.limits,
        };
        decode_record(stream, value, &ctx)
    }
}

/// What became of one input record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Applied,
    Late,
    DeadLettered,
}

pub struct Pipeline {
    engine: Engine,
    topics: Topics,
    offset: UtcOffset,
    skew_ms: i64,
    metrics: Option<Arc<Metrics>>,
    alerts: Vec<Alert>,
    /// Time one record in this many through the stage histograms: reading a clock per
    /// record would cost more than decoding it.
    sample_every: u64,
    seen: u64,
    /// Refresh the engine gauges and dispatch counters with the next emit.
    refresh_now: bool,
    /// When set, every alert document emitted is also kept for [`Pipeline::take_alerts`]
    /// (the demo prints and scores them).
    keep_alerts: bool,
    kept: Vec<Alert>,
}

impl Pipeline {
    pub fn new(settings: &Settings, engine: Engine, metrics: Option<Arc<Metrics>>) -> Self {
        Pipeline {
            engine,
            topics: settings.kafka.topics.clone(),
            offset: settings.engine.output.utc_offset,
            skew_ms: settings.engine.time.max_future_skew_ms,
            metrics,
            alerts: Vec::new(),
            sample_every: 64,
            seen: 0,
            refresh_now: false,
            keep_alerts: false,
            kept: Vec::new(),
        }
    }

    /// Keep a copy of every alert document for [`Pipeline::take_alerts`].
    pub fn keep_alerts(mut self) -> Self {
        self.keep_alerts = true;
        self
    }

    /// The alert documents emitted since the last call (only with `keep_alerts`).
    pub fn take_alerts(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.kept)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A decoder with this pipeline's limits, for decoding on another thread.
    pub fn decoder(&self) -> RecordDecoder {
        RecordDecoder::new(self.skew_ms, self.engine.settings().input)
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Decodes and applies one record. `now_ms` is the reference for the future-skew
    /// check (wall clock live and in replay); `emitted_ms` stamps `emitted_ts`.
    pub fn process(
        &mut self,
        stream: Stream,
        value: &[u8],
        source: DlqSource,
        now_ms: Option<i64>,
        emitted_ms: i64,
        out: &mut Vec<Produced>,
    ) -> Fate {
        match self.decode_only(stream, value, now_ms) {
            Ok(record) => self.apply_record(stream, &record, emitted_ms, out),
            Err(reject) => {
                self.dead_letter(&reject, Some(stream), source, value, out);
                Fate::DeadLettered
            }
        }
    }

    /// The first half of [`Pipeline::process`], for a caller that orders records by
    /// their event time before applying them (the Kafka runtime's merge). A refusal is
    /// kept with a copy of the bytes and dead-lettered by [`Pipeline::apply`], so that it
    /// is produced together with its offset.
    pub fn decode(&mut self, stream: Stream, value: &[u8], now_ms: Option<i64>) -> Decoded {
        let decoded = self.decode_only(stream, value, now_ms);
        Decoded::of(decoded, value)
    }

    /// The second half of [`Pipeline::process`].
    pub fn apply(
        &mut self,
        stream: Stream,
        decoded: Decoded,
        source: DlqSource,
        emitted_ms: i64,
        out: &mut Vec<Produced>,
    ) -> Fate {
        match decoded {
            Decoded::Record(record) => self.apply_record(stream, &record, emitted_ms, out),
            Decoded::Refused { reject, value } => {
                self.dead_letter(&reject, Some(stream), source, &value, out);
                Fate::DeadLettered
            }
        }
    }

    fn decode_only(
        &mut self,
        stream: Stream,
        value: &[u8],
        now_ms: Option<i64>,
    ) -> Result<Record, Reject> {
        self.seen += 1;
        let started = self.timed().then(Instant::now);
        let decoded = self.decoder().decode_record(stream, value, now_ms);
        if let (Some(m), Some(t)) = (&self.metrics, started) {
            m.observe_stage(Stage::Decode, t.elapsed().as_secs_f64());
        }
        decoded
    }

    fn apply_record(
        &mut self,
        stream: Stream,
        record: &Record,
        emitted_ms: i64,
        out: &mut Vec<Produced>,
    ) -> Fate {
        let started = self.timed().then(Instant::now);
        let applied = self.engine.on_record(record, &mut self.alerts);
        if let (Some(m), Some(t)) = (&self.metrics, started) {
            m.observe_stage(Stage::Detect, t.elapsed().as_secs_f64());
        }
        if let Some(m) = &self.metrics {
            match applied {
                Applied::Accepted => m.record(stream),
                Applied::Late => m.late_records.inc(),
            }
        }
        if matches!(stream, Stream::Ack | Stream::Operator) {
            // Acks and actions are few, and each moves a counter an operator watches.
            self.refresh_now = true;
        }
        self.emit(emitted_ms, out);
        match applied {
            Applied::Accepted => Fate::Applied,
            Applied::Late => Fate::Late,
        }
    }

    /// Time one record in `sample_every` through the stage histograms.
    fn timed(&self) -> bool {
        self.metrics.is_some() && self.seen % self.sample_every == 0
    }

    /// Advances event time without a record (idle input) and emits what timers produce.
    pub fn advance_to(&mut self, now: EventTime, emitted_ms: i64, out: &mut Vec<Produced>) {
        self.engine.advance_to(now, &mut self.alerts);
        self.emit(emitted_ms, out);
    }

    /// A record refused before it reached the decoder (e.g. a malformed replay line).
    pub fn dead_letter(
        &mut self,
        reject: &Reject,
        stream: Option<Stream>,
        source: DlqSource,
        value: &[u8],
        out: &mut Vec<Produced>,
    ) {
        if let Some(m) = &self.metrics {
            m.dlq(reject.reason.as_str());
        }
        out.push(dead_letter(&self.topics.dlq, reject, stream, source, value));
    }

    fn emit(&mut self, emitted_ms: i64, out: &mut Vec<Produced>) {
        // Gauges and dispatch counters are refreshed when something happened, and now
        // and then otherwise: reading them for every record would cost a lock each.
        let refresh = !self.alerts.is_empty()
            || self.seen % 256 == 0
            || std::mem::take(&mut self.refresh_now);
        for mut alert in self.alerts.drain(..) {
            alert.emitted_ts = format_rfc3339(emitted_ms, self.offset);
            let payload = serde_json::to_vec(&alert).expect("alerts serialize");
            let mut first = true;
            for topic in alert_topics(&alert, &self.topics) {
                out.push(Produced {
                    topic,
                    partition: None,
                    key: Some(alert.alert_id.clone()),
                    payload: payload.clone(),
                    content: if first {
                        Content::Alert {
                            kind: alert.kind,
                            event_ms: alert.event_ts.ms,
                        }
                    } else {
                        Content::AlertCopy
                    },
                });
                first = false;
            }
            if let Some(m) = &self.metrics {
                m.alerts
                    .with_label_values(&[
                        alert.kind.as_str(),
                        alert.severity.as_str(),
                        alert.status.as_str(),
                    ])
                    .inc();
            }
            if self.keep_alerts {
                self.kept.push(alert);
            }
        }
        let events = self.engine.take_lifecycle_events();
        if let Some(m) = &self.metrics {
            m.lifecycle(&events);
        }
        if let (Some(m), true) = (&self.metrics, refresh || !events.is_empty()) {
            m.update_engine(&self.engine.stats(), self.engine.dispatch_stats());
        }
    }

    /// The topic a stream is read from; named in DLQ records.
    pub fn topic_of(&self, stream: Stream) -> &str {
        self.topics.input(stream)
    }
}

/// The dead-letter record of a refused input record, for the `dlq` topic.
pub fn dead_letter(
    dlq: &str,
    reject: &Reject,
    stream: Option<Stream>,
    source: DlqSource,
    value: &[u8],
) -> Produced {
    let record = DlqRecord::new(reject, stream, source, value);
    Produced {
        topic: dlq.to_owned(),
        partition: None,
        key: None,
        payload: serde_json::to_vec(&record).expect("DLQ records serialize"),
        content: Content::Dlq(reject.reason),
    }
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
