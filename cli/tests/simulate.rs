//! `floodgate simulate` through the real binary: captures written here with
//! pcap-file (the crate the command reads them with) replay with known
//! verdicts, the JSON numbers equal the core limiters called directly,
//! broken inputs exit 2 or 3 with a message, and the SVG is well-formed XML
//! naming every limiter.

mod common;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use etherparse::PacketBuilder;
use floodgate::{Algorithm, Gcra, Limiter, PidController, Shared, SlotVerdict, Window};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, TsResolution};
use serde_json::Value;

const S: u64 = 1_000_000_000;

/// A folder of its own under the temp dir, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("fg-simulate-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sip(method: &str, ruri_user: &str, from_user: &str) -> Vec<u8> {
    format!(
        "{method} sip:{ruri_user}@proxy.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
         From: \"X\" <sip:{from_user}@a.example>;tag=1\r\n\
         To: <sip:{ruri_user}@proxy.example>\r\n\
         Call-ID: 1@a\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn udp(src: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, [192, 0, 2, 53], 64)
        .udp(40000, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

fn udp6(src: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv6(
            src,
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            64,
        )
        .udp(40000, 5060);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

fn tcp(src: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, [192, 0, 2, 53], 64)
        .tcp(40001, 5060, 1, 65535);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

const A: [u8; 4] = [198, 51, 100, 1];
const B: [u8; 4] = [198, 51, 100, 2];
const C: [u8; 4] = [198, 51, 100, 3];

/// The synthetic capture: `(time ns, frame)`, and what it must give.
///
/// With `--method INVITE TAILDROP:3/1s`, keyed by source IP: A sends 5
/// INVITEs in second 0 (3 pass, 2 drop) and 1 in second 1 (passes); B 2
/// INVITEs (pass), C 1 over TCP (passes), 2001:db8::7 1 over IPv6 (passes):
/// 10 requests, 8 passed, 2 dropped.
/// Skipped: 2 OPTIONS (other method), 1 response, 1 keep-alive, 1 DNS
/// packet (other traffic), 1 IP fragment, 1 TCP continuation, 1 bare TCP
/// ACK, 1 garbage datagram to 5060 and 1 cut frame (malformed).
fn frames() -> Vec<(u64, Vec<u8>)> {
    let mut f = Vec::new();
    let invite_a = sip("INVITE", "bob", "alice");
    for i in 0..5 {
        f.push((100_000_000 * i, udp(A, 5060, &invite_a)));
    }
    f.push((150_000_000, udp(B, 5060, &sip("INVITE", "carol", "bert"))));
    f.push((160_000_000, udp(B, 5060, &sip("OPTIONS", "carol", "bert"))));
    f.push((170_000_000, udp(A, 5060, &sip("OPTIONS", "bob", "alice"))));
    f.push((
        180_000_000,
        udp(A, 5060, b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ));
    f.push((190_000_000, udp(A, 5060, b"\r\n\r\n")));
    f.push((200_000_000, udp(A, 53, b"dns")));
    let mut frag = udp(B, 5060, &sip("INVITE", "carol", "bert"));
    frag[14 + 6] |= 0x20; // IPv4 "more fragments"
    f.push((210_000_000, frag));
    f.push((220_000_000, tcp(C, &sip("INVITE", "dave", "carl"))));
    f.push((
        230_000_000,
        tcp(C, b"Content-Type: application/sdp\r\n\r\nv=0\r\n"),
    ));
    f.push((235_000_000, tcp(C, b"")));
    f.push((240_000_000, udp(B, 5060, b"\x00\x01garbage")));
    let cut = udp(A, 5060, &invite_a);
    f.push((250_000_000, cut[..20].to_vec()));
    let mut v6 = [0u8; 16];
    v6[..4].copy_from_slice(&[0x20, 1, 0xd, 0xb8]);
    v6[15] = 7;
    f.push((260_000_000, udp6(v6, &sip("INVITE", "erin", "eve"))));
    f.push((900_000_000, udp(B, 5060, &sip("INVITE", "carol", "bert"))));
    f.push((1_100_000_000, udp(A, 5060, &invite_a)));
    f
}

/// Frames are stamped from this time (a real capture's are since 1970).
const BASE: u64 = 1_700_000_000 * S;

fn write_pcap(path: &Path, frames: &[(u64, Vec<u8>)]) {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(File::create(path).unwrap(), header).unwrap();
    for (t, data) in frames {
        let p = PcapPacket::new(Duration::from_nanos(BASE + t), data.len() as u32, data);
        w.write_packet(&p).unwrap();
    }
}

/// pcapng with `tsresol` (None: the default, microseconds).
fn write_pcapng(path: &Path, frames: &[(u64, Vec<u8>)], tsresol: Option<u8>) {
    let mut w = PcapNgWriter::new(File::create(path).unwrap()).unwrap();
    let idb = InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 65535,
        options: tsresol
            .map(|r| vec![InterfaceDescriptionOption::IfTsResol(r)])
            .unwrap_or_default(),
    };
    w.write_pcapng_block(idb).unwrap();
    let per_unit = match tsresol {
        Some(9) => 1,
        None | Some(6) => 1_000,
        Some(r) => panic!("tsresol {r}"),
    };
    for (t, data) in frames {
        // pcap-file writes the Duration's nanoseconds as the raw units.
        let units = (BASE + t) / per_unit;
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(units),
            original_len: data.len() as u32,
            data: Cow::Borrowed(data),
            options: vec![],
        };
        w.write_pcapng_block(epb).unwrap();
    }
}

fn simulate(dir: &TempDir, args: &[&str]) -> (Run, PathBuf) {
    let svg = dir.path("chart.svg");
    let mut all = vec!["simulate", "--svg", svg.to_str().unwrap()];
    all.extend_from_slice(args);
    (cli_raw(&all), svg)
}

fn simulate_json(dir: &TempDir, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (r, _) = simulate(dir, &all);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

fn counts(lane: &Value) -> (u64, u64, u64) {
    (
        lane["offered"].as_u64().unwrap(),
        lane["passed"].as_u64().unwrap(),
        lane["dropped"].as_u64().unwrap(),
    )
}

#[test]
fn a_synthetic_capture_replays_with_known_verdicts() {
    let dir = TempDir::new("known");
    let f = frames();
    let pcap = dir.path("sip.pcap");
    let ng_us = dir.path("sip-us.pcapng");
    let ng_ns = dir.path("sip-ns.pcapng");
    write_pcap(&pcap, &f);
    write_pcapng(&ng_us, &f, None);
    write_pcapng(&ng_ns, &f, Some(9));
    for (file, format) in [(&pcap, "pcap"), (&ng_us, "pcapng"), (&ng_ns, "pcapng")] {
        let v = simulate_json(
            &dir,
            &[
                "--capture",
                file.to_str().unwrap(),
                "--method",
                "INVITE",
                "TAILDROP:3/1s",
            ],
        );
        let src = &v["source"];
        assert_eq!(src["format"], format, "{file:?}");
        assert_eq!(src["packets"], f.len(), "{file:?}");
        assert_eq!(src["requests"], 10, "{file:?}: {src}");
        assert_eq!(
            src["skipped"],
            serde_json::json!({"not_ip": 0, "other_traffic": 1, "ip_fragments": 1,
                "responses": 1, "keepalives": 1, "tcp_not_request_start": 2,
                "other_methods": 2, "no_key": 0, "malformed": 2,
                "unsupported_link": 0, "untimed_blocks": 0}),
            "{file:?}"
        );
        assert_eq!(src["truncated"], false);
        assert_eq!(v["events"], 10);
        assert_eq!(
            v["origin_ns"], BASE,
            "{file:?}: time 0 is the first request"
        );
        assert_eq!(v["span_ns"], 1_100_000_000u64, "{file:?}");
        assert_eq!(v["keyed"], true);
        let lane = &v["limiters"][0];
        assert_eq!(lane["limiter"], "TAILDROP:3/1s");
        assert_eq!(counts(lane), (10, 8, 2), "{file:?}");
        assert_eq!(lane["top_keys"][0]["key"], "198.51.100.1");
        assert_eq!(lane["top_keys"][0]["offered"], 6);
        assert_eq!(lane["top_keys"][0]["dropped"], 2);
        assert_eq!(lane["keys_counted"], 4);
        let keys: Vec<&str> = lane["top_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["key"].as_str().unwrap())
            .collect();
        assert!(keys.contains(&"2001:db8::7"), "{keys:?}");
        // Worst burst: A's 3, B's 2, C's and the IPv6 one pass within
        // 0.9 s; by A's last, at 1.1 s, the first two left the span.
        assert_eq!(lane["worst_burst"], 7, "{file:?}");
    }
    // Keyed by the From user or the Request-URI user, all methods.
    let v = simulate_json(
        &dir,
        &[
            "--capture",
            pcap.to_str().unwrap(),
            "--key",
            "from-user",
            "INTERVAL:1/1s",
        ],
    );
    let lane = &v["limiters"][0];
    // alice: 5 INVITEs + 1 OPTIONS in second 0 (1 passes) and 1 INVITE in
    // second 1; bert: 2 INVITEs + 1 OPTIONS in second 0; carl, eve: 1 each.
    assert_eq!(v["source"]["requests"], 12);
    assert_eq!(counts(lane), (12, 5, 7));
    assert_eq!(lane["top_keys"][0]["key"], "alice");
    assert_eq!(lane["top_keys"][0]["dropped"], 5);
    let v = simulate_json(
        &dir,
        &[
            "--capture",
            pcap.to_str().unwrap(),
            "--key",
            "ruri-user",
            "--method",
            "OPTIONS",
            "NOP",
        ],
    );
    assert_eq!(counts(&v["limiters"][0]), (2, 2, 0));
    // Another port: nothing is SIP there.
    let v = simulate_json(
        &dir,
        &["--capture", pcap.to_str().unwrap(), "--port", "5080", "NOP"],
    );
    assert_eq!(v["source"]["requests"], 0);
    assert_eq!(v["events"], 0);
}

/// The IP packet (no link layer) of a SIP request from `src`.
fn ip_packet(src: [u8; 4]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src, [192, 0, 2, 53], 64).udp(40000, 5060);
    let payload = sip("INVITE", "bob", "alice");
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, &payload).unwrap();
    out
}

#[test]
fn linux_cooked_raw_ip_and_loopback_captures() {
    let dir = TempDir::new("links");
    let ip = ip_packet(A);
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    let mut null = 2u32.to_ne_bytes().to_vec(); // AF_INET
    null.extend_from_slice(&ip);
    for (link, frame) in [
        (DataLink::LINUX_SLL, sll),
        (DataLink::LINUX_SLL2, sll2),
        (DataLink::RAW, ip.clone()),
        (DataLink::NULL, null),
    ] {
        let path = dir.path("link.pcap");
        let header = PcapHeader {
            datalink: link,
            ..Default::default()
        };
        let mut w = PcapWriter::with_header(File::create(&path).unwrap(), header).unwrap();
        for i in 0..4u64 {
            let p = PcapPacket::new(Duration::from_millis(i), frame.len() as u32, &frame);
            w.write_packet(&p).unwrap();
        }
        // And one cut short.
        let p = PcapPacket::new(Duration::from_millis(9), 10, &frame[..10]);
        w.write_packet(&p).unwrap();
        drop(w);
        let v = simulate_json(
            &dir,
            &["--capture", path.to_str().unwrap(), "TAILDROP:3/1s"],
        );
        assert_eq!(v["source"]["requests"], 4, "{link:?}: {v}");
        assert_eq!(v["source"]["skipped"]["malformed"], 1, "{link:?}: {v}");
        assert_eq!(counts(&v["limiters"][0]), (4, 3, 1), "{link:?}");
    }
    // A link type this reader does not decode: counted, not fatal.
    let path = dir.path("ax25.pcap");
    let header = PcapHeader {
        datalink: DataLink::AX25,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(File::create(&path).unwrap(), header).unwrap();
    w.write_packet(&PcapPacket::new(Duration::ZERO, 3, b"abc"))
        .unwrap();
    drop(w);
    let v = simulate_json(&dir, &["--capture", path.to_str().unwrap(), "NOP"]);
    assert_eq!(v["source"]["skipped"]["unsupported_link"], 1);
    assert_eq!(v["events"], 0);
}

#[test]
fn a_capture_cut_in_its_last_record_is_read_up_to_there() {
    let dir = TempDir::new("cut");
    let pcap = dir.path("cut.pcap");
    write_pcap(&pcap, &frames());
    let bytes = std::fs::read(&pcap).unwrap();
    std::fs::write(&pcap, &bytes[..bytes.len() - 30]).unwrap();
    let v = simulate_json(&dir, &["--capture", pcap.to_str().unwrap(), "NOP"]);
    assert_eq!(v["source"]["truncated"], true);
    assert_eq!(v["source"]["packets"], frames().len() - 1);
    let (r, _) = simulate(&dir, &["--capture", pcap.to_str().unwrap(), "NOP"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("ends inside its last record"),
        "{}",
        r.stdout
    );
}

#[test]
fn broken_inputs_exit_2_or_3_with_a_message() {
    let dir = TempDir::new("broken");
    let text = dir.path("notes.txt");
    std::fs::write(&text, "this is not a capture\n").unwrap();
    let empty = dir.path("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let header_cut = dir.path("header.pcap");
    std::fs::write(&header_cut, [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]).unwrap();
    // A pcapng whose second block claims a length smaller than a block.
    let bad_block = dir.path("bad.pcapng");
    write_pcapng(&bad_block, &frames()[..2], Some(9));
    let mut bytes = std::fs::read(&bad_block).unwrap();
    let shb_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    bytes[shb_len + 4..shb_len + 8].copy_from_slice(&4u32.to_le_bytes());
    std::fs::write(&bad_block, &bytes).unwrap();
    let missing = dir.path("missing.pcap");
    // Two events 10 days apart: 8.64e8 updates of a 1 ms controller.
    let csv_far = dir.path("far.csv");
    std::fs::write(&csv_far, "0,a\n864000,a\n").unwrap();
    for (file, want) in [
        (&text, "not a capture"),
        (&empty, "not a capture: it is empty"),
        (&header_cut, "not a readable pcap"),
        (&bad_block, "broken after 0 packets"),
        (&missing, "No such file"),
    ] {
        let (r, svg) = simulate(&dir, &["--capture", file.to_str().unwrap(), "RED:10"]);
        assert_eq!(r.code, 3, "{file:?}: {r:?}");
        assert!(r.stderr.contains(want), "{file:?}: {}", r.stderr);
        assert!(r.stdout.is_empty());
        assert!(!svg.exists(), "{file:?}: no chart for a failed run");
    }
    // A CSV with no time,key line: nothing to simulate is an error too.
    let csv_text = dir.path("passwd.csv");
    std::fs::write(&csv_text, "root:x:0:0:root:/root:/bin/bash\nbin:x:2:2\n").unwrap();
    let csv_empty = dir.path("empty.csv");
    std::fs::write(&csv_empty, "# time,key\n\n").unwrap();
    for (file, want) in [
        (
            &csv_text,
            "not a time,key CSV: none of its 2 lines is time,key (line 1",
        ),
        (&csv_empty, "holds no time,key line"),
    ] {
        let (r, svg) = simulate(&dir, &["--csv", file.to_str().unwrap(), "RED:10"]);
        assert_eq!(r.code, 3, "{file:?}: {r:?}");
        assert!(r.stderr.contains(want), "{file:?}: {}", r.stderr);
        assert!(!svg.exists(), "{file:?}: no chart for a failed run");
    }
    // A chart that cannot be written.
    let r = cli_raw(&[
        "simulate",
        "--model",
        "const:10",
        "--svg",
        dir.path("no/such/dir/x.svg").to_str().unwrap(),
        "NOP",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("x.svg"), "{}", r.stderr);
    for (args, want) in [
        (vec!["--model", "const:10", "FOO:1"], "unknown algorithm"),
        (vec!["--model", "wave:10", "RED:1"], "unknown shape"),
        (vec!["RED:1"], "--model"),
        (vec!["--model", "const:10"], "LIMITER"),
        (vec!["--model", "const:10", "FEEDBACK:50"], "--load"),
        (vec!["--model", "const:10", "RED:0"], "1..="),
        (
            vec![
                "--model",
                "const:1",
                "--bin",
                "1ns",
                "--duration",
                "1h",
                "NOP",
            ],
            "--bin",
        ),
        (
            vec!["--model", "const:1", "--csv", "x", "NOP"],
            "cannot be used",
        ),
        (
            vec!["--model", "const:1000000", "--duration", "1000d", "NOP"],
            "at most",
        ),
        (
            vec![
                "--csv",
                csv_far.to_str().unwrap(),
                "--load",
                "0.5",
                "FEEDBACK:50/1ms",
            ],
            "longer interval",
        ),
    ] {
        let (r, _) = simulate(&dir, &args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
}

/// A small xorshift, so the traffic here does not come from the code under test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What the core's limiters say about `events`, called directly: one
/// limiter per key, FEEDBACK's controller ticked once per interval with
/// `load`, NETWORK fed `queue`, SLOTS holding each slot for `hold`.
/// Returns (offered, passed, dropped, worst burst, drops per key).
fn direct(
    algo: Algorithm,
    limit: i64,
    interval: u64,
    events: &[(u64, String)],
    load: impl Fn(u64) -> f64,
    queue: impl Fn(u64) -> u64,
    hold: u64,
) -> (u64, u64, u64, u64, HashMap<String, u64>) {
    let window = Window::aligned(interval, 0).unwrap();
    let mut pipes: HashMap<String, Limiter> = HashMap::new();
    let mut pid = PidController::new();
    if algo == Algorithm::Feedback {
        pid.set_setpoint_percent(limit as u32).unwrap();
    }
    let mut shared = Shared::default();
    let mut next_tick = interval;
    let mut releases: Vec<(u64, String)> = Vec::new();
    let mut passes = Vec::new();
    let mut drops: HashMap<String, u64> = HashMap::new();
    for (t, key) in events {
        let t = *t;
        releases.sort();
        while let Some((at, _)) = releases.first() {
            if *at > t {
                break;
            }
            let (_, k) = releases.remove(0);
            let _ = pipes.get_mut(&k).unwrap().release();
        }
        while algo == Algorithm::Feedback && next_tick <= t {
            shared.drop_rate = pid.update(load(next_tick)).unwrap();
            next_tick += interval;
        }
        shared.bytes_waiting = queue(t);
        let l = pipes.entry(key.clone()).or_insert_with(|| match algo {
            Algorithm::Gcra => Limiter::Gcra(Gcra::new(limit as u32, interval, 1).unwrap()),
            a => Limiter::new(a, limit, window).unwrap(),
        });
        let pass = if algo == Algorithm::Slots {
            let ok = l.acquire().unwrap() == SlotVerdict::Acquired;
            if ok {
                releases.push((t + hold, key.clone()));
            }
            ok
        } else {
            l.check(t, &shared).unwrap().passed()
        };
        if pass {
            passes.push(t);
        } else {
            *drops.entry(key.clone()).or_default() += 1;
        }
    }
    let mut worst = 0;
    let mut from = 0;
    for (i, &t) in passes.iter().enumerate() {
        while passes[from] + S <= t {
            from += 1;
        }
        worst = worst.max(i + 1 - from);
    }
    let n = events.len() as u64;
    let passed = passes.len() as u64;
    (n, passed, n - passed, worst as u64, drops)
}

#[test]
fn the_json_numbers_equal_the_core_limiters_called_directly() {
    let dir = TempDir::new("direct");
    // 40 s of bursty traffic over 5 keys, one key much busier.
    let mut rng = XorShift(0x5eed_1234_abcd);
    // The first at 0: time 0 of a run is its first event, and the
    // windows, --load and --queue count from there.
    let mut events: Vec<(u64, String)> = vec![(0, "10.0.0.1".to_owned())];
    let mut t = 0u64;
    while t < 40 * S {
        let busy = (t / (5 * S)) % 2 == 1;
        t += rng.next() % if busy { 4_000_000 } else { 20_000_000 };
        let key = match rng.next() % 8 {
            0..=3 => "10.0.0.1".to_owned(),
            k => format!("10.0.0.{}", k - 2),
        };
        events.push((t, key));
    }
    let csv = dir.path("events.csv");
    let mut text = String::from("time,key\n");
    for (t, k) in &events {
        text.push_str(&format!("{}.{:09},{k}\n", t / S, t % S));
    }
    std::fs::write(&csv, text).unwrap();
    let load = |t: u64| if t < 10 * S { 0.2 } else { 0.95 };
    let queue = |t: u64| {
        if (20 * S..25 * S).contains(&t) {
            90_000
        } else {
            0
        }
    };
    let cases: [(&str, Algorithm, i64, u64); 10] = [
        ("TAILDROP:40/1s", Algorithm::Taildrop, 40, S),
        ("RED:40/1s", Algorithm::Red, 40, S),
        ("REDP:40/1s", Algorithm::RedProportional, 40, S),
        ("SLIDING:40/1s", Algorithm::Sliding, 40, S),
        ("GCRA:40/1s", Algorithm::Gcra, 40, S),
        ("INTERVAL:300/10s", Algorithm::Interval, 300, 10 * S),
        ("FEEDBACK:50/1s", Algorithm::Feedback, 50, S),
        ("NETWORK:50000", Algorithm::Network, 50_000, S),
        ("NOP", Algorithm::Nop, 0, S),
        ("SLOTS:3", Algorithm::Slots, 3, S),
    ];
    let mut args: Vec<&str> = vec![
        "--csv",
        csv.to_str().unwrap(),
        "--load",
        "0.2,0.95@10s",
        "--queue",
        "0,90000@20s,0@25s",
        "--hold",
        "150ms",
        "--top",
        "100",
    ];
    args.extend(cases.iter().map(|c| c.0));
    let v = simulate_json(&dir, &args);
    assert_eq!(v["events"], events.len());
    for (i, (spec, algo, limit, interval)) in cases.iter().enumerate() {
        let lane = &v["limiters"][i];
        assert_eq!(lane["algorithm"], algo.name(), "{spec}");
        let (offered, passed, dropped, worst, drops) =
            direct(*algo, *limit, *interval, &events, load, queue, 150_000_000);
        assert_eq!(counts(lane), (offered, passed, dropped), "{spec}");
        assert_eq!(lane["worst_burst"], worst, "{spec}");
        assert_eq!(lane["evicted_busy"], 0, "{spec}");
        let want = passed as f64 / offered as f64;
        assert!(
            (lane["pass_ratio"].as_f64().unwrap() - want).abs() < 1e-12,
            "{spec}"
        );
        for k in lane["top_keys"].as_array().unwrap() {
            let key = k["key"].as_str().unwrap();
            assert_eq!(
                k["dropped"].as_u64().unwrap(),
                drops.get(key).copied().unwrap_or(0),
                "{spec} {key}"
            );
        }
        if !matches!(algo, Algorithm::Nop | Algorithm::Network) {
            assert!(dropped > 0 && passed > 0, "{spec}: the case tests nothing");
        }
    }
    // NETWORK dropped exactly what arrived while 90000 bytes waited.
    let during = events
        .iter()
        .filter(|(t, _)| (20 * S..25 * S).contains(t))
        .count() as u64;
    assert_eq!(v["limiters"][7]["dropped"], during);

    // A model: const:300 for 10 s through RED, as the core decides it.
    let v = simulate_json(
        &dir,
        &["--model", "const:300", "--duration", "10s", "RED:100/1s"],
    );
    let times: Vec<(u64, String)> = (0..3000u64)
        .map(|k| (((k as f64 / 300.0) * 1e9).round() as u64, String::new()))
        .collect();
    let (o, p, d, w, _) = direct(Algorithm::Red, 100, S, &times, |_| 0.0, |_| 0, 0);
    assert_eq!(counts(&v["limiters"][0]), (o, p, d));
    assert_eq!(v["limiters"][0]["worst_burst"], w);
    // The first window passes all (load 0), then every third: 300 + 9 * 100.
    assert_eq!(p, 1200);
    assert_eq!(v["keyed"], false);
    assert_eq!(v["span_ns"], 10 * S);
}

#[test]
fn the_svg_is_well_formed_and_names_every_limiter() {
    let dir = TempDir::new("svg");
    let png = dir.path("chart.png");
    let specs = [
        "RED:100/1s",
        "TAILDROP:100/1s",
        "REDP:100/1s",
        "GCRA:100/1s:5",
        "FEEDBACK:60/1s",
    ];
    let mut args = vec![
        "--model",
        "poisson:300+square:600:0:10s:0.2",
        "--duration",
        "30s",
        "--load",
        "passed:80",
        "--png",
        png.to_str().unwrap(),
    ];
    args.extend(specs);
    let (r, svg) = simulate(&dir, &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for s in specs {
        assert!(r.stdout.contains(s), "{s} in the summary: {}", r.stdout);
    }
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    for s in specs {
        assert!(
            texts.iter().any(|t| t.contains(s)),
            "{s} is named in the chart: {texts:?}"
        );
    }
    for word in ["offered", "passed", "dropped", "worst burst"] {
        assert!(texts.iter().any(|t| t.contains(word)), "{word}");
    }
    let lines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert!(lines >= 3 * specs.len(), "{lines} lines");
    let png = std::fs::read(&png).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
}

#[test]
fn help_shows_the_grammars_and_the_exit_codes() {
    let r = cli_raw(&["simulate", "--help"]);
    assert_eq!(r.code, 0);
    for want in [
        "ALGO:LIMIT[/INTERVAL]",
        "square:HIGH:LOW:PERIOD[:DUTY]",
        "poisson:RATE",
        "--capture",
        "from-user",
        "Exit codes:",
        "2  usage",
    ] {
        assert!(r.stdout.contains(want), "{want}: {}", r.stdout);
    }
}
