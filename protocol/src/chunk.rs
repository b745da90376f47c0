//! The buffer a relay reads a socket into before the bytes travel as a
//! `ConnData` payload.
//!
//! A large read is handed over as it is (the buffer becomes the payload and
//! a fresh one takes its place), so bulk data is not copied in user space
//! on its way into a frame; a small read is copied out into a payload of
//! its own size, so a queue of small messages does not pin a large buffer
//! each. The buffer is never zeroed: reads fill its spare capacity.

/// Makes glibc's allocator keep the memory of freed chunks for the next
/// ones, in a process that relays (the intproxy, the agent): call it first
/// thing, before any thread starts. Does nothing with another allocator.
///
/// A chunk handed over as a payload is freed once written, and a fresh
/// one is allocated for the next read. By default glibc serves chunks of
/// this size from `mmap` until a free raises its threshold, and gives the
/// top of the heap back to the kernel whenever more than twice that is
/// free, so a bulk transfer kept faulting in and zeroing new pages (a
/// tenth of the agent's CPU under `perf`). Fixed thresholds keep up to
/// 32 MiB of free heap for reuse; the flow-control window bounds what is
/// in flight per connection, so little more than that is ever held.
pub fn keep_freed_chunks() {
    #[cfg(all(feature = "libc", target_os = "linux", target_env = "gnu"))]
    glibc::fix_thresholds();
}

#[cfg(all(feature = "libc", target_os = "linux", target_env = "gnu"))]
mod glibc {
    /// Allocations above this size are mapped on their own (a frame of a
    /// big file, not a relay chunk).
    const MMAP_ABOVE: usize = 4 << 20;

    /// Free memory the heap keeps before it gives any back to the kernel.
    const KEPT_FREE: usize = 32 << 20;

    pub fn fix_thresholds() {
        // SAFETY: mallopt only sets allocator parameters; it is called
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_ABOVE as libc::c_int);
            libc::mallopt(libc::M_TRIM_THRESHOLD, KEPT_FREE as libc::c_int);
        }
    }
}

/// A reusable read buffer of a fixed capacity.
pub struct Chunks {
    buf: Vec<u8>,
    size: usize,
}

impl Chunks {
    pub fn new(size: usize) -> Self {
        Self {
            buf: Vec::with_capacity(size),
            size,
        }
    }

    /// The empty buffer to read into (its spare capacity is `size` bytes):
    /// `AsyncReadExt::read_buf` fills it.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        self.buf.clear();
        &mut self.buf
    }

    /// What the last read put in the buffer, as a payload.
    pub fn take(&mut self) -> Vec<u8> {
        if self.buf.len() >= self.size / 2 {
            std::mem::replace(&mut self.buf, Vec::with_capacity(self.size))
        } else {
            let small = self.buf.as_slice().to_vec();
            self.buf.clear();
            small
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_reads_are_copied_out_and_large_ones_handed_over() {
        let mut chunks = Chunks::new(64);
        chunks.buffer().extend_from_slice(b"abc");
        let small = chunks.take();
        assert_eq!(small, b"abc");
        assert_eq!(small.capacity(), 3, "a small payload pins no large buffer");
        assert!(chunks.buffer().capacity() >= 64, "the buffer is kept");

        chunks.buffer().extend_from_slice(&[7; 40]);
        let ptr = chunks.buf.as_ptr();
        let large = chunks.take();
        assert_eq!(large, [7; 40]);
        assert_eq!(large.as_ptr(), ptr, "handed over, not copied");
        assert!(chunks.buffer().is_empty());
        assert!(
            chunks.buffer().capacity() >= 64,
            "a fresh buffer took its place"
        );
    }
}
