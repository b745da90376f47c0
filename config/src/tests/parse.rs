//! The file format in all three syntaxes: defaults, short forms, long forms.

use std::collections::BTreeMap;

use super::{check_ok, pattern};
use crate::*;

#[test]
fn empty_documents_are_the_defaults() {
    let defaults = MirrordConfig::default();
    check_ok("{}", "", "{}", &defaults);
    assert_eq!(defaults.feature.fs.mode, FsMode::Read);
    assert_eq!(defaults.agent.log_level, LogLevel::Info);
    assert_eq!(defaults.agent.startup_timeout, 30);
    assert!(defaults.feature.env.enabled && defaults.feature.network.dns.enabled);
    assert!(defaults.feature.network.outgoing.tcp && defaults.feature.network.outgoing.udp);
}

#[test]
fn short_forms() {
    let mut expected = MirrordConfig::default();
    expected.target.path = Some(Target::Pod {
        name: "x".into(),
        container: None,
    });
    expected.feature.fs.mode = FsMode::Write;
    expected.feature.env.enabled = false;
    expected.feature.network.outgoing = OutgoingConfig {
        tcp: false,
        udp: false,
        filter: None,
    };
    expected.feature.network.dns.enabled = false;
    expected.skip_processes = vec!["bash".into()];
    check_ok(
        r#"{"target": "pod/x", "feature": {"fs": "write", "env": false,
            "network": {"outgoing": false, "dns": false}}, "skip_processes": "bash"}"#,
        "target = \"pod/x\"\nskip_processes = \"bash\"\n[feature]\nfs = \"write\"\nenv = false\n\
         [feature.network]\noutgoing = false\ndns = false\n",
        "target: pod/x\nskip_processes: bash\nfeature:\n  fs: write\n  env: false\n  network:\n    outgoing: false\n    dns: false\n",
        &expected,
    );
}

#[test]
fn long_forms() {
    let expected = MirrordConfig {
        target: TargetConfig {
            path: Some(Target::Pid(1234)),
            namespace: Some("dev".into()),
        },
        feature: FeatureConfig {
            env: EnvConfig {
                enabled: true,
                include: Some(vec!["DB_*".into(), "API".into()]),
                exclude: vec!["DB_PASSWORD".into()],
                overrides: BTreeMap::from([("MODE".into(), "local".into())]),
            },
            fs: FsConfig {
                mode: FsMode::LocalWithOverrides,
                read_write: vec![pattern("^/data/")],
                read_only: vec![pattern("^/config/"), pattern("\\.ya?ml$")],
                local: vec![pattern("^/app/")],
                not_found: vec![pattern("\\.secret$")],
            },
            network: NetworkConfig {
                outgoing: OutgoingConfig {
                    tcp: true,
                    udp: false,
                    filter: Some(OutgoingFilter::Remote(vec![
                        "10.0.0.0/8".parse().unwrap(),
                        "tcp://db.internal:5432".parse().unwrap(),
                    ])),
                },
                dns: DnsConfig {
                    enabled: true,
                    filter: Some(DnsFilter::Local(vec![HostPattern::new("*.corp").unwrap()])),
                },
            },
            interception: Interception::Syscall,
        },
        agent: AgentConfig {
            log_level: LogLevel::Trace,
            startup_timeout: 90,
            ..Default::default()
        },
        kube_context: Some("staging".into()),
        kubeconfig: Some("/etc/kube/config".into()),
        skip_processes: vec!["bash".into(), "node".into()],
    };
    check_ok(
        r#"{
          "target": {"path": "pid/1234", "namespace": "dev"},
          "feature": {
            "env": {"include": "DB_*;API", "exclude": ["DB_PASSWORD"], "override": {"MODE": "local"}},
            "fs": {"mode": "localwithoverrides", "read_write": ["^/data/"], "read_only": ["^/config/", "\\.ya?ml$"],
                   "local": ["^/app/"], "not_found": ["\\.secret$"]},
            "network": {
              "outgoing": {"udp": false, "filter": {"remote": ["10.0.0.0/8", "tcp://db.internal:5432"]}},
              "dns": {"filter": {"local": ["*.corp"]}}
            },
            "interception": "syscall"
          },
          "agent": {"log_level": "trace", "startup_timeout": 90},
          "kube_context": "staging",
          "kubeconfig": "/etc/kube/config",
          "skip_processes": ["bash", "node"]
        }"#,
        r#"
skip_processes = ["bash", "node"]
kube_context = "staging"
kubeconfig = "/etc/kube/config"
[target]
path = "pid/1234"
namespace = "dev"
[feature]
interception = "syscall"
[feature.env]
include = "DB_*;API"
exclude = ["DB_PASSWORD"]
override = { MODE = "local" }
[feature.fs]
mode = "localwithoverrides"
read_write = ["^/data/"]
read_only = ["^/config/", '\.ya?ml$']
local = ["^/app/"]
not_found = ['\.secret$']
[feature.network.outgoing]
udp = false
filter = { remote = ["10.0.0.0/8", "tcp://db.internal:5432"] }
[feature.network.dns]
filter = { local = ["*.corp"] }
[agent]
log_level = "trace"
startup_timeout = 90
"#,
        r#"
target: {path: pid/1234, namespace: dev}
kube_context: staging
kubeconfig: /etc/kube/config
feature:
  interception: syscall
  env: {include: "DB_*;API", exclude: [DB_PASSWORD], override: {MODE: local}}
  fs:
    mode: localwithoverrides
    read_write: ["^/data/"]
    read_only: ["^/config/", '\.ya?ml$']
    local: ["^/app/"]
    not_found: ['\.secret$']
  network:
    outgoing:
      udp: false
      filter: {remote: [10.0.0.0/8, "tcp://db.internal:5432"]}
    dns: {filter: {local: ["*.corp"]}}
agent: {log_level: trace, startup_timeout: 90}
skip_processes: [bash, node]
"#,
        &expected,
    );

    // The resolved config survives the trip to the layer and back.
    let json = to_json(&expected);
    assert_eq!(from_json(&json).map_err(|e| e.to_string()), Ok(expected));
}
