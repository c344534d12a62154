//! Hostile input through `roadwatch replay` (issue #19): a 10 MB record, JSON nested
//! 10,000 deep and a camera event with 100,000 detections, in the middle of a real
//! scenario. Each goes to the DLQ with its reason and a copy small enough for Kafka, and
//! the scenario's alerts are exactly those it raises without them.
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const SCENARIO: &str = "tests/fixtures/replay/lifecycle_pedestrian/input.ndjson";

fn replay(input: &Path, output: &Path, env: &[(&str, &str)]) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_roadwatch"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .args(["replay", "--roads", "config/roads/bijie.geojson", "--input"])
        .arg(input)
        .arg("--output")
        .arg(output);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (alert documents without their wall-clock field, DLQ documents with their size).
fn outputs(path: &Path) -> (Vec<Value>, Vec<(Value, usize)>) {
    let text = std::fs::read_to_string(path).unwrap();
    let (mut alerts, mut dlq) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        if v["topic"] == "roadwatch-dlq" {
            dlq.push((v["value"].clone(), line.len()));
        } else {
            if let Some(o) = v["value"].as_object_mut() {
                o.remove("emitted_ts");
            }
            alerts.push(v);
        }
    }
    (alerts, dlq)
}

/// The hostile records, stamped `ts` (that of the scenario's record before them, so that
/// the one a larger limit lets through neither moves the clock nor comes late).
fn hostile_lines(ts: &str) -> Vec<(String, &'static str)> {
    let big = format!(
        r#"{{"stream":"camera","value":{{"event_id":"cam-x-1","camera_id":"cam-x","ts":"{ts}","detections":[],"pad":"{}"}}}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    let deep = format!(
        r#"{{"stream":"plate","value":{{"event_id":"anpr-x-1","reader_id":{}0{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let one = r#"{"class":"pedestrian","confidence":0.9,"lon":106.0117,"lat":27.0449}"#;
    let detections = format!(
        r#"{{"stream":"camera","value":{{"event_id":"cam-x-2","camera_id":"cam-x","ts":"{ts}","detections":[{}]}}}}"#,
        vec![one; 100_000].join(",")
    );
    vec![
        (big, "record_too_large"),
        (deep, "invalid_field_type"),
        (detections, "record_too_large"),
    ]
}

#[test]
fn hostile_records_go_to_the_dlq_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let clean_out = dir.path().join("clean.ndjson");
    replay(Path::new(SCENARIO), &clean_out, &[]);
    let (clean_alerts, clean_dlq) = outputs(&clean_out);
    assert!(clean_alerts.len() >= 5 && clean_dlq.is_empty());

    // The hostile records in the middle of the scenario.
    let text = std::fs::read_to_string(SCENARIO).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mid = lines.len() / 2;
    let before: Value = serde_json::from_str(lines[mid - 1]).unwrap();
    let hostile = hostile_lines(before["value"]["ts"].as_str().unwrap());
    let mut mixed: Vec<String> = lines[..mid].iter().map(|l| l.to_string()).collect();
    mixed.extend(hostile.iter().map(|(l, _)| l.clone()));
    mixed.extend(lines[mid..].iter().map(|l| l.to_string()));
    let input = dir.path().join("hostile.ndjson");
    std::fs::write(&input, mixed.join("\n") + "\n").unwrap();

    for (env, detections_reason) in [
        (vec![], "record_too_large"),
        // A deployment that allows larger records meets the detection limit instead.
        (
            vec![("ROADWATCH__INPUT__MAX_RECORD_BYTES", "16777216")],
            "too_many_detections",
        ),
    ] {
        let out = dir.path().join("out.ndjson");
        let summary = replay(&input, &out, &env);
        let (alerts, dlq) = outputs(&out);
        assert_eq!(alerts, clean_alerts, "the scenario's alerts changed");
        let reasons: Vec<&str> = dlq
            .iter()
            .map(|(v, _)| v["reason"].as_str().unwrap())
            .collect();
        let mut want: Vec<&str> = hostile.iter().map(|(_, r)| *r).collect();
        want[2] = detections_reason;
        if !env.is_empty() {
            // 10 MB is within 16 MiB: the padded record is parsed and taken (padding is
            // an unknown field, and its camera event carries no detections).
            want.remove(0);
        }
        assert_eq!(reasons, want);
        for (v, size) in &dlq {
            // Small enough for Kafka's default 1 MiB record limit.
            assert!(*size < 200 * 1024, "a DLQ record of {size} bytes");
            if let Some(n) = v["value_truncated_from"].as_u64() {
                assert!(n > 64 * 1024);
            }
        }
        for r in &want {
            assert!(summary.contains(r), "{r} not in the summary:\n{summary}");
        }
    }
}
