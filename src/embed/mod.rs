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

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
