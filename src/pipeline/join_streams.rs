//! Raw lines into events as `scan` and `watch` read a file: container runtime lines (CRI, Docker
//! json-file) are taken apart first and their partial lines put back together per stream; then
//! each stream (the text lines, a container's stdout, its stderr) joins its own multi-line
//! events. (`filter` and `serve` do the same in [`super::LineStream`], keeping each record's
//! shape for the output.)

use crate::codec::{container, ndjson};

use super::join::{Event, Joiner};

struct Lane {
    /// "" for text lines, else the container stream (with its kind).
    key: (Kind, String),
    joiner: Joiner,
    /// A container line still in parts, and the line number of its first part.
    partial: String,
    partial_line: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Cri,
    Docker,
}

pub struct StreamJoiner {
    lanes: Vec<Lane>,
    max_bytes: usize,
}

impl StreamJoiner {
    pub fn new(max_bytes: usize) -> StreamJoiner {
        StreamJoiner { lanes: Vec::new(), max_bytes: max_bytes.max(1) }
    }

    /// Takes raw line `line_no`; the events it completes go to `out`.
    pub fn push(&mut self, line: &str, line_no: u64, out: &mut impl Extend<Event>) {
        if let Some(c) = container::cri(line) {
            let i = self.lane(Kind::Cri, c.stream);
            return self.part(i, c.text, c.partial, line_no, out);
        }
        if let Some(Ok(obj)) = ndjson::parse_object(line) {
            if let Some((log, stream)) = container::docker(&obj) {
                let i = self.lane(Kind::Docker, stream);
                let (text, partial) = match log.strip_suffix('\n') {
                    Some(t) => (t.strip_suffix('\r').unwrap_or(t), false),
                    None => (log, true),
                };
                return self.part(i, text, partial, line_no, out);
            }
            // a structured record is whole: what the text lines were joining is over, and
            // nothing continues it
            let i = self.lane(Kind::Text, "");
            let j = &mut self.lanes[i].joiner;
            j.flush_with(|e| out.extend([e.clone()]));
            j.push_with(line, line_no, |_| {});
            j.flush_with(|e| out.extend([e.clone()]));
            return;
        }
        let i = self.lane(Kind::Text, "");
        self.lanes[i].joiner.push_with(line, line_no, |e| out.extend([e.clone()]));
    }

    /// Everything pending goes to `out` (end of input, or input paused).
    pub fn flush(&mut self, out: &mut impl Extend<Event>) {
        for lane in &mut self.lanes {
            if !lane.partial.is_empty() {
                let text = std::mem::take(&mut lane.partial);
                lane.joiner.push_with(&text, lane.partial_line, |e| out.extend([e.clone()]));
            }
            lane.joiner.flush_with(|e| out.extend([e.clone()]));
        }
    }

    fn part(&mut self, i: usize, text: &str, partial: bool, line_no: u64, out: &mut impl Extend<Event>) {
        let max = self.max_bytes;
        let lane = &mut self.lanes[i];
        if !partial && lane.partial.is_empty() {
            lane.joiner.push_with(text, line_no, |e| out.extend([e.clone()]));
            return;
        }
        if lane.partial.is_empty() {
            lane.partial_line = line_no;
        }
        let room = max.saturating_sub(lane.partial.len());
        let mut cut = text.len().min(room);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        lane.partial.push_str(&text[..cut]);
        if partial && lane.partial.len() < max {
            return;
        }
        let whole = std::mem::take(&mut lane.partial);
        lane.joiner.push_with(&whole, lane.partial_line, |e| out.extend([e.clone()]));
    }

    fn lane(&mut self, kind: Kind, stream: &str) -> usize {
        if let Some(i) = self.lanes.iter().position(|l| l.key.0 == kind && l.key.1 == stream) {
            return i;
        }
        self.lanes.push(Lane { key: (kind, stream.to_string()), joiner: Joiner::with_max_bytes(self.max_bytes), partial: String::new(), partial_line: 0 });
        self.lanes.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(lines: &[&str]) -> Vec<(u64, String)> {
        let mut j = StreamJoiner::new(1 << 20);
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            j.push(l, i as u64 + 1, &mut out);
        }
        j.flush(&mut out);
        out.iter().map(|e| (e.line_no, e.text().to_string())).collect()
    }

    #[test]
    fn cri_and_docker_partials_are_put_back_together_and_traces_joined_per_stream() {
        let cri = events(&[
            "2024-05-01T10:00:00.0Z stderr F 2024-05-01 10:00:00 ERROR boom",
            "2024-05-01T10:00:00.1Z stderr P java.lang.IllegalState",
            "2024-05-01T10:00:00.1Z stdout F 2024-05-01 10:00:00 INFO other stream",
            "2024-05-01T10:00:00.1Z stderr F Exception: pool",
            "2024-05-01T10:00:00.2Z stderr F \tat a.B.c(B.java:1)",
        ]);
        assert_eq!(
            cri,
            [(1, "2024-05-01 10:00:00 ERROR boom\njava.lang.IllegalStateException: pool\n\tat a.B.c(B.java:1)".to_string()), (3, "2024-05-01 10:00:00 INFO other stream".to_string())]
        );
        let docker = events(&[
            r#"{"log":"2024-05-01 10:00:00 ERROR boom\n","stream":"stderr","time":"x"}"#,
            r#"{"log":"java.lang.IllegalState","stream":"stderr","time":"x"}"#,
            r#"{"log":"Exception: pool\n","stream":"stderr","time":"x"}"#,
            r#"{"msg":"a structured record","level":"info"}"#,
        ]);
        assert_eq!(docker[0], (4, r#"{"msg":"a structured record","level":"info"}"#.to_string()));
        assert_eq!(docker[1], (1, "2024-05-01 10:00:00 ERROR boom\njava.lang.IllegalStateException: pool".to_string()));
    }
}
