//! Relay-only mode through a real TURN server (Debian's coturn, started by each test): the
//! call connects and carries media through the relay, and nothing either side sends
//! through signaling names anything but a relay address. Each peer's signaling goes
//! through a tap (a WebSocket proxy) that keeps what the peer sent, which is exactly what
//! the server and the other side learn about it.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::fs::File;
use std::net::{TcpListener, UdpSocket};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use confab_call::{CallState, Command, EngineEvent, Timeouts};
use confab_protocol::{ClientMessage, HangupReason, IceServer};

use support::tap::SignalingTap;
use support::{PATIENCE, Peer, PeerSetup, Server, connect, temp_path};

const TURN_USER: &str = "u";
const TURN_PASSWORD: &str = "p";

/// A coturn process on 127.0.0.1, killed on drop. Its log stays on disk, and is printed,
/// when the test fails.
struct TurnServer {
    process: Child,
    port: u16,
    relay_ports: RangeInclusive<u16>,
    dir: PathBuf,
    /// This server's claim on its ports.
    _ports: File,
}

impl TurnServer {
    /// Starts coturn on free ports and returns once it answers a STUN request.
    async fn start() -> TurnServer {
        let (port, relay_ports, ports_claim) = claim_port_block();
        let dir = temp_path(&format!("coturn-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = |name: &str| dir.join(name).display().to_string();
        let spawned = std::process::Command::new("turnserver")
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "-v"])
            .args(["--lt-cred-mech", "--realm=test"])
            .arg(format!("--user={TURN_USER}:{TURN_PASSWORD}"))
            .args(["--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
            // The peers are on loopback too, which coturn refuses to relay to by default.
            .arg("--allow-loopback-peers")
            .arg(format!("--listening-port={port}"))
            .arg(format!("--min-port={}", relay_ports.start()))
            .arg(format!("--max-port={}", relay_ports.end()))
            // Its own files, not the system-wide ones a coturn service would use.
            .arg(format!("--log-file={}", path("turn.log")))
            .args(["--simple-log", "--no-stdout-log"])
            .arg(format!("--pidfile={}", path("turn.pid")))
            .arg(format!("--userdb={}", path("turndb")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let process = match spawned {
            Ok(process) => process,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
                "`turnserver` (Debian package coturn) is not installed: run scripts/install-deps.sh"
            ),
            Err(err) => panic!("could not start turnserver: {err}"),
        };
        let mut turn = TurnServer {
            process,
            port,
            relay_ports,
            dir,
            _ports: ports_claim,
        };
        turn.wait_until_ready().await;
        turn
    }

    /// Sends STUN Binding requests until one is answered.
    async fn wait_until_ready(&mut self) {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.connect(("127.0.0.1", self.port)).await.unwrap();
        let deadline = Instant::now() + PATIENCE;
        let mut response = [0u8; 1500];
        for attempt in 0u32.. {
            if let Some(status) = self.process.try_wait().unwrap() {
                panic!("turnserver exited ({status}) before it was ready");
            }
            assert!(
                Instant::now() < deadline,
                "turnserver did not answer on port {} in {PATIENCE:?}",
                self.port
            );
            let mut request = [0u8; 20];
            request[0..2].copy_from_slice(&0x0001u16.to_be_bytes()); // Binding request
            request[4..8].copy_from_slice(&0x2112_a442u32.to_be_bytes()); // magic cookie
            request[8..12].copy_from_slice(&attempt.to_be_bytes()); // transaction id
            // Until it listens, the send may be refused (ICMP port unreachable).
            let _ = socket.send(&request).await;
            if let Ok(Ok(len)) =
                tokio::time::timeout(Duration::from_millis(100), socket.recv(&mut response)).await
                && len >= 20
                && response[0..2] == [0x01, 0x01] // Binding success response
                && response[8..20] == request[8..20]
            {
                return;
            }
        }
    }

    fn ice_server(&self, password: &str) -> IceServer {
        IceServer {
            urls: vec![format!("turn:127.0.0.1:{}?transport=udp", self.port)],
            username: Some(TURN_USER.into()),
            credential: Some(password.into()),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("turn.log")).unwrap_or_default()
    }

    /// Waits until coturn's log satisfies `done`; fails the test after [`PATIENCE`].
    async fn wait_for_log(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let log = self.log();
            if done(&log) {
                return log;
            }
            assert!(Instant::now() < deadline, "coturn never logged {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- coturn log ({}) ----\n{}",
                self.dir.display(),
                self.log()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// What coturn relayed between each closed allocation and its peer, from its log lines
/// `session N: peer usage: realm=<test>, username=<u>, rp=737, rb=437599, sp=735, sb=438195`:
/// (bytes received from the peer, bytes sent to it).
fn peer_usage(log: &str) -> Vec<(u64, u64)> {
    log.lines()
        .filter_map(|line| {
            let (_, usage) = line.split_once("peer usage: ")?;
            let (_, counts) = usage.split_once(", rp=")?;
            Some(counts)
        })
        .map(|counts| {
            let count = |key: &str| -> u64 {
                counts
                    .split(", ")
                    .find_map(|field| field.strip_prefix(key)?.parse().ok())
                    .unwrap_or_else(|| panic!("no {key} in coturn's line: {counts}"))
            };
            (count("rb="), count("sb="))
        })
        .collect()
}

/// Ports per TURN server: the listening port, then its relay range.
const PORT_BLOCK: u16 = 64;
/// Which block this process tries next: two tests here start at different ones.
static NEXT_BLOCK: AtomicU16 = AtomicU16::new(0);

/// A block of ports, free for UDP and (the first) TCP, below the ephemeral range: the
/// kernel does not hand those out to the peers' sockets (or anyone's) meanwhile. A free
/// port is not enough: coturn binds with SO_REUSEPORT, so two coturns started at once on
/// the same port would both start and share its traffic. The block is claimed with a lock
/// on a file for it, which the caller holds while its coturn runs (the kernel drops it
/// when the test process ends, however it ends).
fn claim_port_block() -> (u16, RangeInclusive<u16>, File) {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let lowest = 10000;
    let blocks = ephemeral_start.saturating_sub(lowest) / PORT_BLOCK;
    assert!(blocks > 0, "no ports below {ephemeral_start}");
    // Parallel runs of this binary mostly start at different blocks.
    let first = (std::process::id().wrapping_mul(7) % u32::from(blocks)) as u16;
    for _ in 0..blocks {
        let block = (first + NEXT_BLOCK.fetch_add(1, Ordering::Relaxed)) % blocks;
        let start = lowest + block * PORT_BLOCK;
        let ports = start..=start + PORT_BLOCK - 1;
        let lock_path = std::env::temp_dir().join(format!("confab-coturn-ports-{start}.lock"));
        let Ok(lock) = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
        else {
            continue;
        };
        if lock.try_lock().is_ok()
            && TcpListener::bind(("0.0.0.0", start)).is_ok()
            && ports
                .clone()
                .all(|port| UdpSocket::bind(("0.0.0.0", port)).is_ok())
        {
            return (start, start + 1..=*ports.end(), lock);
        }
    }
    panic!("no free block of {PORT_BLOCK} ports below {ephemeral_start}");
}

/// One `candidate:` attribute, the fields that say where it is.
#[derive(Debug)]
struct Candidate {
    line: String,
    address: String,
    port: u16,
    kind: String,
    related: Option<(String, String)>,
}

/// Every candidate in `messages`: trickled, and any an offer or answer carries.
fn candidates(messages: &[ClientMessage]) -> Vec<Candidate> {
    let mut lines = Vec::new();
    for message in messages {
        match message {
            ClientMessage::Candidate {
                candidate: Some(candidate),
                ..
            } => lines.push(candidate.candidate.clone()),
            ClientMessage::Offer { sdp, .. } | ClientMessage::Answer { sdp, .. } => lines.extend(
                sdp.lines()
                    .filter_map(|line| line.strip_prefix("a="))
                    .filter(|line| line.starts_with("candidate:"))
                    .map(str::to_owned),
            ),
            _ => {}
        }
    }
    lines
        .into_iter()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, _, _, _, address, port, "typ", kind, ref rest @ ..] = fields[..] else {
                panic!("a malformed candidate: {line}");
            };
            let value = |key: &str| {
                rest.iter()
                    .position(|field| *field == key)
                    .and_then(|at| rest.get(at + 1))
                    .map(|value| value.to_string())
            };
            Candidate {
                address: address.into(),
                port: port
                    .parse()
                    .unwrap_or_else(|_| panic!("a malformed candidate: {line}")),
                kind: kind.into(),
                related: value("raddr").zip(value("rport")),
                line: line.clone(),
            }
        })
        .collect()
}

/// The offers' and answers' own address lines (`m=` ports, `c=` addresses).
fn sdp_addresses(messages: &[ClientMessage]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|message| match message {
            ClientMessage::Offer { sdp, .. } | ClientMessage::Answer { sdp, .. } => Some(sdp),
            _ => None,
        })
        .flat_map(|sdp| sdp.lines())
        .filter(|line| line.starts_with("m=") || line.starts_with("c="))
        .map(str::to_owned)
        .collect()
}

/// Alice and Bob in relay-only mode with `turn` as their only ICE server, each signaling
/// through a tap.
async fn relay_only_peers(
    server: &Server,
    turn: &TurnServer,
    password: &str,
    (alice_setup, bob_setup): (PeerSetup, PeerSetup),
) -> (Peer, SignalingTap, Peer, SignalingTap) {
    let relay_only = |setup| PeerSetup {
        ice_servers: vec![turn.ice_server(password)],
        relay_only: true,
        ..setup
    };
    let alice_tap = SignalingTap::start(server).await;
    let bob_tap = SignalingTap::start(server).await;
    let alice = Peer::join_url(&alice_tap.url, "Alice", relay_only(alice_setup)).await;
    let bob = Peer::join_url(&bob_tap.url, "Bob", relay_only(bob_setup)).await;
    (alice, alice_tap, bob, bob_tap)
}

/// Waits for `count` decoded remote frames.
fn receive_frames(peer: &Peer, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    let mut frames = 0;
    while frames < count {
        assert!(
            Instant::now() < deadline,
            "{}: only {frames} frames in {PATIENCE:?}",
            peer.name
        );
        frames += usize::from(
            peer.engine
                .remote_video
                .wait_take(Duration::from_millis(200))
                .is_some(),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_only_call_goes_through_turn_and_reveals_only_relay_addresses() {
    let turn = TurnServer::start().await;
    let server = Server::start().await;
    // The default setup: test-pattern video and a tone, rendered, not recorded.
    let setups = (PeerSetup::default(), PeerSetup::default());
    let (mut alice, alice_tap, mut bob, bob_tap) =
        relay_only_peers(&server, &turn, TURN_PASSWORD, setups).await;
    connect(&mut alice, &mut bob).await;

    // Video both ways, and the selected candidate pair is relay to relay on both sides.
    tokio::task::block_in_place(|| {
        receive_frames(&bob, 60);
        receive_frames(&alice, 60);
    });
    for peer in [&mut alice, &mut bob] {
        // Past the start-up (the events queued up meanwhile begin with the first second).
        let stats = peer
            .wait_for(|e| match e {
                EngineEvent::Stats(s) if s.connected_secs.is_some_and(|secs| secs >= 2.0) => {
                    Some(s.clone())
                }
                _ => None,
            })
            .await;
        let name = &peer.name;
        assert_eq!(stats.state, "connected", "{name}: {stats:?}");
        assert_eq!(
            stats.local_candidate.as_deref(),
            Some("relay"),
            "{name}: {stats:?}"
        );
        assert_eq!(
            stats.remote_candidate.as_deref(),
            Some("relay"),
            "{name}: {stats:?}"
        );
        let video_in = stats.video_in.unwrap();
        assert_eq!(
            (video_in.width, video_in.height),
            (640, 480),
            "{name}: {stats:?}"
        );
        assert!(video_in.fps > 10.0, "{name}: {stats:?}");
        assert!(
            stats.bitrate_in_bps > 100_000 && stats.bitrate_out_bps > 100_000,
            "{name}: {stats:?}"
        );
    }

    alice.send(Command::HangUp);
    assert_eq!(alice.ended().await.reason, HangupReason::Ended);
    assert_eq!(bob.ended().await.reason, HangupReason::Ended);
    for peer in [&mut alice, &mut bob] {
        let summary = peer.summary().await;
        let name = &peer.name;
        assert!(summary.video_frames_decoded >= 60, "{name}: {summary:?}");
        assert!(summary.audio_packets_received >= 50, "{name}: {summary:?}");
    }
    // Closing the peer connections releases the allocations.
    alice.shutdown().await;
    bob.shutdown().await;

    // The media went through coturn: one allocation per peer, each of which relayed the
    // call both ways (coturn logs the totals when an allocation goes).
    let log = turn
        .wait_for_log("two closed allocations", |log| {
            log.matches("peer usage:").count() >= 2
        })
        .await;
    let usage = peer_usage(&log);
    assert_eq!(usage.len(), 2, "{usage:?}");
    assert!(
        usage
            .iter()
            .all(|&(received, sent)| received > 100_000 && sent > 100_000),
        "bytes relayed (from, to) each peer: {usage:?}"
    );

    // Privacy: all either side told the other about its network is coturn's relay
    // addresses; no host (or server-reflexive) candidate, trickled or in the SDP.
    for (name, tap) in [("Alice", &alice_tap), ("Bob", &bob_tap)] {
        let sent = tap.sent();
        let sent_candidates = candidates(&sent);
        assert!(!sent_candidates.is_empty(), "{name} sent no candidates");
        for candidate in &sent_candidates {
            assert_eq!(candidate.kind, "relay", "{name} sent {}", candidate.line);
            assert!(
                candidate.address == "127.0.0.1" && turn.relay_ports.contains(&candidate.port),
                "{name} sent {}: not in coturn's relay range {:?}",
                candidate.line,
                turn.relay_ports
            );
        }
        for line in sdp_addresses(&sent) {
            let port_or_address =
                line.split_whitespace()
                    .nth(if line.starts_with("m=") { 1 } else { 2 });
            assert!(
                matches!(port_or_address, Some("9" | "0.0.0.0")),
                "{name}'s SDP has {line}"
            );
        }
        // Gathering completed with nothing else to send.
        assert!(
            sent.iter().any(|m| matches!(
                m,
                ClientMessage::Candidate {
                    candidate: None,
                    ..
                }
            )),
            "{name} did not signal the end of candidates"
        );
    }
    server.shutdown().await;
}

/// Chrome, in relay-only mode, sends relay candidates as `raddr 0.0.0.0 rport 0`: the
/// related address is the one thing in them that is not the relay's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_candidates_do_not_reveal_the_local_address() {
    let turn = TurnServer::start().await;
    let server = Server::start().await;
    let (mut alice, alice_tap, mut bob, bob_tap) = relay_only_peers(
        &server,
        &turn,
        TURN_PASSWORD,
        (PeerSetup::quiet(), PeerSetup::quiet()),
    )
    .await;
    connect(&mut alice, &mut bob).await;
    for (name, tap) in [("Alice", &alice_tap), ("Bob", &bob_tap)] {
        let sent_candidates = candidates(&tap.sent());
        assert!(!sent_candidates.is_empty(), "{name} sent no candidates");
        for candidate in &sent_candidates {
            assert!(
                candidate
                    .related
                    .as_ref()
                    .is_none_or(|(address, port)| address == "0.0.0.0" && port == "0"),
                "{name} sent {}",
                candidate.line
            );
        }
    }
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_with_a_wrong_turn_password_does_not_connect() {
    let turn = TurnServer::start().await;
    let server = Server::start().await;
    let setup = PeerSetup {
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            ..Timeouts::default()
        },
        ..PeerSetup::quiet()
    };
    let (mut alice, alice_tap, mut bob, bob_tap) =
        relay_only_peers(&server, &turn, "wrong", (setup.clone(), setup)).await;
    let bob_id = alice.sees("Bob").await;
    alice.send(Command::Call { peer: bob_id });
    bob.incoming().await;
    bob.send(Command::Accept);
    let mut ends = Vec::new();
    for peer in [&mut alice, &mut bob] {
        let mut states = Vec::new();
        let end = peer
            .wait_for(|e| match e {
                EngineEvent::Call(CallState::Ended(end)) => Some(end.clone()),
                EngineEvent::Call(state) => {
                    states.push(state.clone());
                    None
                }
                _ => None,
            })
            .await;
        let name = &peer.name;
        assert!(
            !states
                .iter()
                .any(|s| matches!(s, CallState::Connected { .. })),
            "{name}: {states:?}"
        );
        assert_eq!(end.reason, HangupReason::Failed, "{name}: {end:?}");
        ends.push(end);
    }
    // Whoever gives up first tells the other, whose call then fails "by the peer".
    assert!(
        ends.iter()
            .any(|end| !end.by_peer && end.detail.as_deref() == Some("could not connect")),
        "{ends:?}"
    );
    // Without a relay there is nothing to offer, and no falling back to host candidates.
    for (name, tap) in [("Alice", &alice_tap), ("Bob", &bob_tap)] {
        let sent_candidates = candidates(&tap.sent());
        assert!(
            sent_candidates.is_empty(),
            "{name} sent {sent_candidates:?}"
        );
    }
    // coturn refused the credentials: both peers asked, neither got an allocation.
    let log = turn
        .wait_for_log("two refused requests from user u", |log| {
            log.matches("user <u>: incoming packet message processed, error 401")
                .count()
                >= 2
        })
        .await;
    assert!(!log.contains("ALLOCATE processed, success"), "{log}");
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
}
