//! The command line. It parses arguments, loads configuration, and hands over to the
//! adapter that implements each command; no domain logic lives here.
//!
//! Exit status: 0 success, 1 runtime or I/O failure, 2 bad arguments or configuration,
//! 3 the command's capability is not part of this build yet (it says which issue adds it).
use std::fs::File;
use std::io::{self as stdio, BufReader, BufWriter, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{self, Settings};
use crate::core::engine::Engine;
use crate::core::roads::{LoadError, LoadOptions, RoadNetwork};
use crate::io::demo::{DemoOptions, Speed};
use crate::io::pipeline::Pipeline;
use crate::io::plate_lists::PlateListFiles;
use crate::io::report::{Format as ReportFormat, Tally};
use crate::io::simulate::SimulateOptions;
use crate::io::{self, roads_cmd};
use crate::logging::{self, LogFormat};

/// Default start of simulated runs: Monday 2026-11-23, 00:00 China Standard Time — in the
/// past, so that simulated files replay without tripping the future-timestamp check, and
/// inside the shipped network's timed work zone.
const DEFAULT_START: &str = "2026-11-23T00:00:00+08:00";

#[derive(Debug, Parser)]
#[command(
    name = "roadwatch",
    version,
    about = "Expressway event-perception stream processor: \
pedestrians on the carriageway, illegal ride-hailing and severe weather, sent by flat dispatch \
to the nearest patrol unit."
)]
pub struct Cli {
    /// Log format on stderr. Filter with RUST_LOG (e.g. RUST_LOG=roadwatch=debug).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Configuration file (TOML) layered over the defaults; environment variables
    /// ROADWATCH__SECTION__KEY override both.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume the input topics from Kafka and publish alerts, dispatches and DLQ records.
    Run(ConfigArg),
    /// The first stage of the scale-out topology: read the input topics, dead-letter bad
    /// records, and send each record to the repartition topic partition of its rule's
    /// key (docs/SCALING.md).
    Locate(ConfigArg),
    /// Run the engine over an NDJSON file of records (CONTRACT section 5).
    Replay {
        /// Road network (overrides roads.file).
        #[arg(long, value_name = "ROADS.geojson")]
        roads: Option<PathBuf>,
        /// Input records, one `{"stream":..,"value":{..}}` per line.
        #[arg(long, value_name = "RECORDS.ndjson")]
        input: PathBuf,
        /// Produced records, one `{"topic":..,"key":..,"value":{..}}` per line.
        #[arg(long, value_name = "OUT.ndjson")]
        output: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Simulator and engine in one process on the shipped network; needs no Kafka.
    Demo {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Simulated duration of the scored run, e.g. 24h, 90m, 2d.
        #[arg(long, default_value = "24h")]
        duration: String,
        /// Simulated days of plate reads before the run, so that the ride-hailing
        /// pattern detector has history (it needs 3 active days).
        #[arg(long, default_value = "4d")]
        warmup: String,
        /// Start of the scored run (RFC 3339).
        #[arg(long, default_value = DEFAULT_START)]
        start: String,
        /// Simulated seconds per wall second: `auto` (the run takes about a minute),
        /// `max`, or a number.
        #[arg(long, default_value = "auto")]
        speed: String,
        /// Keep serving /metrics this many seconds after the closing report.
        #[arg(long, default_value_t = 0)]
        linger: u64,
        /// Do not print a line per alert.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Generate a simulated expressway with ground truth, to Kafka or NDJSON.
    Simulate {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Simulated duration, e.g. 24h.
        #[arg(long, default_value = "24h")]
        duration: String,
        /// Simulated days of plate reads before the run (pattern-detector history).
        #[arg(long, default_value = "0s")]
        warmup: String,
        /// Start of the run (RFC 3339).
        #[arg(long, default_value = DEFAULT_START)]
        start: String,
        /// Target records per second when producing to Kafka (0 = as fast as possible).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Write NDJSON in the replay format to this file instead of producing to Kafka.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Write the ground truth (JSON) to this file.
        #[arg(long, value_name = "FILE")]
        truth: Option<PathBuf>,
        /// To Kafka: do not play the patrol units' apps (by default they read the alerts
        /// topic and answer their dispatches on dispatch-acks, as in the demo).
        #[arg(long)]
        no_answers: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Count how alerts ended (confirmed, false alarm, ...) per detector and per camera,
    /// reader or station, with their precision.
    #[command(group = clap::ArgGroup::new("source").required(true).args(["input", "kafka"]))]
    Report {
        /// Alert documents, one per line: replay output lines or bare documents as a
        /// console consumer of the alerts topic prints them; `-` for stdin.
        #[arg(long, value_name = "FILE")]
        input: Option<PathBuf>,
        /// Read the alerts topic (kafka.topics.alerts) instead, read-committed, from the
        /// beginning of every partition to its end at start; commits no offsets.
        #[arg(long)]
        kafka: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// The command-center console and the patrol-unit app in the browser, against Kafka
    /// (docs/CONSOLE.md).
    Console(ConfigArg),
    /// Accounts of the console: hash an operator's password, make a unit's token.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Validate the configuration and print the effective values (secrets masked).
    CheckConfig(ConfigArg),
    /// Road-network tools for operators and scripts.
    #[command(subcommand)]
    Roads(RoadsCommand),
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Read a password from stdin (one line) and print its argon2 hash, for an
    /// `[[operators]]` entry of console.accounts_file.
    HashPassword,
    /// Print a new random token for a patrol unit and the `[[units]]` entry to add.
    NewToken { unit_id: String },
}

#[derive(Debug, Subcommand)]
pub enum RoadsCommand {
    /// Print the road position of LON LAT, or of each {"lon":..,"lat":..} line on stdin.
    Locate {
        /// Road network (overrides roads.file).
        #[arg(long, value_name = "ROADS.geojson")]
        roads: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(allow_negative_numbers = true)]
        lon: Option<f64>,
        #[arg(allow_negative_numbers = true, requires = "lon")]
        lat: Option<f64>,
    },
    /// Summarise a road-network file: roads, carriageways, stakes, structures, zones.
    Stats {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// Why a command stopped; each maps to one exit status.
#[derive(Debug)]
pub enum Failure {
    Config(config::ConfigErrors),
    Usage(String),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(errors)) => {
            eprint!("roadwatch: {errors}");
            ExitCode::from(2)
        }
        Err(Failure::Usage(msg)) => {
            eprintln!("roadwatch: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("roadwatch: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn load_settings(arg: &ConfigArg) -> Result<Settings, Failure> {
    let settings =
        config::load(arg.config.as_deref(), std::env::vars()).map_err(Failure::Config)?;
    announce_plate_key(&settings);
    Ok(settings)
}

/// Says where the plates' pseudonym key came from (never the key): a generated one makes
/// ride-hailing alert ids differ from every other process's, which an operator must know.
fn announce_plate_key(settings: &Settings) {
    match &settings.plate_key_source {
        config::PlateKeySource::Generated => tracing::warn!(
            "privacy.plate_key is not set: plate pseudonyms (in ride-hailing alert ids) use a \
             random key made for this process, so they differ from those of any restart, \
             other instance or replay; set privacy.plate_key or privacy.plate_key_file \
             (docs/SECURITY.md)"
        ),
        config::PlateKeySource::File(path) => {
            tracing::info!(file = %path.display(), "plate pseudonym key read from privacy.plate_key_file")
        }
        config::PlateKeySource::Configured => {
            tracing::info!("plate pseudonym key from privacy.plate_key")
        }
    }
}

fn execute(command: Command) -> Result<(), Failure> {
    match command {
        Command::CheckConfig(arg) => check_config(arg.config.as_deref()),
        Command::Run(arg) => {
            let settings = load_settings(&arg)?;
            let network = load_roads(&settings)?;
            io::kafka::run_command(settings, network)?;
            Ok(())
        }
        Command::Locate(arg) => {
            let settings = load_settings(&arg)?;
            // A configuration the stage cannot work with stops it before any broker.
            io::kafka::locate::stage_settings(&settings)
                .map_err(|e| Failure::Usage(format!("{e:#}")))?;
            let network = load_roads(&settings)?;
            io::kafka::locate::run_command(settings, network.into())?;
            Ok(())
        }
        Command::Replay {
            roads,
            input,
            output,
            config,
        } => replay(load_settings(&config)?, roads, &input, &output),
        Command::Demo {
            seed,
            duration,
            warmup,
            start,
            speed,
            linger,
            quiet,
            config,
        } => {
            let settings = load_settings(&config)?;
            let opts = DemoOptions {
                seed,
                start_ms: start_ms(&start)?,
                duration_ms: duration_arg("--duration", &duration)?,
                warmup_ms: duration_arg("--warmup", &warmup)?,
                speed: Speed::parse(&speed).ok_or_else(|| {
                    Failure::Usage(format!(
                        "--speed {speed:?}: expected auto, max or a positive number"
                    ))
                })?,
                linger: std::time::Duration::from_secs(linger),
                print_alerts: !quiet,
            };
            let network = Arc::new(load_roads(&settings)?);
            let mut out = stdio::stdout().lock();
            io::demo::run_demo(&settings, network, &opts, &mut out)?;
            Ok(())
        }
        Command::Simulate {
            seed,
            duration,
            warmup,
            start,
            rate,
            output,
            truth,
            no_answers,
            config,
        } => {
            let settings = load_settings(&config)?;
            let opts = SimulateOptions {
                answer: !no_answers,
                seed,
                start_ms: start_ms(&start)?,
                duration_ms: duration_arg("--duration", &duration)?,
                warmup_ms: duration_arg("--warmup", &warmup)?,
                rate,
                output,
                truth,
            };
            let network = Arc::new(load_roads(&settings)?);
            io::simulate::simulate(&settings, network, &opts)?;
            Ok(())
        }
        Command::Report {
            input,
            kafka: _,
            format,
            config,
        } => report(&load_settings(&config)?, input.as_deref(), format),
        Command::Roads(cmd) => roads(cmd),
        Command::Console(arg) => {
            let settings = load_settings(&arg)?;
            let network = Arc::new(load_roads(&settings)?);
            io::console::run_console(settings, network)?;
            Ok(())
        }
        Command::Accounts(cmd) => accounts(cmd),
    }
}

fn accounts(cmd: AccountsCommand) -> Result<(), Failure> {
    use io::console::auth::{hash_password, new_secret, token_sha256};
    match cmd {
        AccountsCommand::HashPassword => {
            let mut line = String::new();
            stdio::stdin()
                .read_line(&mut line)
                .map_err(|e| Failure::Runtime(e.into()))?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(Failure::Usage("an empty password".into()));
            }
            println!("{}", hash_password(password));
        }
        AccountsCommand::NewToken { unit_id } => {
            if !crate::core::model::is_valid_identifier(&unit_id) {
                return Err(Failure::Usage(format!(
                    "{unit_id:?} is not a unit id (1-64 of A-Z a-z 0-9 . _ -)"
                )));
            }
            let token = new_secret();
            println!("token for {unit_id} (give it to the unit; it is not stored): {token}");
            println!();
            println!(
                "[[units]]\nunit_id = \"{unit_id}\"\ntoken_sha256 = \"{}\"",
                token_sha256(&token)
            );
        }
    }
    Ok(())
}

fn duration_arg(flag: &str, text: &str) -> Result<i64, Failure> {
    io::demo::parse_duration_ms(text).ok_or_else(|| {
        Failure::Usage(format!(
            "{flag} {text:?}: expected a duration like 90m, 24h or 2d"
        ))
    })
}

fn start_ms(text: &str) -> Result<i64, Failure> {
    crate::core::model::parse_rfc3339_ms(text)
        .map(|t| t.ms())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "--start {text:?}: expected RFC 3339 with an offset"
            ))
        })
}

fn check_config(file: Option<&Path>) -> Result<(), Failure> {
    let merged = config::merged(file, std::env::vars()).map_err(Failure::Config)?;
    config::validate(&merged).map_err(Failure::Config)?;
    let mut out = BufWriter::new(stdio::stdout().lock());
    writeln!(out, "# effective roadwatch configuration (valid)")
        .and_then(|_| out.write_all(config::render_effective(&merged).as_bytes()))
        .and_then(|_| out.flush())
        .map_err(|e| Failure::Runtime(e.into()))
}

/// Loads the road network named by the settings. A file that cannot be read is an I/O
/// failure (status 1); a file whose content is refused is a bad argument (status 2).
fn load_roads(settings: &Settings) -> Result<RoadNetwork, Failure> {
    let opts = LoadOptions {
        max_snap_m: settings.roads.max_snap_m,
        strict: settings.roads.strict,
    };
    roads_cmd::load_network_file(&settings.roads.file, &opts).map_err(|e| {
        if e.chain().any(|c| c.is::<LoadError>()) {
            Failure::Usage(format!("{e:#}"))
        } else {
            Failure::Runtime(e)
        }
    })
}

fn replay(
    mut settings: Settings,
    roads: Option<PathBuf>,
    input: &Path,
    output: &Path,
) -> Result<(), Failure> {
    if let Some(path) = roads {
        settings.roads.file = path;
    }
    let network = Arc::new(load_roads(&settings)?);
    let mut engine = Engine::new(settings.engine.clone(), network);
    let (_files, watchlist, whitelist) = PlateListFiles::load(&settings.ride_hailing_files)
        .map_err(|e| Failure::Config(config::ConfigErrors::single(e.key, e.to_string())))?;
    engine.set_plate_lists(watchlist, whitelist);
    let in_file =
        File::open(input).with_context(|| format!("opening replay input {}", input.display()))?;
    let size = in_file.metadata().map(|m| m.len()).unwrap_or(0);
    let out_file = File::create(output)
        .with_context(|| format!("creating replay output {}", output.display()))?;
    let bar = progress_bar(size);
    let mut pipeline = Pipeline::new(&settings, engine, None);
    let summary = io::replay::replay(
        &mut pipeline,
        BufReader::with_capacity(1 << 20, in_file),
        BufWriter::with_capacity(1 << 20, out_file),
        |done| bar.set_position(done),
    )
    .with_context(|| format!("replaying {} into {}", input.display(), output.display()))?;
    bar.finish_and_clear();
    print!("{}", summary.render());
    Ok(())
}

/// `roadwatch report`: from `input` (`-` = stdin), or from Kafka when there is none (the
/// argument group makes `--kafka` the only other choice).
fn report(settings: &Settings, input: Option<&Path>, format: ReportFormat) -> Result<(), Failure> {
    // Replay files name the topic as configured, so the same name picks their lines.
    let mut tally = Tally::new(&settings.kafka.topics.alerts);
    match input {
        Some(path) if path == Path::new("-") => tally
            .read_lines(stdio::stdin().lock())
            .context("reading stdin")?,
        Some(path) => {
            let file = File::open(path)
                .with_context(|| format!("opening report input {}", path.display()))?;
            tally
                .read_lines(BufReader::with_capacity(1 << 20, file))
                .with_context(|| format!("reading report input {}", path.display()))?
        }
        None => io::report_kafka::read_alerts_topic(&settings.kafka, &mut tally)?,
    }
    if let Some(warning) = tally.skip_warning() {
        tracing::warn!("report: {warning}");
    }
    let report = tally.report();
    let rendered = match format {
        ReportFormat::Text => report.render_text(),
        ReportFormat::Json => report.render_json(),
    };
    let mut out = stdio::stdout().lock();
    out.write_all(rendered.as_bytes())
        .and_then(|_| out.flush())
        .context("writing the report")?;
    Ok(())
}

/// A progress bar on stderr for long files when a person is watching; hidden otherwise.
fn progress_bar(total_bytes: u64) -> ProgressBar {
    const WORTH_A_BAR: u64 = 16 << 20;
    if total_bytes < WORTH_A_BAR || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_bytes);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} replay [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn roads(cmd: RoadsCommand) -> Result<(), Failure> {
    match cmd {
        RoadsCommand::Locate {
            roads,
            config,
            lon,
            lat,
        } => {
            let mut settings = load_settings(&config)?;
            if let Some(path) = roads {
                settings.roads.file = path;
            }
            let point = match (lon, lat) {
                (Some(lon), Some(lat)) => Some((lon, lat)),
                (None, None) => None,
                _ => return Err(Failure::Usage("give both LON and LAT, or neither".into())),
            };
            let network = load_roads(&settings)?;
            let stdin = std::io::stdin();
            roads_cmd::locate_command(&network, point, stdin.lock(), std::io::stdout().lock())?;
            Ok(())
        }
        RoadsCommand::Stats { file, config } => {
            let settings = load_settings(&config)?;
            let opts = LoadOptions {
                max_snap_m: settings.roads.max_snap_m,
                strict: settings.roads.strict,
            };
            roads_cmd::stats_command(&file, &opts, std::io::stdout().lock()).map_err(|e| {
                if e.chain().any(|c| c.is::<LoadError>()) {
                    Failure::Usage(format!("{e:#}"))
                } else {
                    Failure::Runtime(e)
                }
            })
        }
    }
}
