//! Screen sharing between real engines over loopback (issue 17): Alice shares a monitor of
//! an X display this test owns (Xvfb, with a known picture on it) and Bob receives it as a
//! second picture beside her camera; the display dying mid-share ends the sharing, not the
//! call.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;
#[path = "../crates/media/tests/support/xvfb.rs"]
mod xvfb;

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_call::{Command, EngineEvent, Problem, RemoteVideoFrame};
use confab_media::video::{I420Frame, ScreenSelector, VideoFormat, psnr_y};
use support::{PATIENCE, Peer, PeerSetup, Server, alice_and_bob, connect};
use xvfb::Xvfb;

/// The camera stays small: two encoders and two decoders share this machine's two cores.
const CAMERA: VideoFormat = VideoFormat {
    width: 320,
    height: 240,
    fps: 15,
};

fn setup() -> PeerSetup {
    PeerSetup {
        format: CAMERA,
        ..PeerSetup::default()
    }
}

fn share(display: &Xvfb) -> Command {
    Command::ShareScreen(ScreenSelector {
        display: Some(display.display.clone()),
        monitor: 0,
    })
}

/// Waits until `peer` is told it shares (`on`) or not.
async fn sharing(peer: &mut Peer, on: bool) {
    peer.wait_for(|e| matches!(e, EngineEvent::Sharing(now) if *now == on).then_some(()))
        .await;
}

/// Waits until `peer` is told the other side shares (`on`) or not.
async fn peer_shares(peer: &mut Peer, on: bool) {
    peer.wait_for(|e| {
        matches!(e, EngineEvent::PeerState { sharing, .. } if *sharing == on).then_some(())
    })
    .await;
}

/// The next shared-screen picture `peer` receives, within [`PATIENCE`].
fn next_screen(peer: &Peer) -> Option<Arc<RemoteVideoFrame>> {
    tokio::task::block_in_place(|| {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Some(frame) = peer
                .engine
                .remote_screen
                .wait_take(Duration::from_millis(200))
            {
                return Some(frame);
            }
        }
        None
    })
}

fn luma_psnr(frame: &RemoteVideoFrame, reference: &I420Frame) -> f64 {
    let received = I420Frame::from_rgba(frame.width, frame.height, &frame.rgba).unwrap();
    psnr_y(&received, reference)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_screen_arrives_beside_the_camera_and_stops_with_stop() {
    support::log_to_test_output();
    let display = Xvfb::start(1280, 720);
    let picture = xvfb::test_picture(1280, 720);
    display.draw(&picture);
    // The pointer is drawn into the picture: keep it in a corner.
    display.move_pointer(1279, 719);
    let reference = I420Frame::from_rgba(1280, 720, &picture.rgba()).unwrap();
    let server = Server::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, setup()).await;
    connect(&mut alice, &mut bob).await;
    assert_eq!(bob.pictures(5), 5, "Bob sees Alice's camera");

    let shared_at = Instant::now();
    alice.send(share(&display));
    sharing(&mut alice, true).await;
    peer_shares(&mut bob, true).await;
    let first = next_screen(&bob).expect("the shared screen arrives");
    eprintln!(
        "Share to the first picture on the other side: {:?}",
        shared_at.elapsed()
    );
    assert_eq!((first.width, first.height), (1280, 720), "sent at its size");

    // It matches the screen: the text is legible once the bitrate has ramped up.
    let mut best = luma_psnr(&first, &reference);
    let deadline = Instant::now() + PATIENCE;
    while best < 30.0 && Instant::now() < deadline {
        if let Some(frame) = next_screen(&bob) {
            best = best.max(luma_psnr(&frame, &reference));
        }
    }
    eprintln!("shared screen PSNR (luma): {best:.1} dB");
    assert!(best >= 30.0, "the shared screen matches it: {best:.1} dB");
    assert_eq!(
        bob.pictures(10),
        10,
        "the camera keeps going beside the screen"
    );

    alice.send(Command::StopSharing);
    sharing(&mut alice, false).await;
    peer_shares(&mut bob, false).await;
    assert_eq!(bob.pictures(5), 5, "the camera goes on");
    alice.send(Command::HangUp);
    bob.ended().await;
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_display_dying_mid_share_ends_the_sharing_not_the_call() {
    support::log_to_test_output();
    let mut display = Xvfb::start(640, 480);
    display.draw(&xvfb::test_picture(640, 480));
    let server = Server::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, setup()).await;
    connect(&mut alice, &mut bob).await;
    alice.send(share(&display));
    peer_shares(&mut bob, true).await;
    assert!(next_screen(&bob).is_some(), "the screen arrives");

    display.kill();
    let reason = alice
        .wait_for(|e| match e {
            EngineEvent::Problem(Problem::Screen(reason)) => Some(reason.clone()),
            EngineEvent::Call(state) => panic!("the call changed: {state:?}"),
            _ => None,
        })
        .await;
    eprintln!("Alice is told: {reason}");
    sharing(&mut alice, false).await;
    peer_shares(&mut bob, false).await;
    // The call goes on: pictures and chat both ways.
    assert_eq!(bob.pictures(5), 5);
    assert_eq!(alice.pictures(5), 5);
    bob.send(Command::SendChat("still here?".into()));
    alice
        .chat(
            |c| matches!(c, confab_call::ChatEvent::Received { text, .. } if text == "still here?"),
        )
        .await;
    alice.send(Command::HangUp);
    bob.ended().await;
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_that_cannot_be_opened_is_said_and_the_call_goes_on() {
    support::log_to_test_output();
    let server = Server::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, setup()).await;
    connect(&mut alice, &mut bob).await;
    alice.send(Command::ShareScreen(ScreenSelector {
        display: Some(":9999".into()),
        monitor: 0,
    }));
    let reason = alice
        .wait_for(|e| match e {
            EngineEvent::Problem(Problem::Screen(reason)) => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert!(
        reason.contains(":9999"),
        "the reason names the display: {reason}"
    );
    sharing(&mut alice, false).await;
    assert_eq!(bob.pictures(5), 5, "the call goes on");
    alice.send(Command::HangUp);
    bob.ended().await;
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
}

/// `confab` with `DISPLAY` set to the test's display.
fn confab_on(display: &Xvfb, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_confab"));
    command
        .args(args)
        .env("DISPLAY", &display.display)
        .env_remove("WAYLAND_DISPLAY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

#[test]
fn confab_devices_lists_the_screens_of_the_display() {
    let display = Xvfb::start(1024, 768);
    let output = confab_on(&display, &["devices"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("Screens"), "{stdout}");
    assert!(
        stdout.contains("#0") && stdout.contains("1024x768"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_video_screen_shares_a_monitor_in_every_call() {
    support::log_to_test_output();
    let display = Xvfb::start(800, 600);
    display.draw(&xvfb::test_picture(800, 600));
    let server = Server::start().await;
    let mut bob = Peer::join(&server, "Bob", setup()).await;
    let url = server.url();
    let args = [
        "headless",
        "--server",
        &url,
        "--name",
        "Alice",
        "--bind",
        "127.0.0.1:0",
        "--call",
        "Bob",
        "--video",
        "screen:0",
        "--duration",
        "3",
    ];
    let alice = confab_on(&display, &args).spawn().unwrap();
    assert_eq!(bob.incoming().await, "Alice");
    bob.send(Command::Accept);
    bob.connected().await;
    peer_shares(&mut bob, true).await;
    let frame = next_screen(&bob).expect("Alice's screen arrives");
    assert_eq!((frame.width, frame.height), (800, 600));
    // `--video screen` sends no camera.
    assert!(
        bob.engine.remote_video.take().is_none(),
        "no camera picture"
    );
    let output = support::finish(alice).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    bob.ended().await;
    bob.shutdown().await;
    server.shutdown().await;
}
