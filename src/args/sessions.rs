//! The session options the commands share, and the per-run session state of `scan` and `learn`.

use std::path::Path;

use clap::Args;
use turbolog::session::{SessionConfig, SessionKey, Tracker};
use turbolog::store::sessions_file;

#[derive(Args, Clone, Debug, Default)]
pub struct SessionArgs {
    /// Records whose message matches this regular expression (first match) form a session with
    /// that id, judged when it closes: e.g. `blk_-?[0-9]+`, `req-[0-9a-f-]+`.
    #[arg(long, value_name = "REGEX", conflicts_with = "session_field")]
    pub session_key: Option<String>,
    /// JSON records: the field holding the session id (e.g. `trace_id`).
    #[arg(long, value_name = "FIELD")]
    pub session_field: Option<String>,
    /// A session quiet this long closes whatever was learned: a duration of record time (`30s`,
    /// `5m`, `2h`, `1d`) for records that carry a time (10 000 records for those that do not),
    /// or a number of records. Default: `1d` (a cap: sessions close when they are over, as
    /// learned), `30s` with `--session-close idle`.
    #[arg(long, value_name = "DURATION|RECORDS", value_parser = parse_idle)]
    pub session_idle: Option<Idle>,
    /// `learned` (the default): a session closes when it is over as learned — its ending event
    /// came, or it has been quiet longer than nearly every session was after the event it is at
    /// (`--session-idle` a cap) — an event as good as never seen is flagged when it comes, and a
    /// step missing past its learned wait while the session waits; `idle`: by `--session-idle`
    /// alone (30 s by default), judged at close.
    #[arg(long, value_name = "learned|idle", default_value = "learned", value_parser = ["learned", "idle"])]
    pub session_close: String,
    /// A session open for this many records closes whatever comes (0 = no limit).
    #[arg(long, value_name = "RECORDS", default_value_t = 0)]
    pub session_max: u64,
    /// Open sessions at most; past it the least recently seen are closed and judged.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=turbolog::session::open::MAX_OPEN as u64))]
    pub max_sessions: u64,
}

/// `--session-idle`: (seconds of record time, records).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Idle(pub Option<i64>, pub u64);

pub fn parse_idle(s: &str) -> Result<Idle, String> {
    turbolog::session::parse_idle(s).map(|(secs, records)| Idle(secs, records))
}

pub struct Sessions {
    pub key: SessionKey,
    pub tracker: Tracker,
}

impl SessionArgs {
    pub fn key(&self) -> Result<Option<SessionKey>, String> {
        match (&self.session_key, &self.session_field) {
            (Some(p), _) => SessionKey::pattern(p).map(Some),
            (None, Some(f)) => SessionKey::field(f).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The pipeline's sessions setting: the key and how sessions close, when a key is given.
    pub fn config(&self) -> Result<Option<(SessionKey, SessionConfig)>, String> {
        let Some(key) = self.key()? else { return Ok(None) };
        Ok(Some((key, self.session_config())))
    }

    fn session_config(&self) -> SessionConfig {
        let learned_close = self.session_close == "learned";
        let (idle_secs, idle_records) = match self.session_idle {
            Some(Idle(secs, records)) => (secs, records),
            None => turbolog::session::tracker::default_idle(learned_close),
        };
        SessionConfig {
            idle_secs,
            idle_records,
            learned_close,
            max_records: self.session_max,
            max_sessions: self.max_sessions as usize,
            report_normal: false,
        }
    }

    /// Session tracking when a key is given; profiles learned before come from `state`.
    pub fn start(&self, state: Option<&Path>, learning: bool) -> Result<Option<Sessions>, String> {
        let Some(key) = self.key()? else { return Ok(None) };
        let profile = super::from_state(state, sessions_file::load);
        let mut tracker = Tracker::new(self.session_config(), profile);
        tracker.set_learning(learning);
        Ok(Some(Sessions { key, tracker }))
    }
}

impl Sessions {
    /// The session id of a record: from its message, or from its JSON field.
    pub fn id_of<'a>(&self, message: &'a str, record: Option<&'a serde_json::Map<String, serde_json::Value>>) -> Option<std::borrow::Cow<'a, str>> {
        match self.key.field_name() {
            None => self.key.find(message).map(std::borrow::Cow::Borrowed),
            Some(f) => match record?.get(f)? {
                serde_json::Value::String(s) if !s.is_empty() => Some(std::borrow::Cow::Borrowed(s.as_str())),
                serde_json::Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
                _ => None,
            },
        }
    }

    pub fn save(&mut self, dir: &Path) -> Result<(), String> {
        sessions_file::save(dir, self.tracker.profile()).map_err(|e| e.to_string())
    }
}
