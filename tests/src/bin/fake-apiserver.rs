//! `fake-apiserver --fixture FILE [--listen ADDR] [--kubeconfig PATH]
//! [--namespace NS]`: the test Kubernetes API server as a process. Prints
//! `listening http://ADDR` once it serves, and runs until its standard
//! input closes. Agent Jobs run the `mirrord-agent` built beside it.

use std::io::Read;

use anyhow::{bail, Context};
use mirrord_tests::kube::FakeApiServer;

fn main() -> anyhow::Result<()> {
    let mut fixture = None;
    let mut listen = "127.0.0.1:0".to_owned();
    let mut kubeconfig = None;
    let mut namespace = "default".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--fixture" => fixture = Some(value()?),
            "--listen" => listen = value()?,
            "--kubeconfig" => kubeconfig = Some(value()?),
            "--namespace" => namespace = value()?,
            other => bail!(
                "unknown argument {other}; usage: fake-apiserver --fixture FILE [--listen ADDR] \
                 [--kubeconfig PATH] [--namespace NS]"
            ),
        }
    }
    let fixture = fixture.context("--fixture FILE is required")?;
    let text = std::fs::read_to_string(&fixture).with_context(|| format!("reading {fixture}"))?;
    let agent = Some(mirrord_tests::bin_path("mirrord-agent")).filter(|p| p.exists());
    let server = FakeApiServer::start_on(&text, &listen, agent)?;
    if let Some(path) = kubeconfig {
        server.write_kubeconfig(path.as_ref(), &namespace)?;
    }
    println!("listening {}", server.url());
    // Runs until the parent closes our stdin (or exits).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    Ok(())
}
