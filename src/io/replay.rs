//! `roadwatch replay` (CONTRACT.md section 5): the live engine over an NDJSON file.
//! Input lines are `{"stream":..,"value":{..}}` in processing order; output lines are
//! `{"topic":..,"key":..,"value":{..}}`. Bad lines and bad records become DLQ lines and
//! never stop the run.
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::output::{alert_topics, dlq_line, stamp_emitted, wall_clock_ms, Produced};
use crate::config::Settings;
use crate::core::engine::{Applied, Engine};
use crate::core::model::{
    decode_record, Alert, DecodeContext, DlqRecord, DlqSource, Reject, RejectReason, Stream,
};

/// Counts for the closing summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplaySummary {
    pub lines: u64,
    pub records_by_stream: BTreeMap<&'static str, u64>,
    pub alerts_by_kind: BTreeMap<String, u64>,
    pub dlq_by_reason: BTreeMap<&'static str, u64>,
    pub late_dropped: u64,
    pub elapsed: Duration,
}

impl ReplaySummary {
    pub fn records_per_second(&self) -> f64 {
        self.lines as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The human-readable closing summary.
    pub fn render(&self) -> String {
        let join = |m: Vec<(String, u64)>| {
            if m.is_empty() {
                "none".to_owned()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let owned =
            |m: &BTreeMap<&'static str, u64>| m.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        format!(
            "replayed {} lines in {:.2} s ({:.0} records/s)\n  records: {}\n  alerts: {}\n  dead-lettered: {}\n  dropped as late: {}\n",
            self.lines,
            self.elapsed.as_secs_f64(),
            self.records_per_second(),
            join(owned(&self.records_by_stream)),
            join(self.alerts_by_kind.iter().map(|(k, v)| (k.clone(), *v)).collect()),
            join(owned(&self.dlq_by_reason)),
            self.late_dropped,
        )
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    stream: Option<&'a str>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
}

/// Replays `input` into `output`. `on_progress(bytes_read)` is called now and then.
pub fn replay(
    settings: &Settings,
    engine: &mut Engine,
    input: impl BufRead,
    mut output: impl Write,
    mut on_progress: impl FnMut(u64),
) -> std::io::Result<ReplaySummary> {
    let started = Instant::now();
    let mut summary = ReplaySummary::default();
    let topics = &settings.kafka.topics;
    let offset = settings.engine.output.utc_offset;
    let skew = settings.engine.time.max_future_skew_ms;
    let mut alerts: Vec<Alert> = Vec::new();
    let mut bytes_read = 0u64;
    for (n, line) in input.split(b'\n').enumerate() {
        let line = line?;
        bytes_read += line.len() as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.lines += 1;
        let line_no = n as u64 + 1;
        let (stream, value) = match envelope(line) {
            Ok(ok) => ok,
            Err((reject, stream)) => {
                let source = DlqSource {
                    topic: stream.map(|s| topic_of(s, settings).to_owned()),
                    line: Some(line_no),
                    ..DlqSource::default()
                };
                write_dlq(
                    &mut output,
                    &mut summary,
                    DlqRecord::new(&reject, stream, source, line),
                    settings,
                )?;
                continue;
            }
        };
        // "Future" means future to the wall clock, as in live mode: a replay file
        // may legitimately jump hours ahead between records (a quiet night), so the
        // event clock cannot tell a gap from a mistyped year.
        let ctx = DecodeContext {
            now_ms: Some(wall_clock_ms()),
            max_future_skew_ms: skew,
        };
        match decode_record(stream, value, &ctx) {
            Ok(record) => {
                *summary
                    .records_by_stream
                    .entry(stream.as_str())
                    .or_default() += 1;
                if engine.on_record(&record, &mut alerts) == Applied::Late {
                    summary.late_dropped += 1;
                }
            }
            Err(reject) => {
                let source = DlqSource {
                    topic: Some(topic_of(stream, settings).to_owned()),
                    line: Some(line_no),
                    ..DlqSource::default()
                };
                let rec = DlqRecord::new(&reject, Some(stream), source, value);
                write_dlq(&mut output, &mut summary, rec, settings)?;
            }
        }
        for mut alert in alerts.drain(..) {
            stamp_emitted(&mut alert, wall_clock_ms(), offset);
            *summary
                .alerts_by_kind
                .entry(alert.kind.as_str().to_owned())
                .or_default() += 1;
            for topic in alert_topics(&alert, topics) {
                let line = Produced {
                    topic: &topic,
                    key: Some(&alert.alert_id),
                    value: &alert,
                };
                serde_json::to_writer(&mut output, &line)?;
                output.write_all(b"\n")?;
            }
        }
        if summary.lines % 4096 == 0 {
            on_progress(bytes_read);
        }
    }
    on_progress(bytes_read);
    output.flush()?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn write_dlq(
    output: &mut impl Write,
    summary: &mut ReplaySummary,
    record: DlqRecord,
    settings: &Settings,
) -> std::io::Result<()> {
    *summary.dlq_by_reason.entry(record.reason).or_default() += 1;
    serde_json::to_writer(&mut *output, &dlq_line(&record, &settings.kafka.topics))?;
    output.write_all(b"\n")
}

/// A refused replay line, with the stream when the line named a known one.
type BadLine = (Reject, Option<Stream>);

/// Splits a replay line into its stream and the raw bytes of its value.
fn envelope(line: &[u8]) -> Result<(Stream, &[u8]), BadLine> {
    let env: Envelope = serde_json::from_slice(line).map_err(|e| {
        (
            Reject::new(RejectReason::InvalidJson, format!("replay line: {e}")),
            None,
        )
    })?;
    let Some(name) = env.stream else {
        return Err((
            Reject::new(RejectReason::MissingField, "stream is required"),
            None,
        ));
    };
    let Some(stream) = Stream::parse(name) else {
        let detail = format!(
            "stream {:?} is not camera, plate, weather, patrol or ack",
            name
        );
        return Err((Reject::new(RejectReason::UnknownStream, detail), None));
    };
    let Some(value) = env.value else {
        return Err((
            Reject::new(RejectReason::MissingField, "value is required"),
            Some(stream),
        ));
    };
    Ok((stream, value.get().as_bytes()))
}

/// The topic a stream is read from live; named in DLQ records.
pub fn topic_of(stream: Stream, settings: &Settings) -> &str {
    let t = &settings.kafka.topics;
    match stream {
        Stream::Camera => &t.camera,
        Stream::Plate => &t.plate,
        Stream::Weather => &t.weather,
        Stream::Patrol => &t.patrol,
        Stream::Ack => &t.ack,
    }
}
