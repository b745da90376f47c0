//! Fuzz target: what a file is and why it is protected, from arbitrary
//! bytes (file kind, fat table, load commands, signature blobs, ad hoc
//! verification). Everything must return; a panic is a crash.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mirrord_sip::codesign::{self, Signature};
use mirrord_sip::macho::{self, MachO};
use mirrord_sip::{Arch, Host, Patcher};

fuzz_target!(|data: &[u8]| {
    let patcher = Patcher::new(Host {
        protected_roots: Vec::new(),
        unprotected_roots: Vec::new(),
        cache_dir: "/nonexistent".into(),
        layer_archs: vec![Arch::X86_64, Arch::Arm64],
        path_var: None,
    });
    let _ = macho::kind(data);
    let _ = patcher.inspect_macho(data);
    let Ok(slices) = macho::slices(data) else {
        return;
    };
    for (_, slice) in slices {
        if let Ok(parsed) = MachO::parse(slice) {
            let _ = parsed.first_content_offset();
            if let Some(Ok(signature)) = parsed.signature_bytes().map(Signature::parse) {
                let _ = signature.allows_dyld_environment();
                let _ = signature.hardened_runtime();
            }
        }
        let _ = codesign::verify_adhoc(slice);
    }
});
