//! Golden replays: each folder under tests/fixtures/replay holds `input.ndjson` (records
//! as they would arrive from Kafka, CONTRACT section 5), optionally `config.toml`, and
//! `expected.ndjson`, the produced records reviewed by hand. The comparison is
//! structural (parsed JSON) and ignores `emitted_ts`, the one field taken from the wall
//! clock. `ROADWATCH_BLESS=1 cargo test --test replay_golden` rewrites the expectations
//! (then review the diff before committing).
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn normalise(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("output lines are JSON");
            if let Some(value) = v.get_mut("value").and_then(Value::as_object_mut) {
                value.remove("emitted_ts");
            }
            v
        })
        .collect()
}

/// The pseudonym key of every fixture's ride-hailing alert ids.
const GOLDEN_PLATE_KEY: &str = "676f6c64656e2d706c6174652d6b65792d666f722d7465737473";

fn run_fixture(dir: &Path) {
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("out.ndjson");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_roadwatch"));
    cmd.current_dir(root())
        .arg("replay")
        .args(["--roads", "config/roads/bijie.geojson"])
        .arg("--input")
        .arg(dir.join("input.ndjson"))
        .arg("--output")
        .arg(&output)
        // The expected ids were made under this key (a fixture, not a secret).
        .env("ROADWATCH__PRIVACY__PLATE_KEY", GOLDEN_PLATE_KEY);
    let config = dir.join("config.toml");
    if config.exists() {
        cmd.arg("--config").arg(&config);
    }
    let status = cmd.output().unwrap();
    assert!(
        status.status.success(),
        "replay of {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&status.stderr)
    );
    let produced = std::fs::read_to_string(&output).unwrap();
    let expected_path = dir.join("expected.ndjson");
    if std::env::var_os("ROADWATCH_BLESS").is_some() {
        std::fs::write(&expected_path, &produced).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|_| panic!("{} is missing", expected_path.display()));
    let (got, want) = (normalise(&produced), normalise(&expected));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "{}: output line {} differs", dir.display(), i + 1);
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{}: number of output lines",
        dir.display()
    );
}

#[test]
fn golden_replays() {
    let fixtures = root().join("tests/fixtures/replay");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input.ndjson").exists())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixtures under {}", fixtures.display());
    for dir in dirs {
        run_fixture(&dir);
    }
}

#[test]
fn replay_twice_gives_the_same_output() {
    let dir = root().join("tests/fixtures/replay/pedestrian");
    let tmp = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for n in 0..2 {
        let output = tmp.path().join(format!("out{n}.ndjson"));
        let st = Command::new(env!("CARGO_BIN_EXE_roadwatch"))
            .current_dir(root())
            .args(["replay", "--roads", "config/roads/bijie.geojson", "--input"])
            .arg(dir.join("input.ndjson"))
            .arg("--output")
            .arg(&output)
            .status()
            .unwrap();
        assert!(st.success());
        outputs.push(normalise(&std::fs::read_to_string(&output).unwrap()));
    }
    assert_eq!(outputs[0], outputs[1]);
    assert!(!outputs[0].is_empty());
}

#[test]
fn bad_arguments_exit_2_and_missing_files_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.ndjson");
    let missing_input = Command::new(env!("CARGO_BIN_EXE_roadwatch"))
        .current_dir(root())
        .args(["replay", "--input", "/nonexistent.ndjson", "--output"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(missing_input.status.code(), Some(1));
    let bad_roads = tmp.path().join("roads.geojson");
    std::fs::write(&bad_roads, "{\"type\":\"Nope\"}").unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_roadwatch"))
        .current_dir(root())
        .args(["replay", "--input", "/dev/null", "--output"])
        .arg(&out)
        .arg("--roads")
        .arg(&bad_roads)
        .output()
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let no_input_flag = Command::new(env!("CARGO_BIN_EXE_roadwatch"))
        .args(["replay", "--output", "x"])
        .output()
        .unwrap();
    assert_eq!(no_input_flag.status.code(), Some(2));
}

/// Alert documents read back (the simulator's patrol apps do) are the documents written:
/// every alert of every golden expectation survives a round trip through `Alert`.
#[test]
fn every_golden_alert_document_reads_back_as_written() {
    let fixtures = root().join("tests/fixtures/replay");
    let mut n = 0;
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path().join("expected.ndjson");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["value"].get("alert_id").is_none() {
                continue;
            }
            let alert: roadwatch::core::model::Alert = serde_json::from_value(v["value"].clone())
                .unwrap_or_else(|e| panic!("{}: {e}: {line}", path.display()));
            assert_eq!(
                serde_json::to_value(&alert).unwrap(),
                v["value"],
                "{}",
                path.display()
            );
            n += 1;
        }
    }
    assert!(n > 50, "only {n} alert documents");
}
