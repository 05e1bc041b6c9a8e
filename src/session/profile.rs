//! What normal sessions contain: how many sessions hold each template, and which pairs of
//! templates come in equal numbers (as Invariant Mining finds count relations, bounded here to
//! the first [`TRACKED`] templates sessions use). A closing session is judged against it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::session::template_map::TemplateMap;

/// Templates whose pairwise counts are tracked (the first ones seen in sessions).
pub const TRACKED: usize = 32;
/// Sessions a profile needs before its verdicts mean anything.
pub const MIN_SESSIONS: u64 = 50;
/// "Nearly every session has it": missing it is evidence.
pub const ALWAYS: f64 = 0.97;
/// "Almost no session has it": having it is evidence.
const RARE: f64 = 0.02;
/// Sessions a pair must have been seen in before its relation counts.
const MIN_PAIR: u64 = 30;

/// Maps read and written for every closing session: hashed, not ordered (a B-tree costs several
/// times more per entry here); written sorted, so that a saved profile is the same bytes.
pub type Counts<V> = HashMap<u32, V, foldhash::fast::RandomState>;

fn sorted<V: Serialize, S: serde::Serializer>(map: &Counts<V>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(map.iter().collect::<BTreeMap<_, _>>())
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Profile {
    pub sessions: u64,
    /// Template id → sessions that contain it.
    pub with: TemplateMap<u64>,
    /// The templates whose pairs are tracked, in the order they were first seen.
    pub tracked: Vec<u32>,
    /// For tracked i < j, at `i * TRACKED + j`: sessions holding either, and those holding both in
    /// equal numbers.
    pub either: Vec<u64>,
    pub equal: Vec<u64>,
    /// Template id → sum over sessions of where it first came, from 0 (first) to 1 (last): its
    /// mean says whether an event usually comes early or late in a session.
    #[serde(default)]
    pub position: TemplateMap<f64>,
    /// Records between two records of the same session, in power-of-two buckets: how long a
    /// session may go quiet and still be under way.
    #[serde(default)]
    pub gaps: Vec<u64>,
    /// Template id → records a session waited before it first came, in power-of-two buckets
    /// (64): how long an event may take. The stream's own waits say it once it has shown
    /// enough; until then (a short or frozen run) these learned ones do.
    #[serde(default, serialize_with = "sorted")]
    pub waits: Counts<Vec<u32>>,
    /// Template id → the quiet that followed it within a session before the session's next
    /// record: 64 log₂ buckets of seconds of record time, then 64 of records (see
    /// [`crate::session::quiet`]): how long a session at that event may be quiet and go on.
    #[serde(default, serialize_with = "sorted")]
    pub quiet_after: Counts<Vec<u32>>,
    /// Template id → sessions that ended with it (their last event), closed for good.
    #[serde(default, serialize_with = "sorted")]
    pub ended_with: Counts<u64>,
}

/// A session's counts and a number that goes with them, as a key of a batch's table (sessions
/// that did the same thing are learned and judged once).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SessionShape<'a> {
    pub counts: &'a [(u32, u32)],
    pub with: u64,
}

impl std::hash::Hash for SessionShape<'_> {
    /// The counts as one run of bytes (what the derived hash wrote as two numbers a pair, a
    /// call each, cost as much as the rest of judging a session).
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        const _: () = assert!(std::mem::size_of::<(u32, u32)>() == 8);
        // SAFETY: a pair of u32 is 8 bytes, all of them the two numbers' (no padding): the
        // slice's bytes are initialised, and equal slices have equal bytes
        let bytes = unsafe { std::slice::from_raw_parts(self.counts.as_ptr() as *const u8, self.counts.len() * 8) };
        h.write(bytes);
        h.write_u64(self.with);
    }
}

/// Templates whose waits a profile keeps, at most.
pub const MAX_WAIT_TEMPLATES: usize = 4096;

/// The verdict on a closed session.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionVerdict {
    pub anomaly: bool,
    pub score: f32,
    /// Why, in words; `None` when normal (or not judged: too few sessions known).
    pub reason: Option<String>,
}

impl Profile {
    /// Learns that a session waited `gap` records before `template` first came.
    pub fn add_wait(&mut self, template: u32, gap: u64) {
        self.add_waits(template, (64 - gap.leading_zeros() as usize).min(63), 1);
    }

    /// Learns `n` waits in bucket `b` before `template` (as `n` calls of [`Profile::add_wait`]).
    pub fn add_waits(&mut self, template: u32, b: usize, n: u32) {
        if self.waits.len() >= MAX_WAIT_TEMPLATES && !self.waits.contains_key(&template) {
            return;
        }
        let h = self.waits.entry(template).or_insert_with(|| vec![0; 64]);
        if h.len() == 64 {
            h[b.min(63)] += n;
        }
    }

    /// Learns `n` quiet gaps after `template` in bucket `b` of [`Profile::quiet_after`] (0..128).
    pub fn add_quiet_after(&mut self, template: u32, b: usize, n: u32) {
        if self.quiet_after.len() >= MAX_WAIT_TEMPLATES && !self.quiet_after.contains_key(&template) {
            return;
        }
        let h = self.quiet_after.entry(template).or_insert_with(|| vec![0; 128]);
        if h.len() == 128 {
            h[b.min(127)] += n;
        }
    }

    /// Learns that `n` sessions ended with `template`.
    pub fn add_ended(&mut self, template: u32, n: u64) {
        if self.ended_with.len() >= MAX_WAIT_TEMPLATES && !self.ended_with.contains_key(&template) {
            return;
        }
        *self.ended_with.entry(template).or_insert(0) += n;
    }

    /// The learned waits before `template`, as a histogram (see [`Profile::waits`]).
    pub fn waits_for(&self, template: u32) -> Option<&[u32; 64]> {
        self.waits.get(&template).and_then(|h| <&[u32; 64]>::try_from(h.as_slice()).ok())
    }

    fn slot(&mut self, t: u32) -> Option<usize> {
        if let Some(i) = self.tracked.iter().position(|&x| x == t) {
            return Some(i);
        }
        if self.tracked.len() < TRACKED {
            self.tracked.push(t);
            if self.either.is_empty() {
                self.either = vec![0; TRACKED * TRACKED];
                self.equal = vec![0; TRACKED * TRACKED];
            }
            return Some(self.tracked.len() - 1);
        }
        None
    }

    /// Learns one session: `counts` is (template, times) with every template once.
    pub fn add(&mut self, counts: &[(u32, u32)]) {
        let (c, n) = self.add_but_pairs(counts);
        self.add_pairs(&c, n, 1);
    }

    /// Learns sessions, in order, exactly as [`Profile::add`] on each would. Most sessions of a
    /// batch did the same thing: the pair counts of sessions alike (same counts, same tracked
    /// templates when learned) are added once, times their number — integers, the order of
    /// additions is free; the rest (positions are floating sums) is added session by session.
    pub fn add_all<'a>(&mut self, sessions: impl Iterator<Item = &'a [(u32, u32)]>) {
        // (counts, templates tracked when learned) → sessions
        let mut alike: HashMap<SessionShape<'_>, u64, foldhash::fast::RandomState> = HashMap::default();
        for counts in sessions {
            let (_, n) = self.add_but_pairs(counts);
            *alike.entry(SessionShape { counts, with: n as u64 }).or_insert(0) += 1;
        }
        for (shape, times) in alike {
            let c = self.tracked_counts(shape.counts);
            self.add_pairs(&c, shape.with as usize, times);
        }
    }

    /// [`Profile::add`] but the pair counts: the session's counts by tracked slot, and how many
    /// templates were tracked once it was learned.
    fn add_but_pairs(&mut self, counts: &[(u32, u32)]) -> ([u32; TRACKED], usize) {
        self.sessions += 1;
        let last = counts.len().saturating_sub(1).max(1) as f64;
        let mut c = [0u32; TRACKED];
        for (i, &(t, times)) in counts.iter().enumerate() {
            *self.with.get_or_default(t) += 1;
            *self.position.get_or_default(t) += i as f64 / last;
            if let Some(slot) = self.slot(t) {
                c[slot] = times;
            }
        }
        (c, self.tracked.len())
    }

    /// The pair counts of `times` sessions with counts `c` (by slot) among the first `n` tracked.
    fn add_pairs(&mut self, c: &[u32; TRACKED], n: usize, times: u64) {
        // A pair counts in `either` when one of the two is present, in `equal` when both are
        // present in equal numbers. A session holds few of the tracked templates: walk from
        // those (row i > present, column i < absent), not over every pair.
        let (present, np) = present_slots(c, n);
        for &p in &present[..np] {
            for q in p + 1..n {
                self.either[p * TRACKED + q] += times;
            }
            for (q, _) in c[..p].iter().enumerate().filter(|(_, &count)| count == 0) {
                self.either[q * TRACKED + p] += times;
            }
        }
        for (x, &p) in present[..np].iter().enumerate() {
            for &q in &present[x + 1..np] {
                if c[p] == c[q] {
                    self.equal[p * TRACKED + q] += times;
                }
            }
        }
    }

    /// The session's counts of the tracked templates, by slot.
    fn tracked_counts(&self, counts: &[(u32, u32)]) -> [u32; TRACKED] {
        let mut c = [0u32; TRACKED];
        for &(t, n) in counts {
            if let Some(i) = self.tracked.iter().position(|&x| x == t) {
                c[i] = n;
            }
        }
        c
    }

    /// One gap (in records) between two records of a session.
    #[inline]
    pub fn add_gap(&mut self, records: u64) {
        if self.gaps.is_empty() {
            self.gaps = vec![0; 64];
        }
        self.gaps[(64 - records.leading_zeros() as usize).min(63)] += 1;
    }

    /// A gap that at most 1% of gaps exceed (its bucket's upper bound); `None` with too few known.
    pub fn long_gap(&self) -> Option<u64> {
        let total: u64 = self.gaps.iter().sum();
        if total < 100 {
            return None;
        }
        let mut seen = 0;
        for (b, &n) in self.gaps.iter().enumerate() {
            seen += n;
            if seen * 100 >= total * 99 {
                return Some(if b >= 63 { u64::MAX } else { (1u64 << b).saturating_sub(1).max(1) });
            }
        }
        None
    }

    /// Where a template usually first comes in a session (0 first … 1 last); unknown → 1.
    pub fn mean_position(&self, t: u32) -> f64 {
        match (self.position.get(t), self.with.get(t)) {
            (Some(sum), Some(&n)) if n > 0 => sum / n as f64,
            _ => 1.0,
        }
    }

    /// Every template sessions had, in no particular order: (template, sessions with it,
    /// [`Profile::mean_position`]).
    fn known(&self) -> impl Iterator<Item = (u32, u64, f64)> + '_ {
        self.with.iter().map(move |(t, &with)| {
            let mean = match self.position.get(t) {
                Some(&sum) if with > 0 => sum / with as f64,
                _ => 1.0,
            };
            (t, with, mean)
        })
    }

    /// The events whose absence is evidence, for sessions judged with `learned_it`: (template,
    /// share of sessions with it, mean position) for those nearly every session has. The same
    /// for every session of a batch: [`Profile::judge`] takes it worked out once.
    pub fn common(&self, learned_it: bool) -> Vec<(u32, f64, f64)> {
        let n = self.sessions.saturating_sub(learned_it as u64);
        if n < MIN_SESSIONS {
            return Vec::new();
        }
        // a session lacking the event is not in its count: the share is with / n
        let mut common: Vec<(u32, f64, f64)> = self.known().map(|(t, with, mean)| (t, with as f64 / n as f64, mean)).filter(|&(_, p, _)| p >= ALWAYS).collect();
        // in template order: of two reasons with one score, the first said is the one kept
        common.sort_unstable_by_key(|&(t, _, _)| t);
        common
    }

    /// Whether an event is one (almost) no session has — evidence as soon as it comes: (score,
    /// why). `own`: 1 when the session judged is in the profile (left out of the figures).
    pub fn rare(&self, t: u32, own: u64, text_of: &dyn Fn(u32) -> String) -> Option<(f64, String)> {
        let n = self.sessions.saturating_sub(own);
        if n < MIN_SESSIONS {
            return None;
        }
        let with = self.with.get(t).copied().unwrap_or(0).saturating_sub(own);
        let p = with as f64 / n as f64;
        if p >= RARE {
            return None;
        }
        let why = if with == 0 {
            format!("\"{}\" never seen in a session before", text_of(t))
        } else {
            format!("\"{}\" (present in only {} of sessions)", text_of(t), percent(p))
        };
        Some((0.5 + 0.5 * (1.0 - p / RARE) * 0.9, why))
    }

    /// Whether `t` would be [`Profile::rare`] for a session not in the profile (no words made).
    #[inline]
    pub fn is_rare(&self, t: u32) -> bool {
        self.sessions >= MIN_SESSIONS && (self.with.get(t).copied().unwrap_or(0) as f64) < RARE * self.sessions as f64
    }

    /// Judges a session. `learned_it`: the session is already in the profile (it is then left
    /// out of the figures it is compared with). `quiet`: it was cut short (end of input,
    /// eviction) after this many records without one of its own, so a missing event may simply
    /// not have come yet: one that usually comes after a longer wait than that (`wait_for(t)`,
    /// when known), or else — unless it has been quiet for longer than sessions go quiet
    /// (`long_gap`) — later than everything the session has, is not held against it.
    /// `text_of` names a template.
    /// `common`: [`Profile::common`], the same for every session of a batch.
    #[allow(clippy::too_many_arguments)]
    pub fn judge(
        &self,
        common: &[(u32, f64, f64)],
        counts: &[(u32, u32)],
        learned_it: bool,
        quiet: Option<u64>,
        long_gap: Option<u64>,
        wait_for: &dyn Fn(u32) -> Option<u64>,
        text_of: &dyn Fn(u32) -> String,
    ) -> SessionVerdict {
        self.judge_for(common, counts, learned_it, quiet, long_gap, wait_for, text_of, true, 0)
    }

    /// [`Profile::judge`]; `rare_events`: false leaves out the evidence of an event (almost)
    /// no session has (said when it came, for a session still open); `stream`: the sessions
    /// outside the profile `common` was also worked out from (a stream's, open ones too), which
    /// judge when the profile knows too few.
    #[allow(clippy::too_many_arguments)]
    pub fn judge_for(
        &self,
        common: &[(u32, f64, f64)],
        counts: &[(u32, u32)],
        learned_it: bool,
        quiet: Option<u64>,
        long_gap: Option<u64>,
        wait_for: &dyn Fn(u32) -> Option<u64>,
        text_of: &dyn Fn(u32) -> String,
        rare_events: bool,
        stream: u64,
    ) -> SessionVerdict {
        let unfinished = quiet.is_some();
        let own = learned_it as u64;
        let n = self.sessions.saturating_sub(own);
        if n < MIN_SESSIONS && stream < MIN_SESSIONS {
            return SessionVerdict { anomaly: false, score: 0.0, reason: None };
        }
        let mut best: Option<(f64, String)> = None;
        let mut offer = |score: f64, why: String| {
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, why));
            }
        };
        // the events nearly every session has that this one lacks: all that can be said
        // missing. A normal session has none, and the rest is skipped.
        let mut missing: Vec<(u32, f64, f64)> = Vec::new(); // (template, p, mean position)
        for &(t, p, mean) in common {
            if count_of(counts, t) == 0 {
                missing.push((t, p, mean));
            }
        }
        if missing.is_empty() {
            // nothing to excuse: no horizon, no waits
        } else if !unfinished {
            for &(t, p, _) in &missing {
                offer(0.5 + 0.5 * p, format!("missing \"{}\" (present in {} of sessions)", text_of(t), percent(p)));
            }
        } else {
            let horizon = counts.iter().map(|&(t, _)| self.mean_position(t)).fold(0.0, f64::max);
            // `mean`: where `t` usually comes ([`Profile::mean_position`])
            let may_still_come = |t: u32, mean: f64| match (quiet, wait_for(t)) {
                // the waits before it say how long it can take
                (Some(q), Some(w)) => q < w,
                // none known: quiet for longer than sessions usually go quiet, it has ended;
                // otherwise the event may come if it usually comes after all it reached
                (Some(q), None) => long_gap.is_none_or(|long| q <= long) && mean > horizon,
                (None, _) => false,
            };
            // events come in their order: once a missing event that usually comes after all
            // the session reached (`mean > horizon`) may still come, so may every event that
            // usually comes after it, common or not (their own waits count from it, not from
            // now); one the session already went past was skipped
            let pending_from = if missing.iter().any(|&(_, _, mean)| mean > horizon) {
                self.known()
                    .filter(|&(t, _, mean)| mean > horizon && count_of(counts, t) == 0 && may_still_come(t, mean))
                    .map(|(_, _, mean)| mean)
                    .fold(f64::INFINITY, f64::min)
            } else {
                f64::INFINITY
            };
            for &(t, p, mean) in &missing {
                if mean > horizon && (may_still_come(t, mean) || mean >= pending_from) {
                    continue; // it may not have come yet: the session was cut short
                }
                offer(0.5 + 0.5 * p, format!("missing \"{}\" (present in {} of sessions)", text_of(t), percent(p)));
            }
        }
        // an event (almost) no session has
        for &(t, _) in counts.iter().filter(|_| rare_events) {
            if let Some((score, why)) = self.rare(t, own, text_of) {
                offer(score, why);
            }
        }
        // two events that come in equal numbers do not
        let c = self.tracked_counts(counts);
        // only pairs of two present events are compared (a missing event is said above, in
        // plainer words)
        let (present, np) = present_slots(&c, self.tracked.len());
        for (x, &i) in present[..np].iter().enumerate() {
            for &j in &present[x + 1..np] {
                let (ti, tj) = (self.tracked[i], self.tracked[j]);
                let (a, b) = (c[i], c[j]);
                if a == b {
                    continue;
                }
                let either = self.either[i * TRACKED + j].saturating_sub(own);
                let equal = self.equal[i * TRACKED + j]; // a session with a != b never added to it
                if either < MIN_PAIR {
                    continue;
                }
                let p = equal.min(either) as f64 / either as f64;
                if p >= ALWAYS {
                    offer(0.5 + 0.45 * p, format!("{a} × \"{}\" but {b} × \"{}\" (equal in {} of sessions)", text_of(ti), text_of(tj), percent(p)));
                }
            }
        }
        match best {
            Some((score, why)) => SessionVerdict { anomaly: true, score: score.min(1.0) as f32, reason: Some(why) },
            None => SessionVerdict { anomaly: false, score: 0.1, reason: None },
        }
    }
}

/// The slots (of the first `n`) a session has, ascending, and how many.
fn present_slots(c: &[u32; TRACKED], n: usize) -> ([usize; TRACKED], usize) {
    let mut present = [0usize; TRACKED];
    let mut np = 0;
    for (i, &count) in c.iter().enumerate().take(n) {
        if count > 0 {
            present[np] = i;
            np += 1;
        }
    }
    (present, np)
}

fn count_of(counts: &[(u32, u32)], t: u32) -> u32 {
    counts.iter().find(|c| c.0 == t).map_or(0, |c| c.1)
}

/// `0.9973` → `99.7%`
fn percent(p: f64) -> String {
    format!("{:.1}%", p * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: u32) -> String {
        ["receiving", "allocate", "responder", "received"][t as usize].to_string()
    }

    fn normal_profile() -> Profile {
        let mut p = Profile::default();
        for _ in 0..200 {
            p.add(&[(0, 3), (1, 1), (2, 3), (3, 3)]);
        }
        p
    }

    #[test]
    fn sessions_learned_together_are_sessions_learned_one_by_one() {
        // batches of sessions, many alike, some with new templates (the tracked ones grow within
        // a batch, past what is tracked): the same profile, floating sums included, to the bit
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let shapes: Vec<Vec<(u32, u32)>> = (0..12).map(|k| (0..3 + k % 5).map(|i| ((k * 3 + i) as u32 % 45, 1 + (i % 2) as u32)).collect()).collect();
        let (mut one, mut together) = (Profile::default(), Profile::default());
        for _ in 0..300 {
            let batch: Vec<Vec<(u32, u32)>> = (0..next() % 40)
                .map(|_| match next() % 4 {
                    0 => (0..next() % 9).map(|_| ((next() % 50) as u32, 1 + (next() % 3) as u32)).fold(Vec::new(), |mut v, (t, n)| {
                        if v.iter().all(|c: &(u32, u32)| c.0 != t) {
                            v.push((t, n));
                        }
                        v
                    }),
                    _ => shapes[(next() % 12) as usize].clone(),
                })
                .collect();
            for counts in &batch {
                one.add(counts);
            }
            together.add_all(batch.iter().map(Vec::as_slice));
        }
        assert_eq!(one.tracked.len(), TRACKED);
        assert_eq!(serde_json::to_string(&one).unwrap(), serde_json::to_string(&together).unwrap());
        assert_eq!(one, together);
    }

    #[test]
    fn pair_counts_equal_counting_every_pair() {
        // sessions of up to 40 templates (more than are tracked), counts 1..=3, from a fixed
        // pseudo-random sequence; the profile against counting all pairs of tracked slots
        let mut p = Profile::default();
        let mut either = vec![0u64; TRACKED * TRACKED];
        let mut equal = vec![0u64; TRACKED * TRACKED];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let mut counts: Vec<(u32, u32)> = Vec::new();
            for _ in 0..next() % 9 {
                let t = (next() % 40) as u32;
                if counts.iter().all(|c| c.0 != t) {
                    counts.push((t, (next() % 3 + 1) as u32));
                }
            }
            p.add(&counts);
            let c = p.tracked_counts(&counts);
            for i in 0..p.tracked.len() {
                for j in i + 1..p.tracked.len() {
                    if c[i] > 0 || c[j] > 0 {
                        either[i * TRACKED + j] += 1;
                        equal[i * TRACKED + j] += (c[i] == c[j]) as u64;
                    }
                }
            }
        }
        assert_eq!(p.tracked.len(), TRACKED);
        assert_eq!(p.either, either);
        assert_eq!(p.equal, equal);
    }

    #[test]
    fn a_missing_step_a_new_event_and_a_broken_count_are_said() {
        let p = normal_profile();
        let ok = p.judge(&p.common(false), &[(0, 3), (1, 1), (2, 3), (3, 3)], false, None, None, &|_| None, &text);
        assert!(!ok.anomaly, "{ok:?}");
        let missing = p.judge(&p.common(false), &[(0, 3), (1, 1), (3, 3)], false, None, None, &|_| None, &text);
        assert_eq!(missing.reason.as_deref(), Some("missing \"responder\" (present in 100.0% of sessions)"));
        // cut by the end of input: a step that usually comes last may not have come yet…
        assert!(!p.judge(&p.common(false), &[(0, 3), (1, 1), (2, 3)], false, Some(0), None, &|_| None, &text).anomaly);
        // …but one that usually comes before what it has is missing all the same
        assert!(p.judge(&p.common(false), &[(0, 3), (1, 1), (3, 3)], false, Some(0), None, &|_| None, &text).anomaly);
        let unequal = p.judge(&p.common(false), &[(0, 3), (1, 1), (2, 2), (3, 3)], false, None, None, &|_| None, &text);
        assert!(unequal.anomaly);
        assert!(unequal.reason.unwrap().contains("× \"responder\""), );
        let novel = p.judge(&p.common(false), &[(0, 3), (1, 1), (2, 3), (3, 3), (9, 1)], false, None, None, &|_| None, &|t| if t == 9 { "oops".into() } else { text(t) });
        assert_eq!(novel.reason.as_deref(), Some("\"oops\" never seen in a session before"));
    }

    #[test]
    fn an_event_that_may_still_come_excuses_the_ones_after_it_not_the_ones_before() {
        // receiving (0) → allocate (1) → responder (2) → received (3), in that order
        let p = normal_profile();
        // quiet 100 records; responder usually comes within 1 000, received within 10 after it
        let waits = |t: u32| match t {
            2 => Some(1_000),
            3 => Some(10),
            _ => None,
        };
        // cut short before responder: received cannot come before it, so it is not missing yet
        assert!(!p.judge(&p.common(false), &[(0, 3), (1, 1)], false, Some(100), None, &waits, &text).anomaly);
        // quiet past the wait for responder: the session has ended without it
        let ended = p.judge(&p.common(false), &[(0, 3), (1, 1)], false, Some(5_000), None, &waits, &text);
        assert!(ended.anomaly && ended.reason.unwrap().contains("missing"));
        // it reached received but skipped responder: responder is missing, whatever the wait
        let skipped = p.judge(&p.common(false), &[(0, 3), (1, 1), (3, 3)], false, Some(100), None, &waits, &text);
        assert_eq!(skipped.reason.as_deref(), Some("missing \"responder\" (present in 100.0% of sessions)"));
    }

    #[test]
    fn learned_waits_round_trip_and_are_bounded() {
        let mut p = Profile::default();
        for g in [1u64, 3, 900, 1 << 40] {
            p.add_wait(7, g);
        }
        let h = p.waits_for(7).unwrap();
        assert_eq!(h.iter().sum::<u32>(), 4);
        assert_eq!((h[1], h[2], h[10], h[41]), (1, 1, 1, 1));
        let back: Profile = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        // profiles saved before waits were learned still read
        let old: Profile = serde_json::from_str(r#"{"sessions":1,"with":{},"tracked":[],"either":[],"equal":[]}"#).unwrap();
        assert!(old.waits.is_empty());
        for t in 0..(MAX_WAIT_TEMPLATES as u32 + 10) {
            p.add_wait(t, 5);
        }
        assert_eq!(p.waits.len(), MAX_WAIT_TEMPLATES);
    }

    #[test]
    fn too_few_sessions_judge_nothing_and_a_session_is_left_out_of_its_own_figures() {
        let mut p = Profile::default();
        for _ in 0..10 {
            p.add(&[(0, 1)]);
        }
        assert_eq!(p.judge(&p.common(false), &[(1, 1)], false, None, None, &|_| None, &text).reason, None);
        let mut q = normal_profile();
        let odd = [(0, 3), (1, 1), (2, 3), (3, 3), (5, 1)];
        q.add(&odd);
        // the one session with template 5 is itself: it counts as never seen before
        let v = q.judge(&q.common(true), &odd, true, None, None, &|_| None, &|t| if t == 5 { "five".into() } else { text(t) });
        assert_eq!(v.reason.as_deref(), Some("\"five\" never seen in a session before"));
    }
}
