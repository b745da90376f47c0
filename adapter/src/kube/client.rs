//! Connecting to the cluster the way kubectl does: the kubeconfig named in
//! the mirrord config, else the files in `KUBECONFIG`, else
//! `~/.kube/config`, else the in-cluster service account; the context
//! from `kube_context`, else the kubeconfig's current one.

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

use super::error::KubeError;

/// Where the cluster's credentials come from (from the mirrord config).
#[derive(Debug, Clone, Default)]
pub struct KubeSettings {
    /// `kubeconfig`: a file instead of kubectl's search.
    pub kubeconfig: Option<String>,
    /// `kube_context`.
    pub context: Option<String>,
}

impl KubeSettings {
    pub fn from_config(config: &mirrord_config::MirrordConfig) -> KubeSettings {
        KubeSettings {
            kubeconfig: config.kubeconfig.clone(),
            context: config.kube_context.clone(),
        }
    }
}

/// A client and what it was made from.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    /// The context's namespace (`default` when it names none).
    pub default_namespace: String,
    /// The API server's URL, for error messages.
    pub url: String,
}

/// How long a connection to the API server may take before it counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a client; no request is made yet.
pub async fn connect(settings: &KubeSettings) -> Result<Cluster, KubeError> {
    let options = KubeConfigOptions {
        context: settings.context.clone(),
        ..Default::default()
    };
    let (kubeconfig, path) = match &settings.kubeconfig {
        Some(path) => (Kubeconfig::read_from(path), path.clone()),
        None => (Kubeconfig::read(), kubeconfig_paths()),
    };
    let mut config = match kubeconfig {
        Ok(kubeconfig) => {
            let contexts: Vec<String> =
                kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| match e {
                    KubeconfigError::LoadContext(context) => KubeError::UnknownContext {
                        context,
                        known: if contexts.is_empty() {
                            "(none)".to_owned()
                        } else {
                            contexts.join(", ")
                        },
                    },
                    other => KubeError::BadKubeconfig {
                        path: path.clone(),
                        detail: other.to_string(),
                    },
                })?
        }
        Err(KubeconfigError::FindPath | KubeconfigError::ReadConfig(..))
            if settings.kubeconfig.is_none() && settings.context.is_none() =>
        {
            let mut config = kube::Config::incluster().map_err(|e| KubeError::NoKubeconfig {
                detail: format!("looked in {path}; not in a cluster either: {e}"),
            })?;
            config.default_namespace = incluster_namespace(&config.default_namespace);
            config
        }
        Err(KubeconfigError::FindPath | KubeconfigError::ReadConfig(..)) => {
            return Err(KubeError::NoKubeconfig {
                detail: format!("cannot read {path}"),
            })
        }
        Err(other) => {
            return Err(KubeError::BadKubeconfig {
                path,
                detail: other.to_string(),
            })
        }
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    let url = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    let default_namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).map_err(|e| KubeError::BadKubeconfig {
        path,
        detail: e.to_string(),
    })?;
    Ok(Cluster {
        client,
        default_namespace,
        url,
    })
}

/// The service account's `namespace` file as kubectl reads it: trimmed
/// (kube-rs takes it verbatim, so a trailing newline would end up in every
/// URL), `default` when empty.
fn incluster_namespace(file: &str) -> String {
    match file.trim() {
        "" => "default".to_owned(),
        ns => ns.to_owned(),
    }
}

/// The files kubectl would read, for messages.
fn kubeconfig_paths() -> String {
    match std::env::var("KUBECONFIG") {
        Ok(paths) if !paths.is_empty() => paths,
        _ => "~/.kube/config".to_owned(),
    }
}
