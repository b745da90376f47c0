//! A remote [`FileStat`] as the C structs a program reads (`struct stat`,
//! `struct statx`): filled the same way by the layer and by the syscall
//! path's supervisor.

use crate::FileStat;
#[cfg(target_os = "linux")]
use crate::Timestamp;

/// The remote stat as `struct stat`.
pub fn to_stat(s: &FileStat) -> libc::stat {
    // SAFETY: `stat` is plain data; all-zero is a valid value (and zeroes
    // the private padding fields we cannot name).
    let mut out: libc::stat = unsafe { std::mem::zeroed() };
    out.st_dev = s.dev as _;
    out.st_ino = s.ino as _;
    out.st_mode = s.mode as _;
    out.st_nlink = s.nlink as _;
    out.st_uid = s.uid;
    out.st_gid = s.gid;
    out.st_rdev = s.rdev as _;
    out.st_size = s.size as _;
    out.st_blksize = s.blksize as _;
    out.st_blocks = s.blocks as _;
    out.st_atime = s.atime.secs as _;
    out.st_atime_nsec = s.atime.nanos as _;
    out.st_mtime = s.mtime.secs as _;
    out.st_mtime_nsec = s.mtime.nanos as _;
    out.st_ctime = s.ctime.secs as _;
    out.st_ctime_nsec = s.ctime.nanos as _;
    out
}

/// The remote stat as `struct statx`, with the basic fields valid (Linux
/// has `statx`; macOS does not).
#[cfg(target_os = "linux")]
pub fn to_statx(s: &FileStat) -> libc::statx {
    // SAFETY: as above.
    let mut out: libc::statx = unsafe { std::mem::zeroed() };
    out.stx_mask = libc::STATX_BASIC_STATS;
    out.stx_blksize = s.blksize as u32;
    out.stx_nlink = s.nlink as u32;
    out.stx_uid = s.uid;
    out.stx_gid = s.gid;
    out.stx_mode = s.mode as u16;
    out.stx_ino = s.ino;
    out.stx_size = s.size;
    out.stx_blocks = s.blocks;
    out.stx_atime = timestamp(s.atime);
    out.stx_mtime = timestamp(s.mtime);
    out.stx_ctime = timestamp(s.ctime);
    out.stx_rdev_major = libc::major(s.rdev as libc::dev_t);
    out.stx_rdev_minor = libc::minor(s.rdev as libc::dev_t);
    out.stx_dev_major = libc::major(s.dev as libc::dev_t);
    out.stx_dev_minor = libc::minor(s.dev as libc::dev_t);
    out
}

#[cfg(target_os = "linux")]
fn timestamp(t: Timestamp) -> libc::statx_timestamp {
    // SAFETY: plain data with a private padding field.
    let mut out: libc::statx_timestamp = unsafe { std::mem::zeroed() };
    out.tv_sec = t.secs;
    out.tv_nsec = t.nanos;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FileStat {
        FileStat {
            dev: libc::makedev(8, 1) as u64,
            ino: 42,
            mode: libc::S_IFREG | 0o640,
            nlink: 2,
            uid: 1000,
            gid: 100,
            rdev: libc::makedev(4, 7) as u64,
            size: 12345,
            blksize: 4096,
            blocks: 32,
            atime: Timestamp { secs: 1, nanos: 2 },
            mtime: Timestamp { secs: 3, nanos: 4 },
            ctime: Timestamp { secs: -5, nanos: 6 },
        }
    }

    #[test]
    fn stat_carries_every_field() {
        let s = to_stat(&sample());
        assert_eq!(
            (s.st_ino, s.st_mode, s.st_nlink, s.st_uid, s.st_gid),
            (42, libc::S_IFREG | 0o640, 2, 1000, 100)
        );
        assert_eq!((s.st_size, s.st_blksize, s.st_blocks), (12345, 4096, 32));
        assert_eq!(s.st_dev, libc::makedev(8, 1));
        assert_eq!(s.st_rdev, libc::makedev(4, 7));
        assert_eq!((s.st_atime, s.st_atime_nsec), (1, 2));
        assert_eq!((s.st_mtime, s.st_mtime_nsec), (3, 4));
        assert_eq!((s.st_ctime, s.st_ctime_nsec), (-5, 6));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn statx_carries_every_basic_field() {
        let s = to_statx(&sample());
        assert_eq!(s.stx_mask, libc::STATX_BASIC_STATS);
        assert_eq!(s.stx_mode as u32, libc::S_IFREG | 0o640);
        assert_eq!((s.stx_ino, s.stx_size, s.stx_blocks), (42, 12345, 32));
        assert_eq!(
            (s.stx_uid, s.stx_gid, s.stx_nlink, s.stx_blksize),
            (1000, 100, 2, 4096)
        );
        assert_eq!((s.stx_dev_major, s.stx_dev_minor), (8, 1));
        assert_eq!((s.stx_rdev_major, s.stx_rdev_minor), (4, 7));
        assert_eq!((s.stx_mtime.tv_sec, s.stx_mtime.tv_nsec), (3, 4));
        assert_eq!((s.stx_ctime.tv_sec, s.stx_ctime.tv_nsec), (-5, 6));
    }
}
