//! Volume reduction that never drops an anomaly (`reduce on`): per template and window, the
//! first `keep` records pass, then only anomalous ones, plus 1 in `sample` of the rest. What is
//! held back is counted, exactly, and said at the window's end as one summary per template
//! (each codec writes it in its own format).
//!
//! Per record: one slot of a table indexed by template id, a few counters; nothing allocated
//! (the table grows only when a template id is seen for the first time).

use crate::codec::summary::{Shape, Summary};
use crate::detect::template::TemplateId;

/// What `reduce_keep` and `reduce_sample` say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReduceConfig {
    /// Records of a template that pass in each window before only anomalies do (at least 1: the
    /// first record of a template in a window always passes).
    pub keep: u32,
    /// 1 in this many of the rest passes as well; 0 = none.
    pub sample: u32,
    /// `reduce_sessions keep`: records of open sessions that would be held back wait for their
    /// session's verdict instead, up to this many bytes in all. `None`: counted like any other.
    pub session_bytes: Option<usize>,
}

impl Default for ReduceConfig {
    fn default() -> Self {
        ReduceConfig { keep: 5, sample: 0, session_bytes: None }
    }
}

/// What becomes of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Pass,
    /// Held back and counted for its template's summary.
    HoldBack,
    /// Waits for its session's verdict, not counted yet ([`Reducer::settle`] counts it).
    Defer,
}

/// One template's counts in the current window.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    seen: u64,
    suppressed: u64,
    /// Records held back since the last sampled one.
    since_sample: u32,
    shape: Shape,
}

/// A finished window: when it started and ended (Unix seconds) and its summaries.
pub struct ClosedWindow<'a> {
    pub start: f64,
    pub end: f64,
    pub summaries: &'a [Summary],
}

pub struct Reducer {
    config: ReduceConfig,
    slots: Vec<Slot>,
    /// The templates seen in this window, in the order of their first record.
    touched: Vec<TemplateId>,
    summaries: Vec<Summary>,
    window_start: f64,
    suppressed_total: u64,
    summaries_total: u64,
}

/// Now, in Unix seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl Reducer {
    pub fn new(config: ReduceConfig) -> Reducer {
        Reducer {
            config: ReduceConfig { keep: config.keep.max(1), ..config },
            slots: Vec::new(),
            touched: Vec::new(),
            summaries: Vec::new(),
            window_start: now(),
            suppressed_total: 0,
            summaries_total: 0,
        }
    }

    /// Whether a record of `template` (scored anomalous or not, its message keyed as `shape`)
    /// goes on; when it does not, it is counted for its template's summary.
    #[inline]
    pub fn pass(&mut self, template: TemplateId, anomaly: bool, shape: Shape) -> bool {
        self.decide(template, anomaly, shape, false) == Decision::Pass
    }

    /// As [`Self::pass`]; a record that would be held back and is `deferrable` (its session's
    /// verdict decides) is [`Decision::Defer`]red instead: not counted until it is settled.
    #[inline]
    pub fn decide(&mut self, template: TemplateId, anomaly: bool, shape: Shape, deferrable: bool) -> Decision {
        let (keep, sample) = (self.config.keep as u64, self.config.sample);
        let slot = self.slot(template, shape);
        if anomaly || slot.seen < keep {
            slot.seen += 1;
            return Decision::Pass;
        }
        if sample > 0 {
            slot.since_sample += 1;
            if slot.since_sample >= sample {
                slot.since_sample = 0;
                slot.seen += 1;
                return Decision::Pass;
            }
        }
        if deferrable {
            return Decision::Defer;
        }
        slot.seen += 1;
        slot.suppressed += 1;
        self.suppressed_total += 1;
        Decision::HoldBack
    }

    /// A deferred record decided (its session's verdict came): counted in this window, as
    /// passed or held back.
    pub fn settle(&mut self, template: TemplateId, shape: Shape, passed: bool) {
        let slot = self.slot(template, shape);
        slot.seen += 1;
        if !passed {
            slot.suppressed += 1;
            self.suppressed_total += 1;
        }
    }

    /// The template's slot in this window (made, and its first record's shape kept, when new).
    #[inline]
    fn slot(&mut self, template: TemplateId, shape: Shape) -> &mut Slot {
        let i = template as usize;
        if i >= self.slots.len() {
            self.grow(i);
        }
        let slot = &mut self.slots[i];
        if slot.seen == 0 {
            self.touched.push(template);
            slot.shape = shape;
        }
        slot
    }

    #[cold]
    fn grow(&mut self, i: usize) {
        // doubling: a stream of new templates costs amortised O(1) each
        let len = (i + 1).max(self.slots.len() * 2).max(256);
        self.slots.resize(len, Slot::default());
        self.touched.reserve(len.min(4096));
    }

    /// Ends the window at `end` (Unix seconds): the summaries of the templates that had records
    /// held back, in the order of their first record; every count starts again at zero.
    pub fn end_window(&mut self, end: f64) -> ClosedWindow<'_> {
        self.summaries.clear();
        for &id in &self.touched {
            let slot = std::mem::take(&mut self.slots[id as usize]);
            if slot.suppressed > 0 {
                self.summaries.push(Summary {
                    template_id: id,
                    seen: slot.seen,
                    passed: slot.seen - slot.suppressed,
                    suppressed: slot.suppressed,
                    shape: slot.shape,
                });
            }
        }
        self.touched.clear();
        self.summaries_total += self.summaries.len() as u64;
        let start = std::mem::replace(&mut self.window_start, end);
        ClosedWindow { start, end, summaries: &self.summaries }
    }

    pub fn config(&self) -> &ReduceConfig {
        &self.config
    }

    /// Records held back since the start.
    pub fn suppressed_total(&self) -> u64 {
        self.suppressed_total
    }

    /// Summaries written since the start.
    pub fn summaries_total(&self) -> u64 {
        self.summaries_total
    }

    /// Whether the current window has records held back (a summary is due at its end).
    pub fn holding_back(&self) -> bool {
        self.touched.iter().any(|&id| self.slots[id as usize].suppressed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::summary::TEXT;

    #[test]
    fn first_records_pass_then_only_anomalies_and_counts_are_exact() {
        let mut r = Reducer::new(ReduceConfig { keep: 3, sample: 0, session_bytes: None });
        let passed: Vec<bool> = (0..10).map(|i| r.pass(7, i == 8, 0)).collect();
        assert_eq!(passed, [true, true, true, false, false, false, false, false, true, false]);
        assert!(r.pass(2, false, TEXT), "a template new in the window passes");
        let w = r.end_window(100.0);
        assert_eq!(w.summaries, [Summary { template_id: 7, seen: 10, passed: 4, suppressed: 6, shape: 0 }]);
        assert_eq!((r.suppressed_total(), r.summaries_total()), (6, 1));
        // a new window starts from zero: the first records pass again
        assert!(r.pass(7, false, 0));
        assert_eq!(r.end_window(110.0).start, 100.0);
    }

    #[test]
    fn one_in_sample_of_the_rest_passes() {
        let mut r = Reducer::new(ReduceConfig { keep: 1, sample: 4, session_bytes: None });
        let passed = (0..13).filter(|_| r.pass(0, false, 0)).count();
        // 1 kept, then 12 more: every 4th of them passes
        assert_eq!(passed, 1 + 3);
        let w = r.end_window(1.0);
        assert_eq!((w.summaries[0].seen, w.summaries[0].passed, w.summaries[0].suppressed), (13, 4, 9));
    }

    #[test]
    fn keep_zero_still_passes_the_first_record_of_each_template() {
        let mut r = Reducer::new(ReduceConfig { keep: 0, sample: 0, session_bytes: None });
        assert!(r.pass(5000, false, 1));
        assert!(!r.pass(5000, false, 1));
        assert!(r.holding_back());
    }

    #[test]
    fn deferred_records_count_only_when_settled_in_the_window_of_their_verdict() {
        let mut r = Reducer::new(ReduceConfig { keep: 1, sample: 0, session_bytes: Some(1 << 20) });
        assert_eq!(r.decide(3, false, 0, true), Decision::Pass, "the first record passes, session or not");
        assert_eq!(r.decide(3, false, 0, true), Decision::Defer);
        assert_eq!(r.decide(3, false, 0, false), Decision::HoldBack);
        assert_eq!(r.decide(3, true, 0, true), Decision::Pass, "an anomaly is never deferred");
        let w = r.end_window(10.0);
        assert_eq!(w.summaries, [Summary { template_id: 3, seen: 3, passed: 2, suppressed: 1, shape: 0 }]);
        // the deferred one is decided in the next window: counted there
        r.settle(3, 0, false);
        r.settle(3, 0, true);
        let w = r.end_window(20.0);
        assert_eq!(w.summaries, [Summary { template_id: 3, seen: 2, passed: 1, suppressed: 1, shape: 0 }]);
        assert_eq!(r.suppressed_total(), 2);
    }
}
