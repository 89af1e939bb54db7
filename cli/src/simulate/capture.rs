//! Real traffic for `simulate`: SIP requests from a pcap or pcapng capture
//! (Ethernet with VLAN tags, Linux cooked v1 and v2, raw IP, BSD loopback),
//! or `time,key` lines from a CSV file. Both are read as a stream: one
//! packet or line at a time, handed to a callback, nothing collected.
//!
//! What a capture gives: every UDP datagram and every TCP segment sent to
//! one of the `--port`s (5060 by default) whose payload begins with a SIP
//! request line, with the method `--method` if given, keyed by the source
//! IP, the From user or the Request-URI user. Everything else is counted
//! under a reason and skipped ([`CaptureCounts`]): other ports and
//! protocols, IP fragments (not reassembled), responses, keep-alives, TCP
//! segments that do not begin with a request (continuations of a stream,
//! bare ACKs: streams are not reassembled), other methods, requests without
//! the key asked for, and malformed packets. None of these is fatal. A file
//! that is not a capture, or whose structure breaks in the middle, is an
//! error (exit 3); a capture cut off in its last record (tcpdump killed) is
//! read up to there and says so.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::Path;

use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, PcapError};

use super::sip::{self, Head};
use crate::json::Value;
use crate::Failure;

/// How captured requests are keyed, as a Kamailio script would key its pipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyBy {
    /// The source IP address (`$si`).
    SourceIp,
    /// The user of the From URI (`$fU`).
    FromUser,
    /// The user of the Request-URI (`$rU`).
    RuriUser,
}

/// What to take from a capture.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// Destination ports that carry SIP.
    pub ports: Vec<u16>,
    /// Only requests with this method (`None`: all).
    pub method: Option<String>,
    /// The key of each request.
    pub key: KeyBy,
}

/// What a capture held, and why what was skipped was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureCounts {
    /// `pcap` or `pcapng`.
    pub format: &'static str,
    /// Packets read.
    pub packets: u64,
    /// Requests simulated.
    pub requests: u64,
    /// Not IP (ARP, other EtherTypes).
    pub not_ip: u64,
    /// IP, but not UDP or TCP to one of the ports.
    pub other_traffic: u64,
    /// IP fragments (not reassembled).
    pub ip_fragments: u64,
    /// SIP responses.
    pub responses: u64,
    /// CRLF keep-alives.
    pub keepalives: u64,
    /// TCP segments to a port that do not begin with a request line.
    pub tcp_not_request_start: u64,
    /// Requests of another method than `--method`.
    pub other_methods: u64,
    /// Requests without the key asked for (no user in the URI).
    pub no_key: u64,
    /// Packets whose link, IP, UDP/TCP or SIP request line did not parse.
    pub malformed: u64,
    /// Packets of a link type this reader does not decode.
    pub unsupported_link: u64,
    /// pcapng blocks without a timestamp (simple packet blocks) or of an
    /// obsolete kind.
    pub untimed_blocks: u64,
    /// The file ended inside a record.
    pub truncated: bool,
}

impl CaptureCounts {
    /// The counts as JSON.
    pub fn json(&self) -> Value {
        Value::object([
            ("format", Value::from(self.format)),
            ("packets", Value::from(self.packets)),
            ("requests", Value::from(self.requests)),
            (
                "skipped",
                Value::object([
                    ("not_ip", Value::from(self.not_ip)),
                    ("other_traffic", Value::from(self.other_traffic)),
                    ("ip_fragments", Value::from(self.ip_fragments)),
                    ("responses", Value::from(self.responses)),
                    ("keepalives", Value::from(self.keepalives)),
                    (
                        "tcp_not_request_start",
                        Value::from(self.tcp_not_request_start),
                    ),
                    ("other_methods", Value::from(self.other_methods)),
                    ("no_key", Value::from(self.no_key)),
                    ("malformed", Value::from(self.malformed)),
                    ("unsupported_link", Value::from(self.unsupported_link)),
                    ("untimed_blocks", Value::from(self.untimed_blocks)),
                ]),
            ),
            ("truncated", Value::from(self.truncated)),
        ])
    }

    /// One line for the text summary.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{} packets ({}), {} requests simulated",
            self.packets, self.format, self.requests
        );
        let skipped = [
            (self.not_ip, "not IP"),
            (self.other_traffic, "other ports or protocols"),
            (self.ip_fragments, "IP fragments"),
            (self.responses, "responses"),
            (self.keepalives, "keep-alives"),
            (
                self.tcp_not_request_start,
                "TCP segments not starting a request",
            ),
            (self.other_methods, "other methods"),
            (self.no_key, "without the key"),
            (self.malformed, "malformed"),
            (self.unsupported_link, "of an unsupported link type"),
            (self.untimed_blocks, "untimed pcapng blocks"),
        ];
        let parts: Vec<String> = skipped
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        if !parts.is_empty() {
            let _ = write!(s, "; skipped: {}", parts.join(", "));
        }
        if self.truncated {
            s.push_str("; the file ends inside its last record (read up to there)");
        }
        s
    }
}

/// The pcap and pcapng magic numbers.
const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Reads the capture at `path` and calls `event(time_ns, key)` for each
/// request, in file order (`time_ns` since 1970).
pub fn read_capture(
    path: &Path,
    opts: &CaptureOptions,
    mut event: impl FnMut(u64, &[u8]),
) -> Result<CaptureCounts, Failure> {
    let shown = path.display();
    let file = File::open(path).map_err(|e| Failure::error(format!("{shown}: {e}")))?;
    let mut input = BufReader::with_capacity(1 << 16, file);
    let head = input
        .fill_buf()
        .map_err(|e| Failure::error(format!("{shown}: {e}")))?;
    let magic: [u8; 4] = head
        .get(..4)
        .and_then(|m| m.try_into().ok())
        .unwrap_or([0; 4]);
    let mut counts = CaptureCounts::default();
    let mut decoder = Decoder {
        opts,
        key: String::new(),
        counts: &mut counts,
    };
    let broken = |n: u64, e: PcapError| {
        Failure::error(format!(
            "{shown}: the capture is broken after {n} packets ({e}); nothing was simulated"
        ))
    };
    if PCAP_MAGICS.contains(&magic) {
        decoder.counts.format = "pcap";
        let mut reader = PcapReader::new(input)
            .map_err(|e| Failure::error(format!("{shown}: not a readable pcap capture ({e})")))?;
        let link = reader.header().datalink;
        while let Some(packet) = reader.next_packet() {
            match packet {
                Ok(p) => decoder.packet(link, p.timestamp.as_nanos(), &p.data, &mut event),
                Err(PcapError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                    decoder.counts.truncated = true;
                    break;
                }
                Err(e) => return Err(broken(decoder.counts.packets, e)),
            }
        }
    } else if magic == PCAPNG_MAGIC {
        decoder.counts.format = "pcapng";
        let mut reader = PcapNgReader::new(input)
            .map_err(|e| Failure::error(format!("{shown}: not a readable pcapng capture ({e})")))?;
        // Each interface's link type and timestamp unit (per section).
        let mut interfaces: Vec<(DataLink, TsUnit)> = Vec::new();
        while let Some(block) = reader.next_block() {
            match block {
                Ok(Block::SectionHeader(_)) => interfaces.clear(),
                Ok(Block::InterfaceDescription(idb)) => {
                    let unit = idb
                        .options
                        .iter()
                        .find_map(|o| match o {
                            InterfaceDescriptionOption::IfTsResol(r) => Some(TsUnit(*r)),
                            _ => None,
                        })
                        .unwrap_or(TsUnit(6));
                    interfaces.push((idb.linktype, unit));
                }
                Ok(Block::EnhancedPacket(epb)) => {
                    let Some(&(link, unit)) = interfaces.get(epb.interface_id as usize) else {
                        return Err(Failure::error(format!(
                            "{shown}: packet {} names interface {} that no block described",
                            decoder.counts.packets + 1,
                            epb.interface_id
                        )));
                    };
                    // pcap-file hands the raw timestamp units over as ns.
                    let ns = unit.to_ns(epb.timestamp.as_nanos());
                    decoder.packet(link, u128::from(ns), &epb.data, &mut event);
                }
                Ok(Block::SimplePacket(_)) | Ok(Block::Packet(_)) => {
                    decoder.counts.packets += 1;
                    decoder.counts.untimed_blocks += 1;
                }
                Ok(_) => {}
                Err(PcapError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                    decoder.counts.truncated = true;
                    break;
                }
                Err(e) => return Err(broken(decoder.counts.packets, e)),
            }
        }
    } else {
        let what = if head.is_empty() {
            "it is empty".to_owned()
        } else {
            format!(
                "it starts with {:02x} {:02x} {:02x} {:02x}, not a pcap or pcapng magic number",
                magic[0], magic[1], magic[2], magic[3]
            )
        };
        return Err(Failure::error(format!(
            "{shown}: not a capture: {what} (--csv reads time,key lines)"
        )));
    }
    Ok(counts)
}

/// A pcapng interface's `if_tsresol`: 10^-n s, or 2^-n s with the top bit.
#[derive(Debug, Clone, Copy)]
struct TsUnit(u8);

impl TsUnit {
    fn to_ns(self, units: u128) -> u64 {
        let exp = u32::from(self.0 & 0x7f);
        let ns = if self.0 & 0x80 != 0 {
            if exp >= 127 {
                0
            } else {
                (units * 1_000_000_000) >> exp
            }
        } else if exp <= 9 {
            units * 10u128.pow(9 - exp)
        } else {
            units / 10u128.pow((exp - 9).min(38))
        };
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

struct Decoder<'a> {
    opts: &'a CaptureOptions,
    key: String,
    counts: &'a mut CaptureCounts,
}

impl Decoder<'_> {
    fn packet(
        &mut self,
        link: DataLink,
        ts: u128,
        data: &[u8],
        event: &mut impl FnMut(u64, &[u8]),
    ) {
        let c = &mut *self.counts;
        c.packets += 1;
        let sliced = match link {
            DataLink::ETHERNET => SlicedPacket::from_ethernet(data),
            DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(data),
            // Linux cooked v2 (`tcpdump -i any` since libpcap 1.10): a
            // 20-byte header whose first 2 bytes are the EtherType.
            DataLink::LINUX_SLL2 => match (data.get(..2), data.get(20..)) {
                (Some(t), Some(rest)) => {
                    SlicedPacket::from_ether_type(EtherType(u16::from_be_bytes([t[0], t[1]])), rest)
                }
                _ => {
                    c.malformed += 1;
                    return;
                }
            },
            DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(data),
            // BSD loopback: a 4-byte address family, then IP.
            DataLink::NULL | DataLink::LOOP => match data.get(4..) {
                Some(ip) => SlicedPacket::from_ip(ip),
                None => {
                    c.malformed += 1;
                    return;
                }
            },
            _ => {
                c.unsupported_link += 1;
                return;
            }
        };
        let Ok(p) = sliced else {
            c.malformed += 1;
            return;
        };
        let (source, fragmented) = match &p.net {
            Some(NetSlice::Ipv4(ip)) => (
                std::net::IpAddr::V4(ip.header().source_addr()),
                ip.is_payload_fragmented(),
            ),
            Some(NetSlice::Ipv6(ip)) => (
                std::net::IpAddr::V6(ip.header().source_addr()),
                ip.is_payload_fragmented(),
            ),
            _ => {
                c.not_ip += 1;
                return;
            }
        };
        if fragmented {
            c.ip_fragments += 1;
            return;
        }
        let (payload, tcp) = match &p.transport {
            Some(TransportSlice::Udp(u)) if self.opts.ports.contains(&u.destination_port()) => {
                (u.payload(), false)
            }
            Some(TransportSlice::Tcp(t)) if self.opts.ports.contains(&t.destination_port()) => {
                (t.payload(), true)
            }
            _ => {
                c.other_traffic += 1;
                return;
            }
        };
        let req = match sip::parse_head(payload) {
            Head::Request(r) => r,
            Head::Response => {
                c.responses += 1;
                return;
            }
            Head::KeepAlive => {
                c.keepalives += 1;
                return;
            }
            Head::Malformed if tcp => {
                c.tcp_not_request_start += 1;
                return;
            }
            Head::Malformed => {
                c.malformed += 1;
                return;
            }
        };
        if let Some(m) = &self.opts.method {
            if req.method != m.as_bytes() {
                c.other_methods += 1;
                return;
            }
        }
        let key: &[u8] = match self.opts.key {
            KeyBy::SourceIp => {
                self.key.clear();
                let _ = write!(self.key, "{source}");
                self.key.as_bytes()
            }
            KeyBy::FromUser => match sip::from_user(&req) {
                Some(u) => u,
                None => {
                    c.no_key += 1;
                    return;
                }
            },
            KeyBy::RuriUser => match sip::uri_user(req.uri) {
                Some(u) => u,
                None => {
                    c.no_key += 1;
                    return;
                }
            },
        };
        // Keys are at most 56 bytes in floodgate's tables; longer users
        // are cut there as a Kamailio module would have to.
        let key = &key[..key.len().min(floodgate::table::MAX_KEY_LEN)];
        c.requests += 1;
        event(u64::try_from(ts).unwrap_or(u64::MAX), key);
    }
}

/// What a CSV file held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvCounts {
    /// Lines read (blank and `#` lines included).
    pub lines: u64,
    /// Events simulated.
    pub events: u64,
    /// Lines that are not `time,key` (skipped).
    pub malformed: u64,
    /// The first malformed line's number, if any.
    pub first_malformed: Option<u64>,
}

/// Parses a CSV time: seconds with up to 9 decimals (`1700000000.25`), or
/// a whole number with a unit (`1500ms`, `42ns`, `3s`).
pub fn parse_csv_time(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return crate::cli::parse_duration(s).ok();
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 9
    {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut f: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..9 {
        f *= 10;
    }
    whole.checked_mul(1_000_000_000)?.checked_add(f)
}

/// Reads `time,key` lines (time as [`parse_csv_time`]; the key is the rest
/// of the line, up to 56 bytes, empty for one shared pipe). A first line
/// starting with `time` is a header; blank lines and `#` lines are skipped.
/// A file with no `time,key` line at all is an error, as a capture that is
/// not a capture is: nothing to simulate is not what the user meant.
pub fn read_csv(path: &Path, mut event: impl FnMut(u64, &[u8])) -> Result<CsvCounts, Failure> {
    let shown = path.display();
    let file = File::open(path).map_err(|e| Failure::error(format!("{shown}: {e}")))?;
    let counts = read_csv_from(BufReader::new(file), &mut event)
        .map_err(|e| Failure::error(format!("{shown}: {e}")))?;
    if counts.events > 0 {
        return Ok(counts);
    }
    Err(Failure::error(match counts.first_malformed {
        Some(line) => format!(
            "{shown}: not a time,key CSV: none of its {} lines is time,key (line {line} is the first that is not)",
            counts.lines
        ),
        None => format!("{shown}: holds no time,key line"),
    }))
}

fn read_csv_from(
    mut input: impl BufRead,
    event: &mut impl FnMut(u64, &[u8]),
) -> std::io::Result<CsvCounts> {
    let mut counts = CsvCounts::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        counts.lines += 1;
        let mut l: &[u8] = &line;
        while let [rest @ .., b'\n' | b'\r'] = l {
            l = rest;
        }
        if l.is_empty() || l.starts_with(b"#") {
            continue;
        }
        let (time, key) = match l.iter().position(|&b| b == b',') {
            Some(i) => (&l[..i], &l[i + 1..]),
            None => (l, &[][..]),
        };
        let t = std::str::from_utf8(time).ok().and_then(parse_csv_time);
        match t {
            Some(t) if key.len() <= floodgate::table::MAX_KEY_LEN => {
                counts.events += 1;
                event(t, key);
            }
            None if counts.lines == 1 && time.trim_ascii().eq_ignore_ascii_case(b"time") => {}
            _ => {
                counts.malformed += 1;
                counts.first_malformed.get_or_insert(counts.lines);
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Events = Vec<(u64, Vec<u8>)>;

    fn read_csv_bytes(data: &[u8]) -> std::io::Result<(CsvCounts, Events)> {
        let mut out = Vec::new();
        let counts = read_csv_from(data, &mut |t, k: &[u8]| out.push((t, k.to_vec())))?;
        Ok((counts, out))
    }

    #[test]
    fn csv_times_and_lines() {
        assert_eq!(parse_csv_time("1.5"), Some(1_500_000_000));
        assert_eq!(
            parse_csv_time("1700000000.000000001"),
            Some(1_700_000_000_000_000_001)
        );
        assert_eq!(parse_csv_time(".25"), Some(250_000_000));
        assert_eq!(parse_csv_time("1500ms"), Some(1_500_000_000));
        assert_eq!(parse_csv_time("3"), Some(3_000_000_000));
        assert_eq!(parse_csv_time("1.0000000001"), None);
        assert_eq!(parse_csv_time("-1"), None);
        assert_eq!(parse_csv_time(""), None);
        assert_eq!(parse_csv_time("."), None);
        let text = "time,key\n0.5,10.0.0.1\r\n# comment\n\nbad line\n1.0,\n2,a,b\n";
        let (c, ev) = read_csv_bytes(text.as_bytes()).unwrap();
        assert_eq!((c.lines, c.events, c.malformed), (7, 3, 1));
        assert_eq!(c.first_malformed, Some(5));
        assert_eq!(
            ev,
            vec![
                (500_000_000, b"10.0.0.1".to_vec()),
                (1_000_000_000, vec![]),
                (2_000_000_000, b"a,b".to_vec())
            ]
        );
    }

    #[test]
    fn pcapng_time_units() {
        assert_eq!(TsUnit(6).to_ns(5), 5_000);
        assert_eq!(TsUnit(9).to_ns(5), 5);
        assert_eq!(TsUnit(12).to_ns(5_000), 5);
        assert_eq!(TsUnit(0x80 | 10).to_ns(1024), 1_000_000_000);
    }
}
