//! Stage 1: record → message. Sets aside the header of a raw log line.
//!
//! Real lines start with timestamps in many formats, levels, hosts, pids, thread names, logger
//! names, syslog tags or `key=value` pairs. Templates must be mined from the message only, or
//! every host name and thread id splits a template in two. There is no table of per-format
//! regexes here: the header is recognised by the *shape* of its tokens — digits and separators,
//! month names, a level word, a `tag:` or `logger.name`, a bracketed thread — which is what all
//! header formats have in common. The level is kept: it is a signal.

use crate::detect::level::Level;

/// The part of a line that templates are mined from, plus the level found in its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub text: &'a str,
    pub level: Option<Level>,
}

/// Most tokens a header is searched for in; anything longer is message.
const MAX_UNITS: usize = 14;

/// Strips line ends and the header. Never allocates.
pub fn extract(line: &str) -> Message<'_> {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some((priority, rest)) = syslog_priority(line) {
        // `<34>1 2024-… host app pid msgid [sd] msg` (RFC 5424) or `<34>Oct 11 …` (RFC 3164)
        let m = match rfc5424_message(rest) {
            Some(msg) => extract(msg),
            None => extract(rest),
        };
        return Message { text: m.text, level: m.level.or(Some(priority)) };
    }
    if let Some(rest) = container_runtime_prefix(line) {
        // the container's own line follows, with its own header
        return extract(rest);
    }
    if let Some(m) = extract_logfmt(line) {
        return m;
    }
    if let Some(m) = extract_piped(line) {
        return m;
    }
    if let Some(m) = extract_csv(line) {
        return m;
    }
    extract_spaced(line)
}

/// `<PRI>` of a syslog line → its severity (the low three bits) and the rest of the line.
fn syslog_priority(line: &str) -> Option<(Level, &str)> {
    let b = line.as_bytes();
    if b.first() != Some(&b'<') {
        return None;
    }
    let close = b.iter().take(5).position(|&c| c == b'>')?;
    if close < 2 || !b[1..close].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pri: u32 = line[1..close].parse().ok()?;
    if pri > 191 {
        return None;
    }
    let level = match pri & 7 {
        0..=2 => Level::Critical,
        3 => Level::Error,
        4 => Level::Warn,
        5 => Level::Notice,
        6 => Level::Info,
        _ => Level::Debug,
    };
    Some((level, &line[close + 1..]))
}

/// After `<PRI>`: `1 TIMESTAMP HOST APP PROCID MSGID SD MSG` → MSG. Each header field is one
/// token (`-` when empty); structured data is `-` or one or more `[id k="v" …]` groups.
fn rfc5424_message(rest: &str) -> Option<&str> {
    let mut s = rest.strip_prefix("1 ")?;
    for _ in 0..5 {
        let end = s.find(' ')?;
        s = &s[end + 1..];
    }
    if let Some(after) = s.strip_prefix('-') {
        return Some(after.trim_start_matches(' ').trim_start_matches('\u{feff}'));
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b'[' {
        // a group ends at an unescaped `]` outside quotes
        let mut in_quotes = false;
        i += 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if i == 0 || i > b.len() {
        return None;
    }
    Some(s[i..].trim_start_matches(' ').trim_start_matches('\u{feff}'))
}

/// CRI (containerd, CRI-O, Kubernetes node logs): `2024-…Z stdout F message`.
fn container_runtime_prefix(line: &str) -> Option<&str> {
    let (time, rest) = line.split_once(' ')?;
    if time.len() < 20 || !time.as_bytes()[0].is_ascii_digit() || !time.contains('T') {
        return None;
    }
    let rest = rest.strip_prefix("stdout ").or_else(|| rest.strip_prefix("stderr "))?;
    let rest = rest.strip_prefix("F").or_else(|| rest.strip_prefix("P"))?;
    match rest.as_bytes().first() {
        None => Some(rest),
        Some(b' ') => Some(&rest[1..]),
        _ => None,
    }
}

/// The message alone, without header detection (for input that is already a message).
pub fn plain(line: &str) -> Message<'_> {
    Message { text: line.trim_end_matches(['\r', '\n']).trim(), level: None }
}

/// A header "unit": one whitespace token, or a bracketed group such as `[Sun Dec 04 04:47:44 2005]`.
#[derive(Clone, Copy)]
struct Unit {
    start: usize,
    end: usize,
}

fn units(line: &str, out: &mut [Unit; MAX_UNITS]) -> usize {
    let bytes = line.as_bytes();
    let mut n = 0;
    let mut i = 0;
    while n < MAX_UNITS {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        if bytes[i] == b'[' {
            // a bracket group: until the matching `]`, allowing nesting and spaces
            let mut depth = 0i32;
            let mut j = i;
            while j < bytes.len() {
                match bytes[j] {
                    b'[' => depth += 1,
                    b']' => {
                        depth -= 1;
                        if depth == 0 {
                            j += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            // run on to the end of the token (e.g. `[main]:`), but `[time][LEVEL ][logger]`
            // (Elasticsearch, log4j2 patterns) are groups of their own
            while j < bytes.len() && !bytes[j].is_ascii_whitespace() && bytes[j] != b'[' {
                j += 1;
            }
            i = j;
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
        }
        out[n] = Unit { start, end: i };
        n += 1;
    }
    n
}

const MONTHS_DAYS: &[[u8; 3]] = &[
    *b"jan", *b"feb", *b"mar", *b"apr", *b"may", *b"jun", *b"jul", *b"aug", *b"sep", *b"oct", *b"nov", *b"dec",
    *b"mon", *b"tue", *b"wed", *b"thu", *b"fri", *b"sat", *b"sun",
];

/// `Jul`, `Sunday`, `Dec.`: month and weekday names, English, any case.
pub(crate) fn is_month_or_day(tok: &str) -> bool {
    if tok.len() < 3 || tok.len() > 10 || !tok.as_bytes()[0].is_ascii_alphabetic() {
        return false;
    }
    let t = tok.trim_end_matches([',', '.']);
    // Byte comparisons only: `t` may hold any UTF-8, and its third byte need not end a character.
    // The first three letters are checked first: they rule out nearly every token.
    let b = t.as_bytes();
    (t.len() == 3 || (4..=9).contains(&t.len()))
        && b[..3].iter().all(u8::is_ascii_alphabetic)
        && MONTHS_DAYS.contains(&[b[0] | 0x20, b[1] | 0x20, b[2] | 0x20])
        && b[3..].iter().all(u8::is_ascii_alphabetic)
        && (t.len() == 3 || is_full_month_or_day(t))
}

fn is_full_month_or_day(t: &str) -> bool {
    const FULL: &[&str] = &[
        "january", "february", "march", "april", "june", "july", "august", "september",
        "october", "november", "december", "monday", "tuesday", "wednesday", "thursday",
        "friday", "saturday", "sunday",
    ];
    FULL.iter().any(|f| f.eq_ignore_ascii_case(t))
}

/// Timestamps, dates, counters, node names, pids: anything with a digit in the header zone.
fn is_header_token(tok: &str) -> bool {
    if tok == "-" || tok == "|" || tok == "--" {
        return true;
    }
    if tok.starts_with('[') && tok.contains(' ') {
        // `[Sun Dec 04 04:47:44 2005]` is a time; `[instance: 96ab…]` is message
        let inner = tok.trim_start_matches('[').trim_end_matches([']', ':']);
        return inner.split_ascii_whitespace().all(|w| !w.contains(['[', ']']) && is_header_token(w));
    }
    if tok.bytes().any(|b| b.is_ascii_digit()) {
        return tok.len() <= 48;
    }
    is_month_or_day(tok) || matches!(tok, "UTC" | "GMT" | "Z" | "AM" | "PM") || is_zone(tok)
}

/// `2024-03-05`, `10:11:12,123`, `2024-03-05T10:11:12.123Z`, `05/Mar/2024:10:11:12`: a date or a
/// clock time (six digits or more with date or clock separators), never a plain number.
fn is_date_or_time(tok: &str) -> bool {
    let t = tok.trim_start_matches('[').trim_end_matches([']', ',']);
    let digits = t.bytes().filter(u8::is_ascii_digit).count();
    digits >= 6
        && t.bytes().any(|b| matches!(b, b':' | b'-' | b'/'))
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-:/.,+".contains(&b))
        && t.bytes().filter(u8::is_ascii_alphabetic).count() <= 3
}

/// Time-zone abbreviations as `strftime("%Z")` writes them (PostgreSQL's `log_line_prefix %t`).
fn is_zone(tok: &str) -> bool {
    const ZONES: &[&str] = &[
        "CET", "CEST", "EET", "EEST", "WET", "WEST", "BST", "IST", "MSK", "EST", "EDT", "CST", "CDT", "MST", "MDT",
        "PST", "PDT", "AKST", "AKDT", "HST", "JST", "KST", "HKT", "SGT", "AEST", "AEDT", "ACST", "AWST", "NZST", "NZDT",
    ];
    (3..=4).contains(&tok.len()) && ZONES.contains(&tok)
}

/// A level as a header writes it: a level word, or PostgreSQL's `LOG:`, `DETAIL:`, `HINT:`…
/// (upper case and a colon: these are the severity column of its log).
fn header_level(tok: &str) -> Option<Level> {
    Level::parse(tok, false).or_else(|| postgres_severity(tok.strip_suffix(':')?))
}

/// PostgreSQL's severity words that are not levels (its log's and its csvlog's column): info.
fn postgres_severity(word: &str) -> Option<Level> {
    matches!(word, "LOG" | "DETAIL" | "HINT" | "STATEMENT" | "CONTEXT" | "LOCATION" | "QUERY").then_some(Level::Info)
}

/// `sshd[24200]:`, `kernel:`, `WindowManager:`, `dfs.DataNode$PacketResponder:`,
/// `sshd(pam_unix)[19939]:`, `postfix/smtpd[1234]:`.
fn is_tag(tok: &str) -> bool {
    let Some(body) = tok.strip_suffix(':') else { return false };
    !is_exception_class(body)
        && !body.eq_ignore_ascii_case("panic")
        && body.len() >= 2
        && body.as_bytes()[0].is_ascii_alphabetic()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.$/[]()@#".contains(&b))
}

/// Where a log call sits in the source: `handler.go:42`, `(Foo.java:123)`, `app/models.py:7:`.
fn is_source_location(tok: &str) -> bool {
    let t = tok.trim_start_matches('(').trim_end_matches([')', ':']);
    let Some((file, line)) = t.rsplit_once(':') else { return false };
    !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
        && file.rsplit_once('.').is_some_and(|(name, ext)| {
            !name.is_empty() && (1..=5).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphabetic())
        })
        && file.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./$".contains(&b))
}

/// `nova.osapi_compute.wsgi.server`, `org.apache.hadoop.mapreduce.v2.app.MRAppMaster`.
fn is_logger(tok: &str) -> bool {
    let body = tok.strip_suffix(':').unwrap_or(tok);
    body.len() >= 3
        && body.as_bytes()[0].is_ascii_alphabetic()
        && body.contains('.')
        && !body.ends_with('.')
        && !body.contains("..")
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.$".contains(&b))
}

/// `java.lang.NullPointerException`, `NoSuchFileException:`, `ValueError:`, `OutOfMemoryError`,
/// `Foo$BarException`: the most telling words of a line, never a logger or a tag.
pub(crate) fn is_exception_class(tok: &str) -> bool {
    let body = tok.trim_end_matches([':', ',']);
    let last = body.rsplit(['.', '$']).next().unwrap_or(body);
    let b = last.as_bytes();
    b.first().is_some_and(u8::is_ascii_uppercase)
        && ["Exception", "Error", "Throwable", "Fault"].iter().any(|s| last.len() > s.len() && last.ends_with(s))
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && body.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.$".contains(&c))
}

/// nginx's `54053#0:` (pid#thread).
fn is_nginx_ids(tok: &str) -> bool {
    tok.strip_suffix(':').and_then(|b| b.split_once('#')).is_some_and(|(p, t)| {
        !p.is_empty() && !t.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && t.bytes().all(|b| b.is_ascii_digit())
    })
}

/// A logger name is header only where logging frameworks put it: before ` - `, `: `, `| `, a
/// `[thread]` or `(thread)`, or ending in `:` itself — and only when a message follows.
fn logger_in_header_position(line: &str, buf: &[Unit; MAX_UNITS], n: usize, i: usize) -> bool {
    let t = &line[buf[i].start..buf[i].end];
    if is_exception_class(t) || i + 1 >= n {
        return false;
    }
    let next = &line[buf[i + 1].start..buf[i + 1].end];
    if matches!(next, "-" | ":" | "|" | "--") {
        // the separator must not be all that is left
        return i + 2 < n;
    }
    t.ends_with(':') || next.starts_with(['[', '('])
}

/// `[o.e.n.Node    ]:` → `o.e.n.Node`.
fn bracket_inner(tok: &str) -> &str {
    tok.trim_end_matches(':').trim_start_matches('[').trim_end_matches(']').trim()
}

fn is_bracketed(tok: &str) -> bool {
    tok.len() >= 3 && tok.starts_with('[') && tok.trim_end_matches(':').ends_with(']')
}

fn is_upper_word(tok: &str) -> bool {
    tok.len() >= 2 && tok.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
}

/// Plain host names and program names: letters, digits and `._-`.
fn is_ident(tok: &str) -> bool {
    !tok.is_empty()
        && tok.as_bytes()[0].is_ascii_alphanumeric()
        && tok.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// PostgreSQL's `user@database` (`log_line_prefix %u@%d`).
fn is_user_at_db(tok: &str) -> bool {
    tok.split_once('@').is_some_and(|(u, d)| is_ident(u) && (d.is_empty() || is_ident(d)))
}

/// `INFO`, `[error]`, `<warn>`, `Warning:` — how levels look when they open a line as header.
fn is_header_style_level(tok: &str) -> bool {
    tok.starts_with(['[', '<', '('])
        || tok.ends_with(':')
        || tok.bytes().all(|b| b.is_ascii_uppercase())
}

fn level_of_unit(tok: &str) -> Option<Level> {
    if let Some(level) = Level::parse(tok, true) {
        return Some(level);
    }
    // Apache 2.4 `[module:level]`, Icinga `level/Component:`
    if tok.starts_with('[') && tok.ends_with(']') {
        if matches!(tok, "[Note]" | "[System]") {
            // MySQL's informational severities
            return Some(Level::Info);
        }
        let (_, level) = tok[1..tok.len() - 1].rsplit_once(':')?;
        return Level::parse(level, false);
    }
    // Monolog `laravel.EMERGENCY:`
    if let Some((channel, level)) = tok.strip_suffix(':').and_then(|t| t.rsplit_once('.')) {
        if is_ident(channel) && level.len() >= 4 && level.bytes().all(|b| b.is_ascii_uppercase()) {
            return Level::parse(level, false);
        }
    }
    let (level, component) = tok.split_once('/')?;
    if component.ends_with(':') && component.len() > 2 && component.as_bytes()[0].is_ascii_alphabetic() {
        return Level::parse(level, false);
    }
    None
}

/// Redis `30 May 12:50:13.464 *`: after day, month and time, one symbol is the level
/// (`.` debug, `-` verbose, `*` notice, `#` warning).
fn redis_level(line: &str, buf: &[Unit; MAX_UNITS], i: usize) -> Option<Level> {
    if i < 3 {
        return None;
    }
    let tok = |k: usize| &line[buf[k].start..buf[k].end];
    let level = match tok(i) {
        "." => Level::Debug,
        "-" => Level::Trace,
        "*" => Level::Notice,
        "#" => Level::Warn,
        _ => return None,
    };
    let day = tok(i - 3);
    let time = tok(i - 1);
    let is_time = time.len() >= 8
        && time.as_bytes()[2] == b':'
        && time.as_bytes()[5] == b':'
        && time.bytes().all(|b| b.is_ascii_digit() || b == b':' || b == b'.');
    (day.len() <= 2 && day.bytes().all(|b| b.is_ascii_digit()) && is_month_or_day(tok(i - 2)) && is_time).then_some(level)
}

fn extract_spaced(line: &str) -> Message<'_> {
    let mut buf = [Unit { start: 0, end: 0 }; MAX_UNITS];
    let n = units(line, &mut buf);
    let tok = |i: usize| &line[buf[i].start..buf[i].end];
    let message_from = |i: usize, level: Option<Level>| -> Message<'_> {
        let start = if i < n { buf[i].start } else { line.len() };
        // A line that is all header after a level (`… RAS KERNEL INFO`) has an empty message;
        // one with no level at all (`2024-01-01 12:00:00`) is kept whole.
        let text = line[start..].trim();
        if text.is_empty() && level.is_none() {
            Message { text: line.trim(), level }
        } else {
            Message { text, level }
        }
    };

    if n >= 2 {
        if let Some(m) = first_unit_forms(line, &buf, n) {
            return m;
        }
    }
    // klog `E1202 10:00:00.000000 1 file.go:42] …` (behind a time, e.g. a container runtime's):
    // its letter is the level, and the header runs to the `file.go:42]`
    let klog = (0..n.min(3)).find_map(|k| (k + 1 < n).then(|| klog_level(tok(k), tok(k + 1))).flatten());
    let message_from = |i: usize, level: Option<Level>| message_from(i, level.or(klog));

    // Phase 1: the leading run of timestamp-like units; a level word ends the header.
    let mut i = 0;
    while i < n {
        let t = tok(i);
        // A single-letter level only counts after at least one header token (`... 2395 D Tag:`).
        if let Some(level) = redis_level(line, &buf, i) {
            return message_from(i + 1, Some(level));
        }
        if let Some(level) = if i > 0 { level_of_unit(t) } else { Level::parse(t, false) } {
            if t.trim_end_matches(':').eq_ignore_ascii_case("panic") {
                // Go `panic: runtime error: …`: the word is the message
                return message_from(i, Some(level));
            }
            if i == 0 && !is_header_style_level(t) {
                // `Error opening file`: a signal, but the word belongs to the message.
                return message_from(0, Some(level));
            }
            // `debug/Component:` names its component itself
            let named = (0..i).any(|k| is_logger(tok(k))) || (t.contains('/') && t.ends_with(':'));
            // the level first, then the time (log4j `%-5p %d`, Django's `{levelname} {asctime}`)
            let mut from = i + 1;
            while i == 0 && from + 1 < n && is_date_or_time(tok(from)) {
                from += 1;
            }
            return message_from(after_decorations_from(line, &buf, n, from, named || t.ends_with(':')), Some(level));
        }
        if i > 0 && is_tag(t) {
            // syslog `host prog[pid]: message`: a level word after the tag stays in the message
            return after_tag(line, &buf, n, i + 1);
        }
        if !is_header_token(t) {
            break;
        }
        i += 1;
    }
    if i == 0 || i >= n {
        return message_from(i.min(n), None);
    }

    // Phase 2a: a level a few upper-case fields further on (`RAS KERNEL INFO`,
    // `NULL 2005-06-11-15.16.02 NULL RAS MMCS ERROR`).
    // Also `[main] INFO logger - …` (Java) and `- app.module - INFO - …` (Python): bracketed
    // threads and plain names may come first, but then the level must look like a header's.
    for j in i..n.min(i + 7) {
        if let Some(level) = header_level(tok(j)) {
            let fields = |k: usize| is_upper_word(tok(k)) || is_logger(tok(k)) || is_header_token(tok(k));
            let loose = |k: usize| (fields(k) || is_bracketed(tok(k)) || is_ident(tok(k)) || is_user_at_db(tok(k))) && !is_tag(tok(k));
            if (i..j).all(fields) || ((i..j).all(loose) && is_header_style_level(tok(j))) {
                // a logger named before the level: a `word:` after it is message (`getTasks: …`)
                let named = (i..j).any(|k| is_logger(tok(k)) || (is_ident(tok(k)) && !is_upper_word(tok(k)) && !is_header_token(tok(k))));
                return message_from(after_decorations_from(line, &buf, n, j + 1, named || tok(j).ends_with(':')), Some(level));
            }
            break;
        }
    }
    // Phase 2b: syslog: optional host name, then `prog[pid]:`.
    if is_tag(tok(i)) {
        return after_tag(line, &buf, n, i + 1);
    }
    if i + 1 < n && is_ident(tok(i)) && is_tag(tok(i + 1)) {
        return after_tag(line, &buf, n, i + 2);
    }
    // Phase 2c: `program - message`, `program *64 - message` (Proxifier, many Windows tools).
    if !tok(i).starts_with('[') {
        for j in i + 1..n.min(i + 3) {
            if tok(j) == "-" {
                return message_from(j + 1, None);
            }
            if !is_header_token(tok(j)) {
                break;
            }
        }
    }
    // Phase 2d: component / state columns, then an epoch timestamp and more numbers
    // (`node psu 1106496000 1 psu failure`, `unix.hw state_change.x 1077804742 1 Component …`).
    let mut j = i;
    while j < n && j < i + 3 && (is_ident(tok(j)) || is_logger(tok(j))) && !is_header_token(tok(j)) {
        j += 1;
    }
    let numbers_from = j;
    let mut epoch_like = false;
    while j < n && is_header_token(tok(j)) {
        epoch_like |= tok(j).len() >= 9 && tok(j).bytes().all(|b| b.is_ascii_digit());
        j += 1;
    }
    if j > numbers_from && epoch_like && j < n {
        return message_from(j, None);
    }
    message_from(i, None)
}

/// After a level: at most one `[thread]` group, one logger name (unless one came before the
/// level, or the level ends in `:` — `LOG:  duration: …`: `logger_used`), source locations
/// and `-`/`:` separators.
fn after_decorations_from(line: &str, buf: &[Unit; MAX_UNITS], n: usize, mut i: usize, logger_used: bool) -> usize {
    let mut bracket_used = false;
    let mut logger_used = logger_used;
    let first = i;
    let level_is_letter = i > 0 && buf[i - 1].end - buf[i - 1].start == 1;
    while i < n {
        let t = &line[buf[i].start..buf[i].end];
        let next = if i + 1 < n { &line[buf[i + 1].start..buf[i + 1].end] } else { "" };
        if matches!(t, "-" | ":" | "|" | "--" | "---") || (i == first && t == "error:" && i + 1 < n) {
            // separators, and PHP's `Fatal error:` (the level's own noun)
            i += 1;
        } else if !logger_used && next == ":" && i + 2 < n && !is_exception_class(t)
            && (is_logger(t) || (buf[i + 1].start - buf[i].end >= 2 && t.as_bytes()[0].is_ascii_alphabetic()))
        {
            // Spring Boot / logback: a padded logger column, then ` : ` (`FarmApplication          : Starting …`,
            // `o.s.b.w.embedded.tomcat.TomcatWebServer  : …`); `REPORT : 7007` is a message
            logger_used = true;
            i += 1;
        } else if !logger_used && bracket_used && i > first && is_bracketed(&line[buf[i - 1].start..buf[i - 1].end])
            && is_logger(t) && !is_exception_class(t) && i + 1 < n
        {
            // `LEVEL [thread] logger message` (Tomcat, log4j `%p [%t] %c %m`)
            logger_used = true;
            i += 1;
        } else if i == first && is_nginx_ids(t) {
            // nginx `[error] 54053#0: *3 open() …`: pid#tid and the connection number
            i += if next.starts_with('*') && next[1..].bytes().all(|b| b.is_ascii_digit()) && i + 2 < n { 2 } else { 1 };
        } else if !logger_used && i + 1 < n && is_bracketed(t) && is_logger(bracket_inner(t)) {
            // `[o.e.n.Node    ]` (log4j2 `[%c]`): a bracketed logger, then perhaps a bracketed node or thread
            logger_used = true;
            i += 1;
        } else if !bracket_used && t.starts_with('[') && t.ends_with([']', ':']) {
            bracket_used = true;
            i += 1;
        } else if !logger_used
            && ((is_logger(t) && logger_in_header_position(line, buf, n, i)) || (is_tag(t) && i == first && i + 1 < n && level_is_letter))
        {
            // a plain `Tag:` only right after a logcat letter level (`D WindowManager: …`); after
            // a word level (`FATAL ciod: …`, `[Note] InnoDB: …`), a thread or a source location,
            // `getTasks: …` is the message
            logger_used = true;
            i += 1;
        } else if is_source_location(t) {
            i += 1;
        } else if !logger_used && !bracket_used && i + 1 < n && t.bytes().all(|b| b.is_ascii_digit())
            && (matches!(next, "-" | "--" | "---" | ":" | "|") || next.starts_with('[') || is_logger(next))
        {
            // a pid or thread id between level and logger (Spring Boot `INFO 12345 --- [main]`);
            // a number that opens the message (`1 floating point alignment exceptions`) is a value
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// The message after a syslog tag; a klog line behind it (journald's kubelet) has its own header.
fn after_tag<'a>(line: &'a str, buf: &[Unit; MAX_UNITS], n: usize, i: usize) -> Message<'a> {
    if i + 1 < n && klog_level(&line[buf[i].start..buf[i].end], &line[buf[i + 1].start..buf[i + 1].end]).is_some() {
        return extract_spaced(&line[buf[i].start..]);
    }
    let text = if i < n { line[buf[i].start..].trim() } else { "" };
    Message { text: if text.is_empty() { line.trim() } else { text }, level: level_after(line, buf, n, i) }
}

/// klog's `E1202` (level letter, month, day) followed by its `10:00:00.000000`.
fn klog_level(tok: &str, next: &str) -> Option<Level> {
    let b = tok.as_bytes();
    let n = next.as_bytes();
    if b.len() != 5 || !b[1..].iter().all(u8::is_ascii_digit) || n.len() < 8 || n[2] != b':' || n[5] != b':' {
        return None;
    }
    match b[0] {
        b'I' => Some(Level::Info),
        b'W' => Some(Level::Warn),
        b'E' => Some(Level::Error),
        b'F' => Some(Level::Critical),
        _ => None,
    }
}

/// Headers recognised by their first unit alone:
/// - Python `logging.basicConfig`: `ERROR:root:ValueError: …` (`%(levelname)s:%(name)s:%(message)s`);
/// - logrus text on a terminal: `INFO[0000] Starting server`;
/// - Ruby `Logger`: `E, [2024-03-05T10:11:12.123456 #1234] ERROR -- : message` (and `-- progname:`);
/// - .NET console: `fail: Microsoft.AspNetCore.Server.Kestrel[13]` (the message is on the next line).
fn first_unit_forms<'a>(line: &'a str, buf: &[Unit; MAX_UNITS], n: usize) -> Option<Message<'a>> {
    let tok = |i: usize| &line[buf[i].start..buf[i].end];
    let first = tok(0);
    if let Some((level, rest)) = first.split_once(':') {
        if level.len() >= 4 && level.bytes().all(|b| b.is_ascii_uppercase()) {
            if let (Some(l), Some((name, _))) = (Level::parse(level, false), rest.split_once(':')) {
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
                    let start = buf[0].start + level.len() + 1 + name.len() + 1;
                    return Some(Message { text: line[start..].trim(), level: Some(l) });
                }
            }
        }
        if rest.is_empty() {
            let l = match level {
                "trce" => Some(Level::Trace),
                "dbug" => Some(Level::Debug),
                "fail" => Some(Level::Error),
                "crit" => Some(Level::Critical),
                _ => None,
            };
            if l.is_some() {
                return Some(Message { text: line[buf[1].start..].trim(), level: l });
            }
        }
    }
    if let Some((level, rest)) = first.split_once('[') {
        if level.len() >= 4 && level.bytes().all(|b| b.is_ascii_uppercase()) && rest.strip_suffix(']').is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit())) {
            if let Some(l) = Level::parse(level, false) {
                return Some(Message { text: line[buf[1].start..].trim(), level: Some(l) });
            }
        }
    }
    if n >= 4 && first.len() == 2 && first.ends_with(',') && tok(1).starts_with('[') && tok(1).contains('#') {
        let level = Level::parse(tok(2), false)?;
        let mut i = 3;
        if tok(i) == "--" {
            i += 1;
        }
        // progname (often empty) and its colon
        if (i < n && tok(i) == ":") || (i + 1 < n && is_tag(tok(i))) {
            i += 1;
        }
        let text = if i < n { line[buf[i].start..].trim() } else { "" };
        return Some(Message { text, level: Some(level) });
    }
    None
}

/// A level word opening the message after a syslog tag (`sshd[1]: error: ...`) is a signal,
/// but it stays in the message.
fn level_after(line: &str, buf: &[Unit; MAX_UNITS], n: usize, i: usize) -> Option<Level> {
    if i < n {
        Level::parse(&line[buf[i].start..buf[i].end], false)
    } else {
        None
    }
}

/// `20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579`: leading pipe-separated
/// fields without spaces are header; the message starts at the first field with a space.
fn extract_piped(line: &str) -> Option<Message<'_>> {
    let first_space = line.find(|c: char| c.is_ascii_whitespace()).unwrap_or(line.len());
    let head = &line[..first_space];
    if head.bytes().filter(|&b| b == b'|').count() < 2 {
        return None;
    }
    let first_field = head.split('|').next().unwrap_or("");
    if !first_field.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut level = None;
    let mut start = 0;
    // every field but the one that runs into the space is header
    let last_pipe = head.rfind('|').unwrap_or(0);
    for field in line[..last_pipe].split('|') {
        if level.is_none() {
            level = Level::parse(field.trim(), false);
        }
        start += field.len() + 1;
    }
    let text = line[start.min(line.len())..].trim();
    Some(Message { text: if text.is_empty() { line.trim() } else { text }, level })
}

/// A CSV record (PostgreSQL's csvlog, CSV exports): `2021-01-04 01:06:13.270 UTC,,,1,,5ff26a05.1,
/// 2,,2021-01-04 01:06:13 UTC,,0,LOG,00000,"listening on IPv4 address ""0.0.0.0"", port 5432",,,`.
/// The fields up to a severity field are header; the message is the first quoted field with a
/// space after it (its `""` escapes stay: nothing is allocated). A quoted field still open at the
/// end of the line (a multi-line record) runs to the end.
fn extract_csv(line: &str) -> Option<Message<'_>> {
    let b = line.as_bytes();
    if !b.first()?.is_ascii_digit() {
        return None;
    }
    // cheap rejection: a CSV record has many fields early
    if b[..b.len().min(160)].iter().filter(|&&c| c == b',').count() < 6 {
        return None;
    }
    let mut level = None;
    let mut i = 0;
    let mut fields = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            let end = loop {
                match b[j..].iter().position(|&c| c == b'"') {
                    None => break None,
                    Some(k) if b.get(j + k + 1) == Some(&b'"') => j += k + 2,
                    Some(k) => break Some(j + k),
                }
            };
            let inner = &line[start..end.unwrap_or(b.len())];
            if end.is_some_and(|e| !matches!(b.get(e + 1), None | Some(b','))) {
                return None; // text after a closing quote: not CSV
            }
            if level.is_some() && inner.contains(' ') {
                return Some(Message { text: inner.trim(), level });
            }
            i = end? + 1;
        } else {
            let end = b[i..].iter().position(|&c| c == b',').map_or(b.len(), |k| i + k);
            if level.is_none() && fields > 0 {
                level = severity_field(&line[i..end]);
            }
            i = end;
        }
        fields += 1;
        match b.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

/// A CSV severity column: an upper-case level word (`ERROR`, `WARNING`) or PostgreSQL's `LOG`,
/// `DETAIL`, `HINT` ….
fn severity_field(field: &str) -> Option<Level> {
    if field.len() < 3 || !field.bytes().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    Level::parse(field, false).or_else(|| postgres_severity(field))
}

/// `time=... level=warn msg="disk almost full" path=/var`: the message is the `msg` value.
fn extract_logfmt(line: &str) -> Option<Message<'_>> {
    let bytes = line.as_bytes();
    let mut msg: Option<&str> = None;
    let mut level = None;
    let mut pairs = 0;
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let key_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.') {
            i += 1;
        }
        if i == key_start || i >= bytes.len() || bytes[i] != b'=' {
            return None;
        }
        let key = &line[key_start..i];
        i += 1;
        let (value, next) = if i < bytes.len() && bytes[i] == b'"' {
            let v_start = i + 1;
            let mut j = v_start;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            (&line[v_start..j.min(bytes.len())], (j + 1).min(bytes.len()))
        } else {
            let v_start = i;
            let mut j = i;
            while j < bytes.len() && bytes[j] != b' ' {
                j += 1;
            }
            (&line[v_start..j], j)
        };
        i = next;
        pairs += 1;
        match key {
            "msg" | "message" => msg = Some(value),
            "level" | "lvl" | "severity" | "loglevel" => level = Level::parse(value, true),
            _ => {}
        }
    }
    match msg {
        Some(text) if pairs >= 2 && !text.trim().is_empty() => Some(Message { text: text.trim(), level }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(line: &str) -> (&str, Option<Level>) {
        let m = extract(line);
        (m.text, m.level)
    }

    #[test]
    fn csv_records_give_their_quoted_message_after_the_severity_field() {
        // PostgreSQL 13 csvlog (realworld/postgresql-csv), one record per line and one open at the end
        assert_eq!(
            msg(r#"2021-01-04 01:06:13.270 UTC,,,1,,5ff26a05.1,1,,2021-01-04 01:06:13 UTC,,0,LOG,00000,"starting PostgreSQL 13.1 (Debian 13.1-1.pgdg100+1) on x86_64-pc-linux-gnu, compiled by gcc (Debian 8.3.0-6) 8.3.0, 64-bit",,,,,,,,,"","postmaster""#),
            ("starting PostgreSQL 13.1 (Debian 13.1-1.pgdg100+1) on x86_64-pc-linux-gnu, compiled by gcc (Debian 8.3.0-6) 8.3.0, 64-bit", Some(Level::Info))
        );
        assert_eq!(
            msg(r#"2021-01-04 01:06:13.270 UTC,,,1,,5ff26a05.1,2,,2021-01-04 01:06:13 UTC,,0,LOG,00000,"listening on IPv4 address ""0.0.0.0"", port 5432",,,,,,,,,"","postmaster""#),
            (r#"listening on IPv4 address ""0.0.0.0"", port 5432"#, Some(Level::Info))
        );
        assert_eq!(
            msg(r#"2021-01-04 00:22:01.903 UTC,"postgres","postgres",59,"172.24.0.1:42642",5ff25f96.3b,3,"SELECT",2021-01-04 00:21:42 UTC,3/0,0,LOG,00000,"duration: 0.658 ms  statement: SELECT 'multi',"#),
            ("duration: 0.658 ms  statement: SELECT 'multi',", Some(Level::Info))
        );
        assert_eq!(
            msg(r#"2021-01-04 01:07:01.111 UTC,"postgres","app",77,"10.0.0.9:5000",5ff26a35.4d,1,"idle",2021-01-04 01:07:00 UTC,4/2,0,ERROR,42P01,"relation ""users"" does not exist",,,,,,"select * from users;",15,,"psql""#),
            (r#"relation ""users"" does not exist"#, Some(Level::Error))
        );
        // lines with commas that are not CSV records keep their old reading
        for line in [
            "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster for application appattempt_1445144423722_0020_000001",
            "2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack v6.1.7601.23505",
            r#"1,2,3,4,5,6,7 values "a b" without a severity field"#,
            r#"2024-01-01,a,b,c,d,e,ERROR,"x y"z,more"#,
        ] {
            assert_eq!(extract_csv(line), None, "{line}");
        }
    }

    #[test]
    fn loghub_headers_are_set_aside() {
        let cases: &[(&str, &str, Option<Level>)] = &[
            ("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\r",
             "Invalid user webmaster from 173.234.31.186", None),
            ("081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating",
             "PacketResponder 1 for block blk_38865049064139660 terminating", Some(Level::Info)),
            ("1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected",
             "instruction cache parity error corrected", Some(Level::Info)),
            ("2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster for application appattempt_1445144423722_0020_000001",
             "Created MRAppMaster for application appattempt_1445144423722_0020_000001", Some(Level::Info)),
            ("17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers for [TERM, HUP, INT]",
             "Registered signal handlers for [TERM, HUP, INT]", Some(Level::Info)),
            ("2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200",
             "Notification time out: 3200", Some(Level::Info)),
            ("03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogsopening app wtoken",
             "printFreezingDisplayLogsopening app wtoken", Some(Level::Debug)),
            ("[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6",
             "mod_jk child workerEnv in error state 6", Some(Level::Error)),
            ("[10.30 16:49:06] chrome.exe - proxy.cse.cuhk.edu.hk:5070 open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS",
             "proxy.cse.cuhk.edu.hk:5070 open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS", None),
            ("20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",
             "onStandStepChanged 3579", None),
            ("134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change: Component is in the unavailable state",
             "Component State Change: Component is in the unavailable state", None),
            ("nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server [req-38101a0b-2096 113d3a99 54fadb41 - - -] 10.11.10.1 \"GET /v2/servers/detail HTTP/1.1\" status: 200",
             "10.11.10.1 \"GET /v2/servers/detail HTTP/1.1\" status: 200", Some(Level::Info)),
            ("1118536327 2005.06.11 NULL 2005-06-11-17.32.07.581048 NULL RAS MMCS ERROR idoproxydb hit ASSERT condition",
             "idoproxydb hit ASSERT condition", Some(Level::Error)),
            ("2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack v6.1.7601.23505",
             "CBS    Loaded Servicing Stack v6.1.7601.23505", Some(Level::Info)),
        ];
        for (line, want, level) in cases {
            assert_eq!(msg(line), (*want, *level), "line: {line}");
        }
    }

    #[test]
    fn common_envelopes_are_set_aside() {
        let cases: &[(&str, &str, Option<Level>)] = &[
            // syslog with a sub-program, as Linux PAM and Postfix write it
            ("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0",
             "authentication failure; logname= uid=0", None),
            ("Mar  5 10:11:12 mail postfix/smtpd[1234]: connect from unknown[10.0.0.9]",
             "connect from unknown[10.0.0.9]", None),
            // RFC 5424 with and without structured data; RFC 3164 behind a priority
            ("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] An application event log entry",
             "An application event log entry", Some(Level::Notice)),
            ("<11>1 2024-03-05T10:11:12.123456Z web-01 app 4242 ID12 - disk full", "disk full", Some(Level::Error)),
            ("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
             "'su root' failed for lonvick on /dev/pts/8", Some(Level::Critical)),
            // journald short-iso
            ("2024-03-05T10:11:12+0000 web-01 kubelet[812]: Started pod sandbox", "Started pod sandbox", None),
            // CRI, then the container's own header
            ("2024-03-05T10:11:12.123456789Z stdout F 2024-03-05 10:11:12,001 [main] WARN  com.example.Api - slow call",
             "slow call", Some(Level::Warn)),
            ("2024-03-05T10:11:12.123456789Z stderr P partial line", "partial line", None),
            // Java logback with a thread name without digits; Python logging; Go zap
            ("2024-03-05 10:11:12,123 [main] INFO  com.example.api.OrderService - order placed", "order placed", Some(Level::Info)),
            ("2024-03-05 10:11:12,123 - root - ERROR - getTasks: caller 10113 failed", "getTasks: caller 10113 failed", Some(Level::Error)),
            ("2024-03-05T10:11:12.123Z\tinfo\tserver/handler.go:42\tgetTasks: served", "getTasks: served", Some(Level::Info)),
            // a bracketed request id after the level
            ("2024-03-05 10:11:12.123 INFO [req-7f3a9c0d12e4b567] user signed in", "user signed in", Some(Level::Info)),
            // a bracketed key: value opening a message is message, not header
            ("[instance: 96abccce-8d1f-4e07] Total memory: 64172 MB", "[instance: 96abccce-8d1f-4e07] Total memory: 64172 MB", None),
        ];
        for (line, want, level) in cases {
            assert_eq!(msg(line), (*want, *level), "line: {line}");
        }
    }

    #[test]
    fn syslog_level_is_read_but_kept_in_message() {
        assert_eq!(
            msg("Nov 24 08:35:00 web01 sshd[9300]: error: maximum authentication attempts exceeded"),
            ("error: maximum authentication attempts exceeded", Some(Level::Error))
        );
        assert_eq!(
            msg("Dec 10 09:32:20 LabSZ sshd[24680]: error: Received disconnect from 1.2.3.4: 3"),
            ("error: Received disconnect from 1.2.3.4: 3", Some(Level::Error))
        );
    }

    #[test]
    fn logfmt_takes_msg_and_level() {
        assert_eq!(
            msg("ts=2024-01-01T00:00:00Z level=warn msg=\"disk almost full\" path=/var"),
            ("disk almost full", Some(Level::Warn))
        );
        assert_eq!(msg("a=1 b=2"), ("a=1 b=2", None));
    }

    #[test]
    fn plain_messages_stay_whole() {
        assert_eq!(msg("connection reset by peer"), ("connection reset by peer", None));
        assert_eq!(msg(""), ("", None));
        assert_eq!(msg("   \r\n"), ("", None));
        assert_eq!(msg("2024-01-01 12:00:00"), ("2024-01-01 12:00:00", None));
        assert_eq!(msg("1117838570 2005.06.03 R02-M1-N0 RAS KERNEL INFO"), ("", Some(Level::Info)));
    }

    #[test]
    fn does_not_mistake_words_for_levels_at_start() {
        assert_eq!(msg("I am here"), ("I am here", None));
        assert_eq!(msg("Error opening file /tmp/x"), ("Error opening file /tmp/x", Some(Level::Error)));
        assert_eq!(msg("ERROR: disk full"), ("disk full", Some(Level::Error)));
    }
}
