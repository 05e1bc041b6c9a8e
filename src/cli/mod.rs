//! Command-line interface: argument parsing and dispatch.

mod ack;
mod diff;
mod explain;
mod explaining;
pub mod filter;
mod history;
mod input;
mod inspect;
mod learn;
mod multiline;
mod report;
mod scan;
mod sessions;
mod sniff;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use turbolog::store::persist::Persist;
use turbolog::store::templates_file;
use turbolog::store::{FsyncPolicy, StoreOptions};
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
    /// Tag records arriving over TCP (NDJSON), HTTP or Fluent Forward and send them on: the
    /// Vector external transform and the Kubernetes sidecar. Serves /healthz, /readyz, /metrics.
    Serve(crate::serve::ServeArgs),
    /// Record what normal looks like: learn good logs into a state directory.
    Learn(learn::LearnArgs),
    /// Show what a state directory holds: shards, chunks, checksums, templates.
    Inspect(inspect::InspectArgs),
    /// Follow files like `tail -F` and print anomalies as they come (Ctrl-C stops, sealing).
    Watch(watch::WatchArgs),
    /// The anomalies recorded in a state directory, window by window.
    History(history::HistoryArgs),
    /// Learn good logs and report what is new or changed in others: `diff GOOD… -- BAD…`.
    Diff(diff::DiffArgs),
    /// Say that templates are normal: recurring trouble is flagged until acknowledged.
    Ack(ack::AckArgs),
    /// Explain stored anomalous templates with a local LLM (and show cached explanations).
    Explain(explain::ExplainCmdArgs),
    /// List the Fluent Bit plugin / C API properties with their defaults.
    PluginProps {
        /// As the Markdown table the README shows.
        #[arg(long)]
        markdown: bool,
    },
}

/// Options every command that runs the engine shares.
#[derive(Args, Clone, Debug)]
pub struct EngineArgs {
    /// State directory: load what was learned before, save what is learned now.
    #[arg(long, value_name = "DIR", env = "TURBOLOG_STATE")]
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
    /// Epochs a template must appear in before it is considered normal (up to 4x as many for
    /// templates with error levels or words).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub establish: u32,
    /// Cap on templates; past it, lines that match no template share one overflow template.
    #[arg(long, value_name = "N", default_value_t = turbolog::detect::template::DEFAULT_MAX_TEMPLATES, value_parser = parse_max_templates)]
    pub max_templates: usize,
    /// fsync every WAL append (OS-crash safe; default: process-crash safe, an OS crash may lose
    /// the last seconds).
    #[arg(long)]
    pub fsync: bool,
    /// Embed templates with the sentence model in DIR (all-MiniLM-L6-v2, int8 ONNX:
    /// `scripts/fetch-model.sh DIR` prepares it) instead of the built-in hashed words.
    #[arg(long, value_name = "DIR", env = "TURBOLOG_MODEL")]
    pub model: Option<PathBuf>,
}

/// The embedder `--model` asks for, said in one line on stderr.
pub fn embedder(model: Option<&std::path::Path>) -> Result<Box<dyn turbolog::embed::Embedder>, String> {
    match model {
        None => {
            eprintln!("turbolog: embedder: built-in hashed words (--model DIR for the all-MiniLM-L6-v2 sentence model)");
            Ok(Box::new(turbolog::embed::HashEmbedder::default()))
        }
        Some(dir) => {
            let started = std::time::Instant::now();
            let m = turbolog::embed::model::load(dir)?;
            eprintln!(
                "turbolog: embedder: all-MiniLM-L6-v2 int8 from {} (sha256 {}…), loaded in {:.2} s",
                dir.display(),
                &m.sha256()[..12],
                started.elapsed().as_secs_f64()
            );
            Ok(Box::new(turbolog::embed::ModelEmbedder::new(m)))
        }
    }
}

fn parse_max_templates(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=10_000_000).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a whole number in 1..10000000")),
    }
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
    /// The report as Markdown, for tickets and pull requests.
    Markdown,
    /// The report as one self-contained HTML page (no network, no external files).
    Html,
}

impl EngineArgs {
    pub fn config(&self) -> EngineConfig {
        EngineConfig::with(self.no_header, self.epoch, self.establish, self.threshold, self.max_templates)
    }

    /// A fresh engine, or one that continues from the state directory.
    pub fn session(&self) -> Result<Session, String> {
        let mut engine = Engine::with_embedder(self.config(), embedder(self.model.as_deref())?);
        let mut persist = None;
        if let Some(dir) = &self.state {
            if self.frozen && !dir.join(templates_file::FILE_NAME).exists() {
                return Err(format!(
                    "--frozen needs learned state, but {} holds none; run `turbolog learn --state {} GOOD.log` first",
                    dir.display(),
                    dir.display()
                ));
            }
            let opts = StoreOptions {
                fsync: if self.fsync { FsyncPolicy::EveryAppend } else { FsyncPolicy::Never },
                ..StoreOptions::default()
            };
            let (p, opened) = Persist::open(dir, &mut engine, opts)?;
            for w in &opened.warnings {
                eprintln!("turbolog: warning: {w}");
            }
            if opened.report.reembedded > 0 {
                eprintln!(
                    "turbolog: {} of {} template vectors were missing from {} and were embedded again",
                    opened.report.reembedded,
                    opened.report.templates,
                    dir.display()
                );
            }
            if self.frozen {
                engine.track_dirty(false);
            } else {
                persist = Some(p);
            }
        }
        engine.set_learning(!self.frozen);
        Ok(Session { engine, persist, store_failing: false, limit_reported: false })
    }
}

/// An engine and, with `--state`, where what it learns is kept.
pub struct Session {
    pub engine: Engine,
    persist: Option<Persist>,
    store_failing: bool,
    limit_reported: bool,
}

impl Session {
    /// After each record: new templates go to the WAL. A failing disk is reported once and the
    /// stream goes on (the store retries at each seal).
    pub fn after_record(&mut self) {
        if !self.limit_reported && self.engine.template_limit_hits() > 0 {
            self.limit_reported = true;
            let warning = turbolog::detect::template::limit_warning(self.engine.max_templates());
            eprintln!("turbolog: warning: {warning}");
        }
        if let Some(p) = &mut self.persist {
            if let Err(e) = p.record(&mut self.engine) {
                self.store_failing = true;
                eprintln!("turbolog: warning: {e}");
            }
        }
    }

    /// At the end of input: what the model cost, and how many lines went past the template
    /// limit, if any did.
    pub fn report_limit(&self) {
        if let Some(d) = self.engine.embedder_delays() {
            eprintln!("turbolog: {d}");
        }
        let past = self.engine.template_limit_hits();
        if past > 0 {
            eprintln!("turbolog: warning: {past} lines in all went past the template limit ({})", self.engine.max_templates());
        }
    }

    /// Seals the window: templates.tls and a chunk.
    pub fn seal(&mut self) -> Result<(), String> {
        if let Some(p) = &mut self.persist {
            let sealed = p.seal(&mut self.engine);
            if let Some(w) = p.take_ack_warning() {
                eprintln!("turbolog: warning: {w}");
            }
            match sealed {
                Ok(_) => {
                    if std::mem::take(&mut self.store_failing) {
                        eprintln!("turbolog: saving to {} works again", p.dir().display());
                    }
                }
                Err(e) => {
                    return Err(format!("{e}; what was learned in this run is not saved"));
                }
            }
        }
        Ok(())
    }

    /// A periodic seal whose failure is a warning, not the end of the stream.
    pub fn seal_quietly(&mut self) {
        if let Err(e) = self.seal() {
            if !self.store_failing {
                eprintln!("turbolog: warning: {e}; retrying at the next window");
            }
            self.store_failing = true;
        }
    }
}

/// A state file that starts afresh when missing or corrupt; what was wrong goes to stderr.
pub fn from_state<T: Default>(state: Option<&std::path::Path>, load: fn(&std::path::Path) -> (T, Option<String>)) -> T {
    let Some(dir) = state else { return T::default() };
    let (value, warning) = load(dir);
    if let Some(w) = warning {
        eprintln!("turbolog: warning: {w}");
    }
    value
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
        Command::Serve(a) => crate::serve::run(a),
        Command::Learn(a) => learn::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Ack(a) => ack::run(a),
        Command::Diff(a) => diff::run(a),
        Command::History(a) => history::run(a),
        Command::Watch(a) => watch::run(a),
        Command::Explain(a) => explain::run(a),
        Command::PluginProps { markdown } => {
            let text = if markdown { turbolog::host::config::describe_markdown() } else { turbolog::host::config::describe() };
            std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes()).map(|_| 0).map_err(CliError::from)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // the reader of our output went away (`| head`): not an error of ours
        Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(CliError::Message(e)) => {
            eprintln!("turbolog: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Why a command failed. A closed output pipe is told apart by its `io::ErrorKind`, never by
/// the text of a message.
#[derive(Debug)]
pub enum CliError {
    BrokenPipe,
    Message(String),
}

impl From<&str> for CliError {
    fn from(e: &str) -> Self {
        CliError::Message(e.to_string())
    }
}

impl From<String> for CliError {
    fn from(e: String) -> Self {
        CliError::Message(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Message(e.to_string())
        }
    }
}

impl From<serde_json::Error> for CliError {
    fn from(e: serde_json::Error) -> Self {
        match e.io_error_kind() {
            Some(std::io::ErrorKind::BrokenPipe) => CliError::BrokenPipe,
            _ => CliError::Message(e.to_string()),
        }
    }
}
