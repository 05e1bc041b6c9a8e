//! When a record happened, read from its header: seconds since 1970 (UTC when the header says
//! nothing of its zone). Used where record time matters more than arrival order: session
//! idleness. Only the common forms, found by shape at the start of the line:
//! ISO 8601 (`2024-03-05T10:11:12.123Z`, `2024-03-05 10:11:12,123`), BGL
//! (`2005-06-03-15.42.50.675872`), epoch seconds or milliseconds, HDFS (`081109 203615`), Spark
//! (`17/06/09 20:10:40`), syslog (`Mar  5 10:11:12`, no year: the latest not in the future), Apache
//! (`[Sun Dec 04 04:47:44 2005]`). A record without one gives `None`.

/// The time of a raw line, looked for in its first four tokens (after a `<PRI>`).
pub fn of_line(line: &str) -> Option<i64> {
    let line = line.strip_prefix('<').and_then(|r| r.split_once('>').map(|(_, rest)| rest)).unwrap_or(line);
    // this runs for every record with sessions on: lines of one second share their header
    if let Some(secs) = LAST.with_borrow_mut(|last| last.answer(line)) {
        return Some(secs);
    }
    // tokens are cut only as far as they are looked at: most headers give their time in the
    // first one or two
    let mut toks = Tokens { rest: line, got: [""; 6], n: 0 };
    let mut i = 0;
    while i < 4 {
        let Some(tok) = toks.get(i) else { break };
        let t = tok.trim_start_matches('[');
        if let Some(s) = iso(t, toks.get(i + 1)).or_else(|| clf(t)) {
            if i == 0 {
                LAST.with_borrow_mut(|last| last.keep(line, &mut toks, s));
            }
            return Some(s);
        }
        if i == 0 {
            if let Some(s) = epoch(t).or_else(|| compact(t, toks.get(1))) {
                LAST.with_borrow_mut(|last| last.keep(line, &mut toks, s));
                return Some(s);
            }
            let first = toks.first(5);
            if let Some(s) = month_first(first).or_else(|| apache(first)) {
                return Some(s);
            }
        }
        i += 1;
    }
    None
}

thread_local! {
    static LAST: std::cell::RefCell<LastHeader> = const { std::cell::RefCell::new(LastHeader { len: 0, bytes: [0; 64], secs: 0, day_len: 0, day: Day::Unknown, midnight: 0 }) };
}

/// The last header whose time came from its first two tokens alone (ISO 8601, access log,
/// epoch, HDFS, Spark: functions of those two tokens and nothing else), and that time. Lines
/// of one second share it; a line that begins with the same bytes up to the end of its second
/// token, then whitespace or nothing, has the same two tokens and so the same time.
///
/// When its first token is a date alone and the second the time of day (HDFS `081109 203615`,
/// `2024-03-05 10:11:12,123`, Spark `17/06/09 20:10:40`), a line with the same first token but
/// another second is read from the date's midnight and its second token alone: the full reading
/// would take the same first branch, with the same date (see `day_is_kept_like_the_full_reading`).
struct LastHeader {
    len: usize,
    bytes: [u8; 64],
    secs: i64,
    /// Length of the date token at the start of `bytes` (0: none kept), how its time of day
    /// reads, and the date's midnight.
    day_len: usize,
    day: Day,
    midnight: i64,
}

/// How the token after a date reads as a time of day.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Day {
    Unknown,
    /// HDFS: six digits `HHMMSS` after six digits `YYMMDD` ([`compact`]).
    Digits,
    /// `HH:MM:SS…` after `YYYY-MM-DD` ([`iso`]) or `yy/mm/dd` ([`compact`]).
    Clock,
}

impl Day {
    /// The kind of a first token (after `[`) that is a date alone.
    fn of(first: &str) -> Day {
        let b = first.trim_start_matches('[').as_bytes();
        match b.len() {
            6 if b.iter().all(u8::is_ascii_digit) => Day::Digits,
            10 if b[4] == b'-' && b[7] == b'-' => Day::Clock,
            8 if b[2] == b'/' && b[5] == b'/' => Day::Clock,
            _ => Day::Unknown,
        }
    }

    /// Seconds since midnight in `t`, as the full reading takes them (`valid`'s bounds).
    fn seconds(self, t: &str) -> Option<i64> {
        let (h, mi, s) = match self {
            Day::Digits => {
                let b = t.as_bytes();
                if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                (num(&b[0..2])?, num(&b[2..4])?, num(&b[4..6])?)
            }
            Day::Clock => clock(t)?,
            Day::Unknown => return None,
        };
        (h < 24 && mi < 60 && s < 61).then_some(h * 3600 + mi * 60 + s)
    }
}

impl LastHeader {
    fn answer(&mut self, line: &str) -> Option<i64> {
        let b = line.as_bytes();
        let same = self.len > 0 && b.len() >= self.len && super::same_bytes(&b[..self.len], &self.bytes[..self.len]);
        if same && b.get(self.len).is_none_or(u8::is_ascii_whitespace) {
            return Some(self.secs);
        }
        // the same date, another second
        let d = self.day_len;
        if d == 0 || b.len() <= d || !super::same_bytes(&b[..d], &self.bytes[..d]) || !b[d].is_ascii_whitespace() {
            return None;
        }
        let rest = &line[d..];
        let start = rest.bytes().position(|c| !c.is_ascii_whitespace())?;
        let len = rest[start..].bytes().position(|c| c.is_ascii_whitespace()).unwrap_or(rest.len() - start);
        let secs = self.midnight + self.day.seconds(&rest[start..start + len])?;
        let end = d + start + len;
        if end <= self.bytes.len() {
            self.bytes[d..end].copy_from_slice(&b[d..end]);
            self.len = end;
            self.secs = secs;
        }
        Some(secs)
    }

    /// Keeps `line`'s first two tokens (when both exist and fit) and their time.
    fn keep(&mut self, line: &str, toks: &mut Tokens<'_>, secs: i64) {
        let Some(second) = toks.get(1) else { return };
        let end = second.as_ptr() as usize + second.len() - line.as_ptr() as usize;
        if end <= self.bytes.len() {
            self.bytes[..end].copy_from_slice(&line.as_bytes()[..end]);
            self.len = end;
            self.secs = secs;
            // a date alone, then its time of day: kept for the next seconds of that date
            let first = toks.get(0).unwrap_or("");
            let day = Day::of(first);
            self.day_len = 0;
            if let Some(midnight) = day.seconds(second).map(|s| secs - s) {
                (self.day_len, self.day, self.midnight) = (first.as_ptr() as usize + first.len() - line.as_ptr() as usize, day, midnight);
            }
        } else {
            self.len = 0;
            self.day_len = 0;
        }
    }
}

/// The first six whitespace-separated tokens of a line, cut on demand.
struct Tokens<'a> {
    rest: &'a str,
    got: [&'a str; 6],
    n: usize,
}

impl<'a> Tokens<'a> {
    fn get(&mut self, i: usize) -> Option<&'a str> {
        while self.n <= i && self.n < self.got.len() {
            let b = self.rest.as_bytes();
            let start = b.iter().position(|c| !c.is_ascii_whitespace())?;
            let end = b[start..].iter().position(u8::is_ascii_whitespace).map_or(b.len(), |e| start + e);
            // ASCII whitespace bounds: both are character boundaries
            self.got[self.n] = &self.rest[start..end];
            self.rest = &self.rest[end..];
            self.n += 1;
        }
        (i < self.n).then(|| self.got[i])
    }

    /// The first `k` tokens (fewer when the line has fewer).
    fn first(&mut self, k: usize) -> &[&'a str] {
        let _ = self.get(k - 1);
        &self.got[..self.n.min(k)]
    }
}

/// A timestamp field's value: ISO 8601 text or epoch seconds / milliseconds.
pub fn of_value(v: &str) -> Option<i64> {
    let v = v.trim();
    epoch(v).or_else(|| {
        let (date, rest) = v.split_once(['T', ' ']).unwrap_or((v, ""));
        iso(date, Some(rest)).or_else(|| iso(v, None))
    })
}

/// `2005-06-03 15:42:50` from seconds since 1970.
pub fn format(secs: i64) -> String {
    Clock(secs).to_string()
}

/// [`format`] without allocating, for writers.
pub struct Clock(pub i64);

impl std::fmt::Display for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0;
        let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(mo <= 2);
        if !(0..=9999).contains(&y) {
            return write!(f, "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
        }
        // written by hand: reasons carry this on every recurring record, and `write!` with six
        // padded numbers costs more than the rest of the reason
        let mut b = *b"0000-00-00 00:00:00";
        let mut put = |at: usize, n: i64, width: usize| {
            let mut n = n as u32;
            for i in (at..at + width).rev() {
                b[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, y, 4);
        put(5, mo, 2);
        put(8, d, 2);
        put(11, rem / 3600, 2);
        put(14, rem % 3600 / 60, 2);
        put(17, rem % 60, 2);
        f.write_str(std::str::from_utf8(&b).unwrap_or(""))
    }
}

/// Days from 1970-01-01 to y-m-d (proleptic Gregorian).
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A number of at most 4 digits. Bytes, not `str`: headers hold any UTF-8, and a byte range of
/// a `str` need not fall on character boundaries.
fn num(s: &[u8]) -> Option<i64> {
    (!s.is_empty() && s.len() <= 4 && s.iter().all(u8::is_ascii_digit)).then(|| s.iter().fold(0i64, |n, &b| n * 10 + (b - b'0') as i64))
}

fn valid(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> bool {
    (1970..=2200).contains(&y) && (1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && s < 61
}

fn at(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    valid(y, mo, d, h, mi, s).then(|| days(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// `HH:MM:SS` (fractions and zones after it ignored).
fn clock(t: &str) -> Option<(i64, i64, i64)> {
    let b = t.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    Some((num(&t.as_bytes()[0..2])?, num(&t.as_bytes()[3..5])?, num(&t.as_bytes()[6..8])?))
}

/// `2024-03-05T10:11:12…`, `2024-03-05 10:11:12…` (time in `next`), `2005-06-03-15.42.50…`.
fn iso(t: &str, next: Option<&str>) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(&t.as_bytes()[0..4])?, num(&t.as_bytes()[5..7])?, num(&t.as_bytes()[8..10])?);
    let rest = t.get(10..)?;
    if let Some(time) = rest.strip_prefix('T').or_else(|| rest.strip_prefix('_')) {
        let (h, mi, s) = clock(time)?;
        return at(y, mo, d, h, mi, s);
    }
    if let Some(time) = rest.strip_prefix('-') {
        // BGL: 15.42.50.675872
        let tb = time.as_bytes();
        if tb.len() >= 8 && tb[2] == b'.' && tb[5] == b'.' {
            return at(y, mo, d, num(&time.as_bytes()[0..2])?, num(&time.as_bytes()[3..5])?, num(&time.as_bytes()[6..8])?);
        }
        return None;
    }
    if rest.is_empty() {
        let (h, mi, s) = clock(next?)?;
        return at(y, mo, d, h, mi, s);
    }
    None
}

/// Access logs (NCSA common/combined): `24/Nov/2026:10:00:00` (zone after it ignored).
fn clf(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let mo = month(t.get(3..6)?)?;
    let (h, mi, s) = clock(t.get(12..)?)?;
    at(num(&b[7..11])?, mo, num(&b[0..2])?, h, mi, s)
}

/// Epoch seconds (10 digits) or milliseconds (13).
fn epoch(t: &str) -> Option<i64> {
    let digits = t.split('.').next()?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match digits.len() {
        10 => digits.parse().ok(),
        13 => digits.parse::<i64>().ok().map(|ms| ms / 1000),
        _ => None,
    }
}

/// HDFS `081109 203615`, Spark `17/06/09 20:10:40`.
fn compact(t: &str, next: Option<&str>) -> Option<i64> {
    let next = next?;
    let b = t.as_bytes();
    if b.len() == 6 && b.iter().all(u8::is_ascii_digit) && next.len() == 6 && next.bytes().all(|c| c.is_ascii_digit()) {
        return at(2000 + num(&t.as_bytes()[0..2])?, num(&t.as_bytes()[2..4])?, num(&t.as_bytes()[4..6])?, num(&next.as_bytes()[0..2])?, num(&next.as_bytes()[2..4])?, num(&next.as_bytes()[4..6])?);
    }
    if b.len() == 8 && b[2] == b'/' && b[5] == b'/' {
        let (h, mi, s) = clock(next)?;
        return at(2000 + num(&t.as_bytes()[0..2])?, num(&t.as_bytes()[3..5])?, num(&t.as_bytes()[6..8])?, h, mi, s);
    }
    None
}

fn month(t: &str) -> Option<i64> {
    const M: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let t = t.get(..3)?;
    M.iter().position(|m| m.eq_ignore_ascii_case(t)).map(|i| i as i64 + 1)
}

/// syslog `Mar  5 10:11:12`: the header has no year, so this year, or last year when that
/// would put it more than a day in the future (what syslog readers do).
fn month_first(toks: &[&str]) -> Option<i64> {
    let mo = month(toks.first()?)?;
    let d = num(toks.get(1)?.as_bytes())?;
    let (h, mi, s) = clock(toks.get(2)?)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let year = 1970 + now / 31_556_952; // good to a day or so; corrected below
    let mut y = year + 1;
    loop {
        let t = at(y, mo, d, h, mi, s)?;
        if t <= now + 86_400 || y < 1971 {
            return Some(t);
        }
        y -= 1;
    }
}

/// Apache `[Sun Dec 04 04:47:44 2005]`.
fn apache(toks: &[&str]) -> Option<i64> {
    let first = toks.first()?;
    if !first.starts_with('[') {
        return None;
    }
    let mo = month(toks.get(1)?)?;
    let d = num(toks.get(2)?.as_bytes())?;
    let (h, mi, s) = clock(toks.get(3)?)?;
    let y = num(toks.get(4)?.trim_end_matches(']').as_bytes())?;
    at(y, mo, d, h, mi, s)
}

#[cfg(test)]
mod tests {
    use super::*;

/// The former whole-header implementation: the lazy one must agree with it on every line.
    fn of_line_reference(line: &str) -> Option<i64> {
        let line = line.strip_prefix('<').and_then(|r| r.split_once('>').map(|(_, rest)| rest)).unwrap_or(line);
        // the first six tokens, without allocating (this runs for every record with sessions on)
        let mut buf = [""; 6];
        let mut n = 0;
        for t in line.split_ascii_whitespace().take(6) {
            buf[n] = t;
            n += 1;
        }
        let toks = &buf[..n];
        for i in 0..toks.len().min(4) {
            let t = toks[i].trim_start_matches('[');
            if let Some(s) = iso(t, toks.get(i + 1).copied()).or_else(|| clf(t)) {
                return Some(s);
            }
            if i == 0 {
                if let Some(s) = epoch(t).or_else(|| compact(t, toks.get(1).copied())).or_else(|| month_first(&toks)).or_else(|| apache(&toks)) {
                    return Some(s);
                }
            }
        }
        None
    }

    #[test]
    fn lazy_tokens_agree_with_the_whole_header_on_real_and_cut_lines() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/loghub");
        let mut lines: Vec<String> = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("../shared/datasets/loghub beside the repository").flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Ok(text) = std::fs::read_to_string(entry.path().join(format!("{name}_2k.log"))) {
                lines.extend(text.lines().map(str::to_string));
            }
        }
        assert!(lines.len() > 20_000, "the loghub samples");
        let mut timed = 0;
        for l in &lines {
            // the line, every prefix of its header, and its header with runs of spaces
            let cut: Vec<usize> = (0..l.len().min(48)).filter(|&i| l.is_char_boundary(i)).collect();
            for c in cut {
                assert_eq!(of_line(&l[..c]), of_line_reference(&l[..c]), "{:?}", &l[..c]);
            }
            let spaced = l.replacen(' ', "  \t", 3);
            assert_eq!(of_line(&spaced), of_line_reference(&spaced), "{spaced:?}");
            let t = of_line(l);
            assert_eq!(t, of_line_reference(l), "{l:?}");
            timed += t.is_some() as usize;
        }
        assert!(timed > lines.len() / 2, "most loghub lines carry a time ({timed} of {})", lines.len());
        // the last header kept, then lines that begin like it but differ after its second token
        for l in ["081109 203615 148 INFO x", "2024-03-05 10:11:12,123 INFO x", "2024-03-05T10:11:12Z x y"] {
            let kept = of_line(l);
            assert!(kept.is_some());
            let cut = l.split(' ').take(2).collect::<Vec<_>>().join(" ");
            for other in [cut.clone(), format!("{cut}9 INFO x"), format!("{cut}:99 x"), format!("{cut}\tx"), format!("[{cut} x"), cut[..cut.len() - 1].to_string()] {
                assert_eq!(of_line(&other), of_line_reference(&other), "{other:?} after {l:?}");
            }
        }
    }

    #[test]
    fn day_is_kept_like_the_full_reading() {
        // a header kept, then lines of the same date: other seconds, bad ones, other shapes
        let kept = ["081109 203615 148 INFO x", "2024-03-05 10:11:12,123 INFO x", "[2024-03-05 10:11:12] x", "17/06/09 20:10:40 INFO x", "081109  203615\tx"];
        for l in kept {
            let first = l.split_ascii_whitespace().next().unwrap();
            for second in ["203616", "235959", "000000", "240000", "206000", "203660", "20361", "2036155", "10:11:13", "10:11:13.5Z", "23:59:60", "24:00:00", "10:61:00", "1:11:13", "", "x", "ü:11:13"] {
                for rest in ["", " INFO x", "\tx", "] x"] {
                    assert_eq!(of_line(l), of_line_reference(l));
                    let other = format!("{first} {second}{rest}");
                    assert_eq!(of_line(&other), of_line_reference(&other), "{other:?} after {l:?}");
                    let other = format!("{first}{second}{rest}"); // no separator: another first token
                    assert_eq!(of_line(&other), of_line_reference(&other), "{other:?} after {l:?}");
                }
            }
        }
        // through the hour, out of order too: each line its own time
        let midnight = of_line("081109 000000 x").unwrap();
        for m in 0..60 {
            for s in [0, 59, 30, 1] {
                let l = format!("081109 20{m:02}{s:02} 148 INFO x");
                assert_eq!(of_line(&l), Some(midnight + 20 * 3600 + m * 60 + s), "{l}");
            }
        }
    }

    #[test]
    fn any_utf8_is_safe() {
        // found by the C API's mutated buffers: a slice inside a character
        for l in ["1.2.3.4 - - [05/M\u{fffd}r/2024:10:11:12 +0000]", "[05/Mar/2024:10:1\u{fffd}:12", "2024-03-05T06:46:\u{fffd}0 x", "06:46:\u{fffd}0", "Jun 14 06:46:\u{fffd}0 x", "081109 20\u{fffd}615 x", "2024-03-05\u{fffd} 1", "[Sun Dec 04 04:47:\u{fffd} 2005]"] {
            let _ = of_line(l);
            let _ = of_value(l);
        }
    }

    #[test]
    fn real_headers_give_their_time() {
        let t = |l: &str| of_line(l);
        let base = days(2024, 3, 5) * 86_400 + 10 * 3600 + 11 * 60 + 12;
        assert_eq!(t("2024-03-05T10:11:12.123Z INFO x"), Some(base));
        assert_eq!(t("2024-03-05 10:11:12,123 - app - INFO - x"), Some(base));
        assert_eq!(t("<34>1 2024-03-05T10:11:12Z host app - - - x"), Some(base));
        assert_eq!(t("081109 203615 148 INFO dfs.DataNode$PacketResponder: x"), Some(days(2008, 11, 9) * 86_400 + 20 * 3600 + 36 * 60 + 15));
        assert_eq!(t("1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 x"), Some(1_117_838_570));
        assert_eq!(t("17/06/09 20:10:40 INFO executor.X: y"), Some(days(2017, 6, 9) * 86_400 + 20 * 3600 + 10 * 60 + 40));
        let syslog = t("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: x").unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        assert!(syslog <= now + 86_400 && syslog > now - 367 * 86_400, "the latest June 14 not in the future");
        assert_eq!(syslog.rem_euclid(86_400), 15 * 3600 + 16 * 60 + 1);
        assert_eq!(t("[Sun Dec 04 04:47:44 2005] [error] x"), Some(days(2005, 12, 4) * 86_400 + 4 * 3600 + 47 * 60 + 44));
        assert_eq!(t("nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO x"), Some(days(2017, 5, 16) * 86_400));
        assert_eq!(t("10.0.0.1 - - [05/Mar/2024:10:11:12 +0000] \"GET / HTTP/1.1\" 200 1"), Some(base));
        assert_eq!(t("no time at all"), None);
        assert_eq!(t("2024-13-45 99:99:99 nonsense"), None);
        assert_eq!(of_value("2024-03-05T10:11:12Z"), Some(base));
        assert_eq!(of_value("1709633472123"), Some(1_709_633_472));
        assert_eq!(days(1970, 1, 1), 0);
    }
}

#[cfg(test)]
mod clock_tests {
    use super::Clock;

    #[test]
    fn the_clock_is_written_as_a_utc_date_and_time() {
        assert_eq!(Clock(0).to_string(), "1970-01-01 00:00:00");
        assert_eq!(Clock(1_764_000_000).to_string(), "2025-11-24 16:00:00");
        assert_eq!(Clock(951_782_400 + 86_399).to_string(), "2000-02-29 23:59:59");
        assert_eq!(Clock(-1).to_string(), "1969-12-31 23:59:59");
        assert_eq!(Clock(253_402_300_800).to_string(), "10000-01-01 00:00:00");
    }
}
