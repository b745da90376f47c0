//! The test API server's HTTPS side: a cluster CA and a serving
//! certificate it signs, made fresh at each start (rcgen), as a real
//! cluster's API server has; clients trust the CA's PEM
//! ([`TlsIdentity::ca_pem`]), as a pod trusts its service account's
//! `ca.crt`.

use std::sync::Arc;

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The names the serving certificate is valid for: the loopback address
/// the server listens on and the in-cluster DNS names of the API server.
const SERVING_NAMES: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
];

/// A CA and the server configuration whose certificate it signed.
pub struct TlsIdentity {
    /// The CA certificate, PEM: what a client must trust.
    pub ca_pem: String,
    pub acceptor: tokio_rustls::TlsAcceptor,
}

impl TlsIdentity {
    /// Makes a CA and a serving certificate for [`SERVING_NAMES`].
    pub fn generate() -> anyhow::Result<TlsIdentity> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mirrord test cluster CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)
            .context("making the test CA")?;
        let names: Vec<String> = SERVING_NAMES.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let key = KeyPair::generate()?;
        let cert = params
            .signed_by(&key, &ca)
            .context("signing the serving certificate")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .context("the server's TLS configuration")?;
        Ok(TlsIdentity {
            ca_pem: ca.pem(),
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }
}
