//! Files sent in a call, between real engines over the real signaling server and real
//! WebRTC (data channels over SCTP over DTLS over ICE on loopback), written to real
//! folders: whole files checked by their SHA-256, cancels from each side, a file that
//! changes after it was offered, a full disk, a sender killed mid-transfer, and a 1 GiB
//! file received by a `confab headless` whose memory is watched.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use confab_call::{
    AudioInput, Command, Direction, EngineEvent, FileId, FileSettings, Transfer, TransferState,
    VideoInput, sha256_of,
};
use support::{Peer, PeerSetup, Server, connect, temp_path};

/// How long a transfer may take here before the test gives up on it.
const TRANSFER_PATIENCE: Duration = Duration::from_secs(240);

/// A folder of its own for one test.
fn folder(name: &str) -> PathBuf {
    let dir = temp_path(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn setup(downloads: &Path) -> PeerSetup {
    PeerSetup {
        files: FileSettings {
            download_dir: downloads.to_path_buf(),
            max_size: confab_call::DEFAULT_MAX_FILE_SIZE,
        },
        ..PeerSetup::quiet()
    }
}

/// The next news of a transfer that `pick` wants.
async fn transfer(peer: &mut Peer, mut pick: impl FnMut(&Transfer) -> bool) -> Transfer {
    let name = peer.name.clone();
    tokio::time::timeout(TRANSFER_PATIENCE, async {
        loop {
            match peer.events.recv().await.expect("the engine stopped") {
                EngineEvent::File(t) if pick(&t) => return t,
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name}: no such transfer news"))
}

/// Alice (files from `alice_dir`) and Bob (saving into `bob_downloads`) in a call.
async fn in_a_call(server: &Server, alice_dir: &Path, bob_downloads: &Path) -> (Peer, Peer) {
    let mut alice = Peer::join(server, "Alice", setup(alice_dir)).await;
    let mut bob = Peer::join(server, "Bob", setup(bob_downloads)).await;
    connect(&mut alice, &mut bob).await;
    (alice, bob)
}

/// Alice sends `path`: her transfer once it is being prepared, and Bob's offer.
async fn offered(alice: &mut Peer, bob: &mut Peer, path: &Path) -> (Transfer, FileId) {
    alice.send(Command::SendFile(path.to_path_buf()));
    let mine = transfer(alice, |t| t.state == TransferState::Preparing).await;
    (mine, offer_to(bob).await)
}

/// Bob's side of an offer from Alice, once it arrives.
async fn offer_to(bob: &mut Peer) -> FileId {
    let offer = transfer(bob, |t| t.state == TransferState::Offered).await;
    assert_eq!(offer.direction, Direction::Receiving);
    offer.file
}

async fn over(peer: &mut Peer, file: FileId) -> Transfer {
    transfer(peer, |t| t.file == file && t.state.is_over()).await
}

/// Bob accepts, and the transfer fails on his side with `reason`, which Alice is told;
/// nothing is left in `folder`.
async fn accepted_and_failed(
    (alice, bob): (&mut Peer, &mut Peer),
    (mine, theirs): (FileId, FileId),
    reason: &str,
    folder: &Path,
) {
    bob.send(Command::AcceptFile(theirs));
    let reason = reason.to_string();
    let failed = over(bob, theirs).await.state;
    assert_eq!(
        failed,
        TransferState::Failed {
            reason: reason.clone()
        }
    );
    let cancelled = over(alice, mine).await.state;
    let by_us = false;
    assert_eq!(cancelled, TransferState::Cancelled { by_us, reason });
    assert!(files_in(folder).is_empty(), "{:?}", files_in(folder));
}

/// Alice hangs up; both engines stop.
async fn hang_up(alice: Peer, mut bob: Peer) {
    alice.send(Command::HangUp);
    bob.ended().await;
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_file_arrives_whole_while_audio_and_video_go_on() {
    let server = Server::start().await;
    let dir = folder("files-200mb");
    let downloads = dir.join("Downloads");
    let original = dir.join("holiday video.bin");
    support::random_file(&original, 200 << 20);
    let bob_wav = temp_path("files-bob-hears.wav");
    let mut alice = Peer::join(&server, "Alice", setup(&dir)).await;
    let bob_setup = PeerSetup {
        record_audio: Some(bob_wav.clone()),
        ..setup(&downloads)
    };
    let mut bob = Peer::join(&server, "Bob", bob_setup).await;
    connect(&mut alice, &mut bob).await;
    let connected = Instant::now();
    // Pictures arriving before the file: the call is in full flow.
    bob.wait_for(|e| match e {
        EngineEvent::Stats(s) => s.video_in.as_ref().filter(|v| v.fps > 20.0).cloned(),
        _ => None,
    })
    .await;

    let (mine, theirs) = offered(&mut alice, &mut bob, &original).await;
    assert_eq!(mine.name, "holiday video.bin");
    assert!(!downloads.exists(), "nothing is written before Accept");
    let started = Instant::now();
    bob.send(Command::AcceptFile(theirs));
    // Bob's pictures per second while the file arrives.
    let mut fps = Vec::new();
    let done = tokio::time::timeout(TRANSFER_PATIENCE, async {
        loop {
            match bob.events.recv().await.expect("the engine stopped") {
                EngineEvent::File(t) if t.file == theirs && t.state.is_over() => return t,
                EngineEvent::Stats(s) => fps.push(s.video_in.map_or(0.0, |v| v.fps)),
                _ => {}
            }
        }
    })
    .await
    .expect("the file arrived");
    let took = started.elapsed();
    let TransferState::Done {
        saved_to: Some(saved),
    } = &done.state
    else {
        panic!("{done:?}");
    };
    assert_eq!(saved, &downloads.join("holiday video.bin"));
    let sent = over(&mut alice, mine.file).await;
    assert_eq!(sent.state, TransferState::Done { saved_to: None });
    assert_eq!(sent.bytes, 200 << 20);
    assert_eq!(sha256_of(saved).unwrap(), sha256_of(&original).unwrap());
    assert_eq!(files_in(&downloads), ["holiday video.bin"], "no .part left");
    let mb_per_s = 200.0 * 1.048_576 / took.as_secs_f64();
    println!("200 MiB over loopback in {took:.2?}: {mb_per_s:.1} MB/s (debug build)");

    // The call went on: pictures kept coming and the tone never stopped for 100 ms.
    println!("Bob's video during the transfer, frames per second: {fps:?}");
    let slowest = fps.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(slowest >= 10.0, "video fell to {slowest} fps: {fps:?}");
    alice.send(Command::HangUp);
    bob.ended().await;
    bob.shutdown().await;
    let skip = started - connected + Duration::from_millis(200);
    let gap = support::longest_audio_gap(
        &bob_wav,
        skip,
        took.saturating_sub(Duration::from_millis(400)),
    );
    println!("longest audio gap during the transfer: {gap:?}");
    assert!(
        gap <= Duration::from_millis(100),
        "{gap:?} of silence during the transfer"
    );
    alice.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&bob_wav);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_side_cancels_and_no_partial_file_is_left() {
    let server = Server::start().await;
    let dir = folder("files-cancel");
    let downloads = dir.join("Downloads");
    let original = dir.join("big.bin");
    support::random_file(&original, 300 << 20);
    let (mut alice, mut bob) = in_a_call(&server, &dir, &downloads).await;
    for canceller in ["Alice", "Bob"] {
        let (mine, theirs) = offered(&mut alice, &mut bob, &original).await;
        bob.send(Command::AcceptFile(theirs));
        // Under way: bytes are written, a .part file exists.
        transfer(&mut bob, |t| t.file == theirs && t.bytes > 0).await;
        assert!(files_in(&downloads)[0].ends_with(".part"));
        let (who, other, file, other_file) = match canceller {
            "Alice" => (&mut alice, &mut bob, mine.file, theirs),
            _ => (&mut bob, &mut alice, theirs, mine.file),
        };
        who.send(Command::CancelFile(file));
        let reason = "cancelled".to_string();
        let mine_over = over(who, file).await.state;
        assert_eq!(
            mine_over,
            TransferState::Cancelled {
                by_us: true,
                reason: reason.clone()
            }
        );
        let theirs_over = over(other, other_file).await.state;
        assert_eq!(
            theirs_over,
            TransferState::Cancelled {
                by_us: false,
                reason
            }
        );
        // Bob's driver deletes the partial file before it takes the next command.
        bob.send(Command::SendChat("after".into()));
        bob.chat(|c| matches!(c, confab_call::ChatEvent::Sent { .. }))
            .await;
        assert!(
            files_in(&downloads).is_empty(),
            "{canceller}: {:?}",
            files_in(&downloads)
        );
    }
    hang_up(alice, bob).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_after_its_offer_fails_its_hash_and_is_deleted() {
    let server = Server::start().await;
    let dir = folder("files-changed");
    let downloads = dir.join("Downloads");
    let original = dir.join("notes.txt");
    support::random_file(&original, 3 << 20);
    let (mut alice, mut bob) = in_a_call(&server, &dir, &downloads).await;
    let (mine, theirs) = offered(&mut alice, &mut bob, &original).await;
    // Hashed and offered; now the file changes under the sender (same size).
    support::random_file(&original, 1 << 20);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&original)
        .unwrap()
        .write_all(&vec![7u8; 2 << 20])
        .unwrap();
    let reason = "the file arrived damaged: its SHA-256 does not match";
    let pair = (&mut alice, &mut bob);
    accepted_and_failed(pair, (mine.file, theirs), reason, &downloads).await;
    hang_up(alice, bob).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 1 MiB tmpfs, mounted for the test (the tests run as root, as the network tests do).
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root: {status}");
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_clear_error_and_the_partial_file_goes() {
    let server = Server::start().await;
    let dir = folder("files-full-disk");
    let disk = SmallDisk::mount(&dir.join("small"));
    let original = dir.join("photos.zip");
    support::random_file(&original, 5 << 20);
    let (mut alice, mut bob) = in_a_call(&server, &dir, &disk.0).await;
    let (mine, theirs) = offered(&mut alice, &mut bob, &original).await;
    let pair = (&mut alice, &mut bob);
    accepted_and_failed(pair, (mine.file, theirs), "the disk is full", &disk.0).await;
    hang_up(alice, bob).await;
    drop(disk);
    let _ = std::fs::remove_dir_all(&dir);
}

fn headless(server: &Server, args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "headless",
            "--server",
            &server.url(),
            "--video",
            "none",
            "--audio",
            "none",
        ])
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_killed_mid_transfer_leaves_no_partial_file() {
    let server = Server::start().await;
    let dir = folder("files-killed");
    let downloads = dir.join("Downloads");
    let original = dir.join("dump.bin");
    support::random_file(&original, 400 << 20);
    let quick = PeerSetup {
        video: VideoInput::None,
        audio: AudioInput::None,
        ..setup(&downloads)
    };
    let mut bob = Peer::join(&server, "Bob", quick).await;
    let path = original.to_str().unwrap();
    let mut alice = headless(
        &server,
        &["--name", "Alice", "--call", "Bob", "--send-file", path],
    );
    bob.incoming().await;
    bob.send(Command::Accept);
    let theirs = offer_to(&mut bob).await;
    bob.send(Command::AcceptFile(theirs));
    transfer(&mut bob, |t| t.file == theirs && t.bytes > 0).await;
    alice.kill().unwrap();
    alice.wait().unwrap();
    let failed = over(&mut bob, theirs).await;
    assert!(
        matches!(&failed.state, TransferState::Failed { .. }),
        "{failed:?}"
    );
    // The partial file is deleted before the link is let go.
    bob.wait_for(|e| matches!(e, EngineEvent::CallFinished).then_some(()))
        .await;
    assert!(
        files_in(&downloads).is_empty(),
        "{:?}",
        files_in(&downloads)
    );
    bob.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The resident memory of a process, from /proc.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_file_is_received_in_bounded_memory() {
    let server = Server::start().await;
    let dir = folder("files-1gib");
    let downloads = dir.join("Downloads");
    let original = dir.join("disk.img");
    // Sparse: reading it costs the sender nothing; the receiver writes every byte.
    std::fs::File::create(&original)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let quick = PeerSetup {
        video: VideoInput::None,
        audio: AudioInput::None,
        ..setup(&dir)
    };
    let mut alice = Peer::join(&server, "Alice", quick).await;
    let inbox = downloads.to_str().unwrap();
    let mut bob = headless(
        &server,
        &["--name", "Bob", "--answer", "--accept-files", inbox],
    );
    let bob_id = alice.sees("Bob").await;
    alice.send(Command::Call { peer: bob_id });
    alice.connected().await;
    alice.send(Command::SendFile(original.clone()));
    let mine = transfer(&mut alice, |t| t.state == TransferState::Preparing).await;
    let mut peak = 0;
    let started = Instant::now();
    let sent = loop {
        tokio::select! {
            t = over(&mut alice, mine.file) => break t,
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                peak = peak.max(rss_bytes(bob.id()).unwrap_or(0));
            }
        }
    };
    let took = started.elapsed();
    assert_eq!(sent.state, TransferState::Done { saved_to: None });
    alice.send(Command::HangUp);
    let status = bob.wait().unwrap();
    assert!(status.success(), "the receiver exited with {status}");
    let saved = downloads.join("disk.img");
    assert_eq!(std::fs::metadata(&saved).unwrap().len(), 1 << 30);
    assert_eq!(sha256_of(&saved).unwrap(), sha256_of(&original).unwrap());
    let mb_per_s = 1024.0 * 1.048_576 / took.as_secs_f64();
    println!(
        "1 GiB in {took:.1?} ({mb_per_s:.1} MB/s); the receiver's peak RSS {} MiB",
        peak >> 20
    );
    assert!(peak > 0, "the receiver's memory was never read");
    assert!(peak < 200 << 20, "the receiver grew to {} MiB", peak >> 20);
    alice.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
