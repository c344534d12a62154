//! The command line. It parses arguments, loads configuration, and hands over to the
//! adapter that implements each command; no domain logic lives here.
//!
//! Exit status: 0 success, 1 runtime or I/O failure, 2 bad arguments or configuration,
//! 3 the command's capability is not part of this build yet (it says which issue adds it).
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Settings};
use crate::logging::{self, LogFormat};

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
        /// Simulated duration, e.g. 24h or 90m.
        #[arg(long, default_value = "24h")]
        duration: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Generate a simulated expressway with ground truth, to Kafka or NDJSON.
    Simulate {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Target records per second when producing to Kafka.
        #[arg(long)]
        rate: Option<u64>,
        /// Write NDJSON in the replay format instead of producing to Kafka.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validate the configuration and print the effective values (secrets masked).
    CheckConfig(ConfigArg),
    /// Road-network tools for operators and scripts.
    #[command(subcommand)]
    Roads(RoadsCommand),
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
    NotYet(&'static str),
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
        Err(Failure::NotYet(what)) => {
            eprintln!("roadwatch: {what}");
            ExitCode::from(3)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("roadwatch: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn load_settings(arg: &ConfigArg) -> Result<Settings, Failure> {
    config::load(arg.config.as_deref(), std::env::vars()).map_err(Failure::Config)
}

fn execute(command: Command) -> Result<(), Failure> {
    match command {
        Command::CheckConfig(arg) => check_config(arg.config.as_deref()),
        Command::Run(arg) => {
            load_settings(&arg)?;
            Err(Failure::NotYet(
                "`run` (the Kafka runtime) is not built yet: see issue 6. \
                 The configuration is valid.",
            ))
        }
        Command::Replay { config, .. } => {
            load_settings(&config)?;
            Err(Failure::NotYet(
                "`replay` needs the detection engine, which is not built yet: see issue 4.",
            ))
        }
        Command::Demo { config, .. } => {
            load_settings(&config)?;
            Err(Failure::NotYet(
                "`demo` needs the simulator and the engine, which are not built yet: see issues 4 and 8.",
            ))
        }
        Command::Simulate { config, .. } => {
            load_settings(&config)?;
            Err(Failure::NotYet("`simulate` is not built yet: see issue 8."))
        }
        Command::Roads(cmd) => roads(cmd),
    }
}

fn check_config(file: Option<&Path>) -> Result<(), Failure> {
    let merged = config::merged(file, std::env::vars()).map_err(Failure::Config)?;
    config::validate(&merged).map_err(Failure::Config)?;
    let mut out = BufWriter::new(io::stdout().lock());
    writeln!(out, "# effective roadwatch configuration (valid)")
        .and_then(|_| out.write_all(config::render_effective(&merged).as_bytes()))
        .and_then(|_| out.flush())
        .map_err(|e| Failure::Runtime(e.into()))
}

fn roads(cmd: RoadsCommand) -> Result<(), Failure> {
    match cmd {
        RoadsCommand::Locate { .. } | RoadsCommand::Stats { .. } => Err(Failure::NotYet(
            "`roads` needs the road-geometry module, which is not built yet: see issue 3.",
        )),
    }
}
