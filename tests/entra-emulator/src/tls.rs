//! HTTPS: a CA and a server certificate generated at start. MSAL refuses any authority that is
//! not `https://` (reference §6.1), so the emulator must speak TLS; clients trust the CA's PEM.

use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A generated CA and a server certificate it signed.
pub struct Tls {
    /// The CA certificate, PEM: what clients trust.
    pub ca_pem: String,
    pub(crate) config: rustls::ServerConfig,
}

impl Tls {
    /// A CA and a server certificate for `localhost`, `127.0.0.1`, `::1` and `extra_names`
    /// (e.g. a Docker service name). ECDSA P-256 keys: generated in microseconds.
    pub fn generate(extra_names: &[String]) -> anyhow::Result<Tls> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "dirsync Entra emulator CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().context("while generating the CA key")?;
        let ca_cert = ca.self_signed(&ca_key)?;

        let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        names.extend(extra_names.iter().cloned());
        let mut leaf = CertificateParams::new(names)?;
        leaf.distinguished_name
            .push(DnType::CommonName, "entra-emulator");
        // OpenSSL's strict mode (Python 3.13's default) wants the authority key identifier.
        leaf.use_authority_key_identifier_extension = true;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().context("while generating the server key")?;
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;

        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .context("while building the TLS configuration")?;
        Ok(Tls {
            ca_pem: ca_cert.pem(),
            config,
        })
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> anyhow::Result<CertificateDer<'static>> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).context("while reading the CA PEM")
    }
}
