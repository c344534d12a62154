//! `roadwatch simulate` and `roadwatch demo` as a user runs them.
use std::collections::BTreeMap;
use std::process::Command;

fn roadwatch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_roadwatch"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG");
    c
}

#[test]
fn simulated_file_replays_with_exactly_the_dead_letters_the_truth_expects() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, truth, out) = (
        dir.path().join("sim.ndjson"),
        dir.path().join("truth.json"),
        dir.path().join("out.ndjson"),
    );
    let st = roadwatch()
        .args([
            "simulate",
            "--seed",
            "11",
            "--duration",
            "4h",
            "--start",
            "2026-11-23T06:00:00+08:00",
            "--output",
        ])
        .arg(&sim)
        .arg("--truth")
        .arg(&truth)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let st = roadwatch()
        .args(["replay", "--input"])
        .arg(&sim)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&truth).unwrap()).unwrap();
    let expected: BTreeMap<String, u64> =
        serde_json::from_value(truth["expected_dlq"].clone()).unwrap();
    assert!(
        expected.values().sum::<u64>() > 0,
        "the simulator sends some bad records"
    );
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    let mut alerts = 0;
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        match v["topic"].as_str().unwrap() {
            "roadwatch-dlq" => {
                *got.entry(v["value"]["reason"].as_str().unwrap().to_owned())
                    .or_default() += 1
            }
            "alerts" => alerts += 1,
            _ => {}
        }
    }
    assert_eq!(got, expected);
    // Whatever the truth says should be found shows up as alerts.
    let incidents = truth["pedestrian_incidents"].as_array().unwrap();
    let detectable = incidents.iter().filter(|i| i["detectable"] == true).count();
    let episodes = truth["weather_episodes"].as_array().unwrap().len();
    if detectable + episodes > 0 {
        assert!(
            alerts > 0,
            "{detectable} detectable incidents, {episodes} weather episodes, no alerts"
        );
    }
}

#[test]
fn simulate_is_deterministic_by_seed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: &str, name: &str| {
        let path = dir.path().join(name);
        let st = roadwatch()
            .args(["simulate", "--seed", seed, "--duration", "30m", "--output"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::read(path).unwrap()
    };
    let a = run("5", "a");
    assert_eq!(a, run("5", "b"));
    assert_ne!(a, run("6", "c"));
}

#[test]
fn demo_runs_and_reports_against_ground_truth() {
    let out = roadwatch()
        .args([
            "demo",
            "--speed",
            "max",
            "--duration",
            "3h",
            "--warmup",
            "0s",
            "--start",
            "2026-11-23T06:00:00+08:00",
        ])
        .env("ROADWATCH__METRICS__LISTEN", "127.0.0.1:0")
        .env("ROADWATCH__CONSOLE__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("== closing report =="), "{text}");
    for detector in [
        "pedestrian",
        "severe weather",
        "ride-hailing (pattern)",
        "ride-hailing (watchlist)",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(detector)),
            "{detector} missing:\n{text}"
        );
    }
    assert!(text.contains("records/s"), "{text}");
    // Alerts are printed as they happen, one readable line each.
    assert!(text.lines().any(|l| l.contains("pedestrian/")), "{text}");
}

#[test]
fn bad_demo_arguments_exit_2() {
    for args in [
        ["demo", "--duration", "forever"],
        ["demo", "--speed", "-1"],
        ["demo", "--start", "yesterday"],
    ] {
        let out = roadwatch().args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
