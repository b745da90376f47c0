//! Waiting for the choice `mirrord pick --out FILE` writes.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::pick::Choice;

/// The picked target, or why there is none. The file is removed.
pub async fn wait(path: &Path, timeout: Duration) -> Result<String, String> {
    let started = Instant::now();
    loop {
        if let Ok(content) = std::fs::read(path) {
            let _ = std::fs::remove_file(path);
            return match serde_json::from_slice::<Choice>(&content) {
                Ok(Choice::Target(target)) => Ok(target),
                Ok(Choice::Cancelled) => Err("no target was picked".into()),
                Err(e) => Err(format!("the picker wrote {}: {e}", path.display())),
            };
        }
        if started.elapsed() > timeout {
            return Err(format!(
                "no target was picked within {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
