//! `turbolog filter`: a streaming transform. NDJSON objects or text lines in, the same records
//! with anomaly fields added out, one per line, in order, flushed whenever input pauses.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;
use turbolog::host::config::FieldPolicy;
use turbolog::host::ndjson::{self, LineTagger, Outcome};

use super::explaining::{self, ExplainArgs};
use super::input::Lines;
use super::CliError;
use super::EngineArgs;

#[derive(Args)]
pub struct FilterArgs {
    /// Input files; none or `-` reads standard input.
    pub files: Vec<PathBuf>,
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
    pub sessions: super::sessions::SessionArgs,
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

fn write_session_records(out: &mut impl Write, closed: &[turbolog::session::ClosedSession]) -> io::Result<()> {
    let mut line = String::new();
    for c in closed {
        line.clear();
        ndjson::session_record(&mut line, c);
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

#[derive(Default)]
struct Counters {
    malformed: u64,
    no_message: u64,
}

pub fn run(args: FilterArgs) -> Result<u8, CliError> {
    let mut session = args.engine.session()?;
    let mut last_seal = std::time::Instant::now();
    let mut lines = Lines::new(&args.files);
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut counters = Counters::default();
    let mut tagger = LineTagger::new(args.message_keys.clone(), args.only_anomalies, args.fields.policy());
    tagger.explainer = args.explain.start(args.engine.state.as_deref())?.map(std::sync::Arc::new);
    let keeps_state = args.engine.state.as_ref().filter(|_| !args.engine.frozen);
    let mut sessions = args.sessions.start(args.engine.state.as_deref(), !args.engine.frozen)?;
    tagger.session_key = sessions.as_ref().map(|s| s.key.clone());
    let mut closed = Vec::new();
    let save_explanations = |tagger: &LineTagger| {
        if let (Some(x), Some(dir)) = (&tagger.explainer, keeps_state) {
            if let Err(e) = x.save(dir) {
                eprintln!("turbolog: warning: {e}; explanations are kept in memory and saved at the next window");
            }
        }
    };
    let mut buf = String::new();
    let mut n = 0u64;
    loop {
        if lines.would_block() {
            out.flush()?;
        }
        let Some(line) = lines.next_line()? else { break };
        n += 1;
        buf.clear();
        let mut tagged = None;
        match tagger.tag_line(line, &mut session.engine, &mut buf) {
            Outcome::Tagged(v) => tagged = Some(v.template_id),
            Outcome::Malformed(e) => {
                counters.malformed += 1;
                if counters.malformed == 1 {
                    eprintln!("turbolog: warning: line {n} is not valid JSON ({e}); passed through untouched");
                }
            }
            Outcome::NoMessage => counters.no_message += 1,
        }
        // what was learned reaches the WAL before the record is written out
        session.after_record();
        if !buf.is_empty() {
            buf.push('\n');
            out.write_all(buf.as_bytes())?;
        }
        if let (Some(s), Some(template)) = (&mut sessions, tagged) {
            let id = (!tagger.session_id.is_empty()).then_some(tagger.session_id.as_str());
            s.tracker.record(id, template, n, tagger.record_time, &session.engine);
            s.tracker.take_closed(&mut closed);
            write_session_records(&mut out, &closed)?;
        }
        if args.window > 0.0 && last_seal.elapsed().as_secs_f64() >= args.window {
            out.flush()?;
            session.seal_quietly();
            save_explanations(&tagger);
            if let (Some(s), Some(dir)) = (&sessions, keeps_state) {
                if let Err(e) = s.save(dir) {
                    eprintln!("turbolog: warning: {e}; session profiles are saved at the next window");
                }
            }
            last_seal = std::time::Instant::now();
        }
    }
    if let Some(s) = &mut sessions {
        s.tracker.close_all(&session.engine);
        s.tracker.take_closed(&mut closed);
        write_session_records(&mut out, &closed)?;
        if let Some(dir) = keeps_state {
            s.save(dir)?;
        }
    }
    out.flush()?;
    session.seal()?;
    save_explanations(&tagger);
    if let Some(x) = &tagger.explainer {
        explaining::summary(x);
    }
    session.report_limit();
    if counters.malformed > 0 {
        eprintln!("turbolog: warning: {} malformed JSON lines were passed through untouched", counters.malformed);
    }
    if counters.no_message > 0 {
        let keys = if args.message_keys.is_empty() { ndjson::DEFAULT_KEYS.join(", ") } else { args.message_keys.join(", ") };
        eprintln!(
            "turbolog: warning: {} records had no string message under {keys}; passed through untouched (set --message-key)",
            counters.no_message
        );
    }
    Ok(0)
}
