//! Graph's objects as dirsync reads them, and their mapping onto the engine's terms
//! (product.md §8, "Microsoft Entra ID").

use serde::Deserialize;

use super::EntraError;
use crate::sync::plan::{DirectoryId, RemoteUser};
use crate::sync::snapshot::Edge;

/// The user properties dirsync reads: one list for the listing and the re-read by id, so that
/// a listed user and a re-read one cannot differ. Everything beyond Graph's default set must be
/// named (reference §2.1).
pub(crate) const USER_SELECT: &str =
    "id,userPrincipalName,displayName,mail,proxyAddresses,accountEnabled,userType";
/// The group properties: id and address for resolving `sync_groups`, the name for choosing them.
pub(crate) const GROUP_SELECT: &str = "id,displayName,mail";
/// A member's properties: `@odata.type` comes with every directory object anyway.
pub(crate) const MEMBER_SELECT: &str = "id,mail";

/// A user as Graph sends it with [`USER_SELECT`]. Selected-but-unset properties come as `null`
/// (reference §2.1), hence the options.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireUser {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub proxy_addresses: Option<Vec<String>>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(default)]
    pub user_type: Option<String>,
}

impl WireUser {
    /// `userType: Guest` (Graph spells it so; compared without regard to case).
    pub fn is_guest(&self) -> bool {
        self.user_type
            .as_deref()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("guest"))
    }
}

/// A group as Graph sends it with [`GROUP_SELECT`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireGroup {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
}

/// A directory object in a member list.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireMember {
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    pub id: String,
    #[serde(default)]
    pub mail: Option<String>,
}

/// What a member is, by its `@odata.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberKind {
    User,
    Group,
    /// Devices, service principals, organisational contacts, and types this client does not
    /// know: counted, never followed (they hold no mailbox of the tenant's users).
    Other,
}

impl WireMember {
    pub fn kind(&self) -> MemberKind {
        match self.odata_type.as_deref().map(str::trim) {
            Some(t) if t.eq_ignore_ascii_case("#microsoft.graph.user") => MemberKind::User,
            Some(t) if t.eq_ignore_ascii_case("#microsoft.graph.group") => MemberKind::Group,
            _ => MemberKind::Other,
        }
    }

    /// The edge the scope follows; `None` for the kinds it does not.
    pub fn edge(&self) -> Option<Edge> {
        if self.id.trim().is_empty() {
            return None;
        }
        match self.kind() {
            MemberKind::User => Some(Edge::User(self.id.clone())),
            MemberKind::Group => Some(Edge::Group(self.id.clone())),
            MemberKind::Other => None,
        }
    }

    /// (id, lower-cased address) of a nested group that has an address.
    pub fn group_address(&self) -> Option<(String, String)> {
        match (self.kind(), non_empty(self.mail.as_deref())) {
            (MemberKind::Group, Some(mail)) if !self.id.trim().is_empty() => {
                Some((self.id.clone(), mail.to_lowercase()))
            }
            _ => None,
        }
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The SMTP addresses of `proxyAddresses`: (primary, aliases). The prefix is matched without
/// regard to case (`SMTP:`/`smtp:`/`Smtp:`), and its case says which is which: exactly `SMTP:`
/// marks the primary (the first one, should there be several), every other `smtp:` spelling an
/// alias. Other prefixes (`SIP:`, `X500:`, `SPO:` ...) are not addresses to sync, and entries
/// without a prefix, without an `@` or empty are left out. Aliases are de-duplicated without
/// regard to case, keeping the first spelling.
pub(crate) fn proxy_smtp(proxies: &[String]) -> (Option<String>, Vec<String>) {
    let mut primary: Option<String> = None;
    let mut aliases: Vec<String> = Vec::new();
    for p in proxies {
        let Some((prefix, address)) = p.trim().split_once(':') else {
            continue;
        };
        let address = address.trim();
        if !prefix.eq_ignore_ascii_case("smtp") || address.is_empty() || !address.contains('@') {
            continue;
        }
        if prefix == "SMTP" && primary.is_none() {
            primary = Some(address.to_string());
        } else if !aliases.iter().any(|a| a.eq_ignore_ascii_case(address)) {
            aliases.push(address.to_string());
        }
    }
    (primary, aliases)
}

/// The engine's view of an Entra user (product.md §8): `directory_id` = the Graph object id;
/// `user_name` = the UPN; the primary address = the `SMTP:` proxy address, else `mail`, else
/// the UPN; the other addresses = the other `smtp:` proxy addresses (`otherMails` are outside
/// addresses and never used); `accountEnabled: false` = disabled. A missing `accountEnabled`
/// (Graph sends it whenever it is selected) counts as enabled: reading it as disabled would
/// disable everyone on a partial answer.
///
/// A user without an id or a UPN is not something Graph sends; it fails the page (the listing
/// is then incomplete and nobody is deleted) rather than being left out, which would look
/// like a departure.
pub(crate) fn to_remote(u: WireUser) -> Result<RemoteUser, EntraError> {
    let malformed = |detail: String| EntraError::MalformedResponse {
        endpoint: "users",
        detail,
    };
    let id = u.id.trim();
    if id.is_empty() {
        return Err(malformed("a user without an id".into()));
    }
    let Some(upn) = non_empty(u.user_principal_name.as_deref()) else {
        return Err(malformed(format!("user {id} has no userPrincipalName")));
    };
    let (smtp_primary, aliases) = proxy_smtp(u.proxy_addresses.as_deref().unwrap_or_default());
    let primary = smtp_primary
        .or_else(|| non_empty(u.mail.as_deref()).map(str::to_string))
        .unwrap_or_else(|| upn.to_string());
    let mut addresses = vec![primary.clone()];
    for a in aliases {
        if !addresses.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
            addresses.push(a);
        }
    }
    Ok(RemoteUser {
        id: DirectoryId::new(id.to_string()),
        user_name: Some(upn.to_string()),
        primary_email: primary,
        full_name: non_empty(u.display_name.as_deref())
            .unwrap_or_default()
            .to_string(),
        addresses,
        disabled: u.account_enabled == Some(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(json: &str) -> WireUser {
        serde_json::from_str(json).unwrap()
    }

    fn mapped(json: &str) -> RemoteUser {
        to_remote(user(json)).unwrap()
    }

    #[test]
    fn the_smtp_proxy_is_primary_and_the_other_smtp_proxies_are_aliases() {
        let u = mapped(
            r#"{"id":"4562bcc8-c436-4f95-b7c0-4f8ce89dca5e","userPrincipalName":"adele@contoso.com",
                "mail":"Adele.Vance@contoso.com","displayName":"Adele Vance","accountEnabled":true,
                "userType":"Member","proxyAddresses":["smtp:adele@contoso.onmicrosoft.com",
                "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=x",
                "SMTP:Adele.Vance@contoso.com","SIP:adele@contoso.com","smtp:av@contoso.com"]}"#,
        );
        assert_eq!(u.id.as_str(), "4562bcc8-c436-4f95-b7c0-4f8ce89dca5e");
        assert_eq!(u.user_name.as_deref(), Some("adele@contoso.com"));
        assert_eq!(u.name(), "adele@contoso.com");
        assert_eq!(u.primary_email, "Adele.Vance@contoso.com");
        assert_eq!(
            u.addresses,
            [
                "Adele.Vance@contoso.com",
                "adele@contoso.onmicrosoft.com",
                "av@contoso.com"
            ]
        );
        assert_eq!(u.full_name, "Adele Vance");
        assert!(!u.disabled);
    }

    #[test]
    fn without_an_smtp_proxy_mail_is_primary_and_without_mail_the_upn() {
        let u = mapped(
            r#"{"id":"1","userPrincipalName":"bob@contoso.com","mail":"Robert@contoso.com",
                "proxyAddresses":["smtp:bob@contoso.onmicrosoft.com"]}"#,
        );
        assert_eq!(u.primary_email, "Robert@contoso.com");
        assert_eq!(
            u.addresses,
            ["Robert@contoso.com", "bob@contoso.onmicrosoft.com"]
        );

        // Missing, null, empty and blank mail all fall through to the UPN.
        for mail in [r#""#, r#","mail":null"#, r#","mail":"""#, r#","mail":"  ""#] {
            let u = mapped(&format!(
                r#"{{"id":"2","userPrincipalName":"carol@contoso.com"{mail},"proxyAddresses":null}}"#
            ));
            assert_eq!(u.primary_email, "carol@contoso.com", "{mail}");
            assert_eq!(u.addresses, ["carol@contoso.com"]);
            assert_eq!(u.user_name.as_deref(), Some("carol@contoso.com"));
        }
    }

    #[test]
    fn other_mails_are_never_addresses() {
        let u = mapped(
            r#"{"id":"3","userPrincipalName":"dan@contoso.com","otherMails":["dan@gmail.com"],
                "proxyAddresses":[]}"#,
        );
        assert_eq!(u.addresses, ["dan@contoso.com"]);
    }

    #[test]
    fn odd_proxy_addresses_are_sorted_out() {
        let (primary, aliases) = proxy_smtp(&[
            String::new(),
            "smtp:".into(),
            "SMTP:".into(),
            "SMTP:   ".into(),
            "nocolon@contoso.com".into(),
            "smtp:not-an-address".into(),
            // Mixed-case prefixes are SMTP addresses, aliases unless exactly `SMTP:`.
            "Smtp:mixed@contoso.com".into(),
            "sMTP:other@contoso.com".into(),
            "SMTP:First@contoso.com".into(),
            // A second `SMTP:` cannot be a second primary.
            "SMTP:second@contoso.com".into(),
            // Duplicates, in any case, count once.
            "smtp:mixed@contoso.com".into(),
            "smtp:MIXED@contoso.com".into(),
            "x500:/o=ExchangeLabs".into(),
            "SPO:SPO_abc@SPO_tenant".into(),
            " smtp: padded@contoso.com ".into(),
        ]);
        assert_eq!(primary.as_deref(), Some("First@contoso.com"));
        assert_eq!(
            aliases,
            [
                "mixed@contoso.com",
                "other@contoso.com",
                "second@contoso.com",
                "padded@contoso.com"
            ]
        );
    }

    #[test]
    fn the_primary_is_not_repeated_among_the_aliases() {
        let u = mapped(
            r#"{"id":"4","userPrincipalName":"eve@contoso.com","mail":"eve@contoso.com",
                "proxyAddresses":["smtp:EVE@contoso.com","smtp:eve@contoso.com","SMTP:eve@contoso.com",
                "smtp:e@contoso.com"]}"#,
        );
        assert_eq!(u.primary_email, "eve@contoso.com");
        assert_eq!(u.addresses, ["eve@contoso.com", "e@contoso.com"]);
    }

    #[test]
    fn only_account_enabled_false_disables() {
        let d = |v: &str| {
            mapped(&format!(
                r#"{{"id":"5","userPrincipalName":"f@contoso.com"{v}}}"#
            ))
            .disabled
        };
        assert!(d(r#","accountEnabled":false"#));
        assert!(!d(r#","accountEnabled":true"#));
        assert!(!d(r#","accountEnabled":null"#));
        assert!(!d(""));
    }

    #[test]
    fn a_user_without_id_or_upn_fails_rather_than_vanishing() {
        for json in [
            r#"{"id":"","userPrincipalName":"g@contoso.com"}"#,
            r#"{"id":"6","userPrincipalName":""}"#,
            r#"{"id":"6","userPrincipalName":null,"mail":"g@contoso.com"}"#,
            r#"{"id":"6"}"#,
        ] {
            let e = to_remote(user(json)).unwrap_err();
            assert_eq!(e.code(), "malformed_response", "{json}");
        }
        assert!(serde_json::from_str::<WireUser>(r#"{"userPrincipalName":"x@y"}"#).is_err());
    }

    #[test]
    fn guests_are_told_by_user_type() {
        assert!(user(r#"{"id":"7","userType":"Guest"}"#).is_guest());
        assert!(user(r#"{"id":"7","userType":"guest"}"#).is_guest());
        assert!(!user(r#"{"id":"7","userType":"Member"}"#).is_guest());
        assert!(!user(r#"{"id":"7","userType":null}"#).is_guest());
        assert!(!user(r#"{"id":"7"}"#).is_guest());
    }

    #[test]
    fn members_are_told_apart_by_odata_type() {
        let m = |t: &str, mail: &str| WireMember {
            odata_type: Some(t.into()),
            id: "m1".into(),
            mail: Some(mail.into()),
        };
        assert_eq!(
            m("#microsoft.graph.user", "").edge(),
            Some(Edge::User("m1".into()))
        );
        assert_eq!(
            m("#microsoft.graph.group", "").edge(),
            Some(Edge::Group("m1".into()))
        );
        assert_eq!(
            m("#microsoft.graph.group", "Team@Contoso.com").group_address(),
            Some(("m1".into(), "team@contoso.com".into()))
        );
        assert_eq!(m("#microsoft.graph.group", " ").group_address(), None);
        for other in [
            "#microsoft.graph.device",
            "#microsoft.graph.servicePrincipal",
            "#microsoft.graph.orgContact",
            "",
        ] {
            assert_eq!(m(other, "x@y.com").edge(), None, "{other}");
            assert_eq!(m(other, "x@y.com").group_address(), None);
        }
        let untyped = WireMember {
            odata_type: None,
            id: "m2".into(),
            mail: None,
        };
        assert_eq!(untyped.edge(), None);
    }
}
