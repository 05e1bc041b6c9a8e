//! The summary of what a reducing pipeline held back of one template in one window: what each
//! codec writes at the window's end, in its own format, under the message key the input used.

use crate::detect::template::TemplateId;

/// How a record's message was keyed: the index of the message key it was found under, or
/// [`TEXT`] for a plain text line. A summary goes under the same key.
pub type Shape = u8;

/// A text line, not a record with a message key (its summary goes under `message`, as a text
/// line's tagged record does).
pub const TEXT: Shape = u8::MAX;

/// The key a summary's message goes under: `keys[shape]`, `message` for a text line.
pub fn message_key<'a>(keys: &[&'a str], shape: Shape) -> &'a str {
    keys.get(shape as usize).copied().unwrap_or("message")
}

/// What a window held back of one template. `passed + suppressed = seen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub template_id: TemplateId,
    pub seen: u64,
    pub passed: u64,
    pub suppressed: u64,
    /// The message key of the template's first record in the window.
    pub shape: Shape,
}

/// The summary's readable line: `1234 more records like <template>`.
pub fn summary_message(out: &mut String, s: &Summary, template: &str) {
    use std::fmt::Write as _;
    let _ = write!(out, "{} more records like {}", s.suppressed, template);
}

/// `2026-12-02T19:40:00.123Z` for Unix seconds `t` (UTC, milliseconds).
pub fn rfc3339(out: &mut String, t: f64) {
    use std::fmt::Write as _;
    let ms = (t * 1000.0).round().max(0.0) as i64;
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil from days (H. Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    let _ = write!(out, "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem / 60 % 60, rem % 60);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        let mut s = String::new();
        rfc3339(&mut s, 1_795_515_600.123_4);
        assert_eq!(s, "2026-11-24T10:20:00.123Z");
        s.clear();
        rfc3339(&mut s, 951_782_400.0); // a leap day
        assert_eq!(s, "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn the_key_the_input_used() {
        assert_eq!(message_key(&["log", "msg"], 1), "msg");
        assert_eq!(message_key(&["log", "msg"], TEXT), "message");
    }
}
