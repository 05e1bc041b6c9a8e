//! When a session is over, learned: per template, the quiet that followed it within sessions
//! (the gap to the session's next record: seconds of record time when records carry one, else
//! records), and how many sessions ended with it. A session whose last event is one sessions
//! end with (nearly nothing ever follows it) closes at once; one quiet for longer than nearly
//! every session was after the event it is at closes then — one idleness per event, not one
//! for all (an HDFS block is quiet for a second between its writes and for hours before its
//! deletion).
//!
//! Kept by template number in a dense table, as [`crate::session::waits`] is: one increment per
//! record. The limits are worked out at each sweep, from this stream's gaps (or the baseline's
//! until the stream has shown enough) and the sessions open at that event, quiet so far
//! (right-censored, as [`crate::session::waits::long_wait_censored`] reads them).

use crate::session::profile::Profile;
use crate::session::waits::{bucket, wait_censored_past};

/// Templates whose quiet is kept.
pub const MAX_QUIET: usize = 4096;
/// A quiet in seconds of record time…
pub const TIME: usize = 0;
/// …or in records.
pub const RECORDS: usize = 1;
/// Gaps after an event seen before its limit is read from them.
const MIN_GAPS: u64 = 20;
/// Sessions ended with an event before it can be an ending event.
const MIN_ENDED: u64 = 50;
/// An ending event: at most one session in this many went on after it.
const ENDING: u64 = 100;
/// A session closes when quiet this many times the quiet that 99.99% of the gaps after its event
/// stayed under (the log₂ bucket's bound: one bucket of slack for a rate that drifts)…
const MARGIN: u64 = 2;
/// …the share of gaps that may be longer. An event is followed by a record of its session many
/// times in a session (an HDFS block's three replicas) and by a long quiet at most once: 1%
/// of the gaps is several percent of the sessions.
const LEFT: f64 = 0.0001;

/// Sessions fewer than this still waiting past a bound do not keep it open (the session stuck
/// there would vouch for itself).
const LONE: f64 = 1.5;

/// No slot for this template.
const NONE: u32 = u32::MAX;

struct Slot {
    template: u32,
    /// This stream's gaps after the template, by unit, log₂ buckets.
    after: [[u32; 64]; 2],
    /// The part of `after` the profile already has.
    handed: [[u32; 64]; 2],
    /// Sessions of this stream that ended with it, and the part the profile has.
    ended: u64,
    ended_handed: u64,
    /// Open sessions at it at this sweep, by unit, by how long they have been quiet.
    still: [[u32; 64]; 2],
    touched: bool,
    /// Close a session at it when quiet at least this long, by unit (`u64::MAX`: not by what
    /// was learned; the cap alone).
    limit: [u64; 2],
}

/// The quiet after each of the first [`MAX_QUIET`] templates sessions had.
#[derive(Default)]
pub struct Quiet {
    /// Template number → slot (or [`NONE`]).
    slot_of: Vec<u32>,
    slots: Vec<Slot>,
    /// Slots with sessions counted in `still` this sweep.
    touched: Vec<u32>,
    /// Ending events, a bit per template number.
    ending: Vec<u64>,
}

impl Quiet {
    #[inline]
    fn slot(&mut self, template: u32) -> Option<usize> {
        match self.slot_of.get(template as usize) {
            Some(&i) if i != NONE => Some(i as usize),
            _ => self.new_slot(template),
        }
    }

    #[cold]
    fn new_slot(&mut self, template: u32) -> Option<usize> {
        let t = template as usize;
        if self.slots.len() >= MAX_QUIET {
            return None;
        }
        if t >= self.slot_of.len() {
            self.slot_of.resize(t + 1, NONE);
        }
        let i = self.slots.len();
        self.slot_of[t] = i as u32;
        self.slots.push(Slot { template, after: [[0; 64]; 2], handed: [[0; 64]; 2], ended: 0, ended_handed: 0, still: [[0; 64]; 2], touched: false, limit: [u64::MAX; 2] });
        Some(i)
    }

    /// Keeps `template` (one the baseline knows: its limits hold before this stream shows it).
    pub fn know(&mut self, template: u32) {
        self.slot(template);
    }

    /// A session was quiet `q` (in `unit`) after `template` before its next record.
    #[inline]
    pub fn add_gap(&mut self, template: u32, unit: usize, q: u64) {
        if let Some(i) = self.slot(template) {
            self.slots[i].after[unit][bucket(q)] += 1;
        }
    }

    /// A session ended (for good: not cut short) with `template` as its last event.
    pub fn add_ended(&mut self, template: u32) {
        if let Some(i) = self.slot(template) {
            self.slots[i].ended += 1;
        }
    }

    /// Whether sessions end with `template` (as learned at the last [`Quiet::update`]).
    #[inline]
    pub fn is_ending(&self, template: u32) -> bool {
        self.ending.get(template as usize / 64).is_some_and(|w| w >> (template % 64) & 1 == 1)
    }

    /// The quiet after `template` (in `unit`) from which a session at it has ended.
    #[inline]
    pub fn limit(&self, template: u32, unit: usize) -> u64 {
        match self.slot_of.get(template as usize) {
            Some(&i) if i != NONE => self.slots[i as usize].limit[unit],
            _ => u64::MAX,
        }
    }

    /// Whether a session at `template`, quiet `q` (in `unit`), has ended ([`Quiet::limit`]);
    /// if not, it is counted as by [`Quiet::add_still`] (one lookup for both).
    #[inline]
    pub fn over_or_still(&mut self, template: u32, unit: usize, q: u64) -> bool {
        let Some(i) = self.slot(template) else { return false };
        let slot = &mut self.slots[i];
        if q >= slot.limit[unit] {
            return true;
        }
        slot.still[unit][bucket(q)] += 1;
        if !slot.touched {
            slot.touched = true;
            self.touched.push(i as u32);
        }
        false
    }

    /// An open session at `template` has been quiet `q` (in `unit`) so far: read with the gaps
    /// at the next [`Quiet::update`].
    #[inline]
    pub fn add_still(&mut self, template: u32, unit: usize, q: u64) {
        if let Some(i) = self.slot(template) {
            let slot = &mut self.slots[i];
            slot.still[unit][bucket(q)] += 1;
            if !slot.touched {
                slot.touched = true;
                self.touched.push(i as u32);
            }
        }
    }

    /// Works out the limits and the ending events from the gaps seen (`baseline`'s when it has
    /// [`MIN_GAPS`] after an event, else this stream's once it has shown as many) and the open sessions counted since
    /// the last call.
    pub fn update(&mut self, baseline: &Profile) {
        for slot in &mut self.slots {
            let learned = baseline.quiet_after.get(&slot.template).filter(|h| h.len() == 128);
            let mut after_total = 0u64;
            for unit in [TIME, RECORDS] {
                let own: u64 = slot.after[unit].iter().map(|&n| n as u64).sum();
                // the baseline's, when it has them: it saw sessions to their ends, where a
                // stream's first gaps are the short ones (the long ones end later)
                let base: Option<[u32; 64]> = learned.and_then(|h| <[u32; 64]>::try_from(&h[unit * 64..unit * 64 + 64]).ok());
                let done = match base {
                    Some(b) if b.iter().map(|&n| n as u64).sum::<u64>() >= MIN_GAPS => Some(b),
                    _ if own >= MIN_GAPS => Some(slot.after[unit]),
                    _ => None,
                };
                after_total += done.map_or(0, |d| d.iter().map(|&n| n as u64).sum());
                slot.limit[unit] = done.and_then(|d| wait_censored_past(&d, &slot.still[unit], LEFT, LONE)).map_or(u64::MAX, |w| w.saturating_mul(MARGIN));
            }
            let ended = match slot.ended {
                n if n >= MIN_ENDED => n,
                _ => baseline.ended_with.get(&slot.template).copied().unwrap_or(0),
            };
            let t = slot.template as usize;
            let is_ending = ended >= MIN_ENDED && after_total * ENDING <= ended;
            if is_ending || t / 64 < self.ending.len() {
                if t / 64 >= self.ending.len() {
                    self.ending.resize(t / 64 + 1, 0);
                }
                let bit = 1u64 << (t % 64);
                self.ending[t / 64] = if is_ending { self.ending[t / 64] | bit } else { self.ending[t / 64] & !bit };
            }
        }
        for i in self.touched.drain(..) {
            let slot = &mut self.slots[i as usize];
            slot.still = [[0; 64]; 2];
            slot.touched = false;
        }
    }

    /// Gives the profile what this stream learned since the last call.
    pub fn hand_over(&mut self, profile: &mut Profile) {
        for slot in &mut self.slots {
            let new = slot.ended - slot.ended_handed;
            if new > 0 {
                profile.add_ended(slot.template, new);
                slot.ended_handed = slot.ended;
            }
            for unit in [TIME, RECORDS] {
                for b in 0..64 {
                    let n = slot.after[unit][b] - slot.handed[unit][b];
                    if n > 0 {
                        profile.add_quiet_after(slot.template, unit * 64 + b, n);
                    }
                }
                slot.handed[unit] = slot.after[unit];
            }
        }
    }

    /// What was seen so far is not for the profile (learning starts now).
    pub fn skip_unhanded(&mut self) {
        for slot in &mut self.slots {
            slot.handed = slot.after;
            slot.ended_handed = slot.ended;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_nothing_follows_ends_sessions_and_limits_follow_the_gaps() {
        let mut q = Quiet::default();
        // event 1: followed within 1..=3 s, 200 times; event 2: never followed, 60 sessions end there
        for g in 0..200 {
            q.add_gap(1, TIME, 1 + g % 3);
        }
        for _ in 0..60 {
            q.add_ended(2);
        }
        q.update(&Profile::default());
        assert!(q.is_ending(2) && !q.is_ending(1) && !q.is_ending(3));
        assert_eq!(q.limit(1, TIME), 4 * MARGIN, "past bucket 2..=3");
        assert_eq!(q.limit(1, RECORDS), u64::MAX, "nothing known in records");
        // many sessions at event 1 quiet for an hour: waiting that long is usual there
        for _ in 0..100 {
            q.add_still(1, TIME, 3600);
        }
        q.update(&Profile::default());
        assert_eq!(q.limit(1, TIME), u64::MAX);
        q.update(&Profile::default());
        assert_eq!(q.limit(1, TIME), 4 * MARGIN, "the sessions counted are those of one sweep");
        // handed to a profile, read back as a baseline by a stream that has seen nothing
        let mut p = Profile::default();
        q.hand_over(&mut p);
        q.hand_over(&mut p);
        assert_eq!(p.quiet_after[&1].iter().sum::<u32>(), 200, "handed once");
        assert_eq!(p.ended_with[&2], 60);
        let mut fresh = Quiet::default();
        fresh.add_still(1, TIME, 0);
        fresh.add_still(2, TIME, 0);
        fresh.update(&p);
        assert_eq!(fresh.limit(1, TIME), 4 * MARGIN);
        assert!(fresh.is_ending(2));
    }
}
