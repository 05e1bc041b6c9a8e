//! Open sessions: a few counters each, closed when idle, too long, evicted or at the end of
//! input, then judged against the [`Profile`] (and, when learning, added to it).

use std::collections::HashMap;

use crate::detect::engine::Engine;
use crate::session::open::{Open, OpenSessions};
use crate::session::profile::{Profile, SessionVerdict};
use crate::session::waits::{bucket, long_wait, long_wait_censored, Waits};

#[derive(Clone, Debug, PartialEq)]
pub struct SessionConfig {
    /// A session with no record for this many seconds of record time is closed (records that
    /// carry a time); …
    pub idle_secs: Option<i64>,
    /// …with no record for this many records (records without a time, or no `idle_secs`).
    pub idle_records: u64,
    /// A session that reaches this many records of the stream since its first is closed at once,
    /// whatever comes (0 = no limit).
    pub max_records: u64,
    /// Open sessions at most; past it the least recently seen are closed and judged.
    pub max_sessions: usize,
    /// Report normal sessions too (by default only anomalous ones go out).
    pub report_normal: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig { idle_secs: Some(30), idle_records: 10_000, max_records: 0, max_sessions: 100_000, report_normal: false }
    }
}

/// Verdicts of a batch by (counts, bit length of the quiet).
type Judged<'a> = HashMap<(&'a [(u32, u32)], Option<u32>), SessionVerdict, foldhash::fast::RandomState>;

/// How a batch of sessions closes.
#[derive(Clone, Copy, PartialEq)]
enum Closing {
    /// Idle or long enough: they ended.
    Ended,
    /// Evicted: they may still have been under way.
    CutShort,
    /// The input ended: every session still open (cut short too; their waits are censored, see
    /// [`Tracker::close_all`]).
    EndOfInput,
}

/// A session that closed, with its verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct ClosedSession {
    pub id: String,
    pub first_line: u64,
    pub last_line: u64,
    pub lines: u64,
    /// Its records that volume reduction held back (0 when reduce is off).
    pub held_back: u64,
    pub verdict: SessionVerdict,
}

/// `30s`, `5m`, `2h`, `1d` → (Some(seconds), 10 000 records for records without a time);
/// a plain number → (None, that many records).
pub fn parse_idle(s: &str) -> Result<(Option<i64>, u64), String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return if n > 0 { Ok((None, n)) } else { Err("session idleness must be at least 1 record".into()) };
    }
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration (30s, 5m, 2h, 1d) or a number of records"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return Err(format!("`{s}`: the unit must be s, m, h or d")),
    };
    if secs < 1.0 {
        return Err(format!("`{s}` is shorter than a second"));
    }
    Ok((Some(secs as i64), 10_000))
}

pub struct Tracker {
    config: SessionConfig,
    open: OpenSessions,
    profile: Profile,
    /// Learn profiles from closing sessions (off with `--frozen`).
    learning: bool,
    records: u64,
    /// The latest record time seen.
    now_time: Option<i64>,
    closed: Vec<ClosedSession>,
    next_sweep: u64,
    /// Gaps between records of a session in this stream (its pace, learned even when frozen: a
    /// baseline from a sparser file says nothing of how quiet sessions go here).
    pace: Profile,
    /// Per template: the records a session waited before it first came (log₂ buckets), in this
    /// stream — how long a session may be quiet and still expect it (a deletion hours later).
    waits: Waits,
    /// Sessions closed so far, and how many were anomalous.
    pub total_closed: u64,
    pub total_anomalous: u64,
    /// The id hash of the last record's session, when it had one.
    last_session: Option<u64>,
}

/// Characters of a session id kept.
const MAX_ID: usize = 256;

/// How often (in records) idle and overlong sessions are looked for, at least; with many open
/// sessions, every half as many records as are open.
const SWEEP_EVERY: u64 = 1024;

impl Tracker {
    pub fn new(mut config: SessionConfig, profile: Profile) -> Tracker {
        config.max_sessions = config.max_sessions.clamp(1, crate::session::open::MAX_OPEN);
        Tracker { config, open: OpenSessions::default(), profile, learning: true, records: 0, now_time: None, closed: Vec::new(), next_sweep: SWEEP_EVERY, pace: Profile::default(), waits: Waits::default(), total_closed: 0, total_anomalous: 0, last_session: None }
    }

    pub fn set_learning(&mut self, on: bool) {
        self.learning = on;
    }

    /// What has been learned, the waits of sessions still open included.
    pub fn profile(&mut self) -> &Profile {
        self.waits.hand_over(&mut self.profile);
        &self.profile
    }

    pub fn open_sessions(&self) -> usize {
        self.open.len()
    }

    /// Every record passes here (with its session id, if it has one): the record clock advances
    /// and, now and then, idle sessions close.
    pub fn record(&mut self, id: Option<&str>, template: u32, line: u64, time: Option<i64>, engine: &Engine) {
        self.records += 1;
        // an id is a key, not a payload: a huge match is cut (memory per session stays bounded)
        let id = id.map(|i| match i.len() > MAX_ID {
            // no more characters than bytes: only a long one needs counting
            true => i.char_indices().nth(MAX_ID).map_or(i, |(cut, _)| &i[..cut]),
            false => i,
        });
        if let Some(t) = time {
            self.now_time = Some(self.now_time.map_or(t, |n| n.max(t)));
        }
        self.last_session = None;
        if let Some(id) = id {
            let now = self.records;
            let max = self.config.max_records;
            match self.open.find_mut(id) {
                Ok(s) => {
                    self.last_session = Some(s.key_hash());
                    let gap = now - s.last_record;
                    s.last_record = now;
                    s.last_time = time.or(s.last_time);
                    s.last_line = line;
                    s.lines += 1;
                    let first_of_its_kind = s.count(template);
                    if max > 0 && now - s.first_record + 1 >= max {
                        // this record makes it as long as a session may be: it closes now
                        let s = self.open.remove(id).into_iter().collect();
                        self.close_batch(s, Closing::Ended, engine);
                    } else {
                        if self.learning {
                            self.profile.add_gap(gap);
                        }
                        self.pace.add_gap(gap);
                        if first_of_its_kind {
                            self.waits.add(template, gap, self.learning, &mut self.profile);
                        }
                    }
                }
                Err(hash) => {
                    if self.open.len() >= self.config.max_sessions {
                        self.evict(engine);
                    }
                    self.open.open(hash, id, template, now, line, time);
                    self.last_session = Some(hash);
                }
            }
        }
        if self.records >= self.next_sweep {
            self.sweep(engine);
            // a sweep reads every open session: spaced so that it costs O(1) per record
            self.next_sweep = self.records + SWEEP_EVERY.max(self.open.len() as u64 / 2);
        }
    }

    /// The last record was held back by volume reduction: its session (still open) counts it.
    pub fn hold_back_last(&mut self) {
        if let Some(hash) = self.last_session.take() {
            if let Some(s) = self.open.find_last(hash, self.records) {
                s.held_back += 1;
            }
        }
    }

    /// Closes the sessions idle for too long or open for too long.
    fn sweep(&mut self, engine: &Engine) {
        let now = self.records;
        let (idle, max) = (self.config.idle_records, self.config.max_records);
        let (idle_secs, now_time) = (self.config.idle_secs, self.now_time);
        let quiet = |s: &Open| match (idle_secs, now_time, s.last_time) {
            (Some(secs), Some(t), Some(last)) => t - last > secs,
            _ => now - s.last_record > idle,
        };
        let done = self.open.take_if(|s| quiet(s) || (max > 0 && now - s.first_record >= max));
        self.close_batch(done, Closing::Ended, engine);
    }

    /// Past `max_sessions`: the least recently seen tenth is closed (amortised: one scan for many).
    fn evict(&mut self, engine: &Engine) {
        let n = (self.open.len() / 10).max(1);
        let cut_short = self.open.take_least_recent(n);
        self.close_batch(cut_short, Closing::CutShort, engine);
    }

    /// End of input: every open session closes. One quiet for longer than sessions usually go
    /// quiet has ended; the others may be cut short (see [`Profile::judge`]).
    ///
    /// Waits are right-censored here: the sessions still waiting for an event when the input
    /// ends are evidence that waiting this long is usual, and the waits of the sessions that
    /// got it leave them out. Before judging, the open sessions that lack an event most
    /// sessions have are counted by how long they have been quiet, and the long wait for it is
    /// read from both (Kaplan–Meier; see [`long_wait_censored`]).
    pub fn close_all(&mut self, engine: &Engine) {
        let all = self.open.take_all();
        self.close_batch(all, Closing::EndOfInput, engine);
    }

    /// Judges sessions taken out of the open map, as one batch: all are learned first (when
    /// learning), then each is judged with itself left out of the figures, oldest first.
    fn close_batch(&mut self, sessions: Vec<Open>, how: Closing, engine: &Engine) {
        if sessions.is_empty() {
            return;
        }
        let now = self.records;
        let end_of_input = how == Closing::EndOfInput;
        // a session cut short rather than ended: how long it had been quiet
        let quiet = |s: &Open| (how != Closing::Ended).then(|| now - s.last_record);
        // oldest first; one record opens one session: first records are distinct, an unstable
        // sort is exact (of slot numbers: sessions are large to move)
        let mut order: Vec<(u64, u32)> = sessions.iter().enumerate().map(|(i, s)| (s.first_record, i as u32)).collect();
        order.sort_unstable();
        // the sessions still without an event nearly every session closed before had, by how
        // long they have been quiet: only at the end of input, where all of them are here (the
        // events are those of the profile before this batch, so that sessions do not vouch for
        // their own absences)
        let mut censored: HashMap<u32, [u32; 64], foldhash::fast::RandomState> = HashMap::default();
        if end_of_input {
            for (t, _, _) in self.profile.common(false) {
                let h = censored.entry(t).or_insert([0; 64]);
                for s in &sessions {
                    if s.counts.iter().all(|c| c.0 != t) {
                        h[bucket(quiet(s).unwrap_or(0))] += 1;
                    }
                }
            }
        }
        self.waits.hand_over(&mut self.profile);
        if self.learning {
            self.profile.add_all(order.iter().map(|&(_, i)| sessions[i as usize].counts.as_slice()));
        }
        let text_of = |t: u32| engine.template_text(t).to_string();
        let common = self.profile.common(self.learning);
        let (waits, profile, censored) = (&self.waits, &self.profile, &censored);
        // how long an event may take: as this stream has shown it, else as learned before
        // (the same answer for every session of the batch: worked out once per template)
        let known_waits = std::cell::RefCell::new(HashMap::<u32, Option<u64>, foldhash::fast::RandomState>::default());
        let wait_for = |t: u32| {
            *known_waits.borrow_mut().entry(t).or_insert_with(|| {
                let still_waiting = censored.get(&t);
                let read = |done: &[u32; 64]| match still_waiting {
                    Some(c) => long_wait_censored(done, c),
                    None => long_wait(done),
                };
                waits.seen(t).and_then(read).or_else(|| profile.waits_for(t).and_then(read))
            })
        };
        // how long sessions go quiet: in this stream when it has shown enough, else as learned
        let long_gap = self.pace.long_gap().or_else(|| self.profile.long_gap());
        // within a batch a verdict depends on the session's counts (in their order: it picks
        // which of two equal reasons is said) and on how long it was quiet, which is only
        // compared with powers of two (and one less: the bounds of the log₂ buckets, see
        // `waits::long_wait` and `Profile::long_gap`) — so on its bit length. Sessions that did
        // the same thing, most normal ones, are judged once.
        let bits = |q: u64| if q == u64::MAX { 65 } else { 64 - q.leading_zeros() };
        let mut judged = Judged::default();
        for (_, i) in order {
            let s = &sessions[i as usize];
            let key = (s.counts.as_slice(), quiet(s).map(bits));
            let verdict = match judged.get(&key) {
                Some(v) => v.clone(),
                None => {
                    let v = self.profile.judge(&common, &s.counts, self.learning, quiet(s), long_gap, &wait_for, &text_of);
                    judged.insert(key, v.clone());
                    v
                }
            };
            self.total_closed += 1;
            self.total_anomalous += verdict.anomaly as u64;
            if verdict.anomaly || self.config.report_normal {
                self.closed.push(ClosedSession { id: s.id(), first_line: s.first_line, last_line: s.last_line, lines: s.lines, held_back: s.held_back, verdict });
            }
        }
    }

    /// Sessions closed since the last call, oldest first.
    #[inline]
    pub fn take_closed(&mut self, out: &mut Vec<ClosedSession>) {
        out.clear();
        std::mem::swap(out, &mut self.closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(config: SessionConfig) -> Tracker {
        Tracker::new(SessionConfig { report_normal: true, ..config }, Profile::default())
    }

    #[test]
    fn a_session_closes_when_it_reaches_its_length_when_idle_and_at_the_end() {
        let e = Engine::new(crate::detect::EngineConfig::default());
        let mut closed = Vec::new();
        // length: closed by the record that makes it 3 records long, not later
        let mut t = tracker(SessionConfig { max_records: 3, idle_records: 1 << 30, idle_secs: None, ..SessionConfig::default() });
        t.record(Some("a"), 0, 1, None, &e);
        t.record(Some("a"), 1, 2, None, &e);
        t.take_closed(&mut closed);
        assert!(closed.is_empty());
        t.record(Some("a"), 2, 3, None, &e);
        t.take_closed(&mut closed);
        assert_eq!((closed.len(), closed[0].lines, closed[0].last_line), (1, 3, 3));
        // idle in records: closed at the first look after 10 quiet records
        let mut t = tracker(SessionConfig { idle_records: 10, idle_secs: None, ..SessionConfig::default() });
        t.record(Some("b"), 0, 1, None, &e);
        for n in 2..=SWEEP_EVERY + 1 {
            t.record(None, 0, n, None, &e);
        }
        t.take_closed(&mut closed);
        assert_eq!(closed.len(), 1, "judged at the sweep");
        // idle in record time: 30 s quiet closes it, records or not
        let mut t = tracker(SessionConfig { idle_secs: Some(30), idle_records: 1 << 30, ..SessionConfig::default() });
        t.record(Some("c"), 0, 1, Some(1_000), &e);
        for n in 2..=SWEEP_EVERY {
            t.record(None, 0, n, Some(1_000 + n as i64 / 100), &e);
        }
        t.take_closed(&mut closed);
        assert!(closed.is_empty(), "under 30 s of record time");
        for n in SWEEP_EVERY + 1..=3 * SWEEP_EVERY {
            t.record(None, 0, n, Some(1_031 + n as i64), &e);
        }
        t.take_closed(&mut closed);
        assert_eq!(closed.len(), 1);
        // the end: whatever is open
        t.record(Some("d"), 0, 4000, None, &e);
        t.close_all(&e);
        t.take_closed(&mut closed);
        assert_eq!(closed.len(), 1);
        assert_eq!(t.open_sessions(), 0);
    }

    #[test]
    fn at_the_end_a_step_many_open_sessions_still_wait_for_is_not_missing() {
        let e = Engine::new(crate::detect::EngineConfig::default());
        // learned: 200 sessions, step 0 then step 1 after 64..127 records
        let mut profile = Profile::default();
        for _ in 0..200 {
            profile.add(&[(0, 1), (1, 1)]);
            profile.add_wait(1, 100);
        }
        let verdicts = |waiting: usize| {
            let mut t = Tracker::new(SessionConfig { report_normal: true, idle_records: 1 << 40, idle_secs: None, ..SessionConfig::default() }, profile.clone());
            t.set_learning(false);
            for i in 0..waiting {
                t.record(Some(&format!("s{i}")), 0, i as u64 + 1, None, &e);
            }
            for n in 0..1000 {
                t.record(None, 0, waiting as u64 + n + 1, None, &e);
            }
            t.close_all(&e);
            let mut closed = Vec::new();
            t.take_closed(&mut closed);
            closed.iter().filter(|c| c.verdict.anomaly).count()
        };
        // quiet ~1000 records where the step came within 128: one such session is missing it…
        assert_eq!(verdicts(1), 1);
        // …a hundred at once, a third of all sessions seen, say that it takes that long
        assert_eq!(verdicts(100), 0);
    }

    #[test]
    fn the_bounds_quiet_is_compared_with_split_no_bit_length() {
        // sessions are judged once per bit length of their quiet: every bound a verdict compares
        // the quiet with must give the same answer for all quiets of one bit length
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        // a wait is compared as `quiet < wait`, a long gap as `quiet > gap`
        let (mut waits, mut gaps_seen) = (vec![u64::MAX], vec![u64::MAX]);
        for _ in 0..2000 {
            let (mut done, mut still, mut gaps) = ([0u32; 64], [0u32; 64], Profile::default());
            for _ in 0..(x % 400) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let b = (x % 64) as usize;
                done[b] += (x % 7) as u32;
                still[(x >> 8) as usize % 64] += (x % 3) as u32;
                gaps.add_gap(1u64 << b >> (x % 3));
            }
            waits.extend([long_wait(&done), long_wait_censored(&done, &still)].into_iter().flatten());
            gaps_seen.extend(gaps.long_gap());
        }
        assert!(waits.len() > 1000 && gaps_seen.len() > 300, "{} {}", waits.len(), gaps_seen.len());
        for k in 1..64 {
            let (lo, hi) = (1u64 << (k - 1), (1u64 << k) - 1);
            for &w in &waits {
                assert_eq!(lo < w, hi < w, "wait {w} splits the quiets of {k} bits");
            }
            for &g in &gaps_seen {
                assert_eq!(lo > g, hi > g, "long gap {g} splits the quiets of {k} bits");
            }
        }
    }

    #[test]
    fn past_max_sessions_the_least_recently_seen_are_judged() {
        let e = Engine::new(crate::detect::EngineConfig::default());
        let mut t = tracker(SessionConfig { max_sessions: 10, ..SessionConfig::default() });
        for i in 0..10u64 {
            t.record(Some(&format!("s{i}")), 0, i + 1, None, &e);
        }
        t.record(Some("s0"), 0, 11, None, &e); // s0 is now the most recent
        t.record(Some("new"), 0, 12, None, &e);
        let mut closed = Vec::new();
        t.take_closed(&mut closed);
        assert_eq!(closed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["s1"], "the least recently seen tenth");
        assert_eq!(t.open_sessions(), 10);
    }
}
