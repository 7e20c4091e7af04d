//! Integer fields read as JSON Schema reads them. JSON Schema counts a number with a zero
//! fractional part (`541.0`, `5.41e2`) as an integer, and generators send such numbers for
//! `type: integer`, so the API accepts them where it documents an integer; `541.5`, `"541"` in a
//! JSON body, and values out of the field's range are still refused (422 `invalid_body`).
//!
//! Use with `#[serde(deserialize_with = "...")]`: [`json`] or [`json_opt`] for JSON bodies,
//! [`query_opt`] for query strings (where every value arrives as text).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

/// The value, whatever integer type the field has, before its range is checked.
struct Integral<const FROM_TEXT: bool>;

impl<const FROM_TEXT: bool> Integral<FROM_TEXT> {
    fn of_float<E: de::Error>(self, v: f64) -> Result<i128, E> {
        // Beyond 2^100 an f64 fits no field here anyway; the bound keeps the cast exact.
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 2f64.powi(100) {
            Ok(v as i128)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
}

impl<const FROM_TEXT: bool> Visitor<'_> for Integral<FROM_TEXT> {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        Ok(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        Ok(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i128, E> {
        self.of_float(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
        if !FROM_TEXT {
            return Err(E::invalid_type(Unexpected::Str(v), &self));
        }
        match v.parse::<i128>() {
            Ok(n) => Ok(n),
            Err(_) => match v.parse::<f64>() {
                Ok(f) => self.of_float(f),
                Err(_) => Err(E::invalid_value(Unexpected::Str(v), &self)),
            },
        }
    }
}

/// One integer of type `T`, read by [`Integral`] and checked against `T`'s range.
struct Int<T, const FROM_TEXT: bool>(T, PhantomData<T>);

impl<'de, T: TryFrom<i128>, const FROM_TEXT: bool> Deserialize<'de> for Int<T, FROM_TEXT> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = d.deserialize_any(Integral::<FROM_TEXT>)?;
        T::try_from(n)
            .map(|v| Int(v, PhantomData))
            .map_err(|_| de::Error::custom(format!("{n} is out of range for this field")))
    }
}

/// An integer in a JSON body.
pub fn json<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
    Int::<T, false>::deserialize(d).map(|i| i.0)
}

/// Largest integer every JSON client holds exactly (2^53 - 1): the declared `maximum` of counts
/// that have no natural bound, so that the schema and the server agree on where they end (an
/// `i64`'s own end is not a number a JSON Schema `maximum`, stored as a float, can state).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A count in a JSON body: an integer from its type's minimum to [`MAX_SAFE_INTEGER`].
pub fn json_count<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n: i64 = json(d)?;
    if n > MAX_SAFE_INTEGER {
        return Err(de::Error::custom(format!(
            "{n} is larger than {MAX_SAFE_INTEGER}"
        )));
    }
    Ok(n)
}

/// An optional integer in a JSON body (`null` or left out: `None`; pair with `#[serde(default)]`).
pub fn json_opt<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<Int<T, false>>::deserialize(d).map(|o| o.map(|i| i.0))
}

/// An optional integer in a query string (pair with `#[serde(default)]`).
pub fn query_opt<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<Int<T, true>>::deserialize(d).map(|o| o.map(|i| i.0))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        #[serde(default, deserialize_with = "super::json_opt")]
        n: Option<u32>,
        #[serde(default, deserialize_with = "super::json")]
        count: i64,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Query {
        #[serde(default, deserialize_with = "super::query_opt")]
        limit: Option<u64>,
    }

    fn body(json: &str) -> Result<Body, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn integral_floats_are_integers_in_json_bodies() {
        let b = body(r#"{"n": 541.0, "count": 5.41e2}"#).unwrap();
        assert_eq!((b.n, b.count), (Some(541), 541));
        assert_eq!(body(r#"{"n": 7, "count": -3}"#).unwrap().count, -3);
        assert_eq!(body(r#"{"n": null}"#).unwrap().n, None);
        assert_eq!(body("{}").unwrap().n, None);
    }

    #[test]
    fn fractions_text_and_out_of_range_values_are_refused_in_json_bodies() {
        for bad in [
            r#"{"n": 541.5}"#,
            r#"{"n": "541"}"#,
            r#"{"n": -1}"#,
            r#"{"n": 4294967296}"#,
            r#"{"n": 1e300}"#,
            r#"{"n": true}"#,
        ] {
            assert!(body(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn query_strings_take_integers_written_as_integral_floats() {
        // What actix-web's `web::Query` extractor does with a query string.
        let q = |s: &str| actix_web::web::Query::<Query>::from_query(s).map(|q| q.into_inner());
        assert_eq!(q("limit=541.0").unwrap().limit, Some(541));
        assert_eq!(q("limit=20").unwrap().limit, Some(20));
        assert_eq!(q("").unwrap().limit, None);
        for bad in [
            "limit=2.5",
            "limit=abc",
            "limit=-1",
            "limit=inf",
            "limit=NaN",
        ] {
            assert!(q(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn counts_end_where_json_clients_stop_being_exact() {
        #[derive(Debug, Deserialize)]
        struct Count {
            #[serde(deserialize_with = "super::json_count")]
            n: i64,
        }
        let c = |s: &str| serde_json::from_str::<Count>(s).map(|c| c.n);
        assert_eq!(
            c(r#"{"n": 9007199254740991}"#).unwrap(),
            super::MAX_SAFE_INTEGER
        );
        assert_eq!(c(r#"{"n": 12.0}"#).unwrap(), 12);
        assert!(c(r#"{"n": 9007199254740992}"#).is_err());
    }
}
