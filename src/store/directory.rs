//! The state directory's vector store: one WAL shard per writer thread, sealed chunks, recovery.
//!
//! Each thread appends to its own shard: no file and no lock is shared between writers (appends
//! only happen when a template is created or generalises, never for a known one). Sealing
//! renames every active WAL aside (metadata only, safe under writers, who reopen a fresh file),
//! lets the caller save `templates.tls`, writes one chunk from the sealed files, and deletes
//! them only after the chunk is durable. A chunk lists the sealed files it was made from, so a
//! crash between the two steps never replays a record twice.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::chunk::{self, Chunk, ChunkError};
use super::wal::{self, FsyncPolicy, WalError, Writer};

/// Writers beyond this many threads share shards (each shard still has its own lock).
pub const MAX_SHARDS: usize = 64;

#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub fsync: FsyncPolicy,
    /// Cap on chunk bytes; past it compaction keeps the newest templates' vectors. 0 = no cap.
    pub max_store_mb: u64,
    /// Compact when this many chunks exist.
    pub compact_at_chunks: usize,
    /// Check every chunk's CRC when opening (the engine does; a bulk benchmark may not).
    pub verify: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { fsync: FsyncPolicy::Never, max_store_mb: 256, compact_at_chunks: 8, verify: true }
    }
}

#[derive(Debug)]
pub enum StoreError {
    Io(PathBuf, std::io::Error),
    Wal(WalError),
    Chunk(ChunkError),
    Meta(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io(p, e) => {
                write!(f, "{}: {e}", p.display())?;
                match e.raw_os_error() {
                    Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => {
                        write!(f, " (disk full: free space; scoring goes on from memory and nothing learned is lost while the process runs)")
                    }
                    Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM) => write!(f, " (make the state directory writable)"),
                    _ => Ok(()),
                }
            }
            StoreError::Wal(e) => e.fmt(f),
            StoreError::Chunk(e) => e.fmt(f),
            StoreError::Meta(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<WalError> for StoreError {
    fn from(e: WalError) -> Self {
        match e {
            WalError::Io(p, e) => StoreError::Io(p, e),
            other => StoreError::Wal(other),
        }
    }
}

impl From<ChunkError> for StoreError {
    fn from(e: ChunkError) -> Self {
        match e {
            ChunkError::Io(p, e) => StoreError::Io(p, e),
            other => StoreError::Chunk(other),
        }
    }
}

/// Where the latest vector of an id lives.
#[derive(Clone, Copy, Debug)]
enum Loc {
    Chunk(u32, u32),
    Wal(u32),
}

/// What opening a store recovered: the latest vector (and text, when a WAL carried it) per id.
pub struct Recovery {
    wal_records: Vec<wal::Record>,
    dense: Vec<Option<Loc>>,
    sparse: HashMap<u64, Loc>,
    /// Human-readable notes: torn tails, corrupt files moved aside, leftovers replayed.
    pub warnings: Vec<String>,
}

impl Recovery {
    fn insert(&mut self, id: u64, loc: Loc) {
        if id < (1 << 24) {
            let i = id as usize;
            if self.dense.len() <= i {
                self.dense.resize(i + 1, None);
            }
            self.dense[i] = Some(loc);
        } else {
            self.sparse.insert(id, loc);
        }
    }

    fn loc(&self, id: u64) -> Option<Loc> {
        if id < (1 << 24) {
            self.dense.get(id as usize).copied().flatten()
        } else {
            self.sparse.get(&id).copied()
        }
    }

    pub fn len(&self) -> usize {
        self.dense.iter().filter(|l| l.is_some()).count() + self.sparse.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids with a vector, ascending.
    pub fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> =
            self.dense.iter().enumerate().filter(|(_, l)| l.is_some()).map(|(i, _)| i as u64).chain(self.sparse.keys().copied()).collect();
        ids.sort_unstable();
        ids
    }

    /// Template texts carried by WAL records (newer than the last `templates.tls`), by id.
    pub fn wal_texts(&self) -> impl Iterator<Item = (u64, &str)> {
        self.wal_records.iter().filter(|r| !r.text.is_empty()).map(|r| (r.id, r.text.as_str()))
    }
}

pub struct Store {
    dir: PathBuf,
    dim: u32,
    opts: StoreOptions,
    shards: Vec<Mutex<Option<Writer>>>,
    chunks: Mutex<Vec<Chunk>>,
    /// Sealed files found at open, to be chunked at the next seal (oldest first).
    leftovers: Mutex<Vec<PathBuf>>,
    next_seq: AtomicU64,
    last_nanos: AtomicU64,
    failing: AtomicBool,
    /// Appends that failed (disk full, read-only): retried at the next seal.
    pending: Mutex<Vec<(u64, String, Vec<f32>)>>,
}

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static THREAD_SHARD: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

/// This thread's shard number: stable for the thread's life, distinct per thread.
pub fn thread_shard() -> usize {
    THREAD_SHARD.with(|s| *s) % MAX_SHARDS
}

fn parse_shard(name: &str) -> Option<usize> {
    name.strip_prefix("wal-")?.strip_suffix(".bin")?.parse().ok()
}

/// `wal-3-sealed-1732400000000000000.bin` → (3, nanos).
fn parse_sealed(name: &str) -> Option<(usize, u64)> {
    let rest = name.strip_prefix("wal-")?.strip_suffix(".bin")?;
    let (shard, nanos) = rest.split_once("-sealed-")?;
    Some((shard.parse().ok()?, nanos.parse().ok()?))
}

fn parse_chunk(name: &str) -> Option<u64> {
    name.strip_prefix("chunk-")?.strip_suffix(".tvim")?.parse().ok()
}

impl Store {
    /// Opens (creating if needed) the store in `dir` for `dim`-dimensional vectors and recovers
    /// everything in it. Corrupt chunks are moved aside with a warning; a dimension mismatch or
    /// a file that is not ours is an error.
    pub fn open(dir: &Path, dim: u32, opts: StoreOptions) -> Result<(Store, Recovery), StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::Io(dir.to_path_buf(), e))?;
        let mut names: Vec<String> = fs::read_dir(dir)
            .map_err(|e| StoreError::Io(dir.to_path_buf(), e))?
            .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
            .collect();
        names.sort();
        // temporary files of a write a crash interrupted: never renamed into place, so garbage
        for n in names.iter().filter(|n| n.ends_with(".tvim.tmp") || n.contains(".tmp-")) {
            let _ = fs::remove_file(dir.join(n));
        }
        let mut rec = Recovery { wal_records: Vec::new(), dense: Vec::new(), sparse: HashMap::new(), warnings: Vec::new() };

        // 1. chunks, in sequence order
        let mut chunk_names: Vec<(u64, &String)> = names.iter().filter_map(|n| parse_chunk(n).map(|s| (s, n))).collect();
        chunk_names.sort();
        let mut chunks = Vec::new();
        let mut next_seq = 1;
        for (seq, name) in chunk_names {
            next_seq = next_seq.max(seq + 1);
            let path = dir.join(name);
            let opened = Chunk::open(&path, dim).and_then(|c| if opts.verify { c.verify().map(|_| c) } else { Ok(c) });
            match opened {
                Ok(c) => chunks.push(c),
                Err(ChunkError::Corrupt(p, what)) => {
                    let aside = p.with_extension("tvim.corrupt");
                    let _ = fs::rename(&p, &aside);
                    rec.warnings.push(format!(
                        "chunk {} is corrupt ({what}); moved aside to {}, carrying on with the rest (its templates will be re-embedded)",
                        p.display(),
                        aside.display()
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        for (ci, c) in chunks.iter().enumerate() {
            for i in 0..c.len() {
                rec.insert(c.id(i), Loc::Chunk(ci as u32, i as u32));
            }
        }
        let in_chunks: HashSet<&str> = chunks.iter().flat_map(|c| c.sources().iter().map(String::as_str)).collect();

        // 2. sealed leftovers, oldest first; those already in a chunk are just deleted
        let mut sealed: Vec<(u64, usize, PathBuf)> = Vec::new();
        for n in &names {
            if let Some((shard, nanos)) = parse_sealed(n) {
                if in_chunks.contains(n.as_str()) {
                    let _ = fs::remove_file(dir.join(n));
                } else {
                    sealed.push((nanos, shard, dir.join(n)));
                }
            }
        }
        sealed.sort();
        let mut last_nanos = 0;
        for (nanos, _, path) in &sealed {
            last_nanos = last_nanos.max(*nanos);
            Self::replay_into(&mut rec, path, dim)?;
        }
        // 3. active WALs (newest)
        for n in &names {
            if parse_shard(n).is_some() {
                Self::replay_into(&mut rec, &dir.join(n), dim)?;
            }
        }
        if !sealed.is_empty() {
            rec.warnings.push(format!("{} sealed WAL files left by an interrupted seal were replayed", sealed.len()));
        }
        let store = Store {
            dir: dir.to_path_buf(),
            dim,
            shards: (0..MAX_SHARDS).map(|_| Mutex::new(None)).collect(),
            chunks: Mutex::new(chunks),
            leftovers: Mutex::new(sealed.into_iter().map(|(_, _, p)| p).collect()),
            next_seq: AtomicU64::new(next_seq),
            last_nanos: AtomicU64::new(last_nanos),
            failing: AtomicBool::new(false),
            pending: Mutex::new(Vec::new()),
            opts,
        };
        Ok((store, rec))
    }

    fn replay_into(rec: &mut Recovery, path: &Path, dim: u32) -> Result<(), StoreError> {
        let r = match wal::replay(path, dim) {
            Ok(r) => r,
            Err(WalError::NotAWal(p)) => {
                let aside = p.with_extension("bin.corrupt");
                let moved = match fs::rename(&p, &aside) {
                    Ok(()) => format!("moved aside to {}", aside.display()),
                    Err(e) => return Err(StoreError::Io(p, e)),
                };
                rec.warnings.push(format!(
                    "{} is not a turbolog WAL or its header is damaged; {moved}, carrying on with the rest",
                    p.display()
                ));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(why) = &r.stopped {
            // A torn tail is what a crash leaves; a damaged record is kept for a post-mortem.
            let kept = if why.starts_with("corrupt") {
                let copy = path.with_extension("bin.corrupt");
                match fs::copy(path, &copy) {
                    Ok(_) => format!(" (a copy of the damaged file was kept at {})", copy.display()),
                    Err(_) => String::new(),
                }
            } else {
                String::new()
            };
            rec.warnings.push(format!(
                "{}: {why}; the {} records before it are used, the {} bytes after it were skipped{kept}",
                path.display(),
                r.records.len(),
                r.skipped_bytes
            ));
        }
        for record in r.records {
            let idx = rec.wal_records.len() as u32;
            rec.insert(record.id, Loc::Wal(idx));
            rec.wal_records.push(record);
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn dim(&self) -> u32 {
        self.dim
    }

    /// The recovered vector of `id`, borrowed from a chunk mapping or a replayed WAL record.
    pub fn with_vector<R>(&self, rec: &Recovery, id: u64, f: impl FnOnce(Option<&[f32]>) -> R) -> R {
        match rec.loc(id) {
            Some(Loc::Wal(i)) => f(Some(&rec.wal_records[i as usize].vector)),
            Some(Loc::Chunk(c, i)) => {
                let chunks = self.chunks.lock().unwrap_or_else(|p| p.into_inner());
                match chunks.get(c as usize) {
                    Some(chunk) => f(Some(chunk.vector(i as usize))),
                    None => f(None),
                }
            }
            None => f(None),
        }
    }

    /// Appends a template's vector to this thread's WAL shard. A failure is returned once per
    /// failing period (the caller logs it); the record is kept in memory and retried at the next
    /// seal, so nothing learned is lost while the process runs.
    pub fn append(&self, id: u64, text: &str, vector: &[f32]) -> Result<(), StoreError> {
        let shard = thread_shard();
        let mut slot = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        let result = (|| {
            if slot.is_none() {
                *slot = Some(Writer::open(&self.dir.join(format!("wal-{shard}.bin")), self.dim, self.opts.fsync)?);
            }
            let w = slot.as_mut().expect("just opened");
            w.append(id, text, vector).map_err(|e| StoreError::Io(w.path().to_path_buf(), e))
        })();
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                *slot = None; // reopen (and cut any partial record) next time
                self.pending.lock().unwrap_or_else(|p| p.into_inner()).push((id, text.to_string(), vector.to_vec()));
                if self.failing.swap(true, Ordering::AcqRel) {
                    Ok(()) // already reported
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Whether appends are currently failing (they are retried at each seal).
    pub fn degraded(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    fn sealed_name(&self, shard: usize) -> PathBuf {
        // nanoseconds since the epoch, strictly increasing within the store: names sort by age
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let mut last = self.last_nanos.load(Ordering::Acquire);
        let nanos = loop {
            let candidate = now.max(last + 1);
            match self.last_nanos.compare_exchange(last, candidate, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break candidate,
                Err(seen) => last = seen,
            }
        };
        self.dir.join(format!("wal-{shard}-sealed-{nanos}.bin"))
    }

    /// Seals the window: retries failed appends, detaches every active WAL, calls `save_meta`
    /// (the caller writes `templates.tls`), writes one chunk from the detached files, deletes
    /// them, and compacts when there are many chunks or the cap is exceeded.
    pub fn seal(&self, save_meta: impl FnOnce() -> Result<(), String>) -> Result<SealStats, StoreError> {
        // retry what could not be appended before
        let pending: Vec<_> = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        self.failing.store(false, Ordering::Release);
        let mut retry = pending.into_iter();
        while let Some((id, text, v)) = retry.next() {
            if let Err(e) = self.append(id, &text, &v) {
                // still failing: `append` kept this one; keep the rest too, in order
                self.pending.lock().unwrap_or_else(|p| p.into_inner()).extend(retry);
                save_meta().map_err(StoreError::Meta)?;
                return Err(e);
            }
        }
        // 1. detach every active WAL: under its shard's lock, so no append is in flight
        let mut sealed: Vec<PathBuf> = std::mem::take(&mut *self.leftovers.lock().unwrap_or_else(|p| p.into_inner()));
        let names: Vec<String> = fs::read_dir(&self.dir)
            .map_err(|e| StoreError::Io(self.dir.clone(), e))?
            .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
            .collect();
        for name in names {
            let Some(shard) = parse_shard(&name) else { continue };
            let _guard = self.shards.get(shard).map(|m| m.lock().unwrap_or_else(|p| p.into_inner()));
            let path = self.dir.join(&name);
            if fs::metadata(&path).map(|m| m.len() as usize <= wal::HEADER_LEN).unwrap_or(true) {
                continue; // nothing in it
            }
            let target = self.sealed_name(shard);
            if let Err(e) = fs::rename(&path, &target) {
                self.leftovers.lock().unwrap_or_else(|p| p.into_inner()).extend(sealed);
                return Err(StoreError::Io(path, e));
            }
            if let Some(mut g) = _guard {
                *g = None; // the writer reopens a fresh file on its next append
            }
            sealed.push(target);
        }
        // 2. metadata first: a chunk never holds ids that templates.tls and the WALs lack
        if let Err(e) = save_meta() {
            self.leftovers.lock().unwrap_or_else(|p| p.into_inner()).extend(sealed);
            return Err(StoreError::Meta(e));
        }
        // 3. one chunk from the sealed files, newest record per id
        let mut stats = SealStats::default();
        if !sealed.is_empty() {
            let mut latest: HashMap<u64, Vec<f32>> = HashMap::new();
            for p in &sealed {
                for r in wal::replay(p, self.dim)?.records {
                    latest.insert(r.id, r.vector);
                }
            }
            let mut entries: Vec<(u64, Vec<f32>)> = latest.into_iter().collect();
            entries.sort_by_key(|e| e.0);
            let sources: Vec<String> = sealed.iter().filter_map(|p| p.file_name()?.to_str().map(String::from)).collect();
            if !entries.is_empty() {
                if let Err(e) = self.write_chunk(&entries, &sources) {
                    self.leftovers.lock().unwrap_or_else(|p| p.into_inner()).extend(sealed);
                    return Err(e);
                }
                stats.chunk_records = entries.len();
            }
            // 4. the chunk is durable: the sealed files can go
            for p in &sealed {
                let _ = fs::remove_file(p);
            }
            stats.sealed_files = sealed.len();
        }
        // 5. compaction and retention
        let (count, bytes) = {
            let chunks = self.chunks.lock().unwrap_or_else(|p| p.into_inner());
            (chunks.len(), chunks.iter().map(Chunk::bytes).sum::<u64>())
        };
        let cap = self.opts.max_store_mb * 1024 * 1024;
        if count >= self.opts.compact_at_chunks.max(2) || (cap > 0 && bytes > cap && count > 0) {
            stats.compacted = self.compact()?;
        }
        Ok(stats)
    }

    fn write_chunk(&self, entries: &[(u64, Vec<f32>)], sources: &[String]) -> Result<(), StoreError> {
        let seq = self.next_seq.fetch_add(1, Ordering::AcqRel);
        let path = self.dir.join(format!("chunk-{seq:016}.tvim"));
        let refs: Vec<(u64, &[f32])> = entries.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        chunk::write(&path, self.dim, &refs, sources)?;
        let c = Chunk::open(&path, self.dim)?;
        self.chunks.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        Ok(())
    }

    /// Merges every chunk into one (newest vector per id). Past `max_store_mb` only the newest
    /// templates (highest ids) that fit are kept; the others would be re-embedded if needed.
    fn compact(&self) -> Result<usize, StoreError> {
        let chunks = self.chunks.lock().unwrap_or_else(|p| p.into_inner());
        if chunks.len() < 2 && self.opts.max_store_mb == 0 {
            return Ok(0);
        }
        let mut latest: HashMap<u64, (usize, usize)> = HashMap::new();
        for (ci, c) in chunks.iter().enumerate() {
            for i in 0..c.len() {
                latest.insert(c.id(i), (ci, i));
            }
        }
        let mut ids: Vec<u64> = latest.keys().copied().collect();
        ids.sort_unstable();
        let cap = self.opts.max_store_mb * 1024 * 1024;
        let per = self.dim as u64 * 4 + 8;
        if cap > 0 && ids.len() as u64 * per > cap {
            let keep = (cap / per) as usize;
            ids.drain(..ids.len() - keep);
        }
        let entries: Vec<(u64, Vec<f32>)> = ids
            .iter()
            .map(|id| {
                let (ci, i) = latest[id];
                (*id, chunks[ci].vector(i).to_vec())
            })
            .collect();
        let merged = chunks.len();
        let old: Vec<PathBuf> = chunks.iter().map(|c| c.path().to_path_buf()).collect();
        let sources: Vec<String> = chunks
            .iter()
            .flat_map(|c| c.sources().iter().cloned())
            .filter(|s| self.dir.join(s).exists())
            .collect();
        drop(chunks);
        self.write_chunk(&entries, &sources)?;
        let mut chunks = self.chunks.lock().unwrap_or_else(|p| p.into_inner());
        chunks.drain(..merged);
        for p in old {
            let _ = fs::remove_file(p);
        }
        Ok(merged)
    }

    /// Files and sizes, for `turbolog inspect` and tests.
    pub fn chunk_summary(&self) -> Vec<(PathBuf, usize, u64)> {
        self.chunks.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|c| (c.path().to_path_buf(), c.len(), c.bytes())).collect()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SealStats {
    pub sealed_files: usize,
    pub chunk_records: usize,
    pub compacted: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: f32) -> Vec<f32> {
        vec![x, x + 1.0, x + 2.0, x + 3.0]
    }

    fn open(dir: &Path) -> (Store, Recovery) {
        Store::open(dir, 4, StoreOptions::default()).unwrap()
    }

    fn vec_of(s: &Store, r: &Recovery, id: u64) -> Option<Vec<f32>> {
        s.with_vector(r, id, |v| v.map(<[f32]>::to_vec))
    }

    #[test]
    fn append_seal_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (s, r) = open(dir.path());
        assert!(r.is_empty());
        s.append(0, "a <*>", &v(0.0)).unwrap();
        s.append(1, "b <*>", &v(1.0)).unwrap();
        s.append(0, "a <*> <*>", &v(5.0)).unwrap(); // generalised: newest wins
        let stats = s.seal(|| Ok(())).unwrap();
        assert_eq!((stats.sealed_files, stats.chunk_records), (1, 2));
        s.append(2, "c", &v(2.0)).unwrap();
        drop(s);
        let (s, r) = open(dir.path());
        assert_eq!(r.ids(), [0, 1, 2]);
        assert_eq!(vec_of(&s, &r, 0), Some(v(5.0)));
        assert_eq!(vec_of(&s, &r, 2), Some(v(2.0)));
        assert_eq!(r.wal_texts().collect::<Vec<_>>(), [(2, "c")]);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let names: Vec<String> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(names.iter().any(|n| n.starts_with("chunk-")) && !names.iter().any(|n| n.contains("sealed")), "{names:?}");
    }

    #[test]
    fn leftovers_of_several_shards_are_replayed_oldest_first_and_never_twice() {
        let dir = tempfile::tempdir().unwrap();
        // an interrupted seal: sealed files of shards 0 and 3, one of them already in a chunk
        for (name, id, x) in [("wal-0-sealed-100.bin", 7, 1.0), ("wal-3-sealed-200.bin", 7, 2.0), ("wal-3-sealed-50.bin", 8, 3.0)] {
            let mut w = Writer::open(&dir.path().join(name), 4, FsyncPolicy::Never).unwrap();
            w.append(id, "t", &v(x)).unwrap();
        }
        chunk::write(&dir.path().join("chunk-0000000000000001.tvim"), 4, &[(8, &v(3.0))], &["wal-3-sealed-50.bin".into()]).unwrap();
        let (s, r) = open(dir.path());
        assert_eq!(vec_of(&s, &r, 7), Some(v(2.0)), "the newer sealed file wins");
        assert_eq!(vec_of(&s, &r, 8), Some(v(3.0)));
        assert!(!dir.path().join("wal-3-sealed-50.bin").exists(), "already chunked: deleted, not replayed");
        s.seal(|| Ok(())).unwrap();
        drop(s);
        let (s, r) = open(dir.path());
        assert_eq!(r.ids(), [7, 8]);
        assert_eq!(vec_of(&s, &r, 7), Some(v(2.0)));
        let chunk_ids: usize = s.chunk_summary().iter().map(|c| c.1).sum();
        assert_eq!(chunk_ids, 2, "each id once across chunks: {:?}", s.chunk_summary());
    }

    #[test]
    fn corrupt_chunk_is_moved_aside_and_the_rest_survives() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = open(dir.path());
        s.append(1, "x", &v(1.0)).unwrap();
        s.seal(|| Ok(())).unwrap();
        s.append(2, "y", &v(2.0)).unwrap();
        s.seal(|| Ok(())).unwrap();
        let chunks = s.chunk_summary();
        drop(s);
        let mut bytes = fs::read(&chunks[0].0).unwrap();
        let n = bytes.len();
        bytes[n - 20] ^= 0x40;
        fs::write(&chunks[0].0, bytes).unwrap();
        let (s, r) = open(dir.path());
        assert!(r.warnings.iter().any(|w| w.contains("is corrupt") && w.contains("moved aside")), "{:?}", r.warnings);
        assert!(chunks[0].0.with_extension("tvim.corrupt").exists());
        assert_eq!(vec_of(&s, &r, 2), Some(v(2.0)));
        assert_eq!(vec_of(&s, &r, 1), None);
    }

    #[test]
    fn compaction_merges_and_the_cap_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions { compact_at_chunks: 3, ..StoreOptions::default() };
        let (s, _) = Store::open(dir.path(), 4, opts.clone()).unwrap();
        for round in 0..3u64 {
            for id in 0..5 {
                s.append(id + round * 2, "t", &v((id + round * 10) as f32)).unwrap();
            }
            let st = s.seal(|| Ok(())).unwrap();
            if round == 2 {
                assert_eq!(st.compacted, 3);
            }
        }
        assert_eq!(s.chunk_summary().len(), 1);
        drop(s);
        let (s, r) = Store::open(dir.path(), 4, opts).unwrap();
        assert_eq!(r.ids(), (0..9).collect::<Vec<_>>());
        assert_eq!(vec_of(&s, &r, 4), Some(v(20.0)), "newest round (2, first id) wins for id 4");
        // a tiny cap keeps only the newest ids
        let tiny = StoreOptions { max_store_mb: 0, compact_at_chunks: 100, ..StoreOptions::default() };
        let (s2, _) = Store::open(dir.path(), 4, tiny).unwrap();
        let kept = {
            let s2 = Store { opts: StoreOptions { max_store_mb: 1, ..s2.opts.clone() }, ..s2 };
            s2.compact().unwrap();
            s2.chunk_summary().iter().map(|c| c.1).sum::<usize>()
        };
        assert_eq!(kept, 9, "9 vectors fit in 1 MiB");
    }

    #[test]
    fn failed_appends_are_kept_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = open(dir.path());
        s.append(1, "a", &v(1.0)).unwrap();
        // make the shard file unwritable by replacing it with a directory
        let shard = dir.path().join(format!("wal-{}.bin", thread_shard()));
        *s.shards[thread_shard()].lock().unwrap() = None;
        fs::remove_file(&shard).unwrap();
        fs::create_dir(&shard).unwrap();
        assert!(s.append(2, "b", &v(2.0)).is_err(), "first failure is reported");
        assert!(s.append(3, "c", &v(3.0)).is_ok(), "later ones are not repeated");
        assert!(s.degraded());
        fs::remove_dir(&shard).unwrap();
        s.seal(|| Ok(())).unwrap();
        assert!(!s.degraded());
        s.seal(|| Ok(())).unwrap();
        drop(s);
        let (_, r) = open(dir.path());
        assert_eq!(r.ids(), [2, 3], "the retried appends are durable (1 was lost with the replaced file)");
    }
}
