//! `roadwatch replay` (CONTRACT.md section 5): the live pipeline over an NDJSON file.
//! Input lines are `{"stream":..,"value":{..}}` in processing order; output lines are
//! `{"topic":..,"key":..,"value":{..}}`. Bad lines and bad records become DLQ lines and
//! never stop the run.
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::output::wall_clock_ms;
use super::pipeline::{Content, Fate, Pipeline, Produced};
use crate::core::model::{DlqSource, Reject, RejectReason, Stream};

/// Counts for the closing summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplaySummary {
    pub lines: u64,
    pub records_by_stream: BTreeMap<&'static str, u64>,
    pub alerts_by_kind: BTreeMap<String, u64>,
    pub dlq_by_reason: BTreeMap<String, u64>,
    pub late_dropped: u64,
    pub elapsed: Duration,
}

impl ReplaySummary {
    pub fn records_per_second(&self) -> f64 {
        self.lines as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The human-readable closing summary.
    pub fn render(&self) -> String {
        fn join<K: std::fmt::Display>(m: &BTreeMap<K, u64>) -> String {
            if m.is_empty() {
                return "none".to_owned();
            }
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
        format!(
            "replayed {} lines in {:.2} s ({:.0} records/s)\n  records: {}\n  alerts: {}\n  dead-lettered: {}\n  dropped as late: {}\n",
            self.lines,
            self.elapsed.as_secs_f64(),
            self.records_per_second(),
            join(&self.records_by_stream),
            join(&self.alerts_by_kind),
            join(&self.dlq_by_reason),
            self.late_dropped,
        )
    }

    fn count(&mut self, produced: &[Produced]) {
        for p in produced {
            if let Content::Dlq(reason) = p.content {
                *self
                    .dlq_by_reason
                    .entry(reason.as_str().to_owned())
                    .or_default() += 1;
            } else if let Some((kind, _)) = p.content.alert() {
                *self
                    .alerts_by_kind
                    .entry(kind.as_str().to_owned())
                    .or_default() += 1;
            }
        }
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
    pipeline: &mut Pipeline,
    input: impl BufRead,
    mut output: impl Write,
    mut on_progress: impl FnMut(u64),
) -> std::io::Result<ReplaySummary> {
    let started = Instant::now();
    let mut summary = ReplaySummary::default();
    let mut produced: Vec<Produced> = Vec::new();
    let mut bytes_read = 0u64;
    for (n, line) in input.split(b'\n').enumerate() {
        let line = line?;
        bytes_read += line.len() as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.lines += 1;
        let source = |topic: Option<&str>| DlqSource {
            topic: topic.map(str::to_owned),
            line: Some(n as u64 + 1),
            ..DlqSource::default()
        };
        match envelope(line) {
            Err((reject, stream)) => {
                let topic = stream.map(|s| pipeline.topic_of(s).to_owned());
                pipeline.dead_letter(
                    &reject,
                    stream,
                    source(topic.as_deref()),
                    line,
                    &mut produced,
                );
            }
            Ok((stream, value)) => {
                let src = source(Some(pipeline.topic_of(stream)));
                // "Future" means future to the wall clock, as in live mode: a replay file
                // may legitimately jump hours between records (a quiet night), so the
                // event clock cannot tell a gap from a mistyped year.
                let now = wall_clock_ms();
                match pipeline.process(stream, value, src, Some(now), now, &mut produced) {
                    Fate::Applied => {
                        *summary
                            .records_by_stream
                            .entry(stream.as_str())
                            .or_default() += 1
                    }
                    Fate::Late => {
                        *summary
                            .records_by_stream
                            .entry(stream.as_str())
                            .or_default() += 1;
                        summary.late_dropped += 1;
                    }
                    Fate::DeadLettered => {}
                }
            }
        }
        summary.count(&produced);
        for p in produced.drain(..) {
            write_line(&mut output, &p)?;
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

/// `{"topic":..,"key":..,"value":<the document>}`, the document embedded as raw JSON.
fn write_line(out: &mut impl Write, p: &Produced) -> std::io::Result<()> {
    out.write_all(b"{\"topic\":")?;
    serde_json::to_writer(&mut *out, &p.topic)?;
    out.write_all(b",\"key\":")?;
    serde_json::to_writer(&mut *out, &p.key)?;
    out.write_all(b",\"value\":")?;
    out.write_all(&p.payload)?;
    out.write_all(b"}\n")
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
            "stream {:?} is not camera, plate, weather, patrol, ack or operator",
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
