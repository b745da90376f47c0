//! Inputs that made the parser or the patcher panic or write a broken
//! copy, found by `cargo fuzz` (sip/fuzz) or while fixing what it found,
//! rebuilt from the fixtures: each test failed before its fix.

use crate::codesign;
use crate::fixtures::Fixture;
use crate::macho::{self, Arch, MachO};
use crate::patch;

const LAYER: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

/// Patches `bytes` and checks the copy as the `patch` fuzz target does.
fn patch_and_verify(bytes: &[u8]) {
    let copy = patch::patch_binary(bytes, &LAYER, "t").expect("patched");
    for (_, slice) in macho::slices(&copy).expect("the copy parses") {
        codesign::verify_adhoc(slice).expect("the copy's signature is valid");
    }
}

/// `sizeofcmds` larger than the commands: the added `LC_CODE_SIGNATURE`
/// went after the slack, where a walk of `ncmds` commands never reaches
/// (it read the slack's zeros as a command).
#[test]
fn a_signature_command_is_added_after_the_last_command_not_the_slack() {
    let mut bytes = Fixture::new(Arch::X86_64).unsigned().build();
    let sizeofcmds = macho::le32(&bytes, 20, "sizeofcmds").unwrap();
    macho::put_le32(&mut bytes, 20, sizeofcmds + 24);
    patch_and_verify(&bytes);
    let copy = patch::patch_binary(&bytes, &LAYER, "t").unwrap();
    let parsed = MachO::parse(&copy).unwrap();
    assert_eq!(
        parsed.commands_end(),
        MachO::parse(&bytes).unwrap().commands_end()
    );
}

/// A section offset past the end of the file made the room for a new
/// `LC_CODE_SIGNATURE` look larger than the file: the command was written
/// past the end (an index panic). Found by reading the code while fixing
/// the case above; the file ends right after its load commands here.
#[test]
fn a_section_offset_past_the_end_leaves_no_room_for_a_signature_command() {
    let whole = Fixture::new(Arch::X86_64).unsigned().build();
    let parsed = MachO::parse(&whole).unwrap();
    let end = parsed.last_command_end();
    let mut bytes = whole[..end].to_vec();
    for segment in &parsed.segments {
        // Segments within the cut file: none with content.
        macho::put_le64(&mut bytes, segment.cmd_offset + 40, 0);
        macho::put_le64(&mut bytes, segment.cmd_offset + 48, 0);
    }
    let text = parsed.segment("__TEXT").unwrap();
    assert!(
        text.sections[0].offset as usize > end,
        "the section is past the end"
    );
    let err = patch::patch_binary(&bytes, &LAYER, "t").unwrap_err();
    assert!(err.to_string().contains("no room"), "{err}");
}

/// A code signature that starts inside the load commands: cutting the
/// file at the signature cut the commands the patcher then rewrites (an
/// index panic).
#[test]
fn a_signature_inside_the_load_commands_is_an_error() {
    let whole = Fixture::new(Arch::X86_64).build();
    let parsed = MachO::parse(&whole).unwrap();
    let mut bytes = whole.clone();
    for segment in &parsed.segments {
        // No content the signature could be "before".
        macho::put_le64(&mut bytes, segment.cmd_offset + 48, 0);
    }
    let cs = parsed.code_signature.unwrap();
    macho::put_le32(&mut bytes, cs.cmd_offset + 8, 0x10);
    let err = patch::patch_binary(&bytes, &LAYER, "t").unwrap_err();
    assert!(err.to_string().contains("load commands"), "{err}");
}
