//! The deployment (docker-compose.yml, deploy/**) and the metrics as Prometheus sees them.
//!
//! Docker does not run on the development machines, so this validates everything that can
//! be validated without it, with the tools of Debian's `prometheus` and `docker-compose`
//! packages (installed by scripts/setup; a missing tool fails the test, never skips it):
//! - Prometheus's configuration and rule files (`promtool check config|rules`), and the
//!   alerting rules' unit tests (`promtool test rules`);
//! - the compose file (`docker-compose config`) and the topic-init script;
//! - the Grafana provisioning and dashboard, and that every metric the dashboard and the
//!   rules query is one the code exports;
//! - the exposition itself (`promtool check metrics`), from the library and from a
//!   running `roadwatch demo`, and a real Prometheus server scraping that demo.
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use roadwatch::core::dispatch::DispatchStats;
use roadwatch::core::engine::EngineStats;
use roadwatch::core::model::{AlertKind, Stream};
use roadwatch::io::metrics::{Metrics, Stage};

// ---------------------------------------------------------------------------------------
// Helpers: files, external tools, YAML/JSON walking, metric names.

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn yaml(rel: &str) -> Value {
    serde_yaml_ng::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

/// Which Debian package provides each external tool the tests run.
fn package_of(program: &str) -> &'static str {
    match program {
        "promtool" | "prometheus" => "prometheus",
        "docker-compose" => "docker-compose",
        _ => "?",
    }
}

/// Runs an external tool to completion, feeding `stdin` if given. A tool that is not
/// installed fails the test with the way to install it.
fn run_tool(program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(repo())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` is not installed: run scripts/setup (Debian package `{}`)",
            package_of(program)
        ),
        Err(e) => panic!("starting {program}: {e}"),
    };
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(text.as_bytes())
            .expect("writing the tool's stdin");
    }
    child.wait_with_output().expect("waiting for the tool")
}

fn describe(program: &str, args: &[&str], out: &Output) -> String {
    format!(
        "{program} {}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_ok(program: &str, args: &[&str]) -> Output {
    let out = run_tool(program, args, None);
    assert!(out.status.success(), "{}", describe(program, args, &out));
    out
}

/// Every string value under a key named `key`, anywhere in the document.
fn strings_under(v: &Value, key: &str, found: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match child {
                    Value::String(s) if k == key => found.push(s.clone()),
                    _ => strings_under(child, key, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| strings_under(i, key, found)),
        _ => {}
    }
}

fn rule_files() -> Vec<String> {
    let dir = repo().join("deploy/prometheus/rules");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".yml"))
        .map(|n| format!("deploy/prometheus/rules/{n}"))
        .collect();
    files.sort();
    files
}

/// (record name → expr) and (alert name → expr) over every rule file.
fn rules() -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut records = BTreeMap::new();
    let mut alerts = BTreeMap::new();
    for file in rule_files() {
        let doc = yaml(&file);
        let groups = doc["groups"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: no groups"));
        for rule in groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        {
            let expr = rule["expr"]
                .as_str()
                .expect("every rule has an expr")
                .to_owned();
            if let Some(name) = rule["record"].as_str() {
                records.insert(name.to_owned(), expr);
            } else if let Some(name) = rule["alert"].as_str() {
                alerts.insert(name.to_owned(), expr);
            } else {
                panic!("{file}: a rule with neither record nor alert: {rule}");
            }
        }
    }
    (records, alerts)
}

/// The `roadwatch_…` metric families a PromQL expression reads: recording-rule names
/// (`level:metric:ops`) removed first, then `_bucket`/`_sum`/`_count` stripped.
fn queried_metrics(expr: &str, recording: &BTreeSet<String>) -> BTreeSet<String> {
    let mut text = expr.to_owned();
    // Longest first, so that a name that prefixes another cannot leave a fragment.
    let mut names: Vec<&String> = recording.iter().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        text = text.replace(name.as_str(), " ");
    }
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while let Some(pos) = text[i..].find("roadwatch_") {
        let start = i + pos;
        let preceded_by_ident = start > 0
            && (bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b':');
        let mut end = start + "roadwatch_".len();
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        if !preceded_by_ident {
            let mut name = &text[start..end];
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(base) = name.strip_suffix(suffix) {
                    name = base;
                }
            }
            found.insert(name.to_owned());
        }
        i = end;
    }
    found
}

/// Recording-rule names (`level:metric:operations`) an expression reads.
fn queried_recordings(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.matches(':').count() == 2 && !t.starts_with(':'))
        .map(str::to_owned)
        .collect()
}

/// Metric family names and types from `# TYPE` lines of a text exposition.
fn families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

/// Sum of every sample of `name` (any labels) in a text exposition.
fn sample_sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A metrics registry after at least one use of every public method and family, so that
/// families without pre-registered label values appear in the exposition too.
fn exercised_metrics() -> Metrics {
    let m = Metrics::new();
    for (i, kind) in AlertKind::ALL.iter().copied().enumerate() {
        m.observe_latency(kind, 0.004 * (i + 1) as f64);
        m.alerts
            .with_label_values(&[kind.as_str(), "warning", "new"])
            .inc();
    }
    m.observe_latency(AlertKind::ALL[0], -0.5); // clock skew: clamped to 0
    m.observe_latency(AlertKind::ALL[0], 30.0); // beyond the last bucket: +Inf
    for (i, stage) in Stage::ALL.into_iter().enumerate() {
        m.observe_stage(stage, 1e-6 * (i + 1) as f64);
    }
    for stream in Stream::ALL.iter().copied() {
        m.record(stream);
    }
    m.dlq("invalid_json");
    m.late_records.inc();
    m.consumer_lag
        .with_label_values(&["camera-detections", "0"])
        .set(42);
    m.transaction_commit
        .with_label_values(&["exactly_once"])
        .observe(0.012);
    let stats = EngineStats {
        open_incidents: 2,
        tracked_plates: 10,
        units: 5,
        open_assignments: 1,
        weather_stations: 3,
        ..EngineStats::default()
    };
    let dispatch = DispatchStats {
        assigned: 3,
        acks_accepted: 2,
        escalated: 1,
        ..DispatchStats::default()
    };
    m.update_engine(&stats, &dispatch);
    m
}

/// Every family the code exports: the fresh exposition, plus the families that only
/// appear once a label value has been used (consumer lag, commit duration).
fn exported_families() -> BTreeMap<String, String> {
    let mut all = families(&Metrics::new().render());
    all.extend(families(&exercised_metrics().render()));
    all
}

// ---------------------------------------------------------------------------------------
// Prometheus configuration and rules.

#[test]
fn promtool_accepts_the_prometheus_config_and_its_rule_files() {
    let out = run_ok(
        "promtool",
        &["check", "config", "deploy/prometheus/prometheus.yml"],
    );
    // `check config` also loads the rule files the config names: a glob matching none
    // would pass silently.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = format!("SUCCESS: {} rule files found", rule_files().len());
    assert!(
        text.contains(&expected),
        "expected `{expected}` in:\n{text}"
    );
}

#[test]
fn promtool_accepts_every_rule_file() {
    let files = rule_files();
    assert!(
        files.len() >= 2,
        "recording and alerting rules expected: {files:?}"
    );
    let mut args = vec!["check", "rules"];
    args.extend(files.iter().map(String::as_str));
    run_ok("promtool", &args);
}

#[test]
fn rules_define_the_alerts_and_recordings_operators_need() {
    let (records, alerts) = rules();
    for name in [
        "RoadwatchAlertLatencyHigh",
        "RoadwatchDeadLetterRateHigh",
        "RoadwatchConsumerLagHigh",
        "RoadwatchNoRecords",
        "RoadwatchEscalatedAlertUnacknowledged",
    ] {
        assert!(
            alerts.contains_key(name),
            "alert {name} missing: {alerts:?}"
        );
    }
    assert!(
        alerts["RoadwatchAlertLatencyHigh"].contains("> 1"),
        "the latency objective is 1 s: {}",
        alerts["RoadwatchAlertLatencyHigh"]
    );
    assert!(alerts["RoadwatchNoRecords"].contains("[5m]"));
    for (name, quantile) in [
        ("kind:roadwatch_event_to_alert_seconds:p50_5m", "0.50"),
        ("kind:roadwatch_event_to_alert_seconds:p99_5m", "0.99"),
    ] {
        let expr = records
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(
            expr.contains(&format!("histogram_quantile({quantile},"))
                && expr.contains("by (kind, le)"),
            "{name}: {expr}"
        );
    }
    let throughput = &records["stream:roadwatch_records:rate1m"];
    assert!(throughput.contains("by (stream)"), "{throughput}");
}

#[test]
fn alerting_rule_unit_tests_fire_every_alert() {
    let tests_file = "deploy/prometheus/tests/rules_test.yml";
    run_ok("promtool", &["test", "rules", tests_file]);

    // Every alert has a test case in which it fires, so a new rule cannot go untested.
    let doc = yaml(tests_file);
    let mut fired = BTreeSet::new();
    for case in doc["tests"].as_array().expect("tests: a list") {
        for t in case["alert_rule_test"].as_array().into_iter().flatten() {
            let expected = t["exp_alerts"].as_array().map_or(0, Vec::len);
            if expected > 0 {
                fired.insert(t["alertname"].as_str().expect("alertname").to_owned());
            }
        }
    }
    let (_, alerts) = rules();
    let untested: Vec<&String> = alerts.keys().filter(|a| !fired.contains(*a)).collect();
    assert!(
        untested.is_empty(),
        "alerts never fired in {tests_file}: {untested:?}"
    );
    // And the unit tests load the real rule files, not copies.
    let loaded: Vec<String> = doc["rule_files"]
        .as_array()
        .expect("rule_files")
        .iter()
        .map(|f| {
            f.as_str()
                .expect("path")
                .trim_start_matches("../")
                .to_owned()
        })
        .collect();
    for file in rule_files() {
        let name = file.trim_start_matches("deploy/prometheus/");
        assert!(
            loaded.iter().any(|l| l == name),
            "{tests_file} does not load {name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// docker-compose.yml and the topic-init script.

/// `docker-compose config`: the file as Compose understands it, with relative paths
/// resolved and variables substituted.
fn compose_config() -> Value {
    let out = run_ok("docker-compose", &["-f", "docker-compose.yml", "config"]);
    serde_yaml_ng::from_slice(&out.stdout).expect("docker-compose config prints YAML")
}

/// (source, target) of every bind mount of a service, short or long syntax.
fn bind_mounts(service: &Value) -> Vec<(String, String)> {
    let mut mounts = Vec::new();
    for v in service["volumes"].as_array().into_iter().flatten() {
        match v {
            Value::String(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                if parts.len() >= 2 && parts[0].starts_with('/') {
                    mounts.push((parts[0].to_owned(), parts[1].to_owned()));
                }
            }
            Value::Object(m) if m.get("type").and_then(Value::as_str) == Some("bind") => {
                mounts.push((
                    m["source"].as_str().expect("source").to_owned(),
                    m["target"].as_str().expect("target").to_owned(),
                ));
            }
            _ => {}
        }
    }
    mounts
}

fn env_var(service: &Value, key: &str) -> Option<String> {
    match &service["environment"] {
        Value::Object(m) => m.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        Value::Array(items) => items.iter().filter_map(Value::as_str).find_map(|kv| {
            kv.strip_prefix(key)
                .and_then(|r| r.strip_prefix('='))
                .map(str::to_owned)
        }),
        _ => None,
    }
}

fn command_of(service: &Value) -> Vec<String> {
    match &service["command"] {
        Value::Array(a) => a
            .iter()
            .map(|s| s.as_str().unwrap_or("").to_owned())
            .collect(),
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn depends_on(service: &Value, on: &str) -> Option<String> {
    match &service["depends_on"] {
        Value::Object(m) => m.get(on).map(|d| {
            d["condition"]
                .as_str()
                .unwrap_or("service_started")
                .to_owned()
        }),
        Value::Array(a) => a
            .iter()
            .any(|s| s.as_str() == Some(on))
            .then(|| "service_started".to_owned()),
        _ => None,
    }
}

#[test]
fn compose_file_is_valid_and_wires_the_stack_together() {
    let cfg = compose_config();
    let services = cfg["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "kafka",
        "kafka-init",
        "roadwatch",
        "simulator",
        "console",
        "prometheus",
        "grafana",
    ]
    .into();
    assert_eq!(names, expected);

    // Kafka: the official image, 4.1.x, in KRaft mode (broker and controller, no ZooKeeper).
    let kafka = &services["kafka"];
    let image = kafka["image"].as_str().expect("kafka image");
    assert!(image.starts_with("apache/kafka:4.1."), "{image}");
    let roles = env_var(kafka, "KAFKA_PROCESS_ROLES").expect("KAFKA_PROCESS_ROLES");
    assert!(
        roles.contains("broker") && roles.contains("controller"),
        "{roles}"
    );
    assert!(env_var(kafka, "KAFKA_CONTROLLER_QUORUM_VOTERS").is_some());
    assert!(env_var(kafka, "KAFKA_ZOOKEEPER_CONNECT").is_none());
    assert!(
        kafka["healthcheck"]["test"].is_array(),
        "kafka needs a healthcheck"
    );

    // Topics exist before anything produces or consumes.
    let init = &services["kafka-init"];
    assert_eq!(
        depends_on(init, "kafka").as_deref(),
        Some("service_healthy")
    );
    let init_mounts = bind_mounts(init);
    let script_dir = repo().join("deploy/kafka");
    assert!(
        init_mounts
            .iter()
            .any(|(src, _)| Path::new(src) == script_dir),
        "kafka-init must mount deploy/kafka: {init_mounts:?}"
    );

    // roadwatch runs `run`; the simulator feeds it at 2,000 records/s; both reach Kafka by
    // its service name and wait for the topics.
    let roadwatch = &services["roadwatch"];
    assert_eq!(command_of(roadwatch), ["run"]);
    assert!(roadwatch["build"].is_object() || roadwatch["build"].is_string());
    let simulator = &services["simulator"];
    assert_eq!(command_of(simulator), ["simulate", "--rate", "2000"]);
    // The console: reachable from the host, with accounts that load.
    let console = &services["console"];
    assert_eq!(command_of(console), ["console"]);
    assert_eq!(
        env_var(console, "ROADWATCH__KAFKA__BOOTSTRAP_SERVERS").as_deref(),
        Some("kafka:9092")
    );
    let accounts = env_var(console, "ROADWATCH__CONSOLE__ACCOUNTS_FILE").expect("accounts file");
    let mounted = bind_mounts(console)
        .into_iter()
        .find_map(|(src, dst)| {
            Path::new(&accounts)
                .strip_prefix(&dst)
                .ok()
                .map(|rest| Path::new(&src).join(rest))
        })
        .expect("the accounts file is in a mounted directory");
    roadwatch::io::console::auth::Accounts::load(&mounted).expect("the example accounts load");
    for (name, svc) in [("roadwatch", roadwatch), ("simulator", simulator)] {
        assert_eq!(
            env_var(svc, "ROADWATCH__KAFKA__BOOTSTRAP_SERVERS").as_deref(),
            Some("kafka:9092"),
            "{name}"
        );
        assert_eq!(
            depends_on(svc, "kafka-init").as_deref(),
            Some("service_completed_successfully"),
            "{name} must wait for the topics"
        );
        assert_eq!(
            svc["image"], roadwatch["image"],
            "{name}: one image for both"
        );
    }

    // Prometheus scrapes roadwatch where roadwatch listens.
    let listen = env_var(roadwatch, "ROADWATCH__METRICS__LISTEN").expect("metrics.listen");
    let port = listen.rsplit(':').next().expect("host:port");
    let prom_cfg = yaml("deploy/prometheus/prometheus.yml");
    let scrape_targets: Vec<String> = prom_cfg["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .filter(|s| s["job_name"] == "roadwatch")
        .flat_map(|s| s["static_configs"].as_array().cloned().unwrap_or_default())
        .flat_map(|c| c["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    assert_eq!(scrape_targets, [format!("roadwatch:{port}")]);

    // Prometheus reads deploy/prometheus at /etc/prometheus, with the config it is told.
    let prom = &services["prometheus"];
    let prom_dir = repo().join("deploy/prometheus");
    let target = bind_mounts(prom)
        .into_iter()
        .find(|(src, _)| Path::new(src) == prom_dir)
        .map(|(_, t)| t)
        .expect("prometheus mounts deploy/prometheus");
    assert!(
        command_of(prom).contains(&format!("--config.file={target}/prometheus.yml")),
        "{:?}",
        command_of(prom)
    );

    // Grafana reads the provisioning directory, and the dashboards directory where the
    // dashboard provider looks.
    let grafana = &services["grafana"];
    let mounts = bind_mounts(grafana);
    let target_of = |rel: &str| {
        let dir = repo().join(rel);
        mounts
            .iter()
            .find(|(src, _)| Path::new(src) == dir)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("grafana does not mount {rel}: {mounts:?}"))
    };
    assert_eq!(
        target_of("deploy/grafana/provisioning"),
        "/etc/grafana/provisioning"
    );
    let provider = yaml("deploy/grafana/provisioning/dashboards/roadwatch.yml");
    assert_eq!(
        provider["providers"][0]["options"]["path"].as_str(),
        Some(target_of("deploy/grafana/dashboards").as_str())
    );
    let datasource = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(
        datasource["datasources"][0]["url"].as_str(),
        Some("http://prometheus:9090")
    );

    // Every bind-mounted path exists in the repository.
    for (name, svc) in services {
        for (src, _) in bind_mounts(svc) {
            assert!(Path::new(&src).exists(), "{name} mounts missing {src}");
        }
    }
}

#[test]
fn topic_init_creates_every_configured_topic() {
    // Run the real script against a stub kafka-topics.sh that logs its arguments.
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("calls.log");
    let stub = dir.path().join("kafka-topics.sh");
    std::fs::write(&stub, "#!/bin/sh\necho \"$*\" >> \"$CALLS\"\n").expect("stub");
    let chmod = run_tool("chmod", &["+x", stub.to_str().expect("utf-8")], None);
    assert!(chmod.status.success());
    let out = Command::new("sh")
        .arg(repo().join("deploy/kafka/create-topics.sh"))
        .env("KAFKA_BIN", dir.path())
        .env("CALLS", &log)
        .env("BOOTSTRAP", "kafka:9092")
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{}",
        describe("sh", &["create-topics.sh"], &out)
    );
    let calls = std::fs::read_to_string(&log).expect("the stub was called");
    let created: BTreeSet<String> = calls
        .lines()
        .filter(|l| l.contains("--create"))
        .map(|l| {
            assert!(l.contains("--bootstrap-server kafka:9092"), "{l}");
            assert!(l.contains("--if-not-exists"), "{l}: not re-runnable");
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "--topic").expect("--topic");
            words[at + 1].to_owned()
        })
        .collect();

    let defaults: toml::Value = toml::from_str(&read("config/default.toml")).expect("TOML");
    let configured: BTreeSet<String> = defaults["kafka"]["topics"]
        .as_table()
        .expect("[kafka.topics]")
        .iter()
        .filter(|(key, _)| key.as_str() != "dispatch_prefix")
        .map(|(_, v)| v.as_str().expect("topic name").to_owned())
        .collect();
    assert_eq!(created, configured);
}

// ---------------------------------------------------------------------------------------
// Grafana dashboard.

fn dashboard() -> Value {
    serde_json::from_str(&read("deploy/grafana/dashboards/roadwatch.json"))
        .expect("the dashboard is JSON")
}

/// Every panel, with rows' nested panels.
fn panels(dash: &Value) -> Vec<Value> {
    let mut all = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        all.push(p.clone());
        all.extend(p["panels"].as_array().cloned().unwrap_or_default());
    }
    all
}

fn panel_exprs(panel: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    strings_under(&panel["targets"], "expr", &mut exprs);
    exprs
}

#[test]
fn dashboard_and_rules_query_only_metrics_the_code_exports() {
    let exported = exported_families();
    let fresh = families(&Metrics::new().render());
    for name in [
        "roadwatch_event_to_alert_seconds",
        "roadwatch_stage_seconds",
        "roadwatch_records_total",
        "roadwatch_alerts_total",
        "roadwatch_dispatch_total",
        "roadwatch_dlq_total",
        "roadwatch_late_records_total",
        "roadwatch_engine_open_incidents",
    ] {
        assert!(fresh.contains_key(name), "{name} not in a fresh exposition");
    }

    let (records, alerts) = rules();
    let recording: BTreeSet<String> = records.keys().cloned().collect();
    let dash = dashboard();
    let mut dash_exprs = Vec::new();
    strings_under(&dash, "expr", &mut dash_exprs);
    assert!(dash_exprs.len() >= 10, "{dash_exprs:?}");
    let mut templating = Vec::new();
    strings_under(&dash["templating"], "query", &mut templating);

    let mut queried = BTreeSet::new();
    let sources = dash_exprs
        .iter()
        .chain(&templating)
        .chain(records.values())
        .chain(alerts.values());
    for expr in sources {
        let names = queried_metrics(expr, &recording);
        for name in &names {
            assert!(
                exported.contains_key(name),
                "`{name}` (in `{expr}`) is not a metric the code exports; exported: {:?}",
                exported.keys().collect::<Vec<_>>()
            );
        }
        for rec in queried_recordings(expr) {
            assert!(
                recording.contains(&rec),
                "`{rec}` (in `{expr}`) is not a recording rule"
            );
        }
        queried.extend(names);
    }
    // The other way round: every exported family is on the dashboard or in a rule.
    let unused: Vec<&String> = exported.keys().filter(|n| !queried.contains(*n)).collect();
    assert!(unused.is_empty(), "exported but never queried: {unused:?}");
}

#[test]
fn queried_metrics_strips_suffixes_and_recording_names() {
    let rec: BTreeSet<String> = ["stream:roadwatch_records:rate1m".to_owned()].into();
    let got = queried_metrics(
        "stream:roadwatch_records:rate1m + rate(roadwatch_x_seconds_bucket[1m]) / roadwatch_y_total",
        &rec,
    );
    let want: BTreeSet<String> = ["roadwatch_x_seconds", "roadwatch_y_total"]
        .map(str::to_owned)
        .into();
    assert_eq!(got, want);
}

#[test]
fn dashboard_has_the_panels_operators_need() {
    let dash = dashboard();
    assert!(dash["uid"].is_string() && dash["title"].is_string());
    let datasource = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    let ds_uid = datasource["datasources"][0]["uid"].as_str().expect("uid");

    let all = panels(&dash);
    let mut ids = BTreeSet::new();
    for p in &all {
        let id = p["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "duplicate panel id {id}");
        let grid = &p["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(x + w <= 24, "panel {} overflows the grid", p["title"]);
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(
            p["datasource"]["uid"].as_str(),
            Some(ds_uid),
            "{}",
            p["title"]
        );
        for t in p["targets"].as_array().expect("targets") {
            assert_eq!(
                t["datasource"]["uid"].as_str(),
                Some(ds_uid),
                "{}",
                p["title"]
            );
        }
    }

    type Check = fn(&Value, &str) -> bool;
    let required: [(&str, Check); 9] = [
        ("latency p50 and p99 per kind", |p, e| {
            p["type"] == "timeseries" && e.contains(":p50_5m") && e.contains(":p99_5m")
        }),
        ("latency heatmap", |p, e| {
            p["type"] == "heatmap" && e.contains("roadwatch_event_to_alert_seconds_bucket")
        }),
        ("throughput by stream", |_, e| {
            e.contains("stream:roadwatch_records:rate1m")
        }),
        ("consumer lag", |_, e| {
            e.contains("roadwatch_consumer_lag_records")
        }),
        ("alerts by kind and severity", |_, e| {
            e.contains("roadwatch_alerts_total") && e.contains("by (kind, severity)")
        }),
        ("dead letters by reason", |_, e| {
            e.contains("roadwatch_dlq_total") && e.contains("by (reason)")
        }),
        ("dispatch outcomes", |_, e| {
            e.contains("roadwatch_dispatch_total") && e.contains("by (outcome)")
        }),
        ("engine state sizes", |_, e| {
            [
                "open_incidents",
                "tracked_plates",
                "units",
                "open_assignments",
                "weather_stations",
            ]
            .iter()
            .all(|g| e.contains(&format!("roadwatch_engine_{g}")))
        }),
        ("stage times", |_, e| {
            e.contains("roadwatch_stage_seconds_bucket")
        }),
    ];
    for (what, check) in required {
        assert!(
            all.iter().any(|p| check(p, &panel_exprs(p).join("\n"))),
            "no panel shows {what}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The exposition, from the library.

#[test]
fn exposition_passes_promtool_check_metrics() {
    let text = exercised_metrics().render();
    assert!(text.contains("roadwatch_consumer_lag_records{"), "{text}");
    let out = run_tool("promtool", &["check", "metrics"], Some(&text));
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "promtool check metrics: {}\n{complaints}",
        out.status
    );
}

#[test]
fn promtool_check_metrics_does_complain_about_a_bad_exposition() {
    // The check above means something only if promtool does complain: a counter without
    // `_total` and a name with a non-base unit.
    let bad = "# HELP roadwatch_bad_ms Bad.\n# TYPE roadwatch_bad_ms counter\nroadwatch_bad_ms 1\n";
    let out = run_tool("promtool", &["check", "metrics"], Some(bad));
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success() || !complaints.trim().is_empty());
}

// ---------------------------------------------------------------------------------------
// A running instance: `roadwatch demo` serving /metrics, and a real Prometheus server.

/// A child process killed and reaped when the test ends, passing or failing.
struct Spawned {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Spawned {
    fn start(name: &'static str, cmd: &mut Command, log_dir: &Path) -> Spawned {
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = match cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`{name}` is not installed: run scripts/setup (Debian package `{}`)",
                package_of(name)
            ),
            Err(e) => panic!("starting {name}: {e}"),
        };
        Spawned { name, child, log }
    }

    /// Panics with the process's log if it has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!(
                "{} exited early ({status}):\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A plain HTTP/1.0 GET (the server closes the connection after the response, and never
/// uses chunked encoding): (status, body).
fn http_get(addr: SocketAddr, path_and_query: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end in {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head:?}")))?;
    Ok((status, body.to_owned()))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `probe` every 250 ms until it returns `Some`, checking that every process is
/// still running; panics with `what` and the logs at the deadline.
fn wait_for<T>(
    what: &str,
    deadline: Instant,
    procs: &mut [&mut Spawned],
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    loop {
        for p in procs.iter_mut() {
            p.assert_running();
        }
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = procs
                .iter()
                .map(|p| format!("--- {} ---\n{}", p.name, p.log_tail()))
                .collect();
            panic!("timed out waiting for {what}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `roadwatch demo` serving /metrics on a free port. A simulated day at the default
/// speed (about a minute of wall time, several alerts a second) after one day of warm-up,
/// so that alerts keep coming while Prometheus scrapes; `--linger` keeps /metrics up if
/// the run ends first. The test kills it when done.
fn start_demo(log_dir: &Path) -> (Spawned, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let demo = Spawned::start(
        "roadwatch",
        Command::new(env!("CARGO_BIN_EXE_roadwatch"))
            .args([
                "demo",
                "--duration",
                "24h",
                "--warmup",
                "1d",
                "--quiet",
                "--linger",
                "120",
            ])
            .env("ROADWATCH__METRICS__LISTEN", addr.to_string())
            .env("ROADWATCH__CONSOLE__LISTEN", "127.0.0.1:0")
            .env_remove("RUST_LOG")
            .current_dir(repo()),
        log_dir,
    );
    (demo, addr)
}

/// Waits until the demo's /metrics shows records and alerts, and returns that body.
fn wait_for_counters(demo: &mut Spawned, addr: SocketAddr, deadline: Instant) -> String {
    wait_for(
        "records and alerts on /metrics",
        deadline,
        &mut [demo],
        || {
            let (status, body) = http_get(addr, "/metrics").ok()?;
            (status == 200
                && sample_sum(&body, "roadwatch_records_total") > 0.0
                && sample_sum(&body, "roadwatch_alerts_total") > 0.0)
                .then_some(body)
        },
    )
}

/// Waits until the demo has observed event→alert latencies; they follow the alerts.
fn wait_for_latency(demo: &mut Spawned, addr: SocketAddr, deadline: Instant) -> String {
    let within = deadline.min(Instant::now() + Duration::from_secs(20));
    wait_for(
        "roadwatch_event_to_alert_seconds_count > 0: the demo produces alerts but observes \
         no event→alert latency",
        within,
        &mut [demo],
        || {
            let (status, body) = http_get(addr, "/metrics").ok()?;
            (status == 200 && sample_sum(&body, "roadwatch_event_to_alert_seconds_count") > 0.0)
                .then_some(body)
        },
    )
}

#[test]
fn running_demo_serves_metrics_that_promtool_accepts() {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(80);
    let logs = tempfile::tempdir().expect("tempdir");
    let (mut demo, addr) = start_demo(logs.path());

    let health = wait_for("/healthz", deadline, &mut [&mut demo], || {
        http_get(addr, "/healthz").ok()
    });
    assert_eq!(health.0, 200, "/healthz: {health:?}");

    let body = wait_for_counters(&mut demo, addr, deadline);
    assert!(sample_sum(&body, "roadwatch_records_total") > 0.0);
    assert!(sample_sum(&body, "roadwatch_alerts_total") > 0.0);
    let body = wait_for_latency(&mut demo, addr, deadline);
    let scraped = families(&body);
    let exported = exported_families();
    for (name, kind) in &scraped {
        assert_eq!(
            exported.get(name),
            Some(kind),
            "{name} is not in io::metrics"
        );
    }

    let out = run_tool("promtool", &["check", "metrics"], Some(&body));
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "promtool check metrics on the scraped body: {}\n{complaints}",
        out.status
    );
    assert!(started.elapsed() < Duration::from_secs(90));
}

/// `GET /api/v1/query?query=…` on a Prometheus server: the `data` of a successful answer.
fn prom_query(prom: SocketAddr, query: &str) -> Result<Value, String> {
    let (status, body) = http_get(prom, &format!("/api/v1/query?query={}", url_encode(query)))
        .map_err(|e| e.to_string())?;
    let json: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if status != 200 || json["status"] != "success" {
        return Err(format!("{status}: {body}"));
    }
    Ok(json["data"].clone())
}

/// The numeric values of an instant-vector answer.
fn vector_values(data: &Value) -> Vec<f64> {
    data["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
        .collect()
}

#[test]
fn prometheus_server_scrapes_the_demo_and_computes_the_p99() {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(80);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut demo, demo_addr) = start_demo(tmp.path());
    wait_for_counters(&mut demo, demo_addr, deadline);
    wait_for_latency(&mut demo, demo_addr, deadline);

    // A real Prometheus scraping the demo every second, with the deployment's own rules.
    let rules_glob = repo().join("deploy/prometheus/rules/*.yml");
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: roadwatch\n    static_configs:\n      - targets: [\"{demo_addr}\"]\n",
            rules = rules_glob.display()
        ),
    )
    .expect("prometheus.yml");
    let prom_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut prom = Spawned::start(
        "prometheus",
        Command::new("prometheus").args([
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", tmp.path().join("data").display()),
            format!("--web.listen-address={prom_addr}"),
        ]),
        tmp.path(),
    );
    wait_for(
        "Prometheus ready",
        deadline,
        &mut [&mut demo, &mut prom],
        || {
            http_get(prom_addr, "/-/ready")
                .ok()
                .filter(|(s, _)| *s == 200)
        },
    );

    // At least three successful scrapes.
    wait_for("3 scrapes", deadline, &mut [&mut demo, &mut prom], || {
        let ok = prom_query(prom_addr, r#"sum_over_time(up{job="roadwatch"}[1m])"#).ok()?;
        vector_values(&ok).first().filter(|n| **n >= 3.0).copied()
    });

    let p99_query = "histogram_quantile(0.99, sum by (le) (rate(roadwatch_event_to_alert_seconds_bucket[30s])))";
    let data = prom_query(prom_addr, p99_query).unwrap_or_else(|e| panic!("{p99_query}: {e}"));
    let values = vector_values(&data);
    assert_eq!(values.len(), 1, "{p99_query}: {data}");
    assert!(
        values[0].is_finite() && values[0] >= 0.0 && values[0] <= 10.0,
        "{p99_query} = {} ({data})",
        values[0]
    );

    // Every rule of the deployment evaluates without error on the real exposition...
    let rules_ok = wait_for(
        "rules evaluated",
        deadline,
        &mut [&mut demo, &mut prom],
        || {
            let (status, body) = http_get(prom_addr, "/api/v1/rules").ok()?;
            let json: Value = serde_json::from_str(&body).ok()?;
            let mut health = Vec::new();
            strings_under(&json["data"], "health", &mut health);
            (status == 200 && !health.is_empty() && health.iter().all(|h| h != "unknown"))
                .then_some(json)
        },
    );
    let mut health = Vec::new();
    strings_under(&rules_ok["data"], "health", &mut health);
    let (records, alerts) = rules();
    assert_eq!(health.len(), records.len() + alerts.len(), "{rules_ok}");
    assert!(health.iter().all(|h| h == "ok"), "{rules_ok}");
    let throughput = prom_query(prom_addr, "stream:roadwatch_records:rate1m").expect("query");
    assert!(!vector_values(&throughput).is_empty(), "{throughput}");

    // ...and every dashboard query is valid PromQL that Prometheus evaluates.
    let mut exprs = Vec::new();
    strings_under(&dashboard(), "expr", &mut exprs);
    for expr in exprs {
        let q = expr
            .replace("$__rate_interval", "30s")
            .replace("$__range", "1m");
        prom_query(prom_addr, &q).unwrap_or_else(|e| panic!("dashboard query `{expr}`: {e}"));
    }
    assert!(started.elapsed() < Duration::from_secs(90));
}
