//! Stage 2a: message → tokens, each marked constant or variable.
//!
//! A token is split on white space. Its variable part is found by shape, not by a list of
//! formats: anything with a digit (numbers, hex, ids, IPs, UUIDs, durations, versions), paths,
//! URLs and e-mail addresses. Wrapping punctuation and `key=` prefixes stay constant, so
//! `[173.234.31.186]` becomes `[<*>]` and `uid=0` becomes `uid=<*>`: templates stay readable and
//! keys keep separating templates.

/// One token of a message, as byte offsets into it. `var_start..var_end` is the variable part;
/// empty for a constant token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub start: u32,
    pub end: u32,
    pub var_start: u32,
    pub var_end: u32,
    /// An HTTP status kept as its class (`1`…`5` for `1xx`…`5xx`), 0 otherwise. A classed token is
    /// a constant of the template: an outage (`5xx`) must not hide among successes as a value.
    pub class: u8,
    /// A value whose separators stay in the template (`host:port` → `<*>:<*>`): index + 1 into
    /// [`SHAPED`], whose entry is what follows the first `<*>` (the rest of the value's shape and
    /// the token's closing punctuation); 0 for a value shown as one `<*>`.
    pub shape: u8,
}

/// [`Token::shape`] of an empty value: `()`, `[]`, `""` — the same template as the filled
/// `(<*>)`. Its variable part is the empty range where the value would be.
const EMPTY_VALUE: u8 = u8::MAX;

/// Closing punctuation a shaped value may carry (the [`CLOSERS`] a token can end in, or none).
const SHAPE_SUFFIXES: [&str; 14] = ["", ")", "]", "}", ">", "\"", "'", "`", ",", ";", ":", ".", "!", "?"];

/// What follows the first `<*>` of a shaped value, per shape and suffix: `host:port`, then
/// Java's `InetSocketAddress` `host/ip:port`. Static, so a masked token still borrows only.
const SHAPED: [&str; 28] = [
    ":<*>", ":<*>)", ":<*>]", ":<*>}", ":<*>>", ":<*>\"", ":<*>'", ":<*>`", ":<*>,", ":<*>;", ":<*>:", ":<*>.", ":<*>!", ":<*>?",
    "/<*>:<*>", "/<*>:<*>)", "/<*>:<*>]", "/<*>:<*>}", "/<*>:<*>>", "/<*>:<*>\"", "/<*>:<*>'", "/<*>:<*>`", "/<*>:<*>,",
    "/<*>:<*>;", "/<*>:<*>:", "/<*>:<*>.", "/<*>:<*>!", "/<*>:<*>?",
];

/// The shape of a value core, if its separators are kept: `10.0.0.1:80`, `/10.0.0.1:80` and
/// `db-1:5432` are `<*>:<*>` (1), `host/10.0.0.1:80` is `<*>/<*>:<*>` (2). A port is 1 to 5
/// digits; the host has no `:` (IPv6, times and URLs stay one value).
fn value_shape(core: &[u8]) -> u8 {
    let core = core.strip_prefix(b"/").unwrap_or(core);
    let Some(colon) = core.iter().rposition(|&b| b == b':') else { return 0 };
    let (host, port) = (&core[..colon], &core[colon + 1..]);
    let hostish = |h: &[u8]| !h.is_empty() && h.iter().all(|&b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !(1..=5).contains(&port.len()) || !port.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    if host.len() <= 2 && port.len() == 2 && host.iter().all(u8::is_ascii_digit) {
        // `12:00` is a time of day, one value
        return 0;
    }
    if hostish(host) {
        return 1;
    }
    match host.iter().position(|&b| b == b'/') {
        Some(slash) if hostish(&host[..slash]) && hostish(&host[slash + 1..]) => 2,
        _ => 0,
    }
}

/// [`Token::shape`] of the value `a..b` of a token ending at `end`.
fn shape_of(bytes: &[u8], a: usize, b: usize, end: usize) -> u8 {
    match value_shape(&bytes[a..b]) {
        0 => 0,
        k => SHAPE_SUFFIXES
            .iter()
            .position(|x| x.as_bytes() == &bytes[b..end])
            .map_or(0, |i| (k - 1) * SHAPE_SUFFIXES.len() as u8 + i as u8 + 1),
    }
}

/// How a classed status renders: bare (access logs) or behind one of the usual keys (logfmt).
const STATUS_CLASSES: [[&str; 5]; 4] = [
    ["1xx", "2xx", "3xx", "4xx", "5xx"],
    ["status=1xx", "status=2xx", "status=3xx", "status=4xx", "status=5xx"],
    ["status_code=1xx", "status_code=2xx", "status_code=3xx", "status_code=4xx", "status_code=5xx"],
    ["http_status=1xx", "http_status=2xx", "http_status=3xx", "http_status=4xx", "http_status=5xx"],
];
pub(crate) const STATUS_KEYS: [&str; 3] = ["status", "status_code", "http_status"];

/// `Token::class` for a status `code` (100…599) written bare (`key` 0) or behind `STATUS_KEYS[key - 1]`.
fn status_class(code: &[u8], key: usize) -> u8 {
    if code.len() == 3 && code.iter().all(u8::is_ascii_digit) && (b'1'..=b'5').contains(&code[0]) {
        1 + (key * 5) as u8 + (code[0] - b'1')
    } else {
        0
    }
}

pub const WILDCARD: &str = "<*>";

impl Token {
    pub fn is_var(&self) -> bool {
        (self.var_start < self.var_end || self.shape == EMPTY_VALUE) && self.class == 0
    }

    /// Whether the masked form writes a value's own separators (`<*>:<*>`) rather than one `<*>`.
    pub fn is_shaped(&self) -> bool {
        self.shape != 0 && self.shape != EMPTY_VALUE
    }

    /// The raw text of the token.
    pub fn text<'a>(&self, msg: &'a str) -> &'a str {
        &msg[self.start as usize..self.end as usize]
    }

    /// The token with its variable part replaced by `<*>`, as (prefix, has_wildcard, suffix).
    pub fn masked<'a>(&self, msg: &'a str) -> (&'a str, bool, &'a str) {
        if self.class != 0 {
            // the key stays (`status=`), the code becomes its class
            let c = self.class as usize - 1;
            return (STATUS_CLASSES[c / 5][c % 5], false, "");
        }
        if self.is_var() {
            let post = if self.is_shaped() { SHAPED[self.shape as usize - 1] } else { &msg[self.var_end as usize..self.end as usize] };
            (&msg[self.start as usize..self.var_start as usize], true, post)
        } else {
            (self.text(msg), false, "")
        }
    }

    /// Appends the masked form to `out`.
    pub fn render_masked(&self, msg: &str, out: &mut String) {
        let (pre, wild, post) = self.masked(msg);
        out.push_str(pre);
        if wild {
            out.push_str(WILDCARD);
            out.push_str(post);
        }
    }

    /// Whether the masked form equals `s`, without building it.
    pub fn masked_eq(&self, msg: &str, s: &str) -> bool {
        let (pre, wild, post) = self.masked(msg);
        if !wild {
            return pre == s;
        }
        s.len() == pre.len() + WILDCARD.len() + post.len()
            && s.starts_with(pre)
            && s[pre.len()..].starts_with(WILDCARD)
            && s.ends_with(post)
    }
}

/// Splits `msg` into tokens, appending to `out` (cleared first). At most `max` tokens: the rest of
/// a very long message is folded into the last token so one huge line cannot blow up memory.
pub fn tokenize(msg: &str, out: &mut Vec<Token>, max: usize) {
    out.clear();
    let bytes = msg.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        if out.len() + 1 == max {
            i = bytes.len();
            while i > start && bytes[i - 1].is_ascii_whitespace() {
                i -= 1;
            }
            out.push(Token { start: start as u32, end: i as u32, var_start: start as u32, var_end: i as u32, class: 0, shape: 0 });
            break;
        }
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if let Some(end) = parenthesised_value(bytes, start, i) {
            // `(1.16 KB)`: one value, however many words it spans
            i = end;
            out.push(Token { start: start as u32, end: i as u32, var_start: start as u32, var_end: i as u32, class: 0, shape: 0 });
            continue;
        }
        // a unit after a number (`12 ms`, `629 KB`) stays a word: it says what the value is
        out.push(classify(msg, start, i));
    }
    mark_dates(msg, out);
    mark_http_status(msg, out);
}

/// Keys whose word values say what a record is, not which: levels and HTTP methods.
pub(crate) fn is_meaning_key(key: &[u8]) -> bool {
    [&b"level"[..], b"lvl", b"severity", b"loglevel", b"log.level", b"method", b"http_method", b"request_method"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(key))
}

/// Access logs: the status of a request is kept as its class (`2xx`, `5xx`). Nginx, Apache,
/// Envoy and Traefik write it right after the quoted request (`"GET / HTTP/1.1" 502 …`);
/// HAProxy and cloud load balancers write it after their timings (`10/0/30/69/109 502`,
/// `0.000 0.001 0.000 502 502`). Only in a message that holds a quoted HTTP request.
fn mark_http_status(msg: &str, toks: &mut [Token]) {
    let bytes = msg.as_bytes();
    let text = |t: &Token| &bytes[t.start as usize..t.end as usize];
    let is_request_end = |t: &[u8]| t.len() > 6 && t.ends_with(b"\"") && t.windows(5).any(|w| w == b"HTTP/");
    let Some(request) = toks.iter().position(|t| is_request_end(text(t))) else { return };
    let is_timing = |t: &[u8]| {
        t.iter().any(u8::is_ascii_digit)
            && t.iter().all(|&b| b.is_ascii_digit() || b == b'.' || b == b'/' || b == b'-')
            && t.iter().any(|&b| b == b'.' || b == b'/')
    };
    if let Some(next) = toks.get_mut(request + 1) {
        let class = status_class(&bytes[next.start as usize..next.end as usize], 0);
        if class != 0 {
            next.class = class;
            return;
        }
    }
    for k in 1..request {
        let prev_ok = toks[k - 1].class != 0 || is_timing(text(&toks[k - 1]));
        let class = status_class(text(&toks[k]), 0);
        if prev_ok && class != 0 {
            toks[k].class = class;
        }
    }
}

/// A date written inside a message is a value: `at Sun Jul 10 03:55:21 2005`, `on 3 March`. A
/// month or weekday name next to a number (or next to one that is already a date part) is
/// marked variable; names alone (`May I`, `Sunday service`) stay words.
fn mark_dates(msg: &str, toks: &mut [Token]) {
    let is_name = |t: &Token| !t.is_var() && crate::detect::message::is_month_or_day(t.text(msg));
    let numeric = |t: &Token| t.is_var() && t.text(msg).bytes().all(|b| b.is_ascii_digit() || b":.,-/T".contains(&b));
    if !toks.iter().any(&is_name) {
        return;
    }
    let mut date = [false; 64];
    let n = toks.len().min(date.len());
    for i in 0..n {
        date[i] = numeric(&toks[i]);
    }
    // two passes so that `Sun Jul 10` marks `Jul` from `10`, then `Sun` from `Jul`
    for _ in 0..2 {
        for i in 0..n {
            if is_name(&toks[i]) && ((i > 0 && date[i - 1]) || (i + 1 < n && date[i + 1])) {
                date[i] = true;
                let t = &mut toks[i];
                t.var_start = t.start;
                t.var_end = t.end;
                while t.var_end > t.var_start && b",.".contains(&msg.as_bytes()[t.var_end as usize - 1]) {
                    t.var_end -= 1;
                }
            }
        }
    }
}

/// A group `( … )` of up to four words, spanning several tokens, that holds a digit.
fn parenthesised_value(bytes: &[u8], start: usize, first_end: usize) -> Option<usize> {
    if let Some(q) = bytes[start..first_end].windows(2).position(|w| w == b"=\"") {
        // `tag="View Lock",`: a quoted value with spaces
        let open = start + q + 1;
        if bytes[open + 1..first_end].contains(&b'"') {
            return None;
        }
        let close = bytes[first_end..].iter().take(64).position(|&c| c == b'"')? + first_end;
        let mut end = close + 1;
        while end < bytes.len() && !bytes[end].is_ascii_whitespace() {
            end += 1;
        }
        return Some(end);
    }
    if bytes[start] != b'(' || bytes[start..first_end].contains(&b')') {
        return None;
    }
    let mut words = 1;
    let mut j = first_end;
    while j < bytes.len() && words <= 4 {
        match bytes[j] {
            b')' => {
                let mut end = j + 1;
                while end < bytes.len() && !bytes[end].is_ascii_whitespace() {
                    end += 1;
                }
                // `(1.16 KB)`, `(3 ms)`: a quantity; `(TID 42)`, `(command 2132)` keep their words
                let inner = &bytes[start + 1..j];
                let quantity = inner.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()).all(|w| {
                    w.iter().all(|b| b.is_ascii_digit() || b".,<>~".contains(b)) || std::str::from_utf8(w).is_ok_and(is_unit)
                });
                return (quantity && inner.iter().any(u8::is_ascii_digit)).then_some(end);
            }
            b'(' => return None,
            b' ' | b'\t' => {
                words += 1;
                while j + 1 < bytes.len() && bytes[j + 1].is_ascii_whitespace() {
                    j += 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    None
}

pub(crate) fn is_unit(word: &str) -> bool {
    const UNITS: &[&str] = &[
        "ns", "us", "µs", "ms", "s", "sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes",
        "h", "hr", "hrs", "hour", "hours", "day", "days", "b", "kb", "mb", "gb", "tb", "kib", "mib", "gib",
        "tib", "bytes", "%",
    ];
    if word.len() > 8 {
        return false;
    }
    let w = word.trim_end_matches([',', '.', ';', ')']);
    UNITS.iter().any(|u| u.eq_ignore_ascii_case(w))
}

const OPENERS: &[u8] = b"([{<\"'`";
const CLOSERS: &[u8] = b")]}>\"'`,;:.!?";

fn classify(msg: &str, start: usize, end: usize) -> Token {
    let bytes = msg.as_bytes();
    let mut a = start;
    let mut b = end;
    while a < b && OPENERS.contains(&bytes[a]) {
        a += 1;
    }
    while b > a && CLOSERS.contains(&bytes[b - 1]) {
        b -= 1;
    }
    let constant = Token { start: start as u32, end: end as u32, var_start: 0, var_end: 0, class: 0, shape: 0 };
    if a >= b {
        return empty_pair(bytes, start, end).map_or(constant, |v| Token { var_start: v as u32, var_end: v as u32, shape: EMPTY_VALUE, ..constant });
    }
    // `key=value`: only the value can be variable.
    if let Some(eq) = bytes[a..b].iter().position(|&c| c == b'=') {
        let key = &bytes[a..a + eq];
        if eq > 0 && key.iter().all(|c| c.is_ascii_alphabetic() || b"_-.(:".contains(c)) {
            // the value of a `key=value` pair is a value, whatever it looks like
            let v = a + eq + 1;
            let key_index = STATUS_KEYS.iter().position(|k| k.as_bytes().eq_ignore_ascii_case(key));
            if let Some(k) = key_index.filter(|_| a == start && b == end) {
                let class = status_class(&bytes[v..b], k + 1);
                if class != 0 {
                    return Token { var_start: v as u32, var_end: b as u32, class, ..constant };
                }
            }
            if is_meaning_key(key) && bytes[v..b].iter().all(u8::is_ascii_alphabetic) {
                // `level=error`, `method=GET`: part of what the message is
                return constant;
            }
            let word = &bytes[v..b];
            let flag = [&b"true"[..], b"false", b"null"].iter().any(|f| f.eq_ignore_ascii_case(word));
            if v < b && !flag && word.iter().all(|c| c.is_ascii_alphabetic() || *c == b'_') {
                // `tty=ssh`: a word stays a word until the miner sees it change (then `tty=<*>`);
                // `true`, `false`, `null` are values
                return constant;
            }
            if v < b {
                return Token { var_start: v as u32, var_end: b as u32, shape: shape_of(bytes, v, b, end), ..constant };
            }
            // `logname=` stays as written: the benchmark's templates keep an empty key's `=`
            return constant;
        }
    }
    if let Some(v) = named_number(&bytes[a..b]) {
        // `core.2275`, `node-246`, `onExtend:1514038530000`: the name stays, the number is the value
        let v = a + v;
        return Token { var_start: v as u32, var_end: b as u32, shape: shape_of(bytes, v, b, end), ..constant };
    }
    if is_variable(&msg[a..b]) && !is_numbered_name(&bytes[a..b]) && !is_call(&bytes[start..end]) {
        return Token { var_start: a as u32, var_end: b as u32, shape: shape_of(bytes, a, b, end), ..constant };
    }
    constant
}

/// Where the value would be in an empty pair (`()`, `[]`, `{}`, `""`, `''`, perhaps followed by
/// closing punctuation: `(),`): the offset between opener and closer.
fn empty_pair(bytes: &[u8], start: usize, end: usize) -> Option<usize> {
    let pair = bytes.get(start..start + 2).filter(|_| end >= start + 2)?;
    let closers_after = bytes[start + 2..end].iter().all(|c| b",;:.!?".contains(c));
    (closers_after && matches!(pair, b"()" | b"[]" | b"{}" | b"\"\"" | b"''")).then_some(start + 1)
}

/// Where the value starts in a name glued to a number: `core.2275`, `node-246` (letters, one
/// `.` or `-`, digits only) and `onExtend:1514038530000`, `vCores:8` (a name, `:`, a value with a
/// digit that is not a path or URL). The name is a word, so the template keeps it.
fn named_number(core: &[u8]) -> Option<usize> {
    let name_len = core.iter().position(|b| !b.is_ascii_alphabetic())?;
    if name_len < 2 || name_len + 1 >= core.len() {
        return None;
    }
    let rest = &core[name_len + 1..];
    match core[name_len] {
        b'.' | b'-' if rest.iter().all(u8::is_ascii_digit) => Some(name_len + 1),
        b':' if rest.iter().any(u8::is_ascii_digit) && !rest.starts_with(b"/") && !rest.contains(&b':') => Some(name_len + 1),
        _ => None,
    }
}

/// For a `key=word` token kept constant (`tty=ssh`): the hash of its key and where its value
/// is, so a miner that has seen the key take several words can mask it as `key=<*>`.
pub(crate) fn keyed_word(msg: &str, t: &Token) -> Option<(u64, u32, u32)> {
    if t.is_var() || t.class != 0 {
        return None;
    }
    let bytes = msg.as_bytes();
    let (mut a, mut b) = (t.start as usize, t.end as usize);
    while a < b && OPENERS.contains(&bytes[a]) {
        a += 1;
    }
    while b > a && CLOSERS.contains(&bytes[b - 1]) {
        b -= 1;
    }
    let eq = bytes[a..b].iter().position(|&c| c == b'=')?;
    let (key, value) = (&bytes[a..a + eq], &bytes[a + eq + 1..b]);
    if eq == 0 || value.is_empty() || !key.iter().all(|c| c.is_ascii_alphabetic() || b"_-.".contains(c)) || is_meaning_key(key) {
        return None;
    }
    // FNV-1a: keys are short
    let h = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| (h ^ c as u64).wrapping_mul(0x100_0000_01b3));
    Some((h, (a + eq + 1) as u32, b as u32))
}

/// `jk2_init()`, `Foo.run2():`: a function is named, not valued, whatever digits it has.
fn is_call(tok: &[u8]) -> bool {
    let t = match tok.iter().rposition(|&b| b == b')') {
        Some(close) if close > 0 && tok[close - 1] == b'(' && tok[close + 1..].iter().all(|b| CLOSERS.contains(b)) => &tok[..close - 1],
        _ => return false,
    };
    t.first().is_some_and(u8::is_ascii_alphabetic) && t.iter().all(|&b| b.is_ascii_alphanumeric() || b"_.:$".contains(&b))
}

/// `eth0`, `sda1`, `ssh2`, `SOCKS5`, `IPv6`: a name with one trailing digit names a device or a
/// protocol, and is a word. Longer numbers (`node129`, `user42`) and anything with separators
/// (`node-7`) stay values; host names like `web1` become values once a position has met enough
/// different ones (see the miner).
fn is_numbered_name(core: &[u8]) -> bool {
    core.len() >= 3
        && core[core.len() - 1].is_ascii_digit()
        && core[..core.len() - 1].iter().all(u8::is_ascii_alphabetic)
}

/// Whether a token core is a value rather than a word. One pass over the bytes: this runs for
/// every token of every record.
pub fn is_variable(core: &str) -> bool {
    let bytes = core.as_bytes();
    let (mut slashes, mut at, mut colon_slash, mut colon_backslash) = (0u32, false, false, false);
    let mut prev = 0u8;
    for &b in bytes {
        match b {
            b'0'..=b'9' => return true,
            b'/' => {
                slashes += 1;
                colon_slash |= prev == b':';
            }
            b'\\' => colon_backslash |= prev == b':',
            b'@' => at = true,
            _ => {}
        }
        prev = b;
    }
    if bytes.len() > 1 && (bytes[0] == b'/' || bytes[0] == b'\\' || (bytes[0] == b'~' && bytes[1] == b'/')) {
        return true;
    }
    // URLs, Windows paths, paths with several segments (`usr/lib/x`, not `and/or`)
    if colon_slash || colon_backslash || slashes >= 2 {
        return true;
    }
    at && core.find('@').is_some_and(|i| i > 0 && core[i..].contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(msg: &str) -> Vec<String> {
        let mut toks = Vec::new();
        tokenize(msg, &mut toks, 256);
        toks.iter()
            .map(|t| {
                let mut s = String::new();
                t.render_masked(msg, &mut s);
                assert!(t.masked_eq(msg, &s));
                s
            })
            .collect()
    }

    #[test]
    fn masks_values_keeps_words_and_wrappers() {
        assert_eq!(
            masked("Failed password for root from 173.234.31.186 port 38926 ssh2"),
            ["Failed", "password", "for", "root", "from", "<*>", "port", "<*>", "ssh2"]
        );
        // names with one trailing digit are devices and protocols; longer numbers are values
        // and a name glued to a number by `-`, `.` or `:` keeps the name
        assert_eq!(masked("via eth0 over SOCKS5 to node129 on node-7"), ["via", "eth0", "over", "SOCKS5", "to", "<*>", "on", "node-<*>"]);
        assert_eq!(masked("generating core.2275 onExtend:1514038530000 vCores:8>"), ["generating", "core.<*>", "onExtend:<*>", "vCores:<*>>"]);
        assert_eq!(masked("ip-10-0-3-17 R02-M1-N0 x-1.2"), ["<*>", "<*>", "<*>"]);
        assert_eq!(masked("checking [173.234.31.186] failed"), ["checking", "[<*>]", "failed"]);
        // a word value stays a word (the miner makes it `tty=<*>` when it changes); flags are values
        assert_eq!(masked("logname= uid=0 euid=0 tty=ssh"), ["logname=", "uid=<*>", "euid=<*>", "tty=ssh"]);
        assert_eq!(masked("obj=true data=null"), ["obj=<*>", "data=<*>"]);
        assert_eq!(masked("lock=1, tag=\"View Lock\", ws=null"), ["lock=<*>,", "<*>", "ws=<*>"]);
        assert_eq!(masked("(HWID=1973)"), ["(HWID=<*>)"]);
        assert_eq!(masked("ok /etc/httpd/conf/workers2.properties"), ["ok", "<*>"]);
        assert_eq!(masked("id 3fa85f64-5717-4562-b3fc-2c963f66afa6, took 12ms."), ["id", "<*>,", "took", "<*>."]);
        assert_eq!(masked("mail bob@example.com see http://x/y"), ["mail", "<*>", "see", "<*>"]);
        assert_eq!(masked("and/or [preauth]"), ["and/or", "[preauth]"]);
        // a unit stays a word (the miner merges units that change); a parenthesised quantity is one value
        assert_eq!(masked("850 bytes (1.16 KB) sent, lifetime <1 sec"), ["<*>", "bytes", "<*>", "sent,", "lifetime", "<<*>", "sec"]);
        assert_eq!(masked("(no digits here) took 5 ms."), ["(no", "digits", "here)", "took", "<*>", "ms."]);
        assert_eq!(masked("Running task 0.0 in stage 1.0 (TID 42)"), ["Running", "task", "<*>", "in", "stage", "<*>", "(TID", "<*>)"]);
    }

    #[test]
    fn host_port_keeps_its_separators() {
        assert_eq!(
            masked("Receiving block blk_1 src: /10.250.19.102:54106 dest: /10.250.19.102:50010"),
            ["Receiving", "block", "<*>", "src:", "<*>:<*>", "dest:", "<*>:<*>"]
        );
        assert_eq!(masked("connect to db-1.example.com:5432, retrying"), ["connect", "to", "<*>:<*>,", "retrying"]);
        assert_eq!(masked("Old: msra-sa-41/10.190.173.170:9000 New: (x:9000)"), ["Old:", "<*>/<*>:<*>", "New:", "(<*>:<*>)"]);
        assert_eq!(masked("peer=10.0.0.1:80"), ["peer=<*>:<*>"]);
        // a function is a name
        assert_eq!(masked("jk2_init() Found child 6725"), ["jk2_init()", "Found", "child", "<*>"]);
        // not host:port: IPv6, URLs, times, a port too long
        assert_eq!(masked("at fe80::1:22 http://x:80/ 10:11:12 h:123456"), ["at", "<*>", "<*>", "<*>", "<*>"]);
    }

    #[test]
    fn an_empty_pair_is_an_empty_value() {
        assert_eq!(masked("args [] env {} name \"\" host (), done"), ["args", "[<*>]", "env", "{<*>}", "name", "\"<*>\"", "host", "(<*>),", "done"]);
        // not a pair: a call, a lone bracket, an operator
        assert_eq!(masked("jk2_init() ( ) [ x ] a == b"), ["jk2_init()", "(", ")", "[", "x", "]", "a", "==", "b"]);
        let mut toks = Vec::new();
        tokenize("from () at", &mut toks, 256);
        assert!(toks[1].is_var() && toks[1].var_start == toks[1].var_end, "{toks:?}");
    }

    #[test]
    fn dates_inside_messages_are_values() {
        // loghub Linux: one template per weekday before
        assert_eq!(
            masked("connection from 10.0.0.1 () at Sun Jul 10 03:55:21 2005"),
            ["connection", "from", "<*>", "(<*>)", "at", "<*>", "<*>", "<*>", "<*>", "<*>"]
        );
        assert_eq!(masked("backup done on 3 March, 2024"), ["backup", "done", "on", "<*>", "<*>,", "<*>"]);
        assert_eq!(masked("Next run: Mon, 12:00"), ["Next", "run:", "<*>,", "<*>"]);
        // names alone stay words
        assert_eq!(masked("May I help"), ["May", "I", "help"]);
        assert_eq!(masked("Sunday service started"), ["Sunday", "service", "started"]);
    }

    #[test]
    fn http_status_is_kept_as_its_class() {
        // nginx / Apache combined
        assert_eq!(
            masked("\"GET /api/items/42 HTTP/1.1\" 502 157 \"-\" \"curl/8.5.0\""),
            ["\"GET", "<*>", "<*>\"", "5xx", "<*>", "\"-\"", "\"<*>\""]
        );
        assert_eq!(masked("\"POST /login HTTP/2.0\" 200 12"), ["\"POST", "<*>", "<*>\"", "2xx", "<*>"]);
        // HAProxy: after the timers; AWS ALB: after the processing times
        assert_eq!(
            masked("http-in static/srv1 10/0/30/69/109 404 2750 - - ---- \"GET /index.html HTTP/1.1\""),
            ["http-in", "<*>", "<*>", "4xx", "<*>", "-", "-", "----", "\"GET", "<*>", "<*>\""]
        );
        assert_eq!(masked("0.000 0.001 0.000 503 503 34 366 \"GET http://x:80/ HTTP/1.1\"")[3..6], ["5xx", "5xx", "<*>"]);
        // logfmt
        assert_eq!(masked("method=GET status=504 level=error dur=3"), ["method=GET", "status=5xx", "level=error", "dur=<*>"]);
        // a number after a request that is not a status, and numbers with no request
        assert_eq!(masked("\"GET / HTTP/1.1\" 999 1"), ["\"GET", "/", "<*>\"", "<*>", "<*>"]);
        assert_eq!(masked("took 0.5 502 times"), ["took", "<*>", "<*>", "times"]);
    }

    #[test]
    fn long_messages_fold_into_the_last_token() {
        let mut toks = Vec::new();
        tokenize("a b c d e f", &mut toks, 3);
        assert_eq!(toks.len(), 3);
        assert_eq!(toks[2].text("a b c d e f"), "c d e f");
        assert!(toks[2].is_var());
    }

    #[test]
    fn empty_and_blank() {
        let mut toks = vec![Token { start: 0, end: 0, var_start: 0, var_end: 0, class: 0, shape: 0 }];
        tokenize("", &mut toks, 8);
        assert!(toks.is_empty());
        tokenize("  \t ", &mut toks, 8);
        assert!(toks.is_empty());
    }
}
