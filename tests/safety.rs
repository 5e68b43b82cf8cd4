//! Safety codes end to end.
//!
//! - `confab headless` processes with real profiles (an `XDG_DATA_HOME` of the test's own):
//!   both sides of a call print and record the same code; it stays the same across calls and
//!   restarts and changes with a new profile; `--expect-safety-code` fails a call whose code
//!   differs; a damaged identity file is a clear error.
//! - A man in the middle: a signaling server that swaps the fingerprints. It runs in front
//!   of the real server for Bob, answers Alice's offer with a webrtc-rs peer connection of
//!   its own, offers Bob another one, and relays media and chat between the two. The call
//!   works, pictures and chat flow both ways, but Alice and Bob get different codes.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use confab_call::{ChatEvent, EngineEvent, PeerIdentity};
use confab_protocol::chat::CHAT_CHANNEL_LABEL;
use confab_protocol::safety::SafetyCode;
use confab_protocol::{
    CallId, ClientMessage, PeerId, ServerMessage, parse_client_message, parse_server_message,
};
use futures_util::{SinkExt, StreamExt};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use webrtc::data_channel::{
    DataChannel, DataChannelEvent, RTCDataChannelInit, RTCDataChannelState,
};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, RTCIceCandidateInit, RTCSessionDescription,
};

use support::rogue::{
    Handler, PcEvent, from_signal, h264, local_track, media_engine, opus, to_signal,
};
use support::{PATIENCE, Peer, PeerSetup, Server, finish, temp_path};

// ------------------------------------------------------------------------------------------
// Headless peers with real profiles.
// ------------------------------------------------------------------------------------------

/// `confab headless` with its data directory (profiles) in `data`, no media.
fn headless(server: &Server, data: &Path, name: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confab"));
    command
        .env("XDG_DATA_HOME", data)
        .args(["headless", "--server", &server.url(), "--name", name])
        .args([
            "--bind",
            "127.0.0.1:0",
            "--video",
            "none",
            "--audio",
            "none",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The code a `--stats` file recorded.
fn recorded_code(path: &Path) -> SafetyCode {
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["safety_code"]
        .as_str()
        .unwrap_or_else(|| panic!("no safety_code in {json}"))
        .parse()
        .unwrap()
}

/// Alice (profile `alice_profile`) calls Bob (profile `bob`) for half a second; returns the
/// two codes recorded and Alice's run.
async fn call(
    server: &Server,
    dir: &Path,
    alice_profile: &str,
    alice_args: &[&str],
) -> (SafetyCode, SafetyCode, Output) {
    let (alice_stats, bob_stats) = (dir.join("alice.json"), dir.join("bob.json"));
    let _ = std::fs::remove_file(&alice_stats);
    let _ = std::fs::remove_file(&bob_stats);
    let data = dir.join("data");
    let bob_stats_arg = bob_stats.to_str().unwrap();
    let bob = headless(server, &data, "Bob", &["--answer", "--profile", "bob"])
        .args(["--stats", bob_stats_arg])
        .spawn()
        .unwrap();
    let alice = headless(
        server,
        &data,
        "Alice",
        &["--call", "Bob", "--duration", "0.5"],
    )
    .args([
        "--profile",
        alice_profile,
        "--stats",
        alice_stats.to_str().unwrap(),
    ])
    .args(alice_args)
    .spawn()
    .unwrap();
    let (alice, bob) = tokio::join!(finish(alice), finish(bob));
    assert!(bob.status.success(), "Bob: {}", text(&bob.stderr));
    let (alice_code, bob_code) = (recorded_code(&alice_stats), recorded_code(&bob_stats));
    // Each side also prints it, for a person running a bot.
    let printed = format!("safety code with Alice: {bob_code}");
    assert!(
        text(&bob.stdout).contains(&printed),
        "{}",
        text(&bob.stdout)
    );
    (alice_code, bob_code, alice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_match_stay_with_the_profiles_and_change_with_a_new_one() {
    let server = Server::start().await;
    let dir = temp_path("safety-profiles");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // Both sides derive the same code from their identities.
    let (first, bobs, alice) = call(&server, &dir, "alice", &[]).await;
    assert!(alice.status.success(), "Alice: {}", text(&alice.stderr));
    assert_eq!(first, bobs);
    let identity = dir.join("data/confab-alice/identity.pem");
    assert!(identity.exists(), "the identity is kept in the profile");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&identity).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its user may read the identity");
    }

    // New processes, same profiles: the same code, which Alice may insist on.
    let expect = first.to_string();
    let (again, bobs, alice) =
        call(&server, &dir, "alice", &["--expect-safety-code", &expect]).await;
    assert!(alice.status.success(), "Alice: {}", text(&alice.stderr));
    assert_eq!((&again, &bobs), (&first, &first));

    // Alice on a new profile is a new identity: another code, which fails her call when
    // she expects the old one.
    let (other, bobs, alice) = call(
        &server,
        &dir,
        "alice-laptop",
        &["--expect-safety-code", &expect],
    )
    .await;
    assert_eq!(other, bobs, "both sides still agree with each other");
    assert_ne!(other, first);
    assert!(!alice.status.success(), "a wrong code fails the call");
    let said = text(&alice.stderr);
    assert!(
        said.lines()
            .last()
            .unwrap_or_default()
            .contains(&format!("the safety code with Bob is {other}, not {first}")),
        "{said}"
    );

    // A damaged identity file is an error that names it, not a panic and not a new identity.
    std::fs::write(&identity, "-----BEGIN PRIVATE KEY-----\nnot base64\n").unwrap();
    let data = dir.join("data");
    let alice = headless(
        &server,
        &data,
        "Alice",
        &["--call", "Bob", "--profile", "alice"],
    )
    .output()
    .unwrap();
    let said = text(&alice.stderr);
    assert!(!alice.status.success());
    assert!(said.contains("is damaged"), "{said}");
    assert!(said.contains(&identity.display().to_string()), "{said}");
    assert!(!said.contains("panicked"), "{said}");
    assert_eq!(
        std::fs::read_to_string(&identity).unwrap(),
        "-----BEGIN PRIVATE KEY-----\nnot base64\n",
        "the damaged file is left for the user"
    );

    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------------------------------
// A man in the middle.
// ------------------------------------------------------------------------------------------

/// Mallory's two peer connections: one answers Alice, the other calls Bob.
struct Middle {
    alice: PeerId,
    call_id: CallId,
    toward_alice: Arc<dyn PeerConnection>,
    toward_bob: Arc<dyn PeerConnection>,
    /// What Mallory sends each side (video, audio): what it receives from the other.
    to_alice: Tracks,
    to_bob: Tracks,
    /// The chat channel Mallory opened to Bob, relayed to the one Alice opens.
    bob_chat: Arc<dyn DataChannel>,
}

/// Which of Mallory's connections an event comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Alice,
    Bob,
}

async fn peer_connection(
    side: Side,
    events: &mpsc::UnboundedSender<(Side, PcEvent)>,
) -> Arc<dyn PeerConnection> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let forward = events.clone();
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if forward.send((side, event)).is_err() {
                break;
            }
        }
    });
    Arc::new(
        PeerConnectionBuilder::new()
            .with_media_engine(media_engine())
            .with_handler(Arc::new(Handler(tx)))
            .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
            .build()
            .await
            .expect("Mallory's peer connection"),
    )
}

/// A video and an audio track Mallory sends on, with their SSRCs.
#[derive(Clone)]
struct Tracks {
    video: (Arc<TrackLocalStaticRTP>, u32),
    audio: (Arc<TrackLocalStaticRTP>, u32),
}

impl Tracks {
    fn of(&self, kind: RtpCodecKind) -> (Arc<TrackLocalStaticRTP>, u32) {
        match kind {
            RtpCodecKind::Video => self.video.clone(),
            _ => self.audio.clone(),
        }
    }
}

/// Video and audio tracks, so the connection negotiates what Confab expects.
async fn add_tracks(pc: &Arc<dyn PeerConnection>, first_ssrc: u32) -> Tracks {
    let mut sent = Vec::new();
    for (kind, id, ssrc, codec) in [
        (RtpCodecKind::Video, "video", first_ssrc, h264("42e01f")),
        (RtpCodecKind::Audio, "audio", first_ssrc + 1, opus()),
    ] {
        let track = Arc::new(TrackLocalStaticRTP::new(local_track(kind, id, ssrc, codec)));
        pc.add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .unwrap();
        sent.push((track, ssrc));
    }
    let audio = sent.pop().unwrap();
    let video = sent.pop().unwrap();
    Tracks { video, audio }
}

/// Forwards what arrives on `track` to the other side, as Mallory's own stream (its SSRC,
/// without the sender's header extensions, whose ids were negotiated on the other
/// connection). Video asks its sender for a keyframe every second: the receiver on the
/// other side may have missed the first, and its requests reach only Mallory.
fn relay_media(
    track: Arc<dyn TrackRemote>,
    kind: RtpCodecKind,
    (to, ssrc): (Arc<TrackLocalStaticRTP>, u32),
) {
    tokio::spawn(async move {
        let media_ssrc = track.ssrcs().await.first().copied().unwrap_or_default();
        let mut keyframe_asked: Option<tokio::time::Instant> = None;
        while let Some(event) = track.poll().await {
            match event {
                TrackRemoteEvent::OnRtpPacket(mut packet) => {
                    packet.header.ssrc = ssrc;
                    packet.header.extension = false;
                    packet.header.extensions.clear();
                    let _ = to.write_rtp(packet).await;
                }
                TrackRemoteEvent::OnEnded => break,
                _ => {}
            }
            let due =
                keyframe_asked.is_none_or(|at| at.elapsed() > std::time::Duration::from_secs(1));
            if kind == RtpCodecKind::Video && due {
                keyframe_asked = Some(tokio::time::Instant::now());
                let request = PictureLossIndication {
                    sender_ssrc: ssrc,
                    media_ssrc,
                };
                let _ = track.write_rtcp(vec![Box::new(request)]).await;
            }
        }
    });
}

impl Middle {
    /// Alice's offer to Bob: answered by Mallory (later), and Mallory's own offer for Bob.
    async fn start(
        alice: PeerId,
        call_id: CallId,
        offer: String,
        events: &mpsc::UnboundedSender<(Side, PcEvent)>,
    ) -> (Middle, String) {
        let toward_alice = peer_connection(Side::Alice, events).await;
        toward_alice
            .set_remote_description(RTCSessionDescription::offer(offer).unwrap())
            .await
            .unwrap();
        let to_alice = add_tracks(&toward_alice, 0x3a11_0001).await;
        let toward_bob = peer_connection(Side::Bob, events).await;
        let to_bob = add_tracks(&toward_bob, 0x3a11_0011).await;
        let init = RTCDataChannelInit {
            ordered: true,
            ..Default::default()
        };
        let bob_chat = toward_bob
            .create_data_channel(CHAT_CHANNEL_LABEL, Some(init))
            .await
            .unwrap();
        let offer = toward_bob.create_offer(None).await.unwrap();
        toward_bob
            .set_local_description(offer.clone())
            .await
            .unwrap();
        let middle = Middle {
            alice,
            call_id,
            toward_alice,
            toward_bob,
            to_alice,
            to_bob,
            bob_chat,
        };
        (middle, offer.sdp)
    }

    /// Bob's answer goes to Mallory's connection; Alice gets Mallory's answer instead.
    async fn answer(&self, bob_answer: String) -> String {
        self.toward_bob
            .set_remote_description(RTCSessionDescription::answer(bob_answer).unwrap())
            .await
            .unwrap();
        let answer = self.toward_alice.create_answer(None).await.unwrap();
        self.toward_alice
            .set_local_description(answer.clone())
            .await
            .unwrap();
        answer.sdp
    }
}

/// Relays the chat between Alice's channel and Mallory's to Bob: what arrives before the
/// other channel is open waits for its `OnOpen`.
fn relay_chat(alice: Arc<dyn DataChannel>, bob: Arc<dyn DataChannel>) {
    tokio::spawn(async move {
        let channels = [alice, bob];
        let mut open = [false, false];
        for (i, channel) in channels.iter().enumerate() {
            open[i] = matches!(channel.ready_state().await, Ok(RTCDataChannelState::Open));
        }
        // Messages for each channel, held until it opens.
        let mut held: [Vec<String>; 2] = Default::default();
        loop {
            let (from, event) = tokio::select! {
                Some(event) = channels[0].poll() => (0, event),
                Some(event) = channels[1].poll() => (1, event),
                else => break,
            };
            let to = 1 - from;
            match event {
                DataChannelEvent::OnOpen => {
                    open[from] = true;
                    for text in held[from].drain(..) {
                        let _ = channels[from].send_text(&text).await;
                    }
                }
                DataChannelEvent::OnMessage(message) => {
                    let text = String::from_utf8_lossy(&message.data).into_owned();
                    if open[to] {
                        let _ = channels[to].send_text(&text).await;
                    } else {
                        held[to].push(text);
                    }
                }
                DataChannelEvent::OnClose => break,
                _ => {}
            }
        }
    });
}

fn add_candidate(pc: &Arc<dyn PeerConnection>, init: RTCIceCandidateInit) {
    let pc = pc.clone();
    tokio::spawn(async move {
        let _ = pc.add_ice_candidate(init).await;
    });
}

/// A signaling server that swaps fingerprints: it stands in front of the real one for whoever
/// connects to `listener` (Bob) and puts Mallory's peer connections between him and the
/// caller.
async fn malicious_server(listener: TcpListener, real: String) {
    let (socket, _) = listener.accept().await.unwrap();
    let bob = tokio_tungstenite::accept_async(socket).await.unwrap();
    let (server, _) = tokio_tungstenite::connect_async(&real).await.unwrap();
    let (mut to_bob, mut from_bob) = bob.split();
    let (mut to_server, mut from_server) = server.split();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut middle: Option<Middle> = None;
    let server_text = |msg: &ServerMessage| Message::text(serde_json::to_string(msg).unwrap());
    let client_text = |msg: &ClientMessage| Message::text(serde_json::to_string(msg).unwrap());
    loop {
        tokio::select! {
            frame = from_server.next() => {
                let Some(Ok(frame)) = frame else { break };
                let Message::Text(text) = &frame else { continue };
                match (parse_server_message(text), &middle) {
                    (Ok(ServerMessage::Offer { from, from_name, call_id, sdp }), None) => {
                        let (m, sdp) = Middle::start(from.clone(), call_id.clone(), sdp, &events_tx).await;
                        middle = Some(m);
                        let offer = ServerMessage::Offer { from, from_name, call_id, sdp };
                        to_bob.send(server_text(&offer)).await.unwrap();
                    }
                    (Ok(ServerMessage::Candidate { candidate: Some(candidate), .. }), Some(m)) => {
                        add_candidate(&m.toward_alice, from_signal(candidate));
                    }
                    (Ok(ServerMessage::Candidate { .. }), Some(_)) => {}
                    _ => to_bob.send(frame).await.unwrap(),
                }
            }
            frame = from_bob.next() => {
                let Some(Ok(frame)) = frame else { break };
                let Message::Text(text) = &frame else { continue };
                match (parse_client_message(text), &middle) {
                    (Ok(ClientMessage::Answer { to, call_id, sdp }), Some(m)) => {
                        let sdp = m.answer(sdp).await;
                        let answer = ClientMessage::Answer { to, call_id, sdp };
                        to_server.send(client_text(&answer)).await.unwrap();
                    }
                    (Ok(ClientMessage::Candidate { candidate: Some(candidate), .. }), Some(m)) => {
                        add_candidate(&m.toward_bob, from_signal(candidate));
                    }
                    (Ok(ClientMessage::Candidate { .. }), Some(_)) => {}
                    _ => to_server.send(frame).await.unwrap(),
                }
            }
            Some((side, event)) = events.recv() => {
                let Some(m) = &middle else { continue };
                match (side, event) {
                    (Side::Alice, PcEvent::Candidate(init)) => {
                        let candidate = ClientMessage::Candidate {
                            to: m.alice.clone(),
                            call_id: m.call_id.clone(),
                            candidate: Some(to_signal(init)),
                        };
                        to_server.send(client_text(&candidate)).await.unwrap();
                    }
                    (Side::Bob, PcEvent::Candidate(init)) => {
                        let candidate = ServerMessage::Candidate {
                            from: m.alice.clone(),
                            call_id: m.call_id.clone(),
                            candidate: Some(to_signal(init)),
                        };
                        to_bob.send(server_text(&candidate)).await.unwrap();
                    }
                    (Side::Alice, PcEvent::DataChannel(alice_chat)) => {
                        relay_chat(alice_chat, m.bob_chat.clone());
                    }
                    (side, PcEvent::Track(track)) => {
                        let kind = track.kind().await;
                        let to = match side {
                            Side::Alice => m.to_bob.of(kind),
                            Side::Bob => m.to_alice.of(kind),
                        };
                        relay_media(track, kind, to);
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(m) = middle {
        let _ = m.toward_alice.close().await;
        let _ = m.toward_bob.close().await;
    }
}

async fn proven_identity(peer: &mut Peer) -> PeerIdentity {
    peer.wait_for(|event| match event {
        EngineEvent::Identity(identity) if identity.safety_code.is_some() => Some(identity.clone()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_man_in_the_middle_cannot_make_the_codes_match() {
    let server = Server::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mallory_url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let mallory = tokio::spawn(malicious_server(listener, server.url()));

    let mut alice = Peer::join(&server, "Alice", PeerSetup::default()).await;
    let mut bob = Peer::join_url(&mallory_url, "Bob", PeerSetup::default()).await;
    let bob_id = alice.sees("Bob").await;
    alice.send(confab_call::Command::Call { peer: bob_id });
    assert_eq!(bob.incoming().await, "Alice");
    bob.send(confab_call::Command::Accept);
    tokio::time::timeout(PATIENCE, async {
        tokio::join!(alice.connected(), bob.connected());
    })
    .await
    .expect("both sides think they are connected");

    // Each side sees a certificate, and a code, of Mallory's.
    let (of_bob, of_alice) = tokio::join!(proven_identity(&mut alice), proven_identity(&mut bob));
    assert_eq!(
        (of_bob.peer_name.as_str(), of_alice.peer_name.as_str()),
        ("Bob", "Alice")
    );
    assert_ne!(
        of_bob.safety_code, of_alice.safety_code,
        "the codes must differ when someone is in the middle"
    );

    // The call works through Mallory: each side decodes the other's pictures, and the chat
    // goes both ways and is acknowledged.
    assert_eq!(bob.pictures(30), 30, "Bob sees Alice through Mallory");
    assert_eq!(alice.pictures(30), 30, "Alice sees Bob through Mallory");
    alice.send(confab_call::Command::SendChat("hello Bob".into()));
    bob.chat(|e| matches!(e, ChatEvent::Received { text, .. } if text == "hello Bob"))
        .await;
    alice
        .chat(|e| matches!(e, ChatEvent::Delivered { .. }))
        .await;
    bob.send(confab_call::Command::SendChat("hello Alice".into()));
    alice
        .chat(|e| matches!(e, ChatEvent::Received { text, .. } if text == "hello Alice"))
        .await;

    // Without Mallory, the same two engines agree.
    alice.send(confab_call::Command::HangUp);
    alice.ended().await;
    bob.ended().await;
    let mut carol = Peer::join(&server, "Carol", PeerSetup::quiet()).await;
    let carol_id = alice.sees("Carol").await;
    alice.send(confab_call::Command::Call { peer: carol_id });
    carol.incoming().await;
    carol.send(confab_call::Command::Accept);
    let (of_carol, of_alice) =
        tokio::join!(proven_identity(&mut alice), proven_identity(&mut carol));
    assert_eq!(of_carol.safety_code, of_alice.safety_code);

    alice.shutdown().await;
    bob.shutdown().await;
    carol.shutdown().await;
    mallory.abort();
    server.shutdown().await;
}
