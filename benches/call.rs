//! Call benchmark on loopback, against the real signaling server:
//! - call setup: offer sent -> connected, and -> first decoded frame, over 20 calls
//!   (the callee accepts as soon as it rings);
//! - pipeline latency from the test-pattern stamps (capture -> decoded at the receiver) at
//!   640x480 and 1280x720, 30 fps, 10 s calls;
//! - CPU and RSS of each peer, as separate `confab headless` processes, over a 30 s two-way
//!   640x480@30 call with audio.
//!
//! `cargo bench --bench call` (release build). Prints a report for docs/performance.md.

// A benchmark: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use confab_call::{CallSummary, EngineEvent};
use confab_media::video::VideoFormat;
use support::usage::usage_over;
use support::{Peer, PeerSetup, Server, connect, temp_path};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SETUP_CALLS: usize = 20;
const LATENCY_CALL: Duration = Duration::from_secs(10);
const USAGE_CALL_SECS: u64 = 30;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!("## Call benchmark (loopback, release build)\n");
    runtime.block_on(async {
        let server = Server::start().await;
        setup_times(&server).await;
        for format in [support::VGA, HD] {
            latency(&server, format).await;
        }
        usage_per_peer(&server).await;
        server.shutdown().await;
    });
}

const HD: VideoFormat = VideoFormat {
    width: 1280,
    height: 720,
    fps: 30,
};

/// The caller's summary after hanging up; the callee's is drained too.
async fn hang_up(caller: &mut Peer, callee: &mut Peer) -> (CallSummary, CallSummary) {
    caller.send(confab_call::Command::HangUp);
    let mut summaries = Vec::new();
    for peer in [caller, callee] {
        let summary = peer
            .wait_for(|e| match e {
                EngineEvent::Summary(s) => Some(s.clone()),
                _ => None,
            })
            .await;
        summaries.push(summary);
    }
    let callee = summaries.pop().expect("two summaries");
    let caller = summaries.pop().expect("two summaries");
    (caller, callee)
}

async fn setup_times(server: &Server) {
    let mut alice = Peer::join(server, "Alice", PeerSetup::default()).await;
    let mut bob = Peer::join(server, "Bob", PeerSetup::default()).await;
    let (mut connected, mut first_frame) = (Vec::new(), Vec::new());
    for _ in 0..SETUP_CALLS {
        connect(&mut alice, &mut bob).await;
        // Stay until Alice has decoded a frame, so that the time to it is known.
        tokio::task::block_in_place(|| alice.engine.remote_video.wait_take(support::PATIENCE));
        let (summary, _) = hang_up(&mut alice, &mut bob).await;
        connected.extend(summary.connect_ms);
        first_frame.extend(summary.first_frame_ms);
    }
    println!("### Call setup, {SETUP_CALLS} calls (caller's view, callee auto-accepts)\n");
    println!("| | p50 | p95 | max |\n|---|---|---|---|");
    for (what, samples) in [
        ("offer sent -> connected", &mut connected),
        ("offer sent -> first decoded frame", &mut first_frame),
    ] {
        let [p50, p95, max] = percentiles(samples);
        println!("| {what} | {p50:.0} ms | {p95:.0} ms | {max:.0} ms |");
    }
    println!();
    alice.shutdown().await;
    bob.shutdown().await;
}

async fn latency(server: &Server, format: VideoFormat) {
    let setup = PeerSetup {
        format,
        ..PeerSetup::default()
    };
    let mut alice = Peer::join(server, "Alice", setup.clone()).await;
    let mut bob = Peer::join(server, "Bob", setup).await;
    connect(&mut alice, &mut bob).await;
    // Both sides render, as the app does: take frames while the call runs.
    let deadline = Instant::now() + LATENCY_CALL;
    tokio::task::block_in_place(|| {
        while Instant::now() < deadline {
            alice
                .engine
                .remote_video
                .wait_take(Duration::from_millis(5));
            bob.engine.remote_video.take();
        }
    });
    let (a, b) = hang_up(&mut alice, &mut bob).await;
    println!(
        "### Pipeline latency at {}x{}@{} (capture -> decoded, from the frame stamps)\n",
        format.width, format.height, format.fps
    );
    println!("| receiver | p50 | p95 | frames decoded | samples |\n|---|---|---|---|---|");
    for (name, s) in [("Alice", a), ("Bob", b)] {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {} | {} |",
            s.latency_p50_ms.unwrap_or(f64::NAN),
            s.latency_p95_ms.unwrap_or(f64::NAN),
            s.video_frames_decoded,
            s.latency_samples
        );
    }
    println!();
    alice.shutdown().await;
    bob.shutdown().await;
}

/// Two `confab headless` processes in a two-way 640x480@30 call with audio (each records
/// the audio it receives, as a speaker would consume it).
async fn usage_per_peer(server: &Server) {
    let peers = [
        ("Bob", vec!["--answer".to_owned()]),
        (
            "Alice",
            vec![
                "--call".into(),
                "Bob".into(),
                "--duration".into(),
                USAGE_CALL_SECS.to_string(),
            ],
        ),
    ];
    let mut children: Vec<(&str, Child)> = Vec::new();
    for (name, args) in peers {
        let wav = temp_path(&format!("bench-{name}.wav"));
        let child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .args(["headless", "--server", &server.url(), "--name", name])
            .args(["--bind", "127.0.0.1:0", "--record-audio"])
            .arg(&wav)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("confab headless starts");
        children.push((name, child));
    }
    // Measure the middle of the call: from 5 s after start (connected, ramped up) to 5 s
    // before its end.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let window = Duration::from_secs(USAGE_CALL_SECS - 10);
    let pids: Vec<u32> = children.iter().map(|(_, c)| c.id()).collect();
    let usage = usage_over(&pids, window).await;
    println!(
        "### Per peer, two-way 640x480@30 + Opus, {}-process call (middle {} s)\n",
        children.len(),
        window.as_secs()
    );
    println!("| peer | CPU (% of one core) | RSS peak |\n|---|---|---|");
    for ((name, child), usage) in children.iter_mut().zip(&usage) {
        println!(
            "| {name} | {:.1}% | {:.1} MB |",
            usage.cpu_percent,
            usage.peak_rss_kib as f64 / 1024.0
        );
        let status = tokio::task::block_in_place(|| child.wait());
        assert!(status.is_ok_and(|s| s.success()), "{name} failed");
    }
    println!();
    for name in ["Alice", "Bob"] {
        let _ = std::fs::remove_file(temp_path(&format!("bench-{name}.wav")));
    }
}

fn percentiles(samples: &mut [f64]) -> [f64; 3] {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).copied().unwrap_or(f64::NAN)
    };
    [at(0.5), at(0.95), at(1.0)]
}
