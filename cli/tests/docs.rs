//! The dialplan lines of docs/app_rpt.md, run as Asterisk would run them:
//! `AGI(floodgate,a,b,c)` split at its commas into the program's arguments,
//! `${VAR}` replaced by the channel's variables.

mod common;

use common::*;

const GUIDE: &str = include_str!("../../docs/app_rpt.md");

/// Every distinct `AGI(floodgate,...)` of the guide, as argument lists
/// (without the program name), with `${VAR}` left in.
fn agi_lines() -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for line in GUIDE.lines() {
        let mut rest = line;
        while let Some(at) = rest.find("AGI(floodgate,") {
            let body = &rest[at + "AGI(floodgate,".len()..];
            let end = body.find(')').expect("AGI( without )");
            let args: Vec<String> = body[..end].split(',').map(str::to_owned).collect();
            // Prose such as `AGI(floodgate,...)` is not a dialplan line.
            if args[0] == "agi" && !out.contains(&args) {
                out.push(args);
            }
            rest = &body[end..];
        }
    }
    out
}

/// Asterisk's variable substitution, for the variables these lines use.
fn substitute(args: &[String], ch: &Channel, max: &str) -> Vec<String> {
    args.iter()
        .map(|a| {
            if a == "Y" {
                return max.to_owned();
            }
            let mut s = a.clone();
            while let Some(start) = s.find("${") {
                let end = start + s[start..].find('}').unwrap();
                let name = &s[start + 2..end];
                let value = ch.var(name).unwrap_or("").to_owned();
                s.replace_range(start..=end, &value);
            }
            s
        })
        .collect()
}

/// Serves one AGI run of `args` (which start with `agi`, as in the guide).
fn run(t: &TempTable, args: &[String], ch: &mut Channel) -> i32 {
    assert_eq!(args[0], "agi");
    let args: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    let (code, err) = serve(t, &args, ch);
    assert_eq!(code, 0, "{args:?}: {err}");
    code
}

#[test]
fn the_guide_s_dialplan_lines_work() {
    let lines = agi_lines();
    let link = lines.iter().find(|a| a[1] == "link").expect("a link line");
    let hub = lines.iter().find(|a| a[1] == "hub").expect("a hub line");
    let releases: Vec<&Vec<String>> = lines.iter().filter(|a| a[1] == "release").collect();
    assert!(!releases.is_empty());
    assert_eq!(lines.len(), 2 + releases.len(), "{lines:?}");

    // Setup 1, with Y = 2: two links in, the third to the dump node.
    let t = TempTable::new("docs");
    let mut channels: Vec<Channel> = (0..3).map(|_| Channel::default()).collect();
    for ch in &mut channels {
        let args = substitute(link, ch, "2");
        run(&t, &args, ch);
    }
    let verdicts: Vec<&str> = channels
        .iter()
        .map(|c| c.var("FG_VERDICT").unwrap())
        .collect();
    assert_eq!(verdicts, ["ADMIT", "ADMIT", "REFUSE"]);
    assert_eq!(usage(&t, "node/22900"), 2);
    // Their h extension (every release line of the guide; twice is fine).
    for release in &releases {
        for ch in &mut channels {
            let args = substitute(release, ch, "2");
            run(&t, &args, ch);
        }
    }
    assert_eq!(usage(&t, "node/22900"), 0);

    // Setup 2: the hub line spreads links over the four virtual nodes.
    let mut hub_channels = Vec::new();
    for _ in 0..8 {
        let mut ch = Channel::default();
        // exten => 68500,n,Set(FG_NODE=168505)
        ch.vars.insert("FG_NODE".into(), "168505".into());
        let args = substitute(hub, &ch, "");
        run(&t, &args, &mut ch);
        assert_eq!(ch.var("FG_VERDICT"), Some("ADMIT"));
        hub_channels.push(ch);
    }
    for node in ["168501", "168502", "168503", "168504"] {
        assert_eq!(usage(&t, &format!("node/{node}")), 2, "{node}");
    }
    for ch in &mut hub_channels {
        let args = substitute(releases[0], ch, "");
        run(&t, &args, ch);
    }
    for node in ["168501", "168502", "168503", "168504"] {
        assert_eq!(usage(&t, &format!("node/{node}")), 0, "{node}");
    }
}
