//! Inputs `cargo fuzz` (sip/fuzz) found that made the parser or the
//! patcher panic or write a broken copy, rebuilt from the fixtures: each
//! test failed before its fix.

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
