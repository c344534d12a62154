//! Unknown-key detection: default.toml lists every key, so any other path is a typo
//! (`ride_hailing.watchlist_fiel`) that would otherwise be silently ignored.
use std::collections::BTreeSet;

use super::errors::ConfigError;
use super::DEFAULT_TOML;

/// Tables whose keys are free-form (librdkafka pass-through properties).
const OPEN_TABLES: [&str; 1] = ["kafka.options"];

pub(super) fn unknown_keys(cfg: &config::Config) -> Vec<ConfigError> {
    let defaults: toml::Table = toml::from_str(DEFAULT_TOML).expect("default.toml parses");
    let mut known = BTreeSet::new();
    collect_toml(&defaults, "", &mut known);
    let merged: serde_json::Value = cfg.clone().try_deserialize().unwrap_or_default();
    let mut present = BTreeSet::new();
    collect_json(&merged, "", &mut present);
    present
        .into_iter()
        .filter(|path| !known.contains(path))
        .filter(|path| {
            !OPEN_TABLES
                .iter()
                .any(|t| path.starts_with(&format!("{t}.")))
        })
        .map(|key| {
            let hint = closest(&key, &known)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            ConfigError {
                key,
                message: format!("unknown key{hint}"),
            }
        })
        .collect()
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn collect_toml(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (k, v) in table {
        let path = join(prefix, k);
        if let toml::Value::Table(t) = v {
            collect_toml(t, &path, out);
        }
        out.insert(path);
    }
}

fn collect_json(value: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            let path = join(prefix, k);
            collect_json(v, &path, out);
            out.insert(path);
        }
    }
}

/// The known key in the same section with the smallest edit distance, if it is close.
fn closest<'a>(key: &str, known: &'a BTreeSet<String>) -> Option<&'a str> {
    let section = key.rsplit_once('.').map(|(s, _)| s).unwrap_or("");
    known
        .iter()
        .filter(|k| k.rsplit_once('.').map(|(s, _)| s).unwrap_or("") == section)
        .map(|k| (strsim::levenshtein(key, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k.as_str())
}
