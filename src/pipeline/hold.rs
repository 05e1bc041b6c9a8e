//! `reduce_sessions keep`: the records of open sessions that volume reduction would hold back,
//! kept as the stream wrote them until their session's verdict. An anomalous session's records
//! go out just before its verdict record; a normal session's are counted as held back, in the
//! window in which its session was found over. Bounded: past the byte cap, the session holding
//! the oldest record has its records counted at once.

use std::collections::HashMap;

use crate::codec::summary::Shape;
use crate::detect::template::TemplateId;

/// One session's waiting records.
#[derive(Default)]
struct Waiting {
    /// The records, each ending in `\n`, in order.
    text: String,
    records: Vec<(TemplateId, Shape)>,
    /// The stream's line number of the oldest record waiting.
    first_seq: u64,
    /// Its records counted as held back already (at the cap), for its verdict record.
    counted: u64,
}

pub struct SessionHold {
    cap: usize,
    bytes: usize,
    sessions: HashMap<String, Waiting>,
    /// Records decided since the last [`Self::take_settled`]: (template, shape, passed).
    settled: Vec<(TemplateId, Shape, bool)>,
    /// Bytes past which the next record sweeps for sessions that are over.
    next_sweep: usize,
    /// Times the cap was reached.
    pub overflows: u64,
}

/// What releasing a session's records did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Records written out.
    pub lines: u32,
    /// Its records counted as held back (at the cap, or all of them for a normal session).
    pub held_back: u64,
}

impl SessionHold {
    pub fn new(cap: usize) -> SessionHold {
        SessionHold { cap, bytes: 0, sessions: HashMap::new(), settled: Vec::new(), next_sweep: cap / 8, overflows: 0 }
    }

    /// Keeps `record` (ending in `\n`) for session `id`. Past a sweep mark, the sessions `open`
    /// says are over are counted first; past the cap, the oldest session's records are counted
    /// too. Whether the cap was reached for the first time.
    pub fn hold(&mut self, id: &str, record: &str, template: TemplateId, shape: Shape, seq: u64, open: impl Fn(&str) -> bool) -> bool {
        let w = match self.sessions.get_mut(id) {
            Some(w) => w,
            None => self.sessions.entry(id.to_string()).or_default(),
        };
        if w.records.is_empty() {
            w.first_seq = seq;
        }
        w.text.push_str(record);
        w.records.push((template, shape));
        self.bytes += record.len();
        if self.bytes <= self.next_sweep {
            return false;
        }
        // sessions over without an anomaly since the last sweep: counted (a sweep reads every
        // waiting session; spaced by an eighth of the cap, it costs O(1) per record)
        self.settle_closed(&open);
        self.next_sweep = self.bytes + self.cap / 8;
        let mut first = false;
        while self.bytes > self.cap && self.count_oldest() {
            first |= self.overflows == 0;
            self.overflows += 1;
        }
        first
    }

    /// The session holding the oldest waiting record has its records counted as held back
    /// (they no longer wait); false when nothing waits.
    pub fn count_oldest(&mut self) -> bool {
        let Some(oldest) = self.sessions.iter().filter(|(_, w)| !w.records.is_empty()).min_by_key(|(_, w)| w.first_seq).map(|(k, _)| k.clone()) else { return false };
        let w = self.sessions.get_mut(&oldest).expect("found above");
        self.bytes -= w.text.len();
        w.counted += w.records.len() as u64;
        self.settled.extend(w.records.drain(..).map(|(t, s)| (t, s, false)));
        w.text = String::new();
        self.next_sweep = self.bytes + self.cap / 8;
        true
    }

    /// Session `id` was judged anomalous: its waiting records go out (appended to `out`).
    pub fn release_anomalous(&mut self, id: &str, out: &mut String) -> Released {
        let Some(w) = self.sessions.remove(id) else { return Released::default() };
        self.bytes -= w.text.len();
        out.push_str(&w.text);
        self.settled.extend(w.records.iter().map(|&(t, s)| (t, s, true)));
        Released { lines: w.records.len() as u32, held_back: w.counted }
    }

    /// The sessions that `open` says are over without an anomaly: their records are counted
    /// as held back.
    pub fn settle_closed(&mut self, open: &impl Fn(&str) -> bool) {
        let Self { sessions, settled, bytes, .. } = self;
        sessions.retain(|id, w| {
            if open(id) {
                return true;
            }
            *bytes -= w.text.len();
            settled.extend(w.records.drain(..).map(|(t, s)| (t, s, false)));
            false
        });
    }

    /// Everything still waiting is counted as held back (the end of the stream).
    pub fn settle_all(&mut self) {
        self.settle_closed(&|_| false);
    }

    /// Records decided since the last call, for the reducer to count.
    pub fn take_settled(&mut self) -> std::vec::Drain<'_, (TemplateId, Shape, bool)> {
        self.settled.drain(..)
    }

    /// The stream's line number of the oldest record waiting, if any.
    pub fn oldest(&self) -> Option<u64> {
        self.sessions.values().filter(|w| !w.records.is_empty()).map(|w| w.first_seq).min()
    }

    /// The byte cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Bytes waiting.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomalous_sessions_get_their_records_back_normal_ones_are_counted() {
        let mut h = SessionHold::new(1 << 20);
        let open = |_: &str| true;
        h.hold("a", "a1\n", 1, 0, 10, open);
        h.hold("b", "b1\n", 2, 0, 11, open);
        h.hold("a", "a2\n", 1, 0, 12, open);
        assert_eq!(h.oldest(), Some(10));
        let mut out = String::new();
        assert_eq!(h.release_anomalous("a", &mut out), Released { lines: 2, held_back: 0 });
        assert_eq!(out, "a1\na2\n");
        assert_eq!(h.take_settled().collect::<Vec<_>>(), [(1, 0, true), (1, 0, true)]);
        h.settle_closed(&|id| id != "b");
        assert_eq!(h.take_settled().collect::<Vec<_>>(), [(2, 0, false)]);
        assert_eq!((h.bytes(), h.oldest()), (0, None));
    }

    #[test]
    fn past_the_cap_the_oldest_sessions_records_are_counted_and_said_once() {
        let mut h = SessionHold::new(8);
        let open = |_: &str| true;
        assert!(!h.hold("a", "aaaa\n", 1, 0, 1, open));
        assert!(h.hold("b", "bbbb\n", 2, 0, 2, open), "the first overflow is said");
        assert_eq!(h.take_settled().collect::<Vec<_>>(), [(1, 0, false)]);
        assert!(!h.hold("c", "cccc\n", 3, 0, 3, open));
        assert_eq!(h.overflows, 2);
        assert_eq!(h.bytes(), 5);
        // a session whose records were counted says so in its verdict
        h.hold("a", "a\n", 1, 0, 4, open);
        let mut out = String::new();
        assert_eq!(h.release_anomalous("a", &mut out), Released { lines: 1, held_back: 1 });
        assert_eq!(out, "a\n");
    }

    #[test]
    fn sessions_over_are_counted_before_an_open_one_is_cut() {
        let mut h = SessionHold::new(8);
        h.hold("done", "dddd\n", 1, 0, 1, |_| true);
        // "done" closed meanwhile: the sweep counts it, "live" keeps its records
        assert!(!h.hold("live", "llll\n", 2, 0, 2, |id| id == "live"));
        assert_eq!(h.take_settled().collect::<Vec<_>>(), [(1, 0, false)]);
        assert_eq!((h.overflows, h.bytes()), (0, 5));
    }
}
