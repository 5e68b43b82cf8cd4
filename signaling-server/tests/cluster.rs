//! Signaling servers sharing one roster through a real `nats-server`: each server is the
//! `confab-signaling` program started with `--cluster`, clients are spread over them over
//! real WebSockets. The roster and calls across servers, a name two servers take at once,
//! a server killed mid-call, and NATS going away and coming back.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
#[path = "../../tests/support/nats.rs"]
mod nats;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, PATIENCE, answer, http, offer};
use nats::Nats;
use serde_json::{Value, json};

/// How long a server waits for a silent one before its peers leave (`SERVER_TIMEOUT` in
/// the server, 5 s), plus the time to notice.
const SERVER_SILENCE: Duration = Duration::from_secs(8);

/// Polls `done` every 20 ms until it holds; fails the test after `patience`.
async fn until(what: &str, patience: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within {patience:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One `confab-signaling` process of the cluster.
struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Node {
    async fn start(nats: &Nats, cluster: &str, extra: &[&str]) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_confab-signaling"))
            .args(["--listen", "127.0.0.1:0", "--cluster", &nats.url()])
            .args(["--cluster-name", cluster])
            .args(extra)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the log to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((_, rest)) = line.split_once("listening on ws://") {
                    let _ = tx.send(rest.trim_end_matches("/ws").to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(PATIENCE)
            .expect("the server never said where it listens");
        Node {
            child,
            addr: addr.parse().unwrap(),
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    async fn health(&self) -> String {
        http(self.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await
    }

    /// Until `/healthz` says `what`.
    async fn until_health(&self, what: &str, patience: Duration) {
        until(&format!("/healthz saying {what:?}"), patience, async || {
            self.health().await.contains(what)
        })
        .await;
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `n` servers of cluster `name` (each test has a nats-server of its own), each having
/// heard from all the others.
async fn cluster(nats: &Nats, name: &str, n: usize, extra: &[&str]) -> Vec<Node> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(Node::start(nats, name, extra).await);
    }
    let others = format!("connected, {} other servers", n - 1);
    for node in &nodes {
        node.until_health(&others, PATIENCE).await;
    }
    nodes
}

/// Reads until a message of type `ty`, skipping roster news; returns it.
async fn next_past_roster(client: &mut Client, ty: &str) -> Value {
    client.recv_past_roster(ty).await
}

/// Reads until `peer_joined` (or `peer_left`) about `name`.
async fn until_roster_news(client: &mut Client, ty: &str, name_or_id: &str) {
    loop {
        let msg = client.recv().await;
        let about = [&msg["peer"]["name"], &msg["peer"]["id"], &msg["id"]];
        if msg["type"] == ty && about.iter().any(|v| *v == name_or_id) {
            return;
        }
    }
}

/// Alice on the first server calls Bob on the second; he answers.
async fn answered_call(nodes: &[Node]) -> (Client, Client) {
    let (mut alice, _) = Client::join_at(&nodes[0].url(), "Alice", 2).await;
    let (mut bob, welcome) = Client::join_at(&nodes[1].url(), "Bob", 2).await;
    // Alice's join may still be on its way to Bob's server: then Bob hears of it next.
    let listed = welcome["peers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "Alice");
    if !listed {
        until_roster_news(&mut bob, "peer_joined", "Alice").await;
    }
    until_roster_news(&mut alice, "peer_joined", "Bob").await;
    alice.send(offer(&bob.id, "c1")).await;
    let got = next_past_roster(&mut bob, "offer").await;
    assert_eq!(
        (got["from"].as_str(), got["from_name"].as_str()),
        (Some(alice.id.as_str()), Some("Alice"))
    );
    bob.send(answer(&alice.id, "c1")).await;
    let got = next_past_roster(&mut alice, "answer").await;
    assert_eq!(got["from"], bob.id.as_str());
    (alice, bob)
}

#[tokio::test]
async fn clients_on_different_servers_see_and_call_each_other() {
    let nats = Nats::start().await;
    let nodes = cluster(&nats, "calls", 3, &[]).await;
    let (mut alice, mut bob) = answered_call(&nodes).await;
    // Carol on the third server sees both busy.
    let (mut carol, welcome) = Client::join_at(&nodes[2].url(), "Carol", 2).await;
    let mut busy: BTreeMap<String, bool> = welcome["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["busy"].as_bool().unwrap(),
            )
        })
        .collect();
    // News still on its way when Carol joined reaches her next.
    let both_busy = BTreeMap::from([("Alice".to_owned(), true), ("Bob".to_owned(), true)]);
    while busy != both_busy {
        let news = carol.recv().await;
        if matches!(news["type"].as_str(), Some("peer_joined" | "peer_updated")) {
            let peer = &news["peer"];
            let name = peer["name"].as_str().unwrap().to_owned();
            busy.insert(name, peer["busy"].as_bool().unwrap());
        }
    }
    // Candidates and the hangup travel too; a third party cannot end the call.
    bob.send(json!({"type":"candidate","to":alice.id,"call_id":"c1","candidate":null}))
        .await;
    let got = next_past_roster(&mut alice, "candidate").await;
    assert_eq!(got["from"], bob.id.as_str());
    carol
        .send(json!({"type":"hangup","to":bob.id,"call_id":"c1","reason":"ended"}))
        .await;
    carol.recv_error("unknown_call").await;
    alice
        .send(json!({"type":"hangup","to":bob.id,"call_id":"c1","reason":"ended"}))
        .await;
    let got = next_past_roster(&mut bob, "hangup").await;
    assert_eq!(got["reason"], "ended");

    // A call left ringing times out on both sides, each told by its own server.
    drop((alice, bob, carol));
    let nodes = cluster(&nats, "ringing", 2, &["--ring-timeout-secs", "1"]).await;
    let (mut dave, _) = Client::join_at(&nodes[0].url(), "Dave", 2).await;
    let (mut erin, _) = Client::join_at(&nodes[1].url(), "Erin", 2).await;
    until_roster_news(&mut dave, "peer_joined", "Erin").await;
    dave.send(offer(&erin.id, "c2")).await;
    next_past_roster(&mut erin, "offer").await;
    for client in [&mut dave, &mut erin] {
        let got = next_past_roster(client, "hangup").await;
        assert_eq!(got["reason"], "timeout");
    }
}

#[tokio::test]
async fn a_name_taken_on_two_servers_at_once_is_held_by_one_peer() {
    let nats = Nats::start().await;
    let nodes = cluster(&nats, "names", 3, &[]).await;
    // Both ask for "Dana" at the same moment, on different servers.
    let hello = |url: String| async move {
        let mut client = Client::connect_to(&url).await;
        client
            .send(json!({"type":"hello","protocol":2,"name":"Dana"}))
            .await;
        let first = client.recv().await;
        (client, first)
    };
    let ((one, first_one), (two, first_two)) =
        tokio::join!(hello(nodes[0].url()), hello(nodes[1].url()));
    let mut welcomed = Vec::new();
    for (client, first) in [(one, first_one), (two, first_two)] {
        match first["type"].as_str() {
            // Refused at once: the other's join had already reached this server.
            Some("error") => assert_eq!(first["code"], "name_taken", "{first}"),
            Some("welcome") => welcomed.push((first["id"].as_str().unwrap().to_owned(), client)),
            _ => panic!("neither a welcome nor an error: {first}"),
        }
    }
    // The rule: the only one welcomed keeps the name, or of two the smaller id.
    welcomed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut welcomed = welcomed.into_iter();
    let (keeper_id, mut keeper) = welcomed.next().expect("at least one is welcomed");
    // A second one welcomed loses it: its own server tells it so.
    for (_, mut loser) in welcomed {
        let told = loop {
            let msg = loser.recv().await;
            if msg["type"] == "error" {
                break msg;
            }
        };
        assert_eq!(told["code"], "name_taken", "{told}");
    }
    // A third server's client ends up knowing one Dana, the keeper, whatever it heard on the
    // way, and reaches her: she still holds her connection.
    let (mut late, welcome) = Client::join_at(&nodes[2].url(), "Late", 2).await;
    let mut danas: Vec<String> = welcome["peers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "Dana")
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    while danas != [keeper_id.clone()] {
        assert!(danas.len() <= 1, "two Danas at once: {danas:?}");
        let news = late.recv().await;
        match news["type"].as_str() {
            Some("peer_joined") if news["peer"]["name"] == "Dana" => {
                danas.push(news["peer"]["id"].as_str().unwrap().to_owned());
            }
            Some("peer_left") => danas.retain(|id| news["id"] != id.as_str()),
            _ => {}
        }
    }
    late.send(offer(&keeper_id, "c1")).await;
    let got = next_past_roster(&mut keeper, "offer").await;
    assert_eq!(got["from_name"], "Late");
}

#[tokio::test]
async fn a_server_killed_mid_call_loses_its_clients_and_the_others_carry_on() {
    let nats = Nats::start().await;
    let mut nodes = cluster(&nats, "deaths", 3, &[]).await;
    let (mut alice, bob) = answered_call(&nodes).await;
    let (mut carol, _) = Client::join_at(&nodes[2].url(), "Carol", 2).await;
    // Bob's server dies without a word.
    nodes[1].kill();
    let bob_id = bob.id.clone();
    drop(bob);
    let started = Instant::now();
    // Alice's call was answered: her server says it failed (her app carries on peer to
    // peer); everyone sees Bob leave.
    let got = tokio::time::timeout(SERVER_SILENCE, next_past_roster(&mut alice, "hangup"))
        .await
        .expect("Alice hears of the call");
    assert_eq!(got["reason"], "failed");
    tokio::time::timeout(
        SERVER_SILENCE,
        until_roster_news(&mut carol, "peer_left", &bob_id),
    )
    .await
    .expect("Carol sees Bob leave");
    assert!(started.elapsed() < SERVER_SILENCE);
    // Bob comes back on another server and is seen again; a new call goes through.
    let (mut bob, _) = Client::join_at(&nodes[2].url(), "Bob", 2).await;
    until_roster_news(&mut alice, "peer_joined", "Bob").await;
    alice.send(offer(&bob.id, "c2")).await;
    next_past_roster(&mut bob, "offer").await;
}

#[tokio::test]
async fn servers_serve_their_own_clients_while_nats_is_away_and_rebuild_the_roster() {
    let mut nats = Nats::start().await;
    let nodes = cluster(&nats, "outage", 2, &[]).await;
    let (mut alice, _) = Client::join_at(&nodes[0].url(), "Alice", 2).await;
    let (mut bob, _) = Client::join_at(&nodes[1].url(), "Bob", 2).await;
    until_roster_news(&mut alice, "peer_joined", "Bob").await;

    nats.stop();
    for node in &nodes {
        node.until_health("NATS unreachable", PATIENCE).await;
    }
    until_roster_news(&mut alice, "peer_left", &bob.id).await;
    // Alice's server still serves her: Carol, on the same one, calls her.
    let (mut carol, _) = Client::join_at(&nodes[0].url(), "Carol", 2).await;
    carol.send(offer(&alice.id, "c1")).await;
    next_past_roster(&mut alice, "offer").await;

    // NATS is back on the same address: the servers find each other and their rosters.
    let _nats = Nats::on(nats.port).await;
    for node in &nodes {
        node.until_health("connected, 1 other servers", SERVER_SILENCE)
            .await;
    }
    // Bob saw them leave while NATS was away; now they join again, in either order.
    let mut missing = vec!["Alice", "Carol"];
    while !missing.is_empty() {
        let news = bob.recv().await;
        if news["type"] == "peer_joined" {
            missing.retain(|name| news["peer"]["name"] != *name);
        }
    }
    bob.send(offer(&carol.id, "c2")).await;
    next_past_roster(&mut carol, "offer").await;
}
