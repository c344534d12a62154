//! Plates are personal data (issue #19): alert ids name them only by a keyed pseudonym,
//! a run without a configured key says so, and no plate reaches the logs at info level.
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const FIXTURE: &str = "tests/fixtures/replay/ride_hailing";
const SIM_FIXTURE_SEED: &str = "11";

fn roadwatch(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_roadwatch"));
    c.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .env("RUST_LOG", "info");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("the roadwatch binary runs");
    assert!(
        out.status.success(),
        "roadwatch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `roadwatch replay` of the ride-hailing fixture: (its stderr, the ids it produced).
fn replay_fixture(dir: &Path, env: &[(&str, &str)]) -> (String, Vec<String>) {
    let out_path = dir.join(format!("out-{}.ndjson", nonce()));
    let out = roadwatch(
        &[
            "replay",
            "--config",
            &format!("{FIXTURE}/config.toml"),
            "--input",
            &format!("{FIXTURE}/input.ndjson"),
            "--output",
            out_path.to_str().unwrap(),
        ],
        env,
    );
    let ids = std::fs::read_to_string(&out_path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["value"]["alert_id"].as_str().map(str::to_owned))
        .filter(|id| id.starts_with("rh-"))
        .collect();
    (String::from_utf8_lossy(&out.stderr).into_owned(), ids)
}

fn nonce() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Every `plate` field of an NDJSON stream of the replay format.
fn plates_in(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["value"]["plate"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn without_a_key_the_run_says_so_and_its_ids_are_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (log_a, ids_a) = replay_fixture(dir.path(), &[]);
    let (_, ids_b) = replay_fixture(dir.path(), &[]);
    assert!(
        ids_a.len() >= 2,
        "the fixture raises ride-hailing alerts: {ids_a:?}"
    );
    assert!(
        log_a.contains("privacy.plate_key is not set"),
        "no warning about the generated key:\n{log_a}"
    );
    assert_eq!(ids_a.len(), ids_b.len());
    assert!(
        ids_a.iter().zip(&ids_b).all(|(a, b)| a != b),
        "two processes with generated keys gave the same pseudonyms: {ids_a:?}"
    );

    // One configured key: the same ids every time, which is what live = replay needs.
    let key = [("ROADWATCH__PRIVACY__PLATE_KEY", "5a".repeat(32))];
    let key: Vec<(&str, &str)> = key.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (log_c, ids_c) = replay_fixture(dir.path(), &key);
    let (_, ids_d) = replay_fixture(dir.path(), &key);
    assert_eq!(ids_c, ids_d);
    assert!(!log_c.contains("privacy.plate_key is not set"), "{log_c}");
    assert!(
        !log_c.contains(&"5a".repeat(32)),
        "the key was logged:\n{log_c}"
    );
}

#[test]
fn no_plate_reaches_the_logs_at_info_level() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = replay_fixture(dir.path(), &[]);
    let fixture_plates = plates_in(&Path::new(FIXTURE).join("input.ndjson"));
    assert!(fixture_plates.len() >= 3, "{fixture_plates:?}");
    for plate in &fixture_plates {
        assert!(
            !log.contains(plate.as_str()),
            "{plate} in the replay's log:\n{log}"
        );
    }

    // A simulated day of every record kind, with its bad records, replayed: the dead
    // letters and their reasons are logged nowhere with a plate either.
    let sim = dir.path().join("sim.ndjson");
    let out = dir.path().join("out.ndjson");
    let simulated = roadwatch(
        &[
            "simulate",
            "--seed",
            SIM_FIXTURE_SEED,
            "--duration",
            "2h",
            "--start",
            "2026-11-23T06:00:00+08:00",
            "--output",
            sim.to_str().unwrap(),
        ],
        &[],
    );
    let replayed = roadwatch(
        &[
            "replay",
            "--input",
            sim.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
        &[],
    );
    let plates = plates_in(&sim);
    assert!(
        plates.len() >= 100,
        "the simulation reads plates: {}",
        plates.len()
    );
    // The replay's summary on stdout too: it is what an operator reads after a run.
    let logs = [simulated.stderr, replayed.stderr, replayed.stdout].concat();
    let logs = String::from_utf8_lossy(&logs);
    let leaked: Vec<&String> = plates
        .iter()
        .filter(|p| logs.contains(p.as_str()))
        .collect();
    assert!(leaked.is_empty(), "plates in the logs: {leaked:?}\n{logs}");
}
