//! Sessions: what a request or a block did as a whole, judged when it closes.
//!
//! Records that carry the same identifier (a `blk_…`, a `req-…`, a `trace_id` field) form a
//! session. Many failures leave no unusual line behind — a write that never got its
//! acknowledgement, a request that skipped a step — so a session is judged against what normal
//! sessions contain ([`profile`]): an event nearly all of them have is missing, an event they
//! (almost) never have is there, or two events that always come in equal numbers do not.
//!
//! Only counters are kept per open session, never its lines. May use `detect` (template ids).

pub mod key;
pub mod forgotten;
pub mod open;
pub mod quiet;
pub mod profile;
pub mod simple;
pub mod suggest;
pub mod template_map;
pub mod tracker;
pub mod waits;

pub use key::SessionKey;
pub use profile::{Profile, SessionVerdict};
pub use tracker::{parse_idle, ClosedSession, SessionConfig, Tracker};
