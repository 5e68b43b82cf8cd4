//! Calls over a bad network: two real call engines, the real signaling server, real
//! WebRTC and codecs over loopback, with every datagram each side sends going through a
//! simulated link (`confab_netsim`): random and bursty loss, jitter with
//! reordering, a bandwidth cap that drops, short and long outages.
//!
//! The pass criteria are issue 6's. Each test prints what it measured (`--nocapture`);
//! docs/reliability.md has the numbers.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use confab_call::{CallStats, ChatEvent, Command, EngineEvent};
use confab_netsim::{LinkConditions, SimulatedLink};
use confab_protocol::HangupReason;

use support::{Peer, PeerSetup, Server, connect, temp_path};

/// Two video calls at once on a two-core machine starve each other and measure the CPU,
/// not the network: these tests take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long each condition is measured.
const WINDOW: Duration = Duration::from_secs(8);

/// Decoded frames as the receiving app sees them, taken from the engine's remote-video
/// slot by a thread of their own.
struct VideoWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Seen>>,
}

struct Seen {
    at: Instant,
    /// `None`: the picture's stamp did not read back, so the picture is damaged.
    frame_number: Option<u32>,
}

impl VideoWatch {
    fn start(peer: &Peer) -> VideoWatch {
        let slot = peer.engine.remote_video.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                if let Some(frame) = slot.wait_take(Duration::from_millis(20)) {
                    seen.push(Seen {
                        at: Instant::now(),
                        frame_number: frame.stamp.map(|s| s.frame_number),
                    });
                }
            }
            seen
        });
        VideoWatch { stop, thread }
    }

    fn finish(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the video watcher panicked")
    }
}

#[derive(Debug)]
struct VideoReport {
    fps: f64,
    /// The longest time without a new picture.
    longest_freeze: Duration,
    /// Pauses over 200 ms.
    freezes: usize,
    damaged: usize,
    out_of_order: usize,
}

fn video_report(seen: &[Seen], from: Instant, to: Instant) -> VideoReport {
    let seen: Vec<&Seen> = seen.iter().filter(|s| s.at >= from && s.at <= to).collect();
    let mut times = vec![from];
    times.extend(seen.iter().map(|s| s.at));
    times.push(to);
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let numbers: Vec<u32> = seen.iter().filter_map(|s| s.frame_number).collect();
    VideoReport {
        fps: seen.len() as f64 / (to - from).as_secs_f64(),
        longest_freeze: gaps.iter().copied().max().unwrap_or_default(),
        freezes: gaps
            .iter()
            .filter(|g| **g > Duration::from_millis(200))
            .count(),
        damaged: seen.iter().filter(|s| s.frame_number.is_none()).count(),
        out_of_order: numbers.windows(2).filter(|w| w[1] <= w[0]).count(),
    }
}

fn link(conditions: &LinkConditions, seed: u64) -> SimulatedLink {
    SimulatedLink::new(conditions.clone(), seed)
}

/// Alice and Bob, each sending through its own link with these conditions; Bob records
/// what he hears.
async fn pair(server: &Server, conditions: &LinkConditions, bob_hears: &std::path::Path) -> Pair {
    let alice_link = link(conditions, 1);
    let bob_link = link(conditions, 2);
    let alice = Peer::join(
        server,
        "Alice",
        PeerSetup {
            link: Some(alice_link.clone()),
            ..PeerSetup::default()
        },
    )
    .await;
    let bob = Peer::join(
        server,
        "Bob",
        PeerSetup {
            audio: confab_call::AudioInput::Tone(660.0),
            record_audio: Some(bob_hears.to_owned()),
            link: Some(bob_link.clone()),
            ..PeerSetup::default()
        },
    )
    .await;
    Pair {
        alice,
        bob,
        alice_link,
        bob_link,
    }
}

struct Pair {
    alice: Peer,
    bob: Peer,
    alice_link: SimulatedLink,
    bob_link: SimulatedLink,
}

impl Pair {
    /// Returns what Bob reported meanwhile (and had not been read).
    async fn hang_up_and_shut_down(mut self) -> Vec<EngineEvent> {
        self.alice.send(Command::HangUp);
        assert_eq!(self.alice.ended().await.reason, HangupReason::Ended);
        let summary = self.alice.summary().await;
        println!(
            "Alice held back {} of the retransmissions Bob asked for; she sent {} keyframes \
             ({} asked for)",
            summary.retransmissions_held_back,
            summary.video_keyframes_sent,
            summary.keyframe_requests_received
        );
        let mut late = Vec::new();
        while let Ok(event) = self.bob.events.try_recv() {
            late.push(event);
        }
        self.alice.shutdown().await;
        self.bob.shutdown().await;
        late
    }
}

fn received_chats<'a>(events: impl IntoIterator<Item = &'a EngineEvent>) -> Vec<String> {
    events
        .into_iter()
        .filter_map(|e| match e {
            EngineEvent::Chat(ChatEvent::Received { text, .. }) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn stats<'a>(events: impl IntoIterator<Item = &'a EngineEvent>) -> Vec<CallStats> {
    events
        .into_iter()
        .filter_map(|e| match e {
            EngineEvent::Stats(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn drain(peer: &mut Peer, into: &mut Vec<EngineEvent>) {
    while let Ok(event) = peer.events.try_recv() {
        into.push(event);
    }
}

/// Waits until the first remote picture is decoded.
async fn first_picture(peer: &mut Peer) {
    peer.wait_for(|e| match e {
        EngineEvent::Stats(s) if s.video_in.is_some_and(|v| v.fps > 0.0) => Some(()),
        _ => None,
    })
    .await;
}

/// One call under `conditions` on both sides. For [`WINDOW`] Alice sends a chat message
/// every 200 ms while Bob watches video and records audio; then checks issue 6's criteria
/// (frames per second as given, freezes of at most a second).
async fn lossy_call(name: &str, conditions: LinkConditions, min_fps: f64) {
    lossy_call_within(name, conditions, min_fps, Duration::from_secs(1)).await;
}

/// [`lossy_call`], with the longest freeze allowed.
async fn lossy_call_within(
    name: &str,
    conditions: LinkConditions,
    min_fps: f64,
    max_freeze: Duration,
) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let server = Server::start().await;
    let bob_hears = temp_path(&format!("{}.wav", name.replace(' ', "-")));
    let mut pair = pair(&server, &conditions, &bob_hears).await;
    connect(&mut pair.alice, &mut pair.bob).await;
    let connected = Instant::now();
    let watch = VideoWatch::start(&pair.bob);
    // The window measures the call, not its setup.
    first_picture(&mut pair.bob).await;

    let from = Instant::now();
    let mut sent = Vec::new();
    let mut bob_events = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while from.elapsed() < WINDOW {
        tick.tick().await;
        let text = format!("message {} under {name}", sent.len());
        pair.alice.send(Command::SendChat(text.clone()));
        sent.push(text);
        drain(&mut pair.bob, &mut bob_events);
    }
    let to = Instant::now();
    let video = video_report(&watch.finish(), from, to);
    // The last messages may still be on their way (SCTP retransmits what is lost).
    let deadline = Instant::now() + support::PATIENCE;
    while received_chats(&bob_events).len() < sent.len() && Instant::now() < deadline {
        let event = pair.bob.wait_for(|e| Some(e.clone())).await;
        bob_events.push(event);
    }
    let counters = pair.alice_link.counters();
    let late = pair.hang_up_and_shut_down().await;
    server.shutdown().await;
    let audio_gap = support::longest_audio_gap(&bob_hears, from - connected, to - from);
    std::fs::remove_file(&bob_hears).unwrap();
    bob_events.extend(late);
    let chats = received_chats(&bob_events);

    println!(
        "{name}: {:.1} fps, {} freezes over 200 ms, longest {} ms; longest audio gap {} ms; \
         {} of {} chat messages; Alice's link dropped {} of {} datagrams",
        video.fps,
        video.freezes,
        video.longest_freeze.as_millis(),
        audio_gap.as_millis(),
        chats.len(),
        sent.len(),
        counters.lost,
        counters.datagrams,
    );
    assert!(video.fps >= min_fps, "{name}: {video:?}");
    assert!(video.longest_freeze <= max_freeze, "{name}: {video:?}");
    assert_eq!(
        (video.damaged, video.out_of_order),
        (0, 0),
        "{name}: {video:?}"
    );
    assert!(
        audio_gap <= Duration::from_millis(100),
        "{name}: audio silent for {audio_gap:?}"
    );
    assert_eq!(chats, sent, "{name}: chat lost, doubled or reordered");
    // The link did what it was asked to.
    let expected = conditions.loss * counters.datagrams as f64;
    assert!(
        (counters.lost as f64 - expected).abs() <= expected * 0.5,
        "{name}: the link lost {} of {} datagrams",
        counters.lost,
        counters.datagrams
    );
}

fn loss(share: f64) -> LinkConditions {
    LinkConditions {
        loss: share,
        ..LinkConditions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_loss() {
    lossy_call("5% loss", loss(0.05), 20.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_loss() {
    lossy_call("10% loss", loss(0.10), 10.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_percent_loss() {
    lossy_call("20% loss", loss(0.20), 10.0).await;
}

/// 5% loss on a path with a 200 ms round trip: a retransmission takes longer than the
/// short-path wait for a gap, so the wait grows with the round trip; FlexFEC rebuilds most
/// lost packets without one. The limits are what we measured at worst, with room, so that
/// they catch a regression (docs/reliability.md has the typical numbers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_loss_on_a_long_path() {
    let conditions = LinkConditions {
        delay: Duration::from_millis(100),
        ..loss(0.05)
    };
    let name = "5% loss, 200 ms round trip";
    lossy_call_within(name, conditions, 20.0, Duration::from_secs(2)).await;
}

/// 20% loss on a path with a 100 ms round trip: most lost packets come back by FlexFEC,
/// the rest by a retransmission a round trip later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_percent_loss_on_a_100_ms_path() {
    let conditions = LinkConditions {
        delay: Duration::from_millis(50),
        ..loss(0.20)
    };
    let name = "20% loss, 100 ms round trip";
    lossy_call_within(name, conditions, 20.0, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursty_loss() {
    let conditions = LinkConditions {
        mean_burst: 3.0,
        ..loss(0.05)
    };
    lossy_call("bursty 5% loss", conditions, 20.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_with_reordering() {
    let conditions = LinkConditions {
        delay: Duration::from_millis(50),
        jitter: Duration::from_millis(30),
        ..LinkConditions::default()
    };
    lossy_call("50 ± 30 ms jitter", conditions, 15.0).await;
}

fn set_down(pair: &Pair, down: bool) {
    for link in [&pair.alice_link, &pair.bob_link] {
        link.set(LinkConditions {
            down,
            ..LinkConditions::default()
        });
    }
}

/// The next picture decoded after now, and how long it took.
async fn next_picture(peer: &Peer) -> Duration {
    let slot = peer.engine.remote_video.clone();
    let since = Instant::now();
    slot.take();
    tokio::task::spawn_blocking(move || slot.wait_take(support::PATIENCE))
        .await
        .expect("the waiting thread panicked")
        .expect("no picture came");
    since.elapsed()
}

fn call_ended(events: &[EngineEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, EngineEvent::Call(confab_call::CallState::Ended(_))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3_second_outage_heals_and_a_30_second_one_ends_the_call() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let server = Server::start().await;
    let bob_hears = temp_path("outage.wav");
    let mut pair = pair(&server, &LinkConditions::default(), &bob_hears).await;
    connect(&mut pair.alice, &mut pair.bob).await;
    first_picture(&mut pair.bob).await;

    // 3 s of nothing either way; then the call goes on by itself.
    set_down(&pair, true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    set_down(&pair, false);
    let recovered_in = next_picture(&pair.bob).await;
    let mut events = Vec::new();
    drain(&mut pair.alice, &mut events);
    drain(&mut pair.bob, &mut events);
    assert!(!call_ended(&events), "a 3 s outage ended the call");
    println!(
        "3 s outage: the next picture came {} ms after the network was back",
        recovered_in.as_millis()
    );
    assert!(recovered_in <= Duration::from_secs(5), "{recovered_in:?}");

    // A long outage: both sides give up with `failed` (the outage lasts as long as that
    // takes, well under 30 s) and everything is released.
    set_down(&pair, true);
    let down_at = Instant::now();
    let (alice_end, bob_end) = tokio::join!(pair.alice.ended(), pair.bob.ended());
    let ended_after = down_at.elapsed();
    assert_eq!(alice_end.reason, HangupReason::Failed);
    assert_eq!(bob_end.reason, HangupReason::Failed);
    println!(
        "long outage: both sides ended the call `failed` {:.1} s into it",
        ended_after.as_secs_f64()
    );
    assert!(ended_after < Duration::from_secs(30), "{ended_after:?}");

    // Ready for the next call once the network is back.
    set_down(&pair, false);
    connect(&mut pair.alice, &mut pair.bob).await;
    next_picture(&pair.bob).await;
    pair.hang_up_and_shut_down().await;
    server.shutdown().await;
    let _ = std::fs::remove_file(&bob_hears);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_follows_a_bandwidth_drop() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let server = Server::start().await;
    let bob_hears = temp_path("bandwidth.wav");
    // A deep queue (5 s): a sender that ignored the cap would see its delay pile up.
    let capped = |rate_bps| LinkConditions {
        rate_bps: Some(rate_bps),
        max_queue: Duration::from_secs(5),
        ..LinkConditions::default()
    };
    let mut pair = pair(&server, &capped(2_000_000), &bob_hears).await;
    connect(&mut pair.alice, &mut pair.bob).await;
    first_picture(&mut pair.bob).await;
    let mut events = Vec::new();
    collect_for(&mut pair, Duration::from_secs(8), &mut events).await;
    let before: Vec<u64> = stats(events.iter().map(|(_, _, e)| e))
        .iter()
        .map(|s| s.bitrate_out_bps)
        .collect();

    pair.alice_link.set(capped(300_000));
    let dropped_at = Instant::now();
    let mut events = Vec::new();
    collect_for(&mut pair, Duration::from_secs(15), &mut events).await;
    let alice_out: Vec<(Duration, u64)> = events
        .iter()
        .filter_map(|(at, who, e)| match (who, e) {
            (Who::Alice, EngineEvent::Stats(s)) => Some((*at - dropped_at, s.bitrate_out_bps)),
            _ => None,
        })
        .collect();
    let alice_target: Vec<Option<u32>> = stats(
        events
            .iter()
            .filter(|(_, who, _)| *who == Who::Alice)
            .map(|(_, _, e)| e),
    )
    .iter()
    .map(|s| s.target_bitrate_bps)
    .collect();
    let bob_latency: Vec<(Duration, f64)> = events
        .iter()
        .filter_map(|(at, who, e)| match (who, e) {
            (Who::Bob, EngineEvent::Stats(s)) => {
                Some((*at - dropped_at, s.latency_p95_ms.unwrap_or(f64::NAN)))
            }
            _ => None,
        })
        .collect();
    pair.hang_up_and_shut_down().await;
    server.shutdown().await;
    let _ = std::fs::remove_file(&bob_hears);

    println!("bandwidth: Alice sent {before:?} bit/s at 2 Mbit/s");
    println!("bandwidth: after the drop to 300 kbit/s, Alice sent {alice_out:?}");
    println!("bandwidth: the congestion controller's target {alice_target:?}");
    println!("bandwidth: Bob's capture-to-display latency p95 (ms) {bob_latency:?}");
    // Followed: from some second within 10 s on, no second is far over the cap, and on
    // average the sender stays under it. (A sender that tracks the cap climbs back toward it
    // and may pass it for a second, as one CI run did at 335 kbit/s; the queue that builds
    // then is what the latency check below is for.)
    let over = |bps: u64| bps > 360_000;
    let last_over = alice_out
        .iter()
        .rev()
        .find(|(_, bps)| over(*bps))
        .map_or(Duration::ZERO, |(at, _)| *at);
    assert!(
        last_over <= Duration::from_secs(10),
        "still over the cap {last_over:?} after the drop: {alice_out:?}"
    );
    let settled: Vec<u64> = alice_out
        .iter()
        .filter(|(at, _)| *at > Duration::from_secs(10))
        .map(|(_, bps)| *bps)
        .collect();
    let mean = settled.iter().sum::<u64>() / settled.len().max(1) as u64;
    assert!(
        !settled.is_empty() && mean <= 300_000,
        "over the cap on average ({mean} bit/s) after 10 s: {alice_out:?}"
    );
    // Delay came back down instead of growing with the queue.
    let end: Vec<f64> = bob_latency
        .iter()
        .filter(|(at, _)| *at >= Duration::from_secs(12))
        .map(|(_, ms)| *ms)
        .collect();
    assert!(
        !end.is_empty() && end.iter().all(|ms| *ms < 500.0),
        "latency at the end: {bob_latency:?}"
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Who {
    Alice,
    Bob,
}

/// Everything both engines report for `how_long`, stamped with when it arrived.
async fn collect_for(
    pair: &mut Pair,
    how_long: Duration,
    into: &mut Vec<(Instant, Who, EngineEvent)>,
) {
    let until = tokio::time::Instant::now() + how_long;
    loop {
        tokio::select! {
            Some(event) = pair.alice.events.recv() => into.push((Instant::now(), Who::Alice, event)),
            Some(event) = pair.bob.events.recv() => into.push((Instant::now(), Who::Bob, event)),
            () = tokio::time::sleep_until(until) => return,
        }
    }
}

/// Waits until Bob's statistics show pictures coming in at a size and rate `pick`
/// accepts; returns how long it took and the size. Fails after `patience`.
async fn bob_receives(
    pair: &mut Pair,
    patience: Duration,
    pick: impl Fn(u32, u32, f64) -> bool,
) -> (Duration, (u32, u32)) {
    let start = Instant::now();
    let found = tokio::time::timeout(patience, async {
        loop {
            let event = pair.bob.events.recv().await.expect("Bob's engine stopped");
            if let EngineEvent::Stats(stats) = event
                && let Some(video) = stats.video_in
                && video.fps > 0.0
                && pick(video.width, video.height, video.fps)
            {
                return (video.width, video.height);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("Bob never received the picture size asked for in {patience:?}"));
    (start.elapsed(), found)
}

/// A 150 kbit/s cap: rather than send VGA in blocks, Alice sends a smaller picture at a
/// steady frame rate; when the cap lifts and the estimate climbs back, the picture grows
/// back to VGA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_path_gets_a_smaller_picture_and_a_fast_one_the_full_size() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let server = Server::start().await;
    let bob_hears = temp_path("resolution.wav");
    let capped = |rate_bps| LinkConditions {
        rate_bps,
        max_queue: Duration::from_millis(500),
        ..LinkConditions::default()
    };
    let mut pair = pair(&server, &capped(None), &bob_hears).await;
    connect(&mut pair.alice, &mut pair.bob).await;
    let (_, full) = bob_receives(&mut pair, support::PATIENCE, |w, _, _| w > 0).await;
    assert_eq!(full, (640, 480));

    pair.alice_link.set(capped(Some(150_000)));
    // Smaller, and at a steady rate again once the estimate has settled under the cap.
    let (shrunk_after, small) = bob_receives(&mut pair, support::PATIENCE, |w, h, fps| {
        w * h < 640 * 480 && fps >= 20.0
    })
    .await;
    let watch = VideoWatch::start(&pair.bob);
    let from = Instant::now();
    let mut events = Vec::new();
    collect_for(&mut pair, WINDOW, &mut events).await;
    let video = video_report(&watch.finish(), from, Instant::now());
    let sizes: Vec<(u32, u32)> = stats(
        events
            .iter()
            .filter(|(_, who, _)| *who == Who::Bob)
            .map(|(_, _, e)| e),
    )
    .iter()
    .filter_map(|s| s.video_in.map(|v| (v.width, v.height)))
    .collect();

    let alice: Vec<_> = stats(
        events
            .iter()
            .filter(|(_, who, _)| *who == Who::Alice)
            .map(|(_, _, e)| e),
    )
    .iter()
    .map(|s| {
        (
            s.target_bitrate_bps,
            s.bitrate_out_bps,
            s.video_out.map(|v| (v.width, v.height, v.fps)),
        )
    })
    .collect();
    println!("150 kbit/s: Alice's target, rate out and video out: {alice:?}");

    pair.alice_link.set(capped(None));
    let (grown_after, _) = bob_receives(&mut pair, Duration::from_secs(60), |w, h, _| {
        (w, h) == (640, 480)
    })
    .await;
    pair.hang_up_and_shut_down().await;
    server.shutdown().await;
    let _ = std::fs::remove_file(&bob_hears);

    println!(
        "150 kbit/s: {}x{} at 20 fps or more {:.1?} after the cap, then {:.1} fps (longest pause {} ms), sizes {sizes:?}; \
         VGA again {:.1?} after the cap lifted",
        small.0,
        small.1,
        shrunk_after,
        video.fps,
        video.longest_freeze.as_millis(),
        grown_after,
    );
    assert!(video.fps >= 15.0, "{video:?}");
    assert!(
        sizes.iter().all(|&(w, h)| w * h < 640 * 480),
        "the picture grew under the cap: {sizes:?}"
    );
}
