//! Mid-call controls: mute, camera off and on, a resolution change, another audio input,
//! without renegotiation.
//! Its own test binary, because it counts this process's capture threads.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Instant;

use confab_call::{AudioInput, Command, EngineEvent, VideoInput};
use confab_media::audio::{SAMPLE_RATE, analysis};
use confab_media::video::VideoFormat;
use support::{PATIENCE, Peer, PeerSetup, Server, connect, temp_path};

/// Threads of this process with this name.
fn threads_named(name: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == name)
        .count()
}

/// Waits for the next remote frame; fails the test if none comes.
fn next_frame(peer: &Peer) -> std::sync::Arc<confab_call::RemoteVideoFrame> {
    tokio::task::block_in_place(|| peer.engine.remote_video.wait_take(PATIENCE))
        .expect("a remote frame")
}

/// Mute, camera off and on, a resolution change and another audio input, mid-call and
/// without renegotiation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_call_controls_change_what_the_peer_receives() {
    let server = Server::start().await;
    let bob_wav = temp_path("bob-hears-mute.wav");
    let mut alice = Peer::join(&server, "Alice", PeerSetup::default()).await;
    let mut bob = Peer::join(
        &server,
        "Bob",
        PeerSetup {
            // Bob sends nothing, so every capture thread in this process is Alice's.
            video: VideoInput::None,
            audio: AudioInput::None,
            record_audio: Some(bob_wav.clone()),
            ..PeerSetup::default()
        },
    )
    .await;
    connect(&mut alice, &mut bob).await;
    assert_eq!(next_frame(&bob).width, 640);
    assert_eq!(threads_named("video-capture"), 1);

    // A smaller picture: Bob's frames follow.
    alice.send(Command::SetVideoFormat(VideoFormat {
        width: 320,
        height: 240,
        fps: 30,
    }));
    let deadline = Instant::now() + PATIENCE;
    while next_frame(&bob).width != 320 {
        assert!(Instant::now() < deadline, "the size never changed");
    }

    // Camera off: the capture thread (the device) is gone and Alice reports no video out.
    // (The first stats have no video out either, having no rate yet: be past them.)
    alice
        .wait_for(|e| matches!(e, EngineEvent::Stats(s) if s.video_out.is_some()).then_some(()))
        .await;
    alice.send(Command::SetCamera(false));
    alice
        .wait_for(|e| matches!(e, EngineEvent::Stats(s) if s.video_out.is_none()).then_some(()))
        .await;
    assert_eq!(
        threads_named("video-capture"),
        0,
        "the camera is still open"
    );
    // ...and back on: frames flow again, at the size chosen before.
    alice.send(Command::SetCamera(true));
    tokio::task::block_in_place(|| bob.engine.remote_video.take());
    let frame = next_frame(&bob);
    assert_eq!((frame.width, frame.height), (320, 240));
    assert_eq!(threads_named("video-capture"), 1);

    // Muted for two stats periods (about 2 s): Bob hears a long silence in the tone.
    alice.send(Command::SetMuted(true));
    for _ in 0..2 {
        alice
            .wait_for(|e| matches!(e, EngineEvent::Stats(_)).then_some(()))
            .await;
    }
    alice.send(Command::SetMuted(false));
    alice
        .wait_for(|e| matches!(e, EngineEvent::Stats(_)).then_some(()))
        .await;
    // Another input (a different tone stands in for another microphone) for two periods.
    alice.send(Command::SetAudioInput(AudioInput::Tone(880.0)));
    for _ in 0..2 {
        alice
            .wait_for(|e| matches!(e, EngineEvent::Stats(_)).then_some(()))
            .await;
    }
    alice.send(Command::HangUp);
    bob.ended().await;
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;

    let samples = support::read_wav(&bob_wav);
    let _ = std::fs::remove_file(&bob_wav);
    let silence = analysis::longest_silence(&samples, 0.01) as f32 / SAMPLE_RATE as f32;
    let tone = analysis::level(&samples).peak_dbfs();
    assert!(tone > -20.0, "no tone at all: peak {tone} dBFS");
    assert!(silence > 1.5, "muting left only {silence} s of silence");
    // The last second before hanging up carries the new input.
    let second = SAMPLE_RATE as usize;
    let end = samples.len().saturating_sub(second / 4);
    let last = &samples[end.saturating_sub(second)..end];
    let heard = analysis::dominant_frequency(last, SAMPLE_RATE);
    assert!(
        (heard - 880.0).abs() < 9.0,
        "after switching inputs: {heard} Hz"
    );
}
