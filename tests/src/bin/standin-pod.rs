//! `standin-pod`: runs a stand-in "pod" (new namespaces, its own root, env,
//! hosts file and services) until stdin closes or a signal arrives, and
//! prints `pid <PID>` once it is ready. See `mirrord_tests::pod`.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Context;
use mirrord_tests::pod::{init, launch, PodSpec};

static POD: AtomicI32 = AtomicI32::new(0);
static KEEPER: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    // SAFETY: kill and _exit are async-signal-safe.
    unsafe {
        libc::kill(POD.load(Ordering::Relaxed), libc::SIGKILL);
        libc::kill(KEEPER.load(Ordering::Relaxed), libc::SIGKILL);
        libc::_exit(0);
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__init") {
        let fd: i32 = args.get(2).context("fd")?.parse()?;
        let spec: PodSpec = serde_json::from_str(args.get(3).context("spec")?)?;
        return init::run(&spec, fd);
    }
    let spec = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("--spec"), Some(json)) => serde_json::from_str(json).context("bad --spec")?,
        (None, _) => PodSpec::default(),
        _ => anyhow::bail!("usage: standin-pod [--spec JSON]"),
    };
    let launched = launch::launch(&spec)?;
    POD.store(launched.pid, Ordering::Relaxed);
    KEEPER.store(launched.keeper, Ordering::Relaxed);
    // SAFETY: installing an async-signal-safe handler.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGHUP, on_signal as *const () as libc::sighandler_t);
    }
    println!("pid {}", launched.pid);
    std::io::stdout().flush()?;
    // Live until stdin closes (the test or shell let go of us).
    let mut sink = [0u8; 256];
    while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
    launch::stop(&launched);
    Ok(())
}
