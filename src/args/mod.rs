//! The options the commands share — `filter` and `serve` most of all — and the error they fail
//! with. Used by `cli` and `serve`; builds the library's pipeline settings from flags.

pub mod explaining;
pub mod sessions;
pub mod stream;

use std::path::PathBuf;

use clap::Args;
use turbolog::pipeline::log::log_cli;
use turbolog::pipeline::{Pipeline, Settings};
use turbolog::store::templates_file;
use turbolog::store::{FsyncPolicy, StoreOptions};

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

impl EngineArgs {
    /// The pipeline's settings these options give (sessions, explanations and fields are the
    /// stream's: see [`stream::StreamArgs::settings`]).
    pub fn settings(&self) -> Settings {
        Settings {
            state_dir: self.state.clone(),
            model_path: self.model.clone(),
            threshold: self.threshold,
            epoch: self.epoch,
            establish: self.establish,
            no_header: self.no_header,
            learning: !self.frozen,
            fsync: if self.fsync { FsyncPolicy::EveryAppend } else { FsyncPolicy::Never },
            max_store_mb: StoreOptions::default().max_store_mb,
            max_templates: self.max_templates,
            ..Settings::default()
        }
    }

    /// A fresh pipeline, or one that continues from the state directory.
    pub fn pipeline(&self) -> Result<Pipeline, String> {
        self.open(&self.settings())
    }

    /// The pipeline for `settings` (these options' own, extended), said on stderr as it opens.
    pub fn open(&self, settings: &Settings) -> Result<Pipeline, String> {
        if let (Some(dir), true) = (&self.state, self.frozen) {
            if !dir.join(templates_file::FILE_NAME).exists() {
                return Err(format!(
                    "--frozen needs learned state, but {} holds none; run `turbolog learn --state {} GOOD.log` first",
                    dir.display(),
                    dir.display()
                ));
            }
        }
        let (pipeline, opened) = Pipeline::open(settings, embedder(self.model.as_deref())?, log_cli)?;
        if let (Some(opened), Some(dir)) = (opened, &self.state) {
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
        }
        Ok(pipeline)
    }
}

/// A state file that starts afresh when missing or corrupt; what was wrong goes to stderr.
pub fn from_state<T: Default>(state: Option<&std::path::Path>, load: fn(&std::path::Path) -> (T, Option<String>)) -> T {
    turbolog::pipeline::from_state(state, load, log_cli)
}

/// Why a command failed. A closed output pipe is told apart by its `io::ErrorKind`, never by
/// the text of a message.
#[derive(Debug)]
pub enum CmdError {
    BrokenPipe,
    Message(String),
}

impl From<&str> for CmdError {
    fn from(e: &str) -> Self {
        CmdError::Message(e.to_string())
    }
}

impl From<String> for CmdError {
    fn from(e: String) -> Self {
        CmdError::Message(e)
    }
}

impl From<std::io::Error> for CmdError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CmdError::BrokenPipe
        } else {
            CmdError::Message(e.to_string())
        }
    }
}

impl From<serde_json::Error> for CmdError {
    fn from(e: serde_json::Error) -> Self {
        match e.io_error_kind() {
            Some(std::io::ErrorKind::BrokenPipe) => CmdError::BrokenPipe,
            _ => CmdError::Message(e.to_string()),
        }
    }
}
