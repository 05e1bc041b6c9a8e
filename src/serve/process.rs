//! The engine thread: tags each batch exactly as `turbolog filter` tags its lines, in arrival
//! order, and seals windows on time even when no records come.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use turbolog::pipeline::LineStream as Stream;

use super::msgpack_json::EventTime;
use super::pipeline::{Batch, Out, Pending, Shared, ToEngine};

pub fn run(mut stream: Stream, batches: Receiver<ToEngine>, out: Sender<Out>, shared: Arc<Shared>) -> Result<(), String> {
    shared.engine_ready.store(true, Ordering::Release);
    let mut last_input = Instant::now();
    // a pending event (joined lines) waits at most the quiet time for its next line
    let tick = stream.quiet().map_or(Duration::from_millis(500), |q| q.min(Duration::from_millis(500)).max(Duration::from_millis(10)));
    // summaries go out under the tag records last came with
    let mut last_tag: Option<String> = None;
    // the place (disk queue, gate) of a batch whose last event is still being joined: it is
    // given up only with the output that carries that event, so a crash never skips it
    let mut joining: Option<super::pipeline::Held> = None;
    let mut waiting = Waiting::default();
    loop {
        match batches.recv_timeout(tick) {
            Ok(ToEngine::Batch(b)) => {
                last_input = Instant::now();
                let mut o = tag(&mut stream, b, &shared);
                waiting.after_batch(&mut stream, &mut o, &shared);
                if stream.has_pending() {
                    let this = o.permit.take();
                    o.permit = joining.take();
                    joining = this;
                } else {
                    drop(joining.take()); // its event is in this output, confirmed with it
                }
                if o.pending.tag.is_some() && o.pending.tag != last_tag {
                    last_tag.clone_from(&o.pending.tag);
                }
                if out.send(o).is_err() {
                    return Err("the writer stopped early".into());
                }
            }
            Ok(ToEngine::End) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if stream.quiet().is_some_and(|q| last_input.elapsed() >= q) && stream.has_pending() {
            let mut p = Pending::default();
            let r = stream.release(&mut p.text);
            shared.metrics.anomalies.inc_by(r.anomalies as u64);
            shared.metrics.session_anomalies.inc_by(r.session_anomalies as u64);
            p.records = r.lines as usize;
            if p.records > 0 && out.send(Out { pending: p, permit: joining.take() }).is_err() {
                return Err("the writer stopped early".into());
            }
        }
        // sessions over on the clock close while the input is quiet; their verdicts go out now
        if stream.has_sessions() && last_input.elapsed() >= tick {
            let mut p = Pending { tag: last_tag.clone(), ..Pending::default() };
            let r = stream.tick(&mut p.text);
            shared.metrics.session_anomalies.inc_by(r.session_anomalies as u64);
            p.records = r.lines as usize;
            if p.records > 0 && out.send(Out { pending: p, permit: None }).is_err() {
                return Err("the writer stopped early".into());
            }
        }
        shared.metrics.templates.set(stream.templates() as i64);
        if let Some(q) = stream.explain_queue() {
            shared.metrics.explain_queue.set(q as i64);
        }
        if stream.window_due() {
            if !summaries(&mut stream, last_tag.clone(), &out, &shared) {
                return Err("the writer stopped early".into());
            }
            let t = Instant::now();
            stream.seal_window();
            shared.metrics.seal_seconds.observe(t.elapsed().as_secs_f64());
        }
    }
    let mut last = Pending { tag: last_tag, ..Pending::default() };
    let anomalies = stream.close_sessions(&mut last.text);
    // nothing waits any more: the places held back are confirmed with the last records
    let last_permit = match (joining.take(), waiting.withheld.take()) {
        (Some(mut p), Some(w)) => {
            p.seq = p.seq.max(Some(w));
            Some(p)
        }
        (p, w) => p.or(w.map(super::pipeline::Held::queued)),
    };
    shared.metrics.session_anomalies.inc_by(anomalies as u64);
    // the last window's summaries, after every record they count
    stream.end_window(&mut last.text);
    reduced(&stream, &shared);
    last.records = last.text.matches('\n').count();
    if last.records > 0 || last_permit.is_some() {
        let _ = out.send(Out { pending: last, permit: last_permit });
    }
    drop(out);
    let t = Instant::now();
    let finished = stream.finish();
    shared.metrics.seal_seconds.observe(t.elapsed().as_secs_f64());
    finished
}

/// With `--reduce-sessions keep`: records waiting for their session's verdict are not out yet,
/// so the disk-queue place of the oldest batch holding one is not confirmed: outputs after it
/// confirm nothing (a crash replays from it) until it no longer waits.
#[derive(Default)]
struct Waiting {
    /// (the stream's last line, disk-queue place) of the batches from the oldest one holding
    /// a waiting record on.
    batches: std::collections::VecDeque<(u64, u64)>,
    /// The highest place held back, confirmed once nothing waits before it.
    withheld: Option<u64>,
    said: bool,
}

impl Waiting {
    fn after_batch(&mut self, stream: &mut Stream, o: &mut Out, shared: &Shared) {
        let seq = o.permit.as_ref().and_then(|p| p.seq);
        if let (Some(_), Some(seq)) = (stream.oldest_waiting(), seq) {
            self.batches.push_back((stream.lines_read(), seq));
        }
        // a disk queue half full behind what waits: one session at a time (the oldest) has its
        // records counted, so the queue moves on (it would otherwise stop the input, and with
        // it the sessions)
        if let Some(q) = &shared.disk_queue {
            let (used, max) = q.bytes();
            if !self.batches.is_empty() && used > max / 2 && stream.count_oldest_waiting() {
                if !std::mem::replace(&mut self.said, true) {
                    eprintln!("turbolog: warning: the disk queue is half full of input whose records wait for their sessions' verdicts (--reduce-sessions keep): the oldest sessions' waiting records are counted as held back; raise --queue-bytes or shorten --session-idle");
                }
                self.drop_done(stream.oldest_waiting());
            }
        }
        self.drop_done(stream.oldest_waiting());
        let Some(p) = o.permit.as_mut() else { return };
        match (self.batches.front(), p.seq) {
            (Some(&(_, floor)), Some(s)) if s >= floor => {
                self.withheld = self.withheld.max(Some(s));
                p.seq = None;
            }
            (None, s) if self.withheld.is_some() => p.seq = s.max(self.withheld.take()),
            _ => {}
        }
    }

    /// Forgets the batches whose records no longer wait (all before the oldest waiting line).
    fn drop_done(&mut self, oldest: Option<u64>) {
        while self.batches.front().is_some_and(|&(last, _)| oldest.is_none_or(|o| last < o)) {
            self.batches.pop_front();
        }
    }
}

fn tag(stream: &mut Stream, b: Batch, shared: &Shared) -> Out {
    let mut p = Pending { text: String::with_capacity(b.text.len() + b.records * 48), tag: b.tag.map(|t| t.to_string()), ..Pending::default() };
    let (mut anomalies, mut session_anomalies) = (0u64, 0u64);
    let timed = !b.times.is_empty();
    // one per line when the decoder made them (each of its lines is a record, none blank)
    let mut known = (b.known.len() == b.records).then_some(b.known.into_iter());
    for (i, line) in b.text.split_terminator('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if is_blank(line) {
            continue;
        }
        let r = match known.as_mut().and_then(Iterator::next) {
            Some(k) => stream.known_line(line, k, &mut p.text),
            None => stream.line(line, &mut p.text),
        };
        anomalies += r.anomalies as u64;
        session_anomalies += r.session_anomalies as u64;
        let added = r.lines as usize;
        p.records += added;
        if timed {
            let t = b.times.get(i).copied().unwrap_or_else(EventTime::now);
            p.times.extend(std::iter::repeat(t).take(added));
        }
    }
    shared.metrics.anomalies.inc_by(anomalies);
    shared.metrics.session_anomalies.inc_by(session_anomalies);
    reduced(stream, shared);
    Out { pending: p, permit: b.permit }
}

/// At a window's end, with reduce on: its summaries go out as records of their own (in
/// Forward with the time they are delivered, the window's end). `false` once the writer is gone.
fn summaries(stream: &mut Stream, tag: Option<String>, out: &Sender<Out>, shared: &Shared) -> bool {
    let mut p = Pending { tag, ..Pending::default() };
    let n = stream.end_window(&mut p.text);
    reduced(stream, shared);
    if n == 0 {
        return true;
    }
    p.records = n as usize;
    out.send(Out { pending: p, permit: None }).is_ok()
}

/// The reduce counters, brought up to the stream's totals.
fn reduced(stream: &Stream, shared: &Shared) {
    if let Some((suppressed, summaries)) = stream.reduced() {
        let m = &shared.metrics;
        m.records_suppressed.inc_by(suppressed.saturating_sub(m.records_suppressed.get()));
        m.summaries.inc_by(summaries.saturating_sub(m.summaries.get()));
    }
}

fn is_blank(line: &str) -> bool {
    match line.as_bytes().first() {
        None => true,
        Some(b) if b.is_ascii_whitespace() => line.bytes().all(|b| b.is_ascii_whitespace()),
        Some(_) => false,
    }
}
