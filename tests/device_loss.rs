//! Devices that vanish mid-call. Alice's "camera" is a looping video file that the test
//! deletes (the same error path as a camera unplugged: the source's next read fails, here
//! when it reopens the file to loop); Bob's microphone is a real PulseAudio source that the
//! test unloads. Each call
//! goes on without that track, and its user is told.
//!
//! One test in this binary on purpose: it points the process at a private sound server
//! through `PULSE_SERVER` before any audio code runs.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use confab_call::{AudioInput, ChatEvent, Command, EngineEvent, Problem, VideoInput};
use confab_media::audio::{SAMPLE_RATE, analysis};
use confab_protocol::HangupReason;
use support::pulse::PulseServer;
use support::{Peer, PeerSetup, Server, connect, read_wav, temp_path};

/// Frames in the video file: it loops every 2 s.
const FILE_FRAMES: usize = 60;

/// A 160x120 Y4M file with `frames` frames of changing grey.
fn write_video(path: &Path, frames: usize) {
    let (width, height) = (160, 120);
    let frame_len = width * height * 3 / 2;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    writeln!(file, "YUV4MPEG2 W{width} H{height} F30:1 C420jpeg").expect("write");
    for n in 0..frames {
        file.write_all(b"FRAME\n").expect("write");
        let luma = (n * 2 % 200) as u8 + 16;
        let mut data = vec![128u8; frame_len];
        data[..width * height].fill(luma);
        file.write_all(&data).expect("write");
    }
    file.flush().expect("flush");
}

/// Waits for a `Problem` about `device`, and returns what it says.
async fn told_about(peer: &mut Peer, device: &str) -> String {
    let name = peer.name.clone();
    peer.wait_for(|e| match e {
        EngineEvent::Problem(problem @ (Problem::Camera(_) | Problem::Microphone(_)))
            if problem.to_string().starts_with(device) =>
        {
            Some(problem.to_string())
        }
        EngineEvent::Call(confab_call::CallState::Ended(end)) => {
            panic!("{name}: the call ended with the {device}: {end:?}")
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_camera_or_microphone_leaves_the_call_running_and_is_reported() {
    let pulse = PulseServer::start().unwrap_or_else(|reason| panic!("{reason}"));
    let video = temp_path("camera.y4m");
    write_video(&video, FILE_FRAMES);
    let bob_hears = temp_path("bob-hears.wav");

    let server = Server::start().await;
    let mut alice = Peer::join(
        &server,
        "Alice",
        PeerSetup {
            video: VideoInput::File(video.clone()),
            audio: AudioInput::Tone(440.0),
            ..PeerSetup::default()
        },
    )
    .await;
    let mut bob = Peer::join(
        &server,
        "Bob",
        PeerSetup {
            audio: AudioInput::Microphone(Some("vmic".into())),
            record_audio: Some(bob_hears.clone()),
            ..PeerSetup::default()
        },
    )
    .await;
    connect(&mut alice, &mut bob).await;
    assert_eq!(bob.pictures(10), 10, "Bob never saw Alice's video");

    // The "camera" goes: Alice is told, Bob's picture of her stops, the call goes on.
    std::fs::remove_file(&video).expect("delete the video file");
    let camera = told_about(&mut alice, "camera").await;
    eprintln!("Alice was told: {camera}");
    let stalled = tokio::task::block_in_place(|| {
        bob.engine.remote_video.take();
        bob.engine.remote_video.wait_take(Duration::from_secs(1))
    });
    assert!(stalled.is_none(), "Alice's video still arrives");
    assert_eq!(alice.pictures(30), 30, "Bob's video stopped too");

    // Bob's microphone vanishes from the sound server. With the sink whose monitor it
    // remaps, so that PulseAudio has no other source to move the stream to.
    for module in ["module-remap-source", "module-null-sink"] {
        pulse
            .pactl(&["unload-module", module])
            .unwrap_or_else(|reason| panic!("{reason}"));
    }
    let unplugged = Instant::now();
    let microphone = told_about(&mut bob, "microphone").await;
    eprintln!(
        "Bob was told {:?} after the microphone went: {microphone}",
        unplugged.elapsed()
    );

    // Still a call: Bob's video, Alice's voice and chat both ways.
    assert_eq!(alice.pictures(30), 30, "Bob's video stopped with his mic");
    alice.send(Command::SendChat("hello?".into()));
    bob.chat(|c| matches!(c, ChatEvent::Received { text, .. } if text == "hello?"))
        .await;
    bob.send(Command::SendChat("here".into()));
    alice
        .chat(|c| matches!(c, ChatEvent::Received { text, .. } if text == "here"))
        .await;
    alice.send(Command::HangUp);
    let end = bob.ended().await;
    assert_eq!((end.reason, end.by_peer), (HangupReason::Ended, true));
    alice.ended().await;
    bob.shutdown().await;
    alice.shutdown().await;
    server.shutdown().await;

    // Alice's tone played to the end: the last second Bob heard is still 440 Hz.
    let heard = read_wav(&bob_hears);
    assert!(
        heard.len() > 2 * SAMPLE_RATE as usize,
        "{} samples",
        heard.len()
    );
    let last_second = &heard[heard.len() - SAMPLE_RATE as usize..];
    let hz = analysis::dominant_frequency(last_second, SAMPLE_RATE);
    assert!((hz - 440.0).abs() < 10.0, "Bob heard {hz} Hz at the end");
    let _ = std::fs::remove_file(bob_hears);
}
