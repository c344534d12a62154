//! The detection core stays pure: no async runtime, Kafka, metrics, HTTP, files, network
//! or clock inside crates/core (and the simulator, crates/sim), so the same code runs
//! live, in replay, in the demo and in benches.
//!
//! The compiler does most of it: the crates' Cargo.toml have no such dependency, and
//! crates/core/clippy.toml forbids std's clock, file, network, process and environment
//! calls (clippy runs with `-D warnings`). These tests keep those two guards in place: the
//! dependency graph, checked with `cargo tree`, and every `use` tree of std flattened.
use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates that mean I/O or a runtime; none may be reachable from the pure crates.
const FORBIDDEN_CRATES: [&str; 10] = [
    "tokio",
    "rdkafka",
    "rdkafka-sys",
    "prometheus",
    "hyper",
    "axum",
    "mio",
    "socket2",
    "reqwest",
    "ureq",
];

/// std modules the pure crates may not name at all.
const FORBIDDEN_STD: [&str; 5] = [
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "std::thread",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The names of every crate `package` depends on (normal dependencies, transitively).
fn dependency_names(package: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .current_dir(root())
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn pure_crates_depend_on_no_runtime_kafka_metrics_or_http() {
    for package in ["roadwatch-core", "roadwatch-sim"] {
        let names = dependency_names(package);
        assert!(
            names.iter().any(|n| n == "serde_json"),
            "cargo tree of {package} looks wrong: {names:?}"
        );
        let bad: Vec<&String> = names
            .iter()
            .filter(|n| FORBIDDEN_CRATES.contains(&n.as_str()))
            .collect();
        assert!(bad.is_empty(), "{package} depends on {bad:?}");
    }
    let chrono_features = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "features",
            "-p",
            "roadwatch-core",
            "-i",
            "chrono",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&chrono_features.stdout);
    assert!(
        !text.contains("\"clock\""),
        "roadwatch-core enables chrono's clock:\n{text}"
    );
}

#[test]
fn the_core_clippy_configuration_forbids_the_clock_and_io() {
    let text = std::fs::read_to_string(root().join("crates/core/clippy.toml")).unwrap();
    for path in [
        "std::time::SystemTime::now",
        "std::time::Instant::now",
        "chrono::Utc::now",
        "std::fs::read",
        "std::fs::File",
        "std::net::TcpStream",
        "std::env::var",
    ] {
        assert!(
            text.contains(&format!("\"{path}\"")),
            "crates/core/clippy.toml no longer forbids {path}"
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of `text` without `//` comments, as one string.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every path a `use` tree names: `std::{fs, io::{self, Read}}` gives `std::fs`,
/// `std::io::self`, `std::io::Read`.
fn flatten(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        out.push(format!("{prefix}{path}"));
        return;
    };
    let head = format!("{prefix}{}", &tree[..open]);
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                flatten(&head, &inner[start..i], out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner[start..].trim().is_empty() {
        flatten(&head, &inner[start..], out);
    }
}

/// Every std path the code names: in `use` trees (flattened) and written inline.
fn std_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for statement in code.split(';') {
        let s = statement.trim();
        let s = s.strip_prefix("pub ").unwrap_or(s);
        if let Some(tree) = s.strip_prefix("use ") {
            let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
            let tree = tree.replace(":: ", "::").replace(" ::", "::");
            flatten("", &tree, &mut out);
        }
    }
    let compact: String = code.split_whitespace().collect();
    let mut rest = compact.as_str();
    while let Some(at) = rest.find("std::") {
        let end = rest[at..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .map_or(rest.len(), |e| at + e);
        out.push(rest[at..end].to_owned());
        rest = &rest[end..];
    }
    out.retain(|p| p.starts_with("std::"));
    out
}

#[test]
fn use_trees_are_flattened() {
    let paths = std_paths("use std::{collections::HashMap, fs, io::{self, Read as R}}; fn f() { std::net::TcpStream::connect(); }");
    for p in [
        "std::fs",
        "std::io::Read",
        "std::collections::HashMap",
        "std::net::TcpStream::connect",
    ] {
        assert!(paths.iter().any(|q| q == p), "{p} missing from {paths:?}");
    }
}

#[test]
fn pure_crates_name_no_std_io_module() {
    let mut files = Vec::new();
    for dir in ["crates/core/src", "crates/sim/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() >= 20, "expected the pure crates' sources");
    let mut hits = Vec::new();
    for file in &files {
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for path in std_paths(&code) {
            if FORBIDDEN_STD
                .iter()
                .any(|m| path == *m || path.starts_with(&format!("{m}::")))
            {
                hits.push(format!("{}: {path}", file.display()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "the pure crates reach for I/O:\n{}",
        hits.join("\n")
    );
}
