//! Group calls between call cores in memory, in fake time: a call of two grows when someone
//! is invited, every member links to every other, the chat reaches everyone, members leave
//! and vanish without ending the call for the rest.

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

use confab_call_core::machine::{CallState, Member, MemberStatus};
use confab_call_core::{
    ChatEvent, Command, Event, Input, LinkEvent, Problem, Signaling, Transfer, TransferState,
};
use confab_protocol::{ClientMessage, HangupReason, PeerInfo, ServerMessage};
use world::*;

const DAVE: usize = 3;

fn members(w: &World, peer: usize) -> Vec<(String, MemberStatus)> {
    match w.peers[peer].state() {
        CallState::Group { members } => members
            .iter()
            .map(|Member { name, status, .. }| (name.clone(), *status))
            .collect(),
        other => panic!("{} is {other:?}, not in a group call", w.peers[peer].name),
    }
}

fn all_connected(names: &[&str]) -> Vec<(String, MemberStatus)> {
    names
        .iter()
        .map(|n| ((*n).to_owned(), MemberStatus::Connected))
        .collect()
}

fn invite(w: &mut World, from: usize, to: usize) {
    let peer = w.peers[to].id.clone();
    w.command(from, Command::Invite { peer });
}

fn open_links(w: &World, peer: usize) -> usize {
    w.peers[peer]
        .links
        .values()
        .filter(|l| l.closed.is_none())
        .count()
}

/// Alice and Bob in a call, Alice invites Carol, Carol accepts.
fn three_in_a_call() -> World {
    let mut w = World::new(3);
    w.call(ALICE, BOB);
    w.command(BOB, Command::Accept);
    assert!(connected(&w, ALICE));
    invite(&mut w, ALICE, CAROL);
    w.command(CAROL, Command::Accept);
    w
}

#[test]
fn an_invitation_turns_a_call_of_two_into_a_mesh_of_three() {
    let mut w = World::new(3);
    w.call(ALICE, BOB);
    w.command(BOB, Command::Accept);
    invite(&mut w, ALICE, CAROL);
    // Carol's app rings, saying who else is there; nothing is connected yet.
    let CallState::Invited {
        peer_name, others, ..
    } = w.peers[CAROL].state()
    else {
        panic!("Carol is {:?}", w.peers[CAROL].state());
    };
    assert_eq!(
        (peer_name.as_str(), others.as_slice()),
        ("Alice", &["Bob".to_owned()][..])
    );
    assert_eq!(open_links(&w, CAROL), 0);
    assert_eq!(
        members(&w, ALICE),
        [
            ("Bob".to_owned(), MemberStatus::Connected),
            ("Carol".to_owned(), MemberStatus::Invited)
        ]
    );

    w.command(CAROL, Command::Accept);
    assert_eq!(members(&w, ALICE), all_connected(&["Bob", "Carol"]));
    assert_eq!(members(&w, BOB), all_connected(&["Alice", "Carol"]));
    assert_eq!(members(&w, CAROL), all_connected(&["Alice", "Bob"]));
    for peer in [ALICE, BOB, CAROL] {
        assert_eq!(open_links(&w, peer), 2, "{}", w.peers[peer].name);
        assert!(w.peers[peer].links.values().all(|l| l.media_started));
        assert!(w.peers[peer].camera_open);
        // One microphone for the call, however many links it feeds.
        assert_eq!(w.peers[peer].microphone_opened, 1);
    }
    // The members offered to Carol; Carol offered to nobody.
    let offers = |p: usize| {
        w.peers[p]
            .signals_sent
            .iter()
            .filter(|m| matches!(m, ClientMessage::Offer { .. }))
            .count()
    };
    assert_eq!((offers(ALICE), offers(BOB), offers(CAROL)), (2, 1, 0));
}

#[test]
fn members_see_each_other_muted_and_with_the_camera_off() {
    let mut w = three_in_a_call();
    w.command(BOB, Command::SetMuted(true));
    w.command(CAROL, Command::SetCamera(false));
    let marks = |w: &World, peer: usize| match w.peers[peer].state() {
        CallState::Group { members } => members
            .iter()
            .map(|m| (m.name.clone(), m.muted, m.camera_off))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        marks(&w, ALICE),
        [("Bob".into(), true, false), ("Carol".into(), false, true)]
    );
    w.command(BOB, Command::SetMuted(false));
    assert_eq!(marks(&w, CAROL)[1], ("Bob".into(), false, false));
    // Someone who joins later learns them when its chat opens.
    let dave_joins = {
        let mut w = World::new(4);
        w.call(ALICE, BOB);
        w.command(BOB, Command::Accept);
        w.command(BOB, Command::SetMuted(true));
        invite(&mut w, ALICE, DAVE);
        w.command(DAVE, Command::Accept);
        marks(&w, DAVE)
    };
    assert_eq!(dave_joins[1], ("Bob".into(), true, false));
}

#[test]
fn the_chat_reaches_every_member_and_counts_acknowledgements() {
    let mut w = three_in_a_call();
    w.chat(BOB, "hello both");
    for peer in [ALICE, CAROL] {
        let got = w.peers[peer].chats().into_iter().find_map(|c| match c {
            ChatEvent::Received {
                text, from_name, ..
            } => Some((text.clone(), from_name.clone())),
            _ => None,
        });
        assert_eq!(got, Some(("hello both".into(), Some("Bob".into()))));
    }
    let acks: Vec<&ChatEvent> = w.peers[BOB]
        .chats()
        .into_iter()
        .filter(|c| {
            matches!(
                c,
                ChatEvent::Delivered { .. } | ChatEvent::DeliveredTo { .. }
            )
        })
        .collect();
    assert!(
        matches!(
            acks[..],
            [
                ChatEvent::DeliveredTo {
                    delivered: 1,
                    of: 2,
                    ..
                },
                ChatEvent::Delivered { .. }
            ]
        ),
        "{acks:?}"
    );
}

#[test]
fn members_leave_and_the_last_two_carry_on() {
    let mut w = three_in_a_call();
    w.command(CAROL, Command::HangUp);
    assert!(matches!(w.peers[CAROL].state(), CallState::Ended(_)));
    assert_eq!(open_links(&w, CAROL), 0);
    assert!(!w.peers[CAROL].camera_open);
    assert_eq!(members(&w, ALICE), all_connected(&["Bob"]));
    assert_eq!(members(&w, BOB), all_connected(&["Alice"]));
    assert_eq!((open_links(&w, ALICE), open_links(&w, BOB)), (1, 1));

    // The first caller can leave too: Bob and Carol would carry on; here Bob is alone.
    w.command(ALICE, Command::HangUp);
    let end = w.peers[BOB].ended();
    assert_eq!(end.peer_name, "Alice");
    assert!(end.by_peer);
    assert_eq!(open_links(&w, BOB), 0);
}

#[test]
fn the_first_caller_leaves_and_the_others_carry_on() {
    let mut w = three_in_a_call();
    w.command(ALICE, Command::HangUp);
    assert_eq!(members(&w, BOB), all_connected(&["Carol"]));
    assert_eq!(members(&w, CAROL), all_connected(&["Bob"]));
    w.chat(CAROL, "still here");
    assert!(
        w.peers[BOB]
            .chats()
            .iter()
            .any(|c| matches!(c, ChatEvent::Received { text, .. } if text == "still here"))
    );
}

#[test]
fn a_member_who_vanishes_leaves_within_the_disconnect_timeout() {
    let mut w = three_in_a_call();
    w.vanish(CAROL);
    assert_eq!(
        members(&w, ALICE),
        [
            ("Bob".to_owned(), MemberStatus::Connected),
            ("Carol".to_owned(), MemberStatus::Reconnecting)
        ]
    );
    w.advance(Duration::from_secs(9));
    assert_eq!(members(&w, ALICE).len(), 2, "a blip is not the end");
    w.advance(Duration::from_secs(2));
    assert_eq!(members(&w, ALICE), all_connected(&["Bob"]));
    assert_eq!(members(&w, BOB), all_connected(&["Alice"]));
}

#[test]
fn a_member_whose_app_is_killed_leaves_as_soon_as_its_media_stops() {
    let mut w = three_in_a_call();
    // The server loses Carol's connection first: her media may still flow, she stays.
    for peer in [ALICE, BOB] {
        let left = ServerMessage::MemberLeft {
            call_id: w.groups.keys().next().unwrap().clone(),
            id: w.peers[CAROL].id.clone(),
            reason: HangupReason::Failed,
        };
        w.server_says(peer, left);
    }
    assert_eq!(members(&w, ALICE), all_connected(&["Bob", "Carol"]));
    // Then her media stops: she is gone at once, not after the 10 s grace.
    w.vanish(CAROL);
    assert_eq!(members(&w, ALICE), all_connected(&["Bob"]));
    assert_eq!(members(&w, BOB), all_connected(&["Alice"]));
}

#[test]
fn a_pair_that_cannot_connect_does_not_break_the_call() {
    let mut w = three_in_a_call();
    // The Bob-Carol connection fails; Alice's links are untouched.
    let bob_to_carol = *w.peers[BOB]
        .links
        .iter()
        .find(|(_, l)| l.closed.is_none() && l.remote.is_some_and(|(p, _)| p == CAROL))
        .unwrap()
        .0;
    w.send_link_event(BOB, bob_to_carol, LinkEvent::Failed);
    w.settle();
    assert_eq!(
        members(&w, BOB),
        [
            ("Alice".to_owned(), MemberStatus::Connected),
            ("Carol".to_owned(), MemberStatus::Unreachable)
        ]
    );
    assert_eq!(members(&w, ALICE), all_connected(&["Bob", "Carol"]));
    assert_eq!(open_links(&w, BOB), 1);
}

#[test]
fn invitations_that_cannot_be_made_or_are_declined_say_why() {
    let mut w = World::new(4);
    // Not in a call: nobody to invite into.
    invite(&mut w, ALICE, CAROL);
    assert!(w.peers[ALICE].events.iter().any(|e| matches!(e,
        Event::Problem(Problem::CannotInvite(why)) if why.contains("connected"))));
    w.call(ALICE, BOB);
    w.command(BOB, Command::Accept);
    // A version-1 client cannot join a group.
    let mut roster: Vec<PeerInfo> = Vec::new();
    for p in [BOB, CAROL, DAVE] {
        roster.push(PeerInfo {
            id: w.peers[p].id.clone(),
            name: w.peers[p].name.to_owned(),
            busy: false,
            protocol: if p == DAVE { 1 } else { 2 },
        });
    }
    let now = w.now;
    w.peers[ALICE]
        .core
        .handle(Input::Signaling(Signaling::Roster(roster)), now);
    invite(&mut w, ALICE, DAVE);
    assert!(w.peers[ALICE].events.iter().any(|e| matches!(e,
        Event::Problem(Problem::CannotInvite(why)) if why.contains("Dave's app"))));
    assert!(connected(&w, ALICE), "the call of two goes on");

    // Carol declines: Alice is told, and the call of two goes on as a group of two.
    invite(&mut w, ALICE, CAROL);
    w.command(CAROL, Command::Decline);
    assert!(w.peers[ALICE].events.iter().any(|e| matches!(e,
        Event::Problem(Problem::CannotInvite(why)) if why.contains("Carol declined"))));
    assert_eq!(members(&w, ALICE), all_connected(&["Bob"]));
    assert!(matches!(w.peers[CAROL].state(), CallState::Ended(_)));
}

#[test]
fn someone_in_a_group_call_is_busy_for_everyone_else() {
    let mut w = World::new(4);
    w.call(ALICE, BOB);
    w.command(BOB, Command::Accept);
    invite(&mut w, ALICE, CAROL);
    w.command(CAROL, Command::Accept);
    w.call(DAVE, CAROL);
    assert!(
        w.peers[DAVE]
            .ended()
            .describe()
            .contains("Carol is in another call")
    );
    assert_eq!(members(&w, CAROL), all_connected(&["Alice", "Bob"]));
}

#[test]
fn a_members_network_change_restarts_ice_on_each_of_its_links() {
    let mut w = three_in_a_call();
    w.input(CAROL, Input::NetworkChanged);
    assert_eq!(w.peers[CAROL].restarts, 2, "one per other member");
    assert_eq!(
        (
            w.peers[ALICE].restarts_answered,
            w.peers[BOB].restarts_answered
        ),
        (1, 1)
    );
    assert_eq!(members(&w, CAROL), all_connected(&["Alice", "Bob"]));
    assert_eq!(members(&w, ALICE), all_connected(&["Bob", "Carol"]));
    w.advance(Duration::from_secs(30));
    assert_eq!(w.peers[CAROL].restarts, 2);
}

#[test]
fn a_link_down_two_seconds_restarts_and_the_member_who_offered_first_wins() {
    let mut w = three_in_a_call();
    // The path between Alice and Carol breaks, both ends see it.
    for (peer, other) in [(ALICE, CAROL), (CAROL, ALICE)] {
        let link = *w.peers[peer]
            .links
            .iter()
            .find(|(_, l)| l.remote.is_some_and(|(p, _)| p == other))
            .map(|(id, _)| id)
            .unwrap();
        w.send_link_event(peer, link, LinkEvent::Disconnected);
    }
    w.settle();
    assert_eq!(
        members(&w, ALICE),
        [
            ("Bob".to_owned(), MemberStatus::Connected),
            ("Carol".to_owned(), MemberStatus::Reconnecting)
        ]
    );
    w.advance(Duration::from_secs(2));
    // Both restarted; Alice offered to Carol when she joined, so Alice's offer won.
    assert_eq!((w.peers[ALICE].restarts, w.peers[CAROL].restarts), (1, 1));
    assert_eq!(
        (
            w.peers[ALICE].restarts_answered,
            w.peers[CAROL].restarts_answered
        ),
        (0, 1)
    );
    assert_eq!(members(&w, ALICE), all_connected(&["Bob", "Carol"]));
    assert_eq!(members(&w, CAROL), all_connected(&["Alice", "Bob"]));
    w.advance(Duration::from_secs(30));
    assert_eq!(members(&w, ALICE), all_connected(&["Bob", "Carol"]));
}

#[test]
fn a_file_goes_to_every_member_one_transfer_each() {
    let mut w = three_in_a_call();
    w.command(
        BOB,
        Command::SendFile {
            path: "/home/bob/plan.pdf".into(),
            name: "plan.pdf".into(),
            size: 1000,
            mime: Some("application/pdf".into()),
        },
    );
    // One hash for the file, for a transfer to each of the two others.
    let (files, _) = w.peers[BOB].hash_requests.pop().expect("a hash request");
    assert_eq!(files.len(), 2);
    let sha256 = Ok("ab".repeat(32));
    w.input(BOB, Input::FileHashed { files, sha256 });
    let offers = |w: &World, peer: usize| -> Vec<Transfer> {
        w.peers[peer]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::File(t) if t.state == TransferState::Offered => Some(t.clone()),
                _ => None,
            })
            .collect()
    };
    let mut to: Vec<String> = offers(&w, BOB).into_iter().map(|t| t.peer_name).collect();
    to.sort();
    assert_eq!(to, ["Alice", "Carol"]);
    for peer in [ALICE, CAROL] {
        let [offer] = &offers(&w, peer)[..] else {
            panic!("{:?}", offers(&w, peer));
        };
        assert_eq!(
            (offer.peer_name.as_str(), offer.name.as_str()),
            ("Bob", "plan.pdf")
        );
    }
    // Alice takes it, Carol does not: each answer reaches its own transfer.
    let alice_offer = offers(&w, ALICE)[0].file;
    let carol_offer = offers(&w, CAROL)[0].file;
    w.command(ALICE, Command::AcceptFile(alice_offer));
    w.command(CAROL, Command::DeclineFile(carol_offer));
    let last = |w: &World, name: &str| {
        w.peers[BOB].events.iter().rev().find_map(|e| match e {
            Event::File(t) if t.peer_name == name => Some(t.state.clone()),
            _ => None,
        })
    };
    assert_eq!(last(&w, "Alice"), Some(TransferState::Transferring));
    assert_eq!(
        last(&w, "Carol"),
        Some(TransferState::Declined { by_us: false })
    );
}
