//! `turbolog history --state DIR [--since 2h] [--template ID]`: the anomalies every host on this
//! state recorded, window by window, oldest first.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::CmdError;
use turbolog::store::{history, templates_file};

#[derive(Args)]
pub struct HistoryArgs {
    /// The state directory.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// Only the last period: `30m`, `2h`, `7d`.
    #[arg(long, value_name = "DURATION", value_parser = parse_since)]
    pub since: Option<i64>,
    /// Only this template.
    #[arg(long, value_name = "ID")]
    pub template: Option<u32>,
}

fn parse_since(s: &str) -> Result<i64, String> {
    match turbolog::session::parse_idle(s)? {
        (Some(secs), _) => Ok(secs),
        (None, _) => Err(format!("`{s}` needs a unit: 30m, 2h, 7d")),
    }
}

pub fn run(args: HistoryArgs) -> Result<u8, CmdError> {
    let (entries, problems) = history::read(&args.state);
    for p in &problems {
        eprintln!("turbolog: warning: {p}");
    }
    let snap = templates_file::load(&args.state).map_err(|e| e.to_string())?;
    let text_of = |id: u32| snap.as_ref().and_then(|s| s.templates.get(id as usize)).map_or("(unknown template)", |t| t.text.as_str());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let shown: Vec<_> = entries
        .iter()
        .filter(|e| args.since.map_or(true, |s| e.time >= now - s))
        .filter(|e| args.template.map_or(true, |t| e.template == t))
        .collect();
    let mut out = std::io::stdout().lock();
    if shown.is_empty() {
        writeln!(out, "no anomalies recorded in {}{}", args.state.display(), if entries.is_empty() { " (history is written at each window seal)" } else { " for this selection" })?;
        return Ok(0);
    }
    writeln!(out, "{:<19}  {:>7}  {:>7}  {:>5}  template", "window sealed (UTC)", "id", "count", "score")?;
    for e in &shown {
        writeln!(out, "{}  {:>7}  {:>7}  {:>5.2}  {}", super::report::clock(e.time), format!("#{}", e.template), e.count, e.score, text_of(e.template))?;
    }
    let total: u64 = shown.iter().map(|e| e.count as u64).sum();
    writeln!(out, "{} windows, {total} anomalies", shown.len())?;
    Ok(0)
}
