//! Access tokens cached in the process, for every provider's token source (Google's JWT
//! bearer grant, Entra's client credentials): one token per key, shared by sync jobs, the
//! connection test and the group listing, which each build their own client; fetched by one
//! caller while the others wait for it, and replaced shortly before it expires.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

/// A cached token is replaced this long before it expires (or at half its lifetime, when that
/// is shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Tokens by what they are for (`K`: a provider's key of credential, subject and scopes, so
/// that a changed configuration never uses a token obtained for the old one). Cheap to clone:
/// one shared map.
pub struct TokenCache<K> {
    slots: Arc<Mutex<HashMap<K, Slot>>>,
}

impl<K> Clone for TokenCache<K> {
    fn clone(&self) -> Self {
        TokenCache {
            slots: self.slots.clone(),
        }
    }
}

impl<K> Default for TokenCache<K> {
    fn default() -> Self {
        TokenCache {
            slots: Arc::default(),
        }
    }
}

impl<K> std::fmt::Debug for TokenCache<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl<K: Hash + Eq> TokenCache<K> {
    /// An empty cache.
    pub fn new() -> TokenCache<K> {
        TokenCache::default()
    }

    /// Forgets every token (after a new credential was uploaded, or the impersonated admin
    /// changed): clients built from then on fetch a new one.
    pub fn clear(&self) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The slot of `key`, shared with every other holder of the same key.
    pub(crate) fn slot(&self, key: K) -> Slot {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone()
    }
}

struct Cached {
    token: SecretString,
    refresh_at: Instant,
}

/// One cached token. A tokio mutex held across the fetch, so that concurrent callers share one
/// token request.
#[derive(Clone, Default)]
pub(crate) struct Slot(Arc<tokio::sync::Mutex<Option<Cached>>>);

impl Slot {
    /// The cached token unless it is due for replacement or `fresh` is asked (the connection
    /// test: a cached token would hide a credential revoked since); otherwise `fetch`'s token
    /// (with its lifetime), cached for the others.
    pub(crate) async fn get<E, Fut>(
        &self,
        fresh: bool,
        fetch: impl FnOnce() -> Fut,
    ) -> Result<SecretString, E>
    where
        Fut: Future<Output = Result<(SecretString, Duration), E>>,
    {
        let mut cache = self.0.lock().await;
        if let Some(c) = cache.as_ref().filter(|_| !fresh) {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let (token, lifetime) = fetch().await?;
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        *cache = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
        });
        Ok(token)
    }

    /// Drops `stale` (after a 401), unless another caller already replaced it.
    pub(crate) async fn invalidate(&self, stale: &SecretString) {
        let mut cache = self.0.lock().await;
        if cache
            .as_ref()
            .is_some_and(|c| c.token.expose_secret() == stale.expose_secret())
        {
            *cache = None;
        }
    }
}
