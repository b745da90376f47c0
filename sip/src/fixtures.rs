//! A small Mach-O writer for tests (feature `test-support`): real macOS
//! binaries are not available on the Linux machines the tests run on, so
//! the tests build their own, shaped like what `ld64` and `codesign` write.
//!
//! A fixture is a 64-bit `MH_EXECUTE` with `__PAGEZERO`, a two-page
//! `__TEXT` (header and load commands in the first page, a `__text` section
//! filling part of the second), an optional `__RESTRICT,__restrict`
//! section, `LC_MAIN`, and `__LINKEDIT` with some bytes and, when signed,
//! the signature at its end. Signatures are written by
//! [`crate::codesign::build`] with the flags, runtime version, entitlements
//! and CMS blob a test asks for.

use crate::codesign::{self, SignOptions, CS_ADHOC, CS_LINKER_SIGNED};
use crate::macho::{
    Arch, LC_SEGMENT_64, MH_EXECUTE, MH_MAGIC_64, SECTION_SIZE, SEGMENT_COMMAND_SIZE,
};

const LC_MAIN: u32 = 0x8000_0028;
const VM_BASE: u64 = 0x1_0000_0000;

#[derive(Debug, Clone)]
pub struct Fixture {
    pub arch: Arch,
    pub signature: Option<SignOptions>,
    pub restrict_segment: bool,
    /// Bytes of the `__text` section (at most half a page).
    pub text: Vec<u8>,
    /// Bytes of `__LINKEDIT` before the signature.
    pub linkedit: Vec<u8>,
}

impl Fixture {
    /// A linker-signed (ad hoc) executable, as `ld` writes on Apple silicon.
    pub fn new(arch: Arch) -> Fixture {
        Fixture {
            arch,
            signature: Some(SignOptions {
                identifier: "fixture".into(),
                flags: CS_ADHOC | CS_LINKER_SIGNED,
                runtime: None,
                entitlements: None,
                cms: false,
            }),
            restrict_segment: false,
            text: (0..=255u8).cycle().take(1000).collect(),
            linkedit: b"symbols and strings of a fixture".repeat(7),
        }
    }

    pub fn unsigned(mut self) -> Fixture {
        self.signature = None;
        self
    }

    /// Signed as by `codesign` with a real identity: `flags`, a CMS blob.
    pub fn signed(mut self, flags: u32) -> Fixture {
        self.signature = Some(SignOptions {
            identifier: "com.example.fixture".into(),
            flags,
            runtime: (flags & codesign::CS_RUNTIME != 0).then_some(0x000d_0000),
            entitlements: None,
            cms: true,
        });
        self
    }

    /// Adds entitlements naming `keys` as true.
    pub fn entitled(mut self, keys: &[&str]) -> Fixture {
        if let Some(options) = &mut self.signature {
            options.entitlements = Some(entitlements_plist(keys));
        }
        self
    }

    pub fn with_restrict_segment(mut self) -> Fixture {
        self.restrict_segment = true;
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let page = self.arch.page_size();
        let text_size = 2 * page;
        let mut cmds: Vec<u8> = Vec::new();
        let mut ncmds = 0;
        let segment = |cmds: &mut Vec<u8>,
                       name: &str,
                       vm: (u64, u64),
                       file: (u64, u64),
                       prot: u32,
                       sections: &[(&str, u64, u64)]| {
            cmds.extend_from_slice(&LC_SEGMENT_64.to_le_bytes());
            let size = SEGMENT_COMMAND_SIZE + SECTION_SIZE * sections.len();
            cmds.extend_from_slice(&(size as u32).to_le_bytes());
            cmds.extend_from_slice(&name16(name));
            for v in [vm.0, vm.1, file.0, file.1] {
                cmds.extend_from_slice(&v.to_le_bytes());
            }
            for v in [prot, prot, sections.len() as u32, 0] {
                cmds.extend_from_slice(&v.to_le_bytes());
            }
            for (sect, addr, offset) in sections {
                let size = if *sect == "__text" {
                    self.text.len() as u64
                } else {
                    0
                };
                cmds.extend_from_slice(&name16(sect));
                cmds.extend_from_slice(&name16(name));
                cmds.extend_from_slice(&addr.to_le_bytes());
                cmds.extend_from_slice(&size.to_le_bytes());
                for v in [*offset as u32, 4, 0, 0, 0x8000_0400, 0, 0, 0] {
                    cmds.extend_from_slice(&v.to_le_bytes());
                }
            }
        };
        segment(&mut cmds, "__PAGEZERO", (0, VM_BASE), (0, 0), 0, &[]);
        segment(
            &mut cmds,
            "__TEXT",
            (VM_BASE, text_size),
            (0, text_size),
            5,
            &[("__text", VM_BASE + page, page)],
        );
        ncmds += 2;
        let vm_next = VM_BASE + text_size;
        if self.restrict_segment {
            segment(
                &mut cmds,
                "__RESTRICT",
                (vm_next, 0),
                (0, 0),
                0,
                &[("__restrict", vm_next, 0)],
            );
            ncmds += 1;
        }
        let linkedit_len = self.linkedit.len() as u64;
        segment(
            &mut cmds,
            "__LINKEDIT",
            (vm_next, linkedit_len.next_multiple_of(page)),
            (text_size, linkedit_len),
            1,
            &[],
        );
        cmds.extend_from_slice(&LC_MAIN.to_le_bytes());
        cmds.extend_from_slice(&24u32.to_le_bytes());
        cmds.extend_from_slice(&page.to_le_bytes());
        cmds.extend_from_slice(&0u64.to_le_bytes());
        ncmds += 2;

        let mut out = Vec::new();
        let (cputype, cpusubtype) = self.arch.cpu();
        for v in [
            MH_MAGIC_64,
            cputype as u32,
            cpusubtype as u32,
            MH_EXECUTE,
            ncmds,
            cmds.len() as u32,
            0x0020_0085, // MH_NOUNDEFS | MH_DYLDLINK | MH_TWOLEVEL | MH_PIE
            0,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&cmds);
        out.resize(page as usize, 0);
        out.extend_from_slice(&self.text);
        out.resize(text_size as usize, 0);
        out.extend_from_slice(&self.linkedit);
        match &self.signature {
            // `sign_slice` adds LC_CODE_SIGNATURE and grows __LINKEDIT.
            Some(options) => codesign::sign_slice(out, options).expect("fixtures are well-formed"),
            None => out,
        }
    }
}

/// A fat file of `slices`, as `lipo` writes.
pub fn fat(slices: &[(Arch, Vec<u8>)]) -> Vec<u8> {
    crate::patch::fat(slices)
}

/// An XML entitlements plist with `keys` set to true.
pub fn entitlements_plist(keys: &[&str]) -> Vec<u8> {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n",
    );
    for key in keys {
        xml.push_str(&format!("\t<key>{key}</key>\n\t<true/>\n"));
    }
    xml.push_str("</dict>\n</plist>\n");
    xml.into_bytes()
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..name.len()].copy_from_slice(name.as_bytes());
    out
}
