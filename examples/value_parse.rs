//! The yardstick of issue #18 (docs/PERFORMANCE.md, "Replay against a plain parse"): read
//! an NDJSON file and parse every line into a `serde_json::Value`, nothing more, the way
//! a program that only looks at its input would. `roadwatch replay` on the same file is
//! timed against it.
//!
//! ```text
//! cargo build --release --example value_parse --bin roadwatch
//! hyperfine -N 'target/release/examples/value_parse day.ndjson' \
//!     'target/release/roadwatch replay --input day.ndjson --output /dev/null'
//! ```
use std::io::BufRead as _;

// The same allocator as the binary it is compared with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .expect("usage: value_parse FILE.ndjson");
    let file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let (mut values, mut errors) = (0u64, 0u64);
    for line in file.split(b'\n') {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(&line) {
            Ok(v) => {
                // Keep the value alive until here, as a reader of it would.
                std::hint::black_box(&v);
                values += 1;
            }
            Err(_) => errors += 1,
        }
    }
    println!("{values} values, {errors} lines that are not JSON");
    Ok(())
}
