//! Calls end to end: two call engines, the real signaling server, real WebRTC over
//! loopback, real codecs, synthetic media.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use confab_call::{
    CallProblem, CallState, ChatEvent, Command, EngineEvent, Problem, ServerStatus, Timeouts,
};
use confab_netsim::{LinkConditions, SimulatedLink};
use confab_protocol::{HangupReason, PeerId};

use support::{PATIENCE, Peer, PeerSetup, Server, call_and_accept, connect, temp_path};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_carries_video_audio_and_chat_both_ways() {
    let server = Server::start().await;
    let bob_wav = temp_path("bob-hears.wav");
    let alice_wav = temp_path("alice-hears.wav");
    let mut alice = Peer::join(
        &server,
        "Alice",
        PeerSetup {
            audio: confab_call::AudioInput::Tone(440.0),
            record_audio: Some(alice_wav.clone()),
            ..PeerSetup::default()
        },
    )
    .await;
    let mut bob = Peer::join(
        &server,
        "Bob",
        PeerSetup {
            audio: confab_call::AudioInput::Tone(660.0),
            record_audio: Some(bob_wav.clone()),
            ..PeerSetup::default()
        },
    )
    .await;

    let started = Instant::now();
    connect(&mut alice, &mut bob).await;
    let connect_time = started.elapsed();
    assert!(
        connect_time < Duration::from_secs(5),
        "connected after {connect_time:?}"
    );

    // Video: at least 100 frames decoded at the sent size, frame numbers only going up.
    let mut numbers = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while numbers.len() < 100 {
        assert!(
            Instant::now() < deadline,
            "only {} frames in time",
            numbers.len()
        );
        if let Some(frame) = bob
            .engine
            .remote_video
            .wait_take(Duration::from_millis(200))
        {
            assert_eq!((frame.width, frame.height), (640, 480));
            assert_eq!(frame.rgba.len(), 640 * 480 * 4);
            let stamp = frame
                .stamp
                .expect("every decoded test-pattern frame carries its stamp");
            numbers.push(stamp.frame_number);
        }
    }
    assert!(
        numbers.windows(2).all(|w| w[1] > w[0]),
        "frame numbers went back: {numbers:?}"
    );

    // Stats, once a second: what the app's stats overlay shows.
    let stats = bob
        .wait_for(|e| match e {
            EngineEvent::Stats(s) if s.video_in.is_some() && s.rtt_ms.is_some() => Some(s.clone()),
            _ => None,
        })
        .await;
    assert_eq!(stats.state, "connected");
    let video_in = stats.video_in.unwrap();
    assert_eq!((video_in.width, video_in.height), (640, 480));
    assert!(video_in.fps > 15.0, "{stats:?}");
    assert!(stats.video_out.is_some_and(|v| v.width == 640), "{stats:?}");
    assert!(
        stats.bitrate_in_bps > 100_000 && stats.bitrate_out_bps > 100_000,
        "{stats:?}"
    );
    assert!(stats.target_bitrate_bps.is_some(), "{stats:?}");
    assert!(
        stats
            .local_candidate
            .as_deref()
            .is_some_and(|c| c.contains("host")),
        "{stats:?}"
    );
    assert!(stats.remote_candidate.is_some(), "{stats:?}");

    // Chat both ways, with delivery receipts.
    alice.send(Command::SendChat("hello Bob".into()));
    let sent = alice.chat(|c| matches!(c, ChatEvent::Sent { .. })).await;
    let ChatEvent::Sent { id, .. } = sent else {
        unreachable!()
    };
    let received = bob.chat(|c| matches!(c, ChatEvent::Received { .. })).await;
    assert!(
        matches!(&received, ChatEvent::Received { text, id: rid, .. } if text == "hello Bob" && *rid == id)
    );
    assert_eq!(
        alice
            .chat(|c| matches!(c, ChatEvent::Delivered { .. }))
            .await,
        ChatEvent::Delivered { id }
    );
    bob.send(Command::SendChat("hi Alice 👋".into()));
    let received = alice
        .chat(|c| matches!(c, ChatEvent::Received { .. }))
        .await;
    assert!(matches!(received, ChatEvent::Received { text, .. } if text == "hi Alice 👋"));
    bob.chat(|c| matches!(c, ChatEvent::Delivered { .. })).await;
    // Too long: refused with a reason, nothing sent.
    alice.send(Command::SendChat("x".repeat(4001)));
    let failed = alice.chat(|c| matches!(c, ChatEvent::Failed { .. })).await;
    assert!(matches!(failed, ChatEvent::Failed { reason, .. } if reason.contains("4000")));

    // Hang up: both sides end, Bob hears that Alice hung up.
    alice.send(Command::HangUp);
    assert_eq!(alice.ended().await.reason, HangupReason::Ended);
    let end = bob.ended().await;
    assert_eq!((end.reason, end.by_peer), (HangupReason::Ended, true));
    let summary = bob.summary().await;
    assert!(summary.video_frames_decoded >= 100, "{summary:?}");
    assert!(summary.audio_packets_received >= 50, "{summary:?}");
    assert_eq!(summary.video_size_in, Some((640, 480)));
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;

    // Audio: each side heard the other's tone.
    for (path, hz) in [(bob_wav, 440.0), (alice_wav, 660.0)] {
        let heard = support::heard_frequency(&path);
        assert!(
            (heard - hz).abs() <= hz * 0.01,
            "{}: heard {heard} Hz, sent {hz} Hz",
            path.display()
        );
        std::fs::remove_file(path).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decline_busy_and_cancel_end_calls_with_their_reasons() {
    let server = Server::start().await;
    let (mut alice, mut bob) = support::alice_and_bob(&server, PeerSetup::quiet()).await;
    let mut carol = Peer::join(&server, "Carol", PeerSetup::quiet()).await;
    let bob_id = alice.sees("Bob").await;

    // Declined.
    alice.send(Command::Call {
        peer: bob_id.clone(),
    });
    bob.incoming().await;
    bob.send(Command::Decline);
    let end = alice.ended().await;
    assert_eq!((end.reason, end.by_peer), (HangupReason::Declined, true));
    assert_eq!(end.describe(), "Bob declined the call");
    assert_eq!(bob.ended().await.reason, HangupReason::Declined);

    // Cancelled before an answer.
    alice.send(Command::Call {
        peer: bob_id.clone(),
    });
    bob.incoming().await;
    alice.send(Command::HangUp);
    assert_eq!(alice.ended().await.reason, HangupReason::Cancelled);
    let end = bob.ended().await;
    assert_eq!((end.reason, end.by_peer), (HangupReason::Cancelled, true));

    // Busy: Bob is in a call with Alice when Carol calls.
    support::connect(&mut alice, &mut bob).await;
    let bob_for_carol = carol.sees("Bob").await;
    carol.send(Command::Call {
        peer: bob_for_carol,
    });
    let end = carol.ended().await;
    assert_eq!((end.reason, end.by_peer), (HangupReason::Busy, true));
    assert_eq!(end.describe(), "Bob is in another call");
    // Bob's call with Alice is unaffected.
    alice.send(Command::HangUp);
    assert_eq!(bob.ended().await.reason, HangupReason::Ended);

    for peer in [alice, bob, carol] {
        peer.shutdown().await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glare_ends_in_one_connected_call() {
    let server = Server::start().await;
    let (mut alice, mut bob) = support::alice_and_bob(&server, PeerSetup::quiet()).await;
    let bob_id = alice.sees("Bob").await;
    let alice_id = bob.sees("Alice").await;
    // Both call at once.
    alice.send(Command::Call { peer: bob_id });
    bob.send(Command::Call { peer: alice_id });
    alice.connected().await;
    bob.connected().await;
    alice.send(Command::HangUp);
    assert_eq!(bob.ended().await.reason, HangupReason::Ended);
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_call_times_out_on_both_sides() {
    let server = Server::start().await;
    let setup = PeerSetup {
        timeouts: Timeouts {
            ring: Duration::from_secs(1),
            ..Timeouts::default()
        },
        ..PeerSetup::quiet()
    };
    let (mut alice, mut bob) = support::alice_and_bob(&server, setup).await;
    let bob_id = alice.sees("Bob").await;
    alice.send(Command::Call { peer: bob_id });
    bob.incoming().await;
    let end = alice.ended().await;
    assert_eq!(end.reason, HangupReason::Timeout);
    assert_eq!(end.describe(), "No answer from Bob");
    assert_eq!(bob.ended().await.reason, HangupReason::Timeout);
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calling_someone_who_is_not_there() {
    let server = Server::start().await;
    let mut alice = Peer::join(&server, "Alice", PeerSetup::default()).await;
    // Not in the roster: refused before anything is sent.
    alice.send(Command::Call {
        peer: PeerId::new("0123456789abcdef0123456789abcdef").unwrap(),
    });
    let problem = alice
        .wait_for(|e| match e {
            EngineEvent::Problem(p) => Some(p.clone()),
            _ => None,
        })
        .await;
    assert_eq!(problem, Problem::Call(CallProblem::PeerOffline));
    assert!(
        problem.to_string().contains("no longer online"),
        "{problem}"
    );

    alice.shutdown().await;
    server.shutdown().await;
}

/// The signaling server goes away mid-call: media goes on peer to peer. Then the peer (a
/// `confab headless` process) is killed: with no server to tell us, ICE notices, and the
/// call ends as failed within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_outlives_the_server_and_a_killed_peer_ends_it_as_failed() {
    let server = Server::start().await;
    let mut alice = Peer::join(&server, "Alice", PeerSetup::default()).await;
    let mut bob = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(["headless", "--server", &server.url(), "--name", "Bob"])
        .args(["--answer", "--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let bob_id = alice.sees("Bob").await;
    alice.send(Command::Call { peer: bob_id });
    alice.connected().await;

    server.shutdown().await;
    alice
        .wait_for(|e| matches!(e, EngineEvent::Server(ServerStatus::Offline { .. })).then_some(()))
        .await;
    // Frames keep coming after the server is gone.
    let frames = alice.pictures(30);
    assert_eq!(frames, 30, "video stopped with the server");

    bob.kill().unwrap();
    bob.wait().unwrap();
    let killed = Instant::now();
    let end = alice.ended().await;
    assert_eq!(end.reason, HangupReason::Failed, "{end:?}");
    eprintln!(
        "the call failed {:?} after the peer was killed",
        killed.elapsed()
    );
    alice.shutdown().await;
}

/// With the signaling server gone, hanging up still reaches the peer at once: the `bye` on
/// the chat channel ends its call as `ended`, not as `failed` seconds later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_without_a_server_says_bye_over_the_data_channel() {
    let server = Server::start().await;
    let (mut alice, mut bob) = support::alice_and_bob(&server, PeerSetup::quiet()).await;
    connect(&mut alice, &mut bob).await;
    server.shutdown().await;
    for peer in [&mut alice, &mut bob] {
        peer.wait_for(|e| {
            matches!(e, EngineEvent::Server(ServerStatus::Offline { .. })).then_some(())
        })
        .await;
    }
    alice.send(Command::HangUp);
    let hung_up = Instant::now();
    let end = bob.ended().await;
    assert_eq!((end.reason, end.by_peer), (HangupReason::Ended, true));
    assert!(
        hung_up.elapsed() < Duration::from_secs(2),
        "took {:?}",
        hung_up.elapsed()
    );
    alice.shutdown().await;
    bob.shutdown().await;
}

/// The signaling server restarts mid-call: media goes on peer to peer, both clients
/// reconnect on their own, reappear in each other's lists under their new ids, hang up
/// over the data channel, and call again through the new server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_brings_both_back_while_the_call_goes_on() {
    let server = Server::start().await;
    let addr = server.addr;
    let mut alice = Peer::join(&server, "Alice", PeerSetup::default()).await;
    let mut bob = Peer::join(&server, "Bob", PeerSetup::quiet()).await;
    let (old_alice, old_bob) = (alice.id.clone(), bob.id.clone());
    connect(&mut alice, &mut bob).await;

    server.shutdown().await;
    for peer in [&mut alice, &mut bob] {
        peer.wait_for(|e| {
            matches!(e, EngineEvent::Server(ServerStatus::Offline { .. })).then_some(())
        })
        .await;
    }
    let server = Server::start_at(addr).await;
    let restarted = Instant::now();
    for (peer, other, old_id) in [
        (&mut alice, "Bob", &old_bob),
        (&mut bob, "Alice", &old_alice),
    ] {
        let new_id = peer
            .wait_for(|e| match e {
                EngineEvent::Roster(peers) => peers
                    .iter()
                    .find(|p| p.name == other && &p.id != old_id)
                    .map(|p| p.id.clone()),
                EngineEvent::Call(confab_call::CallState::Ended(end)) => {
                    panic!("the call ended with the server: {end:?}")
                }
                _ => None,
            })
            .await;
        assert_ne!(&new_id, old_id);
    }
    eprintln!(
        "both back in each other's lists {:?} after the restart",
        restarted.elapsed()
    );

    // The call never stopped: pictures and chat still flow.
    let frames = alice.pictures(30);
    assert_eq!(frames, 30, "video stopped after the restart");
    bob.send(Command::SendChat("still here".into()));
    alice
        .chat(|c| matches!(c, ChatEvent::Received { text, .. } if text == "still here"))
        .await;

    alice.send(Command::HangUp);
    let end = bob.ended().await;
    assert_eq!((end.reason, end.by_peer), (HangupReason::Ended, true));
    alice.ended().await;

    // A new call goes through the new server.
    connect(&mut alice, &mut bob).await;
    alice.send(Command::HangUp);
    bob.ended().await;

    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
}

/// The chat channel opens a round trip or two after the call connects. A message typed in
/// that moment waits for it and is delivered, in order; if the call ends first the user is
/// told it was not sent. A 100 ms link delay each way makes the moment long enough to hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_typed_before_the_channel_opens_waits_for_it() {
    let server = Server::start().await;
    let mut alice = Peer::join(&server, "Alice", delayed_100_ms()).await;
    let mut bob = Peer::join(&server, "Bob", delayed_100_ms()).await;

    // Hung up before the channel opened: not sent, and the user hears of it.
    call_and_accept(&mut alice, &mut bob).await;
    alice.send(Command::SendChat("lost in the hang-up".into()));
    alice.send(Command::HangUp);
    let mut failed = None;
    let mut ended = false;
    while failed.is_none() || !ended {
        match alice.wait_for(|e| Some(e.clone())).await {
            EngineEvent::Chat(chat @ ChatEvent::Failed { .. }) => failed = Some(chat),
            EngineEvent::Call(CallState::Ended(_)) => ended = true,
            _ => {}
        }
    }
    assert!(
        matches!(&failed, Some(ChatEvent::Failed { id: Some(_), text, reason })
            if text == "lost in the hang-up" && reason.contains("before the chat connected")),
        "{failed:?}"
    );
    bob.ended().await;

    // Typed at once, two messages: both arrive, in order, once the channel is open.
    call_and_accept(&mut alice, &mut bob).await;
    alice.send(Command::SendChat("first".into()));
    alice.send(Command::SendChat("second".into()));
    let mut alice_chat = Vec::new();
    while !alice_chat.contains(&ChatEvent::Open) {
        alice_chat.push(alice.chat(|_| true).await);
    }
    assert!(
        matches!(alice_chat[0], ChatEvent::Sent { .. }),
        "the channel was already open, so the test proves nothing: {alice_chat:?}"
    );
    let mut bob_heard = Vec::new();
    while bob_heard.len() < 2 {
        if let ChatEvent::Received { text, .. } =
            bob.chat(|c| matches!(c, ChatEvent::Received { .. })).await
        {
            bob_heard.push(text);
        }
    }
    assert_eq!(bob_heard, ["first", "second"]);
    alice.send(Command::HangUp);
    alice.ended().await;
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
}

/// The round trip that paces retransmissions comes from the peer's RTCP reception reports
/// as they arrive (not from the once-a-second statistics): on a path that delays each
/// direction by 100 ms, both sides measure about 200 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_trip_that_paces_retransmissions_comes_from_reception_reports() {
    let server = Server::start().await;
    let mut alice = Peer::join(&server, "Alice", delayed_100_ms()).await;
    let mut bob = Peer::join(&server, "Bob", delayed_100_ms()).await;
    connect(&mut alice, &mut bob).await;
    for peer in [&mut alice, &mut bob] {
        let rtt = peer
            .wait_for(|e| match e {
                EngineEvent::Stats(s) => s.rtcp_rtt_ms,
                _ => None,
            })
            .await;
        assert!((190.0..400.0).contains(&rtt), "{}: {rtt} ms", peer.name);
    }
    alice.send(Command::HangUp);
    bob.ended().await;
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
}

/// A quiet peer whose every datagram takes 100 ms longer.
fn delayed_100_ms() -> PeerSetup {
    PeerSetup {
        link: Some(SimulatedLink::new(
            LinkConditions {
                delay: Duration::from_millis(100),
                ..LinkConditions::default()
            },
            7,
        )),
        ..PeerSetup::quiet()
    }
}

/// The driver's timing, in tokio's paused clock: it gives the core tokio's time and sleeps
/// until the core's next deadline, so an unanswered call rings for the real 45 s on both
/// sides, to the millisecond of fake time, and those 45 s take no time.
#[tokio::test(start_paused = true)]
async fn an_unanswered_call_rings_exactly_the_timeout_in_fake_time() {
    let server = Server::start().await;
    let (mut alice, mut bob) = support::alice_and_bob(&server, PeerSetup::quiet()).await;
    let bob_id = alice.sees("Bob").await;
    let ring = Timeouts::default().ring;
    let called = tokio::time::Instant::now();
    let wall = std::time::Instant::now();
    alice.send(Command::Call { peer: bob_id });
    bob.incoming().await;
    for peer in [&mut alice, &mut bob] {
        // Past PATIENCE in fake time: wait on the events directly.
        let end = tokio::time::timeout(ring * 2, async {
            loop {
                match peer.events.recv().await.expect("the engine stopped") {
                    EngineEvent::Call(CallState::Ended(end)) => return end,
                    _ => continue,
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{}: the call did not time out", peer.name));
        let rang = tokio::time::Instant::now() - called;
        assert_eq!(end.reason, HangupReason::Timeout, "{}", peer.name);
        assert!(
            rang >= ring && rang < ring + Duration::from_millis(100),
            "{}: rang {rang:?}",
            peer.name
        );
    }
    // Had the driver given the core another clock than the one it sleeps on, the ring
    // would have lasted its 45 s on the wall clock too, the driver spinning all along.
    assert!(
        wall.elapsed() < ring / 2,
        "{:?} of real time",
        wall.elapsed()
    );
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
}
