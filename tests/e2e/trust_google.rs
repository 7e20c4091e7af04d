//! Trust round (issue 12), Google and the sync: the token endpoint guard, the access-token cache,
//! prompt cancellation, and stored settings that do not decode.
