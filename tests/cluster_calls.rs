//! A call between two engines on different signaling servers of a cluster: the servers
//! share their roster through a real `nats-server`, the call is real WebRTC over loopback
//! with synthetic media, and it outlives the callee's server.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::SocketAddr;

use confab_call::{ChatEvent, Command};
use confab_protocol::HangupReason;
use confab_signaling::{ClusterConfig, Config};

use support::nats::Nats;
use support::{Peer, PeerSetup, Server, connect};

fn clustered(nats: &Nats) -> Config {
    Config {
        cluster: Some(ClusterConfig {
            urls: vec![nats.url()],
            name: "calls".into(),
            credentials: None,
            ca: None,
            client_cert: None,
            require_tls: false,
        }),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_between_two_servers_carries_media_and_chat_and_outlives_a_server() {
    let nats = Nats::start().await;
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let one = Server::start_with(loopback, clustered(&nats)).await;
    let two = Server::start_with(loopback, clustered(&nats)).await;
    let mut alice = Peer::join(&one, "Alice", PeerSetup::default()).await;
    let mut bob = Peer::join(&two, "Bob", PeerSetup::default()).await;

    // Alice finds Bob in her roster (from the other server) and calls him.
    connect(&mut alice, &mut bob).await;
    assert_eq!(bob.pictures(10), 10, "video from Alice");
    assert_eq!(alice.pictures(10), 10, "video from Bob");
    alice.send(Command::SendChat("across servers".into()));
    let received = bob.chat(|c| matches!(c, ChatEvent::Received { .. })).await;
    assert!(matches!(received, ChatEvent::Received { text, .. } if text == "across servers"));
    alice
        .chat(|c| matches!(c, ChatEvent::Delivered { .. }))
        .await;

    // Bob's server goes away: the call goes on peer to peer.
    two.shutdown().await;
    assert_eq!(bob.pictures(30), 30, "video after Bob's server left");
    assert_eq!(
        alice.pictures(30),
        30,
        "video to Alice after Bob's server left"
    );
    bob.send(Command::SendChat("still here".into()));
    let received = alice
        .chat(|c| matches!(c, ChatEvent::Received { .. }))
        .await;
    assert!(matches!(received, ChatEvent::Received { text, .. } if text == "still here"));

    alice.send(Command::HangUp);
    assert_eq!(alice.ended().await.reason, HangupReason::Ended);
    alice.shutdown().await;
    bob.shutdown().await;
    one.shutdown().await;
}
