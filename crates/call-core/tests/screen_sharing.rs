//! Screen sharing between call cores in memory (the world in `world/`): what the driver
//! is told to capture, where each link sends the screen, what the peers see, and when it
//! stops.

// A test: it may panic, and it reads the clock once, for the start of its fake time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(clippy::disallowed_methods)]

mod world;

use confab_call_core::call::SWITCHES_WAIT;
use confab_call_core::machine::CallState;
use confab_call_core::{Command, Event, LinkEvent, ScreenRoute};
use confab_protocol::chat::ChatMessage;
use world::*;

/// Whether `peer` was last told that the peer at the other end shares its screen.
fn sees_sharing(w: &World, peer: usize) -> Option<bool> {
    w.peers[peer].events.iter().rev().find_map(|e| match e {
        Event::PeerState { sharing, .. } => Some(*sharing),
        _ => None,
    })
}

/// What `peer` was last told of its own sharing.
fn sharing(w: &World, peer: usize) -> Option<bool> {
    w.peers[peer].events.iter().rev().find_map(|e| match e {
        Event::Sharing(on) => Some(*on),
        _ => None,
    })
}

#[test]
fn a_shared_screen_goes_on_a_second_track_and_stops_with_stop() {
    let mut w = World::in_a_call();
    assert_eq!(w.peers[ALICE].link().screen, ScreenRoute::Off);
    assert!(!w.peers[ALICE].screen_open, "nothing captured before Share");

    w.command(ALICE, Command::SetSharing(true));
    assert!(w.peers[ALICE].screen_open);
    assert_eq!(sharing(&w, ALICE), Some(true));
    // Bob said (in his `state`) that he takes a screen: it goes next to the camera.
    assert_eq!(w.peers[ALICE].link().screen, ScreenRoute::SecondTrack);
    assert!(w.peers[ALICE].camera_open, "the camera keeps going");
    assert_eq!(sees_sharing(&w, BOB), Some(true));

    w.command(ALICE, Command::SetSharing(false));
    assert!(!w.peers[ALICE].screen_open);
    assert_eq!(sharing(&w, ALICE), Some(false));
    assert_eq!(w.peers[ALICE].link().screen, ScreenRoute::Off);
    assert_eq!(sees_sharing(&w, BOB), Some(false));
}

#[test]
fn sharing_stops_when_the_call_ends() {
    let mut w = World::in_a_call();
    w.command(BOB, Command::SetSharing(true));
    assert_eq!(sees_sharing(&w, ALICE), Some(true));
    w.command(ALICE, Command::HangUp);
    assert!(matches!(w.peers[BOB].state(), CallState::Ended(_)));
    assert!(
        !w.peers[BOB].screen_open,
        "the capture closes with the call"
    );
    assert_eq!(sharing(&w, BOB), Some(false));
}

#[test]
fn nothing_is_shared_outside_a_call() {
    let mut w = World::new(2);
    w.command(ALICE, Command::SetSharing(true));
    assert!(!w.peers[ALICE].screen_open);
    assert_eq!(sharing(&w, ALICE), None);
}

#[test]
fn a_peer_that_cannot_take_two_pictures_gets_the_screen_instead_of_the_camera() {
    let mut w = World::in_a_call();
    let link = *w.peers[ALICE].links.keys().next().unwrap();
    // An older Confab (or another client) says its switches without `screen`.
    let old_state = ChatMessage::State {
        muted: false,
        camera_off: false,
        screen: None,
    };
    let bytes = old_state.to_json().into_bytes();
    w.send_link_event(ALICE, link, LinkEvent::ChatMessage(bytes));
    w.settle();
    // Alice's camera is off: Bob is told so, until the screen takes its place.
    w.command(ALICE, Command::SetCamera(false));
    assert_eq!(camera_off(&w, BOB), Some(true));
    w.command(ALICE, Command::SetSharing(true));
    assert_eq!(w.peers[ALICE].link().screen, ScreenRoute::InPlaceOfCamera);
    assert_eq!(
        camera_off(&w, BOB),
        Some(false),
        "the screen is her picture"
    );
    w.command(ALICE, Command::SetSharing(false));
    assert_eq!(w.peers[ALICE].link().screen, ScreenRoute::Off);
    assert_eq!(camera_off(&w, BOB), Some(true));
}

/// Whether `peer` was last told that the other side's camera is off.
fn camera_off(w: &World, peer: usize) -> Option<bool> {
    w.peers[peer].events.iter().rev().find_map(|e| match e {
        Event::PeerState { camera_off, .. } => Some(*camera_off),
        _ => None,
    })
}

#[test]
fn a_peer_that_says_nothing_for_a_second_gets_the_screen_instead_of_the_camera() {
    let mut w = World::new(2);
    w.chat_opens = false;
    w.call(ALICE, BOB);
    w.command(BOB, Command::Accept);
    w.command(ALICE, Command::SetSharing(true));
    assert!(w.peers[ALICE].screen_open);
    // Connected, but no `state` from Bob yet: it usually comes a round trip later.
    assert_eq!(w.peers[ALICE].link().screen, ScreenRoute::Off);
    w.advance(SWITCHES_WAIT / 2);
    assert_eq!(w.peers[ALICE].link().screen, ScreenRoute::Off);
    // A client may never send one: then the one video stream every peer takes.
    w.advance(SWITCHES_WAIT / 2);
    assert_eq!(w.peers[ALICE].link().screen, ScreenRoute::InPlaceOfCamera);
    // And if it does after all, saying it takes a screen, the camera comes back.
    let link = *w.peers[ALICE].links.keys().next().unwrap();
    let state = ChatMessage::State {
        muted: false,
        camera_off: false,
        screen: Some(false),
    };
    let bytes = state.to_json().into_bytes();
    w.send_link_event(ALICE, link, LinkEvent::ChatMessage(bytes));
    w.settle();
    assert_eq!(w.peers[ALICE].link().screen, ScreenRoute::SecondTrack);
}

#[test]
fn in_a_group_call_each_member_sees_who_shares() {
    let mut w = World::new(3);
    w.call(ALICE, BOB);
    w.command(BOB, Command::Accept);
    let carol = w.peers[CAROL].id.clone();
    w.command(ALICE, Command::Invite { peer: carol });
    w.command(CAROL, Command::Accept);
    w.command(CAROL, Command::SetSharing(true));
    for peer in [ALICE, BOB] {
        let CallState::Group { members } = w.peers[peer].state() else {
            panic!("{peer} is {:?}", w.peers[peer].state());
        };
        let shares: Vec<(&str, bool)> = members
            .iter()
            .map(|m| (m.name.as_str(), m.sharing))
            .collect();
        assert!(shares.contains(&("Carol", true)), "{shares:?}");
        assert!(
            shares.iter().filter(|(_, on)| *on).count() == 1,
            "{shares:?}"
        );
    }
    let routes: Vec<ScreenRoute> = w.peers[CAROL].links.values().map(|l| l.screen).collect();
    assert_eq!(routes, [ScreenRoute::SecondTrack; 2]);
}
