//! Which provider a sign-in goes to: the directory's. Google Workspace (or no directory yet)
//! signs in with Google; Microsoft Entra ID with Microsoft, against the configured tenant's own
//! discovery document (`{DIRSYNC_MICROSOFT_LOGIN_URL}/{tenant}/v2.0/.well-known/openid-configuration`).
//!
//! The rules that differ between the two live here and nowhere else: which issuer and tenant an
//! ID token must name, and which claim finds the user (Google's `sub`; Microsoft's `oid`, never
//! its `sub`, which is pairwise per application).

use std::sync::Arc;
use std::time::Duration;

use dirsync_entity::{directory_config, Provider};
use sea_orm::{ConnectionTrait, EntityTrait};
use tokio::sync::Mutex;

use super::provider::{IdpKind, OidcProvider};

/// The issuer of every v2.0 ID token of an Entra tenant, whatever host the sign-in went to:
/// `https://login.microsoftonline.com/{tid}/v2.0` (the emulator signs so too).
pub fn microsoft_issuer(tenant_guid: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant_guid}/v2.0")
}

/// Whether `s` is a GUID (`8-4-4-4-12` hex digits), as Entra's tenant and object ids are.
pub(crate) fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The OpenID Connect providers of this server: Google's, and Microsoft's for the tenant the
/// directory names (made when first needed, replaced when the tenant changes, so that a
/// tenant's keys are never used for another).
pub struct SignInProviders {
    google: Arc<OidcProvider>,
    google_discovery_url: String,
    microsoft_login_url: String,
    outbound: crate::outbound::Outbound,
    refetch_cooldown: Option<Duration>,
    microsoft: Mutex<Option<(String, Arc<OidcProvider>)>>,
}

impl std::fmt::Debug for SignInProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInProviders")
            .field("google", &self.google)
            .field("microsoft_login_url", &self.microsoft_login_url)
            .finish_non_exhaustive()
    }
}

/// The provider of one sign-in and the rules its ID tokens follow.
#[derive(Clone)]
pub(crate) struct Idp {
    pub provider: Arc<OidcProvider>,
    pub rules: Rules,
}

/// What an ID token must say, beyond what every provider's must.
#[derive(Clone, Debug)]
pub(crate) enum Rules {
    /// Google: `iss` is Google; the user is `sub` = `directory_id`; `hd` and `email_verified`.
    Google,
    /// Microsoft: `iss` is the tenant's exactly and `tid` is the tenant; the user is `oid` =
    /// `directory_id`; `allowed_domains` apply to the user's UPN.
    Microsoft {
        /// The tenant as configured (GUID or verified domain).
        tenant: String,
    },
}

impl SignInProviders {
    /// Google at `google_discovery_url`; Microsoft under `microsoft_login_url`.
    pub fn new(
        google_discovery_url: impl Into<String>,
        microsoft_login_url: impl Into<String>,
    ) -> SignInProviders {
        let google_discovery_url = google_discovery_url.into();
        SignInProviders {
            google: Arc::new(OidcProvider::google(google_discovery_url.clone())),
            google_discovery_url,
            microsoft_login_url: microsoft_login_url.into().trim_end_matches('/').to_string(),
            outbound: crate::outbound::Outbound::default(),
            refetch_cooldown: None,
            microsoft: Mutex::new(None),
        }
    }

    /// From the server settings (`DIRSYNC_GOOGLE_DISCOVERY_URL`, `DIRSYNC_MICROSOFT_LOGIN_URL`,
    /// the outbound CAs and proxies).
    pub fn from_settings(settings: &crate::settings::Settings) -> SignInProviders {
        let mut p = SignInProviders::new(
            settings.google_discovery_url.clone(),
            settings.microsoft_login_url.clone(),
        );
        p.outbound = settings.outbound.clone();
        p.google = p.build_google();
        p
    }

    fn build_google(&self) -> Arc<OidcProvider> {
        let mut google =
            OidcProvider::google(self.google_discovery_url.clone()).with_outbound(&self.outbound);
        if let Some(c) = self.refetch_cooldown {
            google = google.with_refetch_cooldown(c);
        }
        Arc::new(google)
    }

    /// Sets the least time between two JWKS refetches caused by unknown `kid`s, for every
    /// provider.
    pub fn with_refetch_cooldown(mut self, cooldown: Duration) -> SignInProviders {
        self.refetch_cooldown = Some(cooldown);
        self.google = self.build_google();
        self
    }

    /// Google's provider.
    pub fn google(&self) -> &Arc<OidcProvider> {
        &self.google
    }

    /// Microsoft's provider for `tenant` (a GUID or a verified domain).
    pub async fn microsoft(&self, tenant: &str) -> Result<Arc<OidcProvider>, crate::Error> {
        let valid = !tenant.is_empty()
            && tenant.len() <= 253
            && tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid {
            return Err(crate::Error::conflict(
                "not_configured",
                "the directory's tenant_id is not a tenant GUID or domain; an administrator \
                 corrects it with PUT /api/v1/directory",
            ));
        }
        let key = tenant.to_ascii_lowercase();
        let mut slot = self.microsoft.lock().await;
        if let Some((t, p)) = slot.as_ref() {
            if *t == key {
                return Ok(p.clone());
            }
        }
        let url = format!(
            "{}/{key}/v2.0/.well-known/openid-configuration",
            self.microsoft_login_url
        );
        let mut p = OidcProvider::new(IdpKind::Microsoft, url)
            .with_outbound(&self.outbound)
            .with_origin_of(&self.microsoft_login_url);
        if let Some(c) = self.refetch_cooldown {
            p = p.with_refetch_cooldown(c);
        }
        let p = Arc::new(p);
        *slot = Some((key, p.clone()));
        Ok(p)
    }

    /// The provider of the directory configured now.
    pub(crate) async fn current<C: ConnectionTrait>(&self, db: &C) -> Result<Idp, crate::Error> {
        let row = directory_config::Entity::find_by_id(crate::directory::ROW_ID)
            .one(db)
            .await?;
        match row {
            Some(r) if r.provider == Provider::MicrosoftEntra => {
                let tenant = r
                    .tenant_id
                    .filter(|t| !t.trim().is_empty())
                    .ok_or_else(|| {
                        crate::Error::conflict(
                        "not_configured",
                        "Sign in with Microsoft needs the directory's tenant: an administrator \
                         sets tenant_id with PUT /api/v1/directory",
                    )
                    })?;
                let tenant = tenant.trim().to_string();
                Ok(Idp {
                    provider: self.microsoft(&tenant).await?,
                    rules: Rules::Microsoft { tenant },
                })
            }
            _ => Ok(Idp {
                provider: self.google.clone(),
                rules: Rules::Google,
            }),
        }
    }
}

impl Idp {
    /// Who runs it.
    pub fn kind(&self) -> IdpKind {
        self.provider.kind()
    }

    /// The tenant's GUID: as configured, or, for a domain, from the issuer of the tenant's own
    /// discovery document. A multi-tenant document (`{tenantid}`) cannot say which tenant a
    /// domain is, so it refuses rather than accept any tenant.
    pub async fn tenant_guid(&self, tenant: &str) -> Result<String, crate::Error> {
        if is_guid(tenant) {
            return Ok(tenant.to_ascii_lowercase());
        }
        let issuer = self.provider.discovery().await?.issuer;
        let guid = issuer
            .strip_prefix("https://login.microsoftonline.com/")
            .and_then(|rest| rest.strip_suffix("/v2.0"))
            .filter(|g| is_guid(g))
            .map(str::to_ascii_lowercase);
        guid.ok_or_else(|| {
            tracing::warn!(
                tenant,
                issuer,
                "the tenant's discovery document names no tenant id"
            );
            crate::Error::upstream(
                "tenant_unresolved",
                format!(
                    "Microsoft's discovery document for {tenant:?} names no tenant id (issuer \
                     {issuer:?}); an administrator sets tenant_id to the tenant's GUID with \
                     PUT /api/v1/directory"
                ),
            )
        })
    }

    /// The issuer this sign-in's answers must name (RFC 9207's `iss` and the ID token's).
    pub async fn expected_issuer(&self) -> Result<String, crate::Error> {
        match &self.rules {
            Rules::Google => Ok(self.provider.discovery().await?.issuer),
            Rules::Microsoft { tenant } => Ok(microsoft_issuer(&self.tenant_guid(tenant).await?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_guid;

    #[test]
    fn guids_are_recognised() {
        assert!(is_guid("9122040d-6c67-4c5b-b112-36a304b66dad"));
        assert!(is_guid("9122040D-6C67-4C5B-B112-36A304B66DAD"));
        for bad in [
            "",
            "contoso.onmicrosoft.com",
            "9122040d6c674c5bb11236a304b66dad",
            "9122040d-6c67-4c5b-b112-36a304b66da",
            "9122040d-6c67-4c5b-b112-36a304b66dax",
            "{tenantid}",
        ] {
            assert!(!is_guid(bad), "{bad}");
        }
    }
}
