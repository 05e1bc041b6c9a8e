//! Sessions closed by what was learned and then forgotten, as a few bytes each (a hash of the
//! id, the event it was at and when), kept to the cap: a record for one of them is a late
//! continuation — not a new session that lacks every step before it — and its quiet is what
//! the limit of that event should have been.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

use crate::session::open::Open;

/// What is kept of a forgotten session.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Was {
    pub last_template: u32,
    pub last_time: Option<i64>,
    pub last_record: u64,
}

#[derive(Default)]
pub struct Forgotten {
    by_id: HashMap<u64, Was, foldhash::fast::RandomState>,
    /// Id hashes, oldest first (an entry taken or replaced stays here until it expires).
    order: VecDeque<u64>,
    hasher: foldhash::fast::RandomState,
}

impl Forgotten {
    fn hash(&self, id: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(id);
        h.finish()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Bytes held (entries as allocated).
    pub fn bytes(&self) -> usize {
        self.by_id.capacity() * (std::mem::size_of::<(u64, Was)>() + 1) + self.order.capacity() * 8
    }

    /// Keeps `s`; past `max` kept, the oldest goes.
    pub fn forget(&mut self, s: &Open, max: usize) {
        let h = self.hash(s.id().as_bytes());
        self.by_id.insert(h, Was { last_template: s.last_template, last_time: s.last_time, last_record: s.last_record });
        self.order.push_back(h);
        while self.by_id.len() > max || self.order.len() > 2 * max.max(1) {
            match self.order.pop_front() {
                Some(old) => {
                    self.by_id.remove(&old);
                }
                None => break,
            }
        }
    }

    /// The forgotten session `id`, taken out.
    pub fn take(&mut self, id: &str) -> Option<Was> {
        let h = self.hash(id.as_bytes());
        self.by_id.remove(&h)
    }

    /// Drops the oldest while `past_cap(last_time, last_record)` says they are past the cap.
    pub fn expire(&mut self, past_cap: impl Fn(Option<i64>, u64) -> bool) {
        while let Some(&h) = self.order.front() {
            match self.by_id.get(&h) {
                Some(w) if !past_cap(w.last_time, w.last_record) => break,
                Some(_) => {
                    self.by_id.remove(&h);
                }
                None => {}
            }
            self.order.pop_front();
        }
    }
}
