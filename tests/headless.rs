//! `confab headless` end to end: two processes call each other through the real signaling
//! server; their exit codes, `--stats` JSON, recordings and chat echo are checked, and so are
//! the one-line reasons of the runs that must fail.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use confab_media::video::{H264Decoder, read_stamp};
use serde_json::Value;
use support::{Server, finish, temp_path};

fn headless(server: &Server, name: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confab"));
    command
        .args(["headless", "--server", &server.url(), "--name", name])
        .args(["--bind", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn stats(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines().last().unwrap_or_default().to_string()
}

/// Decodes an Annex B file; returns the test-pattern frame numbers of its pictures.
fn decoded_frame_numbers(path: &Path, size: (u32, u32)) -> Vec<u32> {
    let stream = std::fs::read(path).unwrap();
    assert!(stream.starts_with(&[0, 0, 0, 1]), "not Annex B");
    let mut decoder = H264Decoder::new().unwrap();
    let mut numbers = Vec::new();
    for access_unit in access_units(&stream) {
        if let Some(picture) = decoder.decode(access_unit).unwrap() {
            assert_eq!((picture.width(), picture.height()), size);
            let stamp = read_stamp(&picture.to_frame()).expect("a test-pattern frame");
            numbers.push(stamp.frame_number);
        }
    }
    numbers
}

/// Splits an Annex B stream (4-byte start codes) into access units: a new one begins with a
/// parameter set, SEI or delimiter after a slice, or with a slice whose first macroblock is 0.
fn access_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts: Vec<usize> = (0..stream.len().saturating_sub(4))
        .filter(|&i| stream[i..i + 4] == [0, 0, 0, 1])
        .collect();
    starts.push(stream.len());
    let mut units = Vec::new();
    let (mut begin, mut has_slice) = (0, false);
    for nal in starts.windows(2) {
        let (at, header) = (nal[0], stream.get(nal[0] + 4).copied().unwrap_or(0));
        let is_slice = matches!(header & 0x1f, 1 | 5);
        let first_slice = is_slice && stream.get(at + 5).is_some_and(|b| b & 0x80 != 0);
        if has_slice && (!is_slice || first_slice) {
            units.push(&stream[begin..at]);
            (begin, has_slice) = (at, false);
        }
        has_slice |= is_slice;
    }
    units.push(&stream[begin..]);
    units
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_headless_peers_call_record_chat_and_exit_cleanly() {
    let server = Server::start().await;
    let (bob_stats, alice_stats) = (temp_path("bob.json"), temp_path("alice.json"));
    let (video, audio) = (temp_path("bob-got.h264"), temp_path("bob-got.wav"));
    let bob = headless(
        &server,
        "Bob",
        &[
            "--answer",
            "--echo-chat",
            "--audio",
            "tone:660",
            // A tone is sent as it is either way; the switch only has to be accepted.
            "--audio-processing",
            "off",
            "--record-video",
            video.to_str().unwrap(),
            "--record-audio",
            audio.to_str().unwrap(),
            "--stats",
            bob_stats.to_str().unwrap(),
        ],
    )
    .spawn()
    .unwrap();
    let alice = headless(
        &server,
        "Alice",
        &[
            "--call",
            "bob",
            "--size",
            "320x240",
            "--duration",
            "3",
            "--chat",
            "hello there",
            "--stats",
            alice_stats.to_str().unwrap(),
        ],
    )
    .spawn()
    .unwrap();
    let alice = finish(alice).await;
    let bob = finish(bob).await;
    let alice_out = String::from_utf8_lossy(&alice.stdout);
    assert!(
        alice.status.success(),
        "{}",
        String::from_utf8_lossy(&alice.stderr)
    );
    assert!(
        bob.status.success(),
        "{}",
        String::from_utf8_lossy(&bob.stderr)
    );
    assert!(alice_out.contains("chat: echo: hello there"), "{alice_out}");

    let alice = stats(&alice_stats);
    let bob = stats(&bob_stats);
    for side in [&alice, &bob] {
        assert_eq!(side["end_reason"], "ended", "{side}");
        assert!(side["connect_ms"].as_f64().is_some(), "{side}");
        assert!(side["first_frame_ms"].as_f64().is_some(), "{side}");
        assert!(side["video_frames_decoded"].as_u64() >= Some(60), "{side}");
        assert!(
            side["audio_packets_received"].as_u64() >= Some(100),
            "{side}"
        );
        // The pattern arrives recognisably itself (a frame of another number scores
        // under 20 dB).
        assert!(side["pattern_psnr_db"].as_f64() >= Some(28.0), "{side}");
    }
    assert_eq!(bob["peer_name"], "Alice");
    assert_eq!(bob["video_size_in"], serde_json::json!([320, 240]));
    assert_eq!(alice["video_size_in"], serde_json::json!([640, 480]));
    assert_eq!(
        (
            alice["chats_sent"].as_u64(),
            alice["chats_received"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        (bob["chats_sent"].as_u64(), bob["chats_received"].as_u64()),
        (Some(1), Some(1))
    );

    // The recordings hold what Alice sent: her frames in order, her 440 Hz tone.
    let numbers = decoded_frame_numbers(&video, (320, 240));
    assert!(
        numbers.len() >= 60,
        "{} frames in the recording",
        numbers.len()
    );
    assert!(numbers.windows(2).all(|w| w[1] > w[0]), "{numbers:?}");
    let heard = support::heard_frequency(&audio);
    assert!((heard - 440.0).abs() <= 4.4, "heard {heard} Hz");

    for path in [bob_stats, alice_stats, video, audio] {
        let _ = std::fs::remove_file(path);
    }
    server.shutdown().await;
}

/// `--call` twice makes a group call: Alice calls Bob, then invites Carol; `--answer`
/// accepts the invitation. Each `--stats` file lists every member it saw and heard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_headless_peers_hold_a_group_call() {
    let server = Server::start().await;
    let paths = [
        temp_path("group-alice.json"),
        temp_path("group-bob.json"),
        temp_path("group-carol.json"),
    ];
    let small = ["--size", "320x240", "--fps", "15"];
    let answerer = |name: &str, path: &Path| {
        let mut command = headless(&server, name, &["--answer", "--duration", "6"]);
        command
            .args(small)
            .args(["--stats", path.to_str().unwrap()]);
        command.spawn().unwrap()
    };
    let bob = answerer("Bob", &paths[1]);
    let carol = answerer("Carol", &paths[2]);
    let mut alice = headless(
        &server,
        "Alice",
        &["--call", "Bob", "--call", "carol", "--duration", "4"],
    );
    alice
        .args(small)
        .args(["--stats", paths[0].to_str().unwrap()]);
    let outputs = [
        finish(alice.spawn().unwrap()).await,
        finish(bob).await,
        finish(carol).await,
    ];
    for output in &outputs {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let names = ["Alice", "Bob", "Carol"];
    for (me, path) in names.iter().zip(&paths) {
        let report = stats(path);
        let participants = report["participants"].as_array().unwrap();
        let mut seen: Vec<&str> = participants
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        seen.sort_unstable();
        let others: Vec<&str> = names.iter().copied().filter(|n| n != me).collect();
        assert_eq!(seen, others, "{me}: {report}");
        for p in participants {
            assert!(p["connect_ms"].as_f64().is_some(), "{me}: {p}");
            assert!(p["video_frames_decoded"].as_u64() > Some(10), "{me}: {p}");
            assert!(p["audio_packets_received"].as_u64() > Some(20), "{me}: {p}");
            assert!(p["latency_p50_ms"].as_f64().is_some(), "{me}: {p}");
        }
        let _ = std::fs::remove_file(path);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_exit_non_zero_with_a_one_line_reason() {
    let server = Server::start().await;
    let stats_path = temp_path("declined.json");

    // Bad flags are refused before anything starts.
    for (args, expected) in [
        (&["--call", "x", "--video", "webcam"][..], "webcam"),
        (&["--call", "x", "--size", "640"][..], "640"),
        (&["--call", "x", "--audio", "tone:loud"][..], "loud"),
        (&[][..], "--call PEER_NAME or --answer"),
    ] {
        let out = finish(headless(&server, "Carol", args).spawn().unwrap()).await;
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            last_line(&out.stderr).contains(expected),
            "{args:?}: {out:?}"
        );
    }

    // A name already online: the server refuses the second Erin.
    let first = headless(&server, "Erin", &["--answer"]).spawn().unwrap();
    let mut watcher = support::Peer::join(&server, "Watcher", Default::default()).await;
    watcher.sees("Erin").await;
    let taken = finish(
        headless(
            &server,
            "Erin",
            &["--call", "Watcher", "--stats", stats_path.to_str().unwrap()],
        )
        .spawn()
        .unwrap(),
    )
    .await;
    assert!(!taken.status.success());
    let reason = last_line(&taken.stderr);
    assert!(reason.contains("refused"), "{reason}");
    assert!(!stats_path.exists(), "no call, no stats");

    // A callee that declines: the caller exits with the reason.
    let caller = headless(&server, "Frank", &["--call", "Watcher"])
        .spawn()
        .unwrap();
    watcher.incoming().await;
    watcher.send(confab_call::Command::Decline);
    let declined = finish(caller).await;
    assert!(!declined.status.success());
    assert!(
        last_line(&declined.stderr).contains("declined"),
        "{declined:?}"
    );

    watcher.shutdown().await;
    let mut first = first;
    first.kill().unwrap();
    let _ = first.wait();
    server.shutdown().await;
}
