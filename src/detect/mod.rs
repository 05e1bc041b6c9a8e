//! The data path: message → template → vector → score, run by [`engine::Engine`].
//!
//! Pure computation on lines: no files, no threads, no hosts. It may depend on `embed` only;
//! `session`, `store`, `codec` and `pipeline` call into it, never the reverse.

pub mod engine;
pub mod level;
pub mod line_key;
pub mod logfmt;
pub mod message;
pub mod nearest;
pub mod score;
pub mod snapshot;
pub mod template;
pub mod time;
pub mod token;
pub mod values;
pub mod word_key;

pub use engine::{Engine, EngineConfig, Verdict};

/// The next value of a xorshift64 generator (Marsaglia): the fixed pseudo-random planes of the
/// normal set, and tests' reproducible inputs. `seed` must not be 0.
pub(crate) fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}
