//! A bitmap over fd numbers saying which fds the layer manages, so that a
//! hook on an unmanaged fd (the common, local case) costs one atomic load.

use std::sync::atomic::{AtomicU8, Ordering};

/// The fd is a placeholder for a remote file.
pub const FILE: u8 = 1;
/// The fd is a socket the layer tracks (remote connection, UDP relay...).
pub const SOCKET: u8 = 2;
/// The fd is a remote directory stream's placeholder.
pub const DIR: u8 = 4;

/// fds at or above this are tracked as "maybe" (every bit set): the domain
/// tables have the truth. Programs rarely go this high.
const TRACKED: usize = 1 << 16;

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU8 = AtomicU8::new(0);
static BITS: [AtomicU8; TRACKED] = [ZERO; TRACKED];

/// The bits set for `fd` (all bits for fds beyond the bitmap).
#[inline]
pub fn get(fd: i32) -> u8 {
    match usize::try_from(fd) {
        Ok(i) if i < TRACKED => BITS[i].load(Ordering::Acquire),
        Ok(_) => u8::MAX,
        Err(_) => 0,
    }
}

#[inline]
pub fn has(fd: i32, bit: u8) -> bool {
    get(fd) & bit != 0
}

pub fn set(fd: i32, bit: u8) {
    if let Ok(i) = usize::try_from(fd) {
        if i < TRACKED {
            BITS[i].fetch_or(bit, Ordering::AcqRel);
        }
    }
}

pub fn clear(fd: i32, bit: u8) {
    if let Ok(i) = usize::try_from(fd) {
        if i < TRACKED {
            BITS[i].fetch_and(!bit, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_independent_per_fd_and_kind() {
        set(10, FILE);
        set(10, SOCKET);
        clear(10, FILE);
        assert!(!has(10, FILE));
        assert!(has(10, SOCKET));
        assert_eq!(get(11), 0);
        assert_eq!(get(-1), 0);
        assert_eq!(get(1 << 20), u8::MAX);
        clear(10, SOCKET);
    }
}
