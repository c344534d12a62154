//! `roadwatch report` as an operator runs it: over the committed fixture (replay output
//! lines, and the same documents bare on stdin), over bad input, and over a real
//! alerts topic. The Kafka test needs a broker (`scripts/test` starts one, or
//! KAFKA_BOOTSTRAP names one); without one it fails rather than pretending to pass.
use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::producer::FutureRecord;
use roadwatch::io::kafka::{self, TopicSpec};
use serde_json::Value;

const FIXTURE: &str = "tests/fixtures/report/alerts.ndjson";

fn roadwatch(args: &[&str], envs: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_roadwatch"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the roadwatch binary runs");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        pipe.write_all(bytes).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_report(o: &Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// The fixture's alerts-topic documents, bare, as a console consumer prints them.
fn bare_documents() -> Vec<String> {
    let text =
        std::fs::read_to_string(format!("{}/{FIXTURE}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["topic"] == "alerts")
        .map(|v| v["value"].to_string())
        .collect()
}

/// What the fixture holds: 8 alerts in 17 alerts-topic documents (a dispatch copy and
/// a DLQ line are not counted); cam-G76-0042 raised two false alarms.
fn assert_fixture_counts(v: &Value) {
    assert_eq!(v["alerts"], 8, "{v}");
    assert_eq!(v["documents"], 17, "{v}");
    let t = &v["total"];
    let got: Vec<u64> = [
        "alerts",
        "open",
        "closed",
        "confirmed",
        "false_alarm",
        "not_found",
        "duplicate",
        "unknown",
    ]
    .iter()
    .map(|k| t[*k].as_u64().unwrap())
    .collect();
    assert_eq!(got, [8, 1, 6, 2, 2, 1, 1, 1], "{t}");
    assert!((t["precision"].as_f64().unwrap() - 2.0 / 6.0).abs() < 1e-12);

    let detectors: Vec<(String, Value)> = v["by_detector"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!(
                    "{}/{}",
                    r["kind"].as_str().unwrap(),
                    r["subtype"].as_str().unwrap()
                ),
                r["precision"].clone(),
            )
        })
        .collect();
    let expected: Vec<(String, Value)> = [
        ("illegal_ride_hailing/pattern", Value::from(1.0)),
        ("illegal_ride_hailing/watchlist", Value::Null),
        ("pedestrian/bicycle", Value::from(1.0)),
        ("pedestrian/pedestrian", Value::from(0.0)),
        ("pedestrian/tricycle", Value::from(0.0)),
        ("severe_weather/fog", Value::Null),
        ("severe_weather/ice", Value::from(0.0)),
    ]
    .into_iter()
    .map(|(k, p)| (k.to_owned(), p))
    .collect();
    assert_eq!(detectors, expected);

    let sources: Vec<String> = v["by_source"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["device"].as_str().unwrap(),
                r["id"].as_str().unwrap(),
                r["alerts"]
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            "camera cam-G76-0042 2",
            "station wx-03 1",
            "camera cam-G76-0017 2",
            "reader anpr-G76-K1180-U 1",
            "camera cam-G76-0018 1",
            "reader anpr-G76-K1150-U 1",
            "station wx-07 1",
        ]
    );
    let worst = &v["by_source"][0];
    assert_eq!(
        (worst["false_alarm"].as_u64(), worst["closed"].as_u64()),
        (Some(2), Some(2))
    );
}

#[test]
fn text_report_over_the_fixture() {
    let out = roadwatch(&["report", "--input", FIXTURE], &[], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = "\
8 alerts from 17 documents; 0 skipped

by detector
detector                        alerts  open  closed  confirmed  false alarm  not found  duplicate  unknown  precision
illegal_ride_hailing/pattern         1     0       1          1            0          0          0        0     100.0%
illegal_ride_hailing/watchlist       1     1       0          0            0          0          0        0          -
pedestrian/bicycle                   1     0       1          1            0          0          0        0     100.0%
pedestrian/pedestrian                2     0       2          0            2          0          0        0       0.0%
pedestrian/tricycle                  1     0       1          0            0          0          1        0       0.0%
severe_weather/fog                   1     0       0          0            0          0          0        1          -
severe_weather/ice                   1     0       1          0            0          1          0        0       0.0%
total                                8     1       6          2            2          1          1        1      33.3%

by source
source                   alerts  open  closed  confirmed  false alarm  not found  duplicate  unknown  precision
camera cam-G76-0042           2     0       2          0            2          0          0        0       0.0%
station wx-03                 1     0       1          0            0          1          0        0       0.0%
camera cam-G76-0017           2     0       2          1            0          0          1        0      50.0%
reader anpr-G76-K1180-U       1     0       1          1            0          0          0        0     100.0%
camera cam-G76-0018           1     0       1          1            0          0          0        0     100.0%
reader anpr-G76-K1150-U       1     1       0          0            0          0          0        0          -
station wx-07                 1     0       0          0            0          0          0        1          -
total                         8     1       6          2            2          1          1        1      33.3%
";
    assert_eq!(stdout(&out), expected);
    // Plates are personal data; the fixture's ride-hailing documents carry two.
    assert!(!stdout(&out).contains("贵"), "{}", stdout(&out));
}

#[test]
fn json_report_over_the_fixture() {
    let out = roadwatch(
        &["report", "--input", FIXTURE, "--format", "json"],
        &[],
        None,
    );
    let v = json_report(&out);
    assert_eq!(v["skipped"], 0);
    assert_fixture_counts(&v);
    assert!(!stdout(&out).contains("贵"));
}

#[test]
fn bare_documents_on_stdin_give_the_same_report() {
    let mut text = bare_documents().join("\n");
    text.push('\n');
    let bare = json_report(&roadwatch(
        &["report", "--input", "-", "--format", "json"],
        &[],
        Some(text.as_bytes()),
    ));
    let replay = json_report(&roadwatch(
        &["report", "--input", FIXTURE, "--format", "json"],
        &[],
        None,
    ));
    assert_eq!(bare, replay);
}

#[test]
fn bad_lines_are_skipped_with_a_warning_naming_them() {
    let docs = bare_documents();
    let mut text = String::new();
    text.push_str(&docs[0]);
    text.push_str("\n{\"alert_id\":\"half\n\n[]\n");
    text.push_str(&docs[1]);
    text.push_str("\n{\"topic\":\"alerts\",\"key\":\"x\",\"value\":{\"kind\":\"pedestrian\"}}\n");
    let out = roadwatch(
        &["report", "--input", "-", "--format", "json"],
        &[],
        Some(text.as_bytes()),
    );
    let v = json_report(&out);
    assert_eq!(
        (v["documents"].as_u64(), v["skipped"].as_u64()),
        (Some(2), Some(3))
    );
    let err = stderr(&out);
    assert!(
        err.contains("skipped 3 lines that are not alert documents"),
        "{err}"
    );
    for named in [
        "line 2: not JSON",
        "line 4: not a JSON object",
        "line 6: not an alert document",
    ] {
        assert!(err.contains(named), "{named} missing from {err}");
    }
}

#[test]
fn usage_and_file_errors_have_their_exit_statuses() {
    // Exactly one of --input and --kafka.
    assert_eq!(roadwatch(&["report"], &[], None).status.code(), Some(2));
    let both = roadwatch(&["report", "--input", FIXTURE, "--kafka"], &[], None);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    let format = roadwatch(
        &["report", "--input", FIXTURE, "--format", "csv"],
        &[],
        None,
    );
    assert_eq!(format.status.code(), Some(2));
    assert!(stderr(&format).contains("--format"), "{}", stderr(&format));

    let missing = roadwatch(
        &["report", "--input", "tests/fixtures/report/nope.ndjson"],
        &[],
        None,
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("tests/fixtures/report/nope.ndjson"),
        "{}",
        stderr(&missing)
    );
    let dir = roadwatch(&["report", "--input", "tests/fixtures/report"], &[], None);
    assert_eq!(dir.status.code(), Some(1));
    assert!(
        stderr(&dir).contains("tests/fixtures/report"),
        "{}",
        stderr(&dir)
    );
}

#[test]
fn an_unreachable_broker_exits_1_naming_it() {
    // Nothing listens on port 1; the metadata request times out.
    let out = roadwatch(
        &["report", "--kafka"],
        &[("ROADWATCH__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("127.0.0.1:1"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_report_reads_the_alerts_topic_to_its_end() {
    let mut k = roadwatch::config::defaults().kafka;
    k.bootstrap_servers =
        std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("roadwatch-report-{nonce}");
    kafka::create_topics(
        &k,
        &[TopicSpec {
            name: topic.clone(),
            partitions: 2,
            replication: 1,
        }],
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "no Kafka broker at {} (run scripts/test): {e:#}",
            k.bootstrap_servers
        )
    });

    // Keyed by alert_id, as roadwatch produces them: one alert's documents stay in
    // order in one partition, and the two partitions interleave.
    let producer = kafka::producer(&k).unwrap();
    let mut records: Vec<(String, String)> = bare_documents()
        .into_iter()
        .map(|d| {
            let id = serde_json::from_str::<Value>(&d).unwrap()["alert_id"]
                .as_str()
                .unwrap()
                .to_owned();
            (id, d)
        })
        .collect();
    records.push(("junk".to_owned(), "not an alert".to_owned()));
    for (key, payload) in &records {
        producer
            .send(
                FutureRecord::to(&topic).key(key).payload(payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("delivery report");
    }

    let out = tokio::task::spawn_blocking({
        let servers = k.bootstrap_servers.clone();
        let topic = topic.clone();
        move || {
            roadwatch(
                &["report", "--kafka", "--format", "json"],
                &[
                    ("ROADWATCH__KAFKA__BOOTSTRAP_SERVERS", &servers),
                    ("ROADWATCH__KAFKA__TOPICS__ALERTS", &topic),
                ],
                None,
            )
        }
    })
    .await
    .unwrap();
    let deleted = kafka::delete_topics(&k, &[&topic]).await;
    let v = json_report(&out);
    assert_fixture_counts(&v);
    assert_eq!(v["skipped"], 1, "{v}");
    assert!(stderr(&out).contains("offset"), "{}", stderr(&out));
    deleted.unwrap();

    // A topic that does not exist is a failure that names it and the brokers.
    let out = roadwatch(
        &["report", "--kafka"],
        &[
            ("ROADWATCH__KAFKA__BOOTSTRAP_SERVERS", &k.bootstrap_servers),
            (
                "ROADWATCH__KAFKA__TOPICS__ALERTS",
                &format!("{topic}-absent"),
            ),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{topic}-absent")),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&k.bootstrap_servers),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_lists_report() {
    let out = roadwatch(&["--help"], &[], None);
    assert!(out.status.success());
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.trim_start().starts_with("report ")),
        "{}",
        stdout(&out)
    );
}

/// The engine and the report together (issue #14): replay of the lifecycle golden's
/// records, where P-02 resolves the open-road incident as a false alarm and the tunnel
/// incident nobody took closes `unknown`; the report counts the false alarm against the
/// detector and both cameras that saw it.
#[test]
fn a_false_alarm_resolved_by_a_unit_shows_in_the_precision_of_its_detector_and_cameras() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.ndjson");
    let out_str = out_path.to_str().unwrap();
    let replayed = roadwatch(
        &[
            "replay",
            "--roads",
            "config/roads/bijie.geojson",
            "--input",
            "tests/fixtures/replay/lifecycle_pedestrian/input.ndjson",
            "--output",
            out_str,
        ],
        &[],
        None,
    );
    assert!(replayed.status.success(), "{}", stderr(&replayed));
    let v = json_report(&roadwatch(
        &["report", "--input", out_str, "--format", "json"],
        &[],
        None,
    ));
    let det = v["by_detector"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "pedestrian" && r["subtype"] == "pedestrian")
        .expect("a pedestrian row")
        .clone();
    assert_eq!(det["alerts"], 2, "{det}");
    assert_eq!(det["false_alarm"], 1, "{det}");
    assert_eq!(det["unknown"], 1, "{det}");
    assert_eq!(det["open"], 0, "{det}");
    assert_eq!(det["precision"], 0.0, "{det}");
    for camera in ["cam-G76-0031", "cam-G76-0032"] {
        let row = v["by_source"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == camera)
            .unwrap_or_else(|| panic!("{camera} in {v}"))
            .clone();
        assert_eq!(row["false_alarm"], 1, "{row}");
    }
}
