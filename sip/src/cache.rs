//! The per-user cache of patched copies.
//!
//! Layout: `ROOT/<path key>/<content key>/<original file name>`, where the
//! path key hashes the original's resolved path and the content key hashes
//! [`FORMAT`], the original's bytes and whatever else the copy depends on
//! (the interpreter of a script, the layer's architectures). The copy keeps
//! the original's file name, so `argv[0]`-sensitive programs see the same
//! name.
//!
//! Concurrency: a copy is written to a temporary file beside its final name
//! and renamed onto it, so a reader sees no copy or a whole one, and two
//! sessions writing the same entry at once both succeed (the copies are
//! identical; the last rename wins). After writing, the other content keys
//! of the same path (stale copies of an older version of the original) are
//! removed; a session still running a stale copy keeps its open inode.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::Error;

/// Changes whenever the patcher writes different bytes for the same input.
pub const FORMAT: &str = "mirrord-sip-1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    pub root: PathBuf,
}

/// Where an entry is, and whether it was there already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub reused: bool,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// The copy of `original` (its resolved path) for `key_parts` (the
    /// original's bytes first), written by `make` when it is not cached.
    pub fn get_or_insert(
        &self,
        original: &Path,
        key_parts: &[&[u8]],
        make: impl FnOnce() -> Result<Vec<u8>, Error>,
    ) -> Result<Entry, Error> {
        let path_dir = self
            .root
            .join(hex16(&[original.as_os_str().as_encoded_bytes()]));
        let mut parts = vec![FORMAT.as_bytes()];
        parts.extend_from_slice(key_parts);
        let content_key = hex16(&parts);
        let name = original
            .file_name()
            .map_or_else(|| "program".into(), |n| n.to_owned());
        let entry_dir = path_dir.join(&content_key);
        let path = entry_dir.join(&name);
        if path.is_file() {
            return Ok(Entry { path, reused: true });
        }
        let bytes = make()?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        fs::create_dir_all(&entry_dir).map_err(io(&entry_dir))?;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let tmp = entry_dir.join(format!(
            ".{}.tmp.{}.{}",
            name.to_string_lossy(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o755)
                .open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(source) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::Io { path, source });
        }
        self.remove_stale(&path_dir, &content_key);
        Ok(Entry {
            path,
            reused: false,
        })
    }

    /// Removes the whole cache; a missing cache is not an error.
    pub fn clean(&self) -> Result<(), Error> {
        match fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
                path: self.root.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Best effort: another session may be removing the same entries.
    fn remove_stale(&self, path_dir: &Path, keep: &str) {
        let Ok(entries) = fs::read_dir(path_dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name() != keep {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// 16 hex digits of the SHA-256 of `parts`, each length-prefixed.
fn hex16(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn hit_stale_and_clean() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        let original = Path::new("/usr/bin/tool");
        let first = cache
            .get_or_insert(original, &[b"v1"], || Ok(b"copy1".to_vec()))
            .unwrap();
        assert!(!first.reused);
        assert_eq!(first.path.file_name().unwrap(), "tool");
        assert_eq!(fs::read(&first.path).unwrap(), b"copy1");
        let again = cache
            .get_or_insert(original, &[b"v1"], || panic!("must be reused"))
            .unwrap();
        assert_eq!(
            again,
            Entry {
                path: first.path.clone(),
                reused: true
            }
        );
        let newer = cache
            .get_or_insert(original, &[b"v2"], || Ok(b"copy2".to_vec()))
            .unwrap();
        assert_ne!(newer.path, first.path);
        assert!(!first.path.exists(), "the stale copy is gone");
        assert_eq!(fs::read(&newer.path).unwrap(), b"copy2");
        cache.clean().unwrap();
        assert!(!cache.root.exists());
        cache.clean().unwrap();
    }

    #[test]
    fn concurrent_writers_agree() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(Cache::new(dir.path()));
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (cache, barrier) = (cache.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    cache
                        .get_or_insert(Path::new("/bin/sh"), &[b"same"], || Ok(vec![7u8; 1 << 20]))
                        .unwrap()
                        .path
                })
            })
            .collect();
        let paths: Vec<PathBuf> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(paths.iter().all(|p| *p == paths[0]));
        assert_eq!(fs::read(&paths[0]).unwrap(), vec![7u8; 1 << 20]);
        let leftovers: Vec<_> = fs::read_dir(paths[0].parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            leftovers,
            vec![std::ffi::OsString::from("sh")],
            "no temporary files left"
        );
    }
}
