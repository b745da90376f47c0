//! A remote [`FileStat`] as the bytes of `struct stat` and `struct statx`,
//! written into the stopped process's buffer.

use mirrord_protocol::FileStat;

/// `struct stat` of this architecture.
pub fn stat_bytes(s: &FileStat) -> Vec<u8> {
    as_bytes(&mirrord_protocol::stat::to_stat(s))
}

/// `struct statx` with the basic fields (`STATX_BASIC_STATS`).
pub fn statx_bytes(s: &FileStat) -> Vec<u8> {
    as_bytes(&mirrord_protocol::stat::to_statx(s))
}

fn as_bytes<T>(value: &T) -> Vec<u8> {
    // SAFETY: `value` is a plain C struct, fully initialised (zeroed first).
    unsafe {
        std::slice::from_raw_parts((value as *const T).cast::<u8>(), std::mem::size_of::<T>())
    }
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_land_where_libc_reads_them() {
        let s = FileStat {
            ino: 42,
            mode: libc::S_IFREG | 0o644,
            size: 1234,
            ..FileStat::default()
        };
        let bytes = stat_bytes(&s);
        assert_eq!(bytes.len(), std::mem::size_of::<libc::stat>());
        // SAFETY: the bytes are a `struct stat`.
        let back: libc::stat = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        assert_eq!(
            (back.st_ino, back.st_mode, back.st_size),
            (42, s.mode, 1234)
        );
        let bytes = statx_bytes(&s);
        // SAFETY: the bytes are a `struct statx`.
        let back: libc::statx = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        assert_eq!(back.stx_size, 1234);
        assert_eq!(u32::from(back.stx_mode), s.mode);
    }
}
