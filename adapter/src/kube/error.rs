//! Everything that can go wrong talking to a cluster, each with the cause
//! and the fix in its message, and the one place API errors are turned
//! into them (naming the verb, resource and namespace RBAC refused).

/// A Kubernetes error for the user.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(
        "no kubeconfig found ({detail}); set KUBECONFIG, create ~/.kube/config (your cloud's \
         `get-credentials` command writes one), or set `kubeconfig` in the mirrord config"
    )]
    NoKubeconfig { detail: String },
    #[error("the kubeconfig {path} cannot be used: {detail}")]
    BadKubeconfig { path: String, detail: String },
    #[error(
        "kube context \"{context}\" is not in the kubeconfig; its contexts are: {known}. Fix \
         `kube_context` in the mirrord config (or pick one from `kubectl config get-contexts`)"
    )]
    UnknownContext { context: String, known: String },
    #[error(
        "cannot reach the Kubernetes API server at {url}: {detail}; check that the cluster is up \
         and reachable from here (VPN, proxy) with `kubectl cluster-info`"
    )]
    Unreachable { url: String, detail: String },
    #[error(
        "the API server at {url} did not accept your credentials (401 Unauthorized); log in \
         again (refresh your cloud credentials or token) and check with `kubectl auth whoami`"
    )]
    Unauthorized { url: String },
    #[error(
        "not allowed to {verb} {resource} in {scope} (403 Forbidden: {message}); ask your \
         cluster admin for that permission, check it with `kubectl auth can-i {verb} {resource}{flag}`"
    )]
    Forbidden {
        verb: String,
        resource: String,
        scope: String,
        flag: String,
        message: String,
    },
    #[error("{0}")]
    Target(String),
    #[error("the API server answered {verb} {resource} with {code} {reason}: {message}")]
    Api {
        verb: String,
        resource: String,
        code: u16,
        reason: String,
        message: String,
    },
}

/// The request that failed, for naming it in the error.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub verb: &'a str,
    /// The plural: `pods`, `deployments`, `rollouts.argoproj.io`.
    pub resource: &'a str,
    /// `None`: cluster-wide or every namespace.
    pub namespace: Option<&'a str>,
    /// The API server's URL.
    pub url: &'a str,
}

impl KubeError {
    /// Turns a kube-rs error of `request` into the user's error.
    pub fn from_api(err: kube::Error, request: Request<'_>) -> KubeError {
        match err {
            kube::Error::Api(status) => match status.code {
                401 => KubeError::Unauthorized {
                    url: request.url.to_owned(),
                },
                403 => {
                    let (scope, flag) = match request.namespace {
                        Some(ns) => (format!("namespace \"{ns}\""), format!(" -n {ns}")),
                        None => ("every namespace".to_owned(), " -A".to_owned()),
                    };
                    KubeError::Forbidden {
                        verb: request.verb.to_owned(),
                        resource: request.resource.to_owned(),
                        scope,
                        flag,
                        message: status.message.clone(),
                    }
                }
                code => KubeError::Api {
                    verb: request.verb.to_owned(),
                    resource: request.resource.to_owned(),
                    code,
                    reason: status.reason.clone(),
                    message: status.message.clone(),
                },
            },
            other => KubeError::Unreachable {
                url: request.url.to_owned(),
                detail: chain(&other),
            },
        }
    }
}

/// Whether a kube-rs error is the API server's 404.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

/// An error and its sources, `: `-separated.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}
