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
    /// Known as normal: learned from a baseline, or seen in enough epochs.
    pub established: bool,
    /// Trouble words in the template text, in [0, 1].
    pub trouble: f32,
    /// The most severe level a record of this template carried, in [0, 1].
    pub level_severity: f32,
    /// 1 − cosine similarity to the nearest normal template when this one appeared.
    pub distance: f32,
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
        }
    }
}

/// Why a record was flagged. Formatted only when someone asks (anomalies are the rare case).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reason {
    NewTemplate { distance: f32 },
    Rare { count: u64, total: u64, distance: f32 },
    Burst { now: u32, usual: f32 },
    Severe,
}

/// The score and its parts for one record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    pub value: f32,
    pub reason: Reason,
    pub severity: f32,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reason::NewTemplate { distance } if distance >= 0.5 => {
                write!(f, "new template, far from all known messages ({distance:.2})")
            }
            Reason::NewTemplate { .. } => write!(f, "new template"),
            Reason::Rare { count, total, distance } => {
                write!(f, "rare: seen {} in {}", plural(count, "time"), Thousands(total))?;
                if distance >= 0.5 {
                    write!(f, ", far from all known messages ({distance:.2})")?;
                }
                Ok(())
            }
            Reason::Burst { now, usual } => {
                write!(f, "burst: {now} in this window, usually {usual:.0}")
            }
            Reason::Severe => write!(f, "severe level or error words"),
        }
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{} {word}s", Thousands(n))
    }
}

/// `12345` → `12 345`, as people read counts.
struct Thousands(u64);

impl fmt::Display for Thousands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.to_string();
        let mut out = String::with_capacity(s.len() + s.len() / 3);
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(' ');
            }
            out.push(c);
        }
        f.write_str(&out)
    }
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
    let severity = stats.trouble.max(stats.level_severity);
    (config.establish_epochs as f32 * (1.0 + 3.0 * severity)).round() as u32
}

/// Scores one sighting of a template whose stats are already updated for it.
pub fn score(stats: &TemplateStats, level_severity: f32, total: u64, config: &ScoreConfig) -> Score {
    let current_epoch = total.saturating_sub(1) / config.epoch_records.max(1);
    let severity = level_severity.max(stats.trouble);
    if !stats.established {
        // Not (yet) normal: novelty fades a little with every epoch it is seen in.
        let youth =
            1.0 - 0.5 * (stats.epochs_seen.saturating_sub(1) as f32 / epochs_to_establish(stats, current_epoch, config).max(1) as f32);
        let value = (0.25 + 0.20 * youth + 0.25 * stats.distance + 0.35 * severity).min(1.0);
        let reason = if stats.count <= 1 {
            Reason::NewTemplate { distance: stats.distance }
        } else {
            Reason::Rare { count: stats.count, total, distance: stats.distance }
        };
        return Score { value, reason, severity };
    }
    // Normal template: only a burst or an unusually severe record stands out.
    let usual = stats.count.saturating_sub(stats.epoch_count as u64) as f32
        / stats.epochs_seen.saturating_sub(1).max(1) as f32;
    let now = stats.epoch_count;
    if now >= config.burst_min && now as f32 > config.burst_factor * usual.max(1.0) {
        let excess = (now as f32 / (config.burst_factor * usual.max(1.0))).ln().min(1.0);
        return Score { value: 0.5 + 0.3 * excess + 0.2 * severity, reason: Reason::Burst { now, usual }, severity };
    }
    Score { value: 0.25 * severity, reason: Reason::Severe, severity }
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

    fn stats(count: u64, epochs: u32, established: bool) -> TemplateStats {
        TemplateStats { count, epochs_seen: epochs, epoch_count: 1, established, ..Default::default() }
    }

    #[test]
    fn new_templates_score_above_normal_ones() {
        let c = ScoreConfig::default();
        let mut far = stats(1, 1, false);
        far.distance = 0.6;
        let new = score(&far, 0.0, 100, &c);
        let normal = score(&stats(500, 10, true), 0.0, 100, &c);
        assert!(new.value >= c.threshold, "{new:?}");
        assert!(normal.value < c.threshold);
        assert_eq!(new.reason, Reason::NewTemplate { distance: 0.6 });
        // a new wording right next to known messages is not worth an alert by itself…
        assert!(score(&stats(1, 1, false), 0.0, 100, &c).value < c.threshold);
        // …unless its level or words say trouble
        assert!(score(&stats(1, 1, false), 0.4, 100, &c).value >= c.threshold);
    }

    #[test]
    fn a_burst_of_a_new_error_stays_anomalous() {
        let c = ScoreConfig::default();
        let mut s = stats(300, 1, false);
        s.trouble = 0.6;
        let sc = score(&s, 1.0, 300, &c);
        assert!(sc.value > 0.75, "{sc:?}");
        assert_eq!(sc.reason.to_string(), "rare: seen 300 times in 300");
    }

    #[test]
    fn bursts_of_normal_templates_are_flagged() {
        let c = ScoreConfig::default();
        let mut s = stats(1000, 10, true);
        s.epoch_count = 400; // 600 over 9 earlier epochs: usually ~67
        assert!(score(&s, 0.0, 10_000, &c).value < c.threshold);
        s.count = 90 + 900;
        s.epoch_count = 900; // 90 over 9 epochs: usually 10
        let sc = score(&s, 0.0, 10_000, &c);
        assert!(sc.value >= c.threshold, "{sc:?}");
        assert_eq!(sc.reason.to_string(), "burst: 900 in this window, usually 10");
    }

    #[test]
    fn reasons_read_well() {
        assert_eq!(Reason::Rare { count: 2, total: 10_000, distance: 0.1 }.to_string(), "rare: seen 2 times in 10 000");
        assert_eq!(
            Reason::NewTemplate { distance: 0.71 }.to_string(),
            "new template, far from all known messages (0.71)"
        );
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
