//! Fuzz target: `#!` lines. Parsing arbitrary bytes returns; a parsed line
//! rewritten to name another interpreter (as the patcher does) parses back
//! to that interpreter with the same arguments, and the script's body is
//! kept byte for byte.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mirrord_sip::script::{self, Shebang};

const INTERPRETER: &str = "/cache/0123456789abcdef/python3";

fuzz_target!(|data: &[u8]| {
    let Ok(Some(shebang)) = Shebang::parse(data) else {
        return;
    };
    let args = match &shebang.env_program {
        Some((_, rest)) => rest.clone(),
        None => shebang.args.clone(),
    };
    let Ok(rewritten) = script::rewrite(data, Path::new(INTERPRETER), args.as_deref()) else {
        return;
    };
    let again = Shebang::parse(&rewritten)
        .expect("a rewritten #! line parses")
        .expect("a rewritten script starts with #!");
    assert_eq!(again.interpreter, Path::new(INTERPRETER));
    assert_eq!(again.args, args);
    let body = |d: &[u8]| d.iter().position(|b| *b == b'\n').map_or(d.len(), |i| i);
    assert_eq!(&rewritten[body(&rewritten)..], &data[body(data)..]);
});
