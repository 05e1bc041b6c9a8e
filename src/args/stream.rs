//! What `filter` and `serve` share: how records are read, tagged and learned from.

use clap::Args;
use turbolog::codec::fields::{FieldPolicy, Mode};
use turbolog::pipeline::{Joining, LineStream, Settings};

use super::explaining::ExplainArgs;
use super::sessions::SessionArgs;
use super::EngineArgs;

#[derive(Args, Clone)]
pub struct StreamArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The key holding the message (repeatable; default: first of log, message, msg, MESSAGE, @message).
    #[arg(long = "message-key", value_name = "KEY")]
    pub message_keys: Vec<String>,
    /// Output anomalous records only.
    #[arg(long)]
    pub only_anomalies: bool,
    /// With --model: MiB the sentence model may take (it embeds new templates off the record
    /// path here). Below what a plan per input shape needs (about 460), one plan runs every
    /// shape at half the speed, with fixed ones beside it while they fit. 0 = no bound.
    #[arg(long, value_name = "MIB", default_value_t = 160)]
    pub model_memory: u64,
    /// Which fields each record gets: lean (anomaly, anomaly_score, template_id on every record;
    /// template and anomaly_reason on anomalies), minimal (anomaly only, all on anomalies), all.
    #[arg(long, value_enum, default_value_t = Fields::Lean)]
    pub fields: Fields,
    /// With --state: seconds between window seals (templates.tls and a chunk); new templates
    /// reach the WAL at once. 0 = seal only at the end. With --reduce, also how long each window
    /// of counts lasts (its summaries go out at its end).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub window: f64,
    /// With --explain, anomalous records get `anomaly_explanation` once the LLM has answered for
    /// their template (the first ones of a template go out without it: nothing waits).
    #[command(flatten)]
    pub explain: ExplainArgs,
    /// A closed session's verdict is appended as a record of its own:
    /// `{"turbolog_session": ID, "anomaly": true, "anomaly_score", "anomaly_reason", …}`.
    #[command(flatten)]
    pub sessions: SessionArgs,
    /// auto: continuation lines (stack traces, tracebacks, panics, indented lines) join the
    /// event they belong to, and container runtimes' partial lines (Docker json-file, CRI) are
    /// put back together; a joined event is one record with `lines: N`. off: a line is a record.
    #[arg(long, value_enum, default_value_t = MultilineMode::Auto)]
    pub multiline: MultilineMode,
    /// Longest event (or line) kept; past it the event is cut and the cut is said on stderr.
    #[arg(long, value_name = "BYTES", default_value_t = turbolog::pipeline::join::DEFAULT_MAX_EVENT_BYTES, value_parser = clap::value_parser!(usize))]
    pub max_record_bytes: usize,
    /// With --multiline auto: seconds a pending event waits for its next line before it goes
    /// out (a stream never holds its last event; 0 = as soon as input pauses).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = parse_timeout)]
    pub multiline_timeout: f64,
    /// Send on only what matters: per template and window (--window; 0 = the whole run), the
    /// first --reduce-keep records pass, then only anomalies (every anomaly passes), plus 1 in
    /// --reduce-sample of the rest. At each window's end one summary record per template that
    /// had records held back: `{"turbolog_summary": true, "template_id", "template",
    /// "suppressed", "seen", "passed", "window_start", "window_end", MESSAGE_KEY: "N more records like …"}`.
    #[arg(long)]
    pub reduce: bool,
    /// With --reduce: records of each template that pass in each window before only anomalies do.
    #[arg(long, value_name = "N", requires = "reduce", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub reduce_keep: u32,
    /// With --reduce: 1 in N of the records held back passes anyway; 0 = none.
    #[arg(long, value_name = "N", requires = "reduce", default_value_t = 0)]
    pub reduce_sample: u32,
    /// With --reduce and sessions: count: a session's records are held back like any other
    /// (its verdict record says how many); keep: a record of an open session that would be held
    /// back waits for the session's verdict: an anomalous session's records all go out just
    /// before its verdict record, a normal session's are counted in the window of its verdict.
    #[arg(long, value_enum, requires = "reduce", default_value_t = ReduceSessions::Count)]
    pub reduce_sessions: ReduceSessions,
    /// With --reduce-sessions keep: MiB of records waiting for their sessions' verdicts at most;
    /// past it the session holding the oldest has its records counted as held back (said once).
    #[arg(long, value_name = "MIB", requires = "reduce", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub reduce_session_mb: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReduceSessions {
    Count,
    Keep,
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds in 0..3600")),
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MultilineMode {
    Auto,
    Off,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fields {
    Lean,
    Minimal,
    All,
}

impl Fields {
    pub fn policy(self) -> FieldPolicy {
        match self {
            Fields::Lean => FieldPolicy::Lean,
            Fields::Minimal => FieldPolicy::Minimal,
            Fields::All => FieldPolicy::All,
        }
    }
}


impl StreamArgs {
    /// The pipeline's settings: the engine's options, and how records are tagged, sealed,
    /// explained and put in sessions.
    pub fn settings(&self) -> Result<Settings, String> {
        let mut s = self.engine.settings();
        if !self.message_keys.is_empty() {
            s.message_keys = self.message_keys.clone();
        }
        s.model_memory_mib = self.model_memory;
        s.mode = if self.only_anomalies { Mode::OnlyAnomalies } else { Mode::Tag };
        s.field_policy = self.fields.policy();
        s.window_secs = self.window;
        s.explain = self.explain.explain.then(|| self.explain.config());
        s.sessions = self.sessions.config()?;
        let session_bytes = (self.reduce_sessions == ReduceSessions::Keep).then(|| (self.reduce_session_mb as usize).saturating_mul(1 << 20));
        s.reduce = self.reduce.then_some(turbolog::pipeline::reduce::ReduceConfig { keep: self.reduce_keep, sample: self.reduce_sample, session_bytes });
        Ok(s)
    }

    /// The stream these options describe, opened (and restored from the state directory).
    pub fn start(&self) -> Result<LineStream, String> {
        let settings = self.settings()?;
        let pipeline = self.engine.open(&settings)?;
        Ok(LineStream::new(pipeline, self.message_keys.clone(), &settings)?.join(self.joining()))
    }

    /// How lines become events, when they are joined.
    pub fn joining(&self) -> Option<Joining> {
        (self.multiline == MultilineMode::Auto).then(|| Joining {
            max_bytes: self.max_record_bytes.max(1024),
            quiet: std::time::Duration::from_secs_f64(self.multiline_timeout),
        })
    }
}
