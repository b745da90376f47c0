//! Which file operations may run inline on an async worker: those that
//! cannot wait on a network or a user-space server. Everything else goes
//! through `block_in_place` (see `session::blocking`), which costs a thread
//! wake-up per call but never stalls the worker's other tasks.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Filesystem types (as `/proc/*/mountinfo` names them) whose operations
/// may wait on a network or a user-space server.
const REMOTE_TYPES: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "9p",
    "afs",
    "coda",
    "glusterfs",
    "gfs2",
    "ocfs2",
    "lustre",
    "beegfs",
    "gpfs",
    "virtiofs",
    "davfs",
];

/// The same, as `statfs` magic numbers.
const REMOTE_MAGIC: &[i64] = &[
    0x6969,     // NFS
    0x517B,     // SMB
    0xFE534D42, // SMB2
    0xFF534D42, // CIFS
    0x65735546, // FUSE
    0x00C36400, // Ceph
    0x01021997, // 9p
    0x5346414F, // AFS
    0x73757245, // Coda
    0x01161970, // GFS2
    0x7461636F, // OCFS2
    0x6A656A63, // virtiofs
];

/// Whether every filesystem mounted in the target is local, from its
/// mountinfo text: path lookups there cannot wait on a network.
pub fn all_mounts_local(mountinfo: &str) -> bool {
    mountinfo.lines().all(|line| {
        // "... - fstype source options": the type follows the separator.
        let fs_type = line
            .split_once(" - ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("");
        !(REMOTE_TYPES.contains(&fs_type) || fs_type.starts_with("fuse"))
    })
}

/// Reads `/proc/<pid>/mountinfo` (ours when targetless); unreadable counts
/// as "not known to be local".
pub fn target_mounts_local(pid: Option<u32>) -> bool {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/mountinfo"),
        None => "/proc/self/mountinfo".to_owned(),
    };
    std::fs::read_to_string(path).is_ok_and(|text| all_mounts_local(&text))
}

/// Whether reads and writes of `file` are page-cache operations: a regular
/// file (not a FIFO or a device that may wait for a peer) on a local
/// filesystem.
pub fn inline_io(file: &File) -> bool {
    let is_regular = file.metadata().is_ok_and(|m| m.file_type().is_file());
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: a valid fd and out pointer.
    if !is_regular || unsafe { libc::fstatfs(file.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: initialised by the successful call.
    #[allow(clippy::unnecessary_cast)] // `f_type` is not i64 on every target.
    let fs_type = unsafe { st.assume_init() }.f_type as i64;
    !REMOTE_MAGIC.contains(&fs_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_with_a_network_or_fuse_mount_is_not_local() {
        let local = "22 1 0:21 / / rw - tmpfs pod-root rw\n23 22 0:5 / /proc rw - proc proc rw\n";
        assert!(all_mounts_local(local));
        let nfs = format!("{local}40 22 0:50 / /data rw - nfs4 server:/export rw\n");
        assert!(!all_mounts_local(&nfs));
        let fuse = format!("{local}41 22 0:51 / /mnt rw - fuse.sshfs host: rw\n");
        assert!(!all_mounts_local(&fuse));
    }

    #[test]
    fn regular_local_files_are_inline_and_fifos_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(inline_io(&File::open(&file).unwrap()));
        let fifo = dir.path().join("p");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        assert!(!inline_io(&opened));
    }

    use std::os::unix::fs::OpenOptionsExt;
}
