//! The mirrord sessions of one `mirrord dap` process, shared by the DAP
//! streams that use the same config (a parent debug session and the child
//! sessions it starts on their own connections), and ended when the last
//! of them is done.

use std::sync::{Arc, Mutex};

use crate::session::Session;

#[derive(Default)]
pub struct Sessions {
    live: Mutex<Vec<Entry>>,
}

struct Entry {
    key: String,
    session: Arc<Session>,
    users: usize,
}

/// One stream's use of a session; give it back with [`Sessions::release`].
pub struct Lease {
    pub key: String,
    pub session: Arc<Session>,
}

impl Sessions {
    /// The live session for `key` (the resolved config), if any.
    pub fn join(&self, key: &str) -> Option<Lease> {
        let mut live = self.live.lock().ok()?;
        let entry = live.iter_mut().find(|e| e.key == key)?;
        entry.users += 1;
        Some(Lease {
            key: key.to_owned(),
            session: entry.session.clone(),
        })
    }

    /// Registers a session just started for `key`.
    pub fn add(&self, key: String, session: Session) -> Lease {
        let session = Arc::new(session);
        if let Ok(mut live) = self.live.lock() {
            live.push(Entry {
                key: key.clone(),
                session: session.clone(),
                users: 1,
            });
        }
        Lease { key, session }
    }

    /// Gives a lease back; the last one ends the session.
    pub fn release(&self, lease: Lease) {
        let Ok(mut live) = self.live.lock() else {
            lease.session.end();
            return;
        };
        if let Some(i) = live.iter().position(|e| e.key == lease.key) {
            live[i].users -= 1;
            if live[i].users == 0 {
                live.remove(i).session.end();
            }
        }
    }

    /// Ends every session (on SIGTERM of the proxy).
    pub fn end_all(&self) {
        if let Ok(mut live) = self.live.lock() {
            for entry in live.drain(..) {
                entry.session.end();
            }
        }
    }
}
