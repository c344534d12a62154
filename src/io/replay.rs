//! `roadwatch replay` (CONTRACT.md section 5): the live pipeline over an NDJSON file.
//! Input lines are `{"stream":..,"value":{..}}` in processing order; output lines are
//! `{"topic":..,"key":..,"value":{..}}`. Bad lines and bad records become DLQ lines and
//! never stop the run.
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::output::wall_clock_ms;
use super::pipeline::{Content, Decoded, Fate, Pipeline, Produced, RecordDecoder};
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

/// Lines the decoding thread hands over at once: one channel operation per batch.
const BATCH_LINES: usize = 512;
/// Batches decoded ahead of the engine at most (bounds the memory of a fast reader).
const BATCHES_AHEAD: usize = 4;

/// One non-blank input line, decoded.
struct Line {
    /// 1-based line number, for the DLQ source.
    number: u64,
    /// Bytes of the input read up to and including this line (progress).
    bytes_read: u64,
    parsed: Parsed,
}

enum Parsed {
    /// The envelope was refused: the whole line goes to the DLQ.
    Bad { reject: Reject, stream: Option<Stream>, line: Vec<u8> },
    /// The record's value, decoded or refused by the decoder.
    Value { stream: Stream, decoded: Decoded },
}

/// Replays `input` into `output`. `on_progress(bytes_read)` is called now and then.
///
/// Decoding (the envelope and the record) runs on a second thread, a batch of lines
/// ahead; this thread applies the records to the engine in input order and writes what
/// they produce, so the output is exactly that of decoding and applying one line after
/// the other (docs/PERFORMANCE.md, "Replay against a plain parse").
pub fn replay(
    pipeline: &mut Pipeline,
    input: impl BufRead + Send,
    mut output: impl Write,
    mut on_progress: impl FnMut(u64),
) -> std::io::Result<ReplaySummary> {
    let started = Instant::now();
    let mut summary = ReplaySummary::default();
    let mut produced: Vec<Produced> = Vec::new();
    let decoder = pipeline.decoder();
    let mut bytes_read = 0u64;
    std::thread::scope(|scope| -> std::io::Result<()> {
        let (batches, decoded) = mpsc::sync_channel(BATCHES_AHEAD);
        std::thread::Builder::new()
            .name("replay-decode".into())
            .spawn_scoped(scope, move || decode_lines(input, decoder, &batches))?;
        for batch in decoded {
            for line in batch? {
                bytes_read = line.bytes_read;
                summary.lines += 1;
                apply_line(pipeline, line, &mut summary, &mut produced);
                summary.count(&produced);
                for p in produced.drain(..) {
                    write_line(&mut output, &p)?;
                }
                if summary.lines % 4096 == 0 {
                    on_progress(bytes_read);
                }
            }
        }
        Ok(())
    })?;
    on_progress(bytes_read);
    output.flush()?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The decoding thread: reads, splits and decodes lines, and sends them in batches. It
/// stops at the end of the input, at a read error (sent on), or when the applying side
/// has gone (a write error there).
fn decode_lines(
    input: impl BufRead,
    decoder: RecordDecoder,
    batches: &mpsc::SyncSender<std::io::Result<Vec<Line>>>,
) {
    let mut batch = Vec::with_capacity(BATCH_LINES);
    let mut bytes_read = 0u64;
    for (n, line) in input.split(b'\n').enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                let _ = batches.send(Ok(std::mem::take(&mut batch)));
                let _ = batches.send(Err(e));
                return;
            }
        };
        bytes_read += line.len() as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = match envelope(line) {
            Err((reject, stream)) => Parsed::Bad {
                reject,
                stream,
                line: line.to_vec(),
            },
            Ok((stream, value)) => {
                // "Future" means future to the wall clock, as in live mode: a replay file
                // may legitimately jump hours between records (a quiet night), so the
                // event clock cannot tell a gap from a mistyped year.
                let decoded = decoder.decode(stream, value, Some(wall_clock_ms()));
                Parsed::Value { stream, decoded }
            }
        };
        batch.push(Line {
            number: n as u64 + 1,
            bytes_read,
            parsed,
        });
        if batch.len() == BATCH_LINES
            && batches
                .send(Ok(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH_LINES),
                )))
                .is_err()
        {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = batches.send(Ok(batch));
    }
}

/// Applies one decoded line to the engine (or dead-letters it), in input order.
fn apply_line(
    pipeline: &mut Pipeline,
    line: Line,
    summary: &mut ReplaySummary,
    produced: &mut Vec<Produced>,
) {
    let source = |topic: Option<&str>| DlqSource {
        topic: topic.map(str::to_owned),
        line: Some(line.number),
        ..DlqSource::default()
    };
    match line.parsed {
        Parsed::Bad {
            reject,
            stream,
            line: bytes,
        } => {
            let topic = stream.map(|s| pipeline.topic_of(s).to_owned());
            pipeline.dead_letter(&reject, stream, source(topic.as_deref()), &bytes, produced);
        }
        Parsed::Value { stream, decoded } => {
            let src = source(Some(pipeline.topic_of(stream)));
            match pipeline.apply(stream, decoded, src, wall_clock_ms(), produced) {
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
