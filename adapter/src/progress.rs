//! A spinner on stderr while the session starts, shown only on a terminal
//! (silent in pipes, CI and IDEs), or steps handed to a sink (the DAP
//! proxy turns them into progress events).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const FRAMES: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

pub struct Progress {
    state: Option<(Arc<Shared>, JoinHandle<()>)>,
    sink: Option<Sink>,
}

/// Where steps go instead of a spinner (the DAP proxy's client).
pub type Sink = Box<dyn Fn(&str) + Send + Sync>;

struct Shared {
    message: Mutex<String>,
    done: AtomicBool,
}

impl Progress {
    /// A spinner when stderr is a terminal, nothing otherwise.
    pub fn new(message: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress {
                state: None,
                sink: None,
            };
        }
        let shared = Arc::new(Shared {
            message: Mutex::new(message.to_owned()),
            done: AtomicBool::new(false),
        });
        let spin = shared.clone();
        let thread = std::thread::spawn(move || {
            let mut frame = 0;
            while !spin.done.load(Ordering::Relaxed) {
                let message = spin.message.lock().map(|m| m.clone()).unwrap_or_default();
                eprint!(
                    "\r\x1b[2K{} mirrord: {message}",
                    FRAMES[frame % FRAMES.len()]
                );
                let _ = std::io::stderr().flush();
                frame += 1;
                std::thread::sleep(Duration::from_millis(80));
            }
        });
        Progress {
            state: Some((shared, thread)),
            sink: None,
        }
    }

    /// Progress that calls `sink` with each step and draws nothing.
    pub fn to_sink(sink: Sink) -> Self {
        Progress {
            state: None,
            sink: Some(sink),
        }
    }

    pub fn step(&self, message: &str) {
        if let Some(sink) = &self.sink {
            sink(message);
        }
        if let Some((shared, _)) = &self.state {
            if let Ok(mut m) = shared.message.lock() {
                *m = message.to_owned();
            }
        }
    }

    /// Stops the spinner, leaving `message` on its line (or nothing).
    pub fn finish(mut self, message: Option<&str>) {
        if let Some((shared, thread)) = self.state.take() {
            shared.done.store(true, Ordering::Relaxed);
            let _ = thread.join();
            match message {
                Some(m) => eprintln!("\r\x1b[2K✓ mirrord: {m}"),
                None => eprint!("\r\x1b[2K"),
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some((shared, thread)) = self.state.take() {
            shared.done.store(true, Ordering::Relaxed);
            let _ = thread.join();
            eprint!("\r\x1b[2K");
        }
    }
}
