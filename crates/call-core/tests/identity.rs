//! Who a peer is: claimed in its offer while the call rings, proven by the DTLS handshake
//! with the safety code. Call cores in memory, in fake time; the driver's part (the
//! fingerprints the handshake presented) is played by the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(clippy::disallowed_methods)]

mod world;

use confab_call_core::{Event, Input, LinkEvent, PeerIdentity};
use confab_protocol::safety::{Fingerprint, SafetyCode};
use confab_protocol::{CallId, ServerMessage};
use world::*;

fn identities(w: &World, peer: usize) -> Vec<PeerIdentity> {
    w.peers[peer]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Identity(identity) => Some(identity.clone()),
            _ => None,
        })
        .collect()
}

/// The driver reports the handshake's fingerprints on `peer`'s link.
fn handshake(w: &mut World, peer: usize, ours: Fingerprint, theirs: Fingerprint) {
    let link = *w.peers[peer].links.keys().next().unwrap();
    w.input(
        peer,
        Input::Link(link, LinkEvent::Identity { ours, theirs }),
    );
}

#[test]
fn both_sides_get_the_same_code_once_per_handshake() {
    let (alice, bob) = (Fingerprint([0xa1; 32]), Fingerprint([0xb0; 32]));
    let mut w = World::in_a_call();
    handshake(&mut w, ALICE, alice, bob);
    handshake(&mut w, BOB, bob, alice);
    let (seen_by_alice, seen_by_bob) = (identities(&w, ALICE), identities(&w, BOB));
    assert_eq!(seen_by_alice.len(), 1);
    assert_eq!(seen_by_bob.len(), 1);
    let (of_bob, of_alice) = (&seen_by_alice[0], &seen_by_bob[0]);
    assert_eq!(
        (of_bob.peer_name.as_str(), of_bob.fingerprint),
        ("Bob", bob)
    );
    assert_eq!(of_bob.peer, w.peers[BOB].id);
    assert_eq!(
        (of_alice.peer_name.as_str(), of_alice.fingerprint),
        ("Alice", alice)
    );
    let code = of_bob.safety_code.clone().expect("a code once connected");
    assert_eq!(of_alice.safety_code.as_ref(), Some(&code));
    assert_eq!(code, SafetyCode::derive(&alice, &bob));

    // The same handshake reported again (an ICE restart reconnects): no news.
    handshake(&mut w, ALICE, alice, bob);
    assert_eq!(identities(&w, ALICE).len(), 1);
}

#[test]
fn a_man_in_the_middle_makes_the_codes_differ() {
    let (alice, bob) = (Fingerprint([0xa1; 32]), Fingerprint([0xb0; 32]));
    let (to_alice, to_bob) = (Fingerprint([0x31; 32]), Fingerprint([0x32; 32]));
    let mut w = World::in_a_call();
    // Each side's handshake was with Mallory.
    handshake(&mut w, ALICE, alice, to_alice);
    handshake(&mut w, BOB, bob, to_bob);
    let code = |peer| identities(&w, peer)[0].safety_code.clone().unwrap();
    assert_ne!(code(ALICE), code(BOB));
}

#[test]
fn a_ringing_call_says_the_identity_its_offer_claims() {
    let bob = Fingerprint([0xb0; 32]);
    let mut w = World::new(2);
    let offer = ServerMessage::Offer {
        from: w.peers[BOB].id.clone(),
        from_name: "Bob".into(),
        call_id: CallId::new("call-1").unwrap(),
        sdp: format!("v=0\r\na=fingerprint:sha-256 {bob}\r\na=setup:actpass\r\n"),
    };
    w.server_says(ALICE, offer);
    let claimed = identities(&w, ALICE);
    assert_eq!(claimed.len(), 1, "{:?}", w.peers[ALICE].events);
    assert_eq!(claimed[0].fingerprint, bob);
    assert_eq!(claimed[0].peer_name, "Bob");
    assert_eq!(
        claimed[0].safety_code, None,
        "nothing is proven while it rings"
    );

    // An offer without a fingerprint claims nothing.
    let mut w = World::new(2);
    let offer = ServerMessage::Offer {
        from: w.peers[BOB].id.clone(),
        from_name: "Bob".into(),
        call_id: CallId::new("call-2").unwrap(),
        sdp: "v=0\r\n".into(),
    };
    w.server_says(ALICE, offer);
    assert!(identities(&w, ALICE).is_empty());
}

struct Fixed;

impl confab_call_core::Randomness for Fixed {
    fn random_u128(&mut self) -> u128 {
        7
    }
}

#[test]
fn the_caller_learns_the_claimed_identity_from_the_answer() {
    use confab_call_core::machine::Timeouts;
    use confab_call_core::{CallCore, Command, LinkAction, Output, Signaling};
    use confab_protocol::{ClientMessage, PeerId, PeerInfo};

    let now = std::time::Instant::now();
    let bob = PeerId::new(format!("{:032x}", 2)).unwrap();
    let mut core = CallCore::new(Timeouts::default(), Box::new(Fixed));
    let my_id = PeerId::new(format!("{:032x}", 1)).unwrap();
    core.handle(Input::Signaling(Signaling::Online { my_id }), now);
    let roster = vec![PeerInfo {
        id: bob.clone(),
        name: "Bob".into(),
        busy: false,
        protocol: 2,
    }];
    core.handle(Input::Signaling(Signaling::Roster(roster)), now);
    core.handle(Input::Command(Command::Call { peer: bob.clone() }), now);
    let outputs =
        |core: &mut CallCore| std::iter::from_fn(|| core.poll_output()).collect::<Vec<_>>();
    let link = outputs(&mut core)
        .into_iter()
        .find_map(|o| match o {
            Output::Link(link, LinkAction::Start { .. }) => Some(link),
            _ => None,
        })
        .expect("a link for the call");
    core.handle(
        Input::Link(link, LinkEvent::LocalDescription("v=0".into())),
        now,
    );
    let call_id = outputs(&mut core)
        .into_iter()
        .find_map(|o| match o {
            Output::Signal(ClientMessage::Offer { call_id, .. }) => Some(call_id),
            _ => None,
        })
        .expect("the offer");

    let claimed = Fingerprint([0xb0; 32]);
    let answer = ServerMessage::Answer {
        from: bob.clone(),
        call_id,
        sdp: format!("v=0\r\na=fingerprint:sha-256 {claimed}\r\n"),
    };
    core.handle(Input::Signaling(Signaling::Message(answer)), now);
    let after = outputs(&mut core);
    let identity = after.iter().find_map(|o| match o {
        Output::Event(Event::Identity(identity)) => Some(identity.clone()),
        _ => None,
    });
    let identity = identity.expect("the answer's identity");
    assert_eq!((identity.peer, identity.fingerprint), (bob, claimed));
    assert_eq!(identity.safety_code, None);
    assert!(
        after
            .iter()
            .any(|o| matches!(o, Output::Link(_, LinkAction::ApplyAnswer(_)))),
        "and the answer is applied"
    );
}
