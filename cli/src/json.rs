//! The `--json` output: a small JSON value and its writer. Hand-written
//! (one object per command, no parsing needed) so the command depends on
//! nothing but libc and clap; the tests parse every output back with
//! serde_json.

use std::fmt::{self, Write};

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (lease handles and nanoseconds need all 64 bits).
    UInt(u64),
    /// A finite float (non-finite ones are written as `null`).
    Float(f64),
    /// A string (escaped on output).
    Str(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, keys in the order given.
    Object(Vec<(&'static str, Value)>),
}

impl Value {
    /// An object from `(key, value)` pairs.
    pub fn object(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
        Value::Object(pairs.into_iter().collect())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

macro_rules! from_int {
    ($variant:ident, $as:ty: $($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::$variant(<$as>::from(v))
            }
        }
    )*};
}
from_int!(Int, i64: i8, i16, i32, i64);
from_int!(UInt, u64: u8, u16, u32, u64);

impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::UInt(v as u64)
    }
}

/// Writes `s` as a JSON string literal.
fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v}"),
            // `{:?}` keeps a decimal point or exponent (1.0, 1e-7): valid JSON.
            Value::Float(v) if v.is_finite() => write!(f, "{v:?}"),
            Value::Float(_) => f.write_str("null"),
            Value::Str(s) => write_str(f, s),
            Value::Array(items) => {
                f.write_char('[')?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_char(']')
            }
            Value::Object(pairs) => {
                f.write_char('{')?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write_str(f, k)?;
                    write!(f, ":{v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_parses_back() {
        let v = Value::object([
            ("key", Value::from("node/2000 \"x\"\\\n\u{1}é")),
            ("n", Value::from(-3i32)),
            ("lease", Value::from(u64::MAX)),
            ("f", Value::from(-25.0)),
            ("tiny", Value::from(1e-7)),
            ("nan", Value::from(f64::NAN)),
            ("ok", Value::from(true)),
            ("none", Value::Null),
            (
                "list",
                Value::Array(vec![Value::from(1u8), Value::from("a")]),
            ),
            ("empty", Value::Array(vec![])),
        ]);
        let text = v.to_string();
        let back: serde_json::Value = serde_json::from_str(&text).expect(&text);
        assert_eq!(back["key"], "node/2000 \"x\"\\\n\u{1}é");
        assert_eq!(back["n"], -3);
        assert_eq!(back["lease"], u64::MAX);
        assert_eq!(back["f"], -25.0);
        assert_eq!(back["tiny"], 1e-7);
        assert!(back["nan"].is_null());
        assert_eq!(back["ok"], true);
        assert!(back["none"].is_null());
        assert_eq!(back["list"][1], "a");
        assert_eq!(back["empty"].as_array().map(Vec::len), Some(0));
    }
}
