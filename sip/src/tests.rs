//! Tests of the whole crate on a simulated Mac: fixtures from
//! [`crate::fixtures`] placed in a temporary "SIP-protected" directory,
//! checked, patched, and the copies parsed again.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use crate::codesign::{self, CS_ADHOC, CS_HARD, CS_KILL, CS_RESTRICT, CS_RUNTIME};
use crate::fixtures::{self, Fixture};
use crate::macho::{self, MachO, LC_CODE_SIGNATURE};
use crate::*;

/// A simulated Mac in a temporary directory: `usr/` is SIP-protected,
/// `usr/local/` is not; `PATH` is `usr/local/bin:usr/bin`.
pub(crate) struct Mac {
    dir: tempfile::TempDir,
    pub(crate) patcher: Patcher,
}

impl Mac {
    pub(crate) fn new() -> Mac {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["usr/bin", "usr/local/bin", "home", "cache"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        let host = Host {
            protected_roots: vec![root.join("usr")],
            unprotected_roots: vec![root.join("usr/local")],
            cache_dir: root.join("cache"),
            layer_archs: vec![Arch::X86_64, Arch::Arm64],
            path_var: Some(
                std::env::join_paths([root.join("usr/local/bin"), root.join("usr/bin")]).unwrap(),
            ),
        };
        Mac {
            dir,
            patcher: Patcher::new(host),
        }
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn put(&self, rel: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let path = self.root().join(rel);
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

fn fat_x86_arm64e() -> Vec<u8> {
    fixtures::fat(&[
        (
            Arch::X86_64,
            Fixture::new(Arch::X86_64).signed(CS_RUNTIME).build(),
        ),
        (
            Arch::Arm64e,
            Fixture::new(Arch::Arm64e).signed(CS_RUNTIME).build(),
        ),
    ])
}

/// The reasons `check` gives for a fixture at `rel` with `mode`.
fn check(rel: &str, bytes: &[u8], mode: u32, expected: &[Reason]) {
    let mac = Mac::new();
    let path = mac.put(rel, bytes, mode);
    let check = mac.patcher.check(&path).unwrap();
    let expected: Vec<Reason> = expected
        .iter()
        .map(|r| match r {
            Reason::SipPath { root } => Reason::SipPath {
                root: mac.root().join(root),
            },
            other => other.clone(),
        })
        .collect();
    assert_eq!(check.reasons, expected, "{rel}:\n{check}");
}

#[test]
fn protection_decisions() {
    let plain = Fixture::new(Arch::Arm64).build();
    let sip = Reason::SipPath { root: "usr".into() };
    check("home/tool", &plain, 0o755, &[]);
    check("usr/local/bin/tool", &plain, 0o755, &[]);
    check("usr/bin/tool", &plain, 0o755, &[sip]);
    check("home/su", &plain, 0o4755, &[Reason::Setuid]);
    check("home/sg", &plain, 0o2755, &[Reason::Setgid]);
    check(
        "home/r",
        &Fixture::new(Arch::X86_64)
            .signed(CS_RESTRICT | CS_HARD | CS_KILL)
            .build(),
        0o755,
        &[Reason::RestrictFlag { arch: Arch::X86_64 }],
    );
    check(
        "home/rt",
        &Fixture::new(Arch::Arm64).signed(CS_RUNTIME).build(),
        0o755,
        &[Reason::HardenedRuntime { arch: Arch::Arm64 }],
    );
    check(
        "home/rt-allowed",
        &Fixture::new(Arch::Arm64)
            .signed(CS_RUNTIME)
            .entitled(&[
                "com.apple.security.get-task-allow",
                codesign::ALLOW_DYLD_ENV,
            ])
            .build(),
        0o755,
        &[],
    );
    check(
        "home/rt-other-entitlement",
        &Fixture::new(Arch::Arm64)
            .signed(CS_RUNTIME)
            .entitled(&["com.apple.security.get-task-allow"])
            .build(),
        0o755,
        &[Reason::HardenedRuntime { arch: Arch::Arm64 }],
    );
    check(
        "home/rs",
        &Fixture::new(Arch::X86_64)
            .unsigned()
            .with_restrict_segment()
            .build(),
        0o755,
        &[Reason::RestrictSegment { arch: Arch::X86_64 }],
    );
    check(
        "home/fat",
        &fat_x86_arm64e(),
        0o755,
        &[
            Reason::HardenedRuntime { arch: Arch::X86_64 },
            Reason::HardenedRuntime { arch: Arch::Arm64e },
        ],
    );
    check("usr/bin/elf", b"\x7fELF\x02\x01\x01rest", 0o755, &[]);
}

#[test]
fn a_check_explains_itself() {
    let mac = Mac::new();
    let path = mac.put("usr/bin/fat", &fat_x86_arm64e(), 0o4755);
    let text = mac.patcher.check(&path).unwrap().to_string();
    for expected in [
        "universal Mach-O",
        "x86_64: signed, flags 0x10000; kept as x86_64",
        "arm64e: signed, flags 0x10000; kept, as arm64",
        "SIP-protected directory",
        "it is setuid",
        "hardened runtime",
        "patched copy",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
    let elf = mac.put("usr/bin/elf", b"\x7fELF", 0o755);
    let text = mac.patcher.check(&elf).unwrap().to_string();
    assert!(text.contains("not a Mach-O file or a script"), "{text}");
}

/// Everything a patched slice must satisfy.
fn assert_patched_slice(original: &[u8], patched: &[u8], arch: Arch) {
    let before = MachO::parse(original).unwrap();
    let after = MachO::parse(patched).unwrap();
    assert_eq!(after.header.arch, arch);
    let added = usize::from(before.code_signature.is_none());
    assert_eq!(after.commands.len(), before.commands.len() + added);
    assert_eq!(
        after
            .commands
            .iter()
            .filter(|c| c.cmd == LC_CODE_SIGNATURE)
            .count(),
        1
    );
    assert!(after.segment("__RESTRICT").is_none());
    for (b, a) in before.segments.iter().zip(&after.segments) {
        if b.name == "__RESTRICT" {
            assert_eq!(a.name, patch::NEUTRAL_SEGMENT);
            assert!(a
                .sections
                .iter()
                .all(|s| s.segname == patch::NEUTRAL_SEGMENT));
        } else {
            assert_eq!(a.name, b.name);
        }
    }
    let section = |m: &MachO| m.segment("__TEXT").unwrap().sections[0].clone();
    let (b, a) = (section(&before), section(&after));
    assert_eq!(a, b);
    let range = b.offset as usize..b.offset as usize + b.size as usize;
    assert!(
        patched[range.clone()] == original[range],
        "the code is unchanged"
    );
    let cs = after.code_signature.unwrap();
    let linkedit = after.segment("__LINKEDIT").unwrap();
    assert_eq!(
        linkedit.fileoff + linkedit.filesize,
        u64::from(cs.dataoff + cs.datasize)
    );
    assert_eq!(linkedit.fileoff + linkedit.filesize, patched.len() as u64);
    assert!(linkedit.vmsize >= linkedit.filesize);
    assert_eq!(linkedit.vmsize % arch.page_size(), 0);
    let signature = codesign::verify_adhoc(patched).unwrap();
    let cd = &signature.code_directories[0];
    assert_eq!(cd.flags, CS_ADHOC);
    assert_eq!(cd.code_hashes.len(), (cs.dataoff as usize).div_ceil(4096));
    assert_eq!(cd.exec_seg_flags, codesign::CS_EXECSEG_MAIN_BINARY);
    assert!(!signature.hardened_runtime());
}

#[test]
fn patched_thin_slices_are_well_formed() {
    let rows = [
        Fixture::new(Arch::X86_64).signed(CS_RESTRICT),
        Fixture::new(Arch::Arm64)
            .signed(CS_RUNTIME)
            .entitled(&["a.b"]),
        Fixture::new(Arch::Arm64).with_restrict_segment(),
        Fixture::new(Arch::X86_64).unsigned(),
        Fixture::new(Arch::X86_64)
            .unsigned()
            .with_restrict_segment(),
    ];
    for fixture in rows {
        let original = fixture.build();
        let patched = patch::patch_binary(&original, &[Arch::X86_64, Arch::Arm64], "tool").unwrap();
        assert_patched_slice(&original, &patched, fixture.arch);
        let identifier = codesign::verify_adhoc(&patched).unwrap().code_directories[0]
            .identifier
            .clone();
        let expected = fixture.signature.map_or("tool".into(), |s| s.identifier);
        assert_eq!(identifier, expected);
    }
}

#[test]
fn the_original_signature_is_what_fixtures_say() {
    let bytes = Fixture::new(Arch::Arm64)
        .signed(CS_RUNTIME | CS_RESTRICT)
        .build();
    let parsed = MachO::parse(&bytes).unwrap();
    let signature = codesign::Signature::parse(parsed.signature_bytes().unwrap()).unwrap();
    assert!(signature.has_cms);
    assert_eq!(signature.flags(), CS_RUNTIME | CS_RESTRICT);
    assert_eq!(signature.code_directories[0].runtime, Some(0x000d_0000));
    assert!(
        codesign::verify_adhoc(&bytes).is_err(),
        "a real signature is not ad hoc"
    );
    // The linker's ad hoc signature verifies.
    codesign::verify_adhoc(&Fixture::new(Arch::X86_64).build()).unwrap();
}

#[test]
fn fat_files_are_rebuilt_or_thinned() {
    let fat = fat_x86_arm64e();
    let originals: Vec<(Arch, Vec<u8>)> = macho::slices(&fat)
        .unwrap()
        .into_iter()
        .map(|(a, b)| (a, b.to_vec()))
        .collect();
    let both = patch::patch_binary(&fat, &[Arch::X86_64, Arch::Arm64], "t").unwrap();
    let table = macho::parse_fat(&both).unwrap();
    assert_eq!(
        table.iter().map(|a| a.arch).collect::<Vec<_>>(),
        [Arch::X86_64, Arch::Arm64]
    );
    for (entry, (arch, original)) in table.iter().zip(&originals) {
        assert_eq!(entry.offset % (1 << entry.align), 0);
        let slice = &both[entry.offset as usize..(entry.offset + entry.size) as usize];
        let out = patch::output_arch(*arch, &[Arch::X86_64, Arch::Arm64]).unwrap();
        assert_patched_slice(original, slice, out);
    }
    let thin = patch::patch_binary(&fat, &[Arch::Arm64], "t").unwrap();
    assert_eq!(macho::kind(&thin), macho::Kind::Thin);
    assert_patched_slice(&originals[1].1, &thin, Arch::Arm64);

    // A native arm64 slice wins over arm64e turned into arm64.
    let arm = fixtures::fat(&[
        (
            Arch::Arm64e,
            Fixture::new(Arch::Arm64e).signed(CS_RUNTIME).build(),
        ),
        (
            Arch::Arm64,
            Fixture::new(Arch::Arm64).signed(CS_RESTRICT).build(),
        ),
    ]);
    let out = patch::patch_binary(&arm, &[Arch::Arm64], "t").unwrap();
    let original = Fixture::new(Arch::Arm64).signed(CS_RESTRICT).build();
    assert_patched_slice(&original, &out, Arch::Arm64);

    let err = patch::patch_binary(
        &fat,
        &[Arch::Other {
            cputype: 7,
            cpusubtype: 3,
        }],
        "t",
    )
    .unwrap_err();
    assert!(err.to_string().contains("x86_64, arm64e"), "{err}");
}

#[test]
fn patching_goes_through_the_cache() {
    let mac = Mac::new();
    let path = mac.put("usr/bin/tool", &fat_x86_arm64e(), 0o4755);
    let Patched::Copy { path: copy, reused } = mac.patcher.patch(&path).unwrap() else {
        panic!("protected")
    };
    assert!(!reused);
    assert!(copy.starts_with(mac.root().join("cache")));
    assert_eq!(copy.file_name().unwrap(), "tool", "argv[0]'s name is kept");
    let mode = fs::metadata(&copy).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o755, "no setuid");
    let check = mac.patcher.check(&copy).unwrap();
    assert!(check.reasons.is_empty(), "{check}");
    assert_eq!(
        mac.patcher.patch(&path).unwrap(),
        Patched::Copy {
            path: copy.clone(),
            reused: true
        }
    );
    // A new version of the original replaces the stale copy.
    mac.put("usr/bin/tool", &Fixture::new(Arch::Arm64).build(), 0o755);
    let Patched::Copy {
        path: newer,
        reused,
    } = mac.patcher.patch(&path).unwrap()
    else {
        panic!("protected")
    };
    assert!(!reused && newer != copy && !copy.exists());
    let unprotected = mac.put("home/tool", &Fixture::new(Arch::Arm64).build(), 0o755);
    assert_eq!(mac.patcher.patch(&unprotected).unwrap(), Patched::Unchanged);
    mac.patcher.clean().unwrap();
    assert!(!newer.exists());
}

#[test]
fn scripts_follow_their_shebang_chain() {
    let mac = Mac::new();
    let root = mac.root().to_owned();
    mac.put("usr/bin/python3", &Fixture::new(Arch::Arm64).build(), 0o755);
    mac.put("usr/bin/sh", &Fixture::new(Arch::X86_64).build(), 0o755);
    mac.put("usr/bin/env", &Fixture::new(Arch::X86_64).build(), 0o755);
    let env = root.join("usr/bin/env");

    // #!/usr/bin/env python3 -u, resolved through PATH.
    let script = mac.put(
        "home/app.py",
        format!("#!{} python3 -u\nprint('hi')\n", env.display()).as_bytes(),
        0o755,
    );
    let check = mac.patcher.check(&script).unwrap();
    assert_eq!(
        check.reasons,
        [Reason::Interpreter {
            path: root.join("usr/bin/python3")
        }]
    );
    let Patched::Copy { path: copy, .. } = mac.patcher.patch(&script).unwrap() else {
        panic!("protected interpreter")
    };
    let text = fs::read_to_string(&copy).unwrap();
    let (line, body) = text.split_once('\n').unwrap();
    assert_eq!(body, "print('hi')\n");
    let interpreter = line
        .strip_prefix("#!")
        .unwrap()
        .strip_suffix(" -u")
        .unwrap();
    assert!(
        interpreter.starts_with(root.join("cache").to_str().unwrap()),
        "{line}"
    );
    assert!(mac
        .patcher
        .check(Path::new(interpreter))
        .unwrap()
        .reasons
        .is_empty());

    // A python3 earlier in PATH and unprotected wins: nothing to patch.
    mac.put(
        "usr/local/bin/python3",
        &Fixture::new(Arch::Arm64).build(),
        0o755,
    );
    assert_eq!(mac.patcher.patch(&script).unwrap(), Patched::Unchanged);

    // A chain: run.sh -> wrapper (a script) -> protected sh.
    let wrapper = mac.put(
        "home/wrapper",
        format!("#!{}/usr/bin/sh -e\nexec \"$@\"\n", root.display()).as_bytes(),
        0o755,
    );
    let run = mac.put(
        "home/run.sh",
        format!("#!{}\necho run\n", wrapper.display()).as_bytes(),
        0o755,
    );
    let Patched::Copy { path: run_copy, .. } = mac.patcher.patch(&run).unwrap() else {
        panic!("protected chain")
    };
    let run_text = fs::read_to_string(&run_copy).unwrap();
    let wrapper_copy = run_text.lines().next().unwrap().strip_prefix("#!").unwrap();
    let wrapper_text = fs::read_to_string(wrapper_copy).unwrap();
    assert!(
        wrapper_text.ends_with(" -e\nexec \"$@\"\n"),
        "{wrapper_text}"
    );
    let sh_copy = wrapper_text.lines().next().unwrap()[2..].trim_end_matches(" -e");
    assert!(codesign::verify_adhoc(&fs::read(sh_copy).unwrap()).is_ok());

    // A name not in PATH, and a loop, are errors.
    let missing = mac.put(
        "home/m",
        format!("#!{} nope\n", env.display()).as_bytes(),
        0o755,
    );
    assert!(mac
        .patcher
        .check(&missing)
        .unwrap_err()
        .to_string()
        .contains("nope"));
    let looped = root.join("home/loop");
    mac.put(
        "home/loop",
        format!("#!{}\n", looped.display()).as_bytes(),
        0o755,
    );
    assert!(mac
        .patcher
        .check(&looped)
        .unwrap_err()
        .to_string()
        .contains("nested"));
}

#[test]
fn damaged_headers_are_errors() {
    let good = Fixture::new(Arch::Arm64).signed(CS_RUNTIME).build();
    let rows: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..40].to_vec()),
        ("huge ncmds", {
            let mut b = good.clone();
            b[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
            b
        }),
        ("huge sizeofcmds", {
            let mut b = good.clone();
            b[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
            b
        }),
        ("cut signature", good[..good.len() - 100].to_vec()),
        ("two signature commands", {
            // LC_MAIN (24 bytes) becomes a second LC_CODE_SIGNATURE.
            let parsed = MachO::parse(&good).unwrap();
            let main = parsed
                .commands
                .iter()
                .find(|c| c.cmd == 0x8000_0028)
                .unwrap()
                .offset;
            let mut b = good.clone();
            macho::put_le32(&mut b, main, LC_CODE_SIGNATURE);
            b
        }),
        ("32-bit", {
            let mut b = good.clone();
            b[0..4].copy_from_slice(&macho::MH_MAGIC.to_le_bytes());
            b
        }),
        ("fat slice past the end", {
            let mut b = fat_x86_arm64e();
            b[8 + 12..8 + 16].copy_from_slice(&u32::MAX.to_be_bytes());
            b
        }),
    ];
    for (what, bytes) in rows {
        assert!(
            patch::patch_binary(&bytes, &[Arch::Arm64, Arch::X86_64], "t").is_err(),
            "{what}"
        );
    }
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let len = bytes.len();
    for (at, value) in edits {
        // Most edits land in the header, the load commands and the
        // signature, where the parser's decisions are.
        let at = match at % 3 {
            0 => at % 1024.min(len),
            1 => len - 1 - at % 2048.min(len),
            _ => at % len,
        };
        bytes[at] = *value;
    }
    if let Some(cut) = cut {
        bytes.truncate(cut % (len + 1));
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Random edits and truncations of thin and fat fixtures: every entry
    /// point returns, with an error or a result, and never panics.
    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let base = match which {
            0 => Fixture::new(Arch::X86_64).signed(CS_RESTRICT).build(),
            1 => Fixture::new(Arch::Arm64).signed(CS_RUNTIME).entitled(&[codesign::ALLOW_DYLD_ENV]).build(),
            2 => Fixture::new(Arch::Arm64).with_restrict_segment().build(),
            _ => fat_x86_arm64e(),
        };
        let bytes = mutate(base, &edits, cut);
        let _ = macho::kind(&bytes);
        if let Ok(slices) = macho::slices(&bytes) {
            for (_, slice) in slices {
                if let Ok(parsed) = MachO::parse(slice) {
                    if let Some(sig) = parsed.signature_bytes() {
                        let _ = codesign::Signature::parse(sig);
                    }
                }
                let _ = codesign::verify_adhoc(slice);
            }
        }
        if let Ok(out) = patch::patch_binary(&bytes, &[Arch::X86_64, Arch::Arm64], "t") {
            // What the patcher accepts, it writes correctly (as the `patch`
            // fuzz target checks): valid signatures, nothing protected,
            // patchable again.
            for (_, slice) in macho::slices(&out).unwrap() {
                codesign::verify_adhoc(slice).unwrap();
            }
            let (_, reasons) = Mac::new().patcher.inspect_macho(&out).unwrap();
            prop_assert!(reasons.is_empty(), "{:?}", reasons);
            patch::patch_binary(&out, &[Arch::X86_64, Arch::Arm64], "t").unwrap();
        }
        let _ = script::Shebang::parse(&bytes);
    }
}
