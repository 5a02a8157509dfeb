//! Resource durations in DGate's JSON form: Go's `time.Duration`, a whole number of
//! nanoseconds, on output; on input that, or a string in Go's form (`"1.5s"`, `"1m30s"`,
//! `"250ms"`) or the human one (`"1m 30s"`). Held as [`Millis`]: a nonzero duration under a
//! millisecond rounds up to one. Use as `#[serde(with = "crate::units::nanos")]` on an
//! `Option<Millis>`.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

use super::Millis;

const NANOS_PER_MILLI: u64 = 1_000_000;

pub fn serialize<S: Serializer>(v: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(m) => s.serialize_u64(m.0.saturating_mul(NANOS_PER_MILLI)),
        None => s.serialize_none(),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Millis>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration: a number of nanoseconds, or a string such as \"1.5s\"")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Millis(v.div_ceil(NANOS_PER_MILLI))))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            let v = u64::try_from(v).map_err(|_| E::custom("a duration cannot be negative"))?;
            self.visit_u64(v)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.fract() != 0.0 || !(0.0..=u64::MAX as f64).contains(&v) {
                return Err(E::custom("a duration in nanoseconds is a whole number"));
            }
            self.visit_u64(v as u64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            parse(v).map(Some).map_err(E::custom)
        }
    }
    d.deserialize_option(V)
}

/// A duration string in Go's form, or else the human form [`Millis`] reads.
pub fn parse(text: &str) -> Result<Millis, String> {
    let t = text.trim();
    if let Some(nanos) = parse_go(t) {
        return Ok(Millis(
            nanos
                .div_ceil(NANOS_PER_MILLI as u128)
                .try_into()
                .map_err(|_| format!("duration {text:?} is too long"))?,
        ));
    }
    Millis::parse_human(text)
}

/// Go's `time.ParseDuration` without a sign: one or more of a decimal number and a unit (`ns`,
/// `us`, `µs`, `ms`, `s`, `m`, `h`), or `0`. Nanoseconds; `None` if `t` is not in that form.
fn parse_go(t: &str) -> Option<u128> {
    if t == "0" {
        return Some(0);
    }
    let mut rest = t;
    let mut total: u128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() {
            return None;
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut part = whole.checked_mul(scale)?;
        // The fraction's digits, each a tenth of the one before.
        let mut unit_part = scale;
        for c in frac.chars() {
            unit_part /= 10;
            part = part.checked_add(u128::from(c.to_digit(10)?) * unit_part)?;
        }
        total = total.checked_add(part)?;
        rest = tail;
    }
    Some(total)
}

/// The schema of a field read and written by this module (`#[schemars(with = "nanos::Schema")]`
/// beside the serde attribute): Go's duration as a number of nanoseconds, or a duration string.
pub struct Schema;

impl schemars::JsonSchema for Schema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GoDuration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: a whole number of nanoseconds (as DGate shows it), or a string such as \"1.5s\", \"250ms\", \"1m30s\".",
            "oneOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "minLength": 1, "examples": ["1.5s", "250ms", "1m30s"] },
                { "type": "null" }
            ]
        })
    }
}
