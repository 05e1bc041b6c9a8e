//! Command-line interface: argument parsing and dispatch.

mod filter;
mod input;
mod learn;
mod record;
mod report;
mod scan;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use turbolog::state;
use turbolog::{Engine, EngineConfig};

/// Ultralight log anomaly detection: every line scored, anomalies tagged with a reason.
#[derive(Parser)]
#[command(name = "turbolog", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score log lines and report anomalies. Exit 0 = none, 1 = anomalies, 2 = error.
    Scan(scan::ScanArgs),
    /// Streaming transform for pipes, Vector and sidecars: NDJSON or text in, tagged NDJSON out.
    Filter(filter::FilterArgs),
    /// Record what normal looks like: learn good logs into a state directory.
    Learn(learn::LearnArgs),
    /// List the Fluent Bit plugin / C API properties with their defaults.
    PluginProps,
}

/// Options every command that runs the engine shares.
#[derive(Args, Clone, Debug)]
pub struct EngineArgs {
    /// State directory: load what was learned before, save what is learned now.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Score against the state without learning from this input (nothing is saved).
    #[arg(long)]
    pub frozen: bool,
    /// Fixed anomaly threshold in [0, 1] instead of the self-calibrating one (base 0.5).
    #[arg(long, value_name = "SCORE", value_parser = parse_unit)]
    pub threshold: Option<f32>,
    /// Lines are messages already: do not look for timestamps, levels and other headers.
    #[arg(long)]
    pub no_header: bool,
    /// Records per epoch, the window in which bursts are measured.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub epoch: u64,
    /// Epochs a template must appear in before it is considered normal.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub establish: u32,
}

fn parse_unit(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside [0, 1]"))
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human report: totals and the top anomalies grouped by template.
    Text,
    /// Exactly one JSON object per input line, in input order.
    Jsonl,
}

impl EngineArgs {
    pub fn config(&self) -> EngineConfig {
        let mut c = EngineConfig::default();
        c.no_header = self.no_header;
        c.score.epoch_records = self.epoch;
        c.score.establish_epochs = self.establish;
        if let Some(t) = self.threshold {
            c.score.threshold = t;
            c.score.fixed_threshold = true;
        }
        c
    }

    /// A fresh engine, or one that continues from the state directory.
    pub fn engine(&self) -> Result<Engine, String> {
        let mut engine = Engine::new(self.config());
        if let Some(dir) = &self.state {
            if let Some(snap) = state::load(dir).map_err(|e| e.to_string())? {
                engine
                    .restore(&snap)
                    .map_err(|e| format!("{}: {e}", dir.join(state::FILE_NAME).display()))?;
            } else if self.frozen {
                return Err(format!(
                    "--frozen needs learned state, but {} holds none; run `turbolog learn --state {} GOOD.log` first",
                    dir.display(),
                    dir.display()
                ));
            }
        }
        engine.set_learning(!self.frozen);
        Ok(engine)
    }

    /// Saves what was learned, unless frozen or stateless.
    pub fn save(&self, engine: &Engine) -> Result<(), String> {
        match &self.state {
            Some(dir) if !self.frozen => save_state(dir, engine),
            _ => Ok(()),
        }
    }
}

pub fn save_state(dir: &Path, engine: &Engine) -> Result<(), String> {
    state::save(dir, &engine.snapshot()).map_err(|e| e.to_string())
}

/// Whether colour may be used on this stream: a terminal, and `NO_COLOR` unset.
pub fn use_colour(fd: i32) -> bool {
    std::env::var_os("NO_COLOR").is_none() && is_terminal(fd)
}

pub fn is_terminal(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(a) => scan::run(a),
        Command::Filter(a) => filter::run(a),
        Command::Learn(a) => learn::run(a),
        Command::PluginProps => {
            print!("{}", turbolog::config::describe());
            Ok(0)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("turbolog: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &str) -> bool {
    e.contains("Broken pipe")
}
