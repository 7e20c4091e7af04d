//! An e-mail address that passed the checks every stored address must pass.

use std::fmt;

use crate::{Error, Result};

/// A syntactically valid e-mail address, kept as given (case included); [`Email::key`] is the
/// [`AddressKey`] under which addresses are unique and looked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Longest address SMTP can carry (RFC 5321: a 256-octet path minus the angle brackets).
const MAX_LEN: usize = 254;
/// Longest local part (RFC 5321).
const MAX_LOCAL_LEN: usize = 64;

impl Email {
    /// Checks an address: one `@`, a local part of dot-separated atoms (no quoting, no
    /// comments: Google Workspace does not hand those out either), a domain of at least two
    /// dot-separated labels of letters, digits and inner hyphens. Surrounding whitespace is
    /// dropped.
    pub fn parse(raw: &str) -> Result<Email> {
        let s = raw.trim();
        let bad = |why: &str| {
            Error::invalid(
                "invalid_email",
                format!("{s:?} is not an e-mail address: {why}"),
            )
            .with_details(serde_json::json!({ "email": s }))
        };
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.len() > MAX_LEN {
            return Err(bad("it is longer than 254 characters"));
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(|| bad("it has no @"))?;
        if local.is_empty() || local.len() > MAX_LOCAL_LEN {
            return Err(bad("the part before @ must be 1 to 64 characters"));
        }
        let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        if local
            .split('.')
            .any(|atom| atom.is_empty() || !atom.chars().all(atext))
        {
            return Err(bad(
                "the part before @ may hold letters, digits, !#$%&'*+-/=?^_`{|}~ and single inner dots",
            ));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(bad(
                "the domain must be dot-separated labels of letters, digits and inner hyphens, like example.com",
            ));
        }
        Ok(Email(s.to_string()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-cased address: unique across all users, and what lookups compare.
    pub fn key(&self) -> AddressKey {
        AddressKey::new(&self.0)
    }

    /// The address as given.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The case-insensitive key of an address or a user name: lower-cased, as
/// `user_emails.address_key` and `users.user_name_key` store it, under unique indexes. A
/// directory user's name is its lower-cased primary address, so names and addresses share the
/// one key. Everything that writes or compares keys builds them here, so that keys always agree
/// and a key cannot be mixed up with the address as given. Surrounding whitespace is the
/// caller's to drop ([`Email::parse`] does; user names cannot hold any).
// It wraps the `String` that `to_lowercase` builds: no allocation beyond it (the planner builds
// one per name and address of 100,000 users).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressKey(String);

impl AddressKey {
    /// The key of `name_or_address`.
    pub fn new(name_or_address: &str) -> AddressKey {
        AddressKey(name_or_address.to_lowercase())
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<AddressKey> for String {
    fn from(k: AddressKey) -> String {
        k.0
    }
}

impl From<AddressKey> for sea_orm::Value {
    fn from(k: AddressKey) -> sea_orm::Value {
        k.0.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_keeps_their_case() {
        for ok in [
            "ada@example.com",
            "Ada.Lovelace@Example.COM",
            "first+tag@mail.example.co.uk",
            "o'brien@example.ie",
            "jörg@bücher.de",
            "x@a-b.io",
        ] {
            let e = Email::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(e.as_str(), ok);
        }
        assert_eq!(Email::parse("  ada@x.com ").unwrap().as_str(), "ada@x.com");
        assert_eq!(
            Email::parse("Ada@X.Com").unwrap().key().as_str(),
            "ada@x.com"
        );
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "ada@@example.com",
            "ada@exa mple.com",
            "a da@example.com",
            ".ada@example.com",
            "ada.@example.com",
            "a..da@example.com",
            "ada@-example.com",
            "ada@example-.com",
            "ada@example..com",
            "\"ada\"@example.com",
            "ada@exam\tple.com",
        ] {
            let e = Email::parse(bad);
            assert!(
                matches!(
                    e,
                    Err(Error::Invalid {
                        code: "invalid_email",
                        ..
                    })
                ),
                "{bad:?} was accepted"
            );
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
    }
}
