//! A remote [`FileStat`] as the bytes of `struct stat` and `struct statx`,
//! written into the stopped process's buffer.

use mirrord_protocol::FileStat;

/// `struct stat` of this architecture.
pub fn stat_bytes(s: &FileStat) -> Vec<u8> {
    // SAFETY: all-zero is a valid `struct stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    st.st_dev = s.dev;
    st.st_ino = s.ino;
    st.st_mode = s.mode;
    st.st_nlink = s.nlink as _;
    st.st_uid = s.uid;
    st.st_gid = s.gid;
    st.st_rdev = s.rdev;
    st.st_size = s.size as i64;
    st.st_blksize = s.blksize as _;
    st.st_blocks = s.blocks as i64;
    st.st_atime = s.atime.secs;
    st.st_atime_nsec = i64::from(s.atime.nanos);
    st.st_mtime = s.mtime.secs;
    st.st_mtime_nsec = i64::from(s.mtime.nanos);
    st.st_ctime = s.ctime.secs;
    st.st_ctime_nsec = i64::from(s.ctime.nanos);
    as_bytes(&st)
}

/// `struct statx` with the basic fields (`STATX_BASIC_STATS`).
pub fn statx_bytes(s: &FileStat) -> Vec<u8> {
    // SAFETY: all-zero is a valid `struct statx`.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    st.stx_mask = libc::STATX_BASIC_STATS;
    st.stx_blksize = s.blksize as u32;
    st.stx_nlink = s.nlink as u32;
    st.stx_uid = s.uid;
    st.stx_gid = s.gid;
    st.stx_mode = s.mode as u16;
    st.stx_ino = s.ino;
    st.stx_size = s.size;
    st.stx_blocks = s.blocks;
    for (field, t) in [
        (&mut st.stx_atime, s.atime),
        (&mut st.stx_mtime, s.mtime),
        (&mut st.stx_ctime, s.ctime),
    ] {
        field.tv_sec = t.secs;
        field.tv_nsec = t.nanos;
    }
    st.stx_rdev_major = libc::major(s.rdev);
    st.stx_rdev_minor = libc::minor(s.rdev);
    st.stx_dev_major = libc::major(s.dev);
    st.stx_dev_minor = libc::minor(s.dev);
    as_bytes(&st)
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
