//! `--suggest-session-keys`: id-like tokens that recur across lines of different templates are
//! what a session key looks like. Each token is reduced to its shape (`blk_-?[0-9]+`,
//! `req-[0-9a-f]+`), and shapes are ranked by how many of their ids span several templates.

use std::collections::HashMap;

/// Distinct ids and shapes remembered at most (memory stays bounded on any input).
const MAX_IDS: usize = 200_000;
const MAX_SHAPES: usize = 10_000;

#[derive(Default)]
pub struct Suggester {
    /// id → (shape index, templates seen with it, up to 4)
    ids: HashMap<String, (usize, Vec<u32>)>,
    shapes: Vec<String>,
    shape_index: HashMap<String, usize>,
    lines: Vec<u64>,
}

/// One proposed key.
#[derive(Debug, PartialEq)]
pub struct Candidate {
    pub pattern: String,
    /// Distinct ids of this shape, and how many of them came with two or more templates.
    pub ids: usize,
    pub across_templates: usize,
    pub lines: u64,
}

impl Suggester {
    pub fn observe(&mut self, message: &str, template: u32) {
        for tok in message.split_ascii_whitespace() {
            let t = tok.trim_matches(|c: char| matches!(c, ',' | ';' | ':' | '(' | ')' | '[' | ']' | '{' | '}' | '"' | '\'' | '.' | '='));
            let Some(shape) = shape(t) else { continue };
            let idx = match self.shape_index.get(&shape) {
                Some(&i) => i,
                None if self.shapes.len() >= MAX_SHAPES => continue,
                None => {
                    self.shapes.push(shape.clone());
                    self.lines.push(0);
                    self.shape_index.insert(shape, self.shapes.len() - 1);
                    self.shapes.len() - 1
                }
            };
            self.lines[idx] += 1;
            if let Some((_, templates)) = self.ids.get_mut(t) {
                if templates.len() < 4 && !templates.contains(&template) {
                    templates.push(template);
                }
            } else if self.ids.len() < MAX_IDS {
                self.ids.insert(t.to_string(), (idx, vec![template]));
            }
        }
    }

    /// Shapes whose ids recur across templates, best first.
    pub fn candidates(&self) -> Vec<Candidate> {
        let mut per: Vec<(usize, usize)> = vec![(0, 0); self.shapes.len()];
        for (idx, templates) in self.ids.values() {
            per[*idx].0 += 1;
            per[*idx].1 += (templates.len() >= 2) as usize;
        }
        // `blk_[0-9]+` and `blk_-?[0-9]+` (signed numbers), `req-[0-9]+` and `req-[0-9a-f]+` (hex
        // that happens to hold no letter) are one kind of id: merged under the more general shape
        let plain = |p: &str| p.replace("-?", "").replace("[0-9a-f]+", "[0-9]+");
        let generality = |p: &str| p.matches("-?").count() + p.matches("[0-9a-f]+").count();
        let mut merged: Vec<Candidate> = Vec::new();
        for (i, &(ids, across)) in per.iter().enumerate() {
            let key = plain(&self.shapes[i]);
            match merged.iter_mut().find(|c| plain(&c.pattern) == key) {
                Some(c) => {
                    c.ids += ids;
                    c.across_templates += across;
                    c.lines += self.lines[i];
                    if generality(&self.shapes[i]) > generality(&c.pattern) {
                        c.pattern = self.shapes[i].clone();
                    }
                }
                None => merged.push(Candidate { pattern: self.shapes[i].clone(), ids, across_templates: across, lines: self.lines[i] }),
            }
        }
        let mut out: Vec<Candidate> = merged.into_iter().filter(|c| c.ids >= 2 && c.across_templates >= 2).collect();
        out.sort_by(|a, b| b.across_templates.cmp(&a.across_templates).then(b.lines.cmp(&a.lines)));
        out
    }
}

/// The shape of an id-like token as a regular expression, or `None` for anything that is not
/// one (plain words, numbers, addresses, paths, times, versions).
fn shape(t: &str) -> Option<String> {
    let b = t.as_bytes();
    if b.len() < 5 || b.len() > 64 || !b.iter().any(u8::is_ascii_digit) || !b.iter().any(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    if b.iter().any(|c| matches!(c, b'/' | b':' | b'.' | b'@' | b'\\')) || !b[0].is_ascii_alphanumeric() {
        return None;
    }
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i].is_ascii_hexdigit() {
            // a run of hex digits: numeric, or hex when it mixes in a–f and is long enough
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            let run = &b[start..i];
            let digits = run.iter().all(u8::is_ascii_digit);
            let letters_before = start > 0 && b[start - 1].is_ascii_alphabetic();
            if digits {
                out.push_str("[0-9]+");
            } else if run.len() >= 4 && run.iter().any(u8::is_ascii_digit) && !letters_before {
                out.push_str("[0-9a-f]+");
            } else {
                // a word that happens to be hex-like (`added`, `cafe`): its letters as written,
                // digits as a class
                let mut k = start;
                while k < i {
                    if b[k].is_ascii_digit() {
                        while k < i && b[k].is_ascii_digit() {
                            k += 1;
                        }
                        out.push_str("[0-9]+");
                    } else {
                        out.push(b[k] as char);
                        k += 1;
                    }
                }
            }
        } else if b[i] == b'-' && i + 1 < b.len() && b[i + 1].is_ascii_digit() && i > 0 && !b[i - 1].is_ascii_alphanumeric() {
            out.push_str("-?"); // `blk_-123` and `blk_456` are one kind of id
            i += 1;
        } else {
            let c = b[i] as char;
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                out.push(c);
            } else {
                out.push_str(&regex::escape(&c.to_string()));
            }
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_real_ids() {
        assert_eq!(shape("blk_-1608999687919862906").as_deref(), Some("blk_-?[0-9]+"));
        assert_eq!(shape("blk_38865049064139660").as_deref(), Some("blk_[0-9]+"));
        assert_eq!(shape("req-3fa85f64").as_deref(), Some("req-[0-9a-f]+"));
        assert_eq!(shape("req-0004d").as_deref(), Some("req-[0-9a-f]+"));
        assert_eq!(shape("attempt_1445144423722_0020_m_000004_1026").as_deref(), Some("attempt_[0-9]+_[0-9]+_m_[0-9]+_[0-9]+"));
        assert_eq!(shape("10.0.0.1"), None);
        assert_eq!(shape("12345"), None);
        assert_eq!(shape("/var/log/x1"), None);
        assert_eq!(shape("hello"), None);
    }

    #[test]
    fn ids_that_span_templates_come_first() {
        let mut s = Suggester::default();
        for i in 0..50 {
            s.observe(&format!("Receiving block blk_{i}00 src x"), 0);
            s.observe(&format!("Received block blk_{i}00 of size 5"), 1);
            s.observe(&format!("took 5ms user u{i}x9"), 2);
        }
        let c = s.candidates();
        assert_eq!(c[0].pattern, "blk_[0-9]+");
        assert_eq!((c[0].ids, c[0].across_templates, c[0].lines), (50, 50, 100));
        assert!(c.iter().all(|c| c.pattern != "u[0-9]+x[0-9]+"), "ids seen with one template only are no key");
    }
}
