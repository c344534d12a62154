//! Layered configuration: embedded `config/default.toml` → `--config FILE` →
//! `ROADWATCH__SECTION__KEY` environment variables, read with the `config` crate.
//!
//! Loading never stops at the first problem: unknown keys (any key absent from
//! default.toml, which is therefore the schema) and every invalid value are collected and
//! reported together by key path, so an operator fixes a file in one pass.
mod errors;
mod kafka_security;
mod keys;
mod settings;

use std::collections::BTreeMap;
use std::path::Path;

pub use errors::{ConfigError, ConfigErrors};
pub use kafka_security::{ClientCertificate, KafkaSecurity, Sasl, Secret, SecurityProtocol};
pub use settings::{
    ConsoleSettings, Guarantee, KafkaSettings, MetricsSettings, PlateKeySource, ProcessingSettings,
    RideHailingFiles, RoadsSettings, ScalingSettings, Settings, Topics,
};

/// The defaults, compiled in so that `roadwatch` runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

const ENV_PREFIX: &str = "ROADWATCH";

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: [&str; 3] = [
    "weather.visibility_levels_m",
    "weather.wind_gust_levels_ms",
    "weather.rain_levels_mm_h",
];

/// Loads settings from the defaults, an optional file and the given environment
/// (pass `std::env::vars()` in production; tests pass their own map).
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigErrors> {
    let merged = merged(file, env)?;
    validate(&merged)
}

/// Checks a merged tree: unknown keys and invalid values, all reported together.
pub fn validate(merged: &config::Config) -> Result<Settings, ConfigErrors> {
    let mut errors = keys::unknown_keys(merged);
    match settings::from_config(merged) {
        Ok(settings) if errors.is_empty() => Ok(settings),
        Ok(_) => Err(ConfigErrors(errors)),
        Err(ConfigErrors(more)) => {
            errors.extend(more);
            Err(ConfigErrors(errors))
        }
    }
}

/// The defaults alone — what tests and benches run on.
pub fn defaults() -> Settings {
    load(None, std::iter::empty()).expect("the embedded default.toml is valid")
}

/// `load` with the file's text in hand instead of its path (the fuzz target's way in).
pub fn load_toml(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigErrors> {
    let file = config::File::from_str(text, config::FileFormat::Toml);
    validate(&build(Some(file), env)?)
}

/// The merged configuration tree (defaults, file, environment), not yet validated.
pub fn merged(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<config::Config, ConfigErrors> {
    let file = match file {
        Some(path) if !path.is_file() => {
            return Err(ConfigErrors::single(
                "--config",
                format!("cannot read configuration file {}", path.display()),
            ))
        }
        Some(path) => Some(config::File::from(path).format(config::FileFormat::Toml)),
        None => None,
    };
    build(file, env)
}

fn build<F>(
    file: Option<F>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<config::Config, ConfigErrors>
where
    F: config::Source + Send + Sync + 'static,
{
    let env: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
        .collect();
    let mut environment = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .source(Some(env));
    for key in LIST_KEYS {
        environment = environment.with_list_parse_key(key);
    }
    let mut builder = config::Config::builder().add_source(config::File::from_str(
        DEFAULT_TOML,
        config::FileFormat::Toml,
    ));
    if let Some(file) = file {
        builder = builder.add_source(file);
    }
    builder
        .add_source(environment)
        .build()
        .map_err(|e| ConfigErrors::single("--config", e.to_string()))
}

/// The effective configuration as TOML, with secret-looking option values masked.
pub fn render_effective(cfg: &config::Config) -> String {
    let mut tree: toml::Table = cfg
        .clone()
        .try_deserialize()
        .unwrap_or_else(|_| toml::Table::new());
    if let Some(toml::Value::Table(kafka)) = tree.get_mut("kafka") {
        if let Some(toml::Value::Table(options)) = kafka.get_mut("options") {
            let masked: BTreeMap<String, toml::Value> = options
                .iter()
                .map(|(k, v)| {
                    let v = if settings::is_secret_option(k) {
                        toml::Value::String("********".into())
                    } else {
                        v.clone()
                    };
                    (settings::option_name(k), v)
                })
                .collect();
            *options = masked.into_iter().collect();
        }
    }
    // Secrets of our own keys; empty means "not set", which is worth seeing.
    for (section, key) in [
        ("console", "session_secret"),
        ("privacy", "plate_key"),
        ("kafka.security", "sasl_password"),
        ("kafka.security", "key_password"),
    ] {
        let table = section
            .split('.')
            .try_fold(&mut tree, |t, name| match t.get_mut(name) {
                Some(toml::Value::Table(inner)) => Some(inner),
                _ => None,
            });
        if let Some(table) = table {
            if table
                .get(key)
                .and_then(|v| v.as_str())
                .is_some_and(|v| !v.is_empty())
            {
                table.insert(key.into(), "********".into());
            }
        }
    }
    toml::to_string_pretty(&tree).unwrap_or_default()
}

#[cfg(test)]
mod tests;
