//! `turbolog scan`: score every line, report anomalies.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::explaining::{self, ExplainArgs};
use super::input::Lines;
use super::sessions::SessionArgs;
use super::CmdError;
use super::report::Report;
use super::{EngineArgs, Format};

#[derive(Args)]
pub struct ScanArgs {
    /// Log files to read, in order; none or `-` reads standard input.
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output: a human report, or one JSON object per input line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// For JSON input lines: the key holding the message (repeatable; default: log, message, msg, MESSAGE, @message).
    #[arg(long = "message-key", value_name = "KEY")]
    pub message_keys: Vec<String>,
    /// Anomalous templates shown in the text report.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    #[command(flatten)]
    pub explain: ExplainArgs,
    #[command(flatten)]
    pub sessions: SessionArgs,
    /// Join continuation lines (stack traces, tracebacks, goroutine dumps, indented lines) to the
    /// record they belong to: `auto` (the default for the text report) or `off` (the default
    /// for `--format jsonl`; with `auto` there, each object is one record and has `lines`).
    #[arg(long, value_enum)]
    pub multiline: Option<Multiline>,
    /// Print candidate session keys (id-like tokens that recur across lines of different
    /// templates) with counts, instead of the report.
    #[arg(long)]
    pub suggest_session_keys: bool,
    /// With --explain: how long to wait at the end for the answers about the top templates.
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    pub explain_wait: f64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Multiline {
    Auto,
    Off,
}

/// Lines kept before each line, for the explain prompt.
const NEIGHBOURS: usize = 3;

/// One closed session in `--format jsonl` (no `line` key): see docs/src/jsonl.md.
#[derive(Serialize)]
struct SessionRow<'a> {
    session: &'a str,
    anomaly: bool,
    score: f64,
    reason: Option<&'a str>,
    first_line: u64,
    last_line: u64,
    lines: u64,
}

fn write_sessions(out: &mut impl Write, closed: &[turbolog::session::ClosedSession]) -> Result<(), CmdError> {
    for c in closed {
        let row = SessionRow {
            session: &c.id,
            anomaly: c.verdict.anomaly,
            score: turbolog::detect::score::thousandths(c.verdict.score),
            reason: c.verdict.reason.as_deref(),
            first_line: c.first_line,
            last_line: c.last_line,
            lines: c.lines,
        };
        serde_json::to_writer(&mut *out, &row)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// One line of `--format jsonl`. A public contract: see docs/src/jsonl.md.
#[derive(Serialize)]
struct Row<'a> {
    line: u64,
    anomaly: bool,
    score: f64,
    template_id: u32,
    template: &'a str,
    reason: Option<&'a str>,
    level: Option<&'a str>,
    /// Lines the record spans, with `--multiline auto` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    lines: Option<u64>,
}

pub fn run(args: ScanArgs) -> Result<u8, CmdError> {
    let mut session = args.engine.pipeline()?;
    let mut sessions = args.sessions.start(args.engine.state.as_deref(), !args.engine.frozen)?;
    let mut closed = Vec::new();
    let mut suggester = args.suggest_session_keys.then(turbolog::session::suggest::Suggester::default);
    let explainer = args.explain.start(args.engine.state.as_deref())?;
    let mut explain_ids: Vec<u32> = Vec::new();
    let mut explain_seen: std::collections::HashSet<u32> = std::collections::HashSet::new();
    let mut before: std::collections::VecDeque<String> = std::collections::VecDeque::with_capacity(NEIGHBOURS + 1);
    let mut lines = Lines::new(&args.files);
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut report = Report::new(args.top);
    let report_format = args.format != Format::Jsonl;
    let progress = report_format && super::is_terminal(2);
    let mut reason = String::new();
    let mut n: u64;
    let mut said_no_message = false;
    let mut anomalies: u64 = 0;
    let multiline = args.multiline.unwrap_or(if report_format { Multiline::Auto } else { Multiline::Off }) == Multiline::Auto;
    let mut joiner = multiline.then(|| turbolog::pipeline::join_streams::StreamJoiner::new(turbolog::pipeline::join::DEFAULT_MAX_EVENT_BYTES));
    let mut ready: std::collections::VecDeque<turbolog::pipeline::join::Event> = std::collections::VecDeque::new();
    let mut raw_lines: u64 = 0;
    let mut current = String::new();
    loop {
        // the next record: a line, or with --multiline auto a line and its continuations
        let span = match &mut joiner {
            None => {
                if args.format == Format::Jsonl && lines.would_block() {
                    out.flush()?;
                }
                let Some(l) = lines.next_line()? else { break };
                raw_lines += 1;
                current.clear();
                current.push_str(l);
                n = raw_lines;
                None
            }
            Some(j) => {
                let record = loop {
                    if let Some(r) = ready.pop_front() {
                        break Some(r);
                    }
                    if lines.paused() {
                        // input paused: what is pending is complete as far as anyone can tell
                        out.flush()?;
                        j.flush(&mut ready);
                        if let Some(r) = ready.pop_front() {
                            break Some(r);
                        }
                    }
                    match lines.next_line()? {
                        Some(l) => {
                            raw_lines += 1;
                            j.push(l, raw_lines, &mut ready);
                        }
                        None => {
                            j.flush(&mut ready);
                            break ready.pop_front();
                        }
                    }
                };
                let Some(r) = record else { break };
                current = r.scored().into_owned();
                n = r.line_no;
                Some(r.lines)
            }
        };
        let line: &str = &current;
        let object = turbolog::codec::ndjson::parse_object(line).and_then(Result::ok);
        let record = object.as_ref().and_then(|o| turbolog::codec::ndjson::record(o, &args.message_keys));
        if object.is_some() && record.is_none() && !std::mem::replace(&mut said_no_message, true) {
            eprintln!("turbolog: warning: {}", turbolog::codec::ndjson::no_message_warning(n, &args.message_keys));
        }
        let (message, level) = record.as_ref().map_or((line, None), |r| (r.message.as_ref(), r.level));
        let verdict = session.engine.process_bytes_with(message.as_bytes(), level);
        if let Some(g) = &mut suggester {
            g.observe(message, verdict.template_id);
            continue;
        }
        if let Some(s) = &mut sessions {
            let id = s.id_of(message, object.as_ref());
            let time = turbolog::codec::ndjson::record_time(line, object.as_ref());
            s.tracker.record(id.as_deref(), verdict.template_id, n, time, &session.engine);
            s.tracker.take_closed(&mut closed);
        }
        session.after_record();
        let engine = &session.engine;
        reason.clear();
        if verdict.anomaly {
            anomalies += 1;
            let _ = write!(reason, "{}", verdict.reason);
            if let Some(x) = &explainer {
                if explain_ids.len() < 10_000 && explain_seen.insert(verdict.template_id) {
                    explain_ids.push(verdict.template_id);
                }
                x.request(verdict.template_id, || turbolog::explain::Context {
                    line: line.to_string(),
                    template: engine.template_text(verdict.template_id).to_string(),
                    reason: reason.clone(),
                    count: engine.template_stats(verdict.template_id).map_or(1, |s| s.count),
                    neighbours: before.iter().cloned().collect(),
                });
            }
        }
        if explainer.is_some() {
            if before.len() == NEIGHBOURS {
                before.pop_front();
            }
            before.push_back(line.to_string());
        }
        match args.format {
            Format::Jsonl => {
                let row = Row {
                    line: n,
                    anomaly: verdict.anomaly,
                    score: turbolog::detect::score::thousandths(verdict.score),
                    template_id: verdict.template_id,
                    template: engine.template_text(verdict.template_id),
                    reason: verdict.anomaly.then_some(reason.as_str()),
                    level: verdict.level.map(|l| l.as_str()),
                    lines: span,
                };
                serde_json::to_writer(&mut out, &row)?;
                out.write_all(b"\n")?;
                write_sessions(&mut out, &closed)?;
            }
            Format::Text | Format::Markdown | Format::Html => {
                if verdict.anomaly {
                    report.add(n, line, span.unwrap_or(1), &verdict, &reason);
                }
                report.add_sessions(&closed);
                if progress && n % 100_000 == 0 {
                    eprint!("\r  {n} lines, {anomalies} anomalies…");
                }
            }
        }
    }
    if let Some(g) = &suggester {
        let candidates = g.candidates();
        if candidates.is_empty() {
            writeln!(out, "no id-like tokens recur across lines of different templates: no session key to suggest")?;
        } else {
            writeln!(out, "{:<40} {:>9} {:>22} {:>9}", "candidate --session-key", "ids", "ids in 2+ templates", "lines")?;
            for c in candidates.iter().take(10) {
                writeln!(out, "{:<40} {:>9} {:>22} {:>9}", c.pattern, c.ids, c.across_templates, c.lines)?;
            }
        }
        out.flush()?;
        session.seal_at_end()?;
        return Ok(0);
    }
    if let Some(s) = &mut sessions {
        s.tracker.close_all(&session.engine);
        s.tracker.take_closed(&mut closed);
        match args.format {
            Format::Jsonl => write_sessions(&mut out, &closed)?,
            _ => report.add_sessions(&closed),
        }
        report.session_totals(s.tracker.total_closed, s.tracker.total_anomalous);
        if let (Some(dir), false) = (&args.engine.state, args.engine.frozen) {
            if let Err(e) = s.save(dir) {
                eprintln!("turbolog: warning: {e}; session profiles of this run are not kept");
            }
        }
    }
    if progress && raw_lines >= 100_000 {
        eprint!("\r\x1b[K");
    }
    if lines.invalid_utf8 > 0 {
        eprintln!("turbolog: warning: {} lines were not valid UTF-8; invalid bytes were replaced with U+FFFD", lines.invalid_utf8);
    }
    if let Some(x) = &explainer {
        // the text report shows its top templates' answers; JSONL keeps its contract, so the
        // answers only go to the state's cache (for `turbolog explain`, `filter`, the plugin)
        let ids = match (args.format, &args.engine.state) {
            (Format::Text | Format::Markdown | Format::Html, _) => report.top_ids(),
            (Format::Jsonl, Some(_)) => explain_ids.clone(),
            (Format::Jsonl, None) => {
                eprintln!("turbolog: warning: --explain with --format jsonl has nowhere to put answers without --state; not waiting for them");
                Vec::new()
            }
        };
        let wait = std::time::Duration::from_secs_f64(args.explain_wait.clamp(0.0, 86_400.0));
        x.wait_for(&ids, std::time::Instant::now() + wait);
    }
    match args.format {
        Format::Text => report.print(&mut out, &session.engine, raw_lines, super::use_colour(1), explainer.as_ref())?,
        Format::Markdown => report.print_markdown(&mut out, &session.engine, raw_lines, explainer.as_ref())?,
        Format::Html => report.print_html(&mut out, &session.engine, raw_lines, explainer.as_ref())?,
        Format::Jsonl => {}
    }
    out.flush()?;
    session.seal_at_end()?;
    if let Some(x) = &explainer {
        if let (Some(dir), false) = (&args.engine.state, args.engine.frozen) {
            if let Err(e) = x.save(dir) {
                eprintln!("turbolog: warning: {e}; the explanations of this run are not kept");
            }
        }
        explaining::summary(x);
    }
    session.report_end();
    let anomalous_sessions = sessions.as_ref().map_or(0, |s| s.tracker.total_anomalous);
    Ok(if anomalies > 0 || anomalous_sessions > 0 { 1 } else { 0 })
}
