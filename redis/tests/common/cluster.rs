//! A throwaway Redis Cluster on loopback ports for the cluster test: six
//! `redis-server` processes (three primaries, three replicas) created with
//! `redis-cli --cluster create`, plus a minimal slot router that follows
//! `MOVED` itself (no cluster client needed).
//!
//! The nodes are the harness's [`Server`]s (`common/mod.rs`): each is killed
//! (SIGKILL) and its directory removed when the [`Cluster`] drops, also when
//! the test panics. Every wait is bounded in time.
//!
//! Included by `tests/cluster.rs` through `#[path]`, not by `common/mod.rs`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use redis::Value;

use crate::common::{tail, Server, ServerOpts};

/// Number of hash slots of Redis Cluster.
pub const SLOTS: usize = 16384;

/// Timeout of every client socket operation: nothing in the test may hang.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// CRC16-XMODEM as Redis Cluster uses it (`HASH_SLOT`).
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The hash slot of a key, with the `{hash tag}` rule.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&c| c == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.iter()
            .position(|&c| c == b'}')
            .filter(|&len| len > 0)
            .map(|len| &rest[..len])
    });
    crc16(tagged.unwrap_or(key)) & (SLOTS as u16 - 1)
}

/// A reply or the server's error line (`"MOVED 12 127.0.0.1:7001"`,
/// `"ERR ..."`), or a transport error prefixed with `"IO "`.
pub type Reply = Result<Value, String>;

/// Turns a client error into the error line the server sent.
pub fn error_line(e: &redis::RedisError) -> String {
    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
        return format!("IO {e}");
    }
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => format!("IO {e}"),
    }
}

/// Opens a client connection with socket timeouts.
pub fn connect(port: u16) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let con = client.get_connection_with_timeout(IO_TIMEOUT)?;
    con.set_read_timeout(Some(IO_TIMEOUT))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(con)
}

/// Sends one command on a connection.
pub fn run(con: &mut redis::Connection, args: &[&str]) -> Reply {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query::<Value>(con).map_err(|e| error_line(&e))
}

/// An integer reply (also accepts a decimal bulk/simple string).
pub fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

/// A string-ish reply as text (`Nil` -> `None`).
pub fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".into()),
        Value::Int(i) => Some(i.to_string()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// The elements of an array reply.
pub fn as_array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        _ => None,
    }
}

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub id: String,
    pub port: u16,
    pub flags: Vec<String>,
    /// The primary's id for a replica, `None` for a primary.
    pub master_id: Option<String>,
    /// Slot ranges (inclusive), migrating/importing markers ignored.
    pub slots: Vec<(u16, u16)>,
}

impl NodeInfo {
    pub fn is_master(&self) -> bool {
        self.flags.iter().any(|f| f == "master")
    }
    pub fn failed(&self) -> bool {
        self.flags.iter().any(|f| f == "fail" || f == "fail?")
    }
    pub fn owns(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
    }
    /// Lowest slot the node serves.
    pub fn first_slot(&self) -> Option<u16> {
        self.slots.iter().map(|&(a, _)| a).min()
    }
}

/// Parses `CLUSTER NODES` output.
pub fn parse_nodes(text: &str) -> Vec<NodeInfo> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        // ip:port@cport[,hostname]
        let port = f[1]
            .split('@')
            .next()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let mut slots = Vec::new();
        for s in &f[8..] {
            if s.starts_with('[') {
                continue;
            }
            let (a, b) = match s.split_once('-') {
                Some((a, b)) => (a.parse(), b.parse()),
                None => (s.parse(), s.parse()),
            };
            if let (Ok(a), Ok(b)) = (a, b) {
                slots.push((a, b));
            }
        }
        out.push(NodeInfo {
            id: f[0].to_string(),
            port,
            flags: f[2].split(',').map(str::to_string).collect(),
            master_id: (f[3] != "-").then(|| f[3].to_string()),
            slots,
        });
    }
    out
}

/// A node as far as topology agreement goes: id, primary?, its primary,
/// slots.
type Membership = (String, bool, Option<String>, Vec<(u16, u16)>);

/// Six nodes (harness [`Server`]s), a slot map and one cached connection
/// per node.
pub struct Cluster {
    pub nodes: Vec<Server>,
    /// Ports of the nodes killed by [`Cluster::kill9`].
    killed: Vec<u16>,
    conns: HashMap<u16, redis::Connection>,
    /// slot -> port of the primary serving it (0: unknown).
    slot_map: Vec<u16>,
    /// `MOVED` replies the router followed (stale map or migrated slot).
    pub redirects: usize,
}

impl Cluster {
    /// Starts `n` cluster-enabled nodes loading the module (each in its own
    /// directory, with `nodes.conf` there and its bus port `port + 10000`
    /// free) and waits until each answers PING.
    pub fn start(n: usize) -> Cluster {
        let opts = ServerOpts::new()
            .cluster_bus()
            .args("--cluster-enabled yes --cluster-node-timeout 2000")
            // Relative to --dir: <node dir>/nodes.conf.
            .args("--cluster-config-file nodes.conf")
            // Replicas sync at once instead of after the default 5 s.
            .args("--repl-diskless-sync-delay 0");
        let nodes = (0..n).map(|_| Server::start(opts.clone())).collect();
        Cluster {
            nodes,
            killed: Vec::new(),
            conns: HashMap::new(),
            slot_map: vec![0; SLOTS],
            redirects: 0,
        }
    }

    /// `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`,
    /// then waits for `cluster_state:ok` everywhere and for every replica's
    /// link to its primary to be up.
    pub fn create(&mut self) {
        let addrs: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster".to_string(), "create".to_string()];
        args.extend(addrs);
        args.extend(["--cluster-replicas", "1", "--cluster-yes"].map(String::from));
        let out = redis_cli(&args, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.wait_state_ok(Duration::from_secs(20));
        // `create` returns once the slots are agreed on; the replica roles
        // still spread by gossip: wait until every node sees them.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let view = self.wait_agreement(Duration::from_secs(20));
            let replicas = view.iter().filter(|n| n.master_id.is_some()).count();
            if replicas == self.nodes.len() / 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {replicas} replicas after 20 s: {view:?}"
            );
            sleep(Duration::from_millis(100));
        }
        self.wait_replication(Duration::from_secs(20));
        self.refresh_slots();
    }

    /// Waits (bounded) until every live node has the same view of the live
    /// nodes (id, role, primary, slots) and returns that view.
    pub fn wait_agreement(&mut self, limit: Duration) -> Vec<NodeInfo> {
        let deadline = Instant::now() + limit;
        loop {
            let alive = self.alive_ports();
            let mut views = Vec::new();
            for &port in &alive {
                let mut view: Vec<NodeInfo> = self
                    .cmd_on(port, &["CLUSTER", "NODES"])
                    .ok()
                    .and_then(|v| as_text(&v))
                    .map(|t| parse_nodes(&t))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|n| alive.contains(&n.port))
                    .collect();
                view.sort_by_key(|n| n.port);
                views.push(view);
            }
            let key = |v: &[NodeInfo]| -> Vec<Membership> {
                v.iter()
                    .map(|n| {
                        (
                            n.id.clone(),
                            n.is_master(),
                            n.master_id.clone(),
                            n.slots.clone(),
                        )
                    })
                    .collect()
            };
            let first = key(&views[0]);
            if views[0].len() == alive.len() && views.iter().all(|v| key(v) == first) {
                return views.swap_remove(0);
            }
            assert!(
                Instant::now() < deadline,
                "nodes disagree on the topology after {limit:?}: {views:#?}"
            );
            sleep(Duration::from_millis(100));
        }
    }

    /// Ports of the nodes that are still running.
    pub fn alive_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .map(|n| n.port)
            .filter(|p| !self.killed.contains(p))
            .collect()
    }

    /// Waits (bounded) until every live node reports `cluster_state:ok`.
    pub fn wait_state_ok(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let mut bad = Vec::new();
            for port in self.alive_ports() {
                let info = self
                    .cmd_on(port, &["CLUSTER", "INFO"])
                    .ok()
                    .and_then(|v| as_text(&v))
                    .unwrap_or_default();
                if !info.contains("cluster_state:ok") {
                    bad.push(port);
                }
            }
            if bad.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster_state not ok on {bad:?} after {limit:?}; logs:\n{}",
                self.logs()
            );
            sleep(Duration::from_millis(100));
        }
    }

    /// Waits (bounded) until every live replica whose primary is alive has
    /// `master_link_status:up`.
    pub fn wait_replication(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let nodes = self.nodes_info();
            let alive = self.alive_ports();
            let mut pending = Vec::new();
            for n in nodes.iter().filter(|n| alive.contains(&n.port)) {
                let Some(master_id) = &n.master_id else {
                    continue;
                };
                let Some(master) = nodes.iter().find(|m| &m.id == master_id) else {
                    continue;
                };
                if !alive.contains(&master.port) {
                    continue;
                }
                let info = self.info(n.port, "replication");
                if info.get("master_link_status").map(String::as_str) != Some("up") {
                    pending.push(n.port);
                }
            }
            if pending.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replicas {pending:?} not in sync after {limit:?}; logs:\n{}",
                self.logs()
            );
            sleep(Duration::from_millis(100));
        }
    }

    /// `INFO <section>` of a node as a field map.
    pub fn info(&mut self, port: u16, section: &str) -> HashMap<String, String> {
        let text = self
            .cmd_on(port, &["INFO", section])
            .ok()
            .and_then(|v| as_text(&v))
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| l.trim().split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `CLUSTER NODES` as seen by the first live node that answers.
    pub fn nodes_info(&mut self) -> Vec<NodeInfo> {
        for port in self.alive_ports() {
            if let Ok(v) = self.cmd_on(port, &["CLUSTER", "NODES"]) {
                if let Some(text) = as_text(&v) {
                    return parse_nodes(&text);
                }
            }
        }
        panic!("no live node answers CLUSTER NODES");
    }

    /// The live primaries that serve slots, ordered by port.
    pub fn primaries(&mut self) -> Vec<NodeInfo> {
        let alive = self.alive_ports();
        let mut p: Vec<NodeInfo> = self
            .nodes_info()
            .into_iter()
            .filter(|n| n.is_master() && !n.failed() && !n.slots.is_empty())
            .filter(|n| alive.contains(&n.port))
            .collect();
        p.sort_by_key(|n| n.port);
        p
    }

    /// The live replica of a primary (by the primary's id).
    pub fn replica_of(&mut self, master_id: &str) -> Option<NodeInfo> {
        let alive = self.alive_ports();
        self.nodes_info()
            .into_iter()
            .find(|n| n.master_id.as_deref() == Some(master_id) && alive.contains(&n.port))
    }

    /// Reloads the slot map from `CLUSTER SLOTS` of a live node.
    pub fn refresh_slots(&mut self) {
        for port in self.alive_ports() {
            let Ok(v) = self.cmd_on(port, &["CLUSTER", "SLOTS"]) else {
                continue;
            };
            let Some(ranges) = as_array(&v) else {
                continue;
            };
            let mut map = vec![0u16; SLOTS];
            for r in ranges {
                let Some(r) = as_array(r) else { continue };
                let (Some(a), Some(b)) = (r.first().and_then(as_int), r.get(1).and_then(as_int))
                else {
                    continue;
                };
                let Some(owner) = r.get(2).and_then(as_array) else {
                    continue;
                };
                let Some(p) = owner.get(1).and_then(as_int) else {
                    continue;
                };
                for s in a..=b {
                    map[s as usize] = p as u16;
                }
            }
            self.slot_map = map;
            return;
        }
    }

    /// The port of the primary serving `key` according to the slot map.
    pub fn owner_port(&self, key: &str) -> u16 {
        self.slot_map[usize::from(key_slot(key.as_bytes()))]
    }

    /// Sends a command to one node (cached connection, reconnects once).
    pub fn cmd_on(&mut self, port: u16, args: &[&str]) -> Reply {
        let con = match self.conns.entry(port) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => {
                v.insert(connect(port).map_err(|e| format!("IO connect {port}: {e}"))?)
            }
        };
        let reply = run(con, args);
        if matches!(&reply, Err(e) if e.starts_with("IO ")) {
            // Drop the broken connection; the next call reconnects.
            self.conns.remove(&port);
        }
        reply
    }

    /// Sends a command whose key is `args[1]` to the primary serving it,
    /// following `MOVED` (bounded) and refreshing the slot map when a node
    /// is unreachable (bounded in time: 20 s, e.g. during a failover).
    pub fn cmd(&mut self, args: &[&str]) -> Reply {
        let key = args[1];
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut port = self.owner_port(key);
        if port == 0 {
            self.refresh_slots();
            port = self.owner_port(key);
        }
        for _ in 0..100 {
            match self.cmd_on(port, args) {
                Err(e) if e.starts_with("MOVED ") => {
                    self.redirects += 1;
                    let target = e
                        .split_whitespace()
                        .nth(2)
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| p.parse().ok())
                        .unwrap_or_else(|| panic!("bad MOVED reply {e:?}"));
                    self.refresh_slots();
                    port = target;
                }
                Err(e) if e.starts_with("IO ") || e.starts_with("CLUSTERDOWN") => {
                    assert!(
                        Instant::now() < deadline,
                        "{args:?}: no answer for 20 s: {e}"
                    );
                    sleep(Duration::from_millis(100));
                    self.refresh_slots();
                    let p = self.owner_port(key);
                    port = if p == 0 { port } else { p };
                }
                other => return other,
            }
        }
        panic!("{args:?}: too many redirections");
    }

    /// `kill -9` of the node on `port` (its process group), reaped.
    pub fn kill9(&mut self, port: u16) {
        self.conns.remove(&port);
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("node of port")
            .kill();
        self.killed.push(port);
    }

    /// Waits (bounded) until the node on `port` reports role master.
    pub fn wait_promoted(&mut self, port: u16, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let role = self
                .cmd_on(port, &["ROLE"])
                .ok()
                .and_then(|v| as_array(&v).and_then(|a| a.first().and_then(as_text)));
            if role.as_deref() == Some("master") {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "node {port} not promoted after {limit:?} (role {role:?}); log:\n{}",
                self.nodes
                    .iter()
                    .find(|n| n.port == port)
                    .map(|n| n.tail())
                    .unwrap_or_default()
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// The tail of every node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            s.push_str(&format!(
                "--- node {} ---\n{}\n",
                n.port,
                tail(&n.log(), 15)
            ));
        }
        s
    }
}

impl Drop for Cluster {
    /// The nodes are [`Server`]s: dropping them kills every one (SIGKILL to
    /// its process group) and removes its directory, also on panic.
    fn drop(&mut self) {
        self.conns.clear();
        if std::thread::panicking() {
            eprintln!("cluster node logs:\n{}", self.logs());
        }
        self.nodes.clear();
    }
}

/// Runs `redis-cli ARGS` with a time limit (killed past it).
pub fn redis_cli(args: &[String], limit: Duration) -> Output {
    let mut child = Command::new("redis-cli")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli");
    // Drain both pipes in threads so a chatty redis-cli never blocks.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_t = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err_t = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("redis-cli wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "redis-cli {args:?} took over {limit:?}: {}{}",
                String::from_utf8_lossy(&out_t.join().unwrap_or_default()),
                String::from_utf8_lossy(&err_t.join().unwrap_or_default())
            );
        }
        sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}
