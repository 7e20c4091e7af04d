//! The `$filter` subset Graph accepts on users and groups without advanced-query headers
//! (reference §2.1): `eq`, `in`, `startsWith`, `ge`/`le`, `eq null`, booleans, `and`/`or`,
//! parentheses and `collection/any(x:x eq '..')`; plus `ne`, `not` and `endsWith`, which Graph
//! accepts only with `ConsistencyLevel: eventual` and `$count=true` (§2.9). String comparisons
//! ignore case, as Graph's do for addresses and names.

use serde_json::Value;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Cmp(String, Op, Lit),
    In(String, Vec<Lit>),
    StartsWith(String, String),
    EndsWith(String, String),
    /// `prop/any(x:x eq 'v')`.
    Any(String, Op, Lit),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Ge,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Str(String),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    Colon,
    Slash,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' => {
                out.push(Tok::Colon);
                i += 1
            }
            '/' => {
                out.push(Tok::Slash);
                i += 1
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string literal".into()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' || c == '@' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_.-@".contains(chars[i])) {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character '{other}'")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    /// Whether an advanced operator (`ne`, `not`, `endsWith`) occurs.
    advanced: bool,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, t: Tok) -> Result<(), String> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            other => Err(format!("expected {t:?}, found {other:?}")),
        }
    }
    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(k))
    }
    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Filter, String> {
        if self.keyword("not") {
            self.pos += 1;
            self.advanced = true;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let f = self.or()?;
            self.expect(Tok::RParen)?;
            return Ok(f);
        }
        let Some(Tok::Ident(name)) = self.next() else {
            return Err("expected a property or function".into());
        };
        if self.peek() == Some(&Tok::LParen)
            && (name.eq_ignore_ascii_case("startsWith") || name.eq_ignore_ascii_case("endsWith"))
        {
            self.pos += 1;
            let Some(Tok::Ident(prop)) = self.next() else {
                return Err("expected a property".into());
            };
            self.expect(Tok::Comma)?;
            let Some(Tok::Str(v)) = self.next() else {
                return Err("expected a string".into());
            };
            self.expect(Tok::RParen)?;
            return Ok(if name.eq_ignore_ascii_case("startsWith") {
                Filter::StartsWith(prop, v)
            } else {
                self.advanced = true;
                Filter::EndsWith(prop, v)
            });
        }
        if self.peek() == Some(&Tok::Slash) {
            // prop/any(x:x eq 'v')
            self.pos += 1;
            match self.next() {
                Some(Tok::Ident(a)) if a.eq_ignore_ascii_case("any") => {}
                _ => return Err("only /any(...) lambdas are supported".into()),
            }
            self.expect(Tok::LParen)?;
            let Some(Tok::Ident(var)) = self.next() else {
                return Err("expected a lambda variable".into());
            };
            self.expect(Tok::Colon)?;
            match self.next() {
                Some(Tok::Ident(v)) if v == var => {}
                _ => return Err("the lambda must compare its variable".into()),
            }
            let op = self.op()?;
            let lit = self.lit()?;
            self.expect(Tok::RParen)?;
            return Ok(Filter::Any(name, op, lit));
        }
        if self.keyword("in") {
            self.pos += 1;
            self.expect(Tok::LParen)?;
            let mut list = vec![self.lit()?];
            while self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                list.push(self.lit()?);
            }
            self.expect(Tok::RParen)?;
            return Ok(Filter::In(name, list));
        }
        let op = self.op()?;
        Ok(Filter::Cmp(name, op, self.lit()?))
    }
    fn op(&mut self) -> Result<Op, String> {
        match self.next() {
            Some(Tok::Ident(o)) => match o.to_ascii_lowercase().as_str() {
                "eq" => Ok(Op::Eq),
                "ne" => {
                    self.advanced = true;
                    Ok(Op::Ne)
                }
                "ge" => Ok(Op::Ge),
                "le" => Ok(Op::Le),
                _ => Err(format!("unsupported operator {o}")),
            },
            other => Err(format!("expected an operator, found {other:?}")),
        }
    }
    fn lit(&mut self) -> Result<Lit, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Ident(s)) if s == "true" => Ok(Lit::Bool(true)),
            Some(Tok::Ident(s)) if s == "false" => Ok(Lit::Bool(false)),
            Some(Tok::Ident(s)) if s == "null" => Ok(Lit::Null),
            other => Err(format!("expected a literal, found {other:?}")),
        }
    }
}

/// Parses a `$filter`; the flag says whether it needs the advanced-query headers.
pub(crate) fn parse(s: &str) -> Result<(Filter, bool), String> {
    let mut p = Parser {
        toks: lex(s)?,
        pos: 0,
        advanced: false,
    };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err("unexpected text after the expression".into());
    }
    Ok((f, p.advanced))
}

impl Filter {
    /// Every property named, for validation against the entity.
    pub(crate) fn properties(&self, out: &mut Vec<String>) {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.properties(out);
                b.properties(out);
            }
            Filter::Not(a) => a.properties(out),
            Filter::Cmp(p, ..)
            | Filter::In(p, _)
            | Filter::StartsWith(p, _)
            | Filter::EndsWith(p, _)
            | Filter::Any(p, ..) => out.push(p.clone()),
        }
    }

    /// Evaluates on an object holding every property (names as Graph spells them).
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(obj) && b.matches(obj),
            Filter::Or(a, b) => a.matches(obj) || b.matches(obj),
            Filter::Not(a) => !a.matches(obj),
            Filter::Cmp(p, op, lit) => cmp(get(obj, p), *op, lit),
            Filter::In(p, list) => list.iter().any(|l| cmp(get(obj, p), Op::Eq, l)),
            Filter::StartsWith(p, v) => get(obj, p)
                .as_str()
                .is_some_and(|s| s.to_lowercase().starts_with(&v.to_lowercase())),
            Filter::EndsWith(p, v) => get(obj, p)
                .as_str()
                .is_some_and(|s| s.to_lowercase().ends_with(&v.to_lowercase())),
            Filter::Any(p, op, lit) => get(obj, p)
                .as_array()
                .is_some_and(|items| items.iter().any(|i| cmp(i, *op, lit))),
        }
    }
}

fn get<'a>(obj: &'a Value, prop: &str) -> &'a Value {
    obj.as_object()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(prop))
                .map(|(_, v)| v)
        })
        .unwrap_or(&Value::Null)
}

fn cmp(v: &Value, op: Op, lit: &Lit) -> bool {
    let ord = match (v, lit) {
        (Value::Null, Lit::Null) => Some(std::cmp::Ordering::Equal),
        (_, Lit::Null) | (Value::Null, _) => None,
        (Value::Bool(a), Lit::Bool(b)) => Some(a.cmp(b)),
        (Value::String(a), Lit::Str(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        _ => None,
    };
    match (op, ord) {
        (Op::Eq, Some(o)) => o.is_eq(),
        (Op::Ne, Some(o)) => !o.is_eq(),
        (Op::Ne, None) => true,
        (Op::Ge, Some(o)) => o.is_ge(),
        (Op::Le, Some(o)) => o.is_le(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_reference_filters_parse_and_match() {
        let u = json!({"userPrincipalName": "Adele@contoso.com", "accountEnabled": true,
            "mail": null, "proxyAddresses": ["SMTP:adele@contoso.com", "smtp:a@b.com"]});
        for (f, want) in [
            ("userPrincipalName eq 'adele@contoso.com'", true),
            ("startsWith(userPrincipalName,'ade')", true),
            ("accountEnabled eq true and mail eq null", true),
            ("proxyAddresses/any(p:p eq 'smtp:a@b.com')", true),
            ("userPrincipalName in ('x@y.z', 'ADELE@contoso.com')", true),
            (
                "(accountEnabled eq false) or startsWith(userPrincipalName,'zed')",
                false,
            ),
            ("userPrincipalName ge 'b'", false),
        ] {
            let (parsed, advanced) = parse(f).unwrap();
            assert!(!advanced, "{f}");
            assert_eq!(parsed.matches(&u), want, "{f}");
        }
        assert!(parse("mail ne null").unwrap().1);
        assert!(parse("endsWith(mail,'x')").unwrap().1);
        assert!(parse("mail eq").is_err());
        assert!(parse("mail eq 'x' junk").is_err());
    }
}
