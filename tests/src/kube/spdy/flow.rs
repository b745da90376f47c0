//! SPDY/3.1 flow control of one session, both directions: every stream
//! and the session itself have a window of 64 KiB in each direction
//! (a peer's SETTINGS_INITIAL_WINDOW_SIZE changes its streams' initial
//! window; the session window stays 64 KiB), DATA uses it up and
//! WINDOW_UPDATE gives it back.
//!
//! - Receiving: what the pod has been given is handed back to the peer
//!   with WINDOW_UPDATE frames (stream and session) once half a window has
//!   been consumed, so a peer that honours windows never stalls.
//! - Sending and enforcing: a peer that shows it does flow control (it
//!   sends SETTINGS_INITIAL_WINDOW_SIZE or a WINDOW_UPDATE) gets no more
//!   DATA than its windows allow, and a stream on which it overruns ours
//!   is reset with FLOW_CONTROL_ERROR. kubectl sends neither (seen in
//!   this server's log), and its SPDY library, the kubelet's too, has no
//!   window handling: the kubelet sends and accepts regardless, and a peer
//!   that never said anything about windows is served the same way.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::Notify;

use super::frame::Frame;

/// The initial window of every stream and of the session (SPDY/3.1).
pub const INITIAL_WINDOW: i64 = 64 * 1024;
/// The SETTINGS ID of the initial stream window.
pub const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;
/// RST_STREAM status: the peer sent more than the window allowed.
pub const FLOW_CONTROL_ERROR: u32 = 7;
/// Consumed bytes are handed back once this many have gathered.
const UPDATE_AT: i64 = INITIAL_WINDOW / 2;

/// The peer sent more DATA than a window allowed.
#[derive(Debug, PartialEq, Eq)]
pub struct Overrun;

/// The windows of one session; shared by its frame reader and relays.
#[derive(Default)]
pub struct Flow {
    /// A std `Mutex`: never held across an `.await`.
    state: Mutex<State>,
    /// Woken when a send window grows.
    grown: Notify,
}

struct State {
    /// The peer does flow control: its windows are honoured and enforced.
    peer_aware: bool,
    /// What the peer may still receive: its initial stream window, the
    /// session window and each stream's.
    send_initial: i64,
    send_session: i64,
    send: HashMap<u32, i64>,
    /// What the peer may still send us.
    recv_session: i64,
    recv: HashMap<u32, i64>,
    /// Consumed and not yet handed back.
    consumed_session: i64,
    consumed: HashMap<u32, i64>,
}

impl Default for State {
    fn default() -> Self {
        State {
            peer_aware: false,
            send_initial: INITIAL_WINDOW,
            send_session: INITIAL_WINDOW,
            send: HashMap::new(),
            recv_session: INITIAL_WINDOW,
            recv: HashMap::new(),
            consumed_session: 0,
            consumed: HashMap::new(),
        }
    }
}

impl Flow {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A stream opened: both its windows start at their initial sizes.
    pub fn open(&self, stream: u32) {
        let mut state = self.lock();
        let initial = state.send_initial;
        state.send.insert(stream, initial);
        state.recv.insert(stream, INITIAL_WINDOW);
    }

    /// A stream ended (reset): its windows go; a sender waiting on it
    /// stops waiting.
    pub fn close(&self, stream: u32) {
        let mut state = self.lock();
        state.send.remove(&stream);
        state.recv.remove(&stream);
        state.consumed.remove(&stream);
        drop(state);
        self.grown.notify_waiters();
    }

    /// The peer's SETTINGS: a new initial window moves every stream's
    /// window by the difference (it may become negative).
    pub fn settings(&self, entries: &[(u8, u32, u32)]) {
        let mut state = self.lock();
        for &(_, id, value) in entries {
            if id != SETTINGS_INITIAL_WINDOW_SIZE {
                continue;
            }
            let delta = i64::from(value) - state.send_initial;
            state.send_initial = i64::from(value);
            state.send.values_mut().for_each(|w| *w += delta);
            state.peer_aware = true;
        }
        drop(state);
        self.grown.notify_waiters();
    }

    /// The peer's WINDOW_UPDATE (stream 0: the session).
    pub fn window_update(&self, stream: u32, delta: u32) {
        let mut state = self.lock();
        state.peer_aware = true;
        let delta = i64::from(delta);
        if stream == 0 {
            state.send_session += delta;
        } else if let Some(window) = state.send.get_mut(&stream) {
            *window += delta;
        }
        drop(state);
        self.grown.notify_waiters();
    }

    /// `len` bytes of DATA arrived on `stream`: an [`Overrun`] when a peer
    /// that does flow control sent more than a window allowed.
    pub fn received(&self, stream: u32, len: usize) -> Result<(), Overrun> {
        let len = len as i64;
        let mut state = self.lock();
        state.recv_session -= len;
        let stream_left = match state.recv.get_mut(&stream) {
            Some(window) => {
                *window -= len;
                *window
            }
            None => 0,
        };
        if state.peer_aware && (stream_left < 0 || state.recv_session < 0) {
            return Err(Overrun);
        }
        Ok(())
    }

    /// `len` bytes of `stream` were handed to the pod: the WINDOW_UPDATE
    /// frames that give them back to the peer, if half a window gathered.
    pub fn consumed(&self, stream: u32, len: usize) -> Vec<Frame> {
        let len = len as i64;
        let mut state = self.lock();
        let mut updates = Vec::new();
        let gathered = {
            let consumed = state.consumed.entry(stream).or_insert(0);
            *consumed += len;
            *consumed
        };
        if gathered >= UPDATE_AT && state.recv.contains_key(&stream) {
            state.consumed.insert(stream, 0);
            if let Some(window) = state.recv.get_mut(&stream) {
                *window += gathered;
            }
            updates.push(update(stream, gathered));
        }
        state.consumed_session += len;
        if state.consumed_session >= UPDATE_AT {
            let gathered = std::mem::take(&mut state.consumed_session);
            state.recv_session += gathered;
            updates.push(update(0, gathered));
        }
        updates
    }

    /// Waits until DATA may be sent on `stream` and takes up to `want`
    /// bytes of its windows; returns how many (at least 1). A peer that
    /// does no flow control, or a stream that is gone, takes `want` at once.
    pub async fn reserve(&self, stream: u32, want: usize) -> usize {
        loop {
            let grown = self.grown.notified();
            tokio::pin!(grown);
            grown.as_mut().enable();
            {
                let mut state = self.lock();
                if !state.peer_aware {
                    return want;
                }
                let session = state.send_session;
                let Some(window) = state.send.get_mut(&stream) else {
                    return want;
                };
                let allowed = (*window).min(session);
                if allowed > 0 {
                    let taken = (want as i64).min(allowed);
                    *window -= taken;
                    state.send_session -= taken;
                    return taken as usize;
                }
            }
            grown.await;
        }
    }
}

fn update(stream: u32, delta: i64) -> Frame {
    Frame::WindowUpdate {
        stream,
        delta: u32::try_from(delta).unwrap_or(u32::MAX >> 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumed_bytes_are_handed_back_per_stream_and_session_at_half_a_window() {
        let flow = Flow::default();
        flow.open(3);
        assert_eq!(flow.received(3, 40_000), Ok(()));
        assert_eq!(flow.consumed(3, 30_000), Vec::<Frame>::new());
        assert_eq!(
            flow.consumed(3, 10_000),
            [
                Frame::WindowUpdate {
                    stream: 3,
                    delta: 40_000
                },
                Frame::WindowUpdate {
                    stream: 0,
                    delta: 40_000
                }
            ]
        );
    }

    #[test]
    fn only_a_peer_that_does_flow_control_is_held_to_the_windows() {
        // kubectl: no SETTINGS, no WINDOW_UPDATE, sends what it likes.
        let unaware = Flow::default();
        unaware.open(1);
        assert_eq!(unaware.received(1, 1 << 20), Ok(()));

        let aware = Flow::default();
        aware.settings(&[(0, SETTINGS_INITIAL_WINDOW_SIZE, 16_384)]);
        aware.open(1);
        assert_eq!(aware.received(1, 65_536), Ok(()));
        assert_eq!(aware.received(1, 1), Err(Overrun));
    }

    #[tokio::test]
    async fn sending_waits_for_the_peers_window_updates() {
        let flow = std::sync::Arc::new(Flow::default());
        flow.settings(&[(0, SETTINGS_INITIAL_WINDOW_SIZE, 1_000)]);
        flow.open(3);
        assert_eq!(flow.reserve(3, 600).await, 600);
        assert_eq!(flow.reserve(3, 600).await, 400);
        let waiting = tokio::spawn({
            let flow = flow.clone();
            async move { flow.reserve(3, 600).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "no window left on stream 3");
        flow.window_update(3, 250);
        assert_eq!(waiting.await.expect("reserve"), 250);
        // The session window (64 KiB) bounds every stream together.
        flow.window_update(3, 1 << 20);
        assert_eq!(flow.reserve(3, 1 << 20).await, 65_536 - 1_250);
    }
}
