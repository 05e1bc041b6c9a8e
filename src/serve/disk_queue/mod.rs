//! The disk queue (`--state DIR`, in `DIR/queue`, or `--queue-dir DIR`): every accepted batch is
//! appended here, and synced, before its sender is told it was accepted; it is forgotten only
//! once the downstream has taken its tagged records. At start what the downstream had not taken
//! is tagged and delivered again, first and in order (at-least-once).
//!
//! Segments `seg-<first seq>.tlq` hold one frame per batch ([`frame`]). The file `delivered` holds the
//! highest sequence number the downstream took and the one being sent (framed, two u64),
//! rewritten in place around each delivery and not synced: after a crash a little more may be
//! delivered again, never less; what was being sent tells a redelivery from a first delivery.

mod args;
mod frame;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::pipeline::Batch;
pub use args::{deliver_first, QueueArgs};
use frame::{decode_batch, read_cursor, scan, segment_first, segment_name, End, CURSOR_FILE};

/// When an appended batch is synced to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fsync {
    /// Before its sender is acknowledged; concurrent requests share one fsync.
    Batch,
    /// Left to the kernel: survives a killed process, not a power cut.
    Off,
}

#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub max_bytes: u64,
    pub fsync: Fsync,
}

/// Why a batch was not taken; the caller still holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// `--queue-bytes` is reached: the downstream is behind.
    Full(String),
    /// The disk refuses writes (full, read-only, failing).
    Failing(String),
}

impl Refused {
    /// The label of `turbolog_requests_rejected`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::Full(_) => "disk_queue_full",
            Refused::Failing(_) => "disk_queue_failing",
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Full(m) | Refused::Failing(m) => f.write_str(m),
        }
    }
}

struct Segment {
    path: PathBuf,
    /// The last sequence number in it (`first - 1` while empty).
    last: u64,
    bytes: u64,
    /// Frames are read up to here (a corrupt segment's good prefix).
    valid: u64,
    /// Moved aside as corrupt: read, never written or removed.
    aside: bool,
}

struct Inner {
    /// Oldest first; when `file` is open it appends to the last one.
    segments: VecDeque<Segment>,
    file: Option<Arc<File>>,
    next_seq: u64,
    delivered: u64,
    bytes: u64,
    /// Reused for each frame.
    buf: Vec<u8>,
    cursor: Option<File>,
    failing: Option<String>,
}

pub struct DiskQueue {
    dir: PathBuf,
    opts: Options,
    segment_bytes: u64,
    inner: Mutex<Inner>,
    /// Every sequence number up to this one is on disk.
    synced: AtomicU64,
    /// An fsync failed with the batches up to this one unconfirmed: they never will be (the
    /// kernel may have dropped what it could not write), so their senders are not acknowledged.
    poisoned_through: AtomicU64,
    sync_lock: tokio::sync::Mutex<()>,
    /// Batches up to this one were in the queue at start: delivering them may be a redelivery.
    replayed_through: u64,
    /// Batches up to this one may have reached the downstream before the restart (sent, not
    /// confirmed): delivering them again is a redelivery.
    sent_through: u64,
}

/// A segment with records the downstream had not taken at start.
pub struct Undelivered {
    path: PathBuf,
    valid: u64,
}

/// A batch read back from the queue, with its sequence number.
pub struct Queued {
    pub seq: u64,
    pub batch: Batch,
}

impl DiskQueue {
    /// Opens (creating it if needed) the queue in `dir`. Torn tails are cut, corrupt segments
    /// moved aside; each such repair comes back as a warning that says what happened.
    pub fn open(dir: &Path, opts: Options) -> Result<(DiskQueue, Vec<String>), String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create the disk queue directory {} ({e}): create it, or pass another --queue-dir", dir.display()))?;
        let mut warnings = Vec::new();
        let (delivered, sent_through) = read_cursor(&dir.join(CURSOR_FILE));
        let mut names: Vec<(u64, String)> = fs::read_dir(dir)
            .map_err(|e| format!("cannot list the disk queue directory {} ({e}): check its permissions", dir.display()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| Some((segment_first(&n)?, n)))
            .collect();
        names.sort();
        let mut segments = VecDeque::new();
        for (first, name) in names {
            let path = dir.join(&name);
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    warnings.push(format!("cannot read the disk queue segment {} ({e}); its records are not delivered until it can be read and serve restarts", path.display()));
                    continue;
                }
            };
            let mut last = first - 1;
            let mut records = 0u64;
            let (valid, end) = scan(&bytes, |seq, body| {
                last = seq;
                records += frame::records(body);
            });
            if valid == 0 && matches!(end, End::Clean | End::Torn) {
                // rolled to just before a crash, or only a torn first write: holds nothing
                let _ = fs::remove_file(&path);
                continue;
            }
            let mut seg = Segment { path: path.clone(), last, bytes: bytes.len() as u64, valid: valid as u64, aside: false };
            match end {
                End::Clean => {}
                End::Torn => {
                    // the write a crash interrupted: never acknowledged
                    let cut = OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(valid as u64));
                    if cut.is_ok() {
                        seg.bytes = valid as u64;
                    }
                }
                End::Corrupt(why) => {
                    let mut aside = path.as_os_str().to_owned();
                    aside.push(".corrupt");
                    let aside = PathBuf::from(aside);
                    let moved = match fs::rename(&path, &aside) {
                        Ok(()) => {
                            seg.path = aside.clone();
                            format!("moved aside to {}", aside.display())
                        }
                        Err(e) => format!("could not be moved aside ({e})"),
                    };
                    seg.aside = true;
                    warnings.push(format!(
                        "the disk queue segment {} is corrupt at byte {valid} ({why}); {moved}; the {records} records before the damage are delivered, what follows it cannot be (read the file if it matters)",
                        path.display()
                    ));
                }
            }
            segments.push_back(seg);
        }
        let next_seq = segments.iter().map(|s| s.last).max().unwrap_or(0).max(delivered) + 1;
        let replayed_through = segments.iter().filter(|s| s.last > delivered).map(|s| s.last).max().unwrap_or(0);
        let segment_bytes = (opts.max_bytes / 8).clamp(64 << 10, 8 << 20);
        let q = DiskQueue {
            dir: dir.to_path_buf(),
            opts,
            segment_bytes,
            inner: Mutex::new(Inner {
                bytes: segments.iter().map(|s| s.bytes).sum(),
                segments,
                file: None,
                next_seq,
                delivered,
                buf: Vec::new(),
                cursor: None,
                failing: None,
            }),
            synced: AtomicU64::new(next_seq - 1),
            poisoned_through: AtomicU64::new(0),
            sync_lock: tokio::sync::Mutex::new(()),
            replayed_through,
            sent_through,
        };
        {
            let mut inner = q.lock();
            if let Some(w) = q.forget_delivered(&mut inner) {
                warnings.push(w);
            }
        }
        Ok((q, warnings))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The segments holding what the downstream had not taken at start, oldest first.
    pub fn undelivered(&self) -> Vec<Undelivered> {
        let inner = self.lock();
        inner.segments.iter().filter(|s| s.last > inner.delivered).map(|s| Undelivered { path: s.path.clone(), valid: s.valid }).collect()
    }

    /// The batches of `seg` the downstream has not taken, in order.
    pub fn read(&self, seg: &Undelivered) -> Result<Vec<Queued>, String> {
        let bytes = fs::read(&seg.path).map_err(|e| format!("cannot read the disk queue segment {} ({e})", seg.path.display()))?;
        let bytes = &bytes[..(seg.valid as usize).min(bytes.len())];
        let delivered = self.lock().delivered;
        let mut out = Vec::new();
        let mut bad = None;
        scan(bytes, |seq, body| {
            if seq <= delivered || bad.is_some() {
                return;
            }
            match decode_batch(body) {
                Ok(batch) => out.push(Queued { seq, batch }),
                Err(e) => bad = Some(e),
            }
        });
        match bad {
            Some(e) => Err(format!("the disk queue segment {} holds a batch that cannot be read ({e}); the batches before it are delivered", seg.path.display())),
            None => Ok(out),
        }
    }

    /// In the queue at start: delivered after the restart.
    pub fn is_replay(&self, seq: u64) -> bool {
        seq <= self.replayed_through
    }

    /// Sent (maybe taken) before the restart, and delivered again after it.
    pub fn is_redelivery(&self, seq: u64) -> bool {
        seq <= self.sent_through.min(self.replayed_through)
    }

    /// The writer is about to send batch `seq` (remembered to count redeliveries after a crash).
    pub fn sending(&self, seq: u64) {
        let mut inner = self.lock();
        let delivered = inner.delivered;
        self.write_cursor(&mut inner, delivered, seq);
    }

    fn write_cursor(&self, inner: &mut Inner, delivered: u64, sending: u64) {
        if inner.cursor.is_none() {
            inner.cursor = OpenOptions::new().create(true).truncate(false).write(true).open(self.dir.join(CURSOR_FILE)).ok();
        }
        if let Some(c) = &inner.cursor {
            // not synced, and a failure is not an error: at worst more is delivered again
            let _ = c.write_all_at(&frame::encode_cursor(delivered, sending), 0);
        }
    }

    /// Appends `batch` (not yet synced: see [`DiskQueue::sync`]); its sequence number. The
    /// caller holds the guard from [`DiskQueue::writer`] so that batches reach the engine in the
    /// order of their numbers.
    pub fn append(&self, inner: &mut QueueGuard<'_>, batch: &Batch) -> Result<u64, Refused> {
        let inner: &mut Inner = &mut inner.0;
        let frame = frame::len(batch);
        let empty = inner.delivered + 1 >= inner.next_seq;
        let current_done = inner.file.is_some() && inner.segments.back().is_some_and(|s| s.last <= inner.delivered);
        let over = inner.bytes + frame > self.opts.max_bytes;
        let big = inner.segments.back().is_some_and(|s| s.bytes >= self.segment_bytes);
        // a new segment when there is none, the current one is large, or it is all delivered
        // and removing it helps (the bound, or a disk that refused the last write)
        if inner.file.is_none() || big || (current_done && (over || inner.failing.is_some())) {
            self.roll(inner)?;
        }
        if inner.bytes + frame > self.opts.max_bytes && !empty {
            return Err(Refused::Full(format!(
                "the disk queue is full ({} of --queue-bytes {} bytes in {} waiting for the downstream): retry later",
                inner.bytes,
                self.opts.max_bytes,
                self.dir.display()
            )));
        }
        let seq = inner.next_seq;
        frame::encode(&mut inner.buf, seq, batch);
        let file = inner.file.clone().expect("a segment is open after roll");
        let seg = inner.segments.back_mut().expect("a segment exists after roll");
        if let Err(e) = (&*file).write_all(&inner.buf) {
            // a part written before the error would be a torn frame: cut it
            let _ = file.set_len(seg.bytes);
            let why = format!("writing {}: {e}", seg.path.display());
            return Err(self.fail(inner, why));
        }
        seg.bytes += frame;
        seg.valid = seg.bytes;
        seg.last = seq;
        inner.bytes += frame;
        inner.next_seq += 1;
        if inner.failing.take().is_some() {
            eprintln!("turbolog: serve: the disk queue in {} works again: acknowledging again", self.dir.display());
        }
        Ok(seq)
    }

    /// The guard under which batches are appended and handed on, in order.
    pub fn writer(&self) -> QueueGuard<'_> {
        QueueGuard(self.lock())
    }

    /// Closes the current segment (synced) and opens a new one; removes what is all delivered.
    fn roll(&self, inner: &mut Inner) -> Result<(), Refused> {
        if let Some(old) = inner.file.take() {
            if self.opts.fsync == Fsync::Batch {
                if let Err(e) = old.sync_data() {
                    self.poisoned_through.fetch_max(inner.next_seq - 1, Ordering::AcqRel);
                    let path = inner.segments.back().map(|s| s.path.display().to_string()).unwrap_or_default();
                    return Err(self.fail(inner, format!("syncing {path}: {e}")));
                }
                self.synced.fetch_max(inner.next_seq - 1, Ordering::AcqRel);
            }
        }
        if let Some(w) = self.forget_delivered(inner) {
            eprintln!("turbolog: warning: {w}");
        }
        let first = inner.next_seq;
        let path = self.dir.join(segment_name(first));
        let created = OpenOptions::new().create(true).append(true).open(&path).and_then(|f| {
            if self.opts.fsync == Fsync::Batch {
                File::open(&self.dir)?.sync_all()?;
            }
            Ok(f)
        });
        match created {
            Ok(f) => {
                inner.file = Some(Arc::new(f));
                inner.segments.push_back(Segment { path, last: first - 1, bytes: 0, valid: 0, aside: false });
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(self.fail(inner, format!("creating {}: {e}", path.display())))
            }
        }
    }

    /// Records a failure: said once on stderr, shown on `/readyz` until a write works again.
    fn fail(&self, inner: &mut Inner, why: String) -> Refused {
        let hint = if why.contains("Read-only") || why.contains("ermission") {
            format!("make {} writable", self.dir.display())
        } else {
            format!("free space where {} is", self.dir.display())
        };
        let msg = format!("the disk queue cannot be written ({why}); acknowledgements stop until it can: {hint}");
        if inner.failing.is_none() {
            eprintln!("turbolog: warning: {msg}");
        }
        inner.failing = Some(msg.clone());
        Refused::Failing(msg)
    }

    /// Waits until every batch up to `seq` is on disk (one fsync for all the batches appended
    /// meanwhile).
    pub async fn sync(&self, seq: u64) -> Result<(), String> {
        if self.opts.fsync == Fsync::Off {
            return Ok(());
        }
        let settled = |q: &DiskQueue| -> Option<Result<(), String>> {
            if q.synced.load(Ordering::Acquire) >= seq {
                return Some(Ok(()));
            }
            (seq <= q.poisoned_through.load(Ordering::Acquire)).then(|| Err(q.failing().unwrap_or_else(|| "an fsync of the disk queue failed".into())))
        };
        loop {
            if let Some(r) = settled(self) {
                return r;
            }
            let _one_at_a_time = self.sync_lock.lock().await;
            if let Some(r) = settled(self) {
                return r;
            }
            // no open segment: the last one was synced when it was closed (or poisoned)
            let (file, upto) = {
                let inner = self.lock();
                (inner.file.clone(), inner.next_seq - 1)
            };
            let Some(file) = file else {
                if seq <= self.poisoned_through.load(Ordering::Acquire) {
                    return Err(self.failing().unwrap_or_else(|| "an fsync of the disk queue failed".into()));
                }
                self.synced.fetch_max(upto, Ordering::AcqRel);
                continue;
            };
            let synced = tokio::task::spawn_blocking(move || file.sync_data()).await;
            match synced {
                Ok(Ok(())) => {
                    self.synced.fetch_max(upto, Ordering::AcqRel);
                }
                Ok(Err(e)) => {
                    let mut inner = self.lock();
                    // everything in this segment is unconfirmed, and new batches go to a new one
                    self.poisoned_through.fetch_max(inner.next_seq - 1, Ordering::AcqRel);
                    inner.file = None;
                    return Err(self.fail(&mut inner, format!("syncing: {e}")).to_string());
                }
                Err(e) => return Err(format!("the disk queue's sync did not finish: {e}")),
            }
        }
    }

    /// The downstream took every batch up to `seq`: remembered, and whole segments removed.
    pub fn delivered(&self, seq: u64) {
        let mut inner = self.lock();
        if seq <= inner.delivered {
            return;
        }
        inner.delivered = seq;
        self.write_cursor(&mut inner, seq, seq);
        if let Some(w) = self.forget_delivered(&mut inner) {
            eprintln!("turbolog: warning: {w}");
        }
    }

    /// Removes the closed segments the downstream has taken all of.
    fn forget_delivered(&self, inner: &mut Inner) -> Option<String> {
        let mut warning = None;
        while let Some(s) = inner.segments.front() {
            let writing = inner.file.is_some() && inner.segments.len() == 1;
            if writing || s.last > inner.delivered {
                break;
            }
            let s = inner.segments.pop_front().expect("front exists");
            inner.bytes -= s.bytes;
            if !s.aside {
                if let Err(e) = fs::remove_file(&s.path) {
                    warning.get_or_insert(format!("cannot remove the delivered disk queue segment {} ({e}); remove it by hand", s.path.display()));
                }
            }
        }
        warning
    }

    /// Why writes fail now, if they do.
    pub fn failing(&self) -> Option<String> {
        self.lock().failing.clone()
    }

    /// Bytes on disk, and the bound.
    pub fn bytes(&self) -> (u64, u64) {
        (self.lock().bytes, self.opts.max_bytes)
    }
}

/// Held while appending and handing on one batch.
pub struct QueueGuard<'a>(MutexGuard<'a, Inner>);

#[cfg(test)]
mod tests {
    use super::frame::MAGIC;
    use super::*;
    use crate::serve::msgpack_json::EventTime;

    fn batch(text: &str, tag: Option<&str>, times: usize) -> Batch {
        let records = text.matches('\n').count();
        Batch { text: text.into(), records, times: vec![EventTime { secs: 7, nanos: 9 }; times], tag: tag.map(Into::into), permit: None, known: Vec::new() }
    }

    fn open(dir: &Path, max: u64) -> (DiskQueue, Vec<String>) {
        DiskQueue::open(dir, Options { max_bytes: max, fsync: Fsync::Batch }).unwrap()
    }

    fn append(q: &DiskQueue, b: &Batch) -> Result<u64, Refused> {
        let mut g = q.writer();
        q.append(&mut g, b)
    }

    fn replay(q: &DiskQueue) -> Vec<(u64, String)> {
        q.undelivered().iter().flat_map(|s| q.read(s).unwrap()).map(|x| (x.seq, x.batch.text)).collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn what_was_not_delivered_comes_back_in_order_with_its_tag_and_times() {
        let d = tempfile::tempdir().unwrap();
        let (q, w) = open(d.path(), 1 << 20);
        assert!(w.is_empty());
        assert_eq!(append(&q, &batch("a\nb\n", Some("app"), 2)).unwrap(), 1);
        assert_eq!(append(&q, &batch("c\n", None, 0)).unwrap(), 2);
        assert_eq!(append(&q, &batch("d\n", None, 0)).unwrap(), 3);
        q.sync(3).await.unwrap();
        q.sending(1);
        q.delivered(1);
        // killed while batch 2 was on the wire
        q.sending(2);
        drop(q);
        let (q, _) = open(d.path(), 1 << 20);
        assert_eq!(replay(&q), [(2, "c\n".to_string()), (3, "d\n".to_string())]);
        assert!(q.is_replay(3) && !q.is_replay(4));
        assert!(q.is_redelivery(2) && !q.is_redelivery(3), "only what was being sent may be a duplicate");
        // numbers go on after the restart, and the tag and times come back
        assert_eq!(append(&q, &batch("e\n", Some("t"), 1)).unwrap(), 4);
        drop(q);
        let (q, _) = open(d.path(), 1 << 20);
        let last = q.undelivered().iter().flat_map(|s| q.read(s).unwrap()).last().unwrap();
        assert_eq!((last.seq, last.batch.tag.as_deref(), last.batch.times.clone()), (4, Some("t"), vec![EventTime { secs: 7, nanos: 9 }]));
    }

    #[test]
    fn delivered_segments_are_removed_and_the_bound_refuses_then_frees() {
        let d = tempfile::tempdir().unwrap();
        // 64 KiB segments, 256 KiB at most
        let (q, _) = open(d.path(), 256 << 10);
        let text = "x".repeat(4000) + "\n";
        let b = batch(&text, None, 0);
        let mut last = 0;
        let refused = loop {
            match append(&q, &b) {
                Ok(s) => last = s,
                Err(e) => break e,
            }
        };
        assert!(matches!(&refused, Refused::Full(m) if m.contains("--queue-bytes")), "{refused:?}");
        assert!(q.bytes().0 <= 256 << 10);
        let segments = || fs::read_dir(d.path()).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("seg-")).count();
        assert!(segments() >= 4);
        q.delivered(last);
        // the open segment stays until the next append rolls past it
        assert_eq!(segments(), 1);
        append(&q, &b).unwrap();
        assert!(q.bytes().0 < 70 << 10, "{:?}", q.bytes());
        drop(q);
        let (q, _) = open(d.path(), 256 << 10);
        assert_eq!(replay(&q).len(), 1);
    }

    #[test]
    fn a_torn_tail_is_cut_and_a_corrupt_segment_is_moved_aside_and_said() {
        let d = tempfile::tempdir().unwrap();
        let (q, _) = open(d.path(), 1 << 20);
        for i in 0..3 {
            append(&q, &batch(&format!("r{i}\n"), None, 0)).unwrap();
        }
        drop(q);
        let seg = d.path().join(segment_name(1));
        // a crash in the middle of a write
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&MAGIC[..]).unwrap();
        f.write_all(&[9, 0, 0]).unwrap();
        drop(f);
        let (q, w) = open(d.path(), 1 << 20);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(replay(&q).len(), 3);
        drop(q);
        // a flipped bit in the second frame
        let mut b = fs::read(&seg).unwrap();
        let second = b.windows(8).enumerate().filter(|(_, w)| w == MAGIC).nth(1).unwrap().0;
        b[second + 18] ^= 0x20;
        fs::write(&seg, b).unwrap();
        let (q, w) = open(d.path(), 1 << 20);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("corrupt") && w[0].contains("checksum") && w[0].contains("moved aside") && w[0].contains("the 1 records before"), "{w:?}");
        assert_eq!(replay(&q), [(1, "r0\n".to_string())]);
        assert!(!seg.exists());
        assert!(d.path().join(format!("{}.corrupt", segment_name(1))).exists());
        // new batches go on after it
        assert!(append(&q, &batch("n\n", None, 0)).unwrap() >= 2);
    }

    #[test]
    fn a_damaged_cursor_delivers_again_rather_than_skipping() {
        let d = tempfile::tempdir().unwrap();
        let (q, _) = open(d.path(), 1 << 20);
        append(&q, &batch("a\n", None, 0)).unwrap();
        append(&q, &batch("b\n", None, 0)).unwrap();
        q.delivered(1);
        drop(q);
        fs::write(d.path().join(CURSOR_FILE), b"garbage").unwrap();
        let (q, _) = open(d.path(), 1 << 20);
        assert_eq!(replay(&q).len(), 2);
    }
}
