//! The sessions the IDE service started: it owns them and ends them when
//! asked, when their debuggee is gone (the intproxy, started without a
//! watched PID, exits after its last layer disconnects: the service sees
//! it go) and when the editor goes away.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::protocol::SessionInfo;
use crate::session::Session;

/// How long ending waits for an intproxy (which stops its agent first).
const END_WAIT: Duration = Duration::from_secs(3);

struct Entry {
    id: String,
    target: String,
    pid: u32,
    since: u64,
    /// `None` once ended.
    session: Option<Session>,
}

/// Every session of this service, running or ended. A std mutex: held
/// only for list edits, never across an `.await` or a wait.
#[derive(Default)]
pub struct Sessions {
    entries: Mutex<Vec<Entry>>,
    next: AtomicU64,
}

impl Sessions {
    /// Registers a started session; returns its id.
    pub fn add(&self, session: Session) -> String {
        let id = format!("s{}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let entry = Entry {
            id: id.clone(),
            target: session.target.to_string(),
            pid: session.intproxy_pid(),
            since,
            session: Some(session),
        };
        if let Ok(mut entries) = self.entries.lock() {
            entries.push(entry);
        }
        id
    }

    pub fn list(&self) -> Vec<SessionInfo> {
        let Ok(entries) = self.entries.lock() else {
            return Vec::new();
        };
        entries
            .iter()
            .map(|e| SessionInfo {
                session_id: e.id.clone(),
                target: e.target.clone(),
                pid: e.pid,
                since: e.since,
                state: if e.session.is_some() {
                    "running"
                } else {
                    "ended"
                }
                .into(),
            })
            .collect()
    }

    /// Ends session `id` and waits (blocking, a few seconds at most) until
    /// its intproxy is gone; `Err` names an unknown or already ended id.
    pub fn end(&self, id: &str) -> Result<(), String> {
        let session = {
            let Ok(mut entries) = self.entries.lock() else {
                return Err("the session list is unavailable".into());
            };
            let Some(entry) = entries.iter_mut().find(|e| e.id == id) else {
                return Err(format!("no session {id}: see mirrord/sessions"));
            };
            entry
                .session
                .take()
                .ok_or_else(|| format!("session {id} has already ended"))?
        };
        stop(vec![session]);
        Ok(())
    }

    /// Marks sessions whose intproxy has exited as ended; returns their ids.
    pub fn reap(&self) -> Vec<String> {
        let Ok(mut entries) = self.entries.lock() else {
            return Vec::new();
        };
        let mut gone = Vec::new();
        for entry in entries.iter_mut() {
            if entry.session.as_ref().is_some_and(|s| !s.is_running()) {
                entry.session = None;
                gone.push(entry.id.clone());
            }
        }
        gone
    }

    /// Ends every running session and waits for their intproxies (the
    /// editor went away); returns their ids.
    pub fn end_all(&self) -> Vec<String> {
        let (ids, sessions): (Vec<String>, Vec<Session>) = match self.entries.lock() {
            Ok(mut entries) => entries
                .iter_mut()
                .filter_map(|e| Some((e.id.clone(), e.session.take()?)))
                .unzip(),
            Err(_) => return Vec::new(),
        };
        stop(sessions);
        ids
    }
}

/// SIGTERM to each intproxy (it stops its agent), then waits for them;
/// one still there after [`END_WAIT`] is killed (its agent then ends on
/// its stdin lifeline).
fn stop(sessions: Vec<Session>) {
    for session in &sessions {
        session.end();
    }
    let started = Instant::now();
    while sessions.iter().any(Session::is_running) && started.elapsed() < END_WAIT {
        std::thread::sleep(Duration::from_millis(50));
    }
    for session in sessions.iter().filter(|s| s.is_running()) {
        tracing::warn!(
            pid = session.intproxy_pid(),
            "the intproxy did not stop: killing it"
        );
        // SAFETY: plain syscall; `is_running` checked it is our intproxy.
        unsafe { libc::kill(session.intproxy_pid() as i32, libc::SIGKILL) };
    }
}
