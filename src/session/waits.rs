//! How long sessions wait for each event: per template, the records a session waited before
//! its first one, in log₂ buckets — as this stream has shown it, and as learned for the
//! profile. Kept by template number in a dense table (a session's first record of a template
//! comes on nearly half of all records; two hash lookups there were a tenth of what tracking
//! cost), the learned ones handed to the [`Profile`] when sessions close.

use crate::session::profile::Profile;

/// Templates whose waits are kept.
pub const MAX_WAITS: usize = 4096;

/// A wait that 99% of the waits before this template stay under (its bucket's upper bound): a
/// session cut short is called ended without an event only when it has been quiet longer than
/// nearly every session waited for it;
/// `None` with fewer than 20 seen.
pub fn long_wait(hist: &[u32; 64]) -> Option<u64> {
    let total: u64 = hist.iter().map(|&n| n as u64).sum();
    if total < 20 {
        return None;
    }
    let mut seen = 0u64;
    for (b, &n) in hist.iter().enumerate() {
        seen += n as u64;
        if seen * 100 >= total * 99 {
            return Some(if b >= 63 { u64::MAX } else { 1u64 << b });
        }
    }
    None
}

/// The log₂ bucket of a wait or a quiet spell (in records), as the wait histograms keep them.
pub fn bucket(records: u64) -> usize {
    (64 - records.leading_zeros() as usize).min(63)
}

/// [`long_wait`] with right-censored waits: `done[b]` sessions got the event after a wait in
/// bucket `b`, `still[b]` sessions have waited that long without it so far. The Kaplan–Meier
/// estimate of the share still waiting falls through the buckets; the wait is the bound of the
/// first bucket where at most 1% still wait (with nothing censored, exactly [`long_wait`]), or
/// unbounded when that never happens (many sessions wait longer than any wait seen to its end).
pub fn long_wait_censored(done: &[u32; 64], still: &[u32; 64]) -> Option<u64> {
    wait_censored(done, still, 0.01)
}

/// [`long_wait_censored`] with the share `left` that may still wait past it (0.01 there).
pub fn wait_censored(done: &[u32; 64], still: &[u32; 64], left: f64) -> Option<u64> {
    wait_censored_past(done, still, left, 0.0)
}

/// [`wait_censored`], where fewer than `sessions` still waiting past a bound do not keep it
/// open (one session stuck at an event does not say that waiting there that long is usual).
pub fn wait_censored_past(done: &[u32; 64], still: &[u32; 64], left: f64, sessions: f64) -> Option<u64> {
    let total: u64 = done.iter().map(|&n| n as u64).sum();
    if total < 20 {
        return None;
    }
    let mut at_risk = total + still.iter().map(|&n| n as u64).sum::<u64>();
    let left = left.max(sessions / at_risk as f64);
    let mut surviving = 1.0f64;
    for b in 0..64 {
        if at_risk == 0 {
            break;
        }
        surviving *= 1.0 - done[b] as f64 / at_risk as f64;
        if surviving <= left + 1e-12 {
            return Some(if b >= 63 { u64::MAX } else { 1u64 << b });
        }
        at_risk -= done[b] as u64 + still[b] as u64;
    }
    Some(u64::MAX)
}

/// No slot for this template.
const NONE: u32 = u32::MAX;

struct Slot {
    template: u32,
    /// This stream's waits.
    seen: [u32; 64],
    /// Waits learned since the last [`Waits::hand_over`], for the profile.
    learned: [u32; 64],
    pending: bool,
}

/// The waits of the first [`MAX_WAITS`] templates sessions had.
#[derive(Default)]
pub struct Waits {
    /// Template number → slot (or [`NONE`]).
    slot_of: Vec<u32>,
    slots: Vec<Slot>,
    /// Slots with learned waits not yet handed over, in the order they got their first.
    pending: Vec<u32>,
}

impl Waits {
    /// A session waited `gap` records before its first `template`; `learning`: the profile
    /// learns it too (at the next [`Waits::hand_over`], or now when the template has no slot).
    pub fn add(&mut self, template: u32, gap: u64, learning: bool, profile: &mut Profile) {
        let t = template as usize;
        if t >= self.slot_of.len() && self.slots.len() < MAX_WAITS {
            self.slot_of.resize(t + 1, NONE);
        }
        let mut i = self.slot_of.get(t).copied().unwrap_or(NONE);
        if i == NONE && self.slots.len() < MAX_WAITS {
            i = self.slots.len() as u32;
            self.slot_of[t] = i;
            self.slots.push(Slot { template, seen: [0; 64], learned: [0; 64], pending: false });
        }
        let b = bucket(gap);
        match self.slots.get_mut(i as usize) {
            Some(slot) => {
                slot.seen[b] += 1;
                if learning {
                    slot.learned[b] += 1;
                    if !slot.pending {
                        slot.pending = true;
                        self.pending.push(i);
                    }
                }
            }
            None if learning => {
                // no slot: straight to the profile, after those before it (the profile's own
                // bound admits templates in the order they came)
                self.hand_over(profile);
                profile.add_wait(template, gap);
            }
            None => {}
        }
    }

    /// Gives the profile the waits learned since the last call, templates in the order they came.
    pub fn hand_over(&mut self, profile: &mut Profile) {
        for i in self.pending.drain(..) {
            let slot = &mut self.slots[i as usize];
            for (b, n) in slot.learned.iter_mut().enumerate() {
                if *n > 0 {
                    profile.add_waits(slot.template, b, *n);
                    *n = 0;
                }
            }
            slot.pending = false;
        }
    }

    /// This stream's waits before `template`, when kept.
    pub fn seen(&self, template: u32) -> Option<&[u32; 64]> {
        let i = *self.slot_of.get(template as usize)?;
        self.slots.get(i as usize).map(|s| &s.seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn censored_waits_are_long_wait_without_censoring_and_longer_with_it() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..500 {
            let mut done = [0u32; 64];
            for _ in 0..(x % 300) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                done[(x % 40) as usize] += (x % 5) as u32;
            }
            assert_eq!(long_wait_censored(&done, &[0; 64]), long_wait(&done), "{done:?}");
        }
        let mut done = [0u32; 64];
        done[7] = 200; // every session that got it waited 64..127 records
        let mut still = [0u32; 64];
        still[10] = 1; // one has waited ~1000 records so far: 1 in 201, under 1% — not usual
        assert_eq!(long_wait_censored(&done, &still), Some(128));
        still[10] = 100; // a third of all have: waiting that long is usual
        assert_eq!(long_wait_censored(&done, &still), Some(u64::MAX));
    }

    #[test]
    fn waits_handed_over_are_the_waits_added_one_by_one() {
        // a profile taught directly and one taught through the table, with more templates than
        // either keeps: the same histograms, the same templates admitted
        let mut direct = Profile::default();
        let mut through = Profile::default();
        let mut waits = Waits::default();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for step in 0..60_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let template = (x % 9000) as u32;
            let gap = (x >> 20) % 5000;
            direct.add_wait(template, gap);
            waits.add(template, gap, true, &mut through);
            if step % 777 == 0 {
                waits.hand_over(&mut through);
            }
        }
        waits.add(1, 1, false, &mut through); // not learning: the stream's only
        waits.hand_over(&mut through);
        assert_eq!(through.waits, direct.waits);
        assert_eq!(waits.slots.len(), MAX_WAITS);
        let kept = waits.slots.iter().find(|s| s.seen.iter().sum::<u32>() > 1).expect("a template seen twice");
        assert_eq!(waits.seen(kept.template), Some(&kept.seen));
    }
}
