//! Where a record's session id is: the first match of a regular expression in the message, or
//! a field of a structured record.

use regex::Regex;

#[derive(Clone, Debug)]
pub enum SessionKey {
    /// First match in the message (`blk_-?[0-9]+`, `req-[0-9a-f-]+`), by the regex engine or,
    /// for the common simple shape, without it (see [`crate::session::simple`]).
    Pattern(Regex, Option<crate::session::simple::Simple>),
    /// A field of a JSON / Fluent Bit record (`trace_id`).
    Field(String),
}

impl PartialEq for SessionKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SessionKey::Pattern(a, _), SessionKey::Pattern(b, _)) => a.as_str() == b.as_str(),
            (SessionKey::Field(a), SessionKey::Field(b)) => a == b,
            _ => false,
        }
    }
}

impl SessionKey {
    /// A pattern; a bad one, or one that matches the empty string, is an error that says so.
    pub fn pattern(p: &str) -> Result<SessionKey, String> {
        let re = Regex::new(p).map_err(|e| format!("session key {p:?} is not a valid regular expression: {e}"))?;
        if re.is_match("") {
            return Err(format!("session key {p:?} matches an empty string: every record would be one session; make it match an id (e.g. blk_-?[0-9]+)"));
        }
        Ok(SessionKey::Pattern(re, crate::session::simple::Simple::compile(p)))
    }

    pub fn field(name: &str) -> Result<SessionKey, String> {
        if name.trim().is_empty() {
            return Err("session field must name a field".into());
        }
        Ok(SessionKey::Field(name.trim().to_string()))
    }

    /// The id in a message (for [`SessionKey::Pattern`]).
    pub fn find<'a>(&self, message: &'a str) -> Option<&'a str> {
        match self {
            SessionKey::Pattern(_, Some(simple)) => simple.find(message),
            SessionKey::Pattern(re, None) => re.find(message).map(|m| m.as_str()),
            SessionKey::Field(_) => None,
        }
    }

    /// The id in a host's message bytes, valid UTF-8 or not (invalid bytes read as U+FFFD,
    /// as a lossy copy would have them): the common simple pattern reads the bytes in place,
    /// the regex engine a lossy copy only when they are not valid.
    pub fn find_in_bytes<'a>(&self, message: &'a [u8]) -> Option<std::borrow::Cow<'a, str>> {
        match self {
            SessionKey::Pattern(_, Some(simple)) => simple.find_bytes(message).map(std::borrow::Cow::Borrowed),
            SessionKey::Pattern(re, None) => match std::str::from_utf8(message) {
                Ok(text) => re.find(text).map(|m| std::borrow::Cow::Borrowed(m.as_str())),
                Err(_) => re.find(&String::from_utf8_lossy(message)).map(|m| std::borrow::Cow::Owned(m.as_str().to_string())),
            },
            SessionKey::Field(_) => None,
        }
    }

    pub fn field_name(&self) -> Option<&str> {
        match self {
            SessionKey::Field(f) => Some(f),
            SessionKey::Pattern(..) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_find_the_first_id_and_bad_ones_are_refused() {
        let k = SessionKey::pattern(r"blk_-?[0-9]+").unwrap();
        assert_eq!(k.find("Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106"), Some("blk_-1608999687919862906"));
        assert_eq!(k.find("no id here"), None);
        assert!(SessionKey::pattern("(").unwrap_err().contains("not a valid regular expression"));
        assert!(SessionKey::pattern("x*").unwrap_err().contains("empty string"));
        assert!(SessionKey::field(" ").is_err());
    }

    #[test]
    fn ids_in_bytes_are_the_ids_of_the_lossy_text() {
        let lines: [&[u8]; 5] = [b"Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106", b"\xff\xfe blk_42\xff tail of a line past sixteen bytes", b"blk_\xff blk_7", b"req-00ff\xc3\xa9 and more bytes here", b"short blk_1"];
        for p in [r"blk_-?[0-9]+", r"req-[0-9a-f]+", r"(blk|req)[_-][0-9a-f-]+"] {
            let k = SessionKey::pattern(p).unwrap();
            for l in lines {
                let lossy = String::from_utf8_lossy(l);
                assert_eq!(k.find_in_bytes(l).as_deref(), k.find(&lossy), "{p} on {lossy:?}");
            }
        }
    }
}
