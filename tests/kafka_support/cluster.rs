//! A cluster of one test's own: `scripts/kafka-local` with `KAFKA_BROKERS=3` in a
//! temporary directory, on free ports (the cluster test kills one node and starts it
//! again). Separate from the single broker `scripts/test` starts, which it never touches.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::broker::{free_ports, SCRIPT_LIMIT};
use super::{panic_message, remember_panics};

/// Three KRaft nodes, each broker and controller (node ids 1, 2, 3, which are also the
/// broker ids in metadata), replication factor 3 and min ISR 2 (scripts/kafka-local).
/// Stopped, and its directory removed, when dropped, also when the test panics.
pub struct PrivateCluster {
    /// Node `i` listens on `ports[i - 1]`, its controller on `ports[i + 2]`.
    ports: [u16; 6],
    /// Declared last: removed after `drop` has stopped the nodes.
    dir: tempfile::TempDir,
}

impl PrivateCluster {
    pub const NODES: i32 = 3;

    /// Starts the three nodes and returns once each answers; panics (the test fails) when
    /// the cluster cannot start.
    pub fn start() -> PrivateCluster {
        remember_panics();
        let cluster = PrivateCluster {
            ports: free_ports::<6>(),
            dir: tempfile::Builder::new()
                .prefix("rw-cluster-")
                .tempdir()
                .unwrap(),
        };
        // scripts/test stops the nodes of a cluster whose owner is gone (a killed test run).
        std::fs::write(
            cluster.dir.path().join("owner"),
            std::process::id().to_string(),
        )
        .unwrap();
        cluster
            .script(&["start"])
            .unwrap_or_else(|e| panic!("the cluster did not start: {e}"));
        cluster
    }

    /// `127.0.0.1:<port of node 1>,…`.
    pub fn bootstrap(&self) -> String {
        (1..=Self::NODES)
            .map(|i| format!("127.0.0.1:{}", self.port(i)))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn port(&self, node: i32) -> u16 {
        self.ports[node as usize - 1]
    }

    /// SIGKILL to node `node` (`scripts/kafka-local kill`); returns once it has exited.
    pub fn kill(&self, node: i32) {
        self.script(&["kill", &node.to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts node `node` again with its data; returns once it answers.
    pub fn start_node(&self, node: i32) {
        self.script(&["start-node", &node.to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The node that became the active controller last (the highest epoch its current
    /// log names), as far as the nodes' logs tell.
    pub fn active_controller(&self) -> Option<i32> {
        let mut last: Option<(u64, i32)> = None;
        for node in 1..=Self::NODES {
            let text =
                std::fs::read_to_string(self.node_dir(node).join("server.log")).unwrap_or_default();
            for line in text.lines() {
                let Some(rest) = line
                    .split("Becoming the active controller at epoch ")
                    .nth(1)
                else {
                    continue;
                };
                let Some(epoch) = rest.split(',').next().and_then(|e| e.trim().parse().ok()) else {
                    continue;
                };
                if !matches!(last, Some((e, _)) if e >= epoch) {
                    last = Some((epoch, node));
                }
            }
        }
        last.map(|(_, node)| node)
    }

    pub fn node_dir(&self, node: i32) -> PathBuf {
        self.dir.path().join(format!("node-{node}"))
    }

    fn script(&self, args: &[&str]) -> Result<(), String> {
        let log_path = self.dir.path().join("kafka-local.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka-local");
        // With KAFKA_BOOTSTRAP set (scripts/test sets it) the script would leave the shared
        // broker in charge and start nothing: this test needs a cluster of its own.
        let mut child = std::process::Command::new(script)
            .args(args)
            .env_remove("KAFKA_BOOTSTRAP")
            .env("ROADWATCH_KAFKA_DIR", self.dir.path())
            .env("KAFKA_BROKERS", Self::NODES.to_string())
            .env("KAFKA_PORT", self.ports[0].to_string())
            .env("KAFKA_CONTROLLER_PORT", self.ports[3].to_string())
            .env("ROADWATCH_KAFKA_SECURITY", "0")
            .env("ROADWATCH_KAFKA_KEEP_DATA", "0")
            .env("KAFKA_HEAP", "512m")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("scripts/kafka-local {}: {e}", args.join(" ")))?;
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
            let errors: Vec<String> = (1..=Self::NODES)
                .flat_map(|i| {
                    let text = std::fs::read_to_string(self.node_dir(i).join("server.log"))
                        .unwrap_or_default();
                    text.lines()
                        .filter(|l| l.contains("ERROR") || l.contains("Exception"))
                        .take(5)
                        .map(|l| format!("node {i}: {l}"))
                        .collect::<Vec<_>>()
                })
                .collect();
            format!(
                "scripts/kafka-local {} (ports {:?}): {why}\n{}\n--- server.log errors\n{}",
                args.join(" "),
                self.ports,
                std::fs::read_to_string(&log_path).unwrap_or_default(),
                errors.join("\n")
            )
        })
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let stopping = Instant::now();
        match self.script(&["stop"]) {
            Ok(()) => eprintln!("cluster stopped in {:?}", stopping.elapsed()),
            Err(e) => eprintln!("stopping the cluster: {e}"),
        }
        let keep = std::env::var_os("RW_BROKER_LOGS");
        let show = std::thread::panicking() || std::env::var_os("RW_SHOW_LOG").is_some();
        for node in 1..=Self::NODES {
            // Both incarnations' logs of a restarted node (server.log.1 is the killed one).
            for name in ["server.log.1", "server.log"] {
                let path = self.node_dir(node).join(name);
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                if let Some(dest) = &keep {
                    let _ =
                        std::fs::write(Path::new(dest).join(format!("node-{node}-{name}")), &text);
                }
                if show {
                    let lines: Vec<&str> = text
                        .lines()
                        .filter(|l| !l.contains("shutdown-hook"))
                        .filter(|l| ["ERROR", "WARN"].iter().any(|k| l.contains(k)))
                        .collect();
                    let tail = &lines[lines.len().saturating_sub(30)..];
                    eprintln!(
                        "--- cluster node {node} {name} (warnings)\n{}",
                        tail.join("\n")
                    );
                }
            }
        }
        if let Some(message) = std::thread::panicking().then(panic_message).flatten() {
            eprintln!("=== the test failed (the logs above are from after this): {message}");
        }
    }
}
