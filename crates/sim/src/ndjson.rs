//! Writers: records as replay lines (CONTRACT.md section 5) and the truth as JSON.
//!
//! A replay line is `{"stream":"camera","value":{...}}` with the device's bytes embedded
//! as they are. A value that is not JSON (the simulator's deliberately truncated
//! records) cannot be embedded raw without breaking the line, so it is written as a
//! JSON **string** holding the original text: `{"stream":"plate","value":"{\"event_id\":\"an"}`.
//! The replay decoder refuses a value that is not an object with `invalid_json`, the
//! same reason the raw bytes would get from Kafka; its DLQ record then shows the quoted
//! text. Bytes that are not UTF-8 are written lossily (the simulator never makes them).
use std::io::{self, Write};

use serde::de::IgnoredAny;

use super::truth::GroundTruth;
use super::SimRecord;

/// Writes one replay line (with its newline).
pub fn write_replay_line(record: &SimRecord, out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"{\"stream\":\"")?;
    out.write_all(record.stream.as_str().as_bytes())?;
    out.write_all(b"\",\"value\":")?;
    let value = &record.value;
    let one_line = !value.iter().any(|&b| b == b'\n' || b == b'\r');
    if one_line && serde_json::from_slice::<IgnoredAny>(value).is_ok() {
        out.write_all(value)?;
    } else if let Ok(v) = serde_json::from_slice::<serde_json::Value>(value) {
        // Valid JSON spread over lines: re-serialized compactly.
        serde_json::to_writer(&mut *out, &v)?;
    } else {
        let text = String::from_utf8_lossy(value);
        serde_json::to_writer(&mut *out, &*text)?;
    }
    out.write_all(b"}\n")
}

/// Writes records as replay lines, in the given order.
pub fn write_replay_lines(records: &[SimRecord], out: &mut impl Write) -> io::Result<()> {
    for r in records {
        write_replay_line(r, out)?;
    }
    Ok(())
}

/// Writes the ground truth as one pretty-printed JSON document.
pub fn write_truth(truth: &GroundTruth, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, truth)?;
    out.write_all(b"\n")
}
