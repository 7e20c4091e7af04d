//! Checks of an uploaded Entra app credential before it is stored (`PUT
//! /api/v1/directory/entra-credential`): a client secret's shape, or a certificate and its private
//! key. A certificate is refused at upload rather than at the next sync when it could never sign
//! a client assertion Entra accepts: not an RSA certificate (Entra verifies RS256/PS256), expired
//! or not yet valid, or a private key of another certificate.
//!
//! PKCS#12 (`.pfx`) files are not read: product.md §8 names the PEM pair only; `openssl pkcs12
//! -in app.pfx -nodes` turns one into that pair.

use chrono::{DateTime, Utc};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::SecretString;

use crate::{Error, Result};

/// Longest client secret accepted. Entra's are 40 characters; anything far longer is a paste of
/// something else.
pub const SECRET_MAX_LEN: usize = 1024;

/// Smallest RSA modulus accepted, in bits: Entra and Microsoft's libraries want 2048 at least,
/// and the signature checks of rustls (what the emulator verifies with) start there.
pub const MIN_RSA_BITS: usize = 2048;

/// A certificate and key that passed [`check_certificate`].
pub struct CheckedCertificate {
    /// The certificate alone, re-encoded as PEM from its DER (a pasted chain keeps only its first
    /// certificate, the one registered on the app).
    pub certificate_pem: String,
    /// Upper-case hex SHA-1 of the certificate's DER, as the Entra admin center shows it.
    pub thumbprint: String,
    /// When the certificate expires.
    pub not_after: DateTime<Utc>,
    /// The private key as uploaded (PEM).
    pub private_key_pem: SecretString,
}

impl std::fmt::Debug for CheckedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedCertificate")
            .field("thumbprint", &self.thumbprint)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn invalid(code: &'static str, field: &'static str, message: String) -> Error {
    Error::invalid(code, message).with_details(serde_json::json!({ "field": field }))
}

/// A client secret as pasted (surrounding whitespace dropped); 422 `invalid_entra_credential`
/// when it is empty, too long, or holds whitespace or control characters (none of Entra's do:
/// such a value is a paste gone wrong, and would fail only later, at the token endpoint).
pub fn check_client_secret(secret: &str) -> Result<SecretString> {
    let s = secret.trim();
    if s.is_empty() {
        return Err(invalid(
            "invalid_entra_credential",
            "client_secret",
            "client_secret is empty: paste the secret's Value (not its Secret ID) from the app \
             registration's Certificates & secrets page"
                .into(),
        ));
    }
    if s.len() > SECRET_MAX_LEN {
        return Err(invalid(
            "invalid_entra_credential",
            "client_secret",
            format!("client_secret is longer than {SECRET_MAX_LEN} characters: Entra's are 40"),
        ));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "invalid_entra_credential",
            "client_secret",
            "client_secret holds whitespace or control characters, which no Entra secret has"
                .into(),
        ));
    }
    Ok(SecretString::from(s.to_string()))
}

/// Upper-case hex SHA-1 of a certificate's DER: the thumbprint of the Entra admin center and of
/// MSAL (SHA-1 because that is what Microsoft names certificates by, not for security).
pub fn thumbprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    hex::encode_upper(digest.as_ref())
}

/// Checks a certificate (PEM) and its private key (PEM: PKCS#8 or PKCS#1 RSA, unencrypted) at
/// `now`. 422 with the field named: `invalid_certificate` (no certificate, not X.509, not RSA,
/// a key under 2048 bits, not valid yet), `certificate_expired`, `invalid_private_key` (none,
/// encrypted, not RSA, damaged), `certificate_key_mismatch` (the key of another certificate).
pub fn check_certificate(
    certificate_pem: &str,
    private_key_pem: &str,
    now: DateTime<Utc>,
) -> Result<CheckedCertificate> {
    let bad_cert = |message: String| invalid("invalid_certificate", "certificate_pem", message);
    let der = CertificateDer::from_pem_slice(certificate_pem.as_bytes()).map_err(|_| {
        bad_cert(
            "certificate_pem holds no PEM certificate (-----BEGIN CERTIFICATE-----): upload the \
             certificate registered on the app, in PEM"
                .into(),
        )
    })?;
    let cert = webpki::EndEntityCert::try_from(&der).map_err(|e| {
        bad_cert(format!(
            "certificate_pem is not a usable X.509 certificate ({e:?})"
        ))
    })?;
    let cert_key = rsa::RsaPublicKey::try_from(
        rsa::pkcs8::SubjectPublicKeyInfoRef::try_from(cert.subject_public_key_info().as_ref())
            .map_err(|e| bad_cert(format!("the certificate's public key does not parse ({e})")))?,
    )
    .map_err(|_| {
        bad_cert(
            "the certificate's key is not an RSA key: Entra verifies client assertions signed \
             with RSA (RS256 or PS256); create an RSA certificate (2048 bits or more)"
                .into(),
        )
    })?;
    if cert_key.n().bits() < MIN_RSA_BITS {
        return Err(bad_cert(format!(
            "the certificate's RSA key has {} bits; Entra needs {MIN_RSA_BITS} at least",
            cert_key.n().bits()
        )));
    }
    let (not_before, not_after) = validity(&der)
        .map_err(|e| bad_cert(format!("the certificate's validity does not parse ({e})")))?;
    if now < not_before {
        return Err(bad_cert(format!(
            "the certificate is not valid before {}: check this server's clock, or upload one \
             that is valid now",
            not_before.to_rfc3339()
        )));
    }
    if now > not_after {
        return Err(invalid(
            "certificate_expired",
            "certificate_pem",
            format!(
                "the certificate expired on {}: create a new one, add it to the app \
                 registration (Certificates & secrets) and upload it here",
                not_after.to_rfc3339()
            ),
        ));
    }

    let key = private_key(private_key_pem)?;
    if rsa::RsaPublicKey::from(&key) != cert_key {
        return Err(invalid(
            "certificate_key_mismatch",
            "private_key_pem",
            "private_key_pem is not the private key of this certificate: upload the key the \
             certificate was made with"
                .into(),
        ));
    }
    Ok(CheckedCertificate {
        certificate_pem: pem_of(&der),
        thumbprint: thumbprint(&der),
        not_after,
        private_key_pem: SecretString::from(private_key_pem.trim().to_string()),
    })
}

fn private_key(pem: &str) -> Result<rsa::RsaPrivateKey> {
    let bad = |message: String| invalid("invalid_private_key", "private_key_pem", message);
    if pem.contains("ENCRYPTED PRIVATE KEY") || pem.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(bad(
            "private_key_pem is encrypted: upload it without a passphrase (`openssl pkey -in \
             key.pem -out plain.pem`); it is stored encrypted here"
                .into(),
        ));
    }
    let not_rsa = || {
        bad(
            "private_key_pem is not an RSA key: Entra verifies client assertions signed with \
             RSA"
            .into(),
        )
    };
    // The error says nothing of the key's bytes: its text must not reach a message or a log.
    let key = match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
        Ok(PrivateKeyDer::Pkcs8(der)) => {
            rsa::RsaPrivateKey::from_pkcs8_der(der.secret_pkcs8_der()).map_err(|_| not_rsa())?
        }
        Ok(PrivateKeyDer::Pkcs1(der)) => rsa::RsaPrivateKey::from_pkcs1_der(der.secret_pkcs1_der())
            .map_err(|_| bad("private_key_pem (RSA PRIVATE KEY) does not parse".into()))?,
        Ok(_) => return Err(not_rsa()),
        Err(_) => {
            return Err(bad(
                "private_key_pem holds no PEM private key (-----BEGIN PRIVATE KEY----- or \
                 -----BEGIN RSA PRIVATE KEY-----)"
                    .into(),
            ))
        }
    };
    key.validate()
        .map_err(|_| bad("private_key_pem is not a consistent RSA key".into()))?;
    Ok(key)
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// `notBefore` and `notAfter` of an X.509 certificate (RFC 5280 §4.1): webpki checks them only
/// while building a path to a trust anchor, and an app certificate is usually self-signed.
fn validity(der: &[u8]) -> rsa::pkcs8::der::Result<(DateTime<Utc>, DateTime<Utc>)> {
    use rsa::pkcs8::der::asn1::{GeneralizedTime, UtcTime};
    use rsa::pkcs8::der::{Reader, SliceReader, Tag, TagNumber};

    fn time<'a, R: Reader<'a>>(r: &mut R) -> rsa::pkcs8::der::Result<DateTime<Utc>> {
        let since_epoch = match r.peek_tag()? {
            Tag::UtcTime => r.decode::<UtcTime>()?.to_unix_duration(),
            _ => r.decode::<GeneralizedTime>()?.to_unix_duration(),
        };
        Ok(DateTime::<Utc>::UNIX_EPOCH
            + chrono::Duration::from_std(since_epoch).unwrap_or(chrono::Duration::MAX))
    }

    let mut reader = SliceReader::new(der)?;
    let validity = reader.sequence(|certificate| {
        let validity = certificate.sequence(|tbs| {
            let version = Tag::ContextSpecific {
                constructed: true,
                number: TagNumber::N0,
            };
            if tbs.peek_tag()? == version {
                tbs.tlv_bytes()?;
            }
            tbs.tlv_bytes()?; // serialNumber
            tbs.tlv_bytes()?; // signature
            tbs.tlv_bytes()?; // issuer
            let validity = tbs.sequence(|v| Ok((time(v)?, time(v)?)))?;
            while !tbs.is_finished() {
                tbs.tlv_bytes()?;
            }
            Ok(validity)
        })?;
        while !certificate.is_finished() {
            certificate.tlv_bytes()?;
        }
        Ok(validity)
    })?;
    reader.finish(validity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn key_pem(bits: usize) -> (rsa::RsaPrivateKey, String) {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits).unwrap();
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        (key, pem)
    }

    #[test]
    fn the_emulators_certificate_passes_with_its_thumbprint() {
        let (cert, key) = dirsync_entra_emulator::generate_certificate("dirsync").unwrap();
        let checked = check_certificate(&cert.pem(), &key, Utc::now()).unwrap();
        assert_eq!(checked.thumbprint, cert.sha1_hex);
        assert_eq!(checked.certificate_pem, cert.pem());
        assert_eq!(checked.private_key_pem.expose_secret(), key.trim());
        assert!(checked.not_after > Utc::now());
    }

    #[test]
    fn a_pkcs1_key_is_read_like_a_pkcs8_one() {
        use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
        use rsa::pkcs8::DecodePrivateKey;
        let (cert, key) = dirsync_entra_emulator::generate_certificate("dirsync").unwrap();
        let pkcs1 = rsa::RsaPrivateKey::from_pkcs8_pem(&key)
            .unwrap()
            .to_pkcs1_pem(LineEnding::LF)
            .unwrap()
            .to_string();
        assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"));
        check_certificate(&cert.pem(), &pkcs1, Utc::now()).unwrap();
    }

    #[test]
    fn another_key_an_expired_or_future_certificate_and_junk_are_refused() {
        let (cert, key) = dirsync_entra_emulator::generate_certificate("dirsync").unwrap();
        let (_, other) = key_pem(2048);
        let code = |r: Result<CheckedCertificate>| r.unwrap_err().code();
        assert_eq!(
            code(check_certificate(&cert.pem(), &other, Utc::now())),
            "certificate_key_mismatch"
        );
        let checked = check_certificate(&cert.pem(), &key, Utc::now()).unwrap();
        assert_eq!(
            code(check_certificate(
                &cert.pem(),
                &key,
                checked.not_after + chrono::Duration::seconds(1)
            )),
            "certificate_expired"
        );
        assert_eq!(
            code(check_certificate(
                &cert.pem(),
                &key,
                // rcgen's certificates are valid from 1975 on.
                DateTime::<Utc>::UNIX_EPOCH
            )),
            "invalid_certificate"
        );
        assert_eq!(
            code(check_certificate("nope", &key, Utc::now())),
            "invalid_certificate"
        );
        assert_eq!(
            code(check_certificate(&cert.pem(), "nope", Utc::now())),
            "invalid_private_key"
        );
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = check_certificate(&cert.pem(), encrypted, Utc::now()).unwrap_err();
        assert_eq!(err.code(), "invalid_private_key");
        assert!(err.to_string().contains("encrypted"), "{err}");
    }

    #[test]
    fn the_thumbprint_is_upper_case_hex_sha1() {
        // SHA-1("abc"), FIPS 180 test vector.
        assert_eq!(
            thumbprint(b"abc"),
            "A9993E364706816ABA3E25717850C26C9CD0D89D"
        );
    }

    #[test]
    fn secrets_are_trimmed_and_pastes_gone_wrong_refused() {
        assert_eq!(
            check_client_secret(" abc~DEF \n").unwrap().expose_secret(),
            "abc~DEF"
        );
        for bad in ["", "   ", "two words", &"x".repeat(SECRET_MAX_LEN + 1)] {
            assert_eq!(
                check_client_secret(bad).unwrap_err().code(),
                "invalid_entra_credential"
            );
        }
    }
}
