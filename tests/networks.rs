//! Calls on networks as they are, over real sockets in network namespaces the test creates:
//! no default route (and so no multicast), IPv6 only, IPv4 link-local only, several
//! interfaces; and a peer whose address moves, or whose interface goes down and up,
//! mid-call.
//!
//! Each peer's engine runs on a tokio runtime whose threads (and every thread they start:
//! the media threads) live in that peer's namespace; the namespaces are joined by a veth
//! cable. Creating namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), as CI has:
//! without it every test here fails saying so, never skips.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use confab_call::{CallState, EngineEvent, NetworkConfig};
use confab_protocol::HangupReason;
use support::{Peer, PeerSetup, Server, connect};
use tokio::runtime::Runtime;

/// A network namespace and a runtime whose threads live in it.
struct Site {
    name: String,
    runtime: Option<Runtime>,
}

impl Site {
    fn new(tag: &str) -> Site {
        support::log_to_test_output();
        static SITES: AtomicUsize = AtomicUsize::new(0);
        let number = SITES.fetch_add(1, Ordering::Relaxed);
        let name = format!("confab-{}-{number}{tag}", std::process::id());
        ip(&["netns", "add", &name]);
        let path = format!("/run/netns/{name}");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                let namespace = std::fs::File::open(&path).expect("open the namespace");
                nix::sched::setns(&namespace, nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("enter the namespace");
            })
            .build()
            .unwrap();
        let site = Site {
            name,
            runtime: Some(runtime),
        };
        site.ip(&["link", "set", "lo", "up"]);
        site
    }

    /// Runs `ip` inside this namespace.
    fn ip(&self, args: &[&str]) {
        ip(&[&["-n", self.name.as_str()], args].concat());
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().unwrap()
    }

    /// A signaling server listening here.
    async fn server(&self, addr: &str) -> Server {
        let addr: SocketAddr = addr.parse().unwrap();
        self.runtime().spawn(Server::start_at(addr)).await.unwrap()
    }

    /// A call engine running here, online at `server`, gathering on every interface.
    async fn peer(&self, server: &Server, name: &str) -> Peer {
        let setup = PeerSetup {
            udp_addrs: NetworkConfig::default().udp_addrs,
            ..PeerSetup::default()
        };
        let url = server.url();
        let name = name.to_owned();
        self.runtime()
            .spawn(async move { Peer::join_url(&url, &name, setup).await })
            .await
            .unwrap()
    }

    /// The routes of this namespace, as `ip route` prints them.
    fn routes(&self, family: &str) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name, family, "route", "show", "default"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2: scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "ip {}: {}(these tests create network namespaces: run them as root, as CI does)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A cable between `a` and `b`: interface `name` at both ends, up, with no address.
fn cable(a: &Site, b: &Site, name: &str) {
    ip(&[
        "link", "add", name, "netns", &a.name, "type", "veth", "peer", "name", name, "netns",
        &b.name,
    ]);
    a.ip(&["link", "set", name, "up"]);
    b.ip(&["link", "set", name, "up"]);
}

/// Alice (with the server) and Bob, each in a namespace, one cable between them with the
/// addresses given; no default route anywhere.
struct Lan {
    alice_site: Site,
    bob_site: Site,
    server: Server,
    alice: Peer,
    bob: Peer,
}

impl Lan {
    async fn new(alice_addr: &str, bob_addr: &str, server_addr: &str) -> Lan {
        let alice_site = Site::new("a");
        let bob_site = Site::new("b");
        cable(&alice_site, &bob_site, "lan0");
        alice_site.ip(&["addr", "add", alice_addr, "dev", "lan0", "nodad"]);
        bob_site.ip(&["addr", "add", bob_addr, "dev", "lan0", "nodad"]);
        for site in [&alice_site, &bob_site] {
            for family in ["-4", "-6"] {
                assert_eq!(site.routes(family), "", "a default route in {}", site.name);
            }
        }
        let server = alice_site.server(server_addr).await;
        let alice = alice_site.peer(&server, "Alice").await;
        let bob = bob_site.peer(&server, "Bob").await;
        Lan {
            alice_site,
            bob_site,
            server,
            alice,
            bob,
        }
    }

    /// Alice calls Bob and both see pictures from the other.
    async fn call(&mut self) {
        connect(&mut self.alice, &mut self.bob).await;
        assert_eq!(self.bob.pictures(30), 30, "Bob's pictures from Alice");
        assert_eq!(self.alice.pictures(30), 30, "Alice's pictures from Bob");
    }

    /// How long after `since` pictures flowed again at Bob, and at Alice.
    fn pictures_again(&self, since: Instant) -> (Duration, Duration) {
        tokio::task::block_in_place(|| {
            (
                pictures_again(&self.bob, since),
                pictures_again(&self.alice, since),
            )
        })
    }

    async fn shutdown(self) {
        self.alice.shutdown().await;
        self.bob.shutdown().await;
        self.server.shutdown().await;
        drop((self.alice_site, self.bob_site));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_without_a_default_route() {
    let mut lan = Lan::new("10.77.0.1/24", "10.77.0.2/24", "10.77.0.1:8787").await;
    lan.call().await;
    lan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_only() {
    let mut lan = Lan::new("fd77::1/64", "fd77::2/64", "[fd77::1]:8787").await;
    lan.call().await;
    lan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_link_local_only() {
    let mut lan = Lan::new("169.254.77.1/16", "169.254.77.2/16", "169.254.77.1:8787").await;
    lan.call().await;
    lan.shutdown().await;
}

/// Alice also has a cable to a third computer that Bob cannot reach: candidates on it fail,
/// the call does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_interfaces() {
    let mut lan = Lan::new("10.77.0.1/24", "10.77.0.2/24", "10.77.0.1:8787").await;
    let elsewhere = Site::new("c");
    cable(&lan.alice_site, &elsewhere, "lan1");
    lan.alice_site
        .ip(&["addr", "add", "10.78.0.1/24", "dev", "lan1", "nodad"]);
    elsewhere.ip(&["addr", "add", "10.78.0.2/24", "dev", "lan1", "nodad"]);
    lan.call().await;
    lan.shutdown().await;
}

/// Waits until `peer`'s call shows `reconnecting` as asked (failing if the call ends).
async fn reconnecting(peer: &mut Peer, reconnecting: bool) {
    let state = peer
        .state(|s| {
            matches!(s, CallState::Ended(_))
                || matches!(s, CallState::Connected { reconnecting: r, .. } if *r == reconnecting)
        })
        .await;
    assert!(
        !matches!(state, CallState::Ended(_)),
        "{}: {state:?}",
        peer.name
    );
}

/// How long after `since` pictures flowed again at `peer`: the first of ten in a row,
/// none more than 200 ms after the one before.
fn pictures_again(peer: &Peer, since: Instant) -> Duration {
    let slot = &peer.engine.remote_video;
    let _stale = slot.take();
    let deadline = since + support::PATIENCE;
    let mut run: Option<(Instant, usize)> = None;
    while Instant::now() < deadline {
        match slot.wait_take(Duration::from_millis(200)) {
            Some(_) => {
                let (first, count) = run.get_or_insert((Instant::now(), 0));
                *count += 1;
                if *count == 10 {
                    return first.duration_since(since);
                }
            }
            None => run = None,
        }
    }
    panic!(
        "{}: no pictures again within {:?}",
        peer.name,
        support::PATIENCE
    );
}

/// Bob's cable is pulled and plugged back in: both sides say they are reconnecting, ICE
/// restarts, and pictures flow again soon after the cable is back, the call never ending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cable_pulled_and_plugged_back_in() {
    let mut lan = Lan::new("10.77.0.1/24", "10.77.0.2/24", "10.77.0.1:8787").await;
    lan.call().await;
    lan.bob_site.ip(&["link", "set", "lan0", "down"]);
    reconnecting(&mut lan.alice, true).await;
    reconnecting(&mut lan.bob, true).await;
    // Out until ICE has been restarted (2 s after the connection was reported down).
    for peer in [&mut lan.alice, &mut lan.bob] {
        peer.wait_for(|e| match e {
            EngineEvent::Stats(stats) => (stats.ice_restarts > 0).then_some(()),
            _ => None,
        })
        .await;
    }
    lan.bob_site.ip(&["link", "set", "lan0", "up"]);
    let back = Instant::now();
    let (bob_after, alice_after) = lan.pictures_again(back);
    println!(
        "pictures again {bob_after:?} (Bob), {alice_after:?} (Alice) after the cable was back"
    );
    reconnecting(&mut lan.alice, false).await;
    reconnecting(&mut lan.bob, false).await;
    lan.shutdown().await;
}

/// Bob's address moves (a new lease, a new network): his app notices within half a second,
/// takes its signaling session over on a new connection (same id, the call kept) and
/// restarts ICE from the new address; pictures flow again and the call never ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_moves_mid_call() {
    let mut lan = Lan::new("10.77.0.1/24", "10.77.0.2/24", "10.77.0.1:8787").await;
    lan.call().await;
    let bob_id = lan.bob.id.clone();
    // As a new DHCP lease does it: the old address goes, the new one comes.
    lan.bob_site
        .ip(&["addr", "del", "10.77.0.2/24", "dev", "lan0"]);
    lan.bob_site
        .ip(&["addr", "add", "10.77.0.3/24", "dev", "lan0", "nodad"]);
    let moved = Instant::now();
    let (bob_after, alice_after) = lan.pictures_again(moved);
    println!("pictures again {bob_after:?} (Bob), {alice_after:?} (Alice) after the move");
    let stats = lan
        .bob
        .wait_for(|e| match e {
            EngineEvent::Stats(stats) if stats.ice_restarts > 0 => Some(stats.clone()),
            _ => None,
        })
        .await;
    assert_eq!(stats.state, "connected");
    // Bob kept his id: Alice still sees him under it, busy in their call.
    let roster_bob = lan.alice.sees("Bob").await;
    assert_eq!(roster_bob, bob_id);
    lan.alice.send(confab_call::Command::HangUp);
    let end = lan.bob.ended().await;
    assert_eq!(end.reason, HangupReason::Ended, "{end:?}");
    lan.shutdown().await;
}
