//! `turbolog filter`: a streaming transform. NDJSON objects or text lines in, the same records
//! with anomaly fields added out, one per line, in order, flushed whenever input pauses.
//!
//! The per-line work lives in [`Stream`], which `turbolog serve` drives too: both tag a record
//! the same way, with the same options.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use turbolog::host::config::FieldPolicy;
use turbolog::host::ndjson::{self, LineTagger, Outcome};
use turbolog::session::ClosedSession;

use super::explaining::{self, ExplainArgs};
use super::input::Lines;
use super::sessions::{SessionArgs, Sessions};
use super::{CliError, EngineArgs, Session};

#[derive(Args)]
pub struct FilterArgs {
    /// Input files; none or `-` reads standard input.
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub stream: StreamArgs,
}

/// What `filter` and `serve` share: how records are read, tagged and learned from.
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
    /// Which fields each record gets: lean (anomaly, anomaly_score, template_id on every record;
    /// template and anomaly_reason on anomalies), minimal (anomaly only, all on anomalies), all.
    #[arg(long, value_enum, default_value_t = Fields::Lean)]
    pub fields: Fields,
    /// With --state: seconds between window seals (templates.tls and a chunk); new templates
    /// reach the WAL at once. 0 = seal only at the end.
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
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fields {
    Lean,
    Minimal,
    All,
}

impl Fields {
    fn policy(self) -> FieldPolicy {
        match self {
            Fields::Lean => FieldPolicy::Lean,
            Fields::Minimal => FieldPolicy::Minimal,
            Fields::All => FieldPolicy::All,
        }
    }
}

/// What one input line became.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineOutput {
    /// Scored as anomalous.
    pub anomaly: bool,
    /// Closed sessions judged anomalous by this line (their records follow the line's).
    pub session_anomalies: u32,
    /// Lines written out: the record's (unless dropped) and one per closed session.
    pub lines: u32,
}

/// One stream of records through the engine: tags lines, learns, tracks sessions, seals windows.
pub struct Stream {
    pub session: Session,
    tagger: LineTagger,
    sessions: Option<Sessions>,
    keeps_state: Option<PathBuf>,
    window: f64,
    last_seal: Instant,
    closed: Vec<ClosedSession>,
    message_keys: Vec<String>,
    malformed: u64,
    no_message: u64,
    lines: u64,
}

impl Stream {
    pub fn start(args: &StreamArgs) -> Result<Stream, CliError> {
        let mut session = args.engine.session()?;
        // a record never waits for the model: new templates are embedded on a worker thread
        session.engine.defer_embedding()?;
        let mut tagger = LineTagger::new(args.message_keys.clone(), args.only_anomalies, args.fields.policy());
        tagger.explainer = args.explain.start(args.engine.state.as_deref())?.map(std::sync::Arc::new);
        let keeps_state = args.engine.state.clone().filter(|_| !args.engine.frozen);
        let sessions = args.sessions.start(args.engine.state.as_deref(), !args.engine.frozen)?;
        tagger.session_key = sessions.as_ref().map(|s| s.key.clone());
        Ok(Stream {
            session,
            tagger,
            sessions,
            keeps_state,
            window: args.window,
            last_seal: Instant::now(),
            closed: Vec::new(),
            message_keys: args.message_keys.clone(),
            malformed: 0,
            no_message: 0,
            lines: 0,
        })
    }

    /// Tags one input line (without its newline): appends what goes out — the record, then any
    /// session verdicts it closed — to `out`, each line ending in `\n`.
    pub fn line(&mut self, line: &str, out: &mut String) -> LineOutput {
        self.lines += 1;
        let before = out.len();
        let mut result = LineOutput::default();
        let mut tagged = None;
        // tagged straight into `out`: nothing appended means the record was dropped
        match self.tagger.tag_line(line, &mut self.session.engine, out) {
            Outcome::Tagged(v) => {
                result.anomaly = v.anomaly;
                tagged = Some(v.template_id);
            }
            Outcome::Malformed(e) => {
                self.malformed += 1;
                if self.malformed == 1 {
                    eprintln!("turbolog: warning: line {} is not valid JSON ({e}); passed through untouched", self.lines);
                }
            }
            Outcome::NoMessage => self.no_message += 1,
        }
        // what was learned reaches the WAL before the record goes out
        self.session.after_record();
        if out.len() > before {
            out.push('\n');
            result.lines = 1;
        }
        if let (Some(s), Some(template)) = (&mut self.sessions, tagged) {
            let id = (!self.tagger.session_id.is_empty()).then_some(self.tagger.session_id.as_str());
            s.tracker.record(id, template, self.lines, self.tagger.record_time, &self.session.engine);
            s.tracker.take_closed(&mut self.closed);
            result.session_anomalies = push_session_records(out, &self.closed);
            result.lines += self.closed.len() as u32;
        }
        result
    }

    /// Whether a window is due; the caller flushes what it has written, then calls [`Self::seal_window`].
    pub fn window_due(&self) -> bool {
        self.window > 0.0 && self.last_seal.elapsed().as_secs_f64() >= self.window
    }

    /// Seals the window: templates, explanations and session profiles are saved. A failing disk
    /// is reported and retried at the next window; the stream goes on.
    pub fn seal_window(&mut self) {
        self.session.seal_quietly();
        self.save_explanations();
        if let (Some(s), Some(dir)) = (&mut self.sessions, &self.keeps_state) {
            if let Err(e) = s.save(dir) {
                eprintln!("turbolog: warning: {e}; session profiles are saved at the next window");
            }
        }
        self.last_seal = Instant::now();
    }

    /// End of input: open sessions are judged (their records appended to `out`).
    pub fn close_sessions(&mut self, out: &mut String) -> u32 {
        let Some(s) = &mut self.sessions else { return 0 };
        s.tracker.close_all(&self.session.engine);
        s.tracker.take_closed(&mut self.closed);
        push_session_records(out, &self.closed)
    }

    /// After the last record went out: everything is saved and the run summarised on stderr.
    pub fn finish(mut self) -> Result<(), CliError> {
        self.session.engine.finish_embedding(std::time::Duration::from_secs(10));
        if let (Some(s), Some(dir)) = (&mut self.sessions, &self.keeps_state) {
            s.save(dir)?;
        }
        self.session.seal()?;
        self.save_explanations();
        if let Some(x) = &self.tagger.explainer {
            explaining::summary(x);
        }
        self.session.report_limit();
        if self.malformed > 0 {
            eprintln!("turbolog: warning: {} malformed JSON lines were passed through untouched", self.malformed);
        }
        if self.no_message > 0 {
            let keys = if self.message_keys.is_empty() { ndjson::DEFAULT_KEYS.join(", ") } else { self.message_keys.join(", ") };
            eprintln!(
                "turbolog: warning: {} records had no string message under {keys}; passed through untouched (set --message-key)",
                self.no_message
            );
        }
        Ok(())
    }

    /// Requests waiting for the LLM, when explain is on.
    pub fn explain_queue(&self) -> Option<usize> {
        self.tagger.explainer.as_ref().map(|x| x.queued())
    }

    pub fn templates(&self) -> usize {
        self.session.engine.template_count()
    }

    fn save_explanations(&self) {
        if let (Some(x), Some(dir)) = (&self.tagger.explainer, &self.keeps_state) {
            if let Err(e) = x.save(dir) {
                eprintln!("turbolog: warning: {e}; explanations are kept in memory and saved at the next window");
            }
        }
    }
}

/// Appends the verdict records of closed sessions; returns how many were anomalous.
fn push_session_records(out: &mut String, closed: &[ClosedSession]) -> u32 {
    let mut anomalies = 0;
    for c in closed {
        ndjson::session_record(out, c);
        out.push('\n');
        anomalies += c.verdict.anomaly as u32;
    }
    anomalies
}

pub fn run(args: FilterArgs) -> Result<u8, CliError> {
    let mut stream = Stream::start(&args.stream)?;
    let mut lines = Lines::new(&args.files);
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut buf = String::new();
    loop {
        if lines.would_block() {
            out.flush()?;
        }
        let Some(line) = lines.next_line()? else { break };
        buf.clear();
        stream.line(line, &mut buf);
        out.write_all(buf.as_bytes())?;
        if stream.window_due() {
            out.flush()?;
            stream.seal_window();
        }
    }
    buf.clear();
    stream.close_sessions(&mut buf);
    out.write_all(buf.as_bytes())?;
    out.flush()?;
    stream.finish()?;
    Ok(0)
}
