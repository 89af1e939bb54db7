//! Argument parsing and the errors commands reply with.
//!
//! Every error names its problem and the argument it came from; numbers are
//! parsed strictly (no sign games, no overflow, no trailing bytes).

use core::fmt;

/// Why a command was refused. Turned into the error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    /// Wrong number of arguments (Redis's own reply).
    WrongArity,
    /// The key holds another type, or a string the module did not write.
    WrongType,
    /// Anything else: the text after `ERR `.
    Msg(String),
}

impl CmdError {
    /// An `ERR` error with this text.
    pub fn msg(s: impl Into<String>) -> CmdError {
        CmdError::Msg(s.into())
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::WrongArity => f.write_str("ERR wrong number of arguments"),
            CmdError::WrongType => {
                f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value")
            }
            CmdError::Msg(m) => write!(f, "ERR {m}"),
        }
    }
}

impl std::error::Error for CmdError {}

/// An argument shown in an error: printable ASCII as is, other bytes escaped.
pub fn show(arg: &[u8]) -> String {
    arg.iter()
        .take(64)
        .flat_map(|&b| core::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// Parses a decimal `i64` (optional leading `-`), naming `what` on error.
///
/// Exactly what `str::parse::<i64>` accepts, less a leading `+`: the same
/// digits, range and errors (a property test holds the two equal), without
/// the UTF-8 check and generic radix code, which took 200 instructions of
/// an `FG.CHECK`'s integer (BENCHMARKS.md, "Less per command").
pub fn int(arg: &[u8], what: &str) -> Result<i64, CmdError> {
    let (negative, digits) = match arg {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, arg),
    };
    // Leading zeros do not count toward the 19 digits a u64 always holds.
    let zeros = digits.iter().take_while(|&&b| b == b'0').count();
    let significant = &digits[zeros..];
    let mut v: u64 = 0;
    let mut ok = !digits.is_empty() && significant.len() <= 19;
    if ok {
        for &b in significant {
            let d = b.wrapping_sub(b'0');
            ok &= d <= 9;
            // Cannot overflow: at most 19 digits, each at most 9.
            v = v.wrapping_mul(10).wrapping_add(u64::from(d));
        }
    }
    let value = match (ok, negative) {
        (false, _) => None,
        (true, false) => i64::try_from(v).ok(),
        // -(2^63) is i64::MIN; beyond it, out of range.
        (true, true) => (v <= 1 << 63).then(|| 0i64.wrapping_sub_unsigned(v)),
    };
    value.ok_or_else(|| {
        CmdError::msg(format!(
            "{what} is not an integer or out of range: '{}'",
            show(arg)
        ))
    })
}

/// Parses an integer in `lo..=hi`, naming `what` on error.
pub fn int_in(arg: &[u8], what: &str, lo: i64, hi: i64) -> Result<i64, CmdError> {
    let v = int(arg, what)?;
    if v < lo || v > hi {
        return Err(CmdError::msg(format!(
            "{what} must be between {lo} and {hi}, got {v}"
        )));
    }
    Ok(v)
}

/// Most milliseconds an interval, a period or a hold may be (about 49.7 days).
pub const MAX_MS: i64 = u32::MAX as i64;

/// Nanoseconds in a millisecond.
pub const MS: u64 = 1_000_000;

/// An interval or hold in ms, `1..=MAX_MS`, as ns.
pub fn millis(arg: &[u8], what: &str) -> Result<u64, CmdError> {
    Ok(int_in(arg, what, 1, MAX_MS)? as u64 * MS)
}

/// Whether `arg` is `word`, ASCII case-insensitively.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// A trailing `NOW <ns>` pair (test clock only): cut off `args` and
/// returned. `Ok(None)` when absent or when the test clock is off.
pub fn take_now(args: &mut &[&[u8]], test_clock: bool) -> Result<Option<u64>, CmdError> {
    let n = args.len();
    if !test_clock || n < 3 || !is(args[n - 2], "NOW") {
        return Ok(None);
    }
    let now = int_in(args[n - 1], "NOW", 0, i64::MAX)? as u64;
    *args = &args[..n - 2];
    Ok(Some(now))
}

/// A trailing `HOLD <ms>` pair: cut off `args` and returned as ns.
pub fn take_hold(args: &mut &[&[u8]], min_len: usize) -> Result<Option<u64>, CmdError> {
    let n = args.len();
    if n < min_len + 2 || !is(args[n - 2], "HOLD") {
        return Ok(None);
    }
    let hold = millis(args[n - 1], "HOLD")?;
    *args = &args[..n - 2];
    Ok(Some(hold))
}

/// A lease handle as replied (16 lowercase hex digits).
pub fn lease_text(id: u64) -> String {
    format!("{id:016x}")
}

/// A lease handle given back: `Ok(None)` for the empty string (a failed
/// acquire's reply, released blindly at hangup), an error for anything that
/// is not 16 hex digits.
pub fn lease_id(arg: &[u8]) -> Result<Option<u64>, CmdError> {
    if arg.is_empty() {
        return Ok(None);
    }
    let s = core::str::from_utf8(arg)
        .ok()
        .filter(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()));
    s.and_then(|s| u64::from_str_radix(s, 16).ok())
        .map(Some)
        .ok_or_else(|| CmdError::msg(format!("lease must be 16 hex digits: '{}'", show(arg))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_strict_and_name_the_argument() {
        assert_eq!(int(b"42", "limit"), Ok(42));
        assert_eq!(int(b"-7", "limit"), Ok(-7));
        for bad in [
            &b""[..],
            b"+5",
            b"5 ",
            b"0x10",
            b"1e3",
            b"99999999999999999999",
            b"\xff",
        ] {
            let e = int(bad, "limit").unwrap_err().to_string();
            assert!(e.starts_with("ERR limit is not an integer"), "{e}");
        }
        let e = int_in(b"0", "INTERVAL", 1, MAX_MS).unwrap_err().to_string();
        assert_eq!(e, "ERR INTERVAL must be between 1 and 4294967295, got 0");
        assert_eq!(millis(b"1500", "HOLD"), Ok(1_500_000_000));
        assert!(millis(b"4294967296", "HOLD").is_err());
    }

    #[test]
    fn trailing_options_come_off_only_when_present() {
        let mut a: &[&[u8]] = &[b"FG.CHECK", b"k", b"NOW", b"5"];
        assert_eq!(take_now(&mut a, false), Ok(None));
        assert_eq!(a.len(), 4);
        assert_eq!(take_now(&mut a, true), Ok(Some(5)));
        assert_eq!(a, [&b"FG.CHECK"[..], b"k"]);
        let mut a: &[&[u8]] = &[b"FG.ACQUIRE", b"k", b"3", b"hold", b"100"];
        assert_eq!(take_hold(&mut a, 3), Ok(Some(100 * MS)));
        assert_eq!(a.len(), 3);
        let mut a: &[&[u8]] = &[b"FG.ACQUIRE", b"HOLD", b"3"];
        assert_eq!(take_hold(&mut a, 3), Ok(None));
        let mut a: &[&[u8]] = &[b"FG.ACQUIRE", b"k", b"3", b"HOLD", b"x"];
        assert!(take_hold(&mut a, 3).is_err());
    }

    use proptest::prelude::*;

    proptest! {
        /// `int` accepts what the standard library's parser accepts (less
        /// a leading `+`), with the same value: random bytes and digit runs
        /// around i64's limits.
        #[test]
        fn int_agrees_with_the_standard_parser(
            s in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..24),
                "[-+]?[0-9]{0,21}".prop_map(String::into_bytes),
                "-?9223372036854775[0-9]{3}".prop_map(String::into_bytes),
            ]
        ) {
            let std = core::str::from_utf8(&s)
                .ok()
                .filter(|t| !t.starts_with('+'))
                .and_then(|t| t.parse::<i64>().ok());
            prop_assert_eq!(int(&s, "x").ok(), std);
        }
    }

    #[test]
    fn integers_at_the_limits() {
        assert_eq!(int(b"-9223372036854775808", "x"), Ok(i64::MIN));
        assert_eq!(int(b"9223372036854775807", "x"), Ok(i64::MAX));
        assert!(int(b"9223372036854775808", "x").is_err());
        assert!(int(b"-9223372036854775809", "x").is_err());
        assert_eq!(int(b"-0", "x"), Ok(0));
        assert_eq!(int(b"007", "x"), Ok(7));
        assert!(int(b"-", "x").is_err());
        assert!(int(b"--1", "x").is_err());
        assert!(int(b"1-", "x").is_err());
        assert!(int(b"/", "x").is_err()); // b'0' - 1
        assert!(int(b":", "x").is_err()); // b'9' + 1
    }

    #[test]
    fn leases_print_and_parse_back() {
        assert_eq!(lease_text(0xab), "00000000000000ab");
        assert_eq!(lease_id(b"00000000000000AB"), Ok(Some(0xab)));
        assert_eq!(lease_id(b""), Ok(None));
        assert!(lease_id(b"abc").is_err());
        assert!(lease_id(b"+000000000000000").is_err());
        assert_eq!(show(b"a\r\n\x00"), "a\\r\\n\\x00");
    }
}
