//! Issue #19, "Kafka security": a broker of this test's own with TLS listeners, SCRAM
//! users and the StandardAuthorizer (scripts/kafka-local with ROADWATCH_KAFKA_SECURITY=1),
//! and exactly the ACLs of scripts/kafka-acls. `roadwatch run`, `simulate` and `console`
//! work over SASL_SSL (SCRAM-SHA-512) and over mTLS; a wrong password, a client
//! certificate from another CA, a broker certificate from another CA and a topic without
//! an ACL each stop start-up with a message naming the cause and the key; roadwatch's
//! principal cannot write what it only reads; no password reaches a log.
//!
//! The broker changes Apache Kafka's defaults only where security needs it (listeners,
//! TLS, SASL, the authorizer; scripts/kafka-local says why for each) plus the single-node
//! settings every test broker has.
mod kafka_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kafka_support::*;
use rdkafka::producer::FutureRecord;
use roadwatch::config::{Guarantee, KafkaSecurity, Sasl, Secret, SecurityProtocol};
use roadwatch::io::console::auth::{hash_password, token_sha256};
use serde_json::{json, Value};

const OPERATOR: (&str, &str) = ("op.zhang", "correct horse");

/// How a child connects: its `ROADWATCH__KAFKA__…` variables.
struct Connect(Vec<(String, String)>);

impl Connect {
    fn sasl(broker: &PrivateBroker, user: &str) -> Connect {
        Connect(vec![
            (
                "ROADWATCH__KAFKA__BOOTSTRAP_SERVERS".into(),
                broker.bootstrap(),
            ),
            (
                "ROADWATCH__KAFKA__SECURITY__PROTOCOL".into(),
                "sasl_ssl".into(),
            ),
            (
                "ROADWATCH__KAFKA__SECURITY__SASL_USERNAME".into(),
                user.into(),
            ),
            (
                "ROADWATCH__KAFKA__SECURITY__SASL_PASSWORD_FILE".into(),
                path(broker.password_file(user)),
            ),
            (
                "ROADWATCH__KAFKA__SECURITY__CA_FILE".into(),
                path(broker.file("certs/ca.crt")),
            ),
        ])
    }

    fn mtls(broker: &PrivateBroker, cert: &str) -> Connect {
        Connect(vec![
            (
                "ROADWATCH__KAFKA__BOOTSTRAP_SERVERS".into(),
                broker.ssl_bootstrap(),
            ),
            ("ROADWATCH__KAFKA__SECURITY__PROTOCOL".into(), "ssl".into()),
            (
                "ROADWATCH__KAFKA__SECURITY__CERTIFICATE_FILE".into(),
                path(broker.file(&format!("certs/{cert}.crt"))),
            ),
            (
                "ROADWATCH__KAFKA__SECURITY__KEY_FILE".into(),
                path(broker.file(&format!("certs/{cert}.key"))),
            ),
            (
                "ROADWATCH__KAFKA__SECURITY__CA_FILE".into(),
                path(broker.file("certs/ca.crt")),
            ),
        ])
    }

    fn with(mut self, key: &str, value: &str) -> Connect {
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.into(), value.into()));
        self
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

fn path(p: PathBuf) -> String {
    p.display().to_string()
}

/// `roadwatch run` with `connect` must exit non-zero, soon, with every one of `expect`
/// in its log.
fn run_refused(
    stage: &Stage,
    dir: &std::path::Path,
    name: &str,
    connect: &Connect,
    expect: &[&str],
) -> String {
    let log = dir.join(format!("{name}.log"));
    let mut child = Child::spawn_with(stage, "a", log, &connect.env());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.exited() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{name}: still running after 40 s (retrying for ever?):\n{}",
            child.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = child.log();
    assert!(!status.success(), "{name}: exited successfully:\n{log}");
    for e in expect {
        assert!(log.contains(e), "{name}: no {e:?} in:\n{log}");
    }
    eprintln!(
        "{name}: refused after {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        log.lines().last().unwrap_or_default()
    );
    log
}

/// `roadwatch run` with `connect`, once its partitions are assigned; its log is shown if
/// the test fails while the guard lives.
fn run_until_assigned(
    stage: &Stage,
    dir: &std::path::Path,
    name: &str,
    connect: &Connect,
) -> (Child, ShowLogOnPanic) {
    let log = dir.join(format!("{name}.log"));
    let show = ShowLogOnPanic(log.clone());
    let mut run = Child::spawn_with(stage, "a", log, &connect.env());
    run.wait_for_log("partitions assigned", Duration::from_secs(90));
    (run, show)
}

/// A console on a free port with one operator account.
fn console(stage: &Stage, dir: &std::path::Path, name: &str, connect: &Connect) -> (Child, String) {
    let accounts = dir.join("accounts.toml");
    std::fs::write(
        &accounts,
        format!(
            "[[operators]]\nid = \"{}\"\npassword_hash = \"{}\"\n\n[[units]]\nunit_id = \"P-01\"\ntoken_sha256 = \"{}\"\n",
            OPERATOR.0,
            hash_password(OPERATOR.1),
            token_sha256("unit token")
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let accounts = path(accounts);
    let connect = Connect(connect.0.clone())
        .with("ROADWATCH__CONSOLE__LISTEN", &listen)
        .with("ROADWATCH__CONSOLE__ACCOUNTS_FILE", &accounts)
        .with(
            "ROADWATCH__CONSOLE__SESSION_SECRET",
            "the test's session key",
        );
    let mut c = Child::spawn_command(
        stage,
        "console",
        dir.join(format!("{name}.log")),
        &["console"],
        &connect.env(),
    );
    c.wait_for_log("console: open", Duration::from_secs(60));
    (c, format!("http://{listen}"))
}

/// Logs in as the operator; the open alerts the console shows, and the status of an
/// `acknowledge` of the first (written to operator-actions by the console's producer).
fn operator_sees_and_acknowledges(base: &str) -> (Vec<Value>, u16) {
    let login = ureq::post(&format!("{base}/api/login"))
        .send_string(&json!({"user": OPERATOR.0, "password": OPERATOR.1}).to_string())
        .unwrap();
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let me: Value = serde_json::from_str(&login.into_string().unwrap()).unwrap();
    let csrf = me["csrf"].as_str().unwrap().to_owned();
    let mut alerts = Vec::new();
    let started = Instant::now();
    while alerts.is_empty() && started.elapsed() < Duration::from_secs(30) {
        let body = ureq::get(&format!("{base}/api/alerts"))
            .set("Cookie", &cookie)
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        alerts = serde_json::from_str::<Vec<Value>>(&body).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    let Some(first) = alerts.first() else {
        return (alerts, 0);
    };
    let action = json!({"alert_id": first["alert_id"], "action": "acknowledge"}).to_string();
    let status = match ureq::post(&format!("{base}/api/actions"))
        .set("Cookie", &cookie)
        .set("X-CSRF-Token", &csrf)
        .send_string(&action)
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, r)) => {
            panic!(
                "acknowledge refused ({code}): {}",
                r.into_string().unwrap_or_default()
            )
        }
        Err(e) => panic!("acknowledge: {e}"),
    };
    (alerts, status)
}

fn simulate(stage: &Stage, connect: &Connect, duration: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roadwatch"))
        .args([
            "simulate",
            "--duration",
            duration,
            "--warmup",
            "0s",
            "--start",
            "2026-11-23T06:00:00+08:00",
            "--rate",
            "1000",
        ])
        .envs(stage.env("sim"))
        .envs(connect.env())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "simulate: {stderr}");
    stderr
}

#[test]
fn run_simulate_and_console_work_over_sasl_ssl_and_mtls_with_only_their_acls() {
    let broker = PrivateBroker::start_secured();
    let stage = Stage::build_with(
        &broker.bootstrap(),
        "secure",
        1,
        1,
        Guarantee::ExactlyOnce,
        broker.admin_security(),
    );
    broker.grant_acls(&stage.env("a"));
    let dir = tempfile::tempdir().unwrap();

    // Refusals first: each stops start-up, naming its cause.
    run_refused(
        &stage,
        dir.path(),
        "wrong-password",
        &Connect::sasl(&broker, "roadwatch")
            .with("ROADWATCH__KAFKA__SECURITY__SASL_PASSWORD_FILE", "")
            .with(
                "ROADWATCH__KAFKA__SECURITY__SASL_PASSWORD",
                "not-the-password",
            ),
        &[
            "refused the SASL credentials",
            "kafka.security.sasl_username = \"roadwatch\"",
        ],
    );
    run_refused(
        &stage,
        dir.path(),
        "client-certificate-of-another-ca",
        &Connect::mtls(&broker, "rogue"),
        &[
            "refused this client's certificate",
            "kafka.security.certificate_file",
            "rogue.crt",
        ],
    );
    run_refused(
        &stage,
        dir.path(),
        "broker-certificate-of-another-ca",
        &Connect::sasl(&broker, "roadwatch").with(
            "ROADWATCH__KAFKA__SECURITY__CA_FILE",
            &path(broker.file("certs/other-ca.crt")),
        ),
        &[
            "TLS certificate is not signed by",
            "kafka.security.ca_file",
            "other-ca.crt",
        ],
    );
    // A topic that exists but that no ACL lets roadwatch read.
    let unlisted = format!("{}-unlisted", stage.prefix);
    tokio()
        .block_on(roadwatch::io::kafka::create_topics(
            &stage.settings.kafka,
            &[roadwatch::io::kafka::TopicSpec {
                name: unlisted.clone(),
                partitions: 1,
                replication: 1,
            }],
        ))
        .unwrap();
    run_refused(
        &stage,
        dir.path(),
        "topic-without-acl",
        &Connect::sasl(&broker, "roadwatch").with("ROADWATCH__KAFKA__TOPICS__WEATHER", &unlisted),
        &[
            "not authorized",
            &format!("{unlisted} (kafka.topics.weather)"),
        ],
    );

    // roadwatch run over SASL_SSL, the simulator's devices over mTLS.
    let (run, _show) = run_until_assigned(
        &stage,
        dir.path(),
        "run-sasl",
        &Connect::sasl(&broker, "roadwatch"),
    );
    let sim = simulate(&stage, &Connect::mtls(&broker, "simulator"), "20m");
    assert!(
        sim.contains(" records in ") && !sim.contains("simulated 0 records"),
        "{sim}"
    );
    // Twenty simulated minutes may hold no incident: a person in the tunnel makes one.
    let devices = producer(&stage);
    let person = |seq| pedestrian("cam-tunnel", seq, TUNNEL.0, TUNNEL.1, now_ms()).to_string();
    produce(
        &devices,
        &stage.topics().camera,
        "cam-tunnel",
        person(1).as_bytes(),
    );
    let mut reader = Reader::new(&stage);
    let alerts = stage.topics().alerts.clone();
    assert!(
        reader.until(Duration::from_secs(60), |seen| seen
            .iter()
            .any(|o| o.topic == alerts)),
        "no alert within 60 s of the simulation (simulate said: {sim})\n--- run\n{}",
        run.log()
    );

    // The console over SASL_SSL: the operator sees the alerts and acknowledges one.
    let (mut c, base) = console(
        &stage,
        dir.path(),
        "console-sasl",
        &Connect::sasl(&broker, "console"),
    );
    let (open, status) = operator_sees_and_acknowledges(&base);
    assert!(!open.is_empty(), "the console shows no alert:\n{}", c.log());
    assert_eq!(status, 202);
    assert!(c.exited().is_none(), "{}", c.log());
    drop(c);

    // roadwatch's principal reads inputs only: a write to one is refused.
    let mut as_roadwatch = stage.settings.kafka.clone();
    let password = std::fs::read_to_string(broker.password_file("roadwatch")).unwrap();
    as_roadwatch.security = KafkaSecurity {
        sasl: Some(Sasl {
            mechanism: "SCRAM-SHA-512".into(),
            username: "roadwatch".into(),
            password: Secret::new(password.trim()),
        }),
        protocol: SecurityProtocol::SaslSsl,
        ..broker.admin_security()
    };
    let producer = roadwatch::io::kafka::producer(&as_roadwatch).unwrap();
    let sent = tokio().block_on(
        producer.send(
            FutureRecord::to(&stage.topics().camera)
                .key("k")
                .payload("{}"),
            Duration::from_secs(20),
        ),
    );
    let refused = sent
        .expect_err("roadwatch's principal wrote to an input topic")
        .0;
    assert!(
        refused.to_string().contains("TopicAuthorizationFailed")
            || refused.to_string().contains("authoriz"),
        "{refused}"
    );

    // Swap the protocols: run and console over mTLS, simulate over SASL_SSL.
    assert!(run.terminate().success());
    let (run, _show_mtls) = run_until_assigned(
        &stage,
        dir.path(),
        "run-mtls",
        &Connect::mtls(&broker, "roadwatch"),
    );
    let before = reader.seen.iter().filter(|o| o.topic == alerts).count();
    simulate(&stage, &Connect::sasl(&broker, "simulator"), "20m");
    produce(
        &devices,
        &stage.topics().camera,
        "cam-tunnel",
        person(2).as_bytes(),
    );
    assert!(
        reader.until(Duration::from_secs(60), |seen| {
            seen.iter().filter(|o| o.topic == alerts).count() > before
        }),
        "no new alert from the run over mTLS"
    );
    let (mut c, base) = console(
        &stage,
        dir.path(),
        "console-mtls",
        &Connect::mtls(&broker, "console"),
    );
    let (open, status) = operator_sees_and_acknowledges(&base);
    assert!(
        !open.is_empty(),
        "the console over mTLS shows no alert:\n{}",
        c.log()
    );
    assert_eq!(status, 202);
    assert!(c.exited().is_none(), "{}", c.log());
    drop(c);
    assert!(run.terminate().success());

    // No password of any user reaches a log.
    for user in ["admin", "roadwatch", "console", "simulator"] {
        let secret = std::fs::read_to_string(broker.password_file(user)).unwrap();
        let secret = secret.trim();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(
                    !text.contains(secret),
                    "{user}'s password in {}",
                    p.display()
                );
            }
        }
    }
}
