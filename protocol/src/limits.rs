//! Process limits the agent and the intproxy set for themselves.

/// Raises the soft descriptor limit to the hard one: every remote file and
/// connection of a session is a descriptor in the agent, and a relayed
/// connection is several in each relay (its sockets, and a pipe per
/// direction), so the usual soft limit of 1024 would cap a session at a
/// few hundred connections. Whether the limit is now the hard one.
pub fn raise_fd_limit() -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return false;
    }
    if lim.rlim_cur == lim.rlim_max {
        return true;
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: a valid limit; failure leaves the old one.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_becomes_the_hard_one() {
        assert!(super::raise_fd_limit());
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid out pointer.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }
}
