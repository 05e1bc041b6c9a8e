//! The normal templates, and the one nearest to a new template's vector.
//!
//! A new template's semantic distance is its distance to the closest normal one. Compared with
//! every normal template, that costs O(normal templates) per new template: a baseline of 20 000
//! templates made `learn` take 38 s on 20 000 lines. Up to [`EXACT`] normal templates the search
//! is exact; past it, candidates come from random-hyperplane hashing (cosine LSH: vectors at a
//! small angle agree on most hyperplane signs), a bounded number per table, and only those are
//! compared. The answer can then miss the true nearest one, never report a closer one than
//! exists. The tables are built only once a search needs them (160 projections a template:
//! ~110 k instructions each time one became normal, paid by every set that never grows past
//! [`EXACT`]), from the vectors the templates have then.

use std::collections::HashMap;

use crate::detect::template::TemplateId;
use crate::embed::cosine;

/// Normal templates searched exhaustively; past this many, through the hash tables.
pub const EXACT: usize = 2048;
const TABLES: usize = 16;
const BITS: usize = 10;
/// Most candidates read from one bucket (the newest).
const PER_BUCKET: usize = 32;

pub struct NormalSet {
    ids: Vec<TemplateId>,
    dim: usize,
    /// TABLES × BITS hyperplanes of `dim` floats, from a fixed seed: the same on every run.
    planes: Vec<f32>,
    tables: Vec<HashMap<u16, Vec<TemplateId>>>,
    /// `ids[..hashed]` are in the tables; the rest are hashed by the next search past EXACT.
    hashed: usize,
    candidates: Vec<TemplateId>,
}

impl NormalSet {
    pub fn new(dim: usize) -> Self {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let planes = (0..TABLES * BITS * dim)
            .map(|_| ((crate::detect::xorshift(&mut seed) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32)
            .collect();
        NormalSet { ids: Vec::new(), dim, planes, tables: (0..TABLES).map(|_| HashMap::new()).collect(), hashed: 0, candidates: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds a normal template (again, after its vector changed: once the tables are in use it is
    /// hashed under the new vector; a stale bucket entry only costs a comparison).
    pub fn insert(&mut self, id: TemplateId, vector: &[f32], again: bool) {
        if !again {
            self.ids.push(id);
        } else if self.hashed > 0 {
            self.hash(id, vector);
        }
    }

    fn hash(&mut self, id: TemplateId, vector: &[f32]) {
        for t in 0..TABLES {
            let sig = self.signature(t, vector);
            self.tables[t].entry(sig).or_default().push(id);
        }
    }

    /// No longer normal (an acknowledgement withdrawn). Rare: a scan of the tables.
    pub fn remove(&mut self, id: TemplateId) {
        if let Some(at) = self.ids.iter().position(|&i| i == id) {
            if at < self.hashed {
                self.hashed -= 1;
            }
        }
        self.ids.retain(|&i| i != id);
        for t in &mut self.tables {
            for bucket in t.values_mut() {
                bucket.retain(|&i| i != id);
            }
        }
    }

    fn signature(&self, table: usize, v: &[f32]) -> u16 {
        let mut sig = 0u16;
        for b in 0..BITS {
            let at = (table * BITS + b) * self.dim;
            let plane = &self.planes[at..at + self.dim];
            if cosine(plane, v) >= 0.0 {
                sig |= 1 << b;
            }
        }
        sig
    }

    /// The highest cosine between `v` and a normal template's vector (`vector_of(id)`), or
    /// `None` when there is no normal template to compare with.
    pub fn best_cosine<'a>(&mut self, v: &[f32], vector_of: impl Fn(TemplateId) -> &'a [f32]) -> Option<f32> {
        if self.ids.is_empty() {
            return None;
        }
        if self.ids.len() <= EXACT {
            return Some(self.ids.iter().map(|&n| cosine(v, vector_of(n))).fold(-1.0f32, f32::max));
        }
        while self.hashed < self.ids.len() {
            let id = self.ids[self.hashed];
            self.hash(id, vector_of(id));
            self.hashed += 1;
        }
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        for t in 0..TABLES {
            let sig = self.signature(t, v);
            if let Some(bucket) = self.tables[t].get(&sig) {
                candidates.extend(bucket.iter().rev().take(PER_BUCKET));
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let best = candidates.iter().map(|&n| cosine(v, vector_of(n))).fold(-1.0f32, f32::max);
        self.candidates = candidates;
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::{Embedder, HashEmbedder};

    fn emb(e: &HashEmbedder, text: &str) -> Vec<f32> {
        let mut v = vec![0.0; e.dim()];
        e.embed(text, &mut v);
        v
    }

    #[test]
    fn past_the_exact_size_the_near_neighbour_is_still_found_and_work_is_bounded() {
        let e = HashEmbedder::default();
        let mut seed = 5u64;
        let mut word = || {
            (0..7)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (b'a' + ((seed >> 33) % 26) as u8) as char
                })
                .collect::<String>()
        };
        let texts: Vec<String> = (0..6000).map(|_| format!("{} {} {} {}", word(), word(), word(), word())).collect();
        let vectors: Vec<Vec<f32>> = texts.iter().map(|t| emb(&e, t)).collect();
        let mut set = NormalSet::new(e.dim());
        for (i, v) in vectors.iter().enumerate() {
            set.insert(i as TemplateId, v, false);
        }
        assert!(set.len() > EXACT);
        let mut found = 0;
        for probe in (0..6000).step_by(100) {
            // a message one word away from a normal template
            let near = format!("{} {}", texts[probe], "extra");
            let v = emb(&e, &near);
            let exact = vectors.iter().map(|w| cosine(&v, w)).fold(-1.0f32, f32::max);
            let got = set.best_cosine(&v, |id| &vectors[id as usize]).unwrap();
            assert!(got <= exact + 1e-6, "never closer than the true nearest");
            found += (got >= exact - 1e-6) as usize;
            assert!(set.candidates.len() <= TABLES * PER_BUCKET);
        }
        assert!(found >= 55, "the true nearest was found for {found} of 60 near messages");
    }

    #[test]
    fn the_tables_are_built_when_a_search_first_needs_them_from_the_vectors_then() {
        let e = HashEmbedder::default();
        let texts: Vec<String> = (0..EXACT + 300).map(|i| format!("job {i} stage {} of {}", i * 7 % 13, i % 17)).collect();
        let vectors: Vec<Vec<f32>> = texts.iter().map(|t| emb(&e, t)).collect();
        let mut set = NormalSet::new(e.dim());
        for (i, v) in vectors.iter().enumerate().take(EXACT) {
            set.insert(i as TemplateId, v, false);
        }
        set.best_cosine(&vectors[0], |id| &vectors[id as usize]).unwrap();
        assert!(set.tables.iter().all(|t| t.is_empty()), "an exact search hashes nothing");
        // made normal before its vector came (deferred embedding): hashed with the vector it
        // has when the tables are built, so the search finds it by that vector
        let zero = vec![0.0; e.dim()];
        for i in EXACT..vectors.len() {
            set.insert(i as TemplateId, &zero, false);
        }
        let last = vectors.len() - 1;
        let got = set.best_cosine(&vectors[last], |id| &vectors[id as usize]).unwrap();
        assert!(got > 0.999, "the template is found by its own vector: {got}");
        assert_eq!(set.hashed, vectors.len());
        assert_eq!(set.tables[0].values().map(Vec::len).sum::<usize>(), vectors.len());
        set.remove(3);
        assert_eq!(set.hashed, vectors.len() - 1);
    }

    #[test]
    fn small_sets_are_searched_exactly() {
        let e = HashEmbedder::default();
        let mut set = NormalSet::new(e.dim());
        assert_eq!(set.best_cosine(&emb(&e, "x y"), |_| &[]), None);
        let a = emb(&e, "disk full on device");
        let b = emb(&e, "user logged in");
        set.insert(0, &a, false);
        set.insert(1, &b, false);
        let vs = [a.clone(), b];
        let got = set.best_cosine(&emb(&e, "disk full on device sda"), |id| &vs[id as usize]).unwrap();
        assert!((got - cosine(&emb(&e, "disk full on device sda"), &a)).abs() < 1e-6);
    }
}
