//! The binary as an operator meets it: help, configuration errors and exit statuses.
use std::process::{Command, Output};

fn roadwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_roadwatch"))
        .args(args)
        .env_remove("RUST_LOG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the roadwatch binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_lists_the_six_commands() {
    let out = roadwatch(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["run", "replay", "demo", "simulate", "check-config", "roads"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{cmd} "))),
            "{cmd} missing from:\n{text}"
        );
    }
}

#[test]
fn check_config_prints_the_effective_configuration() {
    let out = roadwatch(&["check-config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("watchlist_file"), "{text}");
    assert!(text.contains("max_snap_m = 100.0"), "{text}");
}

#[test]
fn misspelt_key_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[ride_hailing]\nwatchlist_fiel = \"plates.txt\"\n").unwrap();
    let out = roadwatch(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("ride_hailing.watchlist_fiel"),
        "{}",
        stderr(&out)
    );
    // Every command validates its configuration before doing anything else.
    let out = roadwatch(&["run", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_environment_value_exits_2_naming_the_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_roadwatch"))
        .arg("check-config")
        .env("ROADWATCH__DISPATCH__SPEED_MS", "fast")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("dispatch.speed_ms"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_command_is_a_usage_error() {
    assert_eq!(roadwatch(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn locate_without_a_shared_plate_key_exits_2_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_roadwatch"))
        .arg("locate")
        .env_remove("ROADWATCH__PRIVACY__PLATE_KEY")
        // No broker is asked: the check comes first.
        .env("ROADWATCH__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("privacy.plate_key"),
        "{}",
        stderr(&out)
    );
}
