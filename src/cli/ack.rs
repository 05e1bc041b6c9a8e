//! `turbolog ack --state DIR TEMPLATE_ID…`: say that a template is normal.
//!
//! Trouble (an error level, error words, HTTP 5xx) is never learned as normal from the stream
//! alone: it stays flagged as "recurring" until someone acknowledges it here. The list lives in
//! `DIR/acks.tls`; every host on that state (CLI, filter, Fluent Bit plugin) applies it at its
//! next window seal, without a restart.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::CmdError;
use turbolog::store::acks_file::{self, Ack, Acks};
use turbolog::store::templates_file;

#[derive(Args)]
pub struct AckArgs {
    /// The state directory.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// Template ids, as `template_id` in the output and `#N` in reports.
    pub ids: Vec<u32>,
    /// Withdraw the acknowledgement of these ids instead.
    #[arg(long)]
    pub undo: bool,
    /// Show the acknowledged templates.
    #[arg(long)]
    pub list: bool,
}

pub fn run(args: AckArgs) -> Result<u8, CmdError> {
    let dir = &args.state;
    let mut out = std::io::stdout().lock();
    let mut acks = acks_file::load(dir).map_err(|e| e.to_string())?;
    if args.list || args.ids.is_empty() {
        if !args.list {
            return Err("give template ids to acknowledge (`template_id` in the output), or --list".into());
        }
        if acks.acked.is_empty() {
            writeln!(out, "no acknowledged templates in {}", dir.display())?;
        }
        for a in &acks.acked {
            writeln!(out, "#{:<6} {}  {}", a.id, when(a.at), a.text)?;
        }
        return Ok(0);
    }
    let snap = templates_file::load(dir)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} holds no templates yet: run turbolog on it first", dir.display()))?;
    let text_of = |id: u32| snap.templates.get(id as usize).filter(|t| t.id == id).map(|t| (t.text.clone(), t.count));
    if let Some(bad) = args.ids.iter().find(|&&id| text_of(id).is_none()) {
        return Err(format!(
            "{} has no template #{bad} ({} templates: #0…#{}); `turbolog inspect --state {}` lists them",
            dir.display(),
            snap.templates.len(),
            snap.templates.len().saturating_sub(1),
            dir.display()
        )
        .into());
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    for &id in &args.ids {
        let (text, count) = text_of(id).expect("checked above");
        let known = acks.acked.iter().position(|a| a.id == id);
        match (args.undo, known) {
            (false, None) => {
                acks.acked.push(Ack { id, at: now, text: text.clone() });
                writeln!(out, "acknowledged #{id} ({count} lines so far): {text}")?;
            }
            (false, Some(_)) => writeln!(out, "#{id} was already acknowledged: {text}")?,
            (true, Some(i)) => {
                acks.acked.remove(i);
                writeln!(out, "withdrawn #{id}: {text}")?;
            }
            (true, None) => writeln!(out, "#{id} was not acknowledged: {text}")?,
        }
    }
    acks.acked.sort_by_key(|a| a.id);
    acks_file::save(dir, &Acks { acked: acks.acked }).map_err(|e| e.to_string())?;
    writeln!(out, "hosts running on {} apply this at their next window seal", dir.display())?;
    Ok(0)
}

/// `2026-11-24 10:20:00 UTC` from seconds since the epoch.
pub fn when(secs: u64) -> String {
    format!("{} UTC", turbolog::detect::time::Clock(secs as i64))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_read_as_people_write_them() {
        assert_eq!(super::when(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::when(1_795_515_600), "2026-11-24 10:20:00 UTC");
    }
}
