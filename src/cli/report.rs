//! The human report of `turbolog scan`: totals, then anomalies grouped by template.

use std::collections::HashMap;
use std::io::{self, Write};

use turbolog::explain::Explainer;
use turbolog::{Engine, Verdict};

struct Group {
    count: u64,
    max_score: f32,
    first_line: u64,
    last_line: u64,
    example: String,
    /// The reason of the first flagged line, and of the latest when it says something else.
    reason: String,
    latest_reason: String,
    /// The template was new when first flagged (not seen before in this run or the state).
    new: bool,
    /// Record times of the first and last flagged line, when lines carry a time.
    first_time: Option<i64>,
    last_time: Option<i64>,
    level: Option<turbolog::detect::level::Level>,
}

pub struct Report {
    top: usize,
    groups: HashMap<u32, Group>,
    anomalies: u64,
    /// Anomalous sessions by the kind of reason (its words before the figures), with a count
    /// and the first one as example.
    sessions: Vec<(String, u64, turbolog::session::ClosedSession)>,
    session_totals: Option<(u64, u64)>,
}

const EXAMPLE_CHARS: usize = 160;

impl Report {
    pub fn new(top: usize) -> Self {
        Report { top, groups: HashMap::new(), anomalies: 0, sessions: Vec::new(), session_totals: None }
    }

    pub fn add(&mut self, line_no: u64, line: &str, span: u64, v: &Verdict, reason: &str) {
        self.anomalies += 1;
        let g = self.groups.entry(v.template_id).or_insert_with(|| Group {
            count: 0,
            max_score: 0.0,
            first_line: line_no,
            last_line: line_no,
            example: if span > 1 { format!("{} (+{} lines)", truncate(line, EXAMPLE_CHARS), span - 1) } else { truncate(line, EXAMPLE_CHARS) },
            reason: reason.to_string(),
            latest_reason: String::new(),
            new: v.new_template,
            level: None,
            first_time: None,
            last_time: None,
        });
        if let Some(t) = turbolog::detect::time::of_line(line) {
            g.first_time = g.first_time.or(Some(t));
            g.last_time = Some(t);
        }
        g.count += 1;
        g.max_score = g.max_score.max(v.score);
        g.last_line = line_no;
        g.level = g.level.max(v.level);
        if reason != g.reason {
            g.latest_reason.clear();
            g.latest_reason.push_str(reason);
        }
    }

    pub fn add_sessions(&mut self, closed: &[turbolog::session::ClosedSession]) {
        for c in closed.iter().filter(|c| c.verdict.anomaly) {
            let reason = c.verdict.reason.as_deref().unwrap_or("");
            // `missing "X" (present in 99.7% of sessions)` → group by `missing "X"`
            let words = reason.split(" (").next().unwrap_or(reason);
            let kind: String = words.split(' ').map(|w| if w.bytes().all(|b| b.is_ascii_digit()) { "N" } else { w }).collect::<Vec<_>>().join(" ");
            match self.sessions.iter_mut().find(|(k, ..)| *k == kind) {
                Some(g) => g.1 += 1,
                None => self.sessions.push((kind, 1, c.clone())),
            }
        }
    }

    pub fn session_totals(&mut self, closed: u64, anomalous: u64) {
        self.session_totals = Some((closed, anomalous));
    }

    /// The ids of the templates the report shows, best first.
    pub fn top_ids(&self) -> Vec<u32> {
        self.ordered().into_iter().take(self.top).map(|(id, _)| *id).collect()
    }

    fn ordered(&self) -> Vec<(&u32, &Group)> {
        let mut groups: Vec<(&u32, &Group)> = self.groups.iter().collect();
        groups.sort_by(|a, b| {
            b.1.max_score.total_cmp(&a.1.max_score).then(b.1.count.cmp(&a.1.count)).then(a.1.first_line.cmp(&b.1.first_line))
        });
        groups
    }

    pub fn print(&self, out: &mut impl Write, engine: &Engine, lines: u64, colour: bool, explainer: Option<&Explainer>) -> io::Result<()> {
        let (bold, red, dim, reset) = if colour { ("\x1b[1m", "\x1b[31m", "\x1b[2m", "\x1b[0m") } else { ("", "", "", "") };
        let pct = if lines > 0 { 100.0 * self.anomalies as f64 / lines as f64 } else { 0.0 };
        writeln!(
            out,
            "{bold}{lines} lines, {} templates, {} anomalies ({pct:.1}%) in {} templates{reset}",
            engine.template_count(),
            self.anomalies,
            self.groups.len()
        )?;
        self.print_sessions(out, colour)?;
        if self.groups.is_empty() {
            return writeln!(out, "no anomalies");
        }
        let groups = self.ordered();
        writeln!(out, "\ntop anomalies by template (score, lines, template):")?;
        for (id, g) in groups.iter().take(self.top) {
            writeln!(
                out,
                "  {red}{:.2}{reset} {:>6}×  #{id} {}",
                g.max_score,
                g.count,
                engine.template_text(**id)
            )?;
            let seen = if g.new { "new in this input" } else { "known before this input" };
            let level = g.level.map_or(String::new(), |l| format!(", level {}", l.as_str()));
            let span = if g.first_line == g.last_line {
                format!("line {}", g.first_line)
            } else {
                format!("lines {}–{}", g.first_line, g.last_line)
            };
            let when = match (g.first_time, g.last_time) {
                (Some(a), Some(b)) if a != b => format!("; {} – {}", clock(a), clock(b)),
                (Some(a), _) => format!("; at {}", clock(a)),
                _ => String::new(),
            };
            writeln!(out, "        {dim}{seen}{level}; {span}{when}{reset}")?;
            writeln!(out, "        {dim}reason: {}{reset}", g.reason)?;
            if !g.latest_reason.is_empty() {
                writeln!(out, "        {dim}latest: {}{reset}", g.latest_reason)?;
            }
            writeln!(out, "        {dim}e.g. {}{reset}", g.example)?;
            if let Some(x) = explainer {
                match x.answer(**id) {
                    Some(text) => writeln!(out, "        explanation: {}", text.split_whitespace().collect::<Vec<_>>().join(" "))?,
                    None => writeln!(out, "        {dim}explanation: none (no answer in time; see the summary on stderr){reset}")?,
                }
            }
        }
        if groups.len() > self.top {
            writeln!(out, "  … and {} more anomalous templates (--top N shows more)", groups.len() - self.top)?;
        }
        Ok(())
    }
}

impl Report {
    fn print_sessions(&self, out: &mut impl Write, colour: bool) -> io::Result<()> {
        let Some((closed, anomalous)) = self.session_totals else { return Ok(()) };
        let (bold, dim, reset) = if colour { ("\x1b[1m", "\x1b[2m", "\x1b[0m") } else { ("", "", "") };
        writeln!(out, "{bold}{closed} sessions, {anomalous} anomalous{reset}")?;
        let mut groups: Vec<&(String, u64, turbolog::session::ClosedSession)> = self.sessions.iter().collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1));
        for (_, count, example) in groups.iter().take(self.top) {
            writeln!(out, "  {count:>6}× sessions: {}", example.verdict.reason.as_deref().unwrap_or(""))?;
            writeln!(out, "        {dim}e.g. session {} (lines {}–{}, {} lines){reset}", example.id, example.first_line, example.last_line, example.lines)?;
        }
        if groups.len() > self.top {
            writeln!(out, "  … and {} more kinds of anomalous session", groups.len() - self.top)?;
        }
        writeln!(out)
    }
}

/// `2026-11-24 10:20:31` from seconds since 1970 (the header's own zone, usually UTC).
pub fn clock(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
