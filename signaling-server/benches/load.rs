//! Load benchmark for the signaling server: a measurement, not a test.
//!
//! Starts the real `confab-signaling` binary (release build) as a child process and drives it
//! with real WebSocket clients over loopback, then prints a table:
//!
//! 1. memory: server RSS per idle, logged-in connection with `--idle` clients;
//! 2. throughput: relayed messages per second between `--clients` clients in calls;
//! 3. latency: relay latency percentiles at `--rate` messages per second overall, with the
//!    same clients connected.
//!
//! With `--servers N` (N > 1) it starts a nats-server and N servers sharing one roster
//! through it (docs/deploy.md), spreads the clients over them round-robin and puts the two
//! parties of every call on different servers: every relayed message crosses NATS.
//!
//! Run: `cargo bench -p confab-signaling --bench load` (see docs/performance.md).

// A benchmark: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[path = "../../tests/support/nats.rs"]
mod nats;

#[derive(Parser, Debug)]
struct Args {
    /// Idle clients for the memory measurement.
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Clients (in pairs, each pair in a call) for throughput and latency.
    #[arg(long, default_value_t = 1_000)]
    clients: usize,
    /// Seconds of the throughput run.
    #[arg(long, default_value_t = 5)]
    throughput_secs: u64,
    /// Messages per second, all clients together, in the latency run.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 10)]
    latency_secs: u64,
    /// Signaling servers sharing one roster through a nats-server (1: a server alone).
    #[arg(long, default_value_t = 1)]
    servers: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// A candidate line of realistic length; the latency run appends a timestamp.
const CANDIDATE: &str = "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 192.168.1.20 rport 46154 generation 0";

fn main() -> Result<()> {
    let args = Args::parse();
    rlimit::increase_nofile_limit(u64::MAX).context("raising the open file limit")?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        println!("signaling server load benchmark ({} cores)", num_cpus());
        let memory = measure_memory(args.idle, args.servers).await?;
        let (throughput, latency) = measure_relay(&args).await?;
        println!();
        let servers = match args.servers {
            1 => "one server".to_owned(),
            n => format!("{n} servers and nats-server"),
        };
        println!("| measurement ({servers}) | result |");
        println!("|---|---|");
        println!(
            "| servers' RSS, {} idle logged-in clients | {:.1} MiB total, {:.1} KiB per connection (baseline {:.1} MiB) |",
            args.idle,
            memory.total_kib as f64 / 1024.0,
            memory.per_connection_kib,
            memory.baseline_kib as f64 / 1024.0
        );
        println!(
            "| time for {} clients to join (roster fan-out: {} messages) | {:.1} s |",
            args.idle, memory.roster_entries, memory.join_secs
        );
        println!(
            "| relayed messages/s, {} clients in {} calls | {:.0} msg/s (server CPU {:.0}% of one core) |",
            args.clients,
            args.clients / 2,
            throughput.msgs_per_sec,
            throughput.server_cpu_percent
        );
        println!(
            "| relay latency at {} msg/s, {} clients connected | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples) |",
            args.rate,
            args.clients,
            latency.p50_ms,
            latency.p99_ms,
            latency.max_ms,
            latency.samples
        );
        Ok(())
    })
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The servers of one run: one alone, or several sharing a nats-server.
struct Servers {
    servers: Vec<ServerProcess>,
    _nats: Option<nats::Nats>,
}

impl Servers {
    async fn start(count: usize, extra: &[&str]) -> Result<Servers> {
        let count = count.max(1);
        let nats = match count {
            1 => None,
            _ => Some(nats::Nats::start().await),
        };
        let mut servers = Vec::new();
        for _ in 0..count {
            let mut flags = extra.to_vec();
            let url = nats.as_ref().map(nats::Nats::url);
            if let Some(url) = &url {
                flags.extend(["--cluster", url]);
            }
            servers.push(ServerProcess::start(&flags)?);
        }
        // Every server has heard from every other before the first client comes.
        let others = format!("connected, {} other servers", count - 1);
        let deadline = Instant::now() + Duration::from_secs(30);
        for server in servers.iter().filter(|_| count > 1) {
            while !server.health().await?.contains(&others) {
                if Instant::now() > deadline {
                    bail!("the servers did not find each other through NATS");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(Servers {
            servers,
            _nats: nats,
        })
    }

    /// The server client `i` connects to.
    fn url(&self, i: usize) -> &str {
        &self.servers[i % self.servers.len()].url
    }

    /// A status field summed over the servers.
    fn status_kib(&self, field: &str) -> Result<u64> {
        self.servers.iter().map(|s| s.status_kib(field)).sum()
    }

    fn cpu_time(&self) -> Result<Duration> {
        self.servers.iter().map(ServerProcess::cpu_time).sum()
    }
}

/// The server binary, running on a free loopback port.
struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    fn start(extra: &[&str]) -> Result<ServerProcess> {
        // SERVER_WRAPPER runs the server under a tool, e.g. "valgrind --tool=massif".
        let wrapper = std::env::var("SERVER_WRAPPER").unwrap_or_default();
        let mut command = match wrapper.split_whitespace().collect::<Vec<_>>().split_first() {
            Some((tool, tool_args)) => {
                let mut command = Command::new(tool);
                command
                    .args(tool_args)
                    .arg(env!("CARGO_BIN_EXE_confab-signaling"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_confab-signaling")),
        };
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--max-connections", "30000"])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("SERVER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting confab-signaling")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let url = loop {
            let Some(line) = lines.next() else {
                bail!("the server exited before listening");
            };
            let line = line?;
            if let Some(at) = line.find("ws://") {
                break line[at..].trim().to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe; show what is
        // not routine.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if !line.contains(" INFO ") {
                    println!("server: {line}");
                }
            }
        });
        Ok(ServerProcess { child, url })
    }

    /// What `GET /healthz` says.
    async fn health(&self) -> Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.url.trim_start_matches("ws://").trim_end_matches("/ws");
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await?;
        let mut response = String::new();
        tcp.read_to_string(&mut response).await?;
        Ok(response)
    }

    fn status_kib(&self, field: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .context("no such status field")?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("malformed status")?
            .parse()?)
    }

    /// CPU time (user + system) the server has used so far.
    fn cpu_time(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = &stat[stat.rfind(')').context("malformed stat")? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        // USER_HZ is 100 on Linux.
        Ok(Duration::from_millis(ticks * 10))
    }
}

impl Drop for ServerProcess {
    /// Stops the server gracefully (SIGTERM), as an operator would; a tool wrapping it
    /// (a profiler, say) then gets to write its report.
    fn drop(&mut self) {
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if !terminated {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

async fn connect(url: &str) -> Result<Ws> {
    // Small client buffers: ten thousand of them share this process.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 20));
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    Ok(ws)
}

async fn recv_json(ws: &mut SplitStream<Ws>) -> Result<Value> {
    loop {
        match ws.next().await.context("server closed")?? {
            Message::Text(text) => return Ok(serde_json::from_str(&text)?),
            Message::Close(frame) => bail!("server closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Connects and logs in; returns the halves and our id.
async fn join(
    url: &str,
    name: &str,
) -> Result<(SplitSink<Ws, Message>, SplitStream<Ws>, String, usize)> {
    let ws = connect(url).await?;
    let (mut sink, mut stream) = ws.split();
    sink.send(Message::text(
        json!({"type":"hello","protocol":1,"name":name}).to_string(),
    ))
    .await?;
    let welcome = recv_json(&mut stream).await?;
    if welcome["type"] != "welcome" {
        bail!("expected welcome, got {welcome}");
    }
    let id = welcome["id"].as_str().context("no id")?.to_owned();
    let peers = welcome["peers"].as_array().map_or(0, Vec::len);
    Ok((sink, stream, id, peers))
}

struct Memory {
    baseline_kib: u64,
    total_kib: u64,
    per_connection_kib: f64,
    join_secs: f64,
    roster_entries: u64,
}

async fn measure_memory(clients: usize, servers: usize) -> Result<Memory> {
    // Several servers, with the benchmark's clients, share these two cores: at thousands of
    // joins at once the clients read the roster news more slowly than the servers send it,
    // so their queues may hold more than the 1 MiB after which a client counts as not
    // reading. They are empty again before the memory is measured.
    let queue = (64 << 20).to_string();
    let flags: &[&str] = match servers {
        1 => &[],
        _ => &["--max-queued-bytes", &queue],
    };
    let server = Servers::start(servers, flags).await?;
    // Let the runtime settle before the baseline.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline_kib = server.status_kib("VmRSS:")?;
    println!("memory: connecting {clients} clients...");

    // Every client counts the roster entries it learns of: its welcome's peers plus each
    // peer_joined. When the sum reaches n*(n-1), every join has reached everyone.
    let seen = Arc::new(AtomicU64::new(0));
    let expected = (clients as u64) * (clients as u64 - 1);
    let started = Instant::now();
    let in_flight = Arc::new(Semaphore::new(200));
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let permit = in_flight.clone().acquire_owned().await?;
        let url = server.url(i).to_owned();
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            let (sink, mut stream, _, peers) = join(&url, &format!("idle-{i}")).await?;
            drop(permit);
            seen.fetch_add(peers as u64, Ordering::Relaxed);
            while let Some(msg) = stream.next().await {
                match msg? {
                    Message::Text(_) => {
                        seen.fetch_add(1, Ordering::Relaxed);
                    }
                    Message::Close(frame) => bail!("server closed: {frame:?}"),
                    _ => {}
                }
            }
            drop(sink);
            anyhow::Ok(())
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while seen.load(Ordering::Relaxed) < expected {
        if Instant::now() > deadline {
            bail!(
                "roster did not converge: {} of {expected}",
                seen.load(Ordering::Relaxed)
            );
        }
        if let Some(at) = tasks.iter().position(|t| t.is_finished()) {
            let result = tasks.swap_remove(at).await?;
            bail!("client ended early: {result:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let join_secs = started.elapsed().as_secs_f64();
    // Idle now. The allocator returns freed pages to the system over ~10 s (jemalloc's
    // decay); measure the settled state.
    let settle_kib = server.status_kib("VmRSS:")?;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let total_kib = server.status_kib("VmRSS:")?;
    println!("memory: RSS {settle_kib} KiB right after the fan-out, {total_kib} KiB 12 s later");
    let per_connection_kib = (total_kib - baseline_kib) as f64 / clients as f64;
    println!(
        "memory: {clients} joined in {join_secs:.1} s; RSS {total_kib} KiB (baseline {baseline_kib} KiB, peak {} KiB)",
        server.status_kib("VmHWM:")?
    );
    for task in tasks {
        task.abort();
    }
    Ok(Memory {
        baseline_kib,
        total_kib,
        per_connection_kib,
        join_secs,
        roster_entries: expected,
    })
}

struct Throughput {
    msgs_per_sec: f64,
    server_cpu_percent: f64,
}

struct Latency {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    samples: usize,
}

/// A logged-in client whose reader task drops roster news (joins, leaves, busy changes:
/// everyone gets those) and forwards everything else to `inbox`.
struct Party {
    sink: SplitSink<Ws, Message>,
    inbox: mpsc::UnboundedReceiver<String>,
    /// The ids in `peer_joined` news, until the call is set up.
    joined: Option<mpsc::UnboundedReceiver<String>>,
    id: String,
    peer_id: String,
    call_id: String,
}

impl Party {
    async fn join(url: &str, name: &str) -> Result<Party> {
        let (sink, mut stream, id, _) = join(url, name).await?;
        let (tx, inbox) = mpsc::unbounded_channel();
        let (joined_tx, joined) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else {
                    continue;
                };
                if !text.starts_with(r#"{"type":"peer_"#) {
                    if tx.send(text.to_string()).is_err() {
                        return;
                    }
                } else if text.contains(r#""type":"peer_joined""#)
                    && let Ok(news) = serde_json::from_str::<Value>(&text)
                    && let Some(id) = news["peer"]["id"].as_str()
                {
                    // Nobody listens once the call is set up.
                    let _ = joined_tx.send(id.to_owned());
                }
            }
        });
        Ok(Party {
            sink,
            inbox,
            joined: Some(joined),
            id,
            peer_id: String::new(),
            call_id: String::new(),
        })
    }

    async fn send(&mut self, msg: Value) -> Result<()> {
        self.sink.send(Message::text(msg.to_string())).await?;
        Ok(())
    }

    async fn recv(&mut self) -> Result<String> {
        self.inbox.recv().await.context("connection closed")
    }

    /// Until this client has heard that `id` joined; stops listening for news after.
    async fn roster_has(&mut self, id: &str) -> Result<()> {
        let mut joined = self.joined.take().context("already waited")?;
        while joined.recv().await.context("connection closed")? != id {}
        Ok(())
    }
}

fn candidate_msg(to: &str, call_id: &str, candidate: &str) -> Message {
    Message::text(
        json!({"type":"candidate","to":to,"call_id":call_id,
               "candidate":{"candidate":candidate,"sdp_mid":"0","sdp_m_line_index":0}})
        .to_string(),
    )
}

/// Joins `clients` clients and puts them in answered calls, two by two; with several
/// servers, the two parties of each call are on different ones.
async fn make_pairs(servers: &Servers, clients: usize) -> Result<Vec<Party>> {
    let mut parties = Vec::new();
    for p in 0..clients / 2 {
        let mut a = Party::join(servers.url(p), &format!("a-{p}")).await?;
        let mut b = Party::join(servers.url(p + 1), &format!("b-{p}")).await?;
        // The callee's server must know the caller before the offer arrives: wait until
        // the caller's join has reached it (at once with one server).
        a.roster_has(&b.id).await?;
        b.joined = None;
        let call_id = format!("call-{p}");
        a.send(json!({"type":"offer","to":b.id,"call_id":call_id,"sdp":"v=0"}))
            .await?;
        let offer = b.recv().await?;
        if !offer.contains(r#""type":"offer""#) {
            bail!("expected an offer, got {offer}");
        }
        b.send(json!({"type":"answer","to":a.id,"call_id":call_id,"sdp":"v=0"}))
            .await?;
        let answer = a.recv().await?;
        if !answer.contains(r#""type":"answer""#) {
            bail!("expected an answer, got {answer}");
        }
        (a.peer_id, a.call_id) = (b.id.clone(), call_id.clone());
        (b.peer_id, b.call_id) = (a.id.clone(), call_id);
        parties.extend([a, b]);
    }
    Ok(parties)
}

async fn measure_relay(args: &Args) -> Result<(Throughput, Latency)> {
    let limits = ["--rate-limit", "1000000", "--rate-burst", "1000000"];
    let server = Servers::start(args.servers, &limits).await?;
    println!("relay: setting up {} calls...", args.clients / 2);
    let parties = make_pairs(&server, args.clients).await?;

    // Throughput: each party sends a window of messages, then reads as many from its peer.
    const WINDOW: usize = 32;
    println!("relay: throughput for {} s...", args.throughput_secs);
    let cpu_before = server.cpu_time()?;
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(args.throughput_secs);
    let received = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for mut party in parties {
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            let msg = candidate_msg(&party.peer_id, &party.call_id, CANDIDATE);
            while Instant::now() < stop_at {
                for _ in 0..WINDOW {
                    party.sink.feed(msg.clone()).await?;
                }
                party.sink.flush().await?;
                // The peer may have seen the deadline pass one round earlier: then its
                // window never comes, and this round does not count.
                let round = async {
                    for _ in 0..WINDOW {
                        let text = party.recv().await?;
                        if !text.starts_with(r#"{"type":"candidate","from""#) {
                            bail!("expected a relayed candidate, got {text}");
                        }
                    }
                    anyhow::Ok(())
                };
                match tokio::time::timeout_at((stop_at + Duration::from_secs(1)).into(), round)
                    .await
                {
                    Ok(result) => result?,
                    Err(_) => break,
                }
                received.fetch_add(WINDOW as u64, Ordering::Relaxed);
            }
            anyhow::Ok(party)
        }));
    }
    let mut parties = Vec::new();
    for task in tasks {
        parties.push(task.await??);
    }
    let elapsed = stop_at - started;
    let cpu = server.cpu_time()? - cpu_before;
    let throughput = Throughput {
        msgs_per_sec: received.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        server_cpu_percent: 100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
    };

    // Latency: every party sends once per (parties / rate) seconds, spread evenly; the
    // message carries its send time, read back by the receiver.
    println!(
        "relay: latency at {} msg/s for {} s...",
        args.rate, args.latency_secs
    );
    let epoch = Instant::now();
    let count = parties.len() as u64;
    let period = Duration::from_secs_f64(count as f64 / args.rate as f64);
    let sends_each = (args.latency_secs as f64 / period.as_secs_f64()).round() as u64;
    let mut tasks = Vec::new();
    for (i, party) in parties.into_iter().enumerate() {
        let offset = period.mul_f64(i as f64 / count as f64);
        tasks.push(tokio::spawn(async move {
            let Party {
                mut sink,
                mut inbox,
                peer_id,
                call_id,
                ..
            } = party;
            let sender = async move {
                let mut ticks = tokio::time::interval_at((epoch + offset).into(), period);
                for _ in 0..sends_each {
                    ticks.tick().await;
                    let stamp = epoch.elapsed().as_nanos();
                    let candidate = format!("{CANDIDATE} ts {stamp}");
                    sink.send(candidate_msg(&peer_id, &call_id, &candidate))
                        .await?;
                }
                anyhow::Ok(sink)
            };
            let receiver = async move {
                let mut samples = Vec::new();
                while samples.len() < sends_each as usize {
                    let text = inbox.recv().await.context("connection closed")?;
                    let now = epoch.elapsed().as_nanos();
                    // Messages without a stamp are left over from the throughput run.
                    let Some((_, rest)) = text.rsplit_once(" ts ") else {
                        continue;
                    };
                    let stamp: u128 = rest.split('"').next().context("no timestamp")?.parse()?;
                    samples.push((now - stamp) as u64);
                }
                anyhow::Ok(samples)
            };
            let (sink, samples) = tokio::try_join!(sender, receiver)?;
            drop(sink);
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    samples.sort_unstable();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize] as f64 / 1e6;
    let latency = Latency {
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        max_ms: pick(1.0),
        samples: samples.len(),
    };
    drop(server);
    Ok((throughput, latency))
}
