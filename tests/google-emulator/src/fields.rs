//! Google's `fields=` partial-response syntax.
//!
//! Grammar (what Google documents and clients send):
//!
//! ```text
//! selection := item ("," item)*
//! item      := path ["(" selection ")"]
//! path      := name ("/" name)*
//! name      := [A-Za-z0-9_*]+
//! ```
//!
//! `a/b` selects `b` inside `a`; `items(x,y)` selects `x` and `y` in every element of the array
//! `items`; `*` selects everything at its level. Selecting a field a response lacks is not an
//! error here (Google rejects unknown field names; this emulator cannot tell them from fields
//! that are merely absent, such as empty `aliases`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A parsed selection: field name → sub-selection (`None`: the whole value).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields(BTreeMap<String, Option<Fields>>);

impl Fields {
    /// Parses a `fields` parameter; the error is the message Google would give.
    pub fn parse(s: &str) -> Result<Fields, String> {
        let chars: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
        let mut pos = 0;
        let f = parse_selection(&chars, &mut pos)
            .map_err(|_| format!("Invalid field selection {s}"))?;
        if pos != chars.len() {
            return Err(format!("Invalid field selection {s}"));
        }
        Ok(f)
    }

    fn insert(&mut self, path: &[String], sub: Option<Fields>) {
        let (first, rest) = path.split_first().expect("non-empty path");
        let entry = self.0.entry(first.clone());
        if rest.is_empty() {
            match entry {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(sub);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let merged = merge(o.get_mut().take(), sub);
                    *o.get_mut() = merged;
                }
            }
        } else {
            let slot = entry.or_insert_with(|| Some(Fields::default()));
            if let Some(inner) = slot {
                inner.insert(rest, sub);
            }
            // `None` already selects everything below.
        }
    }

    /// Applies the selection to a response.
    pub fn apply(&self, v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                if self.0.contains_key("*") && self.0.len() == 1 && self.0["*"].is_none() {
                    return v.clone();
                }
                let mut out = Map::new();
                for (k, val) in map {
                    let sel = self.0.get(k.as_str()).or_else(|| self.0.get("*"));
                    match sel {
                        Some(None) => {
                            out.insert(k.clone(), val.clone());
                        }
                        Some(Some(sub)) => {
                            out.insert(k.clone(), sub.apply(val));
                        }
                        None => {}
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(|i| self.apply(i)).collect()),
            other => other.clone(),
        }
    }
}

fn merge(a: Option<Fields>, b: Option<Fields>) -> Option<Fields> {
    match (a, b) {
        (None, _) | (_, None) => None,
        (Some(mut a), Some(b)) => {
            for (k, v) in b.0 {
                a.insert(&[k], v);
            }
            Some(a)
        }
    }
}

fn parse_selection(c: &[char], pos: &mut usize) -> Result<Fields, ()> {
    let mut f = Fields::default();
    loop {
        let mut path = vec![parse_name(c, pos)?];
        while c.get(*pos) == Some(&'/') {
            *pos += 1;
            path.push(parse_name(c, pos)?);
        }
        let sub = if c.get(*pos) == Some(&'(') {
            *pos += 1;
            let inner = parse_selection(c, pos)?;
            if c.get(*pos) != Some(&')') {
                return Err(());
            }
            *pos += 1;
            Some(inner)
        } else {
            None
        };
        f.insert(&path, sub);
        if c.get(*pos) == Some(&',') {
            *pos += 1;
            continue;
        }
        return Ok(f);
    }
}

fn parse_name(c: &[char], pos: &mut usize) -> Result<String, ()> {
    let start = *pos;
    while let Some(ch) = c.get(*pos) {
        if ch.is_ascii_alphanumeric() || *ch == '_' || *ch == '*' {
            *pos += 1;
        } else {
            break;
        }
    }
    if *pos == start {
        return Err(());
    }
    Ok(c[start..*pos].iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_nested_paths_and_array_items() {
        let v = json!({"kind":"k","nextPageToken":"t","users":[
            {"id":"1","primaryEmail":"a@x","name":{"fullName":"A B","givenName":"A"},"isAdmin":false,
             "emails":[{"address":"a@x","primary":true}]},
            {"id":"2","primaryEmail":"b@x","name":{"fullName":"C D","givenName":"C"}}]});
        let f = Fields::parse("nextPageToken,users(id,name/fullName,emails(address))").unwrap();
        assert_eq!(
            f.apply(&v),
            json!({"nextPageToken":"t","users":[
                {"id":"1","name":{"fullName":"A B"},"emails":[{"address":"a@x"}]},
                {"id":"2","name":{"fullName":"C D"}}]})
        );
        let f = Fields::parse("users/id").unwrap();
        assert_eq!(f.apply(&v), json!({"users":[{"id":"1"},{"id":"2"}]}));
        let f = Fields::parse("users(name(givenName)),kind").unwrap();
        assert_eq!(
            f.apply(&v),
            json!({"kind":"k","users":[{"name":{"givenName":"A"}},{"name":{"givenName":"C"}}]})
        );
        let f = Fields::parse("users(id),users/primaryEmail").unwrap();
        assert_eq!(
            f.apply(&v),
            json!({"users":[{"id":"1","primaryEmail":"a@x"},{"id":"2","primaryEmail":"b@x"}]})
        );
        assert_eq!(Fields::parse("*").unwrap().apply(&v), v);
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            "", "users(", "users(id", "a//b", "a,", ",a", "a)b", "users()",
        ] {
            assert!(Fields::parse(bad).is_err(), "{bad}");
        }
    }
}
