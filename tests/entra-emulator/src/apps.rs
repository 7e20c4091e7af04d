//! App registrations: client ids, secrets, certificates, and the application permissions an
//! administrator has consented to. Also what checks a client assertion's signature.

use std::collections::BTreeSet;

use anyhow::Context;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde::Serialize;

/// The two application permissions a directory sync needs (reference §2.7).
pub const SYNC_ROLES: [&str; 2] = ["User.Read.All", "GroupMember.Read.All"];

/// A client secret: its value and when it expires.
#[derive(Clone, Debug)]
pub struct ClientSecret {
    /// The value (what clients send; not the secret's id).
    pub value: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// A certificate registered on an app (public part only).
#[derive(Clone, Debug)]
pub struct AppCertificate {
    /// DER.
    pub der: Vec<u8>,
    /// Upper-case hex SHA-1 of the DER: the portal's "thumbprint", MSAL's `thumbprint`.
    pub sha1_hex: String,
    /// base64url SHA-1 of the DER: the `x5t` header.
    pub x5t: String,
    /// base64url SHA-256 of the DER: the `x5t#S256` header.
    pub x5t_s256: String,
}

impl AppCertificate {
    /// From DER.
    pub fn from_der(der: Vec<u8>) -> AppCertificate {
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        let sha256 = ring::digest::digest(&ring::digest::SHA256, &der);
        AppCertificate {
            sha1_hex: sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect(),
            x5t: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256.as_ref()),
            der,
        }
    }

    /// From PEM.
    pub fn from_pem(pem: &str) -> anyhow::Result<AppCertificate> {
        use rustls::pki_types::pem::PemObject;
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .context("while reading a certificate PEM")?;
        // Refuse what cannot verify anything later.
        webpki::EndEntityCert::try_from(&der)
            .map_err(|e| anyhow::anyhow!("not a usable X.509 certificate: {e:?}"))?;
        Ok(AppCertificate::from_der(der.to_vec()))
    }

    /// PEM.
    pub fn pem(&self) -> String {
        let b64 = STANDARD.encode(&self.der);
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }

    /// Whether `signature` over `message` was made with this certificate's key.
    pub fn verifies(&self, alg: &str, message: &[u8], signature: &[u8]) -> bool {
        let der = CertificateDer::from(self.der.as_slice());
        let Ok(cert) = webpki::EndEntityCert::try_from(&der) else {
            return false;
        };
        let algorithm: &dyn rustls::pki_types::SignatureVerificationAlgorithm = match alg {
            "RS256" => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
            // The key is an ordinary rsaEncryption key used for PSS, which is what
            // "legacy key" means here.
            "PS256" => webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            _ => return false,
        };
        cert.verify_signature(algorithm, message, signature).is_ok()
    }
}

/// An app registration and its service principal in the tenant.
#[derive(Clone, Debug)]
pub struct App {
    /// Application (client) id.
    pub client_id: String,
    /// The service principal's object id (`oid`/`sub` of its tokens).
    pub object_id: String,
    /// Display name.
    pub name: String,
    /// Client secrets.
    pub secrets: Vec<ClientSecret>,
    /// Registered certificates.
    pub certificates: Vec<AppCertificate>,
    /// Application permissions with admin consent.
    pub roles: BTreeSet<String>,
    /// `false`: the service principal is disabled (AADSTS7000112).
    pub enabled: bool,
}

/// What a client needs to sign in as an app: what `GET /_emulator/app` answers and
/// `--credentials-file` writes.
#[derive(Clone, Debug, Serialize)]
pub struct AppCredentials {
    /// Tenant id.
    pub tenant_id: String,
    /// Client id.
    pub client_id: String,
    /// A valid client secret value.
    pub client_secret: String,
    /// The registered certificate, PEM.
    pub certificate_pem: Option<String>,
    /// Its private key, PKCS#8 PEM.
    pub private_key_pem: Option<String>,
    /// SHA-1 thumbprint, upper-case hex (MSAL's `thumbprint`).
    pub thumbprint: Option<String>,
    /// Granted application permissions.
    pub roles: Vec<String>,
}

/// A fresh random secret value in Entra's shape (40 characters with a `~`).
pub fn new_secret_value() -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    let s: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(37)
        .map(char::from)
        .collect();
    format!("{}~{}", &s[..3], &s[3..])
}

/// A self-signed RSA 2048 certificate for an app, and its private key (PKCS#8 PEM). RSA because
/// MSAL signs assertions with RS256 or PS256; RSA keys come from `rsa` since ring cannot
/// generate them (it signs the certificate).
pub fn generate_certificate(common_name: &str) -> anyhow::Result<(AppCertificate, String)> {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
        .context("while generating an RSA key")?;
    let der = key.to_pkcs8_der().context("while encoding the RSA key")?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .context("while encoding the RSA key")?
        .to_string();
    let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(der.as_bytes()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .context("while loading the RSA key")?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let cert = params.self_signed(&pair)?;
    Ok((AppCertificate::from_der(cert.der().to_vec()), pem))
}
