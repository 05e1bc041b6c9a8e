//! Property tests: every text stage is correct on any valid UTF-8 and on lossily converted
//! invalid bytes. Inputs are arbitrary Unicode strings and real loghub lines with random
//! insertions (characters of every width at any character position, raw bytes at any byte
//! position). Each stage has its own properties, beyond "does not panic".

use std::sync::OnceLock;

use proptest::prelude::*;
use turbolog::detect::level::{trouble_score, Level};
use turbolog::detect::template::{Miner, MinerConfig};
use turbolog::detect::token::{tokenize, Token};
use turbolog::detect::{line_key, message};
use turbolog::codec::ndjson::{LineTagger, Outcome};
use turbolog::{Engine, EngineConfig};

/// Every line of the 13 loghub samples in `../shared`.
fn real_lines() -> &'static [String] {
    static LINES: OnceLock<Vec<String>> = OnceLock::new();
    LINES.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/loghub");
        let mut lines = Vec::new();
        for entry in std::fs::read_dir(&root).expect("../shared/datasets/loghub beside the repository") {
            let dir = entry.unwrap().path();
            let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
            if let Ok(bytes) = std::fs::read(dir.join(format!("{name}_2k.log"))) {
                lines.extend(String::from_utf8_lossy(&bytes).lines().map(str::to_string));
            }
        }
        assert!(lines.len() > 20_000, "loghub samples missing under {}", root.display());
        lines
    })
}

/// Characters of 1 to 4 bytes, and the ones text stages treat specially.
fn odd_char() -> impl Strategy<Value = char> {
    prop_oneof![
        Just('é'),
        Just('語'),
        Just('𝄞'),
        Just('\u{FFFD}'),
        Just('\u{0301}'),
        Just('\u{00A0}'),
        Just('\t'),
        Just('"'),
        Just('\\'),
        Just('='),
        Just('['),
        Just(']'),
        Just('|'),
        Just(':'),
        Just('{'),
        any::<char>(),
    ]
}

/// A real line with characters inserted at random character positions.
fn real_line_with_insertions() -> impl Strategy<Value = String> {
    (any::<prop::sample::Index>(), prop::collection::vec((any::<prop::sample::Index>(), odd_char()), 1..6)).prop_map(
        |(line, inserts)| {
            let mut chars: Vec<char> = real_lines()[line.index(real_lines().len())].chars().collect();
            for (at, c) in inserts {
                let i = at.index(chars.len() + 1);
                chars.insert(i, c);
            }
            chars.into_iter().collect()
        },
    )
}

/// A real line with raw bytes inserted at random byte positions, then converted as the CLI does.
fn real_line_with_bytes() -> impl Strategy<Value = String> {
    (any::<prop::sample::Index>(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)).prop_map(
        |(line, inserts)| {
            let mut bytes = real_lines()[line.index(real_lines().len())].as_bytes().to_vec();
            for (at, b) in inserts {
                let i = at.index(bytes.len() + 1);
                bytes.insert(i, b);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        },
    )
}

/// Arbitrary Unicode, short lines of accented words, real lines with insertions.
fn any_line() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zäöüéèßñ語 0-9:\\-\\[\\]=\"|.]{0,60}",
        real_line_with_insertions(),
        real_line_with_bytes(),
    ]
}

fn is_within(outer: &str, inner: &str) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn header_extraction_returns_a_trimmed_part_of_the_line(line in any_line()) {
        let m = message::extract(&line);
        prop_assert!(is_within(&line, m.text), "message is not a slice of the line");
        prop_assert_eq!(m.text, m.text.trim());
        let p = message::plain(&line);
        prop_assert!(is_within(&line, p.text));
        // record times and session-key suggestions read the same lines: never a panic
        let _ = turbolog::detect::time::of_line(&line);
        let _ = turbolog::detect::time::of_value(&line);
        let mut s = turbolog::session::suggest::Suggester::default();
        s.observe(&line, 0);
        let _ = s.candidates();
    }

    #[test]
    fn tokens_are_ordered_char_aligned_and_bounded(line in any_line(), max in 1usize..100) {
        let mut tokens: Vec<Token> = Vec::new();
        tokenize(&line, &mut tokens, max);
        prop_assert!(tokens.len() <= max);
        let mut end = 0usize;
        for t in &tokens {
            let text = t.text(&line);
            prop_assert!(!text.is_empty());
            prop_assert!(is_within(&line, text));
            let start = text.as_ptr() as usize - line.as_ptr() as usize;
            prop_assert!(start >= end, "tokens overlap");
            end = start + text.len();
            let (pre, _, post) = t.masked(&line);
            prop_assert!(text.starts_with(pre));
            // the closing text is the token's own; a shaped value (`<*>:<*>`) writes its shape before
            // it; an empty value (`[]`) masks the empty range between its brackets
            let tail = &line[t.var_end as usize..t.end as usize];
            if !t.is_shaped() || !t.is_var() {
                prop_assert!(text.ends_with(post));
            } else {
                prop_assert!(post.ends_with(tail) && post.starts_with([':', '/']) && post.contains("<*>"), "{post:?} {tail:?}");
            }
            let mut rendered = String::new();
            t.render_masked(&line, &mut rendered);
            prop_assert!(t.masked_eq(&line, &rendered), "a token does not match its own mask: {rendered}");
        }
    }

    #[test]
    fn line_key_ignores_digits_only(line in any_line(), digit in 0u8..10) {
        let changed: String = line.chars().map(|c| if c.is_ascii_digit() { (b'0' + digit) as char } else { c }).collect();
        prop_assert_eq!(line_key::key(line.as_bytes()), line_key::key(changed.as_bytes()));
        let longer = format!("{line}x");
        prop_assert_ne!(line_key::key(line.as_bytes()), line_key::key(longer.as_bytes()));
    }

    #[test]
    fn levels_parse_case_insensitively(word in any_line()) {
        // single letters (`E`, `W`) are case-sensitive by design; words are not
        let a = Level::parse(&word, false);
        prop_assert_eq!(a, Level::parse(&word.to_ascii_uppercase(), false));
        prop_assert_eq!(a, Level::parse(&word.to_ascii_lowercase(), false));
        let _ = Level::parse(&word, true);
        let t = trouble_score(&word);
        prop_assert!((0.0..=1.0).contains(&t));
    }

    #[test]
    fn a_mined_message_finds_its_template_again(lines in prop::collection::vec(any_line(), 1..20)) {
        let mut miner = Miner::new(MinerConfig::default());
        for l in &lines {
            let msg = message::extract(l).text;
            let first = miner.add(msg);
            let again = miner.add(msg);
            prop_assert_eq!(again.id, first.id);
            prop_assert!(!again.created && !again.generalised);
            prop_assert!(!miner.get(first.id).unwrap().text().contains("  "));
        }
    }

    #[test]
    fn the_engine_scores_any_line(lines in prop::collection::vec(any_line(), 1..30)) {
        let mut engine = Engine::new(EngineConfig::default());
        for l in &lines {
            let v = engine.process_line(l);
            prop_assert!((0.0..=1.0).contains(&v.score), "score {}", v.score);
            let reason = v.reason.to_string();
            prop_assert!(!reason.is_empty());
            let _ = engine.template_text(v.template_id);
        }
        prop_assert_eq!(engine.records(), lines.len() as u64);
    }

    #[test]
    fn ndjson_output_is_json_with_the_fields(msg in any_line(), extra in any_line(), only in any::<bool>()) {
        let mut engine = Engine::new(EngineConfig::default());
        let mut tagger = LineTagger::new(Vec::new(), only, turbolog::codec::fields::FieldPolicy::All);
        let record = serde_json::json!({ "log": msg, "other": extra }).to_string();
        for line in [record.as_str(), msg.as_str()] {
            let mut out = String::new();
            match tagger.tag_line(line, 1, &mut engine, &mut out) {
                Outcome::Tagged(v) => {
                    if only && !v.anomaly {
                        prop_assert!(out.is_empty());
                        continue;
                    }
                    let parsed: serde_json::Value = serde_json::from_str(&out).map_err(|e| TestCaseError::fail(format!("{e}: {out}")))?;
                    prop_assert_eq!(parsed["anomaly"].as_bool(), Some(v.anomaly));
                    prop_assert!(parsed["template"].is_string());
                    prop_assert_eq!(parsed["anomaly_reason"].is_null(), !v.anomaly);
                }
                // text that happens to start with `{` and is no JSON object passes through
                Outcome::Malformed(_) | Outcome::NoMessage => prop_assert!(out.is_empty() || out == line),
            }
        }
    }

    #[test]
    fn ndjson_keeps_malformed_lines_untouched(line in any_line()) {
        let line = format!("{{{line}");
        let mut engine = Engine::new(EngineConfig::default());
        let mut out = String::new();
        if let Outcome::Malformed(_) = LineTagger::new(Vec::new(), false, turbolog::codec::fields::FieldPolicy::All).tag_line(&line, 1, &mut engine, &mut out) {
            prop_assert_eq!(out, line);
        }
    }
}

/// The regressions reported in the hardening issue, exactly as reported.
#[test]
fn reported_inputs_do_not_panic() {
    let mut engine = Engine::new(EngineConfig::default());
    for line in ["usér logged in", "e語", "Öl 12:00 Dienstag café", "Mär 3 ñandú", "语 语 语", "\u{FFFD}\u{FFFD}\u{FFFD}"] {
        engine.process_line(line);
        let mut out = String::new();
        LineTagger::default().tag_line(&format!("{{\"log\":{}}}", serde_json::json!(line)), 1, &mut engine, &mut out);
        assert!(out.contains("\"anomaly\":"), "{out}");
    }
}
