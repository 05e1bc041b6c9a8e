//! `turbolog diff GOOD… -- BAD…`: learn the good logs, report what is new or changed in the bad
//! ones (logreduce's workflow, in one command). Exit 0 = no difference, 1 = differences, 2 = error.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;

use super::input::Lines;
use turbolog::pipeline::join::Joiner;
use super::report::Report;
use super::CmdError;

#[derive(Args)]
pub struct DiffArgs {
    /// Known-good logs.
    #[arg(required = true)]
    pub good: Vec<PathBuf>,
    /// The logs to compare with them, after `--`.
    #[arg(last = true, required = true)]
    pub bad: Vec<PathBuf>,
    /// New templates shown.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// A template is "changed" when its share of lines moves by at least this factor.
    #[arg(long, default_value_t = 10.0)]
    pub factor: f64,
    /// Lines are messages already: no header detection.
    #[arg(long)]
    pub no_header: bool,
    /// Embed templates with the sentence model in DIR (see `scan --model`).
    #[arg(long, value_name = "DIR", env = "TURBOLOG_MODEL")]
    pub model: Option<PathBuf>,
}

/// Every record of `files` (continuations joined), with its line number and span.
fn records(files: &[PathBuf], mut f: impl FnMut(&str, u64, u64)) -> Result<u64, CmdError> {
    let mut lines = Lines::new(files);
    let mut joiner = Joiner::default();
    let mut n = 0;
    while let Some(l) = lines.next_line()? {
        n += 1;
        if let Some(r) = joiner.push(l, n) {
            f(&r.scored(), r.line_no, r.lines);
        }
    }
    if let Some(r) = joiner.flush() {
        f(&r.scored(), r.line_no, r.lines);
    }
    Ok(n)
}

pub fn run(args: DiffArgs) -> Result<u8, CmdError> {
    let mut config = turbolog::EngineConfig::default();
    config.no_header = args.no_header;
    let mut engine = turbolog::Engine::with_embedder(config, super::embedder(args.model.as_deref())?);
    let mut good: HashMap<u32, u64> = HashMap::new();
    let good_lines = records(&args.good, |line, _, _| {
        *good.entry(engine.learn_line(line)).or_insert(0) += 1;
    })?;
    engine.set_learning(false);
    let good_total: u64 = good.values().sum();
    let mut bad: HashMap<u32, u64> = HashMap::new();
    let mut report = Report::new(args.top);
    let mut reason = String::new();
    let mut new_lines = 0u64;
    let bad_lines = records(&args.bad, |line, n, span| {
        let v = engine.process_line(line);
        *bad.entry(v.template_id).or_insert(0) += 1;
        // an empty message is no template to be new (as `scan --frozen` judges it)
        if !good.contains_key(&v.template_id) && !engine.is_empty_template(v.template_id) {
            new_lines += 1;
            reason.clear();
            use std::fmt::Write as _;
            let _ = write!(reason, "{}", v.reason);
            report.add(n, line, span, &v, &reason);
        }
    })?;
    let bad_total: u64 = bad.values().sum();
    let mut out = BufWriter::new(io::stdout().lock());
    writeln!(out, "learned {good_lines} good lines ({} templates); compared {bad_lines} lines\n", good.len())?;
    writeln!(out, "new in the compared logs: {new_lines} lines in {} templates", bad.keys().filter(|&&t| !good.contains_key(&t) && !engine.is_empty_template(t)).count())?;
    if new_lines > 0 {
        report.print(&mut out, &engine, bad_lines, super::use_colour(1), None)?;
    }
    // templates both have, whose share of lines moved a lot (and those that disappeared)
    let share = |c: u64, total: u64| c as f64 / total.max(1) as f64;
    let mut changed: Vec<(f64, String)> = Vec::new();
    for (&t, &g) in &good {
        let b = bad.get(&t).copied().unwrap_or(0);
        let (gs, bs) = (share(g, good_total), share(b, bad_total));
        let text = engine.template_text(t);
        if b == 0 && g >= 10 && gs >= 0.01 {
            changed.push((gs * 1000.0, format!("gone: {:.1}% of good lines, none now: {text}", gs * 100.0)));
        } else if b >= 10 && bs >= gs * args.factor {
            changed.push((bs / gs, format!("{:.0}× more often: {:.2}% of lines, was {:.2}%: {text}", bs / gs, bs * 100.0, gs * 100.0)));
        } else if g >= 10 && b > 0 && gs >= bs * args.factor {
            changed.push((gs / bs, format!("{:.0}× less often: {:.2}% of lines, was {:.2}%: {text}", gs / bs, bs * 100.0, gs * 100.0)));
        }
    }
    changed.sort_by(|a, b| b.0.total_cmp(&a.0));
    writeln!(out, "\nchanged in how often they come (×{} or more): {} templates", args.factor, changed.len())?;
    for (_, line) in changed.iter().take(args.top) {
        writeln!(out, "  {line}")?;
    }
    out.flush()?;
    Ok(if new_lines > 0 || !changed.is_empty() { 1 } else { 0 })
}
