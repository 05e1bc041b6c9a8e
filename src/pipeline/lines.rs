//! The pipeline over a stream of NDJSON or text lines (`filter`, `serve`): each line in, the
//! tagged record and the verdicts of the sessions it closed out, in order.

use serde_json::{Map, Value};

use crate::codec::container;
use crate::codec::fields::Mode;
use crate::codec::known::Known;
use crate::codec::ndjson::{self, LineTagger, Outcome};
use crate::codec::Scorer;
use crate::session::ClosedSession;

use super::hold::SessionHold;
use super::join::{Event, Joiner};
use super::{LogLevel, Pipeline, Settings};

/// How lines become events: joined (`--multiline auto`: continuation lines, container partials)
/// or one line one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Joining {
    /// Longest event (and reassembled container line); past it the event is cut and said.
    pub max_bytes: usize,
    /// Quiet time after which a pending event is released.
    pub quiet: std::time::Duration,
}

impl Default for Joining {
    fn default() -> Self {
        Joining { max_bytes: super::join::DEFAULT_MAX_EVENT_BYTES, quiet: std::time::Duration::from_secs(1) }
    }
}

/// How an event's first line looked, so the event goes out in the same shape.
enum Shape {
    /// A text line: `{"message": …}`.
    Text,
    /// A Docker json-file record: the line as it came, and as read.
    Docker(String, Map<String, Value>),
    /// A CRI line: its time and stream become fields.
    Cri { time: String, stream: String },
}

/// One stream of a container (or the text lines): its partial line and the event being joined.
struct Lane {
    key: String,
    joiner: Joiner,
    /// The pending event's first shape, and whether a line of it was put back together.
    shape: Shape,
    reassembled: bool,
    /// A container line still in parts, with the shape of its first part.
    partial: String,
    partial_shape: Option<Shape>,
}

/// What one input line became.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineOutput {
    /// Records scored as anomalous.
    pub anomalies: u32,
    /// Closed sessions judged anomalous by this line (their records follow the line's).
    pub session_anomalies: u32,
    /// Lines written out: the record's (unless dropped) and one per closed session.
    pub lines: u32,
}

/// One stream of lines through the pipeline.
pub struct LineStream {
    pub pipeline: Pipeline,
    tagging: Tagging,
    joining: Option<Joining>,
    lanes: Vec<Lane>,
    /// Events cut at the bound, said at the end (the first one when it happens).
    cut: u64,
    /// A joined event written out as a record: reused.
    event_line: String,
    /// The message keys as given (empty: the defaults), for what is said at the end.
    message_keys: Vec<String>,
    lines: u64,
}

/// What tagging a record needs besides the pipeline: reused, and what is said at the end.
struct Tagging {
    tagger: LineTagger,
    counts: Counts,
    /// `reduce_sessions keep`: records waiting for their sessions' verdicts.
    hold: Option<SessionHold>,
}

/// Records passed through untouched, said at the end.
#[derive(Default)]
struct Counts {
    malformed: u64,
    no_message: u64,
}

impl LineStream {
    /// The stream of an open pipeline, tagging as `settings` say; `message_keys` empty =
    /// [`ndjson::DEFAULT_KEYS`]. From here on no record waits for the model.
    pub fn new(mut pipeline: Pipeline, message_keys: Vec<String>, settings: &Settings) -> Result<LineStream, String> {
        pipeline.defer_embedding()?;
        let tagger = LineTagger::new(message_keys.clone(), settings.mode == Mode::OnlyAnomalies, settings.field_policy);
        let hold = pipeline.keep_sessions().map(SessionHold::new);
        Ok(LineStream {
            pipeline,
            tagging: Tagging { tagger, counts: Counts::default(), hold },
            joining: None,
            lanes: Vec::new(),
            cut: 0,
            event_line: String::new(),
            message_keys,
            lines: 0,
        })
    }

    /// Joins lines into events from here on (see [`Joining`]).
    pub fn join(mut self, joining: Option<Joining>) -> LineStream {
        self.joining = joining;
        self
    }

    /// How long a pending event may wait for its next line, when events are joined.
    pub fn quiet(&self) -> Option<std::time::Duration> {
        self.joining.map(|j| j.quiet)
    }

    /// Whether an event (or a container line in parts) waits for more lines.
    pub fn has_pending(&self) -> bool {
        self.lanes.iter().any(|l| l.joiner.has_pending() || !l.partial.is_empty())
    }

    /// Tags one input line (without its newline): appends what goes out — the records it
    /// completes (with events joined, the event before it), then any session verdicts they
    /// closed — to `out`, each line ending in `\n`.
    pub fn line(&mut self, line: &str, out: &mut String) -> LineOutput {
        self.lines += 1;
        let Some(joining) = self.joining else {
            let mut result = LineOutput::default();
            self.tag(line, None, self.lines, out, &mut result);
            return result;
        };
        let mut result = LineOutput::default();
        let seq = self.lines;
        if let Some(c) = container::cri(line) {
            let lane = self.lane(c.stream, "cri:");
            let shape = || Shape::Cri { time: c.time.to_string(), stream: c.stream.to_string() };
            if let Some((text, shape, reassembled)) = self.lanes[lane].put_together(c.text, c.partial, shape, joining.max_bytes) {
                self.push(lane, &text, shape, reassembled, seq, out, &mut result);
            }
            return result;
        }
        let session_field = self.pipeline.session_field();
        match self.tagging.tagger.parse(line, session_field) {
            Some(Ok(obj)) => {
                if let Some((log, stream)) = container::docker(&obj) {
                    let lane = self.lane(stream, "docker:");
                    let (text, partial) = match log.strip_suffix('\n') {
                        Some(t) => (t.strip_suffix('\r').unwrap_or(t), false),
                        None => (log, true),
                    };
                    // the record moves into its shape: its text is copied out first
                    let text = text.to_string();
                    // the record is written again around its joined text: all of it, not what was read
                    let shape = || Shape::Docker(line.to_string(), ndjson::parse_object(line).and_then(Result::ok).unwrap_or(obj));
                    if let Some((text, shape, reassembled)) = self.lanes[lane].put_together(&text, partial, shape, joining.max_bytes) {
                        self.push(lane, &text, shape, reassembled, seq, out, &mut result);
                    }
                    return result;
                }
                // a structured record is whole: what the text lines were joining goes out first
                self.release_lane("", out, &mut result);
                tag_record(line, Some(obj), None, seq, &mut self.tagging, &mut self.pipeline, out, &mut result);
                return result;
            }
            Some(Err(_)) => {
                self.release_lane("", out, &mut result); // malformed JSON: untouched, in order
                self.tag(line, None, seq, out, &mut result);
                return result;
            }
            None => {}
        }
        let lane = self.lane("", "");
        self.push(lane, line, Shape::Text, false, seq, out, &mut result);
        result
    }

    /// [`Self::line`] for a line whose writer knows its top-level fields (`known`, an OTLP
    /// record): tagged from them as from the line read, without reading it; read when tagging
    /// wants a field they do not carry.
    pub fn known_line(&mut self, line: &str, known: Known, out: &mut String) -> LineOutput {
        let session_field = self.pipeline.session_field();
        let wanted = self.tagging.tagger.wanted(session_field);
        let Some(obj) = known.object(|k| wanted.keeps(k)).filter(|o| container::docker(o).is_none()) else {
            return self.line(line, out);
        };
        self.lines += 1;
        let seq = self.lines;
        let mut result = LineOutput::default();
        if self.joining.is_some() {
            // a structured record is whole: what the text lines were joining goes out first
            self.release_lane("", out, &mut result);
        }
        tag_record(line, Some(obj), None, seq, &mut self.tagging, &mut self.pipeline, out, &mut result);
        result
    }

    /// Releases what is pending (input was quiet for [`Self::quiet`]): the events go out.
    pub fn release(&mut self, out: &mut String) -> LineOutput {
        let mut result = LineOutput::default();
        for i in 0..self.lanes.len() {
            self.release_at(i, out, &mut result);
        }
        result
    }

    fn release_lane(&mut self, key: &str, out: &mut String, result: &mut LineOutput) {
        if let Some(i) = self.lanes.iter().position(|l| l.key == key) {
            self.release_at(i, out, result);
        }
    }

    fn release_at(&mut self, i: usize, out: &mut String, result: &mut LineOutput) {
        if !self.lanes[i].partial.is_empty() {
            // a line still in parts after the quiet time: what came of it is a line
            let text = std::mem::take(&mut self.lanes[i].partial);
            let shape = self.lanes[i].partial_shape.take().unwrap_or(Shape::Text);
            let seq = self.lines;
            self.push(i, &text, shape, true, seq, out, result);
        }
        let Self { lanes, tagging, pipeline, event_line, .. } = self;
        let lane = &mut lanes[i];
        let (shape, reassembled) = (&mut lane.shape, lane.reassembled);
        lane.joiner.flush_with(|e| emit(e, shape, reassembled, tagging, pipeline, event_line, out, result));
    }

    /// The lane of a stream, made when first seen.
    fn lane(&mut self, stream: &str, kind: &str) -> usize {
        // the text lane is the first made when there is one: found without comparing names
        if kind.is_empty() {
            if let Some(i) = self.lanes.iter().position(|l| l.key.is_empty()) {
                return i;
            }
        } else if let Some(i) = self.lanes.iter().position(|l| l.key.len() == kind.len() + stream.len() && l.key.starts_with(kind) && l.key.ends_with(stream)) {
            return i;
        }
        let max = self.joining.map_or(super::join::DEFAULT_MAX_EVENT_BYTES, |j| j.max_bytes);
        self.lanes.push(Lane {
            key: format!("{kind}{stream}"),
            joiner: Joiner::with_max_bytes(max),
            shape: Shape::Text,
            reassembled: false,
            partial: String::new(),
            partial_shape: None,
        });
        self.lanes.len() - 1
    }

    /// A whole line of lane `i` into its joiner; the event it completes goes out.
    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, i: usize, text: &str, shape: Shape, reassembled: bool, seq: u64, out: &mut String, result: &mut LineOutput) {
        let Self { lanes, tagging, pipeline, event_line, .. } = self;
        let lane = &mut lanes[i];
        let cut_before = lane.joiner.cut_events;
        let (old_shape, old_reassembled) = (&mut lane.shape, lane.reassembled);
        let started = lane.joiner.push_with(text, seq, |e| emit(e, old_shape, old_reassembled, tagging, pipeline, event_line, out, result));
        if started {
            lane.shape = shape;
            lane.reassembled = reassembled;
        } else {
            lane.reassembled |= reassembled;
        }
        if lane.joiner.cut_events > cut_before {
            self.cut += 1;
            if self.cut == 1 {
                let max = self.joining.map_or(0, |j| j.max_bytes);
                (self.pipeline.log)(
                    LogLevel::Warn,
                    &format!("an event starting near line {seq} went past --max-record-bytes {max} and was cut (further cuts are counted); raise --max-record-bytes to keep longer events whole"),
                );
            }
        }
    }

    /// Tags one record as it came (`line`, or a joined event written as a record).
    fn tag(&mut self, line: &str, scored: Option<&str>, seq: u64, out: &mut String, result: &mut LineOutput) {
        tag_record(line, None, scored, seq, &mut self.tagging, &mut self.pipeline, out, result);
    }

    /// Whether a window is due; the caller flushes what it has written, then calls [`Self::seal_window`].
    pub fn window_due(&self) -> bool {
        self.pipeline.window_due()
    }

    /// Whether windows end on time with something to do (see [`Pipeline::window_timed`]).
    pub fn window_timed(&self) -> bool {
        self.pipeline.window_timed()
    }

    /// Seals the window. A failing disk is said and retried at the next window; the stream goes on.
    pub fn seal_window(&mut self) {
        self.pipeline.seal_quietly();
    }

    /// Ends the reduce window (call it when a window is due, before [`Self::seal_window`], and
    /// at the end): one summary record per template that had records held back, appended to
    /// `out`, each line ending in `\n`; how many.
    pub fn end_window(&mut self, out: &mut String) -> u32 {
        if let Some(h) = &mut self.tagging.hold {
            // records of sessions over without an anomaly count in this window
            let pipeline = &self.pipeline;
            h.settle_closed(&|id| pipeline.session_open(id));
            settle(h, &mut self.pipeline);
        }
        let Some((window, engine)) = self.pipeline.end_reduce_window() else { return 0 };
        for s in window.summaries {
            ndjson::summary_record(out, s, engine.template_text(s.template_id), (window.start, window.end), &self.message_keys);
            out.push('\n');
        }
        window.summaries.len() as u32
    }

    /// Volume reduction's counts since the start: (records held back, summaries written).
    pub fn reduced(&self) -> Option<(u64, u64)> {
        self.pipeline.reducer().map(|r| (r.suppressed_total(), r.summaries_total()))
    }

    /// End of input: open sessions are judged (their records appended to `out`); how many
    /// were anomalous.
    pub fn close_sessions(&mut self, out: &mut String) -> u32 {
        self.release(out);
        let closed = self.pipeline.close_sessions();
        let (anomalies, _) = push_session_records(out, closed, &mut self.tagging.hold);
        if let Some(h) = &mut self.tagging.hold {
            h.settle_all();
            settle(h, &mut self.pipeline);
        }
        anomalies
    }

    /// The input is quiet (no line for a while; call it about twice a second): the sessions
    /// over by now on the host's clock close, their records appended to `out` as after a line.
    pub fn tick(&mut self, out: &mut String) -> LineOutput {
        if !self.pipeline.has_sessions() {
            return LineOutput::default();
        }
        let closed = self.pipeline.tick_sessions();
        let (session_anomalies, lines) = push_session_records(out, closed, &mut self.tagging.hold);
        if let Some(h) = &mut self.tagging.hold {
            settle(h, &mut self.pipeline);
        }
        LineOutput { anomalies: 0, session_anomalies, lines }
    }

    /// Whether sessions are tracked: then a host calls [`Self::tick`] while its input is quiet.
    pub fn has_sessions(&self) -> bool {
        self.pipeline.has_sessions()
    }

    /// With `reduce_sessions keep`: the line number ([`Self::line`]s counted from 1) of the
    /// oldest record still waiting for its session's verdict.
    pub fn oldest_waiting(&self) -> Option<u64> {
        self.tagging.hold.as_ref().and_then(SessionHold::oldest)
    }

    /// With `reduce_sessions keep`: the session holding the oldest waiting record has its
    /// records counted as held back, so what waits behind it can be confirmed (a host whose
    /// queue fills). Whether there was one.
    pub fn count_oldest_waiting(&mut self) -> bool {
        let Some(h) = &mut self.tagging.hold else { return false };
        let counted = h.count_oldest();
        settle(h, &mut self.pipeline);
        counted
    }

    /// Lines given to [`Self::line`] so far.
    pub fn lines_read(&self) -> u64 {
        self.lines
    }

    /// After the last record went out: everything is saved and the run summarised.
    pub fn finish(mut self) -> Result<(), String> {
        self.pipeline.finish_embedding(std::time::Duration::from_secs(10));
        self.pipeline.seal_at_end()?;
        let log = self.pipeline.log;
        if let Some(x) = self.pipeline.explainer() {
            log(LogLevel::Info, &crate::explain::summary(x));
        }
        self.pipeline.report_end();
        if self.cut > 0 {
            log(LogLevel::Warn, &format!("{} events went past the record size bound and were cut", self.cut));
        }
        let counts = &self.tagging.counts;
        if counts.malformed > 0 {
            log(LogLevel::Warn, &format!("{} malformed JSON lines were passed through untouched", counts.malformed));
        }
        if let Some(h) = self.tagging.hold.as_ref().filter(|h| h.overflows > 1) {
            log(LogLevel::Warn, &format!("--reduce-session-mb was reached {} times: those sessions' waiting records were counted as held back", h.overflows));
        }
        if counts.no_message > 0 {
            let keys = ndjson::keys_text(&self.message_keys);
            log(LogLevel::Warn, &format!("{} records had no string message under {keys}; passed through untouched (set --message-key)", counts.no_message));
        }
        Ok(())
    }

    /// Requests waiting for the LLM, when explain is on.
    pub fn explain_queue(&self) -> Option<usize> {
        self.pipeline.explainer().map(|x| x.queued())
    }

    pub fn templates(&self) -> usize {
        self.pipeline.engine.template_count()
    }
}

/// Appends the verdict records of closed sessions (each after the records that waited for it);
/// returns how many were anomalous, and the lines written.
fn push_session_records(out: &mut String, closed: &[ClosedSession], hold: &mut Option<SessionHold>) -> (u32, u32) {
    let (mut anomalies, mut lines) = (0, 0);
    for c in closed {
        let released = match hold {
            Some(h) if c.verdict.anomaly => h.release_anomalous(&c.id, out),
            _ => Default::default(),
        };
        ndjson::session_record(out, c, c.held_back + released.held_back);
        out.push('\n');
        anomalies += c.verdict.anomaly as u32;
        lines += released.lines + 1;
    }
    (anomalies, lines)
}

/// Counts what the hold decided.
fn settle(hold: &mut SessionHold, pipeline: &mut Pipeline) {
    for (t, s, passed) in hold.take_settled() {
        pipeline.settle(t, s, passed);
    }
}

impl Lane {
    /// A container line's part: the whole line (text, first part's shape, whether it was put
    /// together from parts) once its last part came.
    fn put_together<'a>(&mut self, text: &'a str, partial: bool, shape: impl FnOnce() -> Shape, max_bytes: usize) -> Option<(std::borrow::Cow<'a, str>, Shape, bool)> {
        if partial || !self.partial.is_empty() {
            if self.partial_shape.is_none() {
                self.partial_shape = Some(shape());
            }
            let room = max_bytes.saturating_sub(self.partial.len());
            self.partial.push_str(&text[..floor_char_boundary(text, room)]);
            if partial && self.partial.len() < max_bytes {
                return None;
            }
            let whole = std::mem::take(&mut self.partial);
            return Some((std::borrow::Cow::Owned(whole), self.partial_shape.take().unwrap_or(Shape::Text), true));
        }
        Some((std::borrow::Cow::Borrowed(text), shape(), false))
    }
}

fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

/// A completed event out: as it came when it is one line of its own, else as one record in its
/// first line's shape with the joined message and `lines`.
#[allow(clippy::too_many_arguments)]
fn emit(e: &Event, shape: &mut Shape, reassembled: bool, tagging: &mut Tagging, pipeline: &mut Pipeline, event_line: &mut String, out: &mut String, result: &mut LineOutput) {
    // the shape goes out with its event: taken, not copied
    let shape = std::mem::replace(shape, Shape::Text);
    if e.lines == 1 && !reassembled {
        match shape {
            Shape::Text => return tag_record(&e.first, None, None, e.line_no, tagging, pipeline, out, result),
            Shape::Docker(raw, obj) => return tag_record(&raw, Some(obj), None, e.line_no, tagging, pipeline, out, result),
            Shape::Cri { .. } => {}
        }
    }
    let docker = matches!(shape, Shape::Docker(..));
    let (mut obj, key) = match shape {
        Shape::Text => (Map::new(), "message"),
        Shape::Docker(_, obj) => (obj, "log"),
        Shape::Cri { time, stream } => {
            let mut m = Map::new();
            m.insert("time".into(), Value::String(time));
            m.insert("stream".into(), Value::String(stream));
            (m, "message")
        }
    };
    let text = if docker { format!("{}\n", e.text()) } else { e.text().to_string() };
    obj.insert(key.into(), Value::String(text));
    if e.lines > 1 {
        obj.insert("lines".into(), Value::from(e.lines));
    }
    event_line.clear();
    if let Ok(s) = serde_json::to_string(&obj) {
        event_line.push_str(&s);
    }
    let scored = e.scored();
    tag_record(event_line, None, Some(&scored), e.line_no, tagging, pipeline, out, result);
}

/// Tags one record (`obj`: the line as already read); what it became is added to `result`.
#[allow(clippy::too_many_arguments)]
fn tag_record(line: &str, obj: Option<Map<String, Value>>, scored: Option<&str>, seq: u64, tagging: &mut Tagging, pipeline: &mut Pipeline, out: &mut String, result: &mut LineOutput) {
    let before = out.len();
    let mut tagged = false;
    let Tagging { tagger, counts, hold } = tagging;
    // tagged straight into `out`: nothing appended means the record was dropped
    let outcome = match obj {
        Some(obj) => tagger.tag_object(line, obj, scored, seq, pipeline, out),
        None => tagger.tag_line_scored(line, scored, seq, pipeline, out),
    };
    match outcome {
        Outcome::Tagged(v) => {
            result.anomalies += v.anomaly as u32;
            tagged = true;
        }
        Outcome::Malformed(e) => {
            counts.malformed += 1;
            if counts.malformed == 1 {
                (pipeline.log)(LogLevel::Warn, &format!("line {seq} is not valid JSON ({e}); passed through untouched"));
            }
        }
        Outcome::NoMessage => {
            counts.no_message += 1;
            if counts.no_message == 1 {
                let keys = ndjson::keys_text(&tagger.keys);
                (pipeline.log)(LogLevel::Warn, &format!("line {seq} is a JSON record with no string message under {keys}: passed through untouched, not scored (set --message-key KEY; a.b reaches nested objects; further ones are counted at the end)"));
            }
        }
    }
    // what was learned reaches the WAL before the record goes out
    pipeline.after_record();
    if out.len() > before {
        out.push('\n');
        match (pipeline.take_deferred(), hold.as_mut()) {
            (Some((template, shape)), Some(h)) => {
                // it waits for its session's verdict
                let p: &Pipeline = pipeline;
                if h.hold(p.last_session_id(), &out[before..], template, shape, seq, |id| p.session_open(id)) {
                    (pipeline.log)(LogLevel::Warn, &format!("records waiting for their sessions' verdicts reached --reduce-session-mb ({} MiB): the oldest session's were counted as held back (raise it to keep more; counted at the end)", h.cap() >> 20));
                }
                out.truncate(before);
                settle(h, pipeline);
            }
            _ => result.lines += 1,
        }
    }
    if tagged {
        let closed = pipeline.closed();
        let (anomalies, lines) = push_session_records(out, closed, hold);
        result.session_anomalies += anomalies;
        result.lines += lines;
        if let Some(h) = hold {
            settle(h, pipeline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::otlp;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value as V, AnyValue, KeyValue, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use prost::Message as _;

    fn any(v: V) -> Option<AnyValue> {
        Some(AnyValue { value: Some(v) })
    }

    fn attr(k: &str, v: &str) -> KeyValue {
        KeyValue { key: k.into(), value: any(V::StringValue(v.into())), ..Default::default() }
    }

    /// OTLP lines of many shapes, and their known fields.
    fn otlp_lines() -> (String, Vec<Known>) {
        let mut records = Vec::new();
        for i in 0..60u64 {
            let body = match i % 5 {
                0 => any(V::StringValue(format!("user {} logged in from 10.0.0.{}", i % 7, i))),
                1 => any(V::StringValue(format!("disk \"sda{i}\" full\tretrying"))),
                2 => any(V::KvlistValue(KeyValueList { values: vec![attr("msg", &format!("job {i} done")), attr("code", "7")] })),
                3 => any(V::IntValue(i as i64)),
                _ => None,
            };
            records.push(LogRecord {
                time_unix_nano: 1_700_000_000_000_000_000 + i,
                severity_number: [9, 13, 17, 0][i as usize % 4],
                severity_text: if i % 6 == 0 { "Notice".into() } else { String::new() },
                body,
                attributes: if i % 3 == 0 { vec![attr("user", &format!("u{}", i % 4)), attr("message", "from attributes")] } else { Vec::new() },
                trace_id: if i % 2 == 0 { vec![(i % 5) as u8; 16] } else { Vec::new() },
                span_id: vec![1; 8],
                ..Default::default()
            });
        }
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource { attributes: vec![attr("service.name", "checkout")], ..Default::default() }),
                scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
                ..Default::default()
            }],
        };
        let (mut text, mut known) = (String::new(), Vec::new());
        otlp::decode_known(&request.encode_to_vec(), otlp::Encoding::Protobuf, &mut text, Some(&mut known), usize::MAX).unwrap();
        (text, known)
    }

    fn stream(pairs: &[(&str, &str)], joining: bool) -> LineStream {
        let settings = Settings::from_pairs(pairs.iter().copied()).unwrap();
        let (pipeline, _) = Pipeline::open(&settings, Box::new(crate::embed::HashEmbedder::default()), |_, _| {}).unwrap();
        LineStream::new(pipeline, Vec::new(), &settings).unwrap().join(joining.then(Joining::default))
    }

    #[test]
    fn lines_tagged_from_their_known_fields_go_out_as_the_lines_read() {
        let (text, known) = otlp_lines();
        let configs: [&[(&str, &str)]; 4] = [&[], &[("session_field", "trace_id"), ("session_idle", "2")], &[("session_field", "attributes.user")], &[("mode", "only_anomalies")]];
        for pairs in configs {
            for joining in [false, true] {
                let (mut read, mut from_known) = (stream(pairs, joining), stream(pairs, joining));
                let (mut a, mut b) = (String::new(), String::new());
                for _ in 0..3 {
                    for (line, k) in text.lines().zip(known.iter().cloned()) {
                        let ra = read.line(line, &mut a);
                        let rb = from_known.known_line(line, k, &mut b);
                        assert_eq!(ra, rb, "{pairs:?} joining {joining}: {line}");
                    }
                }
                let (ra, rb) = (read.release(&mut a), from_known.release(&mut b));
                assert_eq!(ra, rb);
                assert_eq!(read.close_sessions(&mut a), from_known.close_sessions(&mut b));
                assert!(a.lines().count() >= if pairs.is_empty() { 180 } else { 1 }, "{pairs:?}: {a}");
                assert_eq!(a, b, "{pairs:?} joining {joining}");
                assert_eq!(read.lines_read(), from_known.lines_read());
            }
        }
    }
}
