use std::io::Write as _;

use super::*;
use crate::core::settings::Locale;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn defaults_are_domain_defaults() {
    let s = defaults();
    let e = &s.engine;
    assert_eq!(e.time.allowed_lateness_ms, 30_000);
    assert_eq!(e.pedestrian.min_confidence, 0.5);
    assert_eq!(e.pedestrian.confirm_single_confidence, 0.85);
    assert_eq!(e.pedestrian.confirm_window_ms, 10_000);
    assert_eq!(e.pedestrian.confirm_distance_m, 100.0);
    assert_eq!(e.pedestrian.incident_radius_m, 500.0);
    assert_eq!(e.pedestrian.clear_after_ms, 120_000);
    assert_eq!(e.pedestrian.critical_fog_level, 2);
    assert_eq!(e.weather.stretch_m, 5000.0);
    assert_eq!(e.weather.visibility_levels_m, [500.0, 200.0, 100.0, 50.0]);
    assert_eq!(e.weather.wind_gust_levels_mps, [17.2, 24.5, 32.7]);
    assert_eq!(e.weather.rain_levels_mm_h, [20.0, 50.0]);
    assert_eq!(
        (e.weather.enter_count, e.weather.enter_count_critical),
        (2, 1)
    );
    assert_eq!((e.weather.leave_count, e.weather.leave_margin), (3, 0.2));
    assert_eq!(e.weather.forecast_visibility_m, 200.0);
    assert_eq!(e.weather.forecast_horizon_ms, 1_800_000);
    assert_eq!(e.ride_hailing.watchlist_cooldown_ms, 1_800_000);
    assert_eq!(e.ride_hailing.trip_gap_ms, 1_800_000);
    assert_eq!(e.ride_hailing.window_ms, 7 * 86_400_000);
    assert_eq!(e.ride_hailing.daily_distance_km, 85.8);
    assert_eq!(e.ride_hailing.pattern_cooldown_ms, 86_400_000);
    assert_eq!(e.dispatch.max_position_age_ms, 120_000);
    assert_eq!(e.dispatch.speed_mps, 25.0);
    assert_eq!(e.dispatch.straight_line_factor, 1.3);
    assert_eq!(e.dispatch.ack_timeout_ms, 60_000);
    assert_eq!(e.dispatch.max_attempts, 3);
    assert_eq!(e.dispatch.busy_after_arrived_ms, 1_800_000);
    assert!(!e.dispatch.allow_median_uturn);
    assert_eq!(e.output.locale, Locale::ZhCn);
    assert_eq!(s.roads.max_snap_m, 100.0);
    assert_eq!(
        s.roads.file,
        std::path::PathBuf::from("config/roads/bijie.geojson")
    );
    assert_eq!(s.processing.guarantee, Guarantee::ExactlyOnce);
    assert_eq!(s.processing.commit_interval_ms, 100);
    assert_eq!(s.kafka.topics.dlq, "roadwatch-dlq");
    assert_eq!(s.ride_hailing_files.watchlist_file, None);
}

/// The core's `documented_defaults` (for tests and benches without this loader) are
/// exactly what default.toml gives.
#[test]
fn engine_defaults_are_default_toml() {
    let loaded = defaults().engine;
    let documented = crate::core::settings::EngineSettings::documented_defaults(
        loaded.ride_hailing.plate_key.clone(),
    );
    assert_eq!(documented, loaded);
}

#[test]
fn misspelt_key_is_named_with_a_suggestion() {
    let f = file("[ride_hailing]\nwatchlist_fiel = \"plates.txt\"\n");
    let err = load(Some(f.path()), env(&[])).unwrap_err();
    assert_eq!(err.keys(), vec!["ride_hailing.watchlist_fiel"]);
    assert!(
        err.to_string()
            .contains("did you mean `ride_hailing.watchlist_file`"),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let f = file(
        "[roads]\nmax_snap_m = -5\nfile = \"\"\n[typo_section]\nx = 1\n\
         [processing]\nguarantee = \"maybe_once\"\n[output]\nlocale = \"fr\"\nutc_offset = \"8\"\n\
         [weather]\nvisibility_levels_m = [50.0, 100.0, 200.0, 500.0]\nenter_count = \"two\"\n",
    );
    let err = load(
        Some(f.path()),
        env(&[("ROADWATCH__METRICS__LISTEN", "nowhere")]),
    )
    .unwrap_err();
    let mut keys = err.keys();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "metrics.listen",
            "output.locale",
            "output.utc_offset",
            "processing.guarantee",
            "roads.file",
            "roads.max_snap_m",
            "typo_section",
            "typo_section.x",
            "weather.enter_count",
            "weather.visibility_levels_m",
        ]
    );
}

#[test]
fn file_then_environment_override_defaults() {
    let f = file("[roads]\nfile = \"from-file.geojson\"\nmax_snap_m = 50\n");
    let s = load(
        Some(f.path()),
        env(&[
            ("ROADWATCH__ROADS__FILE", "from-env.geojson"),
            (
                "ROADWATCH__RIDE_HAILING__WATCHLIST_FILE",
                "/etc/roadwatch/watchlist.txt",
            ),
            ("ROADWATCH__WEATHER__RAIN_LEVELS_MM_H", "10,30"),
            ("ROADWATCH__PROCESSING__GUARANTEE", "at_least_once"),
            ("UNRELATED__VAR", "ignored"),
        ]),
    )
    .unwrap();
    assert_eq!(s.roads.file, std::path::PathBuf::from("from-env.geojson"));
    assert_eq!(
        s.roads.max_snap_m, 50.0,
        "file value kept where env is silent"
    );
    assert_eq!(
        s.ride_hailing_files.watchlist_file.as_deref(),
        Some(std::path::Path::new("/etc/roadwatch/watchlist.txt"))
    );
    assert_eq!(s.engine.weather.rain_levels_mm_h, [10.0, 30.0]);
    assert_eq!(s.processing.guarantee, Guarantee::AtLeastOnce);
}

#[test]
fn unknown_environment_key_is_an_error_too() {
    let err = load(None, env(&[("ROADWATCH__ROADS__FIEL", "x.geojson")])).unwrap_err();
    assert_eq!(err.keys(), vec!["roads.fiel"]);
}

#[test]
fn kafka_options_pass_through_and_secrets_are_masked() {
    let f = file("[kafka.options]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n");
    let envs = env(&[("ROADWATCH__KAFKA__OPTIONS__SASL_PASSWORD", "hunter2")]);
    let s = load(Some(f.path()), envs.clone()).unwrap();
    assert_eq!(s.kafka.options["security.protocol"], "SASL_SSL");
    assert_eq!(s.kafka.options["sasl.mechanism"], "SCRAM-SHA-512");
    assert_eq!(s.kafka.options["sasl.password"], "hunter2");
    let debug = format!("{:?}", s.kafka);
    assert!(!debug.contains("hunter2"), "{debug}");
    let rendered = render_effective(&merged(Some(f.path()), envs).unwrap());
    assert!(!rendered.contains("hunter2"), "{rendered}");
    assert!(rendered.contains("SCRAM-SHA-512"), "{rendered}");
}

#[test]
fn unreadable_or_malformed_file_is_reported() {
    let err = load(
        Some(std::path::Path::new("/nonexistent/roadwatch.toml")),
        env(&[]),
    )
    .unwrap_err();
    assert_eq!(err.keys(), vec!["--config"]);
    let f = file("[roads\nfile = 1");
    let err = load(Some(f.path()), env(&[])).unwrap_err();
    assert_eq!(err.keys(), vec!["--config"]);
}

#[test]
fn threshold_lists_must_be_ordered() {
    let f =
        file("[weather]\nwind_gust_levels_ms = [32.7, 24.5, 17.2]\nrain_levels_mm_h = [20.0]\n");
    let err = load(Some(f.path()), env(&[])).unwrap_err();
    let mut keys = err.keys();
    keys.sort();
    assert_eq!(
        keys,
        vec!["weather.rain_levels_mm_h", "weather.wind_gust_levels_ms"]
    );
}

#[test]
fn the_plate_key_comes_from_config_a_file_or_this_process() {
    let hex = "0123456789abcdef".repeat(4);
    let s = load(
        None,
        env(&[("ROADWATCH__PRIVACY__PLATE_KEY", hex.as_str())]),
    )
    .unwrap();
    assert_eq!(s.plate_key_source, PlateKeySource::Configured);
    assert_eq!(s.engine.ride_hailing.plate_key.reveal_hex(), hex);
    assert!(!format!("{s:?}").contains(&hex), "Debug shows the key");

    let mut key_file = tempfile::NamedTempFile::new().unwrap();
    writeln!(key_file, "{hex}").unwrap();
    let path = key_file.path().display().to_string();
    let s = load(
        None,
        env(&[("ROADWATCH__PRIVACY__PLATE_KEY_FILE", path.as_str())]),
    )
    .unwrap();
    assert_eq!(
        s.plate_key_source,
        PlateKeySource::File(key_file.path().into())
    );
    assert_eq!(s.engine.ride_hailing.plate_key.reveal_hex(), hex);

    // Unset: one random key for the whole process, the same at every load.
    let (a, b) = (defaults(), defaults());
    assert_eq!(a.plate_key_source, PlateKeySource::Generated);
    assert_eq!(
        a.engine.ride_hailing.plate_key,
        b.engine.ride_hailing.plate_key
    );
    assert_eq!(a.engine.ride_hailing.plate_key.len(), 32);
    assert_ne!(
        a.engine.ride_hailing.plate_key.reveal_hex(),
        "00".repeat(32)
    );
}

#[test]
fn a_bad_plate_key_stops_start_up_naming_the_key_never_the_value() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[(
                "ROADWATCH__PRIVACY__PLATE_KEY",
                "00112233445566778899aabbccddee",
            )],
            "at least 16",
        ),
        (
            &[(
                "ROADWATCH__PRIVACY__PLATE_KEY",
                "not-a-key-but-a-password-typed-in",
            )],
            "hex",
        ),
        (
            &[
                (
                    "ROADWATCH__PRIVACY__PLATE_KEY",
                    "00112233445566778899aabbccddeeff",
                ),
                (
                    "ROADWATCH__PRIVACY__PLATE_KEY_FILE",
                    "/etc/roadwatch/plate.key",
                ),
            ],
            "not both",
        ),
        (
            &[(
                "ROADWATCH__PRIVACY__PLATE_KEY_FILE",
                "/nonexistent/plate.key",
            )],
            "cannot read",
        ),
    ];
    for (vars, why) in cases {
        let err = load(None, env(vars)).unwrap_err();
        let text = err.to_string();
        assert!(
            err.keys()
                .iter()
                .any(|k| k.starts_with("privacy.plate_key")),
            "{text}"
        );
        assert!(text.contains(why), "{text}");
        assert!(
            !text.contains("password-typed") && !text.contains("ccddee"),
            "{text}"
        );
    }
}

#[test]
fn check_config_masks_the_plate_key() {
    let hex = "fe".repeat(32);
    let merged = merged(
        None,
        env(&[("ROADWATCH__PRIVACY__PLATE_KEY", hex.as_str())]),
    )
    .unwrap();
    let rendered = render_effective(&merged);
    assert!(!rendered.contains(&hex), "{rendered}");
    assert!(rendered.contains("plate_key = \"********\""), "{rendered}");
}

#[test]
fn kafka_security_sasl_over_tls_with_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let pw = dir.path().join("password");
    std::fs::write(&pw, "s3cret-from-file\n").unwrap();
    let envs = env(&[
        ("ROADWATCH__KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
        ("ROADWATCH__KAFKA__SECURITY__SASL_USERNAME", "roadwatch"),
        (
            "ROADWATCH__KAFKA__SECURITY__SASL_PASSWORD_FILE",
            pw.to_str().unwrap(),
        ),
        ("ROADWATCH__KAFKA__SECURITY__CA_FILE", ca.to_str().unwrap()),
    ]);
    let s = load(None, envs.clone()).unwrap();
    let sec = &s.kafka.security;
    assert_eq!(sec.protocol, SecurityProtocol::SaslSsl);
    let sasl = sec.sasl.as_ref().unwrap();
    assert_eq!(sasl.mechanism, "SCRAM-SHA-512", "the default mechanism");
    // The file's trailing newline is not part of the password.
    assert_eq!(sasl.password.expose(), "s3cret-from-file");
    let props: std::collections::BTreeMap<_, _> = sec.client_properties().into_iter().collect();
    assert_eq!(props["security.protocol"], "sasl_ssl");
    assert_eq!(props["sasl.mechanisms"], "SCRAM-SHA-512");
    assert_eq!(props["sasl.username"], "roadwatch");
    assert_eq!(props["sasl.password"], "s3cret-from-file");
    assert_eq!(props["ssl.ca.location"], ca.to_str().unwrap());
    assert_eq!(props["ssl.endpoint.identification.algorithm"], "https");
    let debug = format!("{:?}", s.kafka);
    assert!(!debug.contains("s3cret"), "{debug}");

    // An inline password (from the environment) is masked by check-config.
    let envs = env(&[
        ("ROADWATCH__KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
        ("ROADWATCH__KAFKA__SECURITY__SASL_USERNAME", "roadwatch"),
        (
            "ROADWATCH__KAFKA__SECURITY__SASL_PASSWORD",
            "hunter2-inline",
        ),
        (
            "ROADWATCH__KAFKA__SECURITY__KEY_PASSWORD",
            "key-pass-inline",
        ),
    ]);
    assert!(load(None, envs.clone()).is_ok());
    let rendered = render_effective(&merged(None, envs).unwrap());
    assert!(!rendered.contains("hunter2-inline"), "{rendered}");
    assert!(!rendered.contains("key-pass-inline"), "{rendered}");
    assert!(
        rendered.contains("sasl_username = \"roadwatch\""),
        "{rendered}"
    );
}

#[test]
fn kafka_security_mistakes_stop_start_up_naming_the_key() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("ROADWATCH__KAFKA__SECURITY__PROTOCOL", "tls")],
            "kafka.security.protocol",
        ),
        (
            &[("ROADWATCH__KAFKA__SECURITY__PROTOCOL", "sasl_ssl")],
            "kafka.security.sasl_username",
        ),
        (
            &[
                ("ROADWATCH__KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
                ("ROADWATCH__KAFKA__SECURITY__SASL_USERNAME", "rw"),
            ],
            "kafka.security.sasl_password",
        ),
        (
            &[
                ("ROADWATCH__KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
                ("ROADWATCH__KAFKA__SECURITY__SASL_USERNAME", "rw"),
                ("ROADWATCH__KAFKA__SECURITY__SASL_PASSWORD", "pw"),
                ("ROADWATCH__KAFKA__SECURITY__SASL_MECHANISM", "GSSAPI"),
            ],
            "kafka.security.sasl_mechanism",
        ),
        // Credentials that plaintext would silently ignore.
        (
            &[("ROADWATCH__KAFKA__SECURITY__SASL_USERNAME", "rw")],
            "kafka.security.sasl_username",
        ),
        (
            &[
                ("ROADWATCH__KAFKA__SECURITY__PROTOCOL", "ssl"),
                ("ROADWATCH__KAFKA__SECURITY__CA_FILE", "/nonexistent/ca.crt"),
            ],
            "kafka.security.ca_file",
        ),
        (
            &[
                ("ROADWATCH__KAFKA__SECURITY__PROTOCOL", "ssl"),
                ("ROADWATCH__KAFKA__SECURITY__CERTIFICATE_FILE", "Cargo.toml"),
            ],
            "kafka.security.key_file",
        ),
        (
            &[
                ("ROADWATCH__KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
                ("ROADWATCH__KAFKA__SECURITY__SASL_USERNAME", "rw"),
                ("ROADWATCH__KAFKA__SECURITY__SASL_PASSWORD", "pw"),
                (
                    "ROADWATCH__KAFKA__SECURITY__SASL_PASSWORD_FILE",
                    "Cargo.toml",
                ),
            ],
            "kafka.security.sasl_password",
        ),
        (
            &[("ROADWATCH__KAFKA__SECURITY__CA_FILE", "Cargo.toml")],
            "kafka.security.protocol",
        ),
    ];
    for (pairs, key) in cases {
        let err = load(None, env(pairs)).unwrap_err();
        assert!(err.keys().contains(key), "{pairs:?}: {err}");
        for (_, v) in pairs.iter() {
            if *v == "pw" {
                assert!(!err.to_string().contains("pw\""), "{err}");
            }
        }
    }
}
