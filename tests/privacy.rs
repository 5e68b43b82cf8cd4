//! A callee reveals nothing until they accept: no ICE candidate or SDP goes out through
//! signaling, and no datagram goes out on the network, while the phone rings or after a
//! decline. Checked on the wire: Bob's signaling goes through a tap that keeps what he
//! sends, and every datagram either side sends goes through a simulated link that counts
//! them.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use confab_call::Command;
use confab_netsim::{LinkConditions, SimulatedLink};
use confab_protocol::{ClientMessage, HangupReason};

use support::tap::SignalingTap;
use support::{PATIENCE, Peer, PeerSetup, Server};

/// How long the phone rings before Bob answers. A peer connection, once made, gathers and
/// trickles its candidates and starts its checks within milliseconds: the accepted call
/// below measures that, and fails if it comes anywhere near this.
const RINGING: Duration = Duration::from_secs(1);

/// What Bob has sent through signaling that says where he is.
fn revealing(tap: &SignalingTap) -> Vec<ClientMessage> {
    tap.sent()
        .into_iter()
        .filter(|m| {
            matches!(
                m,
                ClientMessage::Offer { .. }
                    | ClientMessage::Answer { .. }
                    | ClientMessage::Candidate { .. }
            )
        })
        .collect()
}

fn datagrams(link: &SimulatedLink) -> u64 {
    link.counters().datagrams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_reveals_nothing_before_accepting() {
    let server = Server::start().await;
    let alice_link = SimulatedLink::new(LinkConditions::default(), 1);
    let bob_link = SimulatedLink::new(LinkConditions::default(), 2);
    let bob_tap = SignalingTap::start(&server).await;
    let setup = |link: &SimulatedLink| PeerSetup {
        link: Some(link.clone()),
        ..PeerSetup::default()
    };
    let mut alice = Peer::join(&server, "Alice", setup(&alice_link)).await;
    let mut bob = Peer::join_url(&bob_tap.url, "Bob", setup(&bob_link)).await;
    let bob_id = alice.sees("Bob").await;

    // Rings, then Bob declines: all he ever says is no, and nothing is sent either way.
    alice.send(Command::Call {
        peer: bob_id.clone(),
    });
    assert_eq!(bob.incoming().await, "Alice");
    tokio::time::sleep(RINGING).await;
    bob.send(Command::Decline);
    assert_eq!(alice.ended().await.reason, HangupReason::Declined);
    bob.ended().await;
    assert_eq!(revealing(&bob_tap), []);
    assert!(
        bob_tap.sent().iter().any(|m| matches!(
            m,
            ClientMessage::Hangup {
                reason: HangupReason::Declined,
                ..
            }
        )),
        "the tap missed Bob's decline: {:?}",
        bob_tap.sent()
    );
    assert_eq!((datagrams(&alice_link), datagrams(&bob_link)), (0, 0));

    // Rings again, and Bob accepts: only now do his candidates and packets go out.
    alice.send(Command::Call { peer: bob_id });
    assert_eq!(bob.incoming().await, "Alice");
    tokio::time::sleep(RINGING).await;
    assert_eq!(revealing(&bob_tap), []);
    assert_eq!((datagrams(&alice_link), datagrams(&bob_link)), (0, 0));
    bob.send(Command::Accept);
    let accepted = Instant::now();
    while datagrams(&bob_link) == 0 && accepted.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let first_datagram = accepted.elapsed();
    println!(
        "Bob's first datagram went out {} ms after he accepted",
        first_datagram.as_millis()
    );
    assert!(first_datagram < RINGING / 4, "{first_datagram:?}");
    alice.connected().await;
    bob.connected().await;
    assert!(
        revealing(&bob_tap)
            .iter()
            .any(|m| matches!(m, ClientMessage::Answer { .. })),
        "{:?}",
        bob_tap.sent()
    );
    assert_eq!(alice.pictures(1), 1, "no video after accepting");

    alice.send(Command::HangUp);
    alice.ended().await;
    bob.ended().await;
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
}
