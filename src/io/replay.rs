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

#[derive(Debug)]
enum Parsed {
    /// The envelope was refused: the whole line goes to the DLQ.
    Bad {
        reject: Reject,
        stream: Option<Stream>,
        line: Vec<u8>,
    },
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
            // emitted_ts has millisecond resolution; a batch is applied within about one.
            let emitted_ms = wall_clock_ms();
            for line in batch? {
                bytes_read = line.bytes_read;
                summary.lines += 1;
                apply_line(pipeline, line, emitted_ms, &mut summary, &mut produced);
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
    // "Future" means future to the wall clock, as in live mode: a replay file may
    // legitimately jump hours between records (a quiet night), so the event clock cannot
    // tell a gap from a mistyped year. Read once per batch (a batch takes well under a
    // millisecond; the skew allowed is minutes).
    let mut now_ms = wall_clock_ms();
    let read = for_each_line(input, |number, line| {
        bytes_read += line.len() as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return true;
        }
        batch.push(Line {
            number,
            bytes_read,
            parsed: decode_line(line, decoder, now_ms),
        });
        if batch.len() < BATCH_LINES {
            return true;
        }
        now_ms = wall_clock_ms();
        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_LINES));
        batches.send(Ok(full)).is_ok()
    });
    if !batch.is_empty() && batches.send(Ok(batch)).is_err() {
        return;
    }
    if let Err(e) = read {
        let _ = batches.send(Err(e));
    }
}

/// Calls `f(line number, line)` for every `\n`-separated line of `input` (without the
/// `\n`; a last line without one too), as `BufRead::split` would yield them, but from
/// the reader's buffer: no allocation and copy per line, only for a line that straddles
/// two fills. Stops early when `f` returns false.
fn for_each_line(
    mut input: impl BufRead,
    mut f: impl FnMut(u64, &[u8]) -> bool,
) -> std::io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    let mut number = 0u64;
    loop {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            if !carry.is_empty() {
                number += 1;
                f(number, &carry);
            }
            return Ok(());
        }
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', buf) {
            number += 1;
            let go_on = if carry.is_empty() {
                f(number, &buf[start..end])
            } else {
                carry.extend_from_slice(&buf[start..end]);
                let go_on = f(number, &carry);
                carry.clear();
                go_on
            };
            if !go_on {
                return Ok(());
            }
            start = end + 1;
        }
        carry.extend_from_slice(&buf[start..]);
        let used = buf.len();
        input.consume(used);
    }
}

/// A line's stream and record. Lines written as `{"stream":"…","value":…}` (what
/// `roadwatch simulate` and CONTRACT.md's examples write) are split without parsing the
/// envelope; when their value then decodes, the result is what parsing the envelope
/// would give. Anything else, and any refusal, takes the general path, so refusals keep
/// their exact reasons.
fn decode_line(line: &[u8], decoder: RecordDecoder, now_ms: i64) -> Parsed {
    if let Some((stream, value)) = envelope_fast(line) {
        if let decoded @ Decoded::Record(_) = decoder.decode(stream, value, Some(now_ms)) {
            return Parsed::Value { stream, decoded };
        }
    }
    decode_line_parsing_the_envelope(line, decoder, now_ms)
}

fn decode_line_parsing_the_envelope(line: &[u8], decoder: RecordDecoder, now_ms: i64) -> Parsed {
    match envelope(line) {
        Err((reject, stream)) => Parsed::Bad {
            reject,
            stream,
            line: line.to_vec(),
        },
        Ok((stream, value)) => Parsed::Value {
            stream,
            decoded: decoder.decode(stream, value, Some(now_ms)),
        },
    }
}

/// `{"stream":"<name>","value":<V>}` exactly (trailing whitespace allowed): the stream and
/// the bytes of `V`. Whether `V` is one JSON value is for the decoder to find: it refuses
/// trailing characters, so `V` cannot hide a second field of the envelope.
fn envelope_fast(line: &[u8]) -> Option<(Stream, &[u8])> {
    let rest = line.strip_prefix(b"{\"stream\":\"")?;
    let quote = memchr::memchr(b'"', rest)?;
    let name = &rest[..quote];
    if name.contains(&b'\\') {
        return None;
    }
    let stream = Stream::parse(std::str::from_utf8(name).ok()?)?;
    let value = rest[quote + 1..].strip_prefix(b",\"value\":")?;
    let value = value.trim_ascii_end().strip_suffix(b"}")?;
    Some((stream, value))
}

/// Applies one decoded line to the engine (or dead-letters it), in input order.
fn apply_line(
    pipeline: &mut Pipeline,
    line: Line,
    emitted_ms: i64,
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
            match pipeline.apply(stream, decoded, src, emitted_ms, produced) {
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

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use proptest::prelude::*;

    use super::*;
    use crate::config::defaults;

    fn by_split(bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
        BufRead::split(bytes, b'\n')
            .enumerate()
            .map(|(n, l)| (n as u64 + 1, l.unwrap()))
            .collect()
    }

    fn by_buffer(bytes: &[u8], capacity: usize) -> Vec<(u64, Vec<u8>)> {
        let mut lines = Vec::new();
        for_each_line(BufReader::with_capacity(capacity, bytes), |n, l| {
            lines.push((n, l.to_vec()));
            true
        })
        .unwrap();
        lines
    }

    proptest! {
        /// Lines are numbered and cut as `BufRead::split` does, whichever way the
        /// reader's buffer cuts the input (a buffer of 1 byte straddles every line).
        #[test]
        fn lines_are_cut_as_split_cuts_them(
            bytes in prop::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'\r'), Just(b' '), any::<u8>()], 0..300),
            capacity in 1usize..24,
        ) {
            prop_assert_eq!(by_buffer(&bytes, capacity), by_split(&bytes));
        }
    }

    #[test]
    fn lines_stop_when_asked() {
        let mut seen = Vec::new();
        for_each_line(
            BufReader::with_capacity(3, &b"a\nbb\nccc\ndddd"[..]),
            |n, l| {
                seen.push((n, l.to_vec()));
                n < 2
            },
        )
        .unwrap();
        assert_eq!(seen, vec![(1, b"a".to_vec()), (2, b"bb".to_vec())]);
    }

    fn decoder() -> RecordDecoder {
        let s = defaults().engine;
        RecordDecoder::new(s.time.max_future_skew_ms, s.input)
    }

    /// The envelope split without parsing gives what parsing it gives, for the lines it
    /// takes and for every near miss it must hand to the general path (an extra field, a
    /// duplicate, escapes, spacing, trailing bytes, a value the decoder refuses).
    #[test]
    fn the_unparsed_envelope_gives_what_the_parsed_one_gives() {
        let patrol = r#"{"unit_id":"P-08","ts":1795363200117,"lon":105.1,"lat":27.0,"status":"available","speed_kmh":78.5}"#;
        let weather = r#"{"event_id":"wx-08-1","station_id":"wx-08","ts":"2026-11-23T00:00:22.868+08:00","lon":105.1,"lat":27.0,"visibility_m":80.0}"#;
        let lines = [
            format!(r#"{{"stream":"patrol","value":{patrol}}}"#),
            format!(r#"{{"stream":"weather","value":{weather}}}"#),
            format!("{{\"stream\":\"patrol\",\"value\":{patrol}}}  \t"),
            format!(r#"{{"stream":"patrol","value":{patrol} }}"#),
            format!(r#"{{"stream": "patrol", "value": {patrol}}}"#),
            format!(r#"{{"value":{patrol},"stream":"patrol"}}"#),
            format!(r#"{{"stream":"patrol","value":{patrol},"extra":1}}"#),
            format!(r#"{{"stream":"patrol","value":{patrol},"stream":"plate"}}"#),
            format!(r#"{{"stream":"patrol","value":{patrol},"value":{patrol}}}"#),
            format!(r#"{{"stream":"patr\u006fl","value":{patrol}}}"#),
            format!(r#"{{"stream":"plate","value":{patrol}}}"#),
            format!(r#"{{"stream":"nope","value":{patrol}}}"#),
            format!(r#"{{"stream":"patrol","value":{patrol}"#),
            format!(r#"{{"stream":"patrol","value":{patrol}}}}}"#),
            format!(r#"{{"stream":"patrol","value":{patrol}}} x"#),
            format!(r#"{{"stream":"patrol","value":{patrol}, {patrol}}}"#),
            r#"{"stream":"patrol","value":{"unit_id":"P-08"}}"#.to_owned(),
            format!(r#"{{"stream":"patrol","value":"{patrol}"}}"#),
            r#"{"stream":"patrol","value":}"#.to_owned(),
            r#"{"stream":"patrol"}"#.to_owned(),
            r#"{"stream":"patrol","value":null}"#.to_owned(),
            "not json".to_owned(),
        ];
        let d = decoder();
        let now = 1_795_363_300_000;
        let mut fast = 0;
        for line in &lines {
            let line = line.as_bytes();
            if envelope_fast(line).is_some() {
                fast += 1;
            }
            assert_eq!(
                format!("{:?}", decode_line(line, d, now)),
                format!("{:?}", decode_line_parsing_the_envelope(line, d, now)),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(fast >= 8, "the fast path was tried on {fast} lines");
        let taken = |line: &str| {
            matches!(
                decode_line(line.as_bytes(), d, now),
                Parsed::Value {
                    decoded: Decoded::Record(_),
                    ..
                }
            )
        };
        for i in [0, 1, 2, 3, 6] {
            assert!(
                taken(&lines[i]),
                "{}: {:?}",
                lines[i],
                decode_line(lines[i].as_bytes(), d, now)
            );
        }
        assert!(!taken(&lines[7]), "a duplicate field is refused");
    }
}
