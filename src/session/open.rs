//! The open sessions, each in one slot of a dense list that holds its id and counters (no
//! allocation for an id up to [`ID_INLINE`] bytes or a session of up to [`COUNTS_INLINE`]
//! templates), found through a small index of slot numbers. A record reads one slot — not a
//! table entry, then the id's bytes, then a list of counts, each elsewhere in memory: with
//! thousands of sessions open those are cache misses, and they were most of what tracking cost
//! per record. Slots are dense (no empty buckets the size of a session), so memory is what the
//! open sessions hold.

use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;
use smallvec::SmallVec;

/// Bytes of an id kept in the slot (a `blk_…` id, a UUID, a 32-character trace id fit).
pub const ID_INLINE: usize = 40;
/// Templates counted in the slot; a session with more spills to the heap (HDFS blocks hold 7
/// to 10 kinds of event).
pub const COUNTS_INLINE: usize = 10;
/// Open sessions at most, whatever `max_sessions` says (≈ 21 GB of slots; slot numbers are u32).
pub const MAX_OPEN: usize = 100_000_000;

/// What a pass over the open sessions does with one.
#[derive(Clone, Copy, PartialEq)]
pub enum Sweep {
    Take,
    Keep,
    Note,
}

/// (template, times), one entry per template, in the order first seen.
pub type Counts = SmallVec<[(u32, u32); COUNTS_INLINE]>;

/// One open session: a few counters, never its lines.
pub struct Open {
    hash: u64,
    id: SmallVec<[u8; ID_INLINE]>,
    pub first_record: u64,
    pub last_record: u64,
    /// Record time of its last record, when records carry one.
    pub last_time: Option<i64>,
    pub first_line: u64,
    pub last_line: u64,
    pub lines: u64,
    /// Its records that volume reduction held back (they are counted in summaries).
    pub held_back: u64,
    pub counts: Counts,
    /// The template of its last record: the event it is at.
    pub last_template: u32,
    /// A verdict on it went out already (an event as good as never seen, or an earlier close):
    /// another is not a second anomaly.
    pub flagged: bool,
    /// Closed once and continued: it was counted when it first closed.
    pub reopened: bool,
    /// Judged while still open in its current quiet spell (see `Tracker::judge_waiting`).
    pub judged_quiet: bool,
}

impl Open {
    /// The session's id.
    pub fn id(&self) -> String {
        // the bytes were a `&str`: valid UTF-8, copied whole
        String::from_utf8_lossy(&self.id).into_owned()
    }

    /// The hash its id is found by.
    pub fn key_hash(&self) -> u64 {
        self.hash
    }

    /// One more of `template`; true when it is the session's first.
    pub fn count(&mut self, template: u32) -> bool {
        match self.counts.iter_mut().find(|c| c.0 == template) {
            Some(c) => {
                c.1 += 1;
                false
            }
            None => {
                self.counts.push((template, 1));
                true
            }
        }
    }
}

/// Open sessions by id. Ids come from log content: hashed with a seeded hash.
#[derive(Default)]
pub struct OpenSessions {
    /// Slot numbers, by the hash of the slot's id.
    index: HashTable<u32>,
    slots: Vec<Open>,
    hasher: foldhash::fast::RandomState,
}

impl OpenSessions {
    fn hash(&self, id: &str) -> u64 {
        // one key per table: its bytes alone, no length or terminator written after them
        let mut h = self.hasher.build_hasher();
        h.write(id.as_bytes());
        h.finish()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The open sessions, in slot order.
    pub fn slots(&self) -> &[Open] {
        &self.slots
    }

    /// Bytes the table holds: its slots and index as allocated, and what ids and counts too
    /// long for a slot took on the heap.
    pub fn bytes(&self) -> usize {
        let spilled = |o: &Open| {
            (o.id.spilled() as usize) * o.id.capacity() + (o.counts.spilled() as usize) * o.counts.capacity() * std::mem::size_of::<(u32, u32)>()
        };
        // the index: a slot number and a control byte per bucket
        self.slots.capacity() * std::mem::size_of::<Open>() + self.index.capacity() * (std::mem::size_of::<u32>() + 1) + self.slots.iter().map(spilled).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn position(&self, hash: u64, id: &str) -> Option<usize> {
        let slots = &self.slots;
        self.index.find(hash, |&i| slots[i as usize].hash == hash && crate::detect::same_bytes(&slots[i as usize].id, id.as_bytes())).map(|&i| i as usize)
    }

    /// The open session `id`, if any; else the hash to open it with ([`OpenSessions::open`]).
    pub fn find_mut(&mut self, id: &str) -> Result<&mut Open, u64> {
        let hash = self.hash(id);
        match self.position(hash, id) {
            Some(i) => Ok(&mut self.slots[i]),
            None => Err(hash),
        }
    }

    /// The open session with id hash `hash` whose last record is `record` (each record is the
    /// last of at most one session), wherever its slot moved since.
    pub fn find_last(&mut self, hash: u64, record: u64) -> Option<&mut Open> {
        let slots = &self.slots;
        let i = *self.index.find(hash, |&i| slots[i as usize].hash == hash && slots[i as usize].last_record == record)?;
        Some(&mut self.slots[i as usize])
    }

    /// Opens `id` (not open: [`OpenSessions::find_mut`] said so and gave `hash`) with one record.
    pub fn open(&mut self, hash: u64, id: &str, template: u32, record: u64, line: u64, time: Option<i64>) {
        let mut counts = Counts::new();
        counts.push((template, 1));
        let i = self.slots.len() as u32; // under MAX_OPEN: the tracker never opens more
        self.slots.push(Open { hash, id: SmallVec::from_slice(id.as_bytes()), first_record: record, last_record: record, last_time: time, first_line: line, last_line: line, lines: 1, held_back: 0, counts, last_template: template, flagged: false, reopened: false, judged_quiet: false });
        let slots = &self.slots;
        self.index.insert_unique(hash, i, |&j| slots[j as usize].hash);
    }

    /// The slot of the open session `id`, if any; else the hash to open it with.
    #[inline]
    pub fn find(&self, id: &str) -> Result<usize, u64> {
        let hash = self.hash(id);
        self.position(hash, id).ok_or(hash)
    }

    /// The session in slot `i` (from [`OpenSessions::find`] or [`OpenSessions::insert`]).
    #[inline]
    pub fn at(&mut self, i: usize) -> &mut Open {
        &mut self.slots[i]
    }

    /// Puts a session taken out of a table (this one or another) back in: its slot.
    pub fn insert(&mut self, mut o: Open) -> usize {
        // the other table hashed with its own seed
        o.hash = {
            let mut h = self.hasher.build_hasher();
            h.write(&o.id);
            h.finish()
        };
        let (hash, i) = (o.hash, self.slots.len() as u32);
        self.slots.push(o);
        let slots = &self.slots;
        self.index.insert_unique(hash, i, |&j| slots[j as usize].hash);
        i as usize
    }

    /// Takes out slot `i`; the last slot moves into its place.
    pub fn take(&mut self, i: usize) -> Open {
        let last = self.slots.len() - 1;
        let hash = self.slots[i].hash;
        if let Ok(entry) = self.index.find_entry(hash, |&j| j as usize == i) {
            entry.remove();
        }
        if i != last {
            let moved = self.slots[last].hash;
            if let Some(j) = self.index.find_mut(moved, |&j| j as usize == last) {
                *j = i as u32;
            }
        }
        self.slots.swap_remove(i)
    }

    /// Takes out the open session `id`.
    pub fn remove(&mut self, id: &str) -> Option<Open> {
        let i = self.position(self.hash(id), id)?;
        Some(self.take(i))
    }

    /// Takes out the sessions `close` says to (one pass over the slots; the index is touched
    /// only for those taken).
    pub fn take_if(&mut self, mut close: impl FnMut(&Open) -> bool) -> Vec<Open> {
        self.take_or_note(|s| if close(s) { Sweep::Take } else { Sweep::Keep }).0
    }

    /// [`OpenSessions::take_if`], where `what` may also keep a session and note it: the slot
    /// numbers of those noted (valid until the slots change again), in slot order.
    pub fn take_or_note(&mut self, mut what: impl FnMut(&Open) -> Sweep) -> (Vec<Open>, Vec<u32>) {
        let (mut taken, mut noted) = (Vec::new(), Vec::new());
        let mut i = 0;
        while i < self.slots.len() {
            match what(&self.slots[i]) {
                // the last slot is now at `i`: look at it next (the slots before stay put)
                Sweep::Take => taken.push(self.take(i)),
                Sweep::Keep => i += 1,
                Sweep::Note => {
                    noted.push(i as u32);
                    i += 1;
                }
            }
        }
        (taken, noted)
    }

    /// Takes out every session.
    pub fn take_all(&mut self) -> Vec<Open> {
        self.index.clear();
        std::mem::take(&mut self.slots)
    }

    /// The `n` sessions seen least recently (their records are the oldest), taken out.
    pub fn take_least_recent(&mut self, n: usize) -> Vec<Open> {
        if n == 0 {
            return Vec::new();
        }
        if n >= self.slots.len() {
            return self.take_all();
        }
        // each record is the last of at most one session: last records are distinct, and the
        // n least recent are those at or under the n-th smallest
        let mut last: Vec<u64> = self.slots.iter().map(|o| o.last_record).collect();
        let (_, &mut cut, _) = last.select_nth_unstable(n - 1);
        self.take_if(|o| o.last_record <= cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_short_and_long_are_found_counted_and_taken_out() {
        let mut s = OpenSessions::default();
        let long = "x".repeat(300);
        let ids = ["a", "blk_-1608999687919862906", "0af7651916cd43dd8448eb211c80319c", long.as_str(), "ünïcödé"];
        for (i, id) in ids.iter().enumerate() {
            let hash = s.find_mut(id).err().expect("not open yet");
            s.open(hash, id, 7, i as u64 + 1, i as u64 + 10, None);
        }
        assert_eq!(s.len(), ids.len());
        for id in ids {
            let o = s.find_mut(id).expect("open");
            assert_eq!(o.id(), id);
            assert!(!o.count(7), "template 7 was its first");
            for t in 0..10 {
                assert!(o.count(100 + t), "a new template");
            }
            assert_eq!(o.counts.len(), 11, "spilled past the inline counts");
            assert!(o.counts.spilled());
            assert_eq!(o.counts[0], (7, 2));
        }
        assert!(s.find_mut("blk_-160899968791986290").is_err(), "a prefix is another id");
        assert_eq!(s.remove("a").map(|o| o.id()), Some("a".to_string()));
        assert!(s.remove("a").is_none());
        // the slot that moved into the freed one is still found, with its counts
        for id in &ids[1..] {
            assert_eq!(s.find_mut(id).ok().map(|o| (o.id(), o.counts[0])), Some((id.to_string(), (7, 2))));
        }
        assert_eq!(s.take_all().len(), ids.len() - 1);
        assert!(s.is_empty());
    }

    #[test]
    fn the_least_recent_are_taken_exactly() {
        let mut s = OpenSessions::default();
        for i in 0..100u64 {
            let id = format!("s{i}");
            let hash = s.find_mut(&id).err().unwrap();
            // opened in a scrambled order of records
            s.open(hash, &id, 0, (i * 37) % 100 + 1, i, None);
        }
        let mut taken: Vec<u64> = s.take_least_recent(10).iter().map(|o| o.last_record).collect();
        taken.sort_unstable();
        assert_eq!(taken, (1..=10).collect::<Vec<_>>());
        assert_eq!(s.len(), 90);
        assert_eq!(s.take_least_recent(1000).len(), 90);
    }
}
