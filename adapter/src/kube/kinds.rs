//! The kinds of object a target can name, with their API resources
//! (Argo Rollouts included, through their CRD's group and version).

use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, StatefulSet},
    batch::v1::{CronJob, Job},
    core::v1::{Pod, Service},
};
use kube::core::{ApiResource, GroupVersionKind};

/// A kind of target object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    Rollout,
    Service,
}

impl Kind {
    /// Every kind, in the order `mirrord ls` prints them.
    pub const ALL: [Kind; 8] = [
        Kind::Pod,
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::Job,
        Kind::CronJob,
        Kind::Rollout,
        Kind::Service,
    ];

    /// The word in target paths: `deployment`.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Pod => "pod",
            Kind::Deployment => "deployment",
            Kind::StatefulSet => "statefulset",
            Kind::DaemonSet => "daemonset",
            Kind::Job => "job",
            Kind::CronJob => "cronjob",
            Kind::Rollout => "rollout",
            Kind::Service => "service",
        }
    }

    /// The resource as RBAC and kubectl name it: `deployments`,
    /// `rollouts.argoproj.io`.
    pub fn resource_name(self) -> String {
        let r = self.resource();
        if r.group.is_empty() {
            r.plural
        } else {
            format!("{}.{}", r.plural, r.group)
        }
    }

    /// Its API resource, for dynamic requests.
    pub fn resource(self) -> ApiResource {
        match self {
            Kind::Pod => ApiResource::erase::<Pod>(&()),
            Kind::Deployment => ApiResource::erase::<Deployment>(&()),
            Kind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
            Kind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
            Kind::Job => ApiResource::erase::<Job>(&()),
            Kind::CronJob => ApiResource::erase::<CronJob>(&()),
            Kind::Service => ApiResource::erase::<Service>(&()),
            Kind::Rollout => ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
                "rollouts",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_named_like_rbac_names_them() {
        assert_eq!(Kind::Pod.resource_name(), "pods");
        assert_eq!(Kind::Deployment.resource_name(), "deployments.apps");
        assert_eq!(Kind::Rollout.resource_name(), "rollouts.argoproj.io");
        assert_eq!(Kind::Rollout.resource().api_version, "argoproj.io/v1alpha1");
    }
}
