//! Shared pieces of the end-to-end suite: the stand-in pod and the paths of
//! the workspace's binaries.

pub mod dap;
pub mod kube;
pub mod pod;
pub mod run;
pub mod stats;

use std::path::PathBuf;

/// The directory holding the workspace's binaries (`target/debug` or
/// `target/release`), found from the running executable.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    dir
}

/// A binary or library of the workspace.
pub fn bin_path(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// A binary a benchmark runs; panics with the command to build it when it
/// is missing.
pub fn bench_binary(name: &str) -> PathBuf {
    let path = bin_path(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --release --workspace` first",
        path.display()
    );
    path
}
