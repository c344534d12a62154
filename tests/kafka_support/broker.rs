//! A broker of one test's own (`scripts/kafka-local` in a temporary directory, on free
//! ports): the broker-outage tests stop and start it; the security test runs it with TLS,
//! SCRAM users and the StandardAuthorizer.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use roadwatch::config::{KafkaSecurity, Sasl, Secret, SecurityProtocol};

use super::{now_ms, panic_message, remember_panics};

/// The longest one `scripts/kafka-local` call may take (its own limits: 90 s to start,
/// 30 s + 10 s to stop).
pub const SCRIPT_LIMIT: Duration = Duration::from_secs(150);

/// A broker of one test's own: `scripts/kafka-local` with a temporary directory and free
/// ports, so that stopping it disturbs no other test. Stopped, and its directory removed,
/// when dropped, also when the test panics.
pub struct PrivateBroker {
    pub port: u16,
    pub controller_port: u16,
    /// The mTLS listener of a secured broker.
    pub ssl_port: u16,
    secured: bool,
    /// Declared last: removed after `drop` has stopped the broker.
    dir: tempfile::TempDir,
}

impl PrivateBroker {
    pub fn start() -> PrivateBroker {
        PrivateBroker::launch(false)
    }

    /// With `ROADWATCH_KAFKA_SECURITY=1`: SASL_SSL (SCRAM-SHA-512) on `port`, mTLS on
    /// `ssl_port`, the StandardAuthorizer with no ACL yet (scripts/kafka-local).
    pub fn start_secured() -> PrivateBroker {
        PrivateBroker::launch(true)
    }

    fn launch(secured: bool) -> PrivateBroker {
        remember_panics();
        let [port, controller_port, ssl_port] = free_ports();
        let broker = PrivateBroker {
            port,
            controller_port,
            ssl_port,
            secured,
            dir: tempfile::Builder::new()
                .prefix("rw-broker-")
                .tempdir()
                .unwrap(),
        };
        // scripts/test stops brokers whose owner is gone (a killed test run).
        std::fs::write(
            broker.dir.path().join("owner"),
            std::process::id().to_string(),
        )
        .unwrap();
        broker
            .script("start", false)
            .unwrap_or_else(|e| panic!("{e}"));
        broker
    }

    pub fn ssl_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.ssl_port)
    }

    /// A file the script wrote in its directory (certificates, passwords).
    pub fn file(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// A SCRAM user's password file (`users/<name>.password`).
    pub fn password_file(&self, user: &str) -> PathBuf {
        self.file(&format!("users/{user}.password"))
    }

    /// The super user's security settings (SASL_SSL), for the test's own clients.
    pub fn admin_security(&self) -> KafkaSecurity {
        let password = std::fs::read_to_string(self.password_file("admin")).unwrap();
        KafkaSecurity {
            protocol: SecurityProtocol::SaslSsl,
            sasl: Some(Sasl {
                mechanism: "SCRAM-SHA-512".into(),
                username: "admin".into(),
                password: Secret::new(password.trim()),
            }),
            ca_file: Some(self.file("certs/ca.crt")),
            client_certificate: None,
            verify_hostname: true,
        }
    }

    /// scripts/kafka-acls with `env` (the stage's topic names).
    pub fn grant_acls(&self, env: &[(String, String)]) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka-acls");
        let out = std::process::Command::new(script)
            .arg(self.bootstrap())
            .arg(self.file("admin.properties"))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/kafka-acls: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGTERM (Kafka's controlled shutdown); returns once the broker has exited.
    pub fn stop(&self) {
        self.script("stop", false).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts it again on the same ports, with the topics, offsets and transaction state
    /// it had.
    pub fn start_keeping_data(&self) {
        self.script("start", true).unwrap_or_else(|e| panic!("{e}"));
    }

    fn script(&self, command: &str, keep_data: bool) -> Result<(), String> {
        let log_path = self.dir.path().join("kafka-local.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka-local");
        // With KAFKA_BOOTSTRAP set (scripts/test sets it) the script would leave the shared
        // broker in charge and start nothing: this test needs a broker of its own.
        let mut child = std::process::Command::new(script)
            .arg(command)
            .env_remove("KAFKA_BOOTSTRAP")
            .env("ROADWATCH_KAFKA_DIR", self.dir.path())
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_CONTROLLER_PORT", self.controller_port.to_string())
            .env("KAFKA_SSL_PORT", self.ssl_port.to_string())
            .env(
                "ROADWATCH_KAFKA_SECURITY",
                if self.secured { "1" } else { "0" },
            )
            .env("KAFKA_HEAP", "384m")
            .env(
                "ROADWATCH_KAFKA_KEEP_DATA",
                if keep_data { "1" } else { "0" },
            )
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("scripts/kafka-local {command}: {e}"))?;
        let started = Instant::now();
        let outcome = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status
                    .success()
                    .then_some(())
                    .ok_or_else(|| format!("exited with {status}"));
            }
            if started.elapsed() > SCRIPT_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("did not finish within {SCRIPT_LIMIT:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        outcome.map_err(|why| {
            // The script shows the log's last lines, mostly shutdown chatter; the cause
            // (a port in use, say) is among the errors before them.
            let server_log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            let errors: Vec<&str> = server_log
                .lines()
                .filter(|l| l.contains("ERROR") || l.contains("Exception"))
                .take(10)
                .collect();
            format!(
                "scripts/kafka-local {command} (port {}): {why}\n{}\n--- server.log errors\n{}",
                self.port,
                std::fs::read_to_string(&log_path).unwrap_or_default(),
                errors.join("\n")
            )
        })
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Err(e) = self.script("stop", false) {
            eprintln!("stopping the private broker: {e}");
        }
        // Both incarnations' logs (the script keeps the previous one as server.log.1).
        let logs = ["server.log.1", "server.log"].map(|name| {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            (name, text)
        });
        if let Some(dest) = std::env::var_os("RW_BROKER_LOGS") {
            for (name, text) in &logs {
                let _ =
                    std::fs::write(Path::new(&dest).join(format!("{}-{name}", self.port)), text);
            }
        }
        if std::thread::panicking() || std::env::var_os("RW_SHOW_LOG").is_some() {
            // What the coordinators did, not the start-up and shutdown chatter.
            for (name, text) in &logs {
                let lines: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.contains("shutdown-hook"))
                    .filter(|l| {
                        [
                            "GroupCoordinator",
                            "TransactionCoordinator",
                            "ERROR",
                            "WARN",
                        ]
                        .iter()
                        .any(|k| l.contains(k))
                    })
                    .collect();
                let tail = &lines[lines.len().saturating_sub(60)..];
                eprintln!(
                    "--- private broker {name} (coordinators, warnings)\n{}",
                    tail.join("\n")
                );
            }
        }
        if let Some(message) = std::thread::panicking().then(panic_message).flatten() {
            eprintln!("=== the test failed (the logs above are from after this): {message}");
        }
    }
}

/// Free ports below Linux's ephemeral range (32768 and up), so that no client
/// connection is given one of them while the broker is down. Ports handed out before in
/// this process are skipped: tests running at the same time would otherwise both find
/// the same ports free before either broker binds them.
pub(super) fn free_ports<const N: usize>() -> [u16; N] {
    static TAKEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let seed = (now_ms() as u64) ^ u64::from(std::process::id());
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    for i in 0..3000u64 {
        let first = 20_000 + ((seed + N as u64 * i) % 12_000) as u16;
        let ports: [u16; N] = std::array::from_fn(|k| first + k as u16);
        if ports.iter().all(|p| !taken.contains(p) && free(*p)) {
            taken.extend(ports);
            return ports;
        }
    }
    panic!("no {N} free ports between 20000 and 32000");
}
