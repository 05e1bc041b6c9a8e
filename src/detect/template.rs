//! Stage 2b: tokens → template. A streaming template miner in the spirit of Drain.
//!
//! Every message is masked (see [`crate::detect::token`]) and looked up by the hash of its masked token
//! sequence: a known shape costs one hash and one map probe, nothing else. A shape seen for the
//! first time is compared with the templates of the same length; if one is similar enough it
//! absorbs the message and the positions that differ become `<*>`. A template may generalise
//! this way, but its id never changes: ids are handed out once, in order, and never reused.
//!
//! The cost of a new shape does not grow with the number of templates: candidates come from an
//! index of (length, position, token), and only the positions with the shortest lists are read —
//! enough of them that every template agreeing on the required share of positions is found —
//! with a hard cap on templates compared. Two different plain words at one position usually mean
//! two templates; but when one position of a template keeps meeting new words (names, generated
//! ids), it is a value whatever word precedes it. The table is capped (`max_templates`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::detect::token::{tokenize, Token, WILDCARD};

pub type TemplateId = u32;

/// Tuning of the miner. Defaults are what the loghub evaluation (`scripts/eval_parsing.py`) runs.
#[derive(Clone, Debug)]
pub struct MinerConfig {
    /// Fraction of positions that must agree for a new shape to join a template.
    pub similarity: f32,
    /// Positions where the template and a message hold two different plain words (no digits, no
    /// path) that one merge may turn into `<*>`. Two such words are usually two templates
    /// (`Failed to get next element` / `Failed to open package`), one is usually a name.
    pub max_word_conflicts: usize,
    /// Tokens considered per message; the tail of a longer message is one variable token.
    pub max_tokens: usize,
    /// Templates kept. Past it, new shapes join their nearest template or the overflow template.
    pub max_templates: usize,
    /// Entries of the shape cache before it is cleared (it refills from the templates).
    pub max_cached_shapes: usize,
    /// Different words a template's position must have met (in messages that were otherwise
    /// similar enough to join it) before that position is taken for a value.
    pub distinct_words_for_value: usize,
    /// Most templates compared with one new shape.
    pub max_probes: usize,
}

/// Default of [`MinerConfig::max_templates`] (the `max_templates` property).
pub const DEFAULT_MAX_TEMPLATES: usize = 20_000;

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            similarity: 0.5,
            max_word_conflicts: 1,
            max_tokens: 96,
            max_templates: DEFAULT_MAX_TEMPLATES,
            max_cached_shapes: 1 << 16,
            distinct_words_for_value: 8,
            max_probes: 64,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot {
    Const(Box<str>),
    Wild,
}

/// A template: its id, its text with `<*>` for variables, and how often it was matched.
#[derive(Clone, Debug)]
pub struct Template {
    pub id: TemplateId,
    slots: Vec<Slot>,
    /// [`token_hash`] of each constant slot, [`WILD_HASH`] for `<*>`: compared first, in one
    /// contiguous array, so a candidate costs no pointer chase per slot.
    hashes: Vec<u64>,
    text: String,
    pub count: u64,
}

impl Template {
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Tokens of the template (a message of another length joined it by its constants alone).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether position `pos` is a whole-token `<*>`.
    /// Whether the message's tokens fit this template as it is: every constant agrees (masked),
    /// so joining it changes nothing of the miner's (no generalisation, no new value key).
    pub fn fits(&self, msg: &str, tokens: &[Token]) -> bool {
        self.slots.len() == tokens.len()
            && self.slots.iter().zip(tokens).all(|(s, tok)| match s {
                Slot::Wild => true,
                Slot::Const(c) => tok.masked_eq(msg, c),
            })
    }

    pub fn is_wild(&self, pos: usize) -> bool {
        matches!(self.slots.get(pos), Some(Slot::Wild))
    }

    /// The text of position `pos`: its constant (`uid=<*>`, `"GET`), or `<*>`.
    pub fn slot_text(&self, pos: usize) -> Option<&str> {
        match self.slots.get(pos)? {
            Slot::Const(c) => Some(c),
            Slot::Wild => Some(WILDCARD),
        }
    }

    fn render(slots: &[Slot]) -> String {
        let mut text = String::new();
        for (i, s) in slots.iter().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            match s {
                Slot::Const(c) => text.push_str(c),
                Slot::Wild => text.push_str(WILDCARD),
            }
        }
        text
    }
}

/// What the miner did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    pub id: TemplateId,
    /// The template was created by this message.
    pub created: bool,
    /// An existing template generalised to take this message (its text changed).
    pub generalised: bool,
}

/// The id of the catch-all template used once `max_templates` is reached.
pub const OVERFLOW_TEXT: &str = "<template limit reached>";

/// What a host says, once, when the template table is full.
pub fn limit_warning(max_templates: usize) -> String {
    format!(
        "the template limit ({max_templates}) is reached: from now on a line that matches no template is counted under \
         the one overflow template `{OVERFLOW_TEXT}` (nothing learned is evicted); if these logs really have that many \
         kinds of message raise max_templates (--max-templates), otherwise check that the message is found \
         (message key, --no-header)"
    )
}

/// For maps keyed by a hash already well mixed.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type ShapeMap = HashMap<u64, TemplateId, BuildHasherDefault<IdentityHasher>>;

type GenShapeMap = HashMap<u64, (TemplateId, u32), BuildHasherDefault<IdentityHasher>>;

type PostingMap = HashMap<u64, Posting, BuildHasherDefault<IdentityHasher>>;

/// The templates holding one token at one position. Most tokens are in one template: that one
/// is kept inline, so reading it costs one probe and no second memory access.
enum Posting {
    One(TemplateId),
    Many(Vec<TemplateId>),
}

impl Posting {
    fn push(&mut self, id: TemplateId) {
        match self {
            Posting::One(first) => *self = Posting::Many(vec![*first, id]),
            Posting::Many(ids) => ids.push(id),
        }
    }

    fn as_slice(&self) -> &[TemplateId] {
        match self {
            Posting::One(id) => std::slice::from_ref(id),
            Posting::Many(ids) => ids,
        }
    }
}

/// Distinct words seen at the positions where messages conflicted with one template.
#[derive(Default)]
struct Evidence {
    words: Vec<u64>,
}

pub struct Miner {
    config: MinerConfig,
    templates: Vec<Template>,
    by_len: HashMap<usize, Vec<TemplateId>>,
    /// (length, position, constant token) → templates holding that constant there.
    postings: PostingMap,
    /// Masked token sequence → its template, with the generation of its length when a search
    /// chose it (another generation when it was not chosen by a search).
    shapes: GenShapeMap,
    /// Constant tokens only, whatever the number of variables between them → template: one
    /// entry per template (bounded by the table) ...
    skeletons: ShapeMap,
    /// ... and one per message shape seen, a cache cleared like `shapes`.
    seen_skeletons: ShapeMap,
    /// (template, conflicting positions) → distinct words met there.
    evidence: HashMap<u64, Evidence, BuildHasherDefault<IdentityHasher>>,
    /// Keys whose word values have changed in some template (`user=` met `root` and `bob`): their
    /// values are masked as values from then on, so a new word costs no new shape.
    value_keys: std::collections::HashSet<u64, BuildHasherDefault<IdentityHasher>>,
    overflow: Option<TemplateId>,
    overflowed: u64,
    /// Templates covered by a more general one: no longer candidates (see `retire_covered`).
    retired: Vec<bool>,
    tokens: Vec<Token>,
    /// The last message's template was chosen by a search of the templates of its length (or
    /// made for it), not taken from the shape cache or a skeleton.
    last_searched: bool,
    /// Per message length: bumped whenever a template of that length is created or changes, so
    /// a choice made among them (a cached verdict) can tell it may be stale.
    generations: Vec<u32>,
    /// Scratch for candidate search, reused.
    keys: Vec<(u8, u64)>,
    candidates: Vec<TemplateId>,
    /// [`token_hash`] of each token of the message being placed.
    msg_hashes: Vec<u64>,
}

/// Entries of the evidence table before it is cleared (it is only a hint; it refills).
const MAX_EVIDENCE: usize = 1 << 16;

/// A template of this length is compared with every other of its length when there are at most
/// this many; past it, the index chooses.
const EXACT_SCAN: usize = 64;

impl Miner {
    pub fn new(config: MinerConfig) -> Self {
        Miner {
            tokens: Vec::with_capacity(config.max_tokens),
            config,
            templates: Vec::new(),
            by_len: HashMap::new(),
            postings: PostingMap::default(),
            shapes: GenShapeMap::default(),
            skeletons: ShapeMap::default(),
            seen_skeletons: ShapeMap::default(),
            evidence: HashMap::default(),
            value_keys: Default::default(),
            overflow: None,
            overflowed: 0,
            retired: Vec::new(),
            generations: Vec::new(),
            last_searched: false,
            keys: Vec::new(),
            candidates: Vec::new(),
            msg_hashes: Vec::new(),
        }
    }

    /// Messages that joined the overflow template because `max_templates` was reached.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    pub fn max_templates(&self) -> usize {
        self.config.max_templates
    }

    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    pub fn get(&self, id: TemplateId) -> Option<&Template> {
        self.templates.get(id as usize)
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Mines `msg`: finds or creates its template and counts it.
    pub fn add(&mut self, msg: &str) -> Match {
        let mut tokens = std::mem::take(&mut self.tokens);
        tokenize(msg, &mut tokens, self.config.max_tokens);
        if !self.value_keys.is_empty() {
            for t in tokens.iter_mut() {
                if let Some((key, v_start, v_end)) = crate::detect::token::keyed_word(msg, t) {
                    if self.value_keys.contains(&key) {
                        t.var_start = v_start;
                        t.var_end = v_end;
                    }
                }
            }
        }
        let m = self.add_tokens(msg, &tokens);
        self.tokens = tokens;
        self.templates[m.id as usize].count += 1;
        m
    }

    /// Other templates of the message's length that it fits too (every constant agrees), up to
    /// the newest `EXACT_SCAN * 4`: which template a message joins can depend on what was mined
    /// before it (a restart starts with no shapes cached), and what one learned the other may know.
    pub fn siblings(&self, id: TemplateId, msg: &str, tokens: &[Token], out: &mut Vec<TemplateId>) {
        out.clear();
        let Some(bucket) = self.by_len.get(&tokens.len()) else { return };
        let fits = |t: &Template| t.slots.iter().zip(tokens).all(|(s, tok)| match s {
            Slot::Wild => true,
            Slot::Const(c) => tok.masked_eq(msg, c),
        });
        // retired templates are not in the bucket, but may have learned values: look at the
        // ones next to it too (splinters come just before the template that covered them)
        out.extend(bucket.iter().rev().take(EXACT_SCAN * 4).copied().filter(|&u| u != id && fits(&self.templates[u as usize])));
        let retired = self.retired.iter().enumerate().rev().filter(|(_, &r)| r).take(EXACT_SCAN).map(|(u, _)| u as TemplateId);
        out.extend(retired.filter(|&u| u != id && self.templates[u as usize].slots.len() == tokens.len() && fits(&self.templates[u as usize])));
    }

    /// Whether the last message's template was chosen by searching the templates of its length
    /// (or made for it): what a message with another word at one of its `<*>` would get too,
    /// while those templates stay as they are. A shape-cache hit may be an older choice.
    pub fn last_searched(&self) -> bool {
        self.last_searched
    }

    /// How often the templates of `len` tokens were created or changed (see `generations`).
    pub fn generation(&self, len: usize) -> u32 {
        self.generations.get(len).copied().unwrap_or(0)
    }

    fn changed(&mut self, len: usize) {
        if self.generations.len() <= len {
            self.generations.resize(len + 1, 0);
        }
        self.generations[len] = self.generations[len].wrapping_add(1);
    }

    /// The tokens of the message last given to [`Miner::add`].
    pub fn last_tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Counts one more message of a known template (the engine's line cache found it).
    pub fn count(&mut self, id: TemplateId) {
        if let Some(t) = self.templates.get_mut(id as usize) {
            t.count += 1;
        }
    }

    fn add_tokens(&mut self, msg: &str, tokens: &[Token]) -> Match {
        let shape = shape_hash(msg, tokens);
        self.last_searched = false;
        if let Some(&(id, generation)) = self.shapes.get(&shape) {
            // a search now would choose the same while the templates of this length are as then
            self.last_searched = generation == self.generation(tokens.len());
            return Match { id, created: false, generalised: false };
        }
        if self.shapes.len() >= self.config.max_cached_shapes {
            self.shapes.clear();
        }
        let skeleton = skeleton_hash(msg, tokens);
        self.msg_hashes.clear();
        self.msg_hashes.extend(tokens.iter().map(|t| token_hash_of(msg, t)));
        let m = match self.best_candidate(msg, tokens) {
            Some((id, _)) => {
                self.last_searched = true;
                let generalised = self.generalise(id, msg, tokens);
                if generalised {
                    self.retire_covered(id);
                    self.changed(tokens.len());
                }
                Match { id, created: false, generalised }
            }
            None if skeleton.and_then(|k| self.skeleton_id(k)).is_some() => {
                // Same constants, a different number of values between them.
                Match { id: skeleton.and_then(|k| self.skeleton_id(k)).unwrap_or_default(), created: false, generalised: false }
            }
            None if self.templates.len() >= self.config.max_templates => {
                self.overflowed += 1;
                Match { id: self.overflow_id(), created: false, generalised: false }
            }
            None => {
                self.last_searched = true;
                Match { id: self.create(msg, tokens), created: true, generalised: false }
            }
        };
        let generation = self.generation(tokens.len());
        self.shapes.insert(shape, (m.id, if self.last_searched { generation } else { generation.wrapping_sub(1) }));
        if m.created || m.generalised {
            let t = &self.templates[m.id as usize];
            if let Some(k) = slots_skeleton(&t.slots) {
                self.skeletons.entry(k).or_insert(m.id);
            }
        }
        if let Some(k) = skeleton {
            if !self.skeletons.contains_key(&k) {
                if self.seen_skeletons.len() >= self.config.max_cached_shapes {
                    self.seen_skeletons.clear();
                }
                self.seen_skeletons.entry(k).or_insert(m.id);
            }
        }
        m
    }

    /// The most similar template of the same length, if similar enough: the first with the
    /// highest share of agreeing constants whose differing plain words are values.
    fn best_candidate(&mut self, msg: &str, tokens: &[Token]) -> Option<(TemplateId, f32)> {
        let (best, refused) = self.scan_candidates(msg, tokens);
        if best.is_some() {
            return best;
        }
        let (id, sim) = refused?;
        self.variable_enough(id, msg, tokens).then_some((id, sim))
    }

    /// The best candidate whose differing words allow it, and the closest refused only for its
    /// words. Changes nothing but scratch.
    fn scan_candidates(&mut self, msg: &str, tokens: &[Token]) -> (Option<(TemplateId, f32)>, Option<(TemplateId, f32)>) {
        let n = tokens.len();
        let Some(bucket) = self.by_len.get(&n) else { return (None, None) };
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        if bucket.len() <= EXACT_SCAN {
            candidates.extend_from_slice(bucket);
        } else {
            self.indexed_candidates(tokens, &mut candidates);
        }
        let mut best: Option<(TemplateId, f32)> = None;
        // the closest template refused only for its differing words, and where they differ
        let mut refused: Option<(TemplateId, f32)> = None;
        for &id in &candidates {
            if self.retired[id as usize] {
                continue;
            }
            let t = &self.templates[id as usize];
            let sim = similarity(&t.hashes, &self.msg_hashes);
            if sim < self.config.similarity || best.is_some_and(|(_, b)| sim <= b) {
                continue;
            }
            let conflicts = word_conflicts(&t.slots, msg, tokens);
            if conflicts == 0
                || conflicts <= self.config.max_word_conflicts && sim > 0.5 && word_conflicts_are_values(&t.slots, msg, tokens)
            {
                best = Some((id, sim));
            } else if refused.is_none_or(|(_, r)| sim > r) {
                refused = Some((id, sim));
            }
        }
        self.candidates = candidates;
        (best, refused)
    }

    /// Whether a search of the templates as they are now chooses `id` for the message last
    /// given to [`Miner::add`] — after a shape-cache hit from an older generation: when it
    /// does, the shape's entry is brought up to date and [`Miner::last_searched`] holds.
    pub fn confirm_last(&mut self, msg: &str, id: TemplateId) -> bool {
        if self.last_searched {
            return true;
        }
        let tokens = std::mem::take(&mut self.tokens);
        self.msg_hashes.clear();
        self.msg_hashes.extend(tokens.iter().map(|t| token_hash_of(msg, t)));
        let agrees = matches!(self.scan_candidates(msg, &tokens).0, Some((best, _)) if best == id);
        if agrees {
            let shape = shape_hash(msg, &tokens);
            let generation = self.generation(tokens.len());
            if let Some(e) = self.shapes.get_mut(&shape).filter(|e| e.0 == id) {
                e.1 = generation;
            }
            self.last_searched = true;
        }
        self.tokens = tokens;
        agrees
    }

    /// Templates that may agree with the message on the required share of positions, read from
    /// the postings of the positions with the shortest lists, newest first, at most `max_probes`.
    fn indexed_candidates(&mut self, tokens: &[Token], out: &mut Vec<TemplateId>) {
        let n = tokens.len();
        // agreeing constants needed, and so how many positions must be read to meet them all
        let mut need = 0;
        while (need as f32) < self.config.similarity * n as f32 {
            need += 1;
        }
        let read = (n + 1).saturating_sub(need).min(n);
        if need == 0 {
            // everything is similar enough: the newest of this length
            let bucket = &self.by_len[&n];
            out.extend(bucket.iter().rev().take(self.config.max_probes));
        } else {
            // Any `read` positions will do (a template that agrees on `need` of the n positions
            // agrees on at least one of them); the rarest tokens make the shortest lists.
            self.keys.clear();
            for (pos, (t, &h)) in tokens.iter().zip(&self.msg_hashes).enumerate() {
                let rarity = if t.is_var() { 1 } else { 0 };
                self.keys.push((rarity, posting_key(n, pos, h)));
            }
            self.keys.sort_by_key(|&(rarity, _)| rarity);
            for &(_, key) in self.keys.iter().take(read) {
                if let Some(list) = self.postings.get(&key) {
                    out.extend(list.as_slice().iter().rev().take(self.config.max_probes));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        if out.len() > self.config.max_probes {
            // keep the newest: the ones most likely still in use
            out.drain(..out.len() - self.config.max_probes);
        }
    }

    /// Records the words where the message differs from template `id`; true once that set of
    /// positions has met `distinct_words_for_value` different words: they are values.
    fn variable_enough(&mut self, id: TemplateId, msg: &str, tokens: &[Token]) -> bool {
        let slots = &self.templates[id as usize].slots;
        let mut family = Fx(id as u64);
        let mut words = Fx(0);
        for (pos, (slot, tok)) in slots.iter().zip(tokens).enumerate() {
            if let Slot::Const(c) = slot {
                if !tok.masked_eq(msg, c) {
                    family.add(pos as u64);
                    let (pre, wild, post) = tok.masked(msg);
                    words.token(pre, wild, post);
                }
            }
        }
        let (family, word) = (family.finish(), words.finish());
        if self.evidence.len() >= MAX_EVIDENCE {
            self.evidence.clear();
        }
        let e = self.evidence.entry(family).or_default();
        if !e.words.contains(&word) {
            e.words.push(word);
        }
        if e.words.len() >= self.config.distinct_words_for_value {
            self.evidence.remove(&family);
            return true;
        }
        false
    }

    fn skeleton_id(&self, k: u64) -> Option<TemplateId> {
        self.skeletons.get(&k).or_else(|| self.seen_skeletons.get(&k)).copied()
    }

    /// After `id` generalised: other templates of its length that it now covers (every constant
    /// of `id` is theirs too) stop being candidates, so new shapes meet one template, not the
    /// splinters that came before it. They keep their ids, counts and exact shapes.
    fn retire_covered(&mut self, id: TemplateId) {
        let n = self.templates[id as usize].slots.len();
        let Some(bucket) = self.by_len.get_mut(&n) else { return };
        let general = &self.templates[id as usize].slots;
        let covers = |other: &[Slot]| general.iter().zip(other).all(|(g, o)| matches!(g, Slot::Wild) || g == o);
        let templates = &self.templates;
        // the most recent EXACT_SCAN (or all of a small bucket): splinters are recent
        let from = bucket.len().saturating_sub(EXACT_SCAN);
        let mut i = from;
        let mut kept = from;
        while i < bucket.len() {
            let other = bucket[i];
            if other == id || !covers(&templates[other as usize].slots) {
                bucket[kept] = other;
                kept += 1;
            } else {
                self.retired[other as usize] = true;
            }
            i += 1;
        }
        bucket.truncate(kept);
    }

    fn generalise(&mut self, id: TemplateId, msg: &str, tokens: &[Token]) -> bool {
        let t = &mut self.templates[id as usize];
        let mut changed = false;
        for ((slot, hash), tok) in t.slots.iter_mut().zip(t.hashes.iter_mut()).zip(tokens) {
            if let Slot::Const(c) = slot {
                if !tok.masked_eq(msg, c) {
                    match same_key(c, tok.text(msg)) {
                        // `tty=ssh` met `tty=pts`: the key stays, its value is a value (from now on
                        // in every template: `value_keys`)
                        Some(k) => {
                            if let Some((key, ..)) = crate::detect::token::keyed_word(msg, tok) {
                                if self.value_keys.len() >= MAX_EVIDENCE {
                                    self.value_keys.clear();
                                }
                                self.value_keys.insert(key);
                            }
                            if !c.ends_with(WILDCARD) || c.len() != k + WILDCARD.len() {
                                let keyed = format!("{}{WILDCARD}", &c[..k]);
                                *hash = token_hash(&keyed);
                                *slot = Slot::Const(keyed.into_boxed_str());
                                changed = true;
                            }
                        }
                        None => {
                            *slot = Slot::Wild;
                            *hash = WILD_HASH;
                            changed = true;
                        }
                    }
                }
            }
        }
        if changed {
            t.text = Template::render(&t.slots);
        }
        changed
    }

    fn create(&mut self, msg: &str, tokens: &[Token]) -> TemplateId {
        let slots: Vec<Slot> = tokens
            .iter()
            .map(|tok| {
                let mut s = String::new();
                tok.render_masked(msg, &mut s);
                if s == WILDCARD {
                    Slot::Wild
                } else {
                    Slot::Const(s.into_boxed_str())
                }
            })
            .collect();
        self.push(slots)
    }

    fn push(&mut self, slots: Vec<Slot>) -> TemplateId {
        let id = self.templates.len() as TemplateId;
        let len = slots.len();
        if let Some(k) = slots_skeleton(&slots) {
            self.skeletons.entry(k).or_insert(id);
        }
        for (pos, slot) in slots.iter().enumerate() {
            if let Slot::Const(c) = slot {
                // stale entries after a generalisation are harmless: candidates are checked
                self.postings
                    .entry(posting_key(len, pos, token_hash(c)))
                    .and_modify(|p| p.push(id))
                    .or_insert(Posting::One(id));
            }
        }
        let text = Template::render(&slots);
        let hashes = slot_hashes(&slots);
        self.changed(len);
        self.templates.push(Template { id, slots, hashes, text, count: 0 });
        self.retired.push(false);
        self.by_len.entry(len).or_default().push(id);
        id
    }

    fn overflow_id(&mut self) -> TemplateId {
        if let Some(id) = self.overflow {
            return id;
        }
        let id = self.templates.len() as TemplateId;
        self.templates.push(Template { id, slots: Vec::new(), hashes: Vec::new(), text: OVERFLOW_TEXT.to_string(), count: 0 });
        self.retired.push(true);
        self.overflow = Some(id);
        id
    }

    /// Replaces a template's text with a newer (more general) one recovered from the WAL.
    pub fn replace_text(&mut self, id: TemplateId, text: &str) -> Result<(), String> {
        let t = self.templates.get_mut(id as usize).ok_or_else(|| format!("no template {id}"))?;
        let slots: Vec<Slot> =
            text.split(' ').filter(|s| !s.is_empty()).map(|s| if s == WILDCARD { Slot::Wild } else { Slot::Const(s.into()) }).collect();
        if slots.len() != t.slots.len() {
            return Ok(()); // a different shape cannot be the same template: keep what we have
        }
        let len = slots.len();
        t.hashes = slot_hashes(&slots);
        t.slots = slots;
        t.text = Template::render(&t.slots);
        self.changed(len);
        let t = &self.templates[id as usize];
        if let Some(k) = slots_skeleton(&t.slots) {
            self.skeletons.entry(k).or_insert(id);
        }
        Ok(())
    }

    /// Restores a template from a saved state, keeping its id. Ids must come in increasing order.
    pub fn restore(&mut self, id: TemplateId, text: &str, count: u64) -> Result<(), String> {
        if id as usize != self.templates.len() {
            return Err(format!(
                "template ids must be dense and in order: expected {}, found {id}",
                self.templates.len()
            ));
        }
        if text == OVERFLOW_TEXT {
            self.overflow_id();
        } else {
            let slots: Vec<Slot> = text
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(|s| if s == WILDCARD { Slot::Wild } else { Slot::Const(s.into()) })
                .collect();
            // A message of exactly this shape finds it as before the restart: a template that is
            // all `<*>` agrees with no message on a constant, and was only ever found by shape.
            let shape = slots_shape(&slots);
            let len = slots.len();
            self.push(slots);
            let stale = self.generation(len).wrapping_sub(1);
            self.shapes.entry(shape).or_insert((id, stale));
        }
        self.templates[id as usize].count = count;
        Ok(())
    }
}

/// Share of positions where a constant of the template agrees with the message.
fn similarity(template: &[u64], message: &[u64]) -> f32 {
    if message.is_empty() {
        return 1.0;
    }
    // As in Drain, only agreeing constants count: a template that is mostly `<*>` must not
    // absorb every message of its length. (A message hash is never WILD_HASH.)
    let same = template.iter().zip(message).filter(|(t, m)| t == m).count();
    same as f32 / message.len() as f32
}

/// Positions where the template has a plain word and the message another plain word (two
/// values of one `key=` are not a conflict: the key says they are values).
fn word_conflicts(slots: &[Slot], msg: &str, tokens: &[Token]) -> usize {
    slots
        .iter()
        .zip(tokens)
        .filter(|(slot, tok)| match slot {
            Slot::Const(c) => !tok.is_var() && !c.contains(WILDCARD) && !tok.masked_eq(msg, c) && same_key(c, tok.text(msg)).is_none(),
            Slot::Wild => false,
        })
        .count()
}

/// `tty=ssh` and `tty=pts`: the length of their common `key=`, if they have one.
fn same_key(a: &str, b: &str) -> Option<usize> {
    let eq = a.find('=')?;
    let key = &a[..eq];
    // `level=`, `method=`: their words say what the record is, never a value; a status is its class
    (eq > 0
        && b.len() > eq
        && b.as_bytes()[eq] == b'='
        && b.starts_with(key)
        && key.bytes().all(|c| c.is_ascii_alphabetic() || b"_-.".contains(&c))
        && !crate::detect::token::is_meaning_key(key.as_bytes())
        && !crate::detect::token::STATUS_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)))
    .then_some(eq + 1)
}

/// Whether every position where the template and the message hold different plain words is
/// introduced as a value by the word before it: `user <name>`, `for <name>`, `from <host>`,
/// `client <name>`, `Name: <x>`. Two different words anywhere else (`VM Paused` / `VM Resumed`,
/// the first word of a message) are taken for two templates.
fn word_conflicts_are_values(slots: &[Slot], msg: &str, tokens: &[Token]) -> bool {
    slots.iter().zip(tokens).enumerate().all(|(i, (slot, tok))| match slot {
        Slot::Const(c) if !tok.is_var() && !c.contains(WILDCARD) && !tok.masked_eq(msg, c) && same_key(c, tok.text(msg)).is_none() => {
            // `403 bytes` / `1.16 KB`: after a value, a unit that changes is part of it
            i > 0
                && (introduces_value(tokens[i - 1].text(msg))
                    || (tokens[i - 1].is_var() && crate::detect::token::is_unit(tok.text(msg)) && crate::detect::token::is_unit(c)))
        }
        _ => true,
    })
}

/// Words after which a log message names something: a user, a host, a file, a client.
fn introduces_value(word: &str) -> bool {
    const INTRODUCERS: &[&str] = &[
        "user", "users", "username", "for", "from", "by", "host", "hostname", "client", "name", "named",
        "account", "login", "group", "owner", "process", "program", "service", "file", "path", "domain",
        "server", "node", "queue", "topic", "table", "database", "job", "task", "app", "application",
        "container", "pod", "device", "interface", "at", "on", "via", "peer",
    ];
    if word.ends_with(':') || word.ends_with('=') {
        return true;
    }
    word.len() <= 11 && INTRODUCERS.iter().any(|w| w.eq_ignore_ascii_case(word))
}

/// Hash of the constant tokens of a message, skipping whole-token values; `None` when fewer than
/// two constants are left (too little to identify a template by).
fn skeleton_hash(msg: &str, tokens: &[Token]) -> Option<u64> {
    let mut h = Fx(0x5eed);
    let mut consts = 0;
    let mut after_value = false;
    for t in tokens {
        // a unit after a value (`<1 sec`) goes with it: `lifetime 00:02` has the same skeleton
        let unit = after_value && !t.is_var() && crate::detect::token::is_unit(t.text(msg));
        after_value = t.is_var();
        if unit || is_value_only(t, msg) {
            continue;
        }
        let (pre, wild, post) = t.masked(msg);
        h.token(pre, wild, post);
        consts += 1;
    }
    (consts >= 2).then(|| h.finish())
}

/// A value with only punctuation around it (`<*>`, `[<*>]`, `<*>,`): no constant to match on.
fn is_value_only(t: &Token, msg: &str) -> bool {
    let (pre, wild, post) = t.masked(msg);
    wild && !pre.chars().chain(post.chars()).any(char::is_alphanumeric)
}

/// The same hash for a template's slots.
fn slots_skeleton(slots: &[Slot]) -> Option<u64> {
    let mut h = Fx(0x5eed);
    let mut consts = 0;
    let mut after_value = false;
    for s in slots {
        let unit = after_value && matches!(s, Slot::Const(c) if !c.contains(WILDCARD) && crate::detect::token::is_unit(c));
        after_value = match s {
            Slot::Wild => true,
            Slot::Const(c) => c.contains(WILDCARD),
        };
        if unit {
            continue;
        }
        if let Slot::Const(c) = s {
            if c.contains(WILDCARD) && !c.replace(WILDCARD, "").chars().any(char::is_alphanumeric) {
                continue;
            }
            match c.find(WILDCARD) {
                Some(i) => h.token(&c[..i], true, &c[i + WILDCARD.len()..]),
                None => h.token(c, false, ""),
            }
            consts += 1;
        }
    }
    (consts >= 2).then(|| h.finish())
}

/// The hash of a `<*>` slot; no token hashes to it.
const WILD_HASH: u64 = 0;

/// Hash of a token as the template shows it (`blk_<*>`, `user`); never [`WILD_HASH`].
fn token_hash(rendered: &str) -> u64 {
    let mut h = Fx(0x7070);
    h.bytes(rendered.as_bytes());
    h.finish() | 1
}

fn slot_hashes(slots: &[Slot]) -> Vec<u64> {
    slots.iter().map(|s| if let Slot::Const(c) = s { token_hash(c) } else { WILD_HASH }).collect()
}

/// [`token_hash`] of a message token's masked form, without rendering it.
fn token_hash_of(msg: &str, t: &Token) -> u64 {
    let (pre, wild, post) = t.masked(msg);
    if !wild {
        return token_hash(pre);
    }
    let mut buf = [0u8; 64];
    let len = pre.len() + WILDCARD.len() + post.len();
    if len > buf.len() {
        let mut s = String::with_capacity(len);
        t.render_masked(msg, &mut s);
        return token_hash(&s);
    }
    buf[..pre.len()].copy_from_slice(pre.as_bytes());
    buf[pre.len()..pre.len() + WILDCARD.len()].copy_from_slice(WILDCARD.as_bytes());
    buf[pre.len() + WILDCARD.len()..len].copy_from_slice(post.as_bytes());
    let mut h = Fx(0x7070);
    h.bytes(&buf[..len]);
    h.finish() | 1
}

fn posting_key(len: usize, pos: usize, token: u64) -> u64 {
    let mut h = Fx(token);
    h.add(((len as u64) << 32) | pos as u64);
    h.finish()
}

/// 64-bit hash of the masked token sequence. Two messages with the same hash have the same shape
/// (collisions are astronomically unlikely and would only merge two templates).
fn shape_hash(msg: &str, tokens: &[Token]) -> u64 {
    let mut h = Fx(tokens.len() as u64);
    for t in tokens {
        let (pre, wild, post) = t.masked(msg);
        h.token(pre, wild, post);
    }
    h.finish()
}

/// [`shape_hash`] of a message whose masked tokens are these slots.
fn slots_shape(slots: &[Slot]) -> u64 {
    let mut h = Fx(slots.len() as u64);
    for s in slots {
        match s {
            Slot::Wild => h.token("", true, ""),
            Slot::Const(c) => match c.find(WILDCARD) {
                Some(i) => h.token(&c[..i], true, &c[i + WILDCARD.len()..]),
                None => h.token(c, false, ""),
            },
        }
    }
    h.finish()
}

/// A small multiply-rotate hash (the FxHash recipe) over 8-byte words.
struct Fx(u64);

impl Fx {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }

    fn bytes(&mut self, mut b: &[u8]) {
        while b.len() >= 8 {
            self.add(u64::from_le_bytes(b[..8].try_into().unwrap()));
            b = &b[8..];
        }
        let mut tail = [0u8; 8];
        tail[..b.len()].copy_from_slice(b);
        self.add(u64::from_le_bytes(tail) ^ ((b.len() as u64) << 59));
    }

    /// One masked token: prefix, wildcard marker, suffix, separator.
    fn token(&mut self, pre: &str, wild: bool, post: &str) {
        self.bytes(pre.as_bytes());
        if wild {
            self.add(0xA5A5_5A5A_0F0F_F0F0);
            self.bytes(post.as_bytes());
        }
        self.add(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        // final avalanche so the identity-hashed map spreads well
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restored_template_is_found_by_its_shape() {
        let mut m = Miner::new(MinerConfig::default());
        let a = m.add("28:48000828 29:00000000 30:0000000e 31:00086");
        let b = m.add("disk sda1 failed after 12 retries");
        let mut r = Miner::new(MinerConfig::default());
        for t in m.templates() {
            r.restore(t.id, t.text(), t.count).unwrap();
        }
        // all `<*>`: only its shape can find it
        assert_eq!(r.add("12:00000001 13:0000ffff 14:00000000 15:00012").id, a.id);
        assert_eq!(r.add("disk sda1 failed after 3 retries").id, b.id);
        assert_eq!(r.len(), 2);
        // the shape of a template's slots is the shape of the message it was made from
        for msg in ["disk sda1 failed after 12 retries", "[core:error] GET /a status=503 in (12 ms)", "uid=0 <x>"] {
            let mut fresh = Miner::new(MinerConfig::default());
            let id = fresh.add(msg).id;
            let mut tokens = Vec::new();
            tokenize(msg, &mut tokens, 96);
            assert_eq!(slots_shape(&fresh.templates()[id as usize].slots), shape_hash(msg, &tokens), "{msg}");
        }
    }

    fn miner() -> Miner {
        Miner::new(MinerConfig::default())
    }

    #[test]
    fn same_shape_same_template() {
        let mut m = miner();
        let a = m.add("Accepted password for root from 1.2.3.4 port 22 ssh2");
        let b = m.add("Accepted password for root from 5.6.7.8 port 2222 ssh2");
        assert!(a.created && !b.created);
        assert_eq!(a.id, b.id);
        assert_eq!(m.get(a.id).unwrap().text(), "Accepted password for root from <*> port <*> ssh2");
        assert_eq!(m.get(a.id).unwrap().count, 2);
    }

    #[test]
    fn an_empty_value_and_a_filled_one_are_one_template() {
        let mut m = miner();
        let a = m.add("connection from 10.0.0.1 () at Sun Jul 10 03:55:21 2005");
        let b = m.add("connection from 24.54.76.216 (24-54-76-216.bflony.adelphia.net) at Sun Jul 10 03:55:22 2005");
        assert_eq!(a.id, b.id);
        assert_eq!(m.get(a.id).unwrap().text(), "connection from <*> (<*>) at <*> <*> <*> <*> <*>");
    }

    #[test]
    fn key_value_words_are_words_until_they_change() {
        let mut m = miner();
        let a = m.add("authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4 user=root");
        assert_eq!(m.add("authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=5.6.7.8 user=root").id, a.id);
        assert_eq!(m.get(a.id).unwrap().text(), "authentication failure; logname= uid=<*> euid=<*> tty=ssh ruser= rhost=<*> user=root");
        // another user: the key stays, its value becomes a value
        assert_eq!(m.add("authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=5.6.7.8 user=bob").id, a.id);
        assert_eq!(m.get(a.id).unwrap().text(), "authentication failure; logname= uid=<*> euid=<*> tty=ssh ruser= rhost=<*> user=<*>");
        assert_eq!(m.add("authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=5.6.7.8 user=eve").id, a.id);
        assert_eq!(m.get(a.id).unwrap().text(), "authentication failure; logname= uid=<*> euid=<*> tty=ssh ruser= rhost=<*> user=<*>");
        // from then on `user=` is masked as a value: a new user is the known shape, not a new one
        let shapes = m.shapes.len();
        assert_eq!(m.add("authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=5.6.7.8 user=zed").id, a.id);
        assert_eq!(m.shapes.len(), shapes);
        // a meaning key is not a value: `level=error` and `level=info` are two templates
        let b = m.add("request done level=info path=x");
        assert_ne!(m.add("request done level=error path=x").id, b.id);
        // nor is a status class
        let c = m.add("request done status=200 path=x");
        assert_ne!(m.add("request done status=503 path=x").id, c.id);
    }

    #[test]
    fn units_are_words_until_they_change() {
        let mut m = miner();
        let a = m.add("Reading broadcast variable 7 took 12 ms");
        assert_eq!(m.add("Reading broadcast variable 8 took 3 ms").id, a.id);
        assert_eq!(m.get(a.id).unwrap().text(), "Reading broadcast variable <*> took <*> ms");
        // a size whose unit follows its magnitude is one value
        let b = m.add("chrome.exe close, 403 bytes sent, 426 bytes received, lifetime <1 sec");
        assert_eq!(m.add("chrome.exe close, 1.16 KB sent, 426 bytes received, lifetime <1 sec").id, b.id);
        assert_eq!(m.add("chrome.exe close, 1.16 KB sent, 426 bytes received, lifetime 00:02").id, b.id);
        // a unit is not a value after a word
        let c = m.add("cache mode bytes enabled");
        assert_ne!(m.add("cache mode KB enabled").id, c.id);
    }

    #[test]
    fn generalises_without_changing_id() {
        let mut m = miner();
        let a = m.add("Invalid user webmaster from 1.2.3.4");
        let other = m.add("Connection closed by 1.2.3.4 [preauth]");
        let b = m.add("Invalid user admin from 1.2.3.5");
        assert_eq!(a.id, b.id);
        assert!(b.generalised);
        assert_ne!(other.id, a.id);
        assert_eq!(m.get(a.id).unwrap().text(), "Invalid user <*> from <*>");
        // a third user is now an exact hit on the generalised template
        let c = m.add("Invalid user oracle from 9.9.9.9");
        assert_eq!((c.id, c.created, c.generalised), (a.id, false, false));
    }

    #[test]
    fn different_lengths_and_dissimilar_messages_stay_apart() {
        let mut m = miner();
        let a = m.add("Creating image");
        let b = m.add("Claim successful");
        let c = m.add("Creating image now");
        assert_ne!(a.id, b.id);
        assert_ne!(a.id, c.id);
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn ids_are_dense_and_stable() {
        let mut m = miner();
        for i in 0..50 {
            m.add(&format!("event kind{} happened", ["a", "b", "c"][i % 3]));
            m.add(&format!("disk {i} is full"));
        }
        let ids: Vec<_> = m.templates().iter().map(|t| t.id).collect();
        assert_eq!(ids, (0..m.len() as u32).collect::<Vec<_>>());
    }

    #[test]
    fn template_limit_routes_to_overflow() {
        let mut m = Miner::new(MinerConfig { max_templates: 2, ..MinerConfig::default() });
        m.add("alpha beta");
        m.add("one two three");
        let x = m.add("completely different words here");
        assert_eq!(m.get(x.id).unwrap().text(), OVERFLOW_TEXT);
        let y = m.add("yet another unrelated line of text");
        assert_eq!(x.id, y.id);
    }

    #[test]
    fn restore_round_trips() {
        let mut m = miner();
        m.add("Invalid user a from 1.1.1.1");
        m.add("Invalid user b from 1.1.1.2");
        m.add("Server listening on 0.0.0.0 port 22.");
        let mut r = miner();
        for t in m.templates() {
            r.restore(t.id, t.text(), t.count).unwrap();
        }
        let zed = r.add("Invalid user zed from 2.2.2.2");
        assert_eq!((zed.id, zed.created), (0, false));
        assert_eq!(r.add("Server listening on 1.1.1.1 port 2222.").id, 1);
        assert!(r.restore(7, "x", 1).is_err());
    }

    fn letters(seed: &mut u64, n: usize) -> String {
        (0..n)
            .map(|_| {
                *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (b'a' + ((*seed >> 33) % 26) as u8) as char
            })
            .collect()
    }

    #[test]
    fn a_position_that_keeps_meeting_new_words_becomes_a_value() {
        // the hardening issue's input: names without digits after words that introduce no value
        let mut m = miner();
        let mut seed = 1;
        let mut first = None;
        for i in 0..5000 {
            let line = format!("session {} opened for client {}", letters(&mut seed, 10), letters(&mut seed, 10));
            let r = m.add(&line);
            first.get_or_insert(r.id);
            if i >= 20 {
                assert_eq!(r.id, first.unwrap(), "line {i} `{line}` left the generalised template");
            }
        }
        let d = MinerConfig::default().distinct_words_for_value;
        assert!(m.len() <= d, "{} templates for one shape of message", m.len());
        assert_eq!(m.get(first.unwrap()).unwrap().text(), "session <*> opened for client <*>");
    }

    #[test]
    fn a_few_different_words_stay_different_templates() {
        // `VM Paused` / `VM Resumed`: states are not names
        let mut m = miner();
        for state in ["Started", "Stopped", "Paused", "Resumed"] {
            for _ in 0..3 {
                m.add(&format!("VM {state} (Lifecycle Event)"));
            }
        }
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn probes_stay_bounded_as_templates_grow() {
        // 30 000 unrelated messages of one length: each new one is compared with a bounded
        // number of templates, not with all of them (the index, not a scan)
        let cfg = MinerConfig { max_templates: 100_000, ..MinerConfig::default() };
        let mut m = Miner::new(cfg.clone());
        let mut seed = 7;
        for _ in 0..30_000 {
            let line: Vec<String> = (0..6).map(|_| letters(&mut seed, 6)).collect();
            m.add(&line.join(" "));
            assert!(m.candidates.len() <= cfg.max_probes.max(EXACT_SCAN), "{} candidates", m.candidates.len());
        }
        assert_eq!(m.len(), 30_000);
        // and a message close to an old template is still found through the index
        let old = m.templates()[5].text().to_string();
        let mut words: Vec<&str> = old.split(' ').collect();
        words[5] = "4711"; // a value, not a second plain word
        let r = m.add(&words.join(" "));
        assert!(!r.created && r.id == 5, "{r:?}");
    }

    #[test]
    fn the_limit_counts_what_went_past_it() {
        let mut m = Miner::new(MinerConfig { max_templates: 3, ..MinerConfig::default() });
        let mut seed = 3;
        for _ in 0..50 {
            let line: Vec<String> = (0..4).map(|_| letters(&mut seed, 5)).collect();
            m.add(&line.join(" "));
        }
        assert_eq!(m.len(), 4, "three templates and the overflow one");
        assert_eq!(m.overflowed(), 47);
        assert!(limit_warning(3).contains("max_templates"));
    }
}
