//! The detection core stays pure: no async runtime, Kafka, metrics or clock inside
//! src/core, so the same code runs live, in replay, in the demo and in benches.
use std::path::Path;

const FORBIDDEN: [&str; 11] = [
    "tokio",
    "rdkafka",
    "prometheus",
    "hyper",
    "axum",
    "std::fs",
    "std::net",
    "SystemTime::now",
    "Instant::now",
    "Utc::now",
    "Local::now",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_imports_no_io_and_reads_no_clock() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut files = Vec::new();
    rust_files(&core, &mut files);
    assert!(
        files.len() >= 5,
        "expected the core's sources under {}",
        core.display()
    );
    let mut hits = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    hits.push(format!("{}:{}: {word}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "the core reaches for I/O or the clock:\n{}",
        hits.join("\n")
    );
}
