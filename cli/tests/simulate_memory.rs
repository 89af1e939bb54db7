//! `floodgate simulate` streams its input: the peak memory of a run over a
//! capture five times longer stays within a few MiB of the shorter run's
//! (the captures are about 10 MB and 50 MB, both past the 8 MB read buffer
//! of pcap-file; collecting the packets would add some 40 MiB). Alone in its test binary: the peak is read with
//! getrusage(RUSAGE_CHILDREN), which covers every child this process waited for.

mod common;

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use common::*;
use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapPacket, PcapWriter};

fn write_capture(path: &Path, packets: u64) {
    let mut w = PcapWriter::new(File::create(path).unwrap()).unwrap();
    let mut frame = Vec::new();
    for i in 0..packets {
        let payload = format!(
            "INVITE sip:u{}@proxy.example SIP/2.0\r\nFrom: <sip:a{}@x.example>;tag=1\r\n\r\n",
            i % 5000,
            i % 700
        );
        let src = [10, 1, (i % 1000 / 250) as u8, (i % 250) as u8 + 1];
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src, [192, 0, 2, 1], 64)
            .udp(40000, 5060);
        frame.clear();
        b.write(&mut frame, payload.as_bytes()).unwrap();
        // 2000 requests a second: a 400 000-packet capture spans 200 s.
        let t = Duration::from_nanos(1_700_000_000_000_000_000 + i * 500_000);
        w.write_packet(&PcapPacket::new(t, frame.len() as u32, &frame))
            .unwrap();
    }
}

/// The peak resident size of the children waited for so far, in KiB.
fn children_peak_kib() -> i64 {
    // SAFETY: getrusage writes one rusage into the zeroed struct given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and a valid pointer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0);
    usage.ru_maxrss
}

#[test]
fn memory_stays_flat_as_the_capture_grows() {
    let dir = std::env::temp_dir().join(format!("fg-simulate-mem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let small = dir.join("small.pcap");
    let big = dir.join("big.pcap");
    write_capture(&small, 80_000);
    write_capture(&big, 400_000);
    let svg = dir.join("chart.svg");
    let run = |capture: &Path| {
        let r = cli_raw(&[
            "simulate",
            "--capture",
            capture.to_str().unwrap(),
            "--key",
            "from-user",
            "--svg",
            svg.to_str().unwrap(),
            "TAILDROP:5/1s",
            "RED:5/1s",
            "GCRA:5/1s",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        children_peak_kib()
    };
    let small_peak = run(&small);
    let big_peak = run(&big);
    std::fs::remove_dir_all(&dir).unwrap();
    eprintln!("peak RSS: 80 000 packets {small_peak} KiB, 400 000 packets {big_peak} KiB");
    assert!(small_peak > 0);
    assert!(
        big_peak <= small_peak + 4 * 1024,
        "a 5x longer capture took {big_peak} KiB at peak against {small_peak} KiB"
    );
}
