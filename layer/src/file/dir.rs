//! Remote directory streams: the `DIR*` we hand out, the `dirent64`
//! records `readdir` and `getdents64` return, and the operations behind
//! the directory hooks.
//!
//! A `DIR*` is opaque to the program, so ours is a [`DirStream`] we
//! allocate; the set of live streams in the table tells ours from glibc's.
//! Entries come from one `ReadDir`, with `.` and `..` added in front as the
//! kernel does.

use std::ffi::CStr;
use std::os::raw::c_int;

use mirrord_protocol::{DirEntry, Request, Response};

use super::ops::{dir_placeholder, not_found, route_at, Target};
use super::{sys, with_table};
use crate::error::HookError;
use crate::fdbits;

/// `struct dirent` and `struct dirent64` are one layout on the 64-bit ABIs
/// the layer supports.
const _: () = assert!(std::mem::size_of::<libc::dirent>() == std::mem::size_of::<libc::dirent64>());

/// The `DIR*` of a remote directory.
pub struct DirStream {
    /// The placeholder fd (`dirfd`).
    pub fd: i32,
    /// The record the last `readdir` returned; valid until the next call
    /// on this stream, as POSIX allows.
    pub entry: libc::dirent64,
}

impl DirStream {
    pub fn new(fd: i32) -> Self {
        DirStream {
            fd,
            // SAFETY: plain data; all-zero is valid.
            entry: unsafe { std::mem::zeroed() },
        }
    }
}

/// The entry at `pos` (`.`, `..`, then the remote entries) as
/// `(name, ino, d_type)`.
pub fn entry_at(entries: &[DirEntry], pos: usize) -> Option<(&[u8], u64, u8)> {
    match pos {
        0 => Some((b".", 1, libc::DT_DIR)),
        1 => Some((b"..", 1, libc::DT_DIR)),
        _ => entries
            .get(pos - 2)
            .map(|e| (e.name.as_slice(), e.ino, e.kind)),
    }
}

/// Fills a `dirent64` for the entry at `pos`; `d_off` is the position of
/// the next entry (what `telldir` then returns).
pub fn fill_dirent(out: &mut libc::dirent64, name: &[u8], ino: u64, kind: u8, pos: usize) {
    let max = out.d_name.len() - 1;
    let len = name.len().min(max);
    out.d_ino = ino;
    out.d_off = (pos + 1) as i64;
    out.d_type = kind;
    for (dst, src) in out.d_name.iter_mut().zip(&name[..len]) {
        *dst = *src as libc::c_char;
    }
    out.d_name[len] = 0;
    out.d_reclen = record_len(len) as u16;
}

/// The size of a `linux_dirent64` record holding a name of `name_len`
/// bytes: the fixed header, the name and its NUL, rounded up to 8.
pub fn record_len(name_len: usize) -> usize {
    const HEADER: usize = 8 + 8 + 2 + 1;
    (HEADER + name_len + 1).div_ceil(8) * 8
}

/// Packs entries from `pos` into `buf` as `getdents64` does; returns the
/// bytes written and the new position. `Err(EINVAL)` when not even one
/// record fits.
pub fn pack_getdents(
    entries: &[DirEntry],
    mut pos: usize,
    buf: &mut [u8],
) -> Result<(usize, usize), i32> {
    let mut used = 0;
    while let Some((name, ino, kind)) = entry_at(entries, pos) {
        let name = &name[..name.len().min(255)];
        let len = record_len(name.len());
        if used + len > buf.len() {
            if used == 0 {
                return Err(libc::EINVAL);
            }
            break;
        }
        let rec = &mut buf[used..used + len];
        rec.fill(0);
        rec[0..8].copy_from_slice(&ino.to_ne_bytes());
        rec[8..16].copy_from_slice(&((pos + 1) as i64).to_ne_bytes());
        rec[16..18].copy_from_slice(&(len as u16).to_ne_bytes());
        rec[18] = kind;
        rec[19..19 + name.len()].copy_from_slice(name);
        used += len;
        pos += 1;
    }
    Ok((used, pos))
}

// ---------------------------------------------------------------------------
// the operations behind the directory hooks

/// `opendir` of a remote path: one `ReadDir`, a placeholder fd, a stream.
pub fn opendir(path: &CStr) -> Result<Option<*mut DirStream>, HookError> {
    match route_at(libc::AT_FDCWD, path, false)? {
        Target::Local => Ok(None),
        Target::NotFound => Err(not_found()),
        Target::Remote { path, .. } => {
            let entries = read_dir(path.as_bytes())?;
            let fd = dir_placeholder(path.as_bytes(), None, libc::O_CLOEXEC)?;
            with_table(|t| {
                if let Some(d) = t.get_mut(fd).and_then(|f| f.dir.as_mut()) {
                    d.entries = Some(entries);
                }
            });
            Ok(Some(new_stream(fd)))
        }
    }
}

/// One `scandir` entry: name, inode, `d_type`.
pub type ScanEntry = (Vec<u8>, u64, u8);

/// `scandir` of a remote path: every entry (`.` and `..` first), as
/// `(name, ino, d_type)`; `None` when the path is local.
pub fn scandir(path: &CStr) -> Result<Option<Vec<ScanEntry>>, HookError> {
    match route_at(libc::AT_FDCWD, path, false)? {
        Target::Local => Ok(None),
        Target::NotFound => Err(not_found()),
        Target::Remote { path, .. } => {
            let entries = read_dir(path.as_bytes())?;
            let all = (0..)
                .map_while(|pos| entry_at(&entries, pos).map(|(n, i, k)| (n.to_vec(), i, k)))
                .collect();
            Ok(Some(all))
        }
    }
}

/// `fdopendir` of a remote directory placeholder.
pub fn fdopendir(fd: c_int) -> Result<Option<*mut DirStream>, HookError> {
    if fdbits::get(fd) & (fdbits::DIR | fdbits::FILE) == 0 {
        return Ok(None);
    }
    match with_table(|t| t.get(fd).map(|f| f.dir.is_some())) {
        None => Ok(None),
        Some(false) => Err(HookError::BadArgument(libc::ENOTDIR)),
        Some(true) => Ok(Some(new_stream(fd))),
    }
}

fn new_stream(fd: c_int) -> *mut DirStream {
    let stream = Box::into_raw(Box::new(DirStream::new(fd)));
    with_table(|t| t.streams.insert(stream as usize));
    STREAMS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    stream
}

/// How many remote `DIR*` are open: zero keeps `readdir` on glibc's streams
/// at one atomic load.
pub static STREAMS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether `ptr` is one of our streams.
pub fn is_stream(ptr: usize) -> bool {
    STREAMS.load(std::sync::atomic::Ordering::Relaxed) != 0
        && with_table(|t| t.streams.contains(&ptr))
}

fn read_dir(path: &[u8]) -> Result<Vec<DirEntry>, HookError> {
    match crate::client::remote(Request::ReadDir {
        path: path.to_vec(),
    })? {
        Response::DirEntries(entries) => Ok(entries),
        _ => Err(HookError::UnexpectedResponse(
            "readdir answered without entries",
        )),
    }
}

/// Makes sure the directory's entries are loaded; returns false when `fd`
/// is not a remote directory.
fn load_entries(fd: c_int) -> Result<bool, HookError> {
    let need = with_table(
        |t| match t.get(fd).and_then(|f| f.dir.as_ref().map(|d| (d, f))) {
            Some((d, f)) => Ok(d.entries.is_none().then(|| f.path.clone())),
            None => Err(()),
        },
    );
    match need {
        Err(()) => Ok(false),
        Ok(None) => Ok(true),
        Ok(Some(path)) => {
            let entries = read_dir(&path)?;
            with_table(|t| {
                if let Some(d) = t.get_mut(fd).and_then(|f| f.dir.as_mut()) {
                    d.entries.get_or_insert(entries);
                }
            });
            Ok(true)
        }
    }
}

/// `readdir`: fills the stream's record with the next entry; `false` at
/// the end.
///
/// # Safety
/// `stream` must be one of ours (checked with [`is_stream`]).
pub unsafe fn readdir(stream: *mut DirStream) -> Result<bool, HookError> {
    // SAFETY: ours, per the contract; only this call touches it now.
    let stream = unsafe { &mut *stream };
    if !load_entries(stream.fd)? {
        return Err(HookError::BadArgument(libc::EBADF));
    }
    Ok(with_table(|t| {
        let Some(d) = t.get_mut(stream.fd).and_then(|f| f.dir.as_mut()) else {
            return false;
        };
        let entries = d.entries.as_deref().unwrap_or_default();
        match entry_at(entries, d.pos) {
            Some((name, ino, kind)) => {
                fill_dirent(&mut stream.entry, name, ino, kind, d.pos);
                d.pos += 1;
                true
            }
            None => false,
        }
    }))
}

/// `getdents64` on a directory placeholder.
pub fn getdents(fd: c_int, buf: &mut [u8]) -> Result<Option<isize>, HookError> {
    if fdbits::get(fd) & fdbits::DIR == 0 || !load_entries(fd)? {
        return Ok(None);
    }
    with_table(|t| {
        let Some(d) = t.get_mut(fd).and_then(|f| f.dir.as_mut()) else {
            return Ok(None);
        };
        let entries = d.entries.as_deref().unwrap_or_default();
        let (used, pos) = pack_getdents(entries, d.pos, buf).map_err(HookError::BadArgument)?;
        d.pos = pos;
        Ok(Some(used as isize))
    })
}

/// `rewinddir` (entries are fetched again, as a real rewind rereads),
/// `seekdir` and `telldir`.
pub fn dir_position(fd: c_int, seek: Option<usize>) -> Option<usize> {
    with_table(|t| {
        let d = t.get_mut(fd)?.dir.as_mut()?;
        if let Some(pos) = seek {
            if pos == 0 {
                d.entries = None;
            }
            d.pos = pos;
        }
        Some(d.pos)
    })
}

/// `closedir` of one of our streams: frees it and closes its fd.
///
/// # Safety
/// `stream` must be one of ours, and not used again.
pub unsafe fn closedir(stream: *mut DirStream) -> Result<(), HookError> {
    with_table(|t| t.streams.remove(&(stream as usize)));
    STREAMS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: allocated by `new_stream`, now removed from the set.
    let stream = unsafe { Box::from_raw(stream) };
    let result = super::on_close(stream.fd);
    sys::close(stream.fd);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<DirEntry> {
        vec![
            DirEntry {
                name: b"a.txt".to_vec(),
                ino: 11,
                kind: libc::DT_REG,
            },
            DirEntry {
                name: b"sub".to_vec(),
                ino: 12,
                kind: libc::DT_DIR,
            },
        ]
    }

    fn name(d: &libc::dirent64) -> Vec<u8> {
        d.d_name
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect()
    }

    #[test]
    fn dot_entries_come_first() {
        let e = entries();
        let names: Vec<_> = (0..5)
            .map(|p| entry_at(&e, p).map(|x| x.0.to_vec()))
            .collect();
        assert_eq!(
            names,
            [
                Some(b".".to_vec()),
                Some(b"..".to_vec()),
                Some(b"a.txt".to_vec()),
                Some(b"sub".to_vec()),
                None
            ]
        );
    }

    #[test]
    fn dirent_is_filled_and_terminated() {
        let mut s = DirStream::new(3);
        fill_dirent(&mut s.entry, b"a.txt", 11, libc::DT_REG, 2);
        assert_eq!(name(&s.entry), b"a.txt");
        assert_eq!(
            (s.entry.d_ino, s.entry.d_off, s.entry.d_type),
            (11, 3, libc::DT_REG)
        );
        assert_eq!(s.entry.d_reclen, 32);
        let long = vec![b'x'; 400];
        fill_dirent(&mut s.entry, &long, 1, 0, 0);
        assert_eq!(name(&s.entry).len(), 255);
    }

    #[test]
    fn getdents_records_parse_back() {
        let e = entries();
        let mut buf = [0u8; 256];
        let (used, pos) = pack_getdents(&e, 0, &mut buf).unwrap();
        assert_eq!(pos, 4);
        let mut off = 0;
        let mut names = vec![];
        while off < used {
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            assert_eq!(reclen % 8, 0);
            let name: Vec<u8> = buf[off + 19..]
                .iter()
                .take_while(|b| **b != 0)
                .copied()
                .collect();
            names.push(name);
            off += reclen;
        }
        assert_eq!(
            names,
            [
                b".".to_vec(),
                b"..".to_vec(),
                b"a.txt".to_vec(),
                b"sub".to_vec()
            ]
        );
    }

    #[test]
    fn getdents_stops_when_full_and_resumes() {
        let e = entries();
        let mut buf = [0u8; 50];
        let (used, pos) = pack_getdents(&e, 0, &mut buf).unwrap();
        assert_eq!((used, pos), (48, 2));
        assert_eq!(pack_getdents(&e, pos, &mut buf), Ok((32, 3)));
        assert_eq!(pack_getdents(&e, 3, &mut buf), Ok((24, 4)));
        assert_eq!(pack_getdents(&e, 4, &mut buf), Ok((0, 4)));
        assert_eq!(pack_getdents(&e, 0, &mut [0u8; 8]), Err(libc::EINVAL));
    }
}
