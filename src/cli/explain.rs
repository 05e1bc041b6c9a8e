//! `turbolog explain --state DIR [TEMPLATE_ID…]`: explanations of stored anomalous templates,
//! after the fact. Cached answers are shown as they are; the others are asked for (bounded wait)
//! and kept in `DIR/explanations.tls`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::explaining::{self, ExplainArgs};
use super::CmdError;
use turbolog::explain::{cache, Context, Explainer};
use turbolog::store::templates_file;

#[derive(Args)]
pub struct ExplainCmdArgs {
    /// The state directory.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// Template ids; default: the templates not (yet) known as normal, most frequent first.
    pub ids: Vec<u32>,
    /// Templates explained when no ids are given.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Show only what is cached; ask nothing.
    #[arg(long)]
    pub cached: bool,
    /// How long to wait for the answers, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub wait: f64,
    #[command(flatten)]
    pub explain: ExplainArgs,
}

pub fn run(args: ExplainCmdArgs) -> Result<u8, CmdError> {
    let dir = &args.state;
    let snap = templates_file::load(dir)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} holds no templates yet: run turbolog on it first", dir.display()))?;
    let ids: Vec<u32> = if args.ids.is_empty() {
        let mut open: Vec<_> = snap.templates.iter().filter(|t| !t.established && !t.acked).collect();
        open.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
        open.iter().take(args.top).map(|t| t.id).collect()
    } else {
        if let Some(bad) = args.ids.iter().find(|&&id| id as usize >= snap.templates.len()) {
            return Err(format!("{} has no template #{bad} ({} templates)", dir.display(), snap.templates.len()).into());
        }
        args.ids.clone()
    };
    let mut out = std::io::stdout().lock();
    if ids.is_empty() {
        writeln!(out, "no templates to explain in {}: every template is known as normal", dir.display())?;
        return Ok(0);
    }
    let (cached, warning) = cache::load(dir);
    if let Some(w) = warning {
        eprintln!("turbolog: warning: {w}");
    }
    let mut explainer = None;
    if !args.cached && ids.iter().any(|id| !cached.by_template.contains_key(id)) {
        let log: turbolog::explain::worker::Log = Arc::new(|warning, msg| eprintln!("turbolog: {}{msg}", if warning { "warning: " } else { "" }));
        let x = Explainer::start(args.explain.config(), cached.clone(), log)?;
        for &id in &ids {
            let t = &snap.templates[id as usize];
            x.request(id, || Context {
                // the state keeps templates, not lines: the template stands for its lines
                line: t.text.clone(),
                template: t.text.clone(),
                reason: if t.established { "known as normal".into() } else { format!("not yet known as normal after {} lines", t.count) },
                count: t.count,
                neighbours: Vec::new(),
            });
        }
        x.wait_for(&ids, Instant::now() + Duration::from_secs_f64(args.wait.clamp(0.0, 86_400.0)));
        explainer = Some(x);
    }
    for &id in &ids {
        let t = &snap.templates[id as usize];
        writeln!(out, "#{id}  {}  ({} lines)", t.text, t.count)?;
        match (cached.by_template.get(&id), explainer.as_ref().and_then(|x| x.answer(id))) {
            (Some(c), _) => writeln!(out, "  {}\n  (cached: {}, model {})\n", c.text, super::ack::when(c.at), c.model)?,
            (None, Some(a)) => writeln!(out, "  {a}\n")?,
            (None, None) => writeln!(out, "  no explanation{}\n", if args.cached { " cached" } else { " (see the summary on stderr)" })?,
        }
    }
    if let Some(x) = &explainer {
        x.save(dir)?;
        explaining::summary(x);
    }
    Ok(0)
}
