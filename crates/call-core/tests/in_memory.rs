//! Whole calls between call cores in memory, in fake time (like quinn-proto's `Pair`): a
//! tiny signaling server routes what each core sends, and fake links stand in for peer
//! connections (their session descriptions name the link, so the two ends find each
//! other). No sockets, no sleeps, no clock but the one the test moves.

// A test: it may panic, and it reads the clock once, for the start of its fake time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(clippy::disallowed_methods)]

mod world;

use std::time::Duration;

use confab_call_core::machine::CallState;
use confab_call_core::{
    ChatEvent, Command, Event, Input, LinkClosed, LinkEvent, Problem, Signaling,
};
use confab_protocol::{CallId, ClientMessage, HangupReason, ServerMessage};
use world::*;

#[test]
fn a_call_connects_with_offer_answer_and_candidates_then_hangs_up() {
    let mut w = World::new(2);
    w.call(ALICE, BOB);
    assert!(matches!(w.peers[ALICE].state(), CallState::Outgoing { .. }));
    assert!(matches!(w.peers[BOB].state(), CallState::Incoming { .. }));
    assert!(
        w.peers[ALICE].camera_open,
        "the caller's camera comes on with the call"
    );

    w.advance(Duration::from_secs(2));
    w.command(BOB, Command::Accept);
    assert!(connected(&w, ALICE) && connected(&w, BOB));
    for peer in [ALICE, BOB] {
        let link = w.peers[peer].link();
        assert!(link.media_started, "{}", w.peers[peer].name);
        assert_eq!(w.peers[peer].microphone_opened, 1);
        assert!(w.peers[peer].camera_open);
        // The other side's candidate and its end of candidates arrived.
        assert_eq!(link.remote_candidates.len(), 2, "{}", w.peers[peer].name);
        assert!(link.remote_candidates[1].is_none());
        // Bob's came while he was ringing; they reached his connection only after his
        // answer went out, so his checks cannot overtake it.
        assert_eq!(
            link.candidates_before_description, 0,
            "{}",
            w.peers[peer].name
        );
    }

    w.command(ALICE, Command::HangUp);
    assert_eq!(w.peers[ALICE].ended().reason, HangupReason::Ended);
    let bob_end = w.peers[BOB].ended();
    assert_eq!(
        (bob_end.reason, bob_end.by_peer),
        (HangupReason::Ended, true)
    );
    for peer in [ALICE, BOB] {
        assert!(!w.peers[peer].camera_open, "the camera is released");
        let closed = w.peers[peer].links.values().next().unwrap();
        assert!(!closed.camera_open_at_close, "the camera goes off first");
        assert!(
            matches!(
                &closed.closed,
                Some(LinkClosed {
                    state: CallState::Ended(_),
                    ..
                })
            ),
            "{closed:?}"
        );
    }
}

#[test]
fn the_callee_creates_and_sends_nothing_before_accepting_and_declining_sends_only_declined() {
    let mut w = World::new(2);
    w.call(ALICE, BOB);
    w.advance(Duration::from_secs(5));
    let bob = &w.peers[BOB];
    assert!(bob.links.is_empty() && !bob.camera_open && bob.signals_sent.is_empty());

    w.command(BOB, Command::Decline);
    let bob = &w.peers[BOB];
    assert!(bob.links.is_empty() && !bob.camera_open);
    assert!(matches!(
        bob.signals_sent[..],
        [ClientMessage::Hangup {
            reason: HangupReason::Declined,
            ..
        }]
    ));
    let alice = w.peers[ALICE].ended();
    assert_eq!(
        (alice.reason, alice.by_peer),
        (HangupReason::Declined, true)
    );
    assert!(!w.peers[ALICE].camera_open);
}

#[test]
fn a_third_caller_gets_busy_and_the_call_goes_on() {
    let mut w = World::new(3);
    w.call(ALICE, BOB);
    w.command(BOB, Command::Accept);
    w.call(CAROL, BOB);
    let carol = w.peers[CAROL].ended();
    assert_eq!((carol.reason, carol.by_peer), (HangupReason::Busy, true));
    assert!(connected(&w, ALICE) && connected(&w, BOB));
    // Carol's link was closed; Bob never made one for her.
    assert_eq!(w.peers[BOB].links.len(), 1);
    assert!(w.peers[CAROL].links.values().all(|l| l.closed.is_some()));
}

#[test]
fn glare_the_lower_id_keeps_its_call_and_the_other_answers_it() {
    let mut w = World::new(2);
    // Both call at once: neither hears the other's offer before sending its own.
    let (alice_id, bob_id) = (w.peers[ALICE].id.clone(), w.peers[BOB].id.clone());
    let now = w.now;
    w.peers[ALICE]
        .core
        .handle(Input::Command(Command::Call { peer: bob_id }), now);
    w.peers[BOB]
        .core
        .handle(Input::Command(Command::Call { peer: alice_id }), now);
    w.settle();
    assert!(connected(&w, ALICE) && connected(&w, BOB));
    // Bob (the higher id) dropped his own call: his first link is closed, the second is up.
    let bob_links: Vec<_> = w.peers[BOB].links.values().collect();
    assert_eq!(bob_links.len(), 2);
    assert!(bob_links[0].closed.is_some() && bob_links[1].connected);
    assert_eq!(
        w.peers[ALICE].link().remote.map(|(peer, _)| peer),
        Some(BOB)
    );
}

#[test]
fn an_unanswered_call_times_out_after_45_seconds() {
    let mut w = World::new(2);
    w.call(ALICE, BOB);
    w.advance(Duration::from_secs(44));
    assert!(matches!(w.peers[BOB].state(), CallState::Incoming { .. }));
    w.advance(Duration::from_secs(2));
    assert_eq!(w.peers[ALICE].ended().reason, HangupReason::Timeout);
    assert_eq!(w.peers[BOB].ended().reason, HangupReason::Timeout);
    assert!(w.peers[BOB].links.is_empty());
}

#[test]
fn chat_goes_both_ways_with_acknowledgements() {
    let mut w = World::in_a_call();
    w.chat(ALICE, "hello Bob");
    w.chat(BOB, "hi Alice");
    let alice = w.peers[ALICE].chats();
    assert!(matches!(alice[0], ChatEvent::Open));
    let ChatEvent::Sent { id, text, .. } = alice[1] else {
        panic!("{alice:?}")
    };
    assert_eq!(text, "hello Bob");
    assert_eq!(alice[2], &ChatEvent::Delivered { id: id.clone() });
    assert!(matches!(alice[3], ChatEvent::Received { text, .. } if text == "hi Alice"));
    let bob = w.peers[BOB].chats();
    assert!(matches!(bob[1], ChatEvent::Received { id: got, .. } if got == id));

    w.command(BOB, Command::HangUp);
    let closed = |p: usize| w.peers[p].first_link_closed();
    assert_eq!(
        (closed(ALICE).chats_sent, closed(ALICE).chats_received),
        (1, 1)
    );
    assert_eq!((closed(BOB).chats_sent, closed(BOB).chats_received), (1, 1));
}

#[test]
fn chat_before_the_call_or_too_long_is_refused_with_a_reason() {
    let mut w = World::new(2);
    w.chat(ALICE, "anyone?");
    w.chat(ALICE, &"x".repeat(4001));
    let reasons: Vec<_> = w.peers[ALICE]
        .chats()
        .into_iter()
        .map(|c| match c {
            ChatEvent::Failed {
                id: None, reason, ..
            } => reason.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(reasons[0], "not in a call");
    assert!(reasons[1].contains("4000"), "{}", reasons[1]);
}

#[test]
fn messages_wait_for_a_chat_that_never_opens_and_are_reported_not_sent_at_the_end() {
    let mut w = World::new(2);
    w.chat_opens = false;
    w.call(ALICE, BOB);
    w.command(BOB, Command::Accept);
    w.chat(ALICE, "first");
    w.chat(ALICE, "second");
    assert!(matches!(
        w.peers[ALICE].chats()[..],
        [ChatEvent::Sent { .. }, ChatEvent::Sent { .. }]
    ));
    w.command(ALICE, Command::HangUp);
    let failed: Vec<_> = w.peers[ALICE].chats()[2..]
        .iter()
        .map(|c| (*c).clone())
        .collect();
    let expected = |text: &str| ChatEvent::Failed {
        id: None,
        text: text.to_owned(),
        reason: "the call ended before the chat connected".into(),
    };
    let without_ids: Vec<_> = failed
        .into_iter()
        .map(|c| match c {
            ChatEvent::Failed {
                id: Some(_),
                text,
                reason,
            } => ChatEvent::Failed {
                id: None,
                text,
                reason,
            },
            other => other,
        })
        .collect();
    assert_eq!(without_ids, [expected("first"), expected("second")]);
    let closed = w.peers[ALICE].first_link_closed();
    assert_eq!(
        closed.chats_sent, 2,
        "both were taken, though neither went out"
    );
}

#[test]
fn a_message_the_channel_refuses_is_marked_not_sent() {
    let mut w = World::in_a_call();
    // The channel closes under Alice: the link reports the message it could not send.
    let link = *w.peers[ALICE].links.keys().next().unwrap();
    w.peers[ALICE].links.get_mut(&link).unwrap().chat_open = false;
    w.chat(ALICE, "lost?");
    let last = w.peers[ALICE].chats().last().map(|c| (*c).clone());
    assert!(
        matches!(&last, Some(ChatEvent::Failed { id: Some(_), text, reason })
            if text == "lost?" && reason.contains("closed")),
        "{last:?}"
    );
}

#[test]
fn a_peer_that_vanishes_ends_the_call_ten_seconds_after_the_connection_drops() {
    let mut w = World::in_a_call();
    w.vanish(BOB);
    w.advance(Duration::from_secs(9));
    assert!(connected(&w, ALICE), "a blip is not the end");
    w.advance(Duration::from_secs(2));
    let end = w.peers[ALICE].ended();
    assert_eq!((end.reason, end.by_peer), (HangupReason::Failed, false));
    assert!(!w.peers[ALICE].camera_open);
}

fn reconnecting(w: &World, peer: usize) -> bool {
    matches!(
        w.peers[peer].state(),
        CallState::Connected {
            reconnecting: true,
            ..
        }
    )
}

/// Both ends' links report the connection down (the path between them broke).
fn path_breaks(w: &mut World) {
    for peer in [ALICE, BOB] {
        let link = *w.peers[peer].links.keys().next().unwrap();
        w.peers[peer].links.get_mut(&link).unwrap().connected = false;
        w.send_link_event(peer, link, LinkEvent::Disconnected);
    }
    w.settle();
}

#[test]
fn a_connection_down_two_seconds_restarts_ice_and_the_call_carries_on() {
    let mut w = World::in_a_call();
    path_breaks(&mut w);
    assert!(reconnecting(&w, ALICE) && reconnecting(&w, BOB));
    w.advance(Duration::from_millis(1900));
    assert_eq!((w.peers[ALICE].restarts, w.peers[BOB].restarts), (0, 0));
    w.advance(Duration::from_millis(100));
    // Both restarted at once (glare): the caller's offer won, the callee answered it.
    assert_eq!((w.peers[ALICE].restarts, w.peers[BOB].restarts), (1, 1));
    assert_eq!(
        (
            w.peers[ALICE].restarts_answered,
            w.peers[BOB].restarts_answered
        ),
        (0, 1)
    );
    assert!(connected(&w, ALICE) && connected(&w, BOB));
    assert!(!reconnecting(&w, ALICE) && !reconnecting(&w, BOB));
    // Up again: nothing more to restart, and the call goes on past the 10 s limit.
    w.advance(Duration::from_secs(30));
    assert_eq!((w.peers[ALICE].restarts, w.peers[BOB].restarts), (1, 1));
    assert!(connected(&w, ALICE) && connected(&w, BOB));
}

#[test]
fn a_network_change_restarts_ice_at_once_but_waits_for_the_server() {
    let mut w = World::in_a_call();
    w.input(BOB, Input::Signaling(Signaling::Offline));
    w.input(BOB, Input::NetworkChanged);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.peers[BOB].restarts, 0, "no server to carry the offer");
    let bob = w.peers[BOB].id.clone();
    w.input(BOB, Input::Signaling(Signaling::Online { my_id: bob }));
    assert_eq!(w.peers[BOB].restarts, 1);
    assert_eq!(w.peers[ALICE].restarts_answered, 1);
    assert!(connected(&w, ALICE) && connected(&w, BOB));
    w.advance(Duration::from_secs(30));
    assert_eq!(w.peers[BOB].restarts, 1, "one change, one restart");
}

#[test]
fn a_restart_that_brings_nothing_is_retried_until_the_call_fails() {
    let mut w = World::in_a_call();
    w.vanish(BOB);
    w.advance(Duration::from_secs(9));
    // At 2 s and 6 s after the connection dropped (every 4 s), then the call fails at 10 s.
    assert_eq!(w.peers[ALICE].restarts, 2);
    assert!(reconnecting(&w, ALICE));
    w.advance(Duration::from_secs(2));
    assert_eq!(w.peers[ALICE].ended().reason, HangupReason::Failed);
}

#[test]
fn calling_someone_who_left_is_a_problem_not_a_call() {
    let mut w = World::new(2);
    let now = w.now;
    w.peers[ALICE]
        .core
        .handle(Input::Signaling(Signaling::Roster(Vec::new())), now);
    w.call(ALICE, BOB);
    assert_eq!(
        w.peers[ALICE].events,
        [Event::Problem(Problem::PeerOffline)]
    );
    assert!(w.peers[ALICE].links.is_empty() && w.peers[ALICE].signals_sent.is_empty());
}

#[test]
fn the_camera_switch_and_device_changes_mid_call() {
    let mut w = World::new(2);
    w.command(ALICE, Command::SetCamera(false));
    w.call(ALICE, BOB);
    assert!(!w.peers[ALICE].camera_open, "switched off before the call");
    w.command(BOB, Command::Accept);
    w.command(ALICE, Command::SetCamera(true));
    assert!(w.peers[ALICE].camera_open);
    w.command(ALICE, Command::AudioSourceChanged);
    assert_eq!(
        w.peers[ALICE].microphone_opened, 2,
        "reopened for the new input"
    );
    // Between calls nothing is opened.
    w.command(ALICE, Command::HangUp);
    w.command(ALICE, Command::VideoSourceChanged);
    w.command(ALICE, Command::AudioSourceChanged);
    assert!(!w.peers[ALICE].camera_open);
    assert_eq!(w.peers[ALICE].microphone_opened, 2);
}

#[test]
fn messages_for_another_call_id_are_ignored() {
    let mut w = World::in_a_call();
    let from = w.peers[BOB].id.clone();
    let hangup = ServerMessage::Hangup {
        from,
        call_id: CallId::new("not-this-call").unwrap(),
        reason: HangupReason::Ended,
    };
    w.server_says(ALICE, hangup);
    assert!(connected(&w, ALICE));
}

#[test]
fn each_side_tells_the_other_its_switches() {
    let mut w = World::in_a_call();
    let states = |w: &World, peer: usize| {
        w.peers[peer]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::PeerState {
                    muted, camera_off, ..
                } => Some((*muted, *camera_off)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // Said once when the chat opens, then on each change.
    assert_eq!(states(&w, ALICE), [(false, false)]);
    w.command(BOB, Command::SetMuted(true));
    w.command(BOB, Command::SetCamera(false));
    assert_eq!(
        states(&w, ALICE),
        [(false, false), (true, false), (true, true)]
    );
    assert_eq!(states(&w, BOB), [(false, false)]);
}
