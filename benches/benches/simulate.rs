//! `floodgate simulate`: events per second through the whole run. Criterion
//! prints the throughput (`thrpt`, elements = events per second).
//!
//! * `engine/model_3_limiters`: 100 000 modelled events (Poisson, 3x over
//!   the limit) through RED, TAILDROP and REDP, one pipe.
//! * `engine/keyed_1000_3_limiters`: the same through per-key pipes, 1000 keys.
//! * `capture/pcap_100k_3_limiters`: a 100 000-packet pcap of SIP INVITEs
//!   read from a file, decoded (Ethernet, IPv4, UDP, request line) and keyed
//!   by source IP, through the same 3 limiters: the whole `--capture` path
//!   but the chart.
//!
//! Run: `cargo bench -p floodgate-benches --bench simulate`.

use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use etherparse::PacketBuilder;
use floodgate_cli::simulate::capture::{read_capture, CaptureOptions, KeyBy};
use floodgate_cli::simulate::engine::{Engine, Options};
use floodgate_cli::simulate::model::{parse_model, ModelEvents};
use floodgate_cli::simulate::spec::{parse_limit_spec, LimitSpec};
use pcap_file::pcap::{PcapPacket, PcapWriter};

mod common;

const EVENTS: u64 = 100_000;

fn specs() -> Vec<LimitSpec> {
    ["RED:100/1s", "TAILDROP:100/1s", "REDP:100/1s"]
        .iter()
        .map(|s| parse_limit_spec(s).expect("a valid spec"))
        .collect()
}

fn options() -> Options {
    Options {
        bin_ns: 1_000_000_000,
        max_keys: 100_000,
        hold_ns: 60_000_000_000,
        load: None,
        queue: None,
    }
}

/// A pcap of `n` INVITEs from 1000 source addresses, 2000 a second.
fn write_capture(n: u64) -> PathBuf {
    let path = std::env::temp_dir().join(format!("fg-bench-simulate-{}.pcap", std::process::id()));
    let mut w = PcapWriter::new(File::create(&path).expect("create the capture")).expect("pcap");
    let mut frame = Vec::new();
    for i in 0..n {
        let payload = format!(
            "INVITE sip:u{}@proxy.example SIP/2.0\r\nFrom: <sip:a{}@x.example>;tag=1\r\nCall-ID: {i}\r\n\r\n",
            i % 5000,
            i % 700
        );
        let src = [10, 1, (i % 1000 / 250) as u8, (i % 250) as u8 + 1];
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src, [192, 0, 2, 1], 64)
            .udp(40000, 5060);
        frame.clear();
        b.write(&mut frame, payload.as_bytes()).expect("a frame");
        let t = Duration::from_nanos(1_700_000_000_000_000_000 + i * 500_000);
        w.write_packet(&PcapPacket::new(t, frame.len() as u32, &frame))
            .expect("a packet");
    }
    path
}

fn benches(c: &mut Criterion) {
    let model = parse_model("poisson:300").expect("a valid model");
    let times: Vec<u64> = ModelEvents::new(&model, 1_000_000_000_000, 1)
        .take(EVENTS as usize)
        .collect();
    let keys: Vec<String> = (0..1000)
        .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
        .collect();
    let specs = specs();
    let mut g = c.benchmark_group("simulate");
    g.throughput(Throughput::Elements(EVENTS));
    g.bench_function(BenchmarkId::new("engine", "model_3_limiters"), |b| {
        b.iter(|| {
            let mut e = Engine::new(&specs, options()).expect("an engine");
            for &t in &times {
                e.event(t, b"").expect("in range");
            }
            e.finish()
        })
    });
    // 1000 keys at 300/s in all: each key well under its limit, so the
    // pipes and their maps are what is measured.
    g.bench_function(BenchmarkId::new("engine", "keyed_1000_3_limiters"), |b| {
        b.iter(|| {
            let mut e = Engine::new(&specs, options()).expect("an engine");
            for (i, &t) in times.iter().enumerate() {
                e.event(t, keys[i % keys.len()].as_bytes())
                    .expect("in range");
            }
            e.finish()
        })
    });
    let capture = write_capture(EVENTS);
    let opts = CaptureOptions {
        ports: vec![5060],
        method: None,
        key: KeyBy::SourceIp,
    };
    g.bench_function(BenchmarkId::new("capture", "pcap_100k_3_limiters"), |b| {
        b.iter(|| {
            let mut e = Engine::new(&specs, options()).expect("an engine");
            let counts = read_capture(&capture, &opts, |t, k| {
                e.event(t, k).expect("in range");
            })
            .expect("a readable capture");
            assert_eq!(counts.requests, EVENTS);
            e.finish()
        })
    });
    g.finish();
    let _ = std::fs::remove_file(&capture);
}

criterion_group! {
    name = group;
    config = common::config();
    targets = benches
}
criterion_main!(group);
