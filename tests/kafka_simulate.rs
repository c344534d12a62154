//! `roadwatch simulate` to the real broker plays the patrol units' apps (issue #15,
//! "closing the loop without a browser"): with `roadwatch run` on the same topics, the
//! simulated crews read the alerts and answer their dispatches on `dispatch-acks`, so
//! alerts end closed by a unit with what it found — before, every dispatch on the
//! production path timed out to escalation.
mod kafka_support;

use std::process::Command;
use std::time::Duration;

use kafka_support::*;
use roadwatch::config::Guarantee;

#[test]
fn the_simulated_crews_answer_the_engines_dispatches_through_kafka() {
    let stage = Stage::new("simulate", 1, Guarantee::ExactlyOnce);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let _show = ShowLogOnPanic(log.clone());
    let mut run = Child::spawn(&stage, "a", log);
    run.wait_for_log("partitions assigned", Duration::from_secs(60));
    // 90 simulated minutes at 500 records/s: about 50 simulated seconds per wall second,
    // slow enough for a crew's answer (tens of simulated seconds after the alert) to
    // reach the engine within its allowed lateness.
    let out = Command::new(env!("CARGO_BIN_EXE_roadwatch"))
        .args([
            "simulate",
            "--duration",
            "90m",
            "--warmup",
            "0s",
            "--start",
            "2026-11-23T06:00:00+08:00",
            "--rate",
            "500",
        ])
        .envs(stage.env("sim"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the simulated patrol apps read"),
        "{stderr}"
    );
    let mut reader = Reader::new(&stage);
    let alerts = stage.topics().alerts.clone();
    let closed_by_unit = |seen: &[Out]| {
        seen.iter()
            .filter(|o| o.topic == alerts && o.value["closed_by"]["unit_id"].is_string())
            .count()
    };
    reader.until(Duration::from_secs(30), |seen| closed_by_unit(seen) > 0);
    reader.drain(Duration::from_secs(3));
    let dispatched = reader
        .seen
        .iter()
        .filter(|o| o.topic == alerts && o.value["dispatch"]["unit_id"].is_string())
        .count();
    assert!(dispatched > 0, "no alert was dispatched at all");
    assert!(
        closed_by_unit(&reader.seen) > 0,
        "{dispatched} dispatched documents, none closed by a unit: nobody answered\n{stderr}"
    );
    let outcomes: std::collections::BTreeSet<String> = reader
        .seen
        .iter()
        .filter(|o| o.topic == alerts && o.value["closed_by"]["unit_id"].is_string())
        .filter_map(|o| o.value["outcome"].as_str().map(str::to_owned))
        .collect();
    eprintln!(
        "{dispatched} dispatched documents; closed by a unit: {} ({outcomes:?})",
        closed_by_unit(&reader.seen)
    );
    assert!(
        outcomes.iter().all(|o| o != "unknown"),
        "a crew says what it found: {outcomes:?}"
    );
    drop(run);
}
