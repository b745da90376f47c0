//! Writes the seed corpus of the fuzz targets from the test fixtures
//! (`mirrord_sip::fixtures`), so no binary is committed:
//! `cargo +nightly run --bin seed_corpus -- corpus` (from `sip/fuzz`).

use std::path::{Path, PathBuf};

use mirrord_sip::codesign::{self, CS_ADHOC, CS_HARD, CS_KILL, CS_RESTRICT, CS_RUNTIME};
use mirrord_sip::fixtures::{fat, Fixture};
use mirrord_sip::patch;
use mirrord_sip::Arch;

fn main() -> std::io::Result<()> {
    let root = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("corpus"), PathBuf::from);
    let binaries = binaries();
    for target in ["check", "patch"] {
        write_all(&root.join(target), &binaries)?;
    }
    write_all(&root.join("shebang"), &scripts())?;
    Ok(())
}

fn binaries() -> Vec<(String, Vec<u8>)> {
    let layer = [Arch::X86_64, Arch::Arm64];
    let mut out = vec![
        (
            "thin-x86_64-linker-signed",
            Fixture::new(Arch::X86_64).build(),
        ),
        (
            "thin-arm64-unsigned",
            Fixture::new(Arch::Arm64).unsigned().build(),
        ),
        (
            "thin-x86_64-restrict",
            Fixture::new(Arch::X86_64).signed(CS_RESTRICT).build(),
        ),
        (
            "thin-arm64-hardened",
            Fixture::new(Arch::Arm64)
                .signed(CS_RUNTIME | CS_HARD | CS_KILL)
                .build(),
        ),
        (
            "thin-arm64-hardened-entitled",
            Fixture::new(Arch::Arm64)
                .signed(CS_RUNTIME)
                .entitled(&[codesign::ALLOW_DYLD_ENV])
                .build(),
        ),
        (
            "thin-x86_64-restrict-segment",
            Fixture::new(Arch::X86_64)
                .unsigned()
                .with_restrict_segment()
                .build(),
        ),
        (
            "fat-x86_64-arm64e",
            fat(&[
                (
                    Arch::X86_64,
                    Fixture::new(Arch::X86_64).signed(CS_ADHOC).build(),
                ),
                (
                    Arch::Arm64e,
                    Fixture::new(Arch::Arm64e).signed(CS_RUNTIME).build(),
                ),
            ]),
        ),
        (
            "fat-x86_64-arm64",
            fat(&[
                (Arch::X86_64, Fixture::new(Arch::X86_64).unsigned().build()),
                (
                    Arch::Arm64,
                    Fixture::new(Arch::Arm64).with_restrict_segment().build(),
                ),
            ]),
        ),
    ]
    .into_iter()
    .map(|(name, bytes)| (name.to_owned(), bytes))
    .collect::<Vec<_>>();
    // What the patcher writes is an input too (patching a copy again).
    let copies: Vec<(String, Vec<u8>)> = out
        .iter()
        .filter_map(|(name, bytes)| {
            let copy = patch::patch_binary(bytes, &layer, "seed").ok()?;
            Some((format!("{name}-patched"), copy))
        })
        .collect();
    out.extend(copies);
    out.push(("elf".to_owned(), b"\x7fELF\x02\x01\x01\0".to_vec()));
    // A Java class file shares the fat magic.
    out.push((
        "java-class".to_owned(),
        [0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52].to_vec(),
    ));
    out
}

fn scripts() -> Vec<(String, Vec<u8>)> {
    [
        ("bash", "#!/bin/bash\necho hi\n"),
        ("sh-args-crlf", "#! /bin/sh -e \r\necho hi\r\n"),
        ("env-python", "#!/usr/bin/env python3\nprint(1)\n"),
        ("env-python-u", "#!/usr/bin/env python3 -u\nprint(1)\n"),
        (
            "env-split",
            "#!/usr/bin/env -S node --inspect\nconsole.log(1)\n",
        ),
        ("env-option", "#!/usr/bin/env -i\n"),
        ("env-assignment", "#!/usr/bin/env A=1 x\n"),
        ("no-newline", "#!/bin/zsh"),
    ]
    .into_iter()
    .map(|(name, text)| (name.to_owned(), text.as_bytes().to_vec()))
    .collect()
}

fn write_all(dir: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes)?;
    }
    println!("{}: {} seeds", dir.display(), files.len());
    Ok(())
}
