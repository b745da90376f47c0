//! Kubernetes through kube-rs: connecting as kubectl does ([`client`]),
//! resolving a target to a pod's container ([`resolve`]) and the errors a
//! user can act on ([`error`]). Only the `mirrord` binary links kube; the
//! layer and the agent never do.

pub mod agent_job;
pub mod client;
pub mod confirm;
pub mod error;
pub mod gone;
pub mod kinds;
pub mod launch;
pub mod list;
pub mod pods;
pub mod resolve;
pub mod suggest;

#[cfg(test)]
mod tests;

pub use client::{connect, KubeSettings};
pub use resolve::{resolve, Resolved};

/// Runs `future` on a runtime of its own: the CLI paths that call this are
/// synchronous and run no other runtime.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start an async runtime: {e}"))?;
    Ok(runtime.block_on(future))
}

/// Resolves a Kubernetes target of `config` (a blocking call for the CLI).
pub fn resolve_blocking(
    config: &mirrord_config::MirrordConfig,
    target: &mirrord_config::Target,
) -> anyhow::Result<Resolved> {
    let settings = KubeSettings::from_config(config);
    let namespace = config.target.namespace.as_deref();
    block_on(async {
        let cluster = connect(&settings).await?;
        resolve(&cluster, target, namespace).await
    })??
    .ok_or_else(|| anyhow::anyhow!("{target} is not a Kubernetes target"))
}
