//! Whether a caller waiting in the supervisor has a signal to take. Under
//! `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` only a fatal signal ends a
//! stopped call the supervisor has received; a caught one waits for the
//! answer. A call the supervisor would wait on (a blocking receive) is
//! answered when its thread has a deliverable signal, as the kernel's own
//! socket wait would end: `EINTR` on a socket with a receive timeout, else
//! `-ERESTARTSYS`, which the kernel turns into a restart (`SA_RESTART`, or
//! no handler) or `EINTR` after the handler. A restarted call stops again
//! and is received anew.

/// The kernel's "restart after the signal" error, never seen by the
/// program when a signal is delivered on the way out.
pub const ERESTARTSYS: i32 = 512;

/// Whether thread `tid` has a pending signal it does not block or ignore
/// (its own or its process's), from `/proc/TID/status`. `false` when the
/// thread is gone or the file cannot be read.
pub fn deliverable(tid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .is_some_and(|status| pending_in(&status))
}

fn pending_in(status: &str) -> bool {
    let mask = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let pending = mask("SigPnd:") | mask("ShdPnd:");
    pending & !mask("SigBlk:") & !mask("SigIgn:") != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unblocked_unignored_pending_signals_count() {
        let status = |pnd: &str, shd: &str, blk: &str, ign: &str| {
            format!(
                "Name:\tx\nSigQ:\t0/1\nSigPnd:\t{pnd}\nShdPnd:\t{shd}\nSigBlk:\t{blk}\nSigIgn:\t{ign}\nSigCgt:\t0\n"
            )
        };
        let none = "0000000000000000";
        let alrm = "0000000000002000";
        let rows = [
            (status(none, none, none, none), false),
            (status(none, alrm, none, none), true),
            (status(alrm, none, none, none), true),
            (status(alrm, none, alrm, none), false),
            (status(none, alrm, none, alrm), false),
        ];
        for (text, expected) in rows {
            assert_eq!(pending_in(&text), expected, "{text}");
        }
        assert!(!deliverable(std::process::id()));
        assert!(!deliverable(u32::MAX - 1));
    }
}
