//! Which interception path a program gets: its executable is read (the
//! ELF program and section headers only) and `feature.interception`
//! decides.
//!
//! Go binaries make raw syscalls even when dynamically linked (cgo), and a
//! static binary (no `PT_INTERP`) never runs the dynamic loader that
//! `LD_PRELOAD` needs: both get the syscall path under `auto`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use mirrord_config::Interception;

/// What an executable is, as far as interception cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executable {
    /// A Go program (it has a `.go.buildinfo` section); `dynamic` when it
    /// has an ELF interpreter (cgo, `-linkmode external`).
    Go { dynamic: bool },
    /// An ELF executable without an interpreter (`gcc -static`, musl, Zig).
    Static,
    /// An ELF executable run by the dynamic loader.
    Dynamic,
    /// Not an ELF file we read (a script, a 32-bit or big-endian binary):
    /// left to the layer.
    Other,
}

/// How the program's calls are intercepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Layer,
    Syscall,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("cannot find `{0}` in PATH")]
    NotFound(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The path `mode` gives to `exe`.
pub fn choose(mode: Interception, exe: Executable) -> Route {
    match mode {
        Interception::Layer => Route::Layer,
        Interception::Syscall => Route::Syscall,
        Interception::Auto => match exe {
            Executable::Go { .. } | Executable::Static => Route::Syscall,
            Executable::Dynamic | Executable::Other => Route::Layer,
        },
    }
}

/// Finds `program` as `execvp` would: a name with a `/` is used as is,
/// anything else is looked up in `path` (the program's `PATH`).
pub fn find_program(program: &str, path: Option<&std::ffi::OsStr>) -> Result<PathBuf, DetectError> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = path.unwrap_or(std::ffi::OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| DetectError::NotFound(program.to_owned()))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Reads the headers of the executable at `path`.
pub fn inspect(path: &Path) -> Result<Executable, DetectError> {
    let read_err = |source| DetectError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    Ok(Elf { file: &file }.classify())
}

/// Little-endian ELF64 fields, read at their offsets. Any short read or
/// out-of-range offset makes the file `Other`.
struct Elf<'a> {
    file: &'a File,
}

const PT_INTERP: u32 = 3;
const GO_BUILDINFO: &[u8] = b".go.buildinfo";

impl Elf<'_> {
    fn classify(&self) -> Executable {
        self.try_classify().unwrap_or(Executable::Other)
    }

    fn try_classify(&self) -> Option<Executable> {
        let ident = self.bytes(0, 16)?;
        // ELF magic, 64-bit class, little-endian data.
        if ident[..4] != *b"\x7fELF" || ident[4] != 2 || ident[5] != 1 {
            return None;
        }
        let phoff = self.u64(0x20)?;
        let shoff = self.u64(0x28)?;
        let phentsize = u64::from(self.u16(0x36)?);
        let phnum = u64::from(self.u16(0x38)?);
        let shentsize = u64::from(self.u16(0x3a)?);
        let shnum = u64::from(self.u16(0x3c)?);
        let shstrndx = u64::from(self.u16(0x3e)?);
        let dynamic =
            (0..phnum.min(256)).any(|i| self.u32(phoff + i * phentsize) == Some(PT_INTERP));
        if self.has_section(shoff, shentsize, shnum, shstrndx, GO_BUILDINFO) {
            return Some(Executable::Go { dynamic });
        }
        Some(if dynamic {
            Executable::Dynamic
        } else {
            Executable::Static
        })
    }

    fn has_section(&self, shoff: u64, entsize: u64, num: u64, strndx: u64, name: &[u8]) -> bool {
        if shoff == 0 || strndx >= num {
            return false;
        }
        // The section-name string table: its file offset and size.
        let Some(strtab) = self.u64(shoff + strndx * entsize + 0x18) else {
            return false;
        };
        (0..num.min(4096)).any(|i| {
            self.u32(shoff + i * entsize)
                .and_then(|off| self.bytes(strtab + u64::from(off), name.len() + 1))
                .is_some_and(|found| found[..name.len()] == *name && found[name.len()] == 0)
        })
    }

    fn bytes(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    }

    fn u16(&self, offset: u64) -> Option<u16> {
        let b = self.bytes(offset, 2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&self, offset: u64) -> Option<u32> {
        let b = self.bytes(offset, 4)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }

    fn u64(&self, offset: u64) -> Option<u64> {
        let b = self.bytes(offset, 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_system_binary_gets_the_layer() {
        let sh = find_program("sh", None).unwrap();
        let exe = inspect(&std::fs::canonicalize(sh).unwrap()).unwrap();
        assert_eq!(exe, Executable::Dynamic);
        assert_eq!(choose(Interception::Auto, exe), Route::Layer);
        assert_eq!(choose(Interception::Syscall, exe), Route::Syscall);
    }

    #[test]
    fn scripts_and_garbage_are_other() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(inspect(&script).unwrap(), Executable::Other);
        let truncated = dir.path().join("t");
        std::fs::write(&truncated, b"\x7fELF\x02\x01\x01").unwrap();
        assert_eq!(inspect(&truncated).unwrap(), Executable::Other);
        assert_eq!(choose(Interception::Auto, Executable::Other), Route::Layer);
        assert!(matches!(
            find_program("no-such-program-here", None),
            Err(DetectError::NotFound(_))
        ));
    }

    #[test]
    fn auto_sends_go_and_static_binaries_to_the_syscall_path() {
        for exe in [
            Executable::Go { dynamic: true },
            Executable::Go { dynamic: false },
            Executable::Static,
        ] {
            assert_eq!(choose(Interception::Auto, exe), Route::Syscall);
            assert_eq!(choose(Interception::Layer, exe), Route::Layer);
        }
    }

    /// Real binaries from the toolchains, when they are installed.
    #[test]
    fn compiled_programs_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("main.c");
        std::fs::write(&c, "int main(void) { return 0; }\n").unwrap();
        let out = dir.path().join("static");
        let built = std::process::Command::new("gcc")
            .args(["-static", "-o"])
            .arg(&out)
            .arg(&c)
            .status()
            .is_ok_and(|s| s.success());
        if built {
            assert_eq!(inspect(&out).unwrap(), Executable::Static);
        }
        let go = dir.path().join("main.go");
        std::fs::write(&go, "package main\nfunc main() {}\n").unwrap();
        let gobin = dir.path().join("gobin");
        let built = std::process::Command::new("go")
            .args(["build", "-o"])
            .arg(&gobin)
            .arg(&go)
            .env("GOCACHE", dir.path().join("cache"))
            .env("GO111MODULE", "off")
            .env("CGO_ENABLED", "0")
            .status()
            .is_ok_and(|s| s.success());
        if built {
            assert_eq!(inspect(&gobin).unwrap(), Executable::Go { dynamic: false });
        }
    }
}
