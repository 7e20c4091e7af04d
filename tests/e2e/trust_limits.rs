//! Trust round (issue 12), limits and resources: per-route policies keyed on the matched route,
//! stored sign-in attempts, metrics labels, failed authentication, and trusted proxies.
