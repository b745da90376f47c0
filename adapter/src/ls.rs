//! `mirrord ls [-n NS] [-A] [-o json]`: the Kubernetes targets a user can
//! pick, as a table or as JSON for the IDE pickers (format in the README).

use clap::{Args, ValueEnum};

use crate::kube::{self, list, KubeSettings};

#[derive(Args, Debug)]
pub struct LsArgs {
    /// The config file (for `kube_context`, `kubeconfig` and `target.namespace`).
    #[arg(short = 'f', long = "config-file")]
    pub config_file: Option<std::path::PathBuf>,
    /// The namespace to list (default: `target.namespace`, else the context's).
    #[arg(short = 'n', long, conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,
    /// List every namespace.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// `text` (a table) or `json`.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

pub fn run(args: LsArgs) -> anyhow::Result<()> {
    let config = crate::exec::load_config(&crate::cli::ConfigArgs {
        config_file: args.config_file.clone(),
        ..Default::default()
    })?;
    let settings = KubeSettings::from_config(&config);
    let listing = kube::block_on(async {
        let cluster = kube::connect(&settings).await?;
        let namespace = match (&args.namespace, args.all_namespaces) {
            (_, true) => None,
            (Some(ns), false) => Some(ns.clone()),
            (None, false) => Some(
                config
                    .target
                    .namespace
                    .clone()
                    .unwrap_or_else(|| cluster.default_namespace.clone()),
            ),
        };
        list::list(&cluster, namespace.as_deref()).await
    })??;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&listing)?),
        Output::Text => print!("{}", list::text(&listing)),
    }
    Ok(())
}
