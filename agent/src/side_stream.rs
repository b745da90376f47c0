//! Side streams (protocol 1.4): a client connection opened with
//! `OpenStream` carries one outgoing TCP connection, unframed. The agent
//! connects from the target, answers `StreamOpened`, and relays the two
//! sockets with `splice(2)` until both directions end, either fails, or
//! the agent shuts down.

use std::net::SocketAddr;

use mirrord_protocol::{codec, splice, AgentMessage, RemoteError};
use tokio::sync::watch;

use crate::listener::ClientStream;
use crate::outgoing::{connect_tcp, CONNECT_TIMEOUT};
use crate::session::Shared;

pub async fn serve<S: ClientStream>(
    mut client: S,
    remote: SocketAddr,
    shared: &Shared,
    mut shutdown: watch::Receiver<Option<String>>,
) {
    let connected = connect_tcp(&shared.factory, remote, CONNECT_TIMEOUT)
        .await
        .and_then(|target| {
            let local = target.local_addr().map_err(|e| RemoteError::from_io(&e))?;
            Ok((target, local))
        });
    let (target, result) = match connected {
        Ok((target, local)) => (Some(target), Ok(local)),
        Err(e) => {
            tracing::debug!(error = %e, "connect failed");
            (None, Err(e))
        }
    };
    let answer = AgentMessage::StreamOpened { result };
    if let Err(e) = codec::write_one_frame(&mut client, &answer).await {
        return tracing::debug!(error = %e, "the client left before the answer");
    }
    let Some(target) = target else {
        return;
    };
    tracing::debug!("connected");
    let fds = client
        .into_fd()
        .and_then(|client| Ok((client, target.into_std()?.into())));
    let (client, target) = match fds {
        Ok(fds) => fds,
        Err(e) => return tracing::warn!(error = %e, "cannot relay a side stream"),
    };
    tokio::select! {
        relayed = splice::relay(client, target) => match relayed {
            Ok((sent, received)) => tracing::debug!(sent, received, "side stream ended"),
            Err(e) => tracing::debug!(error = %e, "side stream failed"),
        },
        _ = shutdown.wait_for(Option::is_some) => tracing::debug!("agent shutting down"),
    }
}
