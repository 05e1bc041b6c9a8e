//! Stage 4: template statistics → score in [0, 1], verdict and reason.
//!
//! Four signals, each a known-good one from the log anomaly literature:
//! - **novelty**: a template the engine has no good reason to call normal yet. "Good reason" is
//!   being seen across several *epochs* (windows of records), not a high count: a new error
//!   repeated 300 times in one burst is 300 anomalous lines, not one;
//! - **semantic distance**: how far the template's vector is from every template known as normal
//!   when it appeared (a new wording of a known message scores lower than a new kind of message);
//! - **severity**: the record's level and trouble words in the template (`failed`, `refused`, …);
//! - **burst**: a normal template suddenly far above its usual per-epoch rate.
//!
//! The threshold calibrates itself: it never drops below the configured base, and rises to the
//! 99.5th percentile of the scores that established (normal) traffic produces, so a noisy stream
//! does not flag its own everyday variance.

use std::fmt;

/// What the scorer knows about one template.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TemplateStats {
    pub count: u64,
    /// Distinct epochs the template was seen in.
    pub epochs_seen: u32,
    /// The epoch of the last sighting, and how many sightings it had.
    pub last_epoch: u64,
    pub epoch_count: u32,
    pub first_seen: u64,
    pub last_seen: u64,
    /// Record time of the first sighting, when the record carried one.
    pub first_time: Option<i64>,
    /// Known as normal: learned from a baseline, acknowledged, or (when it is not trouble) seen
    /// in enough epochs.
    pub established: bool,
    /// An operator said it is normal (`turbolog ack`).
    pub acked: bool,
    /// Trouble words in the template text, in [0, 1].
    pub trouble: f32,
    /// What the template text says, beyond words: see [`crate::detect::level::TextEvidence`].
    pub server_error: bool,
    pub field_dump: bool,
    /// The most severe level a record of this template carried, in [0, 1].
    pub level_severity: f32,
    /// Some record of this template carried a level at all.
    pub has_level: bool,
    /// 1 − cosine similarity to the nearest normal template when this one appeared.
    pub distance: f32,
}

impl TemplateStats {
    /// How much the template's own evidence says "trouble", in [0, 1]: trouble words, a server
    /// error status, and the level — except on lines that only dump a field (`instruction
    /// address: <*>`, `general purpose registers:`): after a crash, a dump repeats the crash's
    /// level on every line, and those lines are context, not events.
    /// Trouble words count less on a line whose own level says it is routine
    /// (`INFO instruction cache parity error corrected`): the author knew the word was there.
    pub fn severity(&self, level_severity: f32) -> f32 {
        let level = level_severity.max(self.level_severity);
        let words = if self.has_level && level < 0.4 { 0.5 * self.trouble } else { self.trouble };
        let level = if self.field_dump { 0.0 } else { level };
        let status = if self.server_error { 0.8 } else { 0.0 };
        words.max(level).max(status)
    }

    /// Trouble is never learned as normal from the stream alone: only a baseline (`learn`) or
    /// an operator (`ack`) makes it normal. Anything else is learned as it recurs. Trouble is
    /// what the record says of itself — a warning level or worse (not on a field dump), an HTTP
    /// `5xx` — not error words alone: `Failed password for root` recurring all day in an auth
    /// log is routine, and is learned; the words still raise the score of a new template.
    pub fn is_trouble(&self) -> bool {
        self.server_error || (!self.field_dump && self.level_severity >= 0.4)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScoreConfig {
    /// Records per epoch.
    pub epoch_records: u64,
    /// Epochs a template must be seen in before it counts as normal.
    pub establish_epochs: u32,
    /// Base threshold; the calibrated one never goes below it.
    pub threshold: f32,
    /// Use exactly `threshold`, no calibration.
    pub fixed_threshold: bool,
    /// Burst: the current epoch's count must exceed this many times the usual per-epoch count…
    pub burst_factor: f32,
    /// …and this absolute count.
    pub burst_min: u32,
    /// After a baseline, a template it never held is flagged whatever its score (held to the
    /// base threshold). Off: it is scored like any template, and may stay below the threshold.
    pub flag_unseen: bool,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            epoch_records: 1000,
            establish_epochs: 3,
            threshold: 0.5,
            fixed_threshold: false,
            burst_factor: 10.0,
            burst_min: 50,
            flag_unseen: true,
        }
    }
}

/// What kind of finding a score is. Formatted only when someone asks (anomalies are rare).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    NewTemplate { distance: f32 },
    Rare { count: u64, total: u64, distance: f32 },
    /// Trouble seen in many windows and still not acknowledged as normal.
    /// `first_time`: the record time of its first sighting, when records carry one.
    Recurring { count: u64, first_seen: u64, first_time: Option<i64> },
    /// `since`: the record time the window began, when records carry one.
    Burst { now: u32, usual: f32, since: Option<i64> },
    Severe,
    /// A known template with a value unlike every value its position had in the baseline.
    Value(crate::detect::values::Finding),
}

/// Which pieces of evidence about trouble fired, as bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evidence(u8);

impl Evidence {
    pub const WARN_LEVEL: Evidence = Evidence(1);
    pub const ERROR_LEVEL: Evidence = Evidence(2);
    pub const CRITICAL_LEVEL: Evidence = Evidence(4);
    pub const WORDS: Evidence = Evidence(8);
    pub const SERVER_ERROR: Evidence = Evidence(16);

    pub fn of(stats: &TemplateStats, level_severity: f32) -> Evidence {
        let mut e = Evidence::default();
        if !stats.field_dump {
            let level = level_severity.max(stats.level_severity);
            e.0 |= if level >= 1.0 {
                Self::CRITICAL_LEVEL.0
            } else if level >= 0.8 {
                Self::ERROR_LEVEL.0
            } else if level >= 0.4 {
                Self::WARN_LEVEL.0
            } else {
                0
            };
        }
        if stats.trouble > 0.0 {
            e.0 |= Self::WORDS.0;
        }
        if stats.server_error {
            e.0 |= Self::SERVER_ERROR.0;
        }
        e
    }

    pub fn contains(self, other: Evidence) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::CRITICAL_LEVEL, "critical level"),
            (Self::ERROR_LEVEL, "error level"),
            (Self::WARN_LEVEL, "warning level"),
            (Self::WORDS, "error words"),
            (Self::SERVER_ERROR, "HTTP 5xx server errors"),
        ];
        let mut first = true;
        for (bit, name) in names {
            if self.contains(bit) {
                f.write_str(if first { "" } else { ", " })?;
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Why a record was flagged: the kind of finding and the trouble evidence behind it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reason {
    pub kind: Kind,
    pub evidence: Evidence,
}

/// The score and its parts for one record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    pub value: f32,
    pub reason: Reason,
    pub severity: f32,
}

impl fmt::Display for Reason {
    // Pieces written straight to the formatter, numbers rendered on the stack: a reason is
    // written for every anomalous record, and each `write!` with arguments costs more than the
    // text it writes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trouble = if self.evidence.is_empty() { "" } else { "trouble: " };
        let far = |f: &mut fmt::Formatter<'_>, distance: f32| -> fmt::Result {
            f.write_str("far from all known messages (")?;
            Hundredths(distance).fmt(f)?;
            f.write_str(")")
        };
        match self.kind {
            Kind::NewTemplate { distance } if distance >= 0.5 => {
                f.write_str("new template, ")?;
                far(f, distance)?;
            }
            Kind::NewTemplate { .. } => f.write_str("new template")?,
            Kind::Rare { count, total, distance } => {
                f.write_str("rare: seen ")?;
                plural(count, "time").fmt(f)?;
                f.write_str(" in ")?;
                Thousands(total).fmt(f)?;
                if distance >= 0.5 {
                    f.write_str(", ")?;
                    far(f, distance)?;
                }
            }
            Kind::Recurring { count, first_seen, first_time } => {
                let what = if self.evidence.contains(Evidence::SERVER_ERROR) { "server errors" } else { "error" };
                f.write_str("recurring ")?;
                f.write_str(what)?;
                f.write_str(": ")?;
                plural(count, "time").fmt(f)?;
                if let Some(t) = first_time {
                    f.write_str(" since ")?;
                    crate::detect::time::Clock(t).fmt(f)?;
                }
                f.write_str(", first at record ")?;
                Thousands(first_seen).fmt(f)?;
                f.write_str(" (not acknowledged); ")?;
                return self.evidence.fmt(f);
            }
            Kind::Burst { now, usual, since } => {
                f.write_str("burst: ")?;
                Digits(now as u64).fmt(f)?;
                f.write_str(" in this window")?;
                if let Some(t) = since {
                    f.write_str(" (since ")?;
                    crate::detect::time::Clock(t).fmt(f)?;
                    f.write_str(")")?;
                }
                f.write_str(", usually ")?;
                // a count, as `{:.0}` writes it (halves, signs and huge values left to it)
                if usual.is_sign_positive() && usual < 1e15 && usual - usual.floor() != 0.5 {
                    Digits(usual.round() as u64).fmt(f)?;
                } else {
                    write!(f, "{usual:.0}")?;
                }
            }
            Kind::Value(finding) => finding.fmt(f)?,
            Kind::Severe => {
                if self.evidence.is_empty() {
                    return f.write_str("severe");
                }
                f.write_str("known message, ")?;
                f.write_str(trouble)?;
                return self.evidence.fmt(f);
            }
        }
        if !self.evidence.is_empty() {
            f.write_str("; ")?;
            f.write_str(trouble)?;
            self.evidence.fmt(f)?;
        }
        Ok(())
    }
}

/// A distance in [0, 1] with two decimals, as `{:.2}` writes it (other values through `{:.2}`).
struct Hundredths(f32);

impl fmt::Display for Hundredths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        // exact halves round as `{:.2}` rounds them (to even on the binary value): left to it
        let scaled = d as f64 * 100.0;
        if !(0.0..=1.0).contains(&d) || (scaled - scaled.floor() - 0.5).abs() < 1e-6 {
            return write!(f, "{d:.2}");
        }
        let n = scaled.round() as u32;
        let b = [b'0' + (n / 100) as u8, b'.', b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
        f.write_str(std::str::from_utf8(&b).unwrap_or("?"))
    }
}

/// The decimal digits of `n`, rendered at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// `12345` as `12345`, on the stack.
struct Digits(u64);

impl fmt::Display for Digits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(decimal(self.0, &mut [0; 20])).unwrap_or("?"))
    }
}

/// `1 time`, `12 345 times`; written straight into the formatter (reasons are written for every
/// anomalous record: no allocation).
struct Plural<'a>(u64, &'a str);

impl fmt::Display for Plural<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 1 {
            f.write_str("1 ")?;
            f.write_str(self.1)
        } else {
            fmt::Display::fmt(&Thousands(self.0), f)?;
            f.write_str(" ")?;
            f.write_str(self.1)?;
            f.write_str("s")
        }
    }
}

fn plural(n: u64, word: &str) -> Plural<'_> {
    Plural(n, word)
}

/// `12345` → `12 345`, as people read counts.
pub(crate) struct Thousands(pub(crate) u64);

impl fmt::Display for Thousands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // digits on the stack, grouped by three from the right
        let mut buf = [0u8; 20];
        let digits = decimal(self.0, &mut buf);
        let mut out = [0u8; 27];
        let mut k = 0;
        for (i, &d) in digits.iter().enumerate() {
            let left = digits.len() - i; // digits from this one to the end
            if i > 0 && left.is_multiple_of(3) {
                out[k] = b' ';
                k += 1;
            }
            out[k] = d;
            k += 1;
        }
        f.write_str(std::str::from_utf8(&out[..k]).unwrap_or(""))
    }
}

/// How much newness counts without a baseline: a new, far, trouble-free template stays below the
/// base threshold; with a warning level and some distance it crosses it.
const LIVE_NOVELTY: f32 = 0.4;

/// Trouble nobody acknowledged: at the base threshold or above, below what new trouble scores.
fn recurring_score(severity: f32) -> f32 {
    0.45 + 0.15 * severity
}

/// A score as every output writes it: rounded to thousandths, as `(s * 1000).round() / 1000`
/// (half away from zero), without the library call for the common case of a score in 0..=1.
#[inline]
pub fn thousandths(score: f32) -> f64 {
    let t = score as f64 * 1000.0;
    if !(t > 0.0 && t < 1e9) {
        return t.round() / 1000.0;
    }
    let whole = t as u64 as f64; // exact: t is below 2^53
    let rounded = if t - whole >= 0.5 { whole + 1.0 } else { whole };
    rounded / 1000.0
}

/// Epochs a template must be seen in before it counts as normal. A template present in at
/// least half the epochs since it first appeared is background: the configured number is enough.
/// One that comes in bursts with errors in it needs more evidence (up to four times as much)
/// before the engine stops flagging it.
pub fn epochs_to_establish(stats: &TemplateStats, current_epoch: u64, config: &ScoreConfig) -> u32 {
    let first_epoch = stats.first_seen.saturating_sub(1) / config.epoch_records.max(1);
    let elapsed = current_epoch.saturating_sub(first_epoch) + 1;
    if stats.epochs_seen as u64 * 2 >= elapsed {
        return config.establish_epochs;
    }
    let severity = stats.severity(0.0);
    (config.establish_epochs as f32 * (1.0 + 3.0 * severity)).round() as u32
}

/// How much a template's newness counts, given what the engine knows of the stream.
pub fn novelty_weight(baseline: bool, in_warmup: bool) -> f32 {
    match (baseline, in_warmup) {
        // normal traffic was learned or acknowledged: a template unlike it is evidence by itself
        (true, _) => 1.0,
        // the stream's opening vocabulary: no reason to call it new
        (false, true) => 0.0,
        // live mode: every template was new once; newness counts only with trouble beside it
        (false, false) => LIVE_NOVELTY,
    }
}

/// Scores one sighting of a template whose stats are already updated for it; `novelty` from
/// [`novelty_weight`].
pub fn score(stats: &TemplateStats, level_severity: f32, total: u64, novelty: f32, config: &ScoreConfig) -> Score {
    let current_epoch = total.saturating_sub(1) / config.epoch_records.max(1);
    let severity = stats.severity(level_severity);
    let evidence = Evidence::of(stats, level_severity);
    let reason = |kind| Reason { kind, evidence };
    if !stats.established {
        let needed = epochs_to_establish(stats, current_epoch, config).max(1);
        if stats.is_trouble() && stats.epochs_seen >= needed {
            // It would be normal by now if it were not trouble: still flagged, below a new one.
            let value = recurring_score(severity);
            return Score { value, reason: reason(Kind::Recurring { count: stats.count, first_seen: stats.first_seen, first_time: stats.first_time }), severity };
        }
        // Not (yet) normal: novelty fades a little with every epoch it is seen in.
        let youth = 1.0 - 0.5 * (stats.epochs_seen.saturating_sub(1) as f32 / needed as f32);
        // what the record says of itself weighs more than words found in it
        let weight = if stats.is_trouble() { 0.45 } else { 0.35 };
        let mut value = (0.25 + novelty * (0.20 * youth + 0.25 * stats.distance) + weight * severity).min(1.0);
        if stats.is_trouble() {
            // as newness fades, trouble never drops below what it scores when it recurs
            value = value.max(recurring_score(severity));
        }
        let kind = if stats.count <= 1 {
            Kind::NewTemplate { distance: stats.distance }
        } else {
            Kind::Rare { count: stats.count, total, distance: stats.distance }
        };
        return Score { value, reason: reason(kind), severity };
    }
    // Normal template: only a burst of trouble or an unusually severe record stands out. A
    // burst of a message that is no trouble (a batch job's progress lines) is said, not flagged.
    let usual = stats.count.saturating_sub(stats.epoch_count as u64) as f32
        / stats.epochs_seen.saturating_sub(1).max(1) as f32;
    let now = stats.epoch_count;
    if now >= config.burst_min && now as f32 > config.burst_factor * usual.max(1.0) {
        let excess = (now as f32 / (config.burst_factor * usual.max(1.0))).ln().min(1.0);
        return Score { value: 0.3 + 0.15 * excess + 0.45 * severity, reason: reason(Kind::Burst { now, usual, since: None }), severity };
    }
    Score { value: 0.25 * severity, reason: reason(Kind::Severe), severity }
}

/// Self-calibrating threshold: a histogram of the scores of established traffic.
#[derive(Clone, Debug)]
pub struct Threshold {
    bins: [u32; 64],
    seen: u32,
    current: f32,
}

impl Threshold {
    pub fn new(base: f32) -> Self {
        Threshold { bins: [0; 64], seen: 0, current: base }
    }

    pub fn value(&self) -> f32 {
        self.current
    }

    /// Continues from a saved value (at least the configured base).
    pub fn resume(&mut self, value: f32, config: &ScoreConfig) {
        if !config.fixed_threshold && value.is_finite() {
            self.current = value.clamp(config.threshold, 0.95);
        }
    }

    /// Records the score of a record from an established template.
    pub fn observe(&mut self, score: f32) {
        let bin = ((score.clamp(0.0, 1.0) * 63.0) as usize).min(63);
        self.bins[bin] += 1;
        self.seen += 1;
    }

    /// At each epoch end: recompute from what was observed, then decay it by half.
    pub fn recalibrate(&mut self, config: &ScoreConfig) {
        if config.fixed_threshold || self.seen < 200 {
            self.current = config.threshold;
            return;
        }
        let allowed = (self.seen as f32 * 0.005) as u32;
        let mut above = 0u32;
        let mut q = 1.0f32;
        for bin in (0..64).rev() {
            above += self.bins[bin];
            if above > allowed {
                q = (bin + 1) as f32 / 63.0;
                break;
            }
        }
        self.current = config.threshold.max(q.min(0.95));
        for b in self.bins.iter_mut() {
            *b /= 2;
        }
        self.seen /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousandths_are_what_round_writes() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut scores: Vec<f32> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                f32::from_bits(x as u32 & 0x3f80_0000 | (x >> 32) as u32 & 0x007f_ffff) // 1.0 ..< 2.0 and below
                    * if x % 3 == 0 { 1.0 } else { 0.5 }
            })
            .collect();
        // halves exactly, their neighbours, and what lies outside 0..=1
        for k in 0..=1000u32 {
            let half = (k as f32 + 0.5) / 1000.0;
            scores.extend([half, f32::from_bits(half.to_bits() - 1), f32::from_bits(half.to_bits() + 1), k as f32 / 1000.0]);
        }
        scores.extend([0.0, -0.0, 1.0, -0.0004, -0.0005, -1.5, 2.5e6, 1e30, f32::MAX, f32::INFINITY, f32::NEG_INFINITY, f32::NAN]);
        for s in scores {
            let want = (s as f64 * 1000.0).round() / 1000.0;
            assert_eq!(thousandths(s).to_bits(), want.to_bits(), "{s:e}");
        }
    }


    #[test]
    fn counts_are_grouped_by_three_from_the_right() {
        for (n, text) in [(0, "0"), (7, "7"), (999, "999"), (1_000, "1 000"), (12_345, "12 345"), (100_000, "100 000"), (1_234_567, "1 234 567"), (u64::MAX, "18 446 744 073 709 551 615")] {
            assert_eq!(Thousands(n).to_string(), text);
            assert_eq!(Digits(n).to_string(), n.to_string());
        }
    }

    /// The reason as `write!` renders it, piece by piece: what the hand-written `Display` must
    /// print, for every kind, evidence, and counts, distances and times of every size.
    #[test]
    fn reasons_read_as_format_writes_them() {
        fn by_format(r: &Reason) -> String {
            let ev = r.evidence.to_string();
            let trouble = if r.evidence.is_empty() { "" } else { "trouble: " };
            let plural = |n: u64, w: &str| if n == 1 { format!("1 {w}") } else { format!("{} {w}s", Thousands(n)) };
            let tail = if r.evidence.is_empty() { String::new() } else { format!("; {trouble}{ev}") };
            match r.kind {
                Kind::NewTemplate { distance } if distance >= 0.5 => format!("new template, far from all known messages ({distance:.2}){tail}"),
                Kind::NewTemplate { .. } => format!("new template{tail}"),
                Kind::Rare { count, total, distance } => {
                    let far = if distance >= 0.5 { format!(", far from all known messages ({distance:.2})") } else { String::new() };
                    format!("rare: seen {} in {}{far}{tail}", plural(count, "time"), Thousands(total))
                }
                Kind::Recurring { count, first_seen, first_time } => {
                    let what = if r.evidence.contains(Evidence::SERVER_ERROR) { "server errors" } else { "error" };
                    let since = first_time.map_or(String::new(), |t| format!(" since {}", crate::detect::time::Clock(t)));
                    format!("recurring {what}: {}{since}, first at record {} (not acknowledged); {ev}", plural(count, "time"), Thousands(first_seen))
                }
                Kind::Burst { now, usual, since } => {
                    let since = since.map_or(String::new(), |t| format!(" (since {})", crate::detect::time::Clock(t)));
                    format!("burst: {now} in this window{since}, usually {usual:.0}{tail}")
                }
                Kind::Value(_) => unreachable!("not generated here"),
                Kind::Severe if r.evidence.is_empty() => "severe".to_string(),
                Kind::Severe => format!("known message, {trouble}{ev}"),
            }
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || crate::detect::xorshift(&mut seed);
        for _ in 0..20_000 {
            let n = match next() % 4 {
                0 => next() % 3,
                1 => next() % 10_000,
                2 => next() % 10_000_000_000,
                _ => next(),
            };
            let d = match next() % 3 {
                0 => (next() % 101) as f32 / 100.0,
                1 => (next() % 1_000_000) as f32 / 1_000_000.0,
                _ => f32::from_bits(next() as u32),
            };
            let t = (next() % 2 == 0).then(|| (next() % 400_000_000_000) as i64 - 100_000_000_000);
            let kind = match next() % 6 {
                0 => Kind::NewTemplate { distance: d },
                1 => Kind::Rare { count: n, total: n.wrapping_mul(3), distance: d },
                2 => Kind::Recurring { count: n, first_seen: n / 7, first_time: t },
                3 => Kind::Burst { now: n as u32, usual: d * 1000.0, since: t },
                4 => Kind::Burst { now: 3, usual: [d, (next() % 9) as f32 + 0.5, -d][(next() % 3) as usize], since: None },
                _ => Kind::Severe,
            };
            let r = Reason { kind, evidence: Evidence((next() % 32) as u8) };
            assert_eq!(r.to_string(), by_format(&r), "{r:?}");
        }
    }

    fn stats(count: u64, epochs: u32, established: bool) -> TemplateStats {
        TemplateStats { count, epochs_seen: epochs, epoch_count: 1, established, ..Default::default() }
    }

    #[test]
    fn new_templates_score_above_normal_ones() {
        let c = ScoreConfig::default();
        let mut far = stats(1, 1, false);
        far.distance = 0.6;
        let new = score(&far, 0.0, 100, 1.0, &c);
        let normal = score(&stats(500, 10, true), 0.0, 100, 1.0, &c);
        assert!(new.value >= c.threshold, "{new:?}");
        assert!(normal.value < c.threshold);
        assert_eq!(new.reason.kind, Kind::NewTemplate { distance: 0.6 });
        // a new wording right next to known messages is not worth an alert by itself…
        assert!(score(&stats(1, 1, false), 0.0, 100, 1.0, &c).value < c.threshold);
        // …unless its level or words say trouble
        assert!(score(&stats(1, 1, false), 0.4, 100, 1.0, &c).value >= c.threshold);
    }

    #[test]
    fn a_burst_of_a_new_error_stays_anomalous() {
        let c = ScoreConfig::default();
        let mut s = stats(300, 1, false);
        s.trouble = 0.6;
        let sc = score(&s, 1.0, 300, 1.0, &c);
        assert!(sc.value > 0.75, "{sc:?}");
        assert_eq!(sc.reason.to_string(), "rare: seen 300 times in 300; trouble: critical level, error words");
    }

    #[test]
    fn recurring_trouble_stays_flagged_below_new_trouble_and_dumps_are_context() {
        let c = ScoreConfig::default();
        let mut s = stats(40, 8, false);
        s.first_seen = 1;
        s.level_severity = 1.0;
        let recurring = score(&s, 1.0, 8000, 1.0, &c);
        assert!(matches!(recurring.reason.kind, Kind::Recurring { count: 40, first_seen: 1, .. }), "{recurring:?}");
        assert!(recurring.value >= c.threshold);
        let mut new = stats(1, 1, false);
        new.level_severity = 1.0;
        assert!(score(&new, 1.0, 8000, 1.0, &c).value > recurring.value);
        // the same level on a line that only dumps a field is no trouble by itself
        s.field_dump = true;
        assert!(!s.is_trouble());
        assert!(!matches!(score(&s, 1.0, 8000, 1.0, &c).reason.kind, Kind::Recurring { .. }));
        assert!(score(&s, 1.0, 8000, 1.0, &c).reason.evidence.is_empty());
    }

    #[test]
    fn bursts_of_trouble_are_flagged_bursts_of_routine_are_said() {
        let c = ScoreConfig::default();
        let mut s = stats(1000, 10, true);
        s.epoch_count = 400; // 600 over 9 earlier epochs: usually ~67
        assert!(score(&s, 0.0, 10_000, 1.0, &c).value < c.threshold);
        s.count = 90 + 900;
        s.epoch_count = 900; // 90 over 9 epochs: usually 10
        let routine = score(&s, 0.0, 10_000, 1.0, &c);
        assert!(routine.value < c.threshold, "{routine:?}");
        assert_eq!(routine.reason.to_string(), "burst: 900 in this window, usually 10");
        s.server_error = true;
        let errors = score(&s, 0.0, 10_000, 1.0, &c);
        assert!(errors.value >= c.threshold, "{errors:?}");
        assert_eq!(errors.reason.to_string(), "burst: 900 in this window, usually 10; trouble: HTTP 5xx server errors");
    }

    #[test]
    fn without_a_baseline_newness_needs_trouble_beside_it() {
        let c = ScoreConfig::default();
        let mut far = stats(1, 1, false);
        far.distance = 0.9;
        assert!(score(&far, 0.0, 5000, 1.0, &c).value >= c.threshold);
        assert!(score(&far, 0.0, 5000, LIVE_NOVELTY, &c).value < c.threshold);
        assert!(score(&far, 0.4, 5000, LIVE_NOVELTY, &c).value >= c.threshold, "a new far warning");
        far.trouble = 0.6;
        assert!(score(&far, 0.0, 5000, LIVE_NOVELTY, &c).value >= c.threshold);
    }

    #[test]
    fn reasons_read_well() {
        let plain = |kind| Reason { kind, evidence: Evidence::default() };
        assert_eq!(plain(Kind::Rare { count: 2, total: 10_000, distance: 0.1 }).to_string(), "rare: seen 2 times in 10 000");
        assert_eq!(
            plain(Kind::NewTemplate { distance: 0.71 }).to_string(),
            "new template, far from all known messages (0.71)"
        );
        let e = Evidence(Evidence::ERROR_LEVEL.0 | Evidence::WORDS.0);
        assert_eq!(
            Reason { kind: Kind::Recurring { count: 212, first_seen: 1042, first_time: None }, evidence: e }.to_string(),
            "recurring error: 212 times, first at record 1 042 (not acknowledged); error level, error words"
        );
        assert_eq!(
            Reason { kind: Kind::Recurring { count: 212, first_seen: 1042, first_time: Some(1_117_756_800) }, evidence: e }.to_string(),
            "recurring error: 212 times since 2005-06-03 00:00:00, first at record 1 042 (not acknowledged); error level, error words"
        );
        assert_eq!(Reason { kind: Kind::Severe, evidence: e }.to_string(), "known message, trouble: error level, error words");
    }

    #[test]
    fn threshold_rises_with_noisy_normal_traffic_and_never_below_base() {
        let c = ScoreConfig::default();
        let mut t = Threshold::new(c.threshold);
        for _ in 0..1000 {
            t.observe(0.1);
        }
        t.recalibrate(&c);
        assert_eq!(t.value(), 0.5);
        for _ in 0..1000 {
            t.observe(0.7);
        }
        t.recalibrate(&c);
        assert!(t.value() > 0.7, "{}", t.value());
        let fixed = ScoreConfig { fixed_threshold: true, ..c.clone() };
        t.recalibrate(&fixed);
        assert_eq!(t.value(), 0.5);
    }
}
