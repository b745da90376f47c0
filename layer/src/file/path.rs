//! Absolute, lexically normalised paths in a fixed buffer: what the fs
//! policy routes on, built without allocating.
//!
//! `..` is resolved lexically (`/a/b/../c` is `/a/c`) before any symlink is
//! followed, the same choice `realpath -s` makes: the route must be decided
//! before we know on which machine the path lives.

use crate::error::HookError;

/// The longest path the layer routes (`PATH_MAX`, counting no NUL).
pub const MAX_PATH: usize = libc::PATH_MAX as usize;

/// An absolute path without `.`/`..` components, repeated or trailing `/`.
pub struct AbsPath {
    buf: [u8; MAX_PATH],
    len: usize,
}

impl AbsPath {
    /// `/`. Build one on the stack and fill it with [`AbsPath::set`]: an
    /// `AbsPath` is `PATH_MAX` bytes, and returning one by value (through
    /// `Result` and `?`) copies all of them each time, on every hooked call.
    pub fn root() -> Self {
        let mut buf = [0; MAX_PATH];
        buf[0] = b'/';
        AbsPath { buf, len: 1 }
    }

    /// Becomes `path` made absolute against `base` (itself absolute) and
    /// normalised. An absolute `path` ignores `base`.
    pub fn set(&mut self, base: &[u8], path: &[u8]) -> Result<(), HookError> {
        self.len = 1;
        if !path.starts_with(b"/") {
            self.push_all(base)?;
        }
        self.push_all(path)
    }

    /// [`AbsPath::set`] on a new path, for tests and cold paths.
    pub fn join(base: &[u8], path: &[u8]) -> Result<Box<Self>, HookError> {
        let mut out = Box::new(AbsPath::root());
        out.set(base, path)?;
        Ok(out)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push_all(&mut self, path: &[u8]) -> Result<(), HookError> {
        for part in path.split(|b| *b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => self.pop(),
                name => self.push(name)?,
            }
        }
        Ok(())
    }

    fn pop(&mut self) {
        let cut = self
            .as_bytes()
            .iter()
            .rposition(|b| *b == b'/')
            .unwrap_or(0);
        self.len = cut.max(1);
    }

    fn push(&mut self, name: &[u8]) -> Result<(), HookError> {
        let sep = usize::from(self.len > 1);
        let end = self.len + sep + name.len();
        if end > MAX_PATH {
            return Err(HookError::BadArgument(libc::ENAMETOOLONG));
        }
        if sep == 1 {
            self.buf[self.len] = b'/';
        }
        self.buf[self.len + sep..end].copy_from_slice(name);
        self.len = end;
        Ok(())
    }
}

/// The local working directory, into `buf`; `None` when it cannot be read
/// (deleted, too long): the caller then leaves the call to libc.
pub fn local_cwd(buf: &mut [u8; MAX_PATH]) -> Option<&[u8]> {
    // SAFETY: `buf` is valid for `MAX_PATH` bytes; getcwd NUL-terminates.
    let ptr = unsafe { libc::getcwd(buf.as_mut_ptr().cast(), MAX_PATH) };
    if ptr.is_null() {
        return None;
    }
    let len = buf.iter().position(|b| *b == 0)?;
    Some(&buf[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(base: &str, path: &str, want: &str) {
        let got = AbsPath::join(base.as_bytes(), path.as_bytes()).unwrap();
        assert_eq!(
            std::str::from_utf8(got.as_bytes()).unwrap(),
            want,
            "join({base:?}, {path:?})"
        );
    }

    #[test]
    fn normalises_lexically() {
        for (base, path, want) in [
            ("/", "/etc/hosts", "/etc/hosts"),
            ("/app", "data/x.txt", "/app/data/x.txt"),
            ("/app/", "./data//x.txt", "/app/data/x.txt"),
            ("/app/sub", "../x", "/app/x"),
            ("/", "../../x", "/x"),
            ("/a/b", "/c/./d/../e/", "/c/e"),
            ("/a", "..", "/"),
            ("/a", ".", "/a"),
            ("/a/b", "", "/a/b"),
            ("/", "/", "/"),
        ] {
            check(base, path, want);
        }
    }

    #[test]
    fn non_utf8_names_survive() {
        let got = AbsPath::join(b"/d", b"\xff\xfe/n").unwrap();
        assert_eq!(got.as_bytes(), b"/d/\xff\xfe/n");
    }

    #[test]
    fn too_long_is_enametoolong() {
        let long = "x/".repeat(MAX_PATH);
        let err = AbsPath::join(b"/", long.as_bytes()).err().unwrap();
        assert_eq!(err.errno(), libc::ENAMETOOLONG);
    }

    #[test]
    fn cwd_is_absolute() {
        let mut buf = [0; MAX_PATH];
        assert!(local_cwd(&mut buf).unwrap().starts_with(b"/"));
    }
}
