//! Sealed chunks (`chunk-<seq>.tvim`): immutable, memory-mapped files of template vectors.
//!
//! Layout (all little-endian):
//! ```text
//! 0   magic "TVIM", format version u32 (1), dim u32, reserved u32, count u64, sources_len u64
//! 32  sources: names of the sealed WAL files this chunk was made from, '\n'-separated
//!     (so a sealed file left behind by a crash is recognised and never replayed twice)
//! …   ids: count × u64, 8-aligned
//! …   vectors: count × dim × f32, 64-aligned, read in place through the mmap
//! end footer: body length u64, CRC32 of the body u32, magic "TVE1"
//! ```
//! Written to a temporary name, fsynced, renamed, and the directory fsynced. Opening checks the
//! header, lengths and footer (cheap, no copy); [`Chunk::verify`] checks the CRC.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

#[cfg(target_endian = "big")]
compile_error!("turbolog chunks are read in place as little-endian f32: big-endian hosts are not supported");

pub const MAGIC: &[u8; 4] = b"TVIM";
pub const FOOTER_MAGIC: &[u8; 4] = b"TVE1";
pub const VERSION: u32 = 1;
const HEADER_LEN: usize = 32;
const FOOTER_LEN: usize = 16;

#[derive(Debug)]
pub enum ChunkError {
    Io(PathBuf, io::Error),
    Corrupt(PathBuf, String),
    DimMismatch { path: PathBuf, file: u32, engine: u32 },
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            ChunkError::Corrupt(p, what) => write!(f, "chunk {} is corrupt: {what}", p.display()),
            ChunkError::DimMismatch { path, file, engine } => write!(
                f,
                "chunk {} holds {file}-dimensional vectors but the engine uses {engine}; use a state directory made with the same embedder",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ChunkError {}

fn pad_to(n: usize, align: usize) -> usize {
    n.div_ceil(align) * align
}

struct Layout {
    ids: usize,
    vectors: usize,
    body: usize,
}

fn layout(count: usize, dim: usize, sources_len: usize) -> Layout {
    let ids = pad_to(HEADER_LEN + sources_len, 8);
    let vectors = pad_to(ids + count * 8, 64);
    Layout { ids, vectors, body: vectors + count * dim * 4 }
}

/// Writes a chunk atomically. `entries` must have distinct ids.
pub fn write(path: &Path, dim: u32, entries: &[(u64, &[f32])], sources: &[String]) -> Result<u64, ChunkError> {
    let err = |p: &Path| {
        let p = p.to_path_buf();
        move |e| ChunkError::Io(p, e)
    };
    let sources = sources.join("\n");
    let l = layout(entries.len(), dim as usize, sources.len());
    let mut body = vec![0u8; l.body];
    body[..4].copy_from_slice(MAGIC);
    body[4..8].copy_from_slice(&VERSION.to_le_bytes());
    body[8..12].copy_from_slice(&dim.to_le_bytes());
    body[16..24].copy_from_slice(&(entries.len() as u64).to_le_bytes());
    body[24..32].copy_from_slice(&(sources.len() as u64).to_le_bytes());
    body[HEADER_LEN..HEADER_LEN + sources.len()].copy_from_slice(sources.as_bytes());
    for (i, (id, v)) in entries.iter().enumerate() {
        assert_eq!(v.len(), dim as usize, "vector dimension");
        body[l.ids + i * 8..l.ids + i * 8 + 8].copy_from_slice(&id.to_le_bytes());
        let at = l.vectors + i * dim as usize * 4;
        for (j, x) in v.iter().enumerate() {
            body[at + j * 4..at + j * 4 + 4].copy_from_slice(&x.to_le_bytes());
        }
    }
    let mut footer = [0u8; FOOTER_LEN];
    footer[..8].copy_from_slice(&(l.body as u64).to_le_bytes());
    footer[8..12].copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
    footer[12..].copy_from_slice(FOOTER_MAGIC);
    let tmp = path.with_extension("tvim.tmp");
    let result = (|| {
        let mut f = File::create(&tmp).map_err(err(&tmp))?;
        f.write_all(&body).map_err(err(&tmp))?;
        f.write_all(&footer).map_err(err(&tmp))?;
        f.sync_all().map_err(err(&tmp))?;
        fs::rename(&tmp, path).map_err(err(path))?;
        if let Some(dir) = path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(err(dir))?;
        }
        Ok((l.body + FOOTER_LEN) as u64)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An open chunk. Vectors are read in place from the mapping.
pub struct Chunk {
    path: PathBuf,
    map: Mmap,
    dim: usize,
    count: usize,
    ids_at: usize,
    vectors_at: usize,
    body_len: usize,
    sources: Vec<String>,
}

impl Chunk {
    /// Maps a chunk and checks its header, lengths and footer. Does not read the vectors.
    pub fn open(path: &Path, dim: u32) -> Result<Chunk, ChunkError> {
        let corrupt = |what: String| ChunkError::Corrupt(path.to_path_buf(), what);
        let file = File::open(path).map_err(|e| ChunkError::Io(path.to_path_buf(), e))?;
        // SAFETY: chunks are immutable once renamed into place; nothing writes to a mapped chunk.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| ChunkError::Io(path.to_path_buf(), e))?;
        if map.len() < HEADER_LEN + FOOTER_LEN {
            return Err(corrupt(format!("{} bytes is too short for a chunk", map.len())));
        }
        if &map[..4] != MAGIC {
            return Err(corrupt("bad magic, not a turbolog chunk".into()));
        }
        let version = u32::from_le_bytes(map[4..8].try_into().unwrap());
        if version != VERSION {
            return Err(corrupt(format!("format version {version}, this turbolog reads {VERSION}")));
        }
        let file_dim = u32::from_le_bytes(map[8..12].try_into().unwrap());
        if file_dim != dim {
            // A chunk of another embedder is intact; a damaged dimension field is not.
            let footer = &map[map.len() - FOOTER_LEN..];
            let body_len = u64::from_le_bytes(footer[..8].try_into().unwrap()) as usize;
            let want = u32::from_le_bytes(footer[8..12].try_into().unwrap());
            if body_len == map.len() - FOOTER_LEN && crc32fast::hash(&map[..body_len]) == want {
                return Err(ChunkError::DimMismatch { path: path.to_path_buf(), file: file_dim, engine: dim });
            }
            return Err(corrupt(format!("header says {file_dim} dimensions but the checksum does not match (damaged header)")));
        }
        let count = u64::from_le_bytes(map[16..24].try_into().unwrap());
        let sources_len = u64::from_le_bytes(map[24..32].try_into().unwrap());
        let footer = &map[map.len() - FOOTER_LEN..];
        if &footer[12..] != FOOTER_MAGIC {
            return Err(corrupt("footer magic missing (truncated or overwritten)".into()));
        }
        let body_len = u64::from_le_bytes(footer[..8].try_into().unwrap()) as usize;
        if count > (1 << 40) || sources_len > (1 << 30) {
            return Err(corrupt(format!("implausible header (count {count}, sources {sources_len} bytes)")));
        }
        let l = layout(count as usize, dim as usize, sources_len as usize);
        if body_len != l.body || map.len() != l.body + FOOTER_LEN {
            return Err(corrupt(format!(
                "length mismatch: header says {} body bytes, footer {body_len}, file has {}",
                l.body,
                map.len() - FOOTER_LEN
            )));
        }
        let sources = std::str::from_utf8(&map[HEADER_LEN..HEADER_LEN + sources_len as usize])
            .map_err(|_| corrupt("source list is not UTF-8".into()))?
            .split('\n')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        Ok(Chunk { path: path.to_path_buf(), map, dim: dim as usize, count: count as usize, ids_at: l.ids, vectors_at: l.vectors, body_len, sources })
    }

    /// Checks the CRC over the whole body.
    pub fn verify(&self) -> Result<(), ChunkError> {
        let want = u32::from_le_bytes(self.map[self.body_len + 8..self.body_len + 12].try_into().unwrap());
        let got = crc32fast::hash(&self.map[..self.body_len]);
        if want != got {
            return Err(ChunkError::Corrupt(self.path.clone(), format!("CRC mismatch: stored {want:08x}, computed {got:08x}")));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn bytes(&self) -> u64 {
        self.map.len() as u64
    }

    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    pub fn id(&self, i: usize) -> u64 {
        let at = self.ids_at + i * 8;
        u64::from_le_bytes(self.map[at..at + 8].try_into().unwrap())
    }

    /// The vector of entry `i`, borrowed from the mapping: no copy.
    pub fn vector(&self, i: usize) -> &[f32] {
        assert!(i < self.count);
        let at = self.vectors_at + i * self.dim * 4;
        let bytes = &self.map[at..at + self.dim * 4];
        // SAFETY: the mapping is page-aligned and `vectors_at` is a multiple of 64, so `at` is
        // 4-aligned; the bytes are little-endian f32 on a little-endian host (checked above).
        unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const f32, self.dim) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> PathBuf {
        let p = dir.join("chunk-0000000000000001.tvim");
        let a = [1.0f32, 2.0, 3.0];
        let b = [-1.0f32, 0.5, 0.25];
        write(&p, 3, &[(10, &a), (11, &b)], &["wal-0-sealed-5.bin".into(), "wal-1-sealed-6.bin".into()]).unwrap();
        p
    }

    #[test]
    fn round_trip_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = sample(dir.path());
        let c = Chunk::open(&p, 3).unwrap();
        c.verify().unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c.id(0), c.id(1)), (10, 11));
        assert_eq!(c.vector(1), &[-1.0, 0.5, 0.25]);
        assert_eq!(c.sources(), ["wal-0-sealed-5.bin", "wal-1-sealed-6.bin"]);
        assert_eq!(c.vector(0).as_ptr() as usize % 4, 0);
        assert!(!dir.path().join("chunk-0000000000000001.tvim.tmp").exists());
    }

    #[test]
    fn corruption_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = sample(dir.path());
        let good = fs::read(&p).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (good[..good.len() - 1].to_vec(), "footer magic"),
            (b"XXXX".iter().chain(&good[4..]).copied().collect(), "bad magic"),
            (good[..20].to_vec(), "too short"),
        ];
        for (bytes, want) in cases {
            fs::write(&p, &bytes).unwrap();
            let e = Chunk::open(&p, 3).err().expect("must fail").to_string();
            assert!(e.contains(want), "{e}");
        }
        let mut flipped = good.clone();
        flipped[good.len() - 30] ^= 1; // inside the vectors
        fs::write(&p, &flipped).unwrap();
        let c = Chunk::open(&p, 3).unwrap();
        assert!(c.verify().unwrap_err().to_string().contains("CRC mismatch"));
        fs::write(&p, &good).unwrap();
        assert!(Chunk::open(&p, 4).err().unwrap().to_string().contains("3-dimensional"));
    }
}
