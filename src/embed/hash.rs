//! The built-in embedder, which needs no model file: words and their character trigrams are
//! hashed into a fixed number of signed buckets (the "hashing trick"), then the vector is
//! L2-normalised. Templates that share words and word pieces end up close; it knows no synonyms.

use super::{normalise, Embedder};

/// Hashed bag of words and character trigrams. Default 256 dimensions.
#[derive(Clone, Debug)]
pub struct HashEmbedder {
    dim: usize,
}

pub const DEFAULT_DIM: usize = 256;

impl HashEmbedder {
    pub fn new(dim: usize) -> Self {
        assert!(dim >= 8, "embedding dimension must be at least 8");
        HashEmbedder { dim }
    }

    fn bump(&self, out: &mut [f32], h: u64, weight: f32) {
        let idx = (h % self.dim as u64) as usize;
        let sign = if (h >> 63) == 0 { 1.0 } else { -1.0 };
        out[idx] += sign * weight;
    }
}

impl Default for HashEmbedder {
    fn default() -> Self {
        HashEmbedder::new(DEFAULT_DIM)
    }
}

fn fnv(bytes: impl Iterator<Item = u8>, seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // mix so that the top bit (the sign) is well distributed
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

impl Embedder for HashEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }

    fn name(&self) -> &str {
        "hash-ngram-v1"
    }

    fn embed(&self, text: &str, out: &mut [f32]) {
        assert_eq!(out.len(), self.dim);
        out.iter_mut().for_each(|x| *x = 0.0);
        // Words: runs of letters, lower-cased; the `<*>` wildcard and numbers carry no meaning.
        for word in text.split(|c: char| !c.is_alphabetic()).filter(|w| w.len() >= 2) {
            let lower = word.bytes().map(|b| b.to_ascii_lowercase());
            self.bump(out, fnv(lower.clone(), 1), 1.0);
            // character trigrams of the padded word: `^ab`, `abc`, …, `yz$`
            let padded: Vec<u8> = std::iter::once(b'^').chain(lower).chain(std::iter::once(b'$')).collect();
            if padded.len() > 4 {
                let n = (padded.len() - 2) as f32;
                for tri in padded.windows(3) {
                    self.bump(out, fnv(tri.iter().copied(), 2), 0.6 / n.sqrt());
                }
            }
        }
        normalise(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::cosine;

    fn emb(text: &str) -> Vec<f32> {
        let e = HashEmbedder::default();
        let mut v = vec![0.0; e.dim()];
        e.embed(text, &mut v);
        v
    }

    #[test]
    fn unit_length_and_deterministic() {
        let v = emb("Failed password for <*> from <*> port <*>");
        let n: f32 = v.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
        assert_eq!(v, emb("Failed password for <*> from <*> port <*>"));
        assert!(emb("<*> <*> 123").iter().all(|&x| x == 0.0));
    }

    #[test]
    fn related_templates_are_closer_than_unrelated() {
        let a = emb("Failed password for <*> from <*> port <*> ssh2");
        let b = emb("Failed password for invalid user <*> from <*> port <*> ssh2");
        let c = emb("instruction cache parity error corrected");
        assert!(cosine(&a, &b) > 0.8, "{}", cosine(&a, &b));
        assert!(cosine(&a, &c) < 0.3, "{}", cosine(&a, &c));
        // shared word pieces count: "connections" ~ "connection"
        let d = emb("closing connection");
        let e = emb("closing connections");
        assert!(cosine(&d, &e) > 0.6, "{}", cosine(&d, &e));
    }
}
