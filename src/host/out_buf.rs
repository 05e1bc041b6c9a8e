//! Output buffers for tagged records, and the one a host takes without a copy.
//!
//! Fluent Bit and C hosts free a filter's output with `free()`, so it must come from `malloc`.
//! [`MallocBuf`] is written in place from `malloc`/`realloc` memory and handed over as it is:
//! the output of a chunk is never copied once more on its way out.

use std::ffi::c_void;

pub use crate::codec::fluent_bit::OutBuf;

/// A growable byte buffer in `malloc` memory whose contents a host can take and `free()`.
pub struct MallocBuf {
    ptr: *mut u8,
    len: usize,
    cap: usize,
    /// Set when an allocation failed: the buffer's contents are incomplete.
    failed: bool,
}

// SAFETY: the buffer owns its allocation exclusively; nothing else points into it.
unsafe impl Send for MallocBuf {}

impl Default for MallocBuf {
    fn default() -> Self {
        MallocBuf { ptr: std::ptr::null_mut(), len: 0, cap: 0, failed: false }
    }
}

impl MallocBuf {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hands the contents over (a `malloc` pointer the caller must `free`, and its length) and
    /// leaves the buffer empty. `None` when memory ran out while writing: the output is not whole.
    pub fn take(&mut self) -> Option<(*mut c_void, usize)> {
        if self.failed {
            return None;
        }
        if self.ptr.is_null() && !self.grow(1) {
            return None; // never hand over a null or zero-size allocation
        }
        let out = (self.ptr.cast::<c_void>(), self.len);
        // ownership passes to the caller: forget the block, do not free it
        self.ptr = std::ptr::null_mut();
        self.len = 0;
        self.cap = 0;
        Some(out)
    }

    #[inline]
    fn grow(&mut self, needed: usize) -> bool {
        needed <= self.cap || self.realloc(needed)
    }

    #[cold]
    #[inline(never)]
    fn realloc(&mut self, needed: usize) -> bool {
        let cap = needed.max(self.cap * 2).max(64);
        // SAFETY: realloc of our own allocation (or of null, a malloc); on failure the old block
        // is left as it was and still ours.
        let p = unsafe { libc::realloc(self.ptr.cast::<c_void>(), cap) };
        if p.is_null() {
            self.failed = true;
            return false;
        }
        self.ptr = p.cast::<u8>();
        self.cap = cap;
        true
    }
}

impl OutBuf for MallocBuf {
    #[inline]
    fn clear(&mut self) {
        self.len = 0;
        self.failed = false;
    }

    fn reserve(&mut self, additional: usize) {
        self.grow(self.len + additional);
    }

    #[inline]
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        if !self.grow(self.len + bytes.len()) {
            return;
        }
        // SAFETY: grow made room for bytes.len() more bytes after len.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(self.len), bytes.len()) };
        self.len += bytes.len();
    }

    fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: len bytes were written from ptr.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl std::io::Write for MallocBuf {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(buf);
        if self.failed {
            return Err(std::io::ErrorKind::OutOfMemory.into());
        }
        Ok(buf.len())
    }
    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.write(buf).map(|_| ())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for MallocBuf {
    fn drop(&mut self) {
        // SAFETY: our own allocation, or null.
        unsafe { libc::free(self.ptr.cast::<c_void>()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_grow_and_take_hands_over_malloc_memory() {
        let mut b = MallocBuf::default();
        for i in 0..1000u32 {
            b.extend_from_slice(&i.to_le_bytes());
        }
        assert_eq!(b.len(), 4000);
        assert_eq!(&b.as_slice()[4..8], &1u32.to_le_bytes());
        let (p, len) = b.take().unwrap();
        assert_eq!(len, 4000);
        assert!(b.is_empty() && b.as_slice().is_empty());
        // SAFETY: the pointer came from malloc and is ours now.
        unsafe { libc::free(p) };
        // an empty output is still a real allocation
        let (p, len) = MallocBuf::default().take().unwrap();
        assert!(!p.is_null() && len == 0);
        unsafe { libc::free(p) };
        rmp::encode::write_str(&mut b, "anomaly").unwrap();
        assert_eq!(b.as_slice(), b"\xa7anomaly");
    }
}
