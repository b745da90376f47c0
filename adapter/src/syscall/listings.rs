//! Remote directories opened by a program on the syscall path. The
//! listing (`ReadDir`) is laid out as a local directory of empty entries
//! of the same names and types, which the program gets open: `getdents64`
//! and `fstat` on it stay in the kernel. Paths under it (an `openat` with
//! the directory's fd, a path read back from `/proc/self/fd`) are mapped
//! back to the remote directory before they are routed.
//!
//! The directories live under one private root per supervisor, removed
//! when it ends.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mirrord_protocol::DirEntry;

pub struct Listings {
    root: PathBuf,
    /// Local directory → the remote one it stands for.
    made: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Listings {
    pub fn new() -> Listings {
        let unique = format!(
            "mirrord-listings-{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        Listings {
            root: std::env::temp_dir().join(unique),
            made: Mutex::new(Vec::new()),
        }
    }

    /// Lays out `entries` of the remote directory `remote` and opens it.
    pub fn open(&self, remote: &[u8], entries: &[DirEntry]) -> io::Result<OwnedFd> {
        use std::os::unix::ffi::OsStrExt;
        let mut made = self.made.lock().map_err(|_| io::Error::other("poisoned"))?;
        let dir = self.root.join(made.len().to_string());
        // Private: the listing is the target's, not for other local users.
        std::fs::create_dir_all(&self.root)?;
        std::fs::set_permissions(
            &self.root,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        std::fs::create_dir_all(&dir)?;
        for entry in entries {
            let name = &entry.name;
            if name.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
                continue;
            }
            let path = dir.join(std::ffi::OsStr::from_bytes(name));
            let made = match entry.kind {
                libc::DT_DIR => std::fs::create_dir(&path),
                libc::DT_LNK => std::os::unix::fs::symlink(".", &path),
                _ => std::fs::File::create(&path).map(drop),
            };
            if let Err(e) = made {
                tracing::debug!(path = %path.display(), "cannot lay out a remote entry: {e}");
            }
        }
        made.push((dir.as_os_str().as_bytes().to_vec(), remote.to_vec()));
        let file = std::fs::File::open(&dir)?;
        Ok(OwnedFd::from(file))
    }

    /// `path` (absolute, normalised) with a laid-out directory replaced by
    /// the remote one it stands for; unchanged otherwise.
    pub fn to_remote(&self, path: Vec<u8>) -> Vec<u8> {
        let Ok(made) = self.made.lock() else {
            return path;
        };
        for (local, remote) in made.iter() {
            if let Some(rest) = path.strip_prefix(local.as_slice()) {
                if rest.is_empty() || rest.starts_with(b"/") {
                    let mut mapped = remote.clone();
                    mapped.extend_from_slice(rest);
                    return mapped;
                }
            }
        }
        path
    }

    fn root(&self) -> &Path {
        &self.root
    }

    /// Removes every laid-out directory (the programs' fds to them stay
    /// valid, as for any deleted directory).
    pub fn clear(&self) {
        let _ = std::fs::remove_dir_all(self.root());
    }
}

impl Drop for Listings {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_is_laid_out_mapped_back_and_removed() {
        let listings = Listings::new();
        let entries = [
            DirEntry {
                name: b"file.txt".to_vec(),
                ino: 1,
                kind: libc::DT_REG,
            },
            DirEntry {
                name: b"sub".to_vec(),
                ino: 2,
                kind: libc::DT_DIR,
            },
            DirEntry {
                name: b"../escape".to_vec(),
                ino: 3,
                kind: libc::DT_REG,
            },
        ];
        let fd = listings.open(b"/app/config", &entries).unwrap();
        let local = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
        .unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&local)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["file.txt", "sub"]);
        assert!(local.join("sub").is_dir());
        use std::os::unix::ffi::OsStrExt;
        let under = [local.as_os_str().as_bytes(), b"/file.txt"].concat();
        assert_eq!(listings.to_remote(under), b"/app/config/file.txt");
        assert_eq!(listings.to_remote(b"/etc/hosts".to_vec()), b"/etc/hosts");
        // A sibling whose name only starts the same is not mapped.
        let sibling = [local.as_os_str().as_bytes(), b"0/x"].concat();
        assert_eq!(listings.to_remote(sibling.clone()), sibling);
        let root = listings.root().to_owned();
        drop(listings);
        assert!(!root.exists());
    }
}
