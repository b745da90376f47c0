//! The pod's first process (PID 1 of its PID namespace): builds the pod's
//! root on a tmpfs, pivots into it, brings up `lo`, starts the services and
//! then waits to be killed. Everything it creates lives in its own
//! namespaces, so it all vanishes when it dies.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::Path;

use anyhow::{bail, Context};

use super::services;
use super::spec::PodSpec;

/// Where the new root is mounted before the pivot (inside our private
/// mount namespace, so the host never sees it).
const STAGING: &str = "/mnt";

pub fn run(spec: &PodSpec, ready_fd: i32) -> anyhow::Result<()> {
    // SAFETY: `ready_fd` was inherited from our parent for this purpose.
    let mut ready = unsafe { std::fs::File::from_raw_fd(ready_fd) };
    match setup(spec) {
        Ok(()) => {
            writeln!(ready, "ready")?;
            drop(ready);
            loop {
                // SAFETY: plain syscall; PID 1 just waits to be killed.
                unsafe { libc::pause() };
            }
        }
        Err(e) => {
            let _ = writeln!(ready, "error {e:#}");
            Err(e)
        }
    }
}

fn setup(spec: &PodSpec) -> anyhow::Result<()> {
    build_root(spec)?;
    set_hostname(&spec.hostname)?;
    loopback_up()?;
    if spec.without_ipv6 {
        disable_ipv6()?;
    }
    services::start(spec)?;
    Ok(())
}

fn build_root(spec: &PodSpec) -> anyhow::Result<()> {
    mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None).context("make / private")?;
    if !Path::new(STAGING).is_dir() {
        bail!("{STAGING} must exist to stage the pod's root");
    }
    mount(
        Some("pod-root"),
        STAGING,
        Some("tmpfs"),
        0,
        Some("mode=755,size=256m"),
    )
    .context("tmpfs")?;
    let root = Path::new(STAGING);
    for dir in ["etc", "proc", "tmp", ".old"] {
        std::fs::create_dir_all(root.join(dir))?;
    }
    std::fs::write(root.join("etc/hosts"), spec.hosts_file())?;
    std::fs::write(root.join("etc/resolv.conf"), &spec.resolv_conf)?;
    std::fs::write(root.join("etc/hostname"), format!("{}\n", spec.hostname))?;
    for (path, content) in &spec.files {
        let dest = root.join(path.trim_start_matches('/'));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&dest, content).with_context(|| format!("write {path}"))?;
    }
    for (path, target) in &spec.symlinks {
        let dest = root.join(path.trim_start_matches('/'));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(target, &dest).with_context(|| format!("symlink {path}"))?;
    }
    let _ = mount(Some("proc"), "/mnt/proc", Some("proc"), 0, None);
    pivot_root(STAGING, "/mnt/.old")?;
    std::env::set_current_dir("/")?;
    let old = CString::new("/.old")?;
    // SAFETY: plain syscalls on paths we made.
    unsafe {
        if libc::umount2(old.as_ptr(), libc::MNT_DETACH) != 0 {
            return Err(std::io::Error::last_os_error()).context("umount old root");
        }
        libc::rmdir(old.as_ptr());
    }
    Ok(())
}

fn mount(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> anyhow::Result<()> {
    let c = |s: Option<&str>| s.map(CString::new).transpose();
    let (src, target, fstype, data) = (c(src)?, CString::new(target)?, c(fstype)?, c(data)?);
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: valid C strings or null.
    let rc = unsafe {
        libc::mount(
            ptr(&src),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("mount {target:?}"));
    }
    Ok(())
}

fn pivot_root(new: &str, old: &str) -> anyhow::Result<()> {
    let (new, old) = (CString::new(new)?, CString::new(old)?);
    // SAFETY: plain syscall with valid C strings.
    let rc = unsafe { libc::syscall(libc::SYS_pivot_root, new.as_ptr(), old.as_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("pivot_root");
    }
    Ok(())
}

fn set_hostname(name: &str) -> anyhow::Result<()> {
    // SAFETY: valid pointer and length.
    let rc = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("sethostname");
    }
    Ok(())
}

/// IPv6 off in the pod's network namespace (its `/proc/sys/net` is the
/// namespace's own): `lo` loses `::1`, and devices made later get none.
fn disable_ipv6() -> anyhow::Result<()> {
    for dev in ["all", "default", "lo"] {
        let path = format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6");
        std::fs::write(&path, "1").with_context(|| format!("write {path}"))?;
    }
    Ok(())
}

/// `ip link set lo up`, by ioctl.
fn loopback_up() -> anyhow::Result<()> {
    // SAFETY: an ifreq zeroed then filled; the socket is closed below.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("socket");
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if rc != 0 {
            return Err(err).context("bring lo up");
        }
    }
    Ok(())
}
