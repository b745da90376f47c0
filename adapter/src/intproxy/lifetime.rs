//! When the intproxy may exit: no layer connected, the watched program gone
//! (or never given), and that has lasted a grace period, so an exec'd child
//! that is between its old and its new layer is not cut off. Without a
//! watched program it waits for the first layer, for as long as its owner
//! (if given) lives.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

pub struct Watch {
    pub count: watch::Receiver<usize>,
    pub main_pid: Option<u32>,
    /// Before the first layer: wait only while this process lives.
    pub owner_pid: Option<u32>,
    pub grace: Duration,
    /// True while nothing is connected and the program is gone: losing the
    /// agent then is part of ending, not news for the user.
    pub idle: Arc<AtomicBool>,
}

const TICK: Duration = Duration::from_millis(100);

impl Watch {
    /// Resolves when the intproxy should exit, with the reason.
    pub async fn until_done(mut self) -> String {
        let mut term = signal(SignalKind::terminate()).ok();
        let mut idle_for = Duration::ZERO;
        let mut had_layer = false;
        // Once the count's sender is gone `changed` fails at once: stop
        // waiting on it then, or this loop would spin.
        let mut counting = true;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                changed = self.count.changed(), if counting => counting = changed.is_ok(),
                _ = async { term.as_mut()?.recv().await }, if term.is_some() => return "SIGTERM".into(),
            }
            let connected = *self.count.borrow();
            had_layer |= connected > 0;
            let program_alive = self.main_pid.is_some_and(alive);
            let waiting_for_first =
                self.main_pid.is_none() && !had_layer && self.owner_pid.is_none_or(alive);
            let idle = connected == 0 && !program_alive && !waiting_for_first;
            self.idle.store(idle, Ordering::Relaxed);
            if idle {
                idle_for += TICK;
                if idle_for >= self.grace {
                    return "no layer connected and the program has exited".into();
                }
            } else {
                idle_for = Duration::ZERO;
            }
        }
    }
}

/// Whether `pid` runs (a zombie has exited).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    #[tokio::test(start_paused = true)]
    async fn exits_after_grace_once_the_last_layer_left() {
        let (tx, count) = watch::channel(1usize);
        let watch = Watch {
            count,
            main_pid: None,
            owner_pid: None,
            grace: Duration::from_millis(500),
            idle: Arc::default(),
        };
        let done = tokio::spawn(watch.until_done());
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!done.is_finished(), "exited while a layer was connected");
        tx.send(0).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!done.is_finished(), "exited before the grace period");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(done.is_finished());
    }

    /// A count whose sender is gone is not waited on again: the grace
    /// period still takes its time (a loop spinning on the closed channel
    /// would count it off at once).
    #[tokio::test(start_paused = true)]
    async fn a_dropped_count_sender_neither_spins_nor_cuts_the_grace() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let (tx, count) = watch::channel(0usize);
        drop(tx);
        let watch = Watch {
            count,
            main_pid: Some(gone),
            owner_pid: None,
            grace: Duration::from_millis(500),
            idle: Arc::default(),
        };
        let done = tokio::spawn(watch.until_done());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!done.is_finished(), "exited before the grace period");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(done.is_finished());
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_the_first_layer_only_while_its_owner_lives() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        // The senders stay alive for the whole test, as the layer table's does.
        let (tx, count) = watch::channel(0usize);
        for (owner, exits) in [(std::process::id(), false), (gone, true)] {
            let count = count.clone();
            let watch = Watch {
                count,
                main_pid: None,
                owner_pid: Some(owner),
                grace: Duration::from_millis(500),
                idle: Arc::default(),
            };
            let done = tokio::spawn(watch.until_done());
            tokio::time::sleep(Duration::from_secs(5)).await;
            assert_eq!(done.is_finished(), exits, "owner {owner}");
            done.abort();
        }
        drop(tx);
    }
}
