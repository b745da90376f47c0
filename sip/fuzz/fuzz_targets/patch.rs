//! Fuzz target: patching arbitrary bytes. The patcher either returns an
//! error or a copy that re-parses, whose every slice carries a well-formed
//! ad hoc signature matching its pages, that nothing protects any more,
//! and that patches again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mirrord_sip::codesign;
use mirrord_sip::macho;
use mirrord_sip::patch;
use mirrord_sip::{Arch, Host, Patcher};

const LAYER: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

fuzz_target!(|data: &[u8]| {
    let Ok(copy) = patch::patch_binary(data, &LAYER, "fuzz") else {
        return;
    };
    let slices = macho::slices(&copy).expect("a patched copy re-parses");
    for (arch, slice) in slices {
        assert!(LAYER.contains(&arch), "a {arch} slice in the copy");
        codesign::verify_adhoc(slice).expect("a patched slice has a valid ad hoc signature");
    }
    let patcher = Patcher::new(Host {
        protected_roots: Vec::new(),
        unprotected_roots: Vec::new(),
        cache_dir: "/nonexistent".into(),
        layer_archs: LAYER.to_vec(),
        path_var: None,
    });
    let (_, reasons) = patcher
        .inspect_macho(&copy)
        .expect("a patched copy inspects");
    assert!(
        reasons.is_empty(),
        "a patched copy is still protected: {reasons:?}"
    );
    patch::patch_binary(&copy, &LAYER, "fuzz").expect("a patched copy patches again");
});
