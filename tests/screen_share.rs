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
use confab_call_core::h264_rtp::{H264Depacketizer, Output};
use confab_media::video::{H264Decoder, I420Frame, ScreenSelector, VideoFormat, psnr_y};
use confab_protocol::chat::ChatMessage;
use confab_protocol::{CallId, ClientMessage, ServerMessage};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc;
use webrtc::data_channel::DataChannelEvent;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, RTCPeerConnectionState, RTCSessionDescription,
};

use support::rogue::{
    Handler, PcEvent, chat_and_offer, from_signal, h264, local_track, media_engine, opus, sign_in,
    to_signal,
};
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

/// Alice hangs up; everything stops.
async fn hang_up(alice: Peer, mut bob: Peer, server: Server) {
    alice.send(Command::HangUp);
    bob.ended().await;
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
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
    hang_up(alice, bob, server).await;
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
    hang_up(alice, bob, server).await;
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
    hang_up(alice, bob, server).await;
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
    let stats_path = support::temp_path("screen-share-headless.json");
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
        "--stats",
        stats_path.to_str().unwrap(),
    ];
    let alice = confab_on(&display, &args).spawn().unwrap();
    assert_eq!(bob.incoming().await, "Alice");
    bob.send(Command::Accept);
    bob.connected().await;
    peer_shares(&mut bob, true).await;
    let frame = next_screen(&bob).expect("Alice's screen arrives");
    assert_eq!((frame.width, frame.height), (800, 600));
    let output = support::finish(alice).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // `--video screen` sends the screen, and no camera.
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats_path).unwrap()).unwrap();
    assert_eq!(stats["video_frames_sent"], 0, "{stats}");
    assert!(stats["screen_frames_sent"].as_u64().unwrap() > 0, "{stats}");
    bob.ended().await;
    bob.shutdown().await;
    server.shutdown().await;
}

/// An older client, built by hand on webrtc-rs: its offer has one video section and its
/// `state` no `screen`, as a Confab before screen sharing. It calls `callee` and reports the
/// size of every picture it decodes.
async fn older_client_calls(
    server: &Server,
    callee: &str,
) -> (Arc<dyn PeerConnection>, mpsc::UnboundedReceiver<(u32, u32)>) {
    let (signaling, mut inbox, callee) = sign_in(&server.url(), "Olga", callee).await;
    let (pc_tx, mut pc_events) = mpsc::unbounded_channel();
    let pc: Arc<dyn PeerConnection> = Arc::new(
        PeerConnectionBuilder::new()
            .with_media_engine(media_engine())
            .with_handler(Arc::new(Handler(pc_tx)))
            .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
            .build()
            .await
            .expect("the older client's peer connection"),
    );
    for (kind, id, ssrc, codec) in [
        (RtpCodecKind::Video, "video", 0x01d0_0001, h264("42e01f")),
        (RtpCodecKind::Audio, "audio", 0x01d0_0002, opus()),
    ] {
        let track = Arc::new(TrackLocalStaticRTP::new(local_track(kind, id, ssrc, codec)));
        pc.add_track(track as Arc<dyn TrackLocal>).await.unwrap();
    }
    let (chat, sdp) = chat_and_offer(&pc).await;
    let call_id = CallId::new("older-client-call").unwrap();
    let offer = ClientMessage::Offer {
        to: callee.clone(),
        call_id: call_id.clone(),
        sdp,
    };
    signaling.out.send(offer).unwrap();
    // Its switches, once the chat opens: without `screen`.
    tokio::spawn(async move {
        while let Some(event) = chat.poll().await {
            if matches!(event, DataChannelEvent::OnOpen) {
                let old_state = r#"{"type":"state","muted":false,"camera_off":false}"#;
                assert!(ChatMessage::parse(old_state.as_bytes()).is_ok());
                let _ = chat.send_text(old_state).await;
            }
        }
    });
    let (sizes_tx, sizes) = mpsc::unbounded_channel();
    let signaled = pc.clone();
    tokio::spawn(async move {
        let _keep = signaling.task;
        loop {
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(ServerMessage::Answer { sdp, .. }) => {
                        let answer = RTCSessionDescription::answer(sdp).unwrap();
                        signaled.set_remote_description(answer).await.unwrap();
                    }
                    Some(ServerMessage::Candidate { candidate: Some(c), .. }) => {
                        let _ = signaled.add_ice_candidate(from_signal(c)).await;
                    }
                    Some(_) => {}
                    None => break,
                },
                event = pc_events.recv() => match event {
                    Some(PcEvent::Candidate(init)) => {
                        let _ = signaling.out.send(ClientMessage::Candidate {
                            to: callee.clone(),
                            call_id: call_id.clone(),
                            candidate: Some(to_signal(init)),
                        });
                    }
                    Some(PcEvent::Track(track)) => {
                        tokio::spawn(picture_sizes(track, sizes_tx.clone()));
                    }
                    Some(PcEvent::State(RTCPeerConnectionState::Failed)) | None => break,
                    Some(_) => {}
                },
            }
        }
    });
    (pc, sizes)
}

/// Decodes a received video track (on a thread: the decoder stays there) and sends the
/// size of each picture; asks for a keyframe every 300 ms, so that a start or a switch is
/// never waited for.
async fn picture_sizes(track: Arc<dyn TrackRemote>, sizes: mpsc::UnboundedSender<(u32, u32)>) {
    if track.kind().await != RtpCodecKind::Video {
        while track.poll().await.is_some() {}
        return;
    }
    let media_ssrc = track.ssrcs().await.first().copied().unwrap_or_default();
    let (units, unit_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut decoder = H264Decoder::new().unwrap();
        for unit in unit_rx {
            if let Ok(Some(picture)) = decoder.decode(&unit) {
                let _ = sizes.send((picture.width(), picture.height()));
            }
        }
    });
    let mut depacketizer = H264Depacketizer::new();
    let mut pli = tokio::time::interval(Duration::from_millis(300));
    loop {
        let outputs = tokio::select! {
            event = track.poll() => match event {
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                    let header = &packet.header;
                    let (seq, ts, marker) = (header.sequence_number, header.timestamp, header.marker);
                    depacketizer.push(seq, ts, marker, &packet.payload, std::time::Instant::now())
                }
                Some(TrackRemoteEvent::OnEnded) | None => return,
                Some(_) => continue,
            },
            _ = pli.tick() => {
                let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc };
                let _ = track.write_rtcp(vec![Box::new(pli)]).await;
                continue;
            }
        };
        for output in outputs {
            if let Output::Frame(unit) = output
                && units.send(unit.data).is_err()
            {
                return;
            }
        }
    }
}

/// Waits until the older client has decoded five pictures of `size` in a row.
async fn sees_pictures_of(sizes: &mut mpsc::UnboundedReceiver<(u32, u32)>, size: (u32, u32)) {
    let mut in_a_row = 0;
    tokio::time::timeout(PATIENCE, async {
        while in_a_row < 5 {
            let got = sizes.recv().await.expect("the older client decodes");
            in_a_row = if got == size { in_a_row + 1 } else { 0 };
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no pictures of {size:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_takes_one_picture_gets_the_screen_instead_of_the_camera_until_stop() {
    support::log_to_test_output();
    let display = Xvfb::start(640, 480);
    display.draw(&xvfb::test_picture(640, 480));
    let server = Server::start().await;
    let mut alice = Peer::join(&server, "Alice", setup()).await;
    let (older, mut sizes) = older_client_calls(&server, "Alice").await;
    assert_eq!(alice.incoming().await, "Olga");
    alice.send(Command::Accept);
    alice.connected().await;
    sees_pictures_of(&mut sizes, (CAMERA.width, CAMERA.height)).await;

    alice.send(share(&display));
    sharing(&mut alice, true).await;
    sees_pictures_of(&mut sizes, (640, 480)).await;

    alice.send(Command::StopSharing);
    sharing(&mut alice, false).await;
    sees_pictures_of(&mut sizes, (CAMERA.width, CAMERA.height)).await;

    alice.send(Command::HangUp);
    let _ = older.close().await;
    alice.shutdown().await;
    server.shutdown().await;
}
