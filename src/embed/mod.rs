//! Stage 3 of the data path: template text → unit vector.
//!
//! Depends on nothing else in the crate. The [`Embedder`] trait is what the scorer needs; the
//! built-in [`HashEmbedder`] needs no model file, and a model-based embedder plugs in behind the
//! same trait. Templates are embedded once, when they are created or generalise, never per record.

pub mod deferred;
mod hash;
pub mod model;
pub mod wordpiece;

pub use hash::{HashEmbedder, DEFAULT_DIM};
pub use model::ModelEmbedder;

/// Turns a template's text into a unit vector of `dim()` floats.
pub trait Embedder: Send {
    fn dim(&self) -> usize;
    /// A short name stored with persisted vectors, so vectors of different embedders never mix.
    fn name(&self) -> &str;
    /// Writes the embedding of `text` into `out` (`out.len() == dim()`), L2-normalised; all zeros
    /// only when the text has no words.
    fn embed(&self, text: &str, out: &mut [f32]);
    /// For an embedder that takes noticeable time: how long embedding a new template took
    /// (count, p50, p99), in words.
    fn delay_summary(&self) -> Option<String> {
        None
    }
    /// The sentence model behind this embedder, for embedding off the record path.
    fn model(&self) -> Option<std::sync::Arc<model::Model>> {
        None
    }
}

/// L2-normalises in place; leaves a zero vector alone.
pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Cosine similarity of two unit vectors. Eight partial sums, so the compiler can keep them
/// in one vector register (a single running sum of floats must be added in order: 384
/// dependent additions where this takes 48).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}
