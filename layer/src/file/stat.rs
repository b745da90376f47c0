//! Filling the program's `struct stat` and `struct statx` from the target's
//! `FileStat` (the conversions live in `mirrord_protocol::stat`, shared
//! with the syscall path), and file-type checks.

/// `struct stat` and `struct stat64` are one layout on the 64-bit ABIs the
/// layer supports, so the `*64` hooks share these helpers.
const _: () = assert!(std::mem::size_of::<libc::stat>() == std::mem::size_of::<libc::stat64>());

pub use mirrord_protocol::stat::{to_stat, to_statx};

/// Whether `mode` is a regular file.
pub fn is_regular(mode: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFREG
}

/// Whether `mode` is a directory.
pub fn is_dir(mode: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFDIR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert!(is_regular(libc::S_IFREG | 0o644));
        assert!(!is_regular(libc::S_IFDIR | 0o755));
        assert!(is_dir(libc::S_IFDIR | 0o755));
    }
}
