//! The screens in a real browser against the production path (issue #15): the real
//! broker, `roadwatch run`, `roadwatch console`, and Debian's Chromium driven by
//! playwright-core (web/tests/e2e.mjs; scripts/setup installs both). The browser script
//! plays the operator and the patrol officer; this test plays the roadside camera,
//! stops and restarts the console mid-stream, and checks on the `alerts` topic that
//! every step happened, and with `roadwatch report` that the false alarm counts.
mod kafka_support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kafka_support::*;
use roadwatch::config::Guarantee;
use roadwatch::io::console::auth::{hash_password, token_sha256};
use serde_json::Value;

const OPERATOR: (&str, &str) = ("op.zhang", "correct horse battery");
/// The unit the operator assigns, and one that has nothing to do with the alert.
const UNIT: (&str, &str) = ("P-03", "token-of-p03-for-the-test");
const OTHER: (&str, &str) = ("P-04", "token-of-p04-for-the-test");
/// Open road on G76 `up` (tests/fixtures/replay/pedestrian): the second incident.
const OPEN_ROAD: (f64, f64) = (106.024899, 27.04664);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn node_and_browser_ready() -> Result<(), String> {
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        return Err(
            "no /usr/bin/chromium: run scripts/setup (it installs Debian's chromium)".into(),
        );
    }
    if !std::path::Path::new("web/node_modules/playwright-core").exists() {
        return Err(
            "no web/node_modules/playwright-core: run scripts/setup (npm ci in web/)".into(),
        );
    }
    Ok(())
}

#[test]
fn an_operator_and_a_patrol_officer_handle_an_alert_in_the_browser_across_a_console_restart() {
    node_and_browser_ready().unwrap();
    let stage = Stage::new("console", 1, Guarantee::ExactlyOnce);
    let dir = tempfile::tempdir().unwrap();
    let accounts = dir.path().join("accounts.toml");
    std::fs::write(
        &accounts,
        format!(
            "[[operators]]\nid = \"{}\"\npassword_hash = \"{}\"\n\n[[units]]\nunit_id = \"{}\"\ntoken_sha256 = \"{}\"\n\n[[units]]\nunit_id = \"{}\"\ntoken_sha256 = \"{}\"\n",
            OPERATOR.0,
            hash_password(OPERATOR.1),
            UNIT.0,
            token_sha256(UNIT.1),
            OTHER.0,
            token_sha256(OTHER.1)
        ),
    )
    .unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let console_env = [
        ("ROADWATCH__CONSOLE__LISTEN", listen.as_str()),
        (
            "ROADWATCH__CONSOLE__ACCOUNTS_FILE",
            accounts.to_str().unwrap(),
        ),
        // Shared by both incarnations: the operator's session outlives the restart.
        (
            "ROADWATCH__CONSOLE__SESSION_SECRET",
            "the test's session key",
        ),
    ];
    let run_log = dir.path().join("run.log");
    let _show_run = ShowLogOnPanic(run_log.clone());
    let mut run = Child::spawn(&stage, "a", run_log);
    run.wait_for_log("partitions assigned", Duration::from_secs(60));
    let p = producer(&stage);
    send_units(&p, &stage.topics().patrol);
    // A weather station's reading: the map shows the station (the script checks every
    // station the API lists has its marker).
    let reading = serde_json::json!({"event_id": "wx-01-000001", "station_id": "wx-01", "ts": now_ms(),
        "lon": WX01.0, "lat": WX01.1, "visibility_m": 4200.0, "wind_speed_ms": 3.1, "air_temp_c": 6.5});
    produce(
        &p,
        &stage.topics().weather,
        "wx-01",
        reading.to_string().as_bytes(),
    );

    let console_log = dir.path().join("console.log");
    let _show_console = ShowLogOnPanic(console_log.clone());
    let start_console = || {
        let mut c = Child::spawn_command(
            &stage,
            "console",
            console_log.clone(),
            &["console"],
            &console_env,
        );
        c.wait_for_log("console: open", Duration::from_secs(30));
        c
    };
    let mut console = Some(start_console());

    let shots = std::env::var("RW_SHOTS")
        .unwrap_or_else(|_| dir.path().join("shots").display().to_string());
    std::fs::create_dir_all(&shots).unwrap();
    let mut browser = Command::new("node")
        .arg("web/tests/e2e.mjs")
        .env("RW_BASE", format!("http://{listen}"))
        .env("RW_OPERATOR", OPERATOR.0)
        .env("RW_PASSWORD", OPERATOR.1)
        .env("RW_UNIT", UNIT.0)
        .env("RW_TOKEN", UNIT.1)
        .env("RW_OTHER_UNIT", OTHER.0)
        .env("RW_OTHER_TOKEN", OTHER.1)
        .env("RW_SHOTS", &shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs (scripts/setup installs what the browser test needs)");
    let mut to_browser = browser.stdin.take().unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    let stdout = browser.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let expect = |prefix: &str, limit: Duration| -> String {
        let line = lines.recv_timeout(limit).unwrap_or_else(|_| {
            panic!("the browser script said nothing within {limit:?}, waiting for {prefix}")
        });
        eprintln!("browser: {line}");
        assert!(
            line.starts_with(prefix),
            "expected {prefix}, the browser script said: {line}"
        );
        line
    };

    expect("READY", Duration::from_secs(60));
    let cam = "cam-G76-tunnel";
    let v = pedestrian(cam, 0, TUNNEL.0, TUNNEL.1, now_ms());
    produce(&p, &stage.topics().camera, cam, v.to_string().as_bytes());
    writeln!(to_browser, "GO").unwrap();
    let line = expect("ALERT", Duration::from_secs(30));
    let mut parts = line.split_whitespace().skip(1);
    let alert_id = parts.next().expect("an alert id").to_owned();
    let shown_ms: u64 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .expect("milliseconds");
    eprintln!("the alert was on the console {shown_ms} ms after the camera record was produced");
    expect("ASSIGNED", Duration::from_secs(30));
    expect("RESOLVED", Duration::from_secs(30));
    expect("ACCESS_OK", Duration::from_secs(30));
    expect("RESTART", Duration::from_secs(30));

    // Down: the console stops, the engine raises another alert meanwhile.
    let stopped = console.take().unwrap().terminate();
    assert!(
        stopped.success(),
        "the console stops cleanly on SIGTERM: {stopped}"
    );
    let mut reader = Reader::new(&stage);
    let v = pedestrian("cam-G76-open", 0, OPEN_ROAD.0, OPEN_ROAD.1, now_ms());
    produce(
        &p,
        &stage.topics().camera,
        "cam-G76-open",
        v.to_string().as_bytes(),
    );
    assert!(
        reader.until(Duration::from_secs(30), |seen| seen.iter().any(|o| o.topic
            == stage.topics().alerts
            && o.value["alert_id"] != alert_id.as_str())),
        "the second alert is on the alerts topic"
    );
    console = Some(start_console());
    writeln!(to_browser, "RESTARTED").unwrap();
    let line = expect("RECONNECTED", Duration::from_secs(60));
    expect("DONE", Duration::from_secs(30));
    let status = browser.wait().unwrap();
    assert!(status.success(), "the browser script failed: {status}");
    let second = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert_ne!(second, alert_id);

    // Every step of the first alert, as the command center's consumers see it.
    reader.drain(Duration::from_secs(3));
    let docs: Vec<&Value> = reader
        .seen
        .iter()
        .filter(|o| o.topic == stage.topics().alerts && o.value["alert_id"] == alert_id.as_str())
        .map(|o| &o.value)
        .collect();
    let has = |what: &str, f: &dyn Fn(&Value) -> bool| {
        assert!(
            docs.iter().any(|d| f(d)),
            "no document {what} among {docs:#?}"
        );
    };
    has("new", &|d| d["status"] == "new");
    has("acknowledged by the operator", &|d| {
        d["acknowledged_by"]["operator_id"] == OPERATOR.0
    });
    has("assigning the unit, by the operator", &|d| {
        d["status"] == "redispatch"
            && d["dispatch"]["unit_id"] == UNIT.0
            && d["dispatch"]["assigned_by"] == OPERATOR.0
    });
    let last = docs.last().expect("documents");
    assert_eq!(last["status"], "cleared", "{last:#}");
    assert_eq!(last["outcome"], "false_alarm", "{last:#}");
    assert_eq!(last["closed_by"]["unit_id"], UNIT.0, "{last:#}");
    assert!(
        reader.seen.iter().any(|o| o.topic
            == format!("{}{}", stage.topics().dispatch_prefix, UNIT.0)
            && o.value["alert_id"] == alert_id.as_str()),
        "the dispatch reached {}'s own topic",
        UNIT.0
    );

    // The report counts the false alarm.
    let lines_path = dir.path().join("alerts.ndjson");
    let text: String = reader
        .seen
        .iter()
        .filter(|o| o.topic == stage.topics().alerts)
        .map(|o| format!("{}\n", o.value))
        .collect();
    std::fs::write(&lines_path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_roadwatch"))
        .args([
            "report",
            "--input",
            lines_path.to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = report["by_detector"]
        .as_array()
        .and_then(|rows| {
            rows.iter()
                .find(|r| r["kind"] == "pedestrian" && r["subtype"] == "pedestrian")
        })
        .unwrap_or_else(|| panic!("no pedestrian row: {report:#}"));
    assert_eq!(row["false_alarm"], 1, "{report:#}");
    assert_eq!(
        row["precision"], 0.0,
        "one alert closed, a false alarm: {report:#}"
    );
    let camera = report["by_source"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == cam))
        .unwrap_or_else(|| panic!("no row for {cam}: {report:#}"));
    assert_eq!(
        camera["false_alarm"], 1,
        "the camera that cried wolf: {report:#}"
    );
    let started = Instant::now();
    drop(console);
    drop(run);
    eprintln!("screenshots in {shots} ({:?} to stop)", started.elapsed());
}
