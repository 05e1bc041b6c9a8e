//! BERT uncased WordPiece, exactly as all-MiniLM-L6-v2 was trained with it (the `tokenizers`
//! library's `BertNormalizer` + `BertPreTokenizer` + `WordPiece` over `vocab.txt`):
//!
//! 1. clean: drop NUL, U+FFFD and control characters; every whitespace character becomes a space;
//! 2. put spaces around CJK ideographs;
//! 3. strip accents (NFD, then drop non-spacing marks), lower-case;
//! 4. split on whitespace, and around each punctuation character;
//! 5. each word: greedy longest match from the vocabulary, `##` before a continuation; a word with
//!    a piece not in the vocabulary, or longer than 100 characters, is `[UNK]`;
//! 6. `[CLS] … [SEP]`, truncated to the model's length.
//!
//! The test against ids from the reference tokenizer lives in `tests/embed_model.rs`.

use std::collections::HashMap;

use unicode_general_category::{get_general_category, GeneralCategory as G};
use unicode_normalization::UnicodeNormalization;

const MAX_WORD_CHARS: usize = 100;

pub struct WordPiece {
    vocab: HashMap<String, u32>,
    pub unk: u32,
    pub cls: u32,
    pub sep: u32,
    pub pad: u32,
}

impl WordPiece {
    /// A vocabulary file: one token per line, the id is the line number from 0.
    pub fn from_vocab(text: &str) -> Result<WordPiece, String> {
        let vocab: HashMap<String, u32> = text.lines().enumerate().map(|(i, t)| (t.to_string(), i as u32)).collect();
        let id = |t: &str| vocab.get(t).copied().ok_or_else(|| format!("the vocabulary has no {t} token: is it a BERT vocab.txt?"));
        Ok(WordPiece { unk: id("[UNK]")?, cls: id("[CLS]")?, sep: id("[SEP]")?, pad: id("[PAD]")?, vocab })
    }

    pub fn len(&self) -> usize {
        self.vocab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vocab.is_empty()
    }

    /// The ids of `text`: `[CLS]`, at most `max_len - 2` pieces, `[SEP]` (appended to `ids`).
    pub fn encode(&self, text: &str, max_len: usize, ids: &mut Vec<u32>) {
        let start = ids.len();
        ids.push(self.cls);
        let limit = start + max_len.max(2) - 1;
        let normalised = normalise(text);
        let mut word = String::new();
        let mut piece = String::new();
        'words: for w in words(&normalised) {
            if ids.len() >= limit {
                break;
            }
            word.clear();
            word.push_str(w);
            let chars: Vec<(usize, char)> = word.char_indices().collect();
            if chars.len() > MAX_WORD_CHARS {
                ids.push(self.unk);
                continue;
            }
            let word_start = ids.len();
            let mut at = 0;
            while at < chars.len() {
                let mut end = chars.len();
                let mut found = None;
                while end > at {
                    piece.clear();
                    if at > 0 {
                        piece.push_str("##");
                    }
                    let from = chars[at].0;
                    let to = chars.get(end).map_or(word.len(), |c| c.0);
                    piece.push_str(&word[from..to]);
                    if let Some(&id) = self.vocab.get(piece.as_str()) {
                        found = Some(id);
                        break;
                    }
                    end -= 1;
                }
                match found {
                    Some(id) => ids.push(id),
                    None => {
                        ids.truncate(word_start);
                        ids.push(self.unk);
                        continue 'words;
                    }
                }
                at = end;
            }
        }
        ids.truncate(limit);
        ids.push(self.sep);
    }
}

fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && matches!(get_general_category(c), G::Control | G::Format | G::Unassigned | G::PrivateUse | G::Surrogate)
}

fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            get_general_category(c),
            G::ConnectorPunctuation | G::DashPunctuation | G::OpenPunctuation | G::ClosePunctuation | G::InitialPunctuation | G::FinalPunctuation | G::OtherPunctuation
        )
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F |
        0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// Steps 1 to 3.
fn normalise(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\0' || c == '\u{fffd}' || is_control(c) {
            continue;
        }
        if is_whitespace(c) {
            cleaned.push(' ');
        } else if is_cjk(c) {
            cleaned.push(' ');
            cleaned.push(c);
            cleaned.push(' ');
        } else {
            cleaned.push(c);
        }
    }
    let mut out = String::with_capacity(cleaned.len());
    for c in cleaned.nfd() {
        if get_general_category(c) == G::NonspacingMark {
            continue;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Step 4: words, with each punctuation character a word of its own.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_whitespace).filter(|w| !w.is_empty()).flat_map(|w| {
        let mut parts = Vec::new();
        let mut start = 0;
        for (i, c) in w.char_indices() {
            if is_punctuation(c) {
                if start < i {
                    parts.push(&w[start..i]);
                }
                parts.push(&w[i..i + c.len_utf8()]);
                start = i + c.len_utf8();
            }
        }
        if start < w.len() {
            parts.push(&w[start..]);
        }
        parts
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> WordPiece {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "disk", "full", "un", "##able", "##s", "to", ":", "/", "dev", "cafe", "中"].join("\n");
        WordPiece::from_vocab(&vocab).unwrap()
    }

    fn ids(w: &WordPiece, text: &str, max: usize) -> Vec<u32> {
        let mut v = Vec::new();
        w.encode(text, max, &mut v);
        v
    }

    #[test]
    fn pieces_punctuation_accents_and_unknowns() {
        let w = tiny();
        assert_eq!(ids(&w, "Disk FULL: unable to /dev", 128), [2, 4, 5, 10, 6, 7, 9, 11, 12, 3]);
        // accents stripped, CJK split, an unknown piece makes the whole word [UNK]
        assert_eq!(ids(&w, "CAFÉ 中xyz disks", 128), [2, 13, 14, 1, 4, 8, 3]);
        // control characters vanish, tabs and newlines are spaces
        assert_eq!(ids(&w, "disk\u{7}\tfull\n", 128), [2, 4, 5, 3]);
    }

    #[test]
    fn truncates_to_the_model_length_with_cls_and_sep() {
        let w = tiny();
        assert_eq!(ids(&w, "disk full disk full disk", 4), [2, 4, 5, 3]);
        assert_eq!(ids(&w, "", 128), [2, 3]);
        assert_eq!(ids(&w, &"a".repeat(101), 128), [2, 1, 3]);
    }

    #[test]
    fn a_vocabulary_without_special_tokens_is_refused() {
        assert!(WordPiece::from_vocab("a\nb").err().unwrap().contains("[UNK]"));
    }
}
