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

/// `a == b`, by words for slices of 8 bytes and more (the library call cost as much as what
/// it served: an open session's id, a cached header's bytes).
#[inline]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a == b;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("eight bytes"));
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    // the last eight, overlapping the words before when the length is not a multiple of 8
    word(a, n - 8) == word(b, n - 8)
}

/// The first `per_file` lines of every loghub and realworld sample file beside the repository
/// (none when `../shared` is absent): what the fast paths are pinned against their byte loops on.
#[cfg(test)]
pub(crate) fn sample_lines(per_file: usize) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets");
    for dir in ["loghub", "realworld"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else { continue };
        for d in rd.flatten() {
            for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
                if let Ok(text) = std::fs::read(f.path()) {
                    lines.extend(text.split(|&b| b == b'\n').take(per_file).map(<[u8]>::to_vec));
                }
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_is_slice_equality() {
        let base: Vec<u8> = (0..64u8).map(|i| b'a' + i % 26).collect();
        for n in 0..=64 {
            let a = &base[..n];
            assert!(same_bytes(a, a));
            for at in 0..n {
                let mut b = a.to_vec();
                b[at] ^= 1;
                assert!(!same_bytes(a, &b), "{n} bytes, differing at {at}");
            }
            if n > 0 {
                assert!(!same_bytes(a, &base[..n - 1]));
            }
        }
    }
}
