//! The Asterisk Gateway Interface, as res_agi speaks it to a local AGI
//! process on its stdin and stdout.
//!
//! What this module relies on (res_agi.c, Asterisk 1.4 to 20, and hamvoip's
//! 1.4-based app_rpt):
//!
//! * **Header.** Asterisk first writes `agi_request: <script>` and then
//!   more `agi_<name>: <value>` lines (`agi_channel`, `agi_uniqueid`,
//!   `agi_callerid`, `agi_context`, `agi_extension`, ..., `agi_arg_N` in
//!   newer versions), one per line, and ends the block with an empty line.
//!   Values may be empty (`agi_accountcode: `). The arguments of `AGI()`
//!   also arrive as the process's own argv, which is what this command
//!   reads.
//! * **Commands and replies.** The script writes one command per line
//!   (`SET VARIABLE FG_VERDICT "ADMIT"`); Asterisk answers each with one
//!   line: `200 result=<n>` with an optional ` (<data>)` (`GET VARIABLE`
//!   answers `200 result=1 (<value>)`, or `200 result=0` for an unset
//!   variable); `510 Invalid or unknown command`; `511 Command Not Permitted
//!   on a dead channel`; `520 Invalid command syntax.  Proper usage not
//!   available.`, or a multi-line `520-Invalid command syntax.  Proper usage
//!   follows:` ... ending with the line `520 End of proper usage.`.
//! * **Hangup.** When the channel hangs up, res_agi sends SIGHUP to a local
//!   AGI process (unless `AGISIGHUP=no`) and writes the line `HANGUP` to a
//!   FastAGI socket; commands that run on dead channels (`SET VARIABLE`,
//!   `GET VARIABLE`) are still answered afterwards. This module treats a
//!   `HANGUP` line as a notice that may come before any reply, notes it and
//!   reads on; [`os::catch_sighup`] notes the signal.
//! * **End.** Asterisk closes the pipe when it is done with the script;
//!   end of input where a header line or a reply is due is an error here.
//!
//! Every failure is an [`AgiError`] with a message that names what was
//! expected and what came.

use std::fmt;
use std::io::{self, BufRead, Write};

use crate::os;

/// Longest line accepted from Asterisk (res_agi's own buffer is 2 KiB for
/// commands; variable values can be longer).
pub const MAX_LINE: usize = 16 * 1024;
/// Most header lines accepted.
pub const MAX_HEADER_LINES: usize = 256;

/// What went wrong talking AGI.
#[derive(Debug)]
pub enum AgiError {
    /// Input ended where a header line or reply was due.
    Closed(&'static str),
    /// The header block is malformed.
    BadHeader(String),
    /// A reply line that is not AGI.
    BadReply {
        /// The command sent.
        command: String,
        /// The line that came back.
        line: String,
    },
    /// Asterisk refused the command (510, 511, 520, ...).
    Refused {
        /// The command sent.
        command: String,
        /// The status code.
        code: u16,
        /// The reply's text (all lines of a multi-line 520).
        text: String,
    },
    /// Reading or writing failed.
    Io(io::Error),
}

impl fmt::Display for AgiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgiError::Closed(what) => write!(
                f,
                "AGI: input closed while waiting for {what} (is this running under Asterisk's AGI()?)"
            ),
            AgiError::BadHeader(why) => write!(f, "AGI: malformed header: {why}"),
            AgiError::BadReply { command, line } => write!(
                f,
                "AGI: unknown reply {line:?} to `{command}` (expected `200 result=...`, a 5xx error or HANGUP)"
            ),
            AgiError::Refused {
                command,
                code,
                text,
            } => write!(f, "AGI: Asterisk refused `{command}`: {code} {text}"),
            AgiError::Io(e) => write!(f, "AGI: {e}"),
        }
    }
}

impl std::error::Error for AgiError {}

impl From<io::Error> for AgiError {
    fn from(e: io::Error) -> AgiError {
        AgiError::Io(e)
    }
}

/// A `200` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// What follows `result=` up to the first space.
    pub result: String,
    /// The text in parentheses, if any (`GET VARIABLE`'s value).
    pub data: Option<String>,
}

/// One AGI session over a reader (Asterisk's lines) and a writer (ours).
#[derive(Debug)]
pub struct Agi<R, W> {
    input: R,
    output: W,
    env: Vec<(String, String)>,
    hangup_line: bool,
}

/// Whether `name` is a valid channel variable name for this command:
/// letters, digits and `_`, 1 to 80 of them, not starting with a digit.
pub fn valid_var_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 80
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl<R: BufRead, W: Write> Agi<R, W> {
    /// A session; call [`Agi::read_env`] first.
    pub fn new(input: R, output: W) -> Agi<R, W> {
        Agi {
            input,
            output,
            env: Vec::new(),
            hangup_line: false,
        }
    }

    /// Reads one line without its end; `None` at end of input.
    fn read_line(&mut self) -> Result<Option<String>, AgiError> {
        let mut buf = Vec::new();
        let mut limited = io::Read::take(&mut self.input, MAX_LINE as u64 + 1);
        let n = limited.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        } else if buf.len() > MAX_LINE {
            return Err(AgiError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a line longer than {MAX_LINE} bytes"),
            )));
        }
        // A line cut by end of input is still a line (then `None` next).
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    /// Reads and checks the whole header block, up to its empty line.
    pub fn read_env(&mut self) -> Result<(), AgiError> {
        let mut env = Vec::new();
        loop {
            let Some(line) = self.read_line()? else {
                return Err(if env.is_empty() {
                    AgiError::Closed("the agi_* header block")
                } else {
                    AgiError::Closed("the empty line that ends the agi_* header block")
                });
            };
            if line.is_empty() {
                break;
            }
            if line == "HANGUP" {
                self.hangup_line = true;
                continue;
            }
            if env.len() == MAX_HEADER_LINES {
                return Err(AgiError::BadHeader(format!(
                    "more than {MAX_HEADER_LINES} lines without the empty line that ends it"
                )));
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(AgiError::BadHeader(format!(
                    "line {:?} is not `agi_<name>: <value>`",
                    line
                )));
            };
            let well_formed = name.len() > 4
                && name.starts_with("agi_")
                && name[4..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !well_formed {
                return Err(AgiError::BadHeader(format!(
                    "line {line:?} does not start with `agi_<name>:`"
                )));
            }
            let value = value.strip_prefix(' ').unwrap_or(value);
            env.push((name.to_owned(), value.to_owned()));
        }
        if env.is_empty() {
            return Err(AgiError::BadHeader(
                "empty: no agi_* line before the empty line".to_owned(),
            ));
        }
        if env[0].0 != "agi_request" {
            return Err(AgiError::BadHeader(format!(
                "it starts with {:?}, not agi_request (Asterisk always sends agi_request first)",
                env[0].0
            )));
        }
        self.env = env;
        Ok(())
    }

    /// A header value (`"channel"` for `agi_channel`).
    pub fn env(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(n, _)| n.strip_prefix("agi_") == Some(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the channel hung up: a `HANGUP` line came, or SIGHUP.
    pub fn hung_up(&self) -> bool {
        self.hangup_line || os::hangup_signalled()
    }

    /// Sends one command and reads its reply: `Ok` for `200`, an error for
    /// anything else. `HANGUP` lines before the reply are noted.
    pub fn command(&mut self, command: &str) -> Result<Reply, AgiError> {
        debug_assert!(!command.contains('\n'));
        self.output.write_all(command.as_bytes())?;
        self.output.write_all(b"\n")?;
        self.output.flush()?;
        loop {
            let Some(line) = self.read_line()? else {
                return Err(AgiError::Closed("the reply to a command"));
            };
            if line == "HANGUP" {
                self.hangup_line = true;
                continue;
            }
            return self.reply(command, line);
        }
    }

    fn reply(&mut self, command: &str, line: String) -> Result<Reply, AgiError> {
        let bad = |line: String| AgiError::BadReply {
            command: command.to_owned(),
            line,
        };
        let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
        let sep = line.as_bytes().get(3).copied();
        let Some(code) = code.filter(|_| matches!(sep, None | Some(b' ') | Some(b'-'))) else {
            return Err(bad(line));
        };
        let rest = line.get(4..).unwrap_or("").to_owned();
        match (code, sep) {
            (200, Some(b' ')) => {
                let Some(after) = rest.strip_prefix("result=") else {
                    return Err(bad(line));
                };
                let result = after.split(' ').next().unwrap_or("").to_owned();
                let data = match (after.find('('), after.rfind(')')) {
                    (Some(open), Some(close)) if open < close => {
                        Some(after[open + 1..close].to_owned())
                    }
                    _ => None,
                };
                Ok(Reply { result, data })
            }
            (500..=599, Some(b'-')) => {
                // Multi-line: read up to "<code> <text>".
                let mut text = rest;
                loop {
                    let Some(next) = self.read_line()? else {
                        return Err(AgiError::Closed("the end of a multi-line error reply"));
                    };
                    if next.len() >= 4
                        && next.as_bytes()[3] == b' '
                        && next[..3].parse::<u16>() == Ok(code)
                    {
                        text.push_str(" / ");
                        text.push_str(&next[4..]);
                        break;
                    }
                    text.push_str(" / ");
                    text.push_str(next.trim());
                }
                Err(AgiError::Refused {
                    command: command.to_owned(),
                    code,
                    text,
                })
            }
            (500..=599, _) => Err(AgiError::Refused {
                command: command.to_owned(),
                code,
                text: rest,
            }),
            _ => Err(bad(line)),
        }
    }

    /// `SET VARIABLE name "value"`; any reply but `200 result=1` is an error.
    pub fn set_var(&mut self, name: &str, value: &str) -> Result<(), AgiError> {
        debug_assert!(valid_var_name(name));
        let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
        let command = format!("SET VARIABLE {name} \"{quoted}\"");
        let reply = self.command(&command)?;
        if reply.result != "1" {
            return Err(AgiError::BadReply {
                command,
                line: format!("200 result={}", reply.result),
            });
        }
        Ok(())
    }

    /// `GET VARIABLE name`: the value, or `None` if it is not set.
    pub fn get_var(&mut self, name: &str) -> Result<Option<String>, AgiError> {
        debug_assert!(valid_var_name(name));
        let command = format!("GET VARIABLE {name}");
        let reply = self.command(&command)?;
        match reply.result.as_str() {
            "0" => Ok(None),
            "1" => Ok(Some(reply.data.unwrap_or_default())),
            r => Err(AgiError::BadReply {
                command,
                line: format!("200 result={r}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "agi_request: floodgate\nagi_channel: IAX2/127.0.0.1-1\n\
                          agi_callerid: 2001\nagi_accountcode: \n\n";

    fn session(input: &str) -> Agi<&[u8], Vec<u8>> {
        Agi::new(input.as_bytes(), Vec::new())
    }

    #[test]
    fn reads_the_header_block() {
        let mut a = session(HEADER);
        a.read_env().unwrap();
        assert_eq!(a.env("channel"), Some("IAX2/127.0.0.1-1"));
        assert_eq!(a.env("callerid"), Some("2001"));
        assert_eq!(a.env("accountcode"), Some(""));
        assert_eq!(a.env("nothing"), None);
        assert!(!a.hangup_line);
    }

    #[test]
    fn crlf_and_missing_space_are_accepted() {
        let mut a = session("agi_request:x\r\nagi_arg_1: 2000\r\n\r\n");
        a.read_env().unwrap();
        assert_eq!(a.env("request"), Some("x"));
        assert_eq!(a.env("arg_1"), Some("2000"));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for (input, want) in [
            ("", "header block"),
            ("agi_request: x\n", "empty line"),
            ("\n", "empty"),
            ("hello\n\n", "not `agi_<name>: <value>`"),
            (
                "agi_request: x\nfoo: bar\n\n",
                "does not start with `agi_<name>:`",
            ),
            ("agi_channel: x\n\n", "not agi_request"),
            ("agi_: x\n\n", "does not start"),
        ] {
            let e = session(input).read_env().unwrap_err().to_string();
            assert!(e.contains(want), "{input:?}: {e}");
        }
        let long = format!("agi_request: {}\n\n", "x".repeat(MAX_LINE + 10));
        assert!(session(&long).read_env().is_err());
        let many = format!(
            "agi_request: x\n{}\n",
            "agi_x: y\n".repeat(MAX_HEADER_LINES)
        );
        assert!(session(&many)
            .read_env()
            .unwrap_err()
            .to_string()
            .contains("more than"));
    }

    #[test]
    fn set_and_get_variable() {
        let input = format!("{HEADER}200 result=1\n200 result=1 (42)\n200 result=0\n");
        let mut a = session(&input);
        a.read_env().unwrap();
        a.set_var("FG_VERDICT", "ADMIT").unwrap();
        assert_eq!(a.get_var("FG_LEASE").unwrap().as_deref(), Some("42"));
        assert_eq!(a.get_var("FG_LEASE").unwrap(), None);
        assert_eq!(
            String::from_utf8(a.output).unwrap(),
            "SET VARIABLE FG_VERDICT \"ADMIT\"\nGET VARIABLE FG_LEASE\nGET VARIABLE FG_LEASE\n"
        );
    }

    #[test]
    fn values_are_quoted_and_escaped() {
        let mut a = session("200 result=1\n");
        a.set_var("V", "a \"b\" \\c").unwrap();
        assert_eq!(
            String::from_utf8(a.output).unwrap(),
            "SET VARIABLE V \"a \\\"b\\\" \\\\c\"\n"
        );
    }

    #[test]
    fn hangup_lines_are_noted_and_the_reply_still_read() {
        let mut a = session("HANGUP\n200 result=1\n");
        a.set_var("V", "1").unwrap();
        assert!(a.hangup_line);
    }

    #[test]
    fn error_replies() {
        let cases = [
            ("510 Invalid or unknown command\n", "510 Invalid or unknown command"),
            (
                "511 Command Not Permitted on a dead channel\n",
                "511 Command Not Permitted",
            ),
            (
                "520-Invalid command syntax.  Proper usage follows:\n Usage: SET VARIABLE\n520 End of proper usage.\n",
                "520 Invalid command syntax.  Proper usage follows: / Usage: SET VARIABLE / End of proper usage.",
            ),
            ("520 Invalid command syntax.  Proper usage not available.\n", "520 Invalid"),
            ("", "input closed"),
            ("hello\n", "unknown reply \"hello\""),
            ("200 foo\n", "unknown reply"),
            ("2000 result=1\n", "unknown reply"),
            ("200 result=0\n", "unknown reply \"200 result=0\""),
            ("520-Invalid\nno end\n", "input closed"),
            ("300 result=1\n", "unknown reply"),
        ];
        for (input, want) in cases {
            let mut a = session(input);
            let e = a.set_var("V", "x").unwrap_err().to_string();
            assert!(e.contains(want), "{input:?}: {e}");
        }
    }

    #[test]
    fn a_multi_line_error_consumes_its_lines() {
        let mut a = session("520-Bad\n usage\n520 End of proper usage.\n200 result=1\n");
        assert!(a.set_var("V", "x").is_err());
        a.set_var("V", "y").unwrap();
    }

    #[test]
    fn variable_names() {
        assert!(valid_var_name("FG_LEASE"));
        assert!(valid_var_name("_x1"));
        assert!(!valid_var_name(""));
        assert!(!valid_var_name("1A"));
        assert!(!valid_var_name("A B"));
        assert!(!valid_var_name("A\"B"));
        assert!(!valid_var_name(&"A".repeat(81)));
    }
}
