//! The disk queue's bytes: segment names, the frame of one batch (the store's framing: magic,
//! length, body, CRC32) and the `delivered` cursor.
//!
//! A batch's body: `seq u64 | records u32 | tag length u32 (MAX: none) | tag | times u32 |
//! (secs u32, nanos u32)… | text`, little-endian.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use turbolog::store::framed;

use super::super::msgpack_json::EventTime;
use super::super::pipeline::Batch;

pub const MAGIC: &[u8; 8] = b"TLQUEUE1";
const CURSOR_MAGIC: &[u8; 8] = b"TLQCURS2";
pub const CURSOR_FILE: &str = "delivered";
/// Magic, length and checksum around each body.
const FRAME_OVERHEAD: u64 = 20;

/// The bytes `batch` takes on disk.
pub fn len(batch: &Batch) -> u64 {
    body_len(batch) as u64 + FRAME_OVERHEAD
}

fn body_len(batch: &Batch) -> usize {
    8 + 4 + 4 + batch.tag.as_deref().map_or(0, str::len) + 4 + 8 * batch.times.len() + batch.text.len()
}

/// Writes the frame of batch `seq` into `buf` (cleared first).
pub fn encode(buf: &mut Vec<u8>, seq: u64, batch: &Batch) {
    let tag = batch.tag.as_deref().map(str::as_bytes);
    buf.clear();
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&(body_len(batch) as u64).to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&(batch.records as u32).to_le_bytes());
    buf.extend_from_slice(&tag.map_or(u32::MAX, |t| t.len() as u32).to_le_bytes());
    buf.extend_from_slice(tag.unwrap_or_default());
    buf.extend_from_slice(&(batch.times.len() as u32).to_le_bytes());
    for t in &batch.times {
        buf.extend_from_slice(&t.secs.to_le_bytes());
        buf.extend_from_slice(&t.nanos.to_le_bytes());
    }
    buf.extend_from_slice(batch.text.as_bytes());
    let crc = crc32fast::hash(&buf[16..]);
    buf.extend_from_slice(&crc.to_le_bytes());
}

/// The records a frame body holds.
pub fn records(body: &[u8]) -> u64 {
    u64::from(u32::from_le_bytes(body[8..12].try_into().unwrap_or_default()))
}

/// The cursor file's bytes: what the downstream took, and what is being sent.
pub fn encode_cursor(delivered: u64, sending: u64) -> Vec<u8> {
    let mut body = [0u8; 16];
    body[..8].copy_from_slice(&delivered.to_le_bytes());
    body[8..].copy_from_slice(&sending.to_le_bytes());
    framed::encode(CURSOR_MAGIC, &body)
}

pub fn segment_name(first: u64) -> String {
    format!("seg-{first:020}.tlq")
}

pub fn segment_first(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?.strip_suffix(".tlq")?.parse().ok().filter(|&n| n > 0)
}

/// (delivered, being sent); a damaged cursor only means delivering again from the oldest
/// segment, every replayed batch counted as a possible redelivery.
pub fn read_cursor(path: &Path) -> (u64, u64) {
    let Ok(b) = fs::read(path) else { return (0, 0) };
    let u = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
    b.get(..36)
        .and_then(|b| framed::decode(CURSOR_MAGIC, b, "disk queue cursor").ok())
        .filter(|body| body.len() == 16)
        .map(|body| (u(&body[..8]), u(&body[8..])))
        .unwrap_or((0, u64::MAX))
}

pub enum End {
    Clean,
    /// Ends inside a frame.
    Torn,
    Corrupt(String),
}

/// Calls `each(seq, body)` for every good frame; returns where the good frames end and why.
pub fn scan(bytes: &[u8], mut each: impl FnMut(u64, &[u8])) -> (usize, End) {
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < 16 {
            return (pos, End::Torn);
        }
        if &rest[..8] != MAGIC {
            return (pos, End::Corrupt("no frame starts there".into()));
        }
        let len = u64::from_le_bytes(rest[8..16].try_into().unwrap_or_default());
        let Some(total) = len.checked_add(FRAME_OVERHEAD).filter(|&t| t <= rest.len() as u64) else {
            return (pos, End::Torn);
        };
        let body = match framed::decode(MAGIC, &rest[..total as usize], "disk queue") {
            Ok(b) => b,
            Err(e) => return (pos, End::Corrupt(e)),
        };
        if body.len() < 12 {
            return (pos, End::Corrupt("a frame too short for a batch".into()));
        }
        each(u64::from_le_bytes(body[..8].try_into().unwrap_or_default()), body);
        pos += total as usize;
    }
    (pos, End::Clean)
}

pub fn decode_batch(body: &[u8]) -> Result<Batch, String> {
    let mut at: usize = 8;
    let mut take = |n: usize| -> Result<&[u8], String> {
        // usize::MAX: the rest
        let end = if n == usize::MAX { body.len() } else { at.checked_add(n).ok_or("the batch ends early")? };
        let s = body.get(at..end).ok_or("the batch ends early")?;
        at = end;
        Ok(s)
    };
    let u32_at = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or_default());
    let records = u32_at(take(4)?) as usize;
    let tag_len = u32_at(take(4)?);
    let tag = match tag_len {
        u32::MAX => None,
        n => Some(Arc::<str>::from(String::from_utf8_lossy(take(n as usize)?).as_ref())),
    };
    let n_times = u32_at(take(4)?) as usize;
    let mut times = Vec::with_capacity(n_times.min(body.len() / 8));
    for _ in 0..n_times {
        let t = take(8)?;
        times.push(EventTime { secs: u32_at(&t[..4]), nanos: u32_at(&t[4..]) });
    }
    let text = String::from_utf8_lossy(take(usize::MAX)?).into_owned();
    if text.matches('\n').count() != records || (!times.is_empty() && times.len() != records) {
        return Err("its record count does not match its lines".into());
    }
    Ok(Batch { text, records, times, tag, permit: None, known: Vec::new() })
}
