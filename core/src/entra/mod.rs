//! Microsoft Entra ID (Microsoft 365) through Microsoft Graph: the second directory provider
//! (issue 16). The wire facts are in `shared/reference/microsoft-entra.md`; the names callers
//! see in product.md §8.
//!
//! dirsync signs in to Entra as an app registration of the customer's tenant (the
//! client-credentials grant, with a client secret or a certificate), and reads Graph with the
//! application permissions `User.Read.All` and `GroupMember.Read.All`.

pub mod credential;

use secrecy::SecretString;

mod client;
mod delta;
mod diagnose;
mod error;
mod model;
mod provider;
mod token;

#[cfg(test)]
mod delta_tests;
#[cfg(test)]
mod tests;

pub use client::{
    ClientOptions, EntraGroup, GraphClient, Hook, RetryPolicy, GROUP_MEMBER_READ_ALL, USER_READ_ALL,
};
pub use delta::NO_DELTA_LINKS;
pub use diagnose::STEPS;
pub use error::EntraError;
pub use token::{TokenCache, GRAPH_SCOPE};

/// The app registration's credential, decrypted for use.
#[derive(Clone)]
pub enum Credential {
    /// A client secret.
    ClientSecret(SecretString),
    /// A certificate registered on the app, and its private key, which signs the client
    /// assertion (Microsoft's recommendation: no shared secret ever leaves this server).
    Certificate {
        /// The certificate (PEM).
        certificate_pem: String,
        /// Its private key (PEM, PKCS#8 or PKCS#1).
        private_key_pem: SecretString,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::ClientSecret(_) => f.write_str("ClientSecret(..)"),
            Credential::Certificate { .. } => f.write_str("Certificate { .. }"),
        }
    }
}

/// One Entra tenant as the stored configuration names it.
#[derive(Clone, Debug)]
pub struct EntraConfig {
    /// The tenant: its GUID or a verified domain.
    pub tenant_id: String,
    /// The app registration's application (client) id.
    pub client_id: String,
    /// The app's credential.
    pub credential: Credential,
    /// Whether guests (`userType: Guest`) are in scope.
    pub include_guests: bool,
}

/// How this server reaches Microsoft: the server settings, and what every client it builds
/// shares (sync jobs, the connection test, the group listing).
#[derive(Clone, Debug)]
pub struct EntraAccess {
    /// `DIRSYNC_MICROSOFT_LOGIN_URL`.
    pub login_url: String,
    /// `DIRSYNC_MICROSOFT_GRAPH_URL`.
    pub graph_url: String,
    /// This server's metrics registry.
    pub metrics: crate::metrics::Metrics,
    /// Trusted CAs and proxies for outbound requests.
    pub outbound: crate::outbound::Outbound,
    /// Access tokens, shared by every client built from this access (and its clones).
    pub tokens: TokenCache,
}

impl EntraAccess {
    /// From the server settings.
    pub fn from_settings(
        settings: &crate::settings::Settings,
        metrics: crate::metrics::Metrics,
    ) -> EntraAccess {
        EntraAccess {
            login_url: settings.microsoft_login_url.clone(),
            graph_url: settings.microsoft_graph_url.clone(),
            metrics,
            outbound: settings.outbound.clone(),
            tokens: TokenCache::new(),
        }
    }
}
