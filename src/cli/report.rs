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
    /// Line numbers of its anomalies (bounded), for the timeline.
    at: Vec<u64>,
}

/// Line numbers kept for timelines, across all templates.
const TIMELINE_POINTS: usize = 1_000_000;

pub struct Report {
    top: usize,
    groups: HashMap<u32, Group>,
    anomalies: u64,
    /// Anomalous sessions by the kind of reason (its words before the figures), with a count
    /// and the first one as example.
    sessions: Vec<(String, u64, turbolog::session::ClosedSession)>,
    session_totals: Option<(u64, u64)>,
    points: usize,
}

const EXAMPLE_CHARS: usize = 160;

impl Report {
    pub fn new(top: usize) -> Self {
        Report { top, groups: HashMap::new(), anomalies: 0, sessions: Vec::new(), session_totals: None, points: 0 }
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
            at: Vec::new(),
        });
        if self.points < TIMELINE_POINTS {
            g.at.push(line_no);
            self.points += 1;
        }
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
    /// For tickets and pull requests.
    pub fn print_markdown(&self, out: &mut impl Write, engine: &Engine, lines: u64, explainer: Option<&Explainer>) -> io::Result<()> {
        writeln!(out, "## turbolog report\n")?;
        writeln!(out, "{lines} lines, {} templates, {} anomalies in {} templates\n", engine.template_count(), self.anomalies, self.groups.len())?;
        if let Some((closed, anomalous)) = self.session_totals {
            writeln!(out, "{closed} sessions, {anomalous} anomalous\n")?;
            for (_, count, c) in self.sessions.iter().take(self.top) {
                writeln!(out, "- {count}× {} — e.g. `{}`, lines {}–{}", md(c.verdict.reason.as_deref().unwrap_or("")), c.id, c.first_line, c.last_line)?;
            }
            writeln!(out)?;
        }
        if self.groups.is_empty() {
            return writeln!(out, "No anomalies.");
        }
        writeln!(out, "| score | lines | template | reason | seen |\n|---:|---:|---|---|---|")?;
        for (id, g) in self.ordered().into_iter().take(self.top) {
            let seen = match (g.first_time, g.last_time) {
                (Some(a), Some(b)) => format!("{} – {}", clock(a), clock(b)),
                _ => format!("lines {}–{}", g.first_line, g.last_line),
            };
            writeln!(out, "| {:.2} | {} | {} | {} | {} |", g.max_score, g.count, code(engine.template_text(*id)), md(&g.reason), seen)?;
        }
        writeln!(out)?;
        for (id, g) in self.ordered().into_iter().take(self.top) {
            writeln!(out, "<details><summary>#{id} {}</summary>\n", html(&truncate(engine.template_text(*id), 120)))?;
            writeln!(out, "```\n{}\n```\n", g.example.replace("```", "` ` `"))?;
            if let Some(a) = explainer.and_then(|x| x.answer(*id)) {
                writeln!(out, "> {}\n", md(&a))?;
            }
            writeln!(out, "</details>\n")?;
        }
        Ok(())
    }

    /// One self-contained page: no scripts, fonts or images from anywhere; inline SVG only.
    pub fn print_html(&self, out: &mut impl Write, engine: &Engine, lines: u64, explainer: Option<&Explainer>) -> io::Result<()> {
        const COLUMNS: u64 = 60;
        writeln!(out, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>turbolog report</title><style>{CSS}</style></head><body>")?;
        writeln!(out, "<h1>turbolog report</h1>")?;
        writeln!(
            out,
            "<p id=\"totals\"><b data-lines=\"{lines}\">{lines}</b> lines, <b>{}</b> templates, <b data-anomalies=\"{}\">{}</b> anomalies in <b data-groups=\"{}\">{}</b> templates</p>",
            engine.template_count(),
            self.anomalies,
            self.anomalies,
            self.groups.len(),
            self.groups.len()
        )?;
        if let Some((closed, anomalous)) = self.session_totals {
            writeln!(out, "<section id=\"sessions\"><h2>Sessions</h2><p>{closed} sessions, {anomalous} anomalous</p><ul>")?;
            for (_, count, c) in self.sessions.iter().take(self.top) {
                writeln!(out, "<li>{count}× {} <small>e.g. {}, lines {}–{}</small></li>", html(c.verdict.reason.as_deref().unwrap_or("")), html(&c.id), c.first_line, c.last_line)?;
            }
            writeln!(out, "</ul></section>")?;
        }
        let groups = self.ordered();
        writeln!(out, "<section id=\"timeline\"><h2>Timeline</h2><p class=\"dim\">anomalies per template across the input, {COLUMNS} columns of {} lines</p><table>", lines.div_ceil(COLUMNS).max(1))?;
        for (id, g) in groups.iter().take(self.top) {
            let mut bins = [0u32; COLUMNS as usize];
            for &l in &g.at {
                let b = (l.saturating_sub(1) * COLUMNS / lines.max(1)).min(COLUMNS - 1);
                bins[b as usize] += 1;
            }
            let max = (*bins.iter().max().unwrap_or(&1)).max(1) as f64;
            let mut svg = format!("<svg width=\"{}\" height=\"20\" role=\"img\">", COLUMNS * 6);
            for (i, &c) in bins.iter().enumerate() {
                if c > 0 {
                    let h = (2.0 + 18.0 * c as f64 / max).round();
                    svg.push_str(&format!("<rect x=\"{}\" y=\"{}\" width=\"5\" height=\"{h}\"><title>{c}</title></rect>", i * 6, 20.0 - h));
                }
            }
            svg.push_str("</svg>");
            writeln!(out, "<tr><td><a href=\"#t{id}\">#{id}</a></td><td>{svg}</td><td>{}</td></tr>", g.count)?;
        }
        writeln!(out, "</table></section><section id=\"templates\"><h2>Anomalous templates</h2>")?;
        for (id, g) in groups.iter().take(self.top) {
            let seen = match (g.first_time, g.last_time) {
                (Some(a), Some(b)) => format!("{} – {}", clock(a), clock(b)),
                _ => String::new(),
            };
            writeln!(out, "<article class=\"template\" id=\"t{id}\" data-count=\"{}\">", g.count)?;
            writeln!(out, "<h3><span class=\"score\">{:.2}</span> {}× <code>{}</code></h3>", g.max_score, g.count, html(engine.template_text(**id)))?;
            writeln!(
                out,
                "<p class=\"meta\">{}{}; lines {}–{} {}</p>",
                if g.new { "new in this input" } else { "known before this input" },
                g.level.map_or(String::new(), |l| format!(", level {}", l.as_str())),
                g.first_line,
                g.last_line,
                html(&seen)
            )?;
            writeln!(out, "<p class=\"reason\">{}</p>", html(&g.reason))?;
            writeln!(out, "<pre>{}</pre>", html(&g.example))?;
            if let Some(a) = explainer.and_then(|x| x.answer(**id)) {
                writeln!(out, "<blockquote class=\"explanation\">{}</blockquote>", html(&a))?;
            }
            writeln!(out, "</article>")?;
        }
        writeln!(out, "</section><footer class=\"dim\">turbolog {}</footer></body></html>", env!("CARGO_PKG_VERSION"))
    }

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

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.6em}code,pre{font-family:ui-monospace,monospace}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap}\
.template{border-top:1px solid #ddd;padding:.4em 0}.score{color:#b00;font-weight:bold}.meta,.dim{color:#666}\
svg rect{fill:#c33}td{padding:2px 8px;vertical-align:middle}blockquote{border-left:3px solid #9ab;margin:0;padding:.3em .8em;background:#f3f7fb}";

fn html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn code(s: &str) -> String {
    let s = s.replace('|', "\\|");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// `2026-11-24 10:20:31` from seconds since 1970 (the header's own zone, usually UTC).
pub fn clock(secs: i64) -> String {
    turbolog::detect::time::format(secs)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
