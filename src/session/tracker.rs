//! Open sessions: a few counters each, closed when idle, too long, evicted or at the end of
//! input, then judged against the [`Profile`] (and, when learning, added to it).

use std::collections::HashMap;

use crate::detect::engine::Engine;
use crate::session::open::{Open, OpenSessions, Sweep};
use crate::session::profile::{Profile, SessionShape, SessionVerdict};
use crate::session::quiet::{Quiet, RECORDS, TIME};
use crate::session::waits::{bucket, long_wait, long_wait_censored, Waits};

#[derive(Clone, Debug, PartialEq)]
pub struct SessionConfig {
    /// A session with no record for this many seconds of record time is closed whatever was
    /// learned (records that carry a time); …
    pub idle_secs: Option<i64>,
    /// …with no record for this many records (records without a time, or no `idle_secs`).
    pub idle_records: u64,
    /// Close sessions when they are over as learned (an ending event came, or quiet for longer
    /// than nearly every session was after the event it is at: [`crate::session::quiet`]), the
    /// idleness above as a cap; off: by idleness alone.
    pub learned_close: bool,
    /// A session that reaches this many records of the stream since its first is closed at once,
    /// whatever comes (0 = no limit).
    pub max_records: u64,
    /// Open sessions at most; past it the least recently seen are closed and judged.
    pub max_sessions: usize,
    /// Report normal sessions too (by default only anomalous ones go out).
    pub report_normal: bool,
}

impl Default for SessionConfig {
    /// Closed when over as learned, a day of quiet the cap.
    fn default() -> Self {
        SessionConfig { idle_secs: Some(LEARNED_IDLE_SECS), idle_records: 10_000, learned_close: true, max_records: 0, max_sessions: 100_000, report_normal: false }
    }
}

impl SessionConfig {
    /// By idleness alone (`--session-close idle`), as before sessions closed when over: 30 s.
    pub fn idle() -> Self {
        SessionConfig { idle_secs: Some(IDLE_SECS), learned_close: false, ..SessionConfig::default() }
    }
}

/// The cap on a session's quiet with `learned_close` (the default): a day of record time
/// (sessions close when they are over, as learned, long before: the cap is for those that
/// never say).
pub const LEARNED_IDLE_SECS: i64 = 86_400;

/// The idleness that closes a session by default when closing by idleness alone.
pub const IDLE_SECS: i64 = 30;

/// The idleness `--session-idle` / `session_idle` means when not given: `learned` a cap of
/// [`LEARNED_IDLE_SECS`], `idle` [`IDLE_SECS`] (records without a time: 10 000 either way).
pub fn default_idle(learned_close: bool) -> (Option<i64>, u64) {
    (Some(if learned_close { LEARNED_IDLE_SECS } else { IDLE_SECS }), 10_000)
}

/// A session closed by what was learned is remembered (for a continuation) until it has been
/// quiet this many times its event's limit (as it is then), or the cap; one at its ending event
/// until the next sweep.
const REMEMBER: u64 = 4;


/// An event had by at most this share of the sessions a stream opened is rare there too.
const RARE_HERE: f64 = 0.02;

/// Verdicts of a batch by (counts, bit length of the quiet).
type Judged<'a> = HashMap<SessionShape<'a>, SessionVerdict, foldhash::fast::RandomState>;

/// How a batch of sessions closes.
#[derive(Clone, Copy, PartialEq)]
enum Closing {
    /// Idle past the cap or long enough: they ended.
    Ended,
    /// Over as learned (an ending event, or quiet past what follows their event): ended, and
    /// remembered a while (a continuation is the same session, judged again as a whole).
    Finished,
    /// Evicted: they may still have been under way.
    CutShort,
    /// Still open, judged as if the input ended now (censored waits, cut short), not closed:
    /// a missing event (its learned wait is over) or a rare one is said; a broken count is not
    /// (counts may still change).
    Provisional,
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
    /// The host's clock when the input went quiet: the records counted then, the record time
    /// then, and the wall time (see [`Tracker::tick_wall`]).
    quiet_clock: Option<(u64, Option<i64>, std::time::Instant)>,
    closed: Vec<ClosedSession>,
    next_sweep: u64,
    /// Gaps between records of a session in this stream (its pace, learned even when frozen: a
    /// baseline from a sparser file says nothing of how quiet sessions go here).
    pace: Profile,
    /// Per template: the records a session waited before it first came (log₂ buckets), in this
    /// stream — how long a session may be quiet and still expect it (a deletion hours later).
    waits: Waits,
    /// When sessions are over: ending events, the quiet after each event.
    quiet: Quiet,
    /// Sessions closed by what was learned, kept until a continuation is unlikely.
    dormant: OpenSessions,
    /// Sessions this stream opened, and per template number how many of them had it so far
    /// (open ones too): an event is only said to be as good as never seen when it is rare in
    /// this stream as well as in the profile (a live profile holds the sessions that ended
    /// first, not a fair sample).
    opened: u64,
    had: Vec<u32>,
    /// The events nearly every session this stream opened has had so far (open ones counted
    /// as they are: a lower bound of the share), as [`Profile::common`] gives them, worked out
    /// at each sweep: what a session that ended is missing while the profile holds only the
    /// sessions that ended first (the short ones, in a stream whose sessions last for hours).
    stream_common: Vec<(u32, f64, f64)>,
    /// Sessions forgotten after closing by what was learned: a few bytes each, to the cap.
    forgotten: crate::session::forgotten::Forgotten,
    /// Sessions closed so far, and how many were anomalous.
    pub total_closed: u64,
    pub total_anomalous: u64,
    /// The id hash of the last record's session, when it had one.
    last_session: Option<u64>,
    /// The last record was the one that got its session judged anomalous (an event as good as
    /// never seen): it goes out before the verdict, as every record of the session before it.
    last_said: bool,
}

/// Characters of a session id kept.
const MAX_ID: usize = 256;

/// How often (in records) idle and overlong sessions are looked for, at least; with many open
/// sessions, every as many records as are open (a pass reads each: one slot per record).
const SWEEP_EVERY: u64 = 1024;

impl Tracker {
    pub fn new(mut config: SessionConfig, profile: Profile) -> Tracker {
        config.max_sessions = config.max_sessions.clamp(1, crate::session::open::MAX_OPEN);
        // what the baseline knows of how sessions end holds from the first record
        let mut quiet = Quiet::default();
        for t in profile.quiet_after.keys().chain(profile.ended_with.keys()) {
            quiet.know(*t);
        }
        quiet.update(&profile);
        Tracker {
            config,
            open: OpenSessions::default(),
            profile,
            learning: true,
            records: 0,
            now_time: None,
            quiet_clock: None,
            closed: Vec::new(),
            next_sweep: SWEEP_EVERY,
            pace: Profile::default(),
            waits: Waits::default(),
            quiet,
            dormant: OpenSessions::default(),
            opened: 0,
            had: Vec::new(),
            stream_common: Vec::new(),
            forgotten: Default::default(),
            total_closed: 0,
            total_anomalous: 0,
            last_session: None,
            last_said: false,
        }
    }

    pub fn set_learning(&mut self, on: bool) {
        if on && !self.learning {
            self.quiet.skip_unhanded();
        }
        self.learning = on;
    }

    /// What has been learned, the waits of sessions still open included.
    pub fn profile(&mut self) -> &Profile {
        self.waits.hand_over(&mut self.profile);
        if self.learning {
            self.quiet.hand_over(&mut self.profile);
        }
        &self.profile
    }

    pub fn open_sessions(&self) -> usize {
        self.open.len()
    }

    /// Bytes the open and the remembered sessions hold (see [`OpenSessions::bytes`]).
    pub fn session_bytes(&self) -> usize {
        self.open.bytes() + self.dormant.bytes() + self.forgotten.bytes()
    }

    /// Sessions closed by what was learned and still remembered (for a continuation).
    pub fn remembered_sessions(&self) -> usize {
        self.dormant.len()
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
        self.last_said = false;
        if let Some(id) = id {
            self.session_record(id, template, line, time, engine);
        }
        if self.records >= self.next_sweep {
            self.sweep(engine);
            // a sweep reads every open session: spaced so that it costs O(1) per record
            self.next_sweep = self.records + SWEEP_EVERY.max(self.open.len() as u64);
        }
    }

    /// One record of session `id`: opens it (or takes it back, when it closed a moment ago:
    /// a continuation), counts it, and closes it when this record ends it.
    fn session_record(&mut self, id: &str, template: u32, line: u64, time: Option<i64>, engine: &Engine) {
        let now = self.records;
        let timed = self.config.idle_secs.is_some();
        let slot = match self.open.find(id) {
            Ok(i) => Some(i),
            Err(hash) => {
                let back = if self.dormant.is_empty() { None } else { self.dormant.remove(id) };
                if self.open.len() >= self.config.max_sessions {
                    self.evict(engine);
                }
                match back {
                    Some(mut s) => {
                        s.reopened = true;
                        Some(self.open.insert(s))
                    }
                    None => {
                        self.open.open(hash, id, template, now, line, time);
                        let late = if self.forgotten.is_empty() { None } else { self.forgotten.take(id) };
                        match late {
                            Some(was) => {
                                // a continuation of one forgotten: its quiet teaches the limit of
                                // the event it was at; the rest of it is no session of its own
                                // (counted and judged when it closed)
                                let (unit, quiet) = match (timed, time, was.last_time) {
                                    (true, Some(t), Some(last)) => (TIME, t.saturating_sub(last).max(0) as u64),
                                    _ => (RECORDS, now - was.last_record),
                                };
                                self.quiet.add_gap(was.last_template, unit, quiet);
                                let s = self.open.at(self.open.len() - 1);
                                s.reopened = true;
                                s.flagged = true;
                            }
                            None => self.opened += 1,
                        }
                        None
                    }
                }
            }
        };
        let (i, first_of_its_kind) = match slot {
            None => {
                // what hold_back_last finds this record's session by
                self.last_session = Some(self.open.at(self.open.len() - 1).key_hash());
                (self.open.len() - 1, true)
            }
            Some(i) => {
                let s = self.open.at(i);
                self.last_session = Some(s.key_hash());
                let gap = now - s.last_record;
                if self.config.learned_close {
                    // the quiet after the event it was at, before this record
                    let (unit, quiet) = match (timed, time, s.last_time) {
                        (true, Some(t), Some(last)) => (TIME, t.saturating_sub(last).max(0) as u64),
                        _ => (RECORDS, gap),
                    };
                    self.quiet.add_gap(s.last_template, unit, quiet);
                }
                s.last_template = template;
                s.last_record = now;
                s.judged_quiet = false;
                s.last_time = time.or(s.last_time);
                s.last_line = line;
                s.lines += 1;
                let first_of_its_kind = s.count(template);
                let max = self.config.max_records;
                if max > 0 && now - s.first_record + 1 >= max {
                    // this record makes it as long as a session may be: it closes now
                    let s = self.open.take(i);
                    self.close_batch(vec![s], Closing::Ended, engine);
                    return;
                }
                if self.learning {
                    self.profile.add_gap(gap);
                }
                self.pace.add_gap(gap);
                if first_of_its_kind {
                    self.waits.add(template, gap, self.learning, &mut self.profile);
                }
                (i, first_of_its_kind)
            }
        };
        if first_of_its_kind && self.config.learned_close {
            let t = template as usize;
            if t >= self.had.len() && t < crate::session::template_map::MAX_TEMPLATE as usize {
                self.had.resize(t + 1, 0);
            }
            let had = self.had.get_mut(t).map_or(0, |n| {
                *n += 1;
                *n
            });
            // rare in the profile, and among this stream's sessions (itself left out)
            let rare_here = self.opened >= crate::session::profile::MIN_SESSIONS && had.saturating_sub(1) as f64 <= RARE_HERE * self.opened as f64;
            if rare_here && self.profile.is_rare(template) && !self.open.at(i).flagged {
                self.flag_now(i, template, engine);
            }
        }
        if self.config.learned_close && self.quiet.is_ending(template) {
            // the event sessions end with: over now
            let s = self.open.take(i);
            self.close_batch(vec![s], Closing::Finished, engine);
        }
    }

    /// Session `i` has an event (almost) no normal session has: that is certain now, said now
    /// (the session stays open; its close says nothing more of it).
    fn flag_now(&mut self, i: usize, template: u32, engine: &Engine) {
        let text_of = |t: u32| engine.template_text(t).to_string();
        let Some((score, why)) = self.profile.rare(template, 0, &text_of) else { return };
        let s = self.open.at(i);
        s.flagged = true;
        self.last_said = true;
        self.total_anomalous += 1;
        let verdict = SessionVerdict { anomaly: true, score: score.min(1.0) as f32, reason: Some(why) };
        self.closed.push(ClosedSession { id: s.id(), first_line: s.first_line, last_line: s.last_line, lines: s.lines, held_back: s.held_back, verdict });
    }

    /// The clock moves with no record (a host's timer while its input is quiet): sessions
    /// over by now, as learned or past the cap, close (see [`Tracker::take_closed`]). `time`:
    /// the record time it is now, when records carry one.
    pub fn tick(&mut self, time: Option<i64>, engine: &Engine) {
        if let Some(t) = time {
            self.now_time = Some(self.now_time.map_or(t, |n| n.max(t)));
        }
        self.sweep(engine);
    }

    /// The input is quiet and the host's clock says `wall`: record time moves on from the last
    /// record's by the wall time since the input went quiet (the first call after a record
    /// starts that clock), and the sessions over by then close. A stream whose records carry no
    /// time has only its record count: nothing moves. Called by hosts while their input waits
    /// (`filter`, `serve`, an empty buffer through the C API); verdicts in [`Tracker::take_closed`].
    pub fn tick_wall(&mut self, wall: std::time::Instant, engine: &Engine) {
        let (_, time, since) = match self.quiet_clock {
            Some(c) if c.0 == self.records => c,
            _ => *self.quiet_clock.insert((self.records, self.now_time, wall)),
        };
        let quiet = wall.saturating_duration_since(since).as_secs() as i64;
        if let Some(t) = time.filter(|_| quiet > 0) {
            self.tick(Some(t.saturating_add(quiet)), engine);
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

    /// Whether session `id` is open (not closed, not yet seen, or forgotten).
    pub fn is_open(&self, id: &str) -> bool {
        self.open.find(id).is_ok()
    }

    /// Whether the last record got its session judged anomalous (its verdict is among those
    /// closed now, after it).
    pub fn last_said(&self) -> bool {
        self.last_said
    }

    /// Whether the last record's session was judged anomalous while still open.
    pub fn last_flagged(&mut self) -> bool {
        let records = self.records;
        self.last_session.and_then(|h| self.open.find_last(h, records)).is_some_and(|s| s.flagged)
    }

    /// Closes the sessions that are over (quiet past the limit learned for the event they are
    /// at), idle past the cap or open for too long, and forgets the remembered ones a
    /// continuation is no longer expected for.
    fn sweep(&mut self, engine: &Engine) {
        let now = self.records;
        let (idle, max) = (self.config.idle_records, self.config.max_records);
        let (idle_secs, now_time) = (self.config.idle_secs, self.now_time);
        let quiet_of = |s: &Open| match (idle_secs, now_time, s.last_time) {
            (Some(_), Some(t), Some(last)) => (TIME, t.saturating_sub(last).max(0) as u64),
            _ => (RECORDS, now - s.last_record),
        };
        let capped = |s: &Open| {
            let idle = match (idle_secs, now_time, s.last_time) {
                (Some(secs), Some(t), Some(last)) => t - last > secs,
                _ => now - s.last_record > idle,
            };
            idle || (max > 0 && now - s.first_record >= max)
        };
        let learned = self.config.learned_close;
        // waiting rather than working: quiet for longer than sessions go quiet between records
        let waiting = self.pace.long_gap().or_else(|| self.profile.long_gap()).filter(|_| learned).unwrap_or(u64::MAX);
        // one pass: what is over is taken out, the rest counted by how long it has been quiet
        // at its event (for the limits of the next sweep), and those newly waiting noted
        // the cap by unit: compared with `quiet_of`'s quiet, exactly `capped` (one reading of
        // the quiet per session for both)
        let caps = [idle_secs.map_or(u64::MAX, |secs| secs.max(0) as u64), idle];
        let quiet = &mut self.quiet;
        let (done, due) = self.open.take_or_note(|s| {
            let (unit, q) = quiet_of(s);
            if q > caps[unit] || (max > 0 && now - s.first_record >= max) {
                return Sweep::Take;
            }
            if learned {
                if quiet.over_or_still(s.last_template, unit, q) {
                    return Sweep::Take;
                }
                if !s.flagged && !s.judged_quiet && now - s.last_record > waiting {
                    return Sweep::Note;
                }
            }
            Sweep::Keep
        });
        if learned {
            self.quiet.update(&self.profile);
            self.update_stream_common();
            self.judge_waiting(&due, engine);
        }
        let (ended, finished): (Vec<Open>, Vec<Open>) = done.into_iter().partition(|s| capped(s));
        self.close_batch(ended, Closing::Ended, engine);
        self.close_batch(finished, Closing::Finished, engine);
        if !self.dormant.is_empty() {
            let quiet = &self.quiet;
            let forget = self.dormant.take_if(|s| {
                let (unit, q) = quiet_of(s);
                // closed by its ending event: nothing is expected after it; closed by a limit
                // that has since grown past any: kept to the cap (a continuation is likely)
                capped(s) || quiet.is_ending(s.last_template) || q >= quiet.limit(s.last_template, unit).saturating_mul(REMEMBER)
            });
            self.learn_ended(forget);
        }
        self.forgotten.expire(|last_time, last_record| match (idle_secs, now_time, last_time) {
            (Some(secs), Some(t), Some(last)) => t - last > secs,
            _ => now - last_record > idle,
        });
    }

    /// See [`Tracker::stream_common`].
    fn update_stream_common(&mut self) {
        self.stream_common.clear();
        if !self.learning || self.opened < crate::session::profile::MIN_SESSIONS {
            return;
        }
        let n = self.opened as f64;
        for (t, &had) in self.had.iter().enumerate() {
            let p = had as f64 / n;
            if p >= crate::session::profile::ALWAYS {
                self.stream_common.push((t as u32, p.min(1.0), self.profile.mean_position(t as u32)));
            }
        }
    }

    /// Remembered sessions that ended for good (judged and learned already): their last
    /// events are ones sessions end with.
    fn learn_ended(&mut self, sessions: Vec<Open>) {
        for s in &sessions {
            self.quiet.add_ended(s.last_template);
            self.forgotten.forget(s, self.config.max_sessions);
        }
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
        let remembered = self.dormant.take_all();
        self.learn_ended(remembered);
        let all = self.open.take_all();
        self.close_batch(all, Closing::EndOfInput, engine);
    }

    /// Judges sessions taken out of the open map, as one batch: all are learned first (when
    /// learning), then each is judged with itself left out of the figures, oldest first.
    fn close_batch(&mut self, sessions: Vec<Open>, how: Closing, engine: &Engine) {
        if sessions.is_empty() {
            return;
        }
        let said = self.judge_batch(&sessions.iter().collect::<Vec<_>>(), how, engine);
        if how == Closing::Finished {
            for (mut s, said) in sessions.into_iter().zip(said) {
                s.flagged |= said;
                if self.dormant.len() >= self.config.max_sessions {
                    // the least recently seen tenth is forgotten: ended for good
                    let n = (self.dormant.len() / 10).max(1);
                    let forgotten = self.dormant.take_least_recent(n);
                    self.learn_ended(forgotten);
                }
                self.dormant.insert(s);
            }
        }
    }

    /// The open sessions that have gone quiet for longer than sessions go quiet between their
    /// records (they are waiting, not working), once per quiet spell: judged as if the input
    /// ended now; those missing an event past its learned wait, or one they went past, are
    /// said now (and not again).
    fn judge_waiting(&mut self, due: &[u32], engine: &Engine) {
        if due.is_empty() {
            return;
        }
        let mut open = std::mem::take(&mut self.open);
        let waiting: Vec<&Open> = due.iter().map(|&i| &open.slots()[i as usize]).collect();
        let said = self.judge_batch(&waiting, Closing::Provisional, engine);
        for (&i, said) in due.iter().zip(said) {
            let s = open.at(i as usize);
            s.judged_quiet = true;
            s.flagged |= said;
        }
        self.open = open;
    }

    /// Judges a batch (see [`Tracker::close_batch`]): which sessions were said anomalous here.
    fn judge_batch(&mut self, sessions: &[&Open], how: Closing, engine: &Engine) -> Vec<bool> {
        let now = self.records;
        let provisional = how == Closing::Provisional;
        let end_of_input = matches!(how, Closing::EndOfInput | Closing::Provisional);
        // (a continuation is learned again, whole: rare when the quiet learned is right)
        let learn_now = self.learning && !provisional;
        if how == Closing::Ended {
            for s in sessions {
                self.quiet.add_ended(s.last_template);
            }
        }
        // a session cut short rather than ended: how long it had been quiet
        let quiet = |s: &Open| matches!(how, Closing::CutShort | Closing::EndOfInput | Closing::Provisional).then(|| now - s.last_record);
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
                for s in sessions {
                    if s.counts.iter().all(|c| c.0 != t) {
                        h[bucket(quiet(s).unwrap_or(0))] += 1;
                    }
                }
            }
        }
        self.waits.hand_over(&mut self.profile);
        // sessions still open are judged against the profile as it is (not in it)
        let in_profile = learn_now;
        if in_profile {
            self.profile.add_all(order.iter().map(|&(_, i)| sessions[i as usize].counts.as_slice()));
        }
        let text_of = |t: u32| engine.template_text(t).to_string();
        let mut common = self.profile.common(in_profile);
        // while the profile knows too few (in a live stream whose sessions last, few have
        // ended), the stream's sessions judge what is missing
        let stream = if self.stream_common.is_empty() { 0 } else { self.opened };
        {
            // missing what nearly every session of the stream has had, closed or not
            for &c in &self.stream_common {
                if !common.iter().any(|k| k.0 == c.0) {
                    common.push(c);
                }
            }
            common.sort_unstable_by_key(|&(t, _, _)| t);
        }
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
        // the sessions reported as anomalous here (remembered as such when finished)
        let mut said = vec![false; sessions.len()];
        for (_, i) in order {
            let s = &sessions[i as usize];
            if provisional && s.flagged {
                continue;
            }
            // the bit length of the quiet, 1 more (0: not quiet, at its close)
            let key = SessionShape { counts: s.counts.as_slice(), with: quiet(s).map_or(0, |q| bits(q) as u64 + 1) };
            let verdict = judged.entry(key).or_insert_with(|| self.profile.judge_for(&common, &s.counts, in_profile, quiet(s), long_gap, &wait_for, &text_of, !provisional, stream)).clone();
            // a count that breaks an invariant ("3 × … but 2 × …") may still even out: not said
            if provisional && verdict.reason.as_deref().is_none_or(|r| r.starts_with(|c: char| c.is_ascii_digit())) {
                continue;
            }
            // a continuation was counted when it first closed, and an anomaly said once
            self.total_closed += !(s.reopened || provisional) as u64;
            let new_anomaly = verdict.anomaly && !s.flagged;
            self.total_anomalous += new_anomaly as u64;
            said[i as usize] = new_anomaly;
            if new_anomaly || (self.config.report_normal && !verdict.anomaly && !s.reopened) {
                self.closed.push(ClosedSession { id: s.id(), first_line: s.first_line, last_line: s.last_line, lines: s.lines, held_back: s.held_back, verdict });
            }
        }
        said
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
    use crate::session::quiet::TIME;

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

    /// 200 sessions learned: step 0, 1 s later step 1, 1 s later step 2, which ends them.
    fn three_steps_learned() -> Profile {
        let mut p = Profile::default();
        for _ in 0..200 {
            p.add(&[(0, 1), (1, 1), (2, 1)]);
        }
        for t in [0, 1] {
            p.add_quiet_after(t, TIME * 64 + bucket(1), 200);
        }
        p.add_ended(2, 200);
        p
    }

    /// The verdicts out so far, as (id, anomaly).
    fn verdicts(t: &mut Tracker) -> Vec<(String, bool)> {
        let mut closed = Vec::new();
        t.take_closed(&mut closed);
        closed.into_iter().map(|c| (c.id, c.verdict.anomaly)).collect()
    }

    #[test]
    fn a_session_that_reaches_its_learned_last_event_closes_at_once() {
        let e = Engine::new(crate::detect::EngineConfig::default());
        let mut t = tracker(SessionConfig { learned_close: true, ..SessionConfig::default() });
        t.profile = three_steps_learned();
        t = Tracker::new(t.config.clone(), t.profile.clone());
        t.record(Some("a"), 0, 1, Some(1_000), &e);
        t.record(Some("a"), 1, 2, Some(1_001), &e);
        assert!(verdicts(&mut t).is_empty(), "under way");
        assert_eq!(t.open_sessions(), 1);
        t.record(Some("a"), 2, 3, Some(1_002), &e);
        assert_eq!(verdicts(&mut t), [("a".to_string(), false)], "closed by the record of its last event, normal");
        assert_eq!(t.open_sessions(), 0);
        // learned from the stream too: sessions that ended (here, by the cap) with event 9
        let mut t = tracker(SessionConfig { idle_secs: None, idle_records: 50, learned_close: true, ..SessionConfig::default() });
        let mut n = 0;
        for i in 0..60 {
            for step in [7, 8, 9] {
                n += 1;
                t.record(Some(&format!("s{i}")), step, n, None, &e);
            }
            for _ in 0..100 {
                n += 1;
                t.record(None, 0, n, None, &e);
            }
        }
        verdicts(&mut t);
        t.record(Some("b"), 7, n + 1, None, &e);
        t.record(Some("b"), 8, n + 2, None, &e);
        t.record(Some("b"), 9, n + 3, None, &e);
        assert_eq!(verdicts(&mut t), [("b".to_string(), false)]);
    }

    #[test]
    fn a_session_stuck_before_its_last_event_is_flagged_after_the_learned_wait() {
        let e = Engine::new(crate::detect::EngineConfig::default());
        // records 100 a second; a cap of an hour
        let run = |learned_close: bool| {
            let config = SessionConfig { idle_secs: Some(3_600), learned_close, report_normal: true, ..SessionConfig::default() };
            let mut t = Tracker::new(config, three_steps_learned());
            t.set_learning(false);
            t.record(Some("stuck"), 0, 1, Some(1_000), &e);
            t.record(Some("stuck"), 1, 2, Some(1_001), &e);
            for n in 0..100 * 600u64 {
                t.record(None, 0, n + 3, Some(1_001 + n as i64 / 100), &e);
                if let Some(v) = verdicts(&mut t).first() {
                    return (v.clone(), Some(n / 100));
                }
            }
            t.close_all(&e);
            (verdicts(&mut t)[0].clone(), None)
        };
        // step 1 is followed within a second; quiet past twice the bucket's bound (4 s), the
        // session has ended without step 2: flagged at the next sweep (every ≈ 10 s here)
        let (verdict, after) = run(true);
        assert_eq!(verdict, ("stuck".to_string(), true));
        let after = after.expect("flagged while the stream runs");
        assert!((4..=15).contains(&after), "after {after} s of quiet");
        // by idleness alone it waits for the cap, or here the end of input
        assert_eq!(run(false).1, None);
    }

    #[test]
    fn a_quiet_input_closes_a_stuck_session_on_the_hosts_clock() {
        use std::time::{Duration, Instant};
        let e = Engine::new(crate::detect::EngineConfig::default());
        let config = SessionConfig { idle_secs: Some(3_600), learned_close: true, report_normal: true, ..SessionConfig::default() };
        let mut t = Tracker::new(config, three_steps_learned());
        t.set_learning(false);
        t.record(Some("stuck"), 0, 1, Some(1_000), &e);
        t.record(Some("stuck"), 1, 2, Some(1_001), &e);
        // no record comes again: only the host's clock moves
        let start = Instant::now();
        t.tick_wall(start, &e);
        t.tick_wall(start + Duration::from_secs(2), &e);
        assert!(verdicts(&mut t).is_empty(), "2 s after step 1: still within what sessions took");
        t.tick_wall(start + Duration::from_secs(30), &e);
        assert_eq!(verdicts(&mut t), [("stuck".to_string(), true)], "quiet past the learned wait: ended without step 2");
        assert_eq!(t.open_sessions(), 0);
        // a record restarts the quiet clock from its own time
        t.record(Some("next"), 0, 3, Some(1_040), &e);
        let later = start + Duration::from_secs(100);
        t.tick_wall(later, &e);
        t.tick_wall(later + Duration::from_secs(1), &e);
        assert!(verdicts(&mut t).is_empty(), "1 s after its record");
        // records without a time: the clock has nothing to move
        let mut t = tracker(SessionConfig { idle_secs: Some(30), idle_records: 10, ..SessionConfig::idle() });
        t.record(Some("untimed"), 0, 1, None, &e);
        t.tick_wall(start, &e);
        t.tick_wall(start + Duration::from_secs(3_600), &e);
        assert!(verdicts(&mut t).is_empty());
        // by idleness alone: closed once the quiet passes the idleness
        let mut t = tracker(SessionConfig::idle());
        t.record(Some("idle"), 0, 1, Some(5_000), &e);
        t.tick_wall(start, &e);
        t.tick_wall(start + Duration::from_secs(20), &e);
        assert!(verdicts(&mut t).is_empty(), "20 s of a 30 s idleness");
        t.tick_wall(start + Duration::from_secs(31), &e);
        assert_eq!(verdicts(&mut t).len(), 1);
    }

    #[test]
    fn a_late_continuation_of_a_closed_session_is_not_a_second_anomaly() {
        let e = Engine::new(crate::detect::EngineConfig::default());
        let config = SessionConfig { idle_secs: Some(3_600), learned_close: true, ..SessionConfig::default() };
        let mut t = Tracker::new(config, three_steps_learned());
        t.set_learning(false);
        t.record(Some("late"), 0, 1, Some(1_000), &e);
        t.record(Some("late"), 1, 2, Some(1_001), &e);
        let mut n = 2;
        let mut tick = |t: &mut Tracker, secs: i64| {
            for k in 0..secs * 100 {
                n += 1;
                t.record(None, 0, n, Some(1_001 + k / 100), &e);
            }
        };
        tick(&mut t, 20);
        assert_eq!(verdicts(&mut t), [("late".to_string(), true)], "missing step 2, once quiet past the wait");
        assert_eq!(t.remembered_sessions(), 1);
        // step 2 comes after all, 20 s late: the same session, whole now and normal
        t.record(Some("late"), 2, n + 1, Some(1_021), &e);
        t.close_all(&e);
        assert!(verdicts(&mut t).is_empty(), "no second anomaly, no session that lacks steps 0 and 1");
        assert_eq!((t.total_closed, t.total_anomalous), (1, 1));
        // forgotten (past 4 × the limit) but within the cap (100 s here): still a continuation
        let mut t = Tracker::new(SessionConfig { idle_secs: Some(100), learned_close: true, ..SessionConfig::default() }, three_steps_learned());
        t.set_learning(false);
        let mut n = 0;
        let mut run = |t: &mut Tracker, id: Option<&str>, step: u32, from: i64, secs: i64| {
            n += 1;
            t.record(id, step, n, Some(from), &e);
            for k in 0..secs * 100 {
                n += 1;
                t.record(None, 0, n, Some(from + k / 100), &e);
            }
        };
        run(&mut t, Some("late"), 0, 1_000, 1);
        run(&mut t, Some("late"), 1, 1_001, 60);
        assert_eq!(t.remembered_sessions(), 0, "past 4 × the limit");
        run(&mut t, Some("late"), 2, 1_061, 0);
        assert_eq!((t.total_closed, t.total_anomalous), (1, 1), "not a session that lacks steps 0 and 1");
        // past the cap: a session of its own
        run(&mut t, Some("later"), 0, 1_100, 1);
        run(&mut t, Some("later"), 1, 1_101, 300);
        run(&mut t, Some("later"), 2, 1_401, 0);
        t.close_all(&e);
        assert_eq!(t.total_anomalous, 3, "a lone step 2 past the cap is a session of its own");
    }

    #[test]
    fn held_back_records_are_counted_by_their_session_and_a_continuation_keeps_the_count() {
        let e = Engine::new(crate::detect::EngineConfig::default());
        let config = SessionConfig { idle_secs: Some(3_600), learned_close: true, ..SessionConfig::default() };
        let mut t = Tracker::new(config, three_steps_learned());
        t.set_learning(false);
        let held = |t: &mut Tracker, id: &str| t.open.find_mut(id).ok().map(|s| s.held_back);
        t.record(Some("a"), 0, 1, Some(1_000), &e);
        t.hold_back_last();
        t.record(Some("b"), 0, 2, Some(1_000), &e);
        t.record(Some("a"), 1, 3, Some(1_001), &e);
        t.hold_back_last();
        t.record(None, 0, 4, Some(1_001), &e);
        t.hold_back_last(); // a record of no session: nobody's
        assert_eq!((held(&mut t, "a"), held(&mut t, "b")), (Some(2), Some(0)));
        // quiet past the wait for step 2: "a" is judged (with its count) and remembered
        let mut n = 4;
        for k in 0..20 * 100 {
            n += 1;
            t.record(None, 0, n, Some(1_001 + k / 100), &e);
        }
        let mut closed = Vec::new();
        t.take_closed(&mut closed);
        let a = closed.iter().find(|c| c.id == "a").expect("a judged");
        assert_eq!((a.verdict.anomaly, a.held_back), (true, 2));
        assert!(t.remembered_sessions() >= 1 && held(&mut t, "a").is_none());
        // its continuation is the same session: the count goes on from 2
        t.record(Some("a"), 1, n + 1, Some(1_021), &e);
        t.hold_back_last();
        assert_eq!(held(&mut t, "a"), Some(3));
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
