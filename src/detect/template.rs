//! Stage 2b: tokens → template. A streaming template miner in the spirit of Drain.
//!
//! Every message is masked (see [`crate::detect::token`]) and looked up by the hash of its masked token
//! sequence: a known shape costs one hash and one map probe, nothing else. A shape seen for the
//! first time is compared with the templates of the same length; if one is similar enough it
//! absorbs the message and the positions that differ become `<*>`. A template may generalise
//! this way, but its id never changes: ids are handed out once, in order, and never reused.

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
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig { similarity: 0.5, max_word_conflicts: 1, max_tokens: 96, max_templates: 50_000, max_cached_shapes: 1 << 20 }
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
    text: String,
    pub count: u64,
}

impl Template {
    pub fn text(&self) -> &str {
        &self.text
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

pub struct Miner {
    config: MinerConfig,
    templates: Vec<Template>,
    by_len: HashMap<usize, Vec<TemplateId>>,
    shapes: ShapeMap,
    /// Constant tokens only, whatever the number of variables between them → template.
    skeletons: ShapeMap,
    overflow: Option<TemplateId>,
    tokens: Vec<Token>,
}

impl Miner {
    pub fn new(config: MinerConfig) -> Self {
        Miner {
            tokens: Vec::with_capacity(config.max_tokens),
            config,
            templates: Vec::new(),
            by_len: HashMap::new(),
            shapes: ShapeMap::default(),
            skeletons: ShapeMap::default(),
            overflow: None,
        }
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
        let m = self.add_tokens(msg, &tokens);
        self.tokens = tokens;
        self.templates[m.id as usize].count += 1;
        m
    }

    /// Counts one more message of a known template (the engine's line cache found it).
    pub fn count(&mut self, id: TemplateId) {
        if let Some(t) = self.templates.get_mut(id as usize) {
            t.count += 1;
        }
    }

    fn add_tokens(&mut self, msg: &str, tokens: &[Token]) -> Match {
        let shape = shape_hash(msg, tokens);
        if let Some(&id) = self.shapes.get(&shape) {
            return Match { id, created: false, generalised: false };
        }
        if self.shapes.len() >= self.config.max_cached_shapes {
            self.shapes.clear();
        }
        let skeleton = skeleton_hash(msg, tokens);
        let m = match self.best_candidate(msg, tokens) {
            Some((id, _)) => {
                let generalised = self.generalise(id, msg, tokens);
                Match { id, created: false, generalised }
            }
            None if skeleton.is_some() && self.skeletons.contains_key(&skeleton.unwrap()) => {
                // Same constants, a different number of values between them.
                Match { id: self.skeletons[&skeleton.unwrap()], created: false, generalised: false }
            }
            None if self.templates.len() >= self.config.max_templates => {
                Match { id: self.overflow_id(), created: false, generalised: false }
            }
            None => Match { id: self.create(msg, tokens), created: true, generalised: false },
        };
        self.shapes.insert(shape, m.id);
        if m.created || m.generalised {
            let t = &self.templates[m.id as usize];
            if let Some(k) = slots_skeleton(&t.slots) {
                self.skeletons.entry(k).or_insert(m.id);
            }
        }
        if let Some(k) = skeleton {
            self.skeletons.entry(k).or_insert(m.id);
        }
        m
    }

    /// The most similar template of the same length, if similar enough.
    fn best_candidate(&self, msg: &str, tokens: &[Token]) -> Option<(TemplateId, f32)> {
        let ids = self.by_len.get(&tokens.len())?;
        let mut best: Option<(TemplateId, f32)> = None;
        for &id in ids {
            let t = &self.templates[id as usize];
            let sim = similarity(&t.slots, msg, tokens);
            let conflicts = word_conflicts(&t.slots, msg, tokens);
            if sim >= self.config.similarity
                && conflicts <= self.config.max_word_conflicts
                && (conflicts == 0 || sim > 0.5 && word_conflicts_are_values(&t.slots, msg, tokens))
                && best.map_or(true, |(_, b)| sim > b)
            {
                best = Some((id, sim));
            }
        }
        best
    }

    fn generalise(&mut self, id: TemplateId, msg: &str, tokens: &[Token]) -> bool {
        let t = &mut self.templates[id as usize];
        let mut changed = false;
        for (slot, tok) in t.slots.iter_mut().zip(tokens) {
            if let Slot::Const(c) = slot {
                if !tok.masked_eq(msg, c) {
                    *slot = Slot::Wild;
                    changed = true;
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
        let text = Template::render(&slots);
        self.templates.push(Template { id, slots, text, count: 0 });
        self.by_len.entry(len).or_default().push(id);
        id
    }

    fn overflow_id(&mut self) -> TemplateId {
        if let Some(id) = self.overflow {
            return id;
        }
        let id = self.templates.len() as TemplateId;
        self.templates.push(Template { id, slots: Vec::new(), text: OVERFLOW_TEXT.to_string(), count: 0 });
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
        t.slots = slots;
        t.text = Template::render(&t.slots);
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
            let slots = text
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(|s| if s == WILDCARD { Slot::Wild } else { Slot::Const(s.into()) })
                .collect();
            self.push(slots);
        }
        self.templates[id as usize].count = count;
        Ok(())
    }
}

/// Share of positions where a constant of the template agrees with the message.
fn similarity(slots: &[Slot], msg: &str, tokens: &[Token]) -> f32 {
    if tokens.is_empty() {
        return 1.0;
    }
    // As in Drain, only agreeing constants count: a template that is mostly `<*>` must not
    // absorb every message of its length.
    let mut same = 0usize;
    for (slot, tok) in slots.iter().zip(tokens) {
        if let Slot::Const(c) = slot {
            same += tok.masked_eq(msg, c) as usize;
        }
    }
    same as f32 / tokens.len() as f32
}

/// Positions where the template has a plain word and the message another plain word.
fn word_conflicts(slots: &[Slot], msg: &str, tokens: &[Token]) -> usize {
    slots
        .iter()
        .zip(tokens)
        .filter(|(slot, tok)| match slot {
            Slot::Const(c) => !tok.is_var() && !c.contains(WILDCARD) && !tok.masked_eq(msg, c),
            Slot::Wild => false,
        })
        .count()
}

/// Whether every position where the template and the message hold different plain words is
/// introduced as a value by the word before it: `user <name>`, `for <name>`, `from <host>`,
/// `client <name>`, `Name: <x>`. Two different words anywhere else (`VM Paused` / `VM Resumed`,
/// the first word of a message) are taken for two templates.
fn word_conflicts_are_values(slots: &[Slot], msg: &str, tokens: &[Token]) -> bool {
    slots.iter().zip(tokens).enumerate().all(|(i, (slot, tok))| match slot {
        Slot::Const(c) if !tok.is_var() && !c.contains(WILDCARD) && !tok.masked_eq(msg, c) => {
            i > 0 && introduces_value(tokens[i - 1].text(msg))
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
    for t in tokens {
        if is_value_only(t, msg) {
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
    for s in slots {
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
        assert_eq!(m.get(a.id).unwrap().text(), "Accepted password for root from <*> port <*> <*>");
        assert_eq!(m.get(a.id).unwrap().count, 2);
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
}
