//! The pipeline over a stream of NDJSON or text lines (`filter`, `serve`): each line in, the
//! tagged record and the verdicts of the sessions it closed out, in order.

use crate::codec::fields::Mode;
use crate::codec::ndjson::{self, LineTagger, Outcome};
use crate::codec::Scorer;
use crate::session::ClosedSession;

use super::{LogLevel, Pipeline, Settings};

/// What one input line became.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineOutput {
    /// Scored as anomalous.
    pub anomaly: bool,
    /// Closed sessions judged anomalous by this line (their records follow the line's).
    pub session_anomalies: u32,
    /// Lines written out: the record's (unless dropped) and one per closed session.
    pub lines: u32,
}

/// One stream of lines through the pipeline.
pub struct LineStream {
    pub pipeline: Pipeline,
    tagger: LineTagger,
    /// The message keys as given (empty: the defaults), for what is said at the end.
    message_keys: Vec<String>,
    malformed: u64,
    no_message: u64,
    lines: u64,
}

impl LineStream {
    /// The stream of an open pipeline, tagging as `settings` say; `message_keys` empty =
    /// [`ndjson::DEFAULT_KEYS`]. From here on no record waits for the model.
    pub fn new(mut pipeline: Pipeline, message_keys: Vec<String>, settings: &Settings) -> Result<LineStream, String> {
        pipeline.defer_embedding()?;
        let tagger = LineTagger::new(message_keys.clone(), settings.mode == Mode::OnlyAnomalies, settings.field_policy);
        Ok(LineStream { pipeline, tagger, message_keys, malformed: 0, no_message: 0, lines: 0 })
    }

    /// Tags one input line (without its newline): appends what goes out — the record, then any
    /// session verdicts it closed — to `out`, each line ending in `\n`.
    pub fn line(&mut self, line: &str, out: &mut String) -> LineOutput {
        self.lines += 1;
        let before = out.len();
        let mut result = LineOutput::default();
        let mut tagged = false;
        // tagged straight into `out`: nothing appended means the record was dropped
        match self.tagger.tag_line(line, self.lines, &mut self.pipeline, out) {
            Outcome::Tagged(v) => {
                result.anomaly = v.anomaly;
                tagged = true;
            }
            Outcome::Malformed(e) => {
                self.malformed += 1;
                if self.malformed == 1 {
                    (self.pipeline.log)(LogLevel::Warn, &format!("line {} is not valid JSON ({e}); passed through untouched", self.lines));
                }
            }
            Outcome::NoMessage => self.no_message += 1,
        }
        // what was learned reaches the WAL before the record goes out
        self.pipeline.after_record();
        if out.len() > before {
            out.push('\n');
            result.lines = 1;
        }
        if tagged {
            let closed = self.pipeline.closed();
            result.session_anomalies = push_session_records(out, closed);
            result.lines += closed.len() as u32;
        }
        result
    }

    /// Whether a window is due; the caller flushes what it has written, then calls [`Self::seal_window`].
    pub fn window_due(&self) -> bool {
        self.pipeline.window_due()
    }

    /// Seals the window. A failing disk is said and retried at the next window; the stream goes on.
    pub fn seal_window(&mut self) {
        self.pipeline.seal_quietly();
    }

    /// Ends the reduce window (call it when a window is due, before [`Self::seal_window`], and
    /// at the end): one summary record per template that had records held back, appended to
    /// `out`, each line ending in `\n`; how many.
    pub fn end_window(&mut self, out: &mut String) -> u32 {
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
        let closed = self.pipeline.close_sessions();
        push_session_records(out, closed)
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
        if self.malformed > 0 {
            log(LogLevel::Warn, &format!("{} malformed JSON lines were passed through untouched", self.malformed));
        }
        if self.no_message > 0 {
            let keys = if self.message_keys.is_empty() { ndjson::DEFAULT_KEYS.join(", ") } else { self.message_keys.join(", ") };
            log(LogLevel::Warn, &format!("{} records had no string message under {keys}; passed through untouched (set --message-key)", self.no_message));
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

/// Appends the verdict records of closed sessions; returns how many were anomalous.
fn push_session_records(out: &mut String, closed: &[ClosedSession]) -> u32 {
    let mut anomalies = 0;
    for c in closed {
        ndjson::session_record(out, c);
        out.push('\n');
        anomalies += c.verdict.anomaly as u32;
    }
    anomalies
}
