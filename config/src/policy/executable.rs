//! What an executable is, as far as interception cares: its ELF program
//! and section headers only are read. Shared by `mirrord exec` (which path
//! a program gets) and the layer (which stays inert in a Go program on the
//! syscall path, where its hooks would never fire).
//!
//! Go binaries make raw syscalls even when dynamically linked (cgo), and a
//! static binary (no `PT_INTERP`) never runs the dynamic loader that
//! `LD_PRELOAD` needs.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Set (to `1`) by `mirrord exec` in the environment of a program on the
/// syscall path, next to the layer's variables, and kept for exec'd
/// children by the layer: a dynamic child loads the layer and is served
/// by it, but in a Go program (whose raw syscalls no hook sees) the layer
/// stays inert and leaves it to the seccomp supervisor.
pub const ENV_SYSCALL_PATH: &str = "MIRRORD_SYSCALL_PATH";

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

/// Reads the headers of the executable at `path`; a file that is not a
/// 64-bit little-endian ELF executable (or is cut short) is `Other`.
pub fn inspect(path: &Path) -> std::io::Result<Executable> {
    let file = File::open(path)?;
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
    fn scripts_and_garbage_are_other() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(inspect(&script).unwrap(), Executable::Other);
        let truncated = dir.path().join("t");
        std::fs::write(&truncated, b"\x7fELF\x02\x01\x01").unwrap();
        assert_eq!(inspect(&truncated).unwrap(), Executable::Other);
        assert_eq!(inspect(Path::new("/bin/sh")).unwrap(), Executable::Dynamic);
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
