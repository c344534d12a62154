//! Logging set-up: human-readable by default, JSON lines with `--log-format json`,
//! filtered by `RUST_LOG` (default `info`). Logs go to stderr so that stdout stays free
//! for command output (`check-config`, `roads locate`, replay summaries).
use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: escape codes in a log file or a
    // journal make it hard to read and to grep (`key=value` becomes `key\x1b[0m=…`).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second init (tests calling the CLI twice) is harmless, so its error is ignored.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Masks a licence plate for logs above debug level: plates are personal data. Keeps the
/// province and the last character so operators can still tell reads apart.
pub fn mask_plate(plate: &str) -> String {
    let chars: Vec<char> = plate.chars().collect();
    match chars.len() {
        0..=2 => "*".repeat(chars.len()),
        n => {
            let mut s = String::new();
            s.push(chars[0]);
            s.push_str(&"*".repeat(n - 2));
            s.push(chars[n - 1]);
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mask_plate;

    #[test]
    fn masks_plates() {
        assert_eq!(mask_plate("贵F12345"), "贵*****5");
        assert_eq!(mask_plate("贵FD12345"), "贵******5");
        assert_eq!(mask_plate("ab"), "**");
    }
}
