//! A listener a program closes gives its target port back while the
//! program runs on (as the layer's `close` hook does): `close(2)` is not
//! stopped by the filter, so the supervisor looks, every
//! [`PERIOD`], which of its subscribed listeners are still listening
//! ([`sockdiag`](super::sockdiag)), and unsubscribes the ports of those
//! that are gone. Costs nothing while no listener is subscribed.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use super::sockdiag;
use super::supervisor::Supervisor;

/// How often the subscribed listeners are looked at.
pub const PERIOD: Duration = Duration::from_millis(250);

/// Runs until aborted (the supervisor's end unsubscribes the rest).
pub async fn watch(sup: Arc<Supervisor>) {
    let Some(((incoming, id), _)) = &sup.incoming else {
        return;
    };
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !sup.sockets.any_listening() {
            continue;
        }
        let alive = match sockdiag::listening_inodes() {
            Ok(alive) => alive,
            Err(e) => {
                warn!("cannot list listening sockets (sock_diag), closed listeners keep their ports until the program ends: {e}");
                return;
            }
        };
        for port in sup.sockets.closed_listeners(&alive) {
            debug!(port, "listener closed: the port goes back to the target");
            if let Err(e) = incoming.unlisten(*id, port).await {
                debug!(port, "unsubscribe failed: {e}");
            }
        }
    }
}
