//! Files in a call, release build: `cargo bench --bench files`. Prints a report for
//! docs/performance.md:
//! - throughput over loopback: 200 MiB from Alice to Bob during a two-way 640x480@30 call;
//! - throughput over a simulated 50 ms round trip (25 ms each way, a 100 Mbit/s
//!   bottleneck), 100 MiB, during the same call;
//! - Bob's video latency (capture -> decoded, from the test-pattern stamps) second by
//!   second for 8 s before the transfer and during it, on each path.
//!
//! While tuning: `FILES_BENCH_LOOPBACK_ONLY=1` or `FILES_BENCH_DELAY_ONLY=1` (20 MiB) run
//! one path, and `--profile dev` skips the release build.

// A benchmark: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use confab_call::{Command, EngineEvent, FileSettings, TransferState};
use confab_netsim::{LinkConditions, SimulatedLink};
use support::{Peer, PeerSetup, Server, connect, temp_path};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Seconds of the call measured before the transfer.
const BEFORE: usize = 8;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!("## Files in a call (release build)\n");
    println!("| path | file | throughput | Bob's video latency p95, per second: before | during |");
    println!("|---|---|---|---|---|");
    runtime.block_on(async {
        let server = Server::start().await;
        let only_delay = std::env::var("FILES_BENCH_DELAY_ONLY").is_ok();
        let only_loopback = std::env::var("FILES_BENCH_LOOPBACK_ONLY").is_ok();
        if !only_delay {
            transfer(&server, "loopback", None, 200).await;
        }
        if only_loopback {
            return server.shutdown().await;
        }
        // A path with a bottleneck, as real ones have: without one the link would hand
        // SCTP's bursts to the receiving socket all at once (its buffer overflows).
        let delay = LinkConditions {
            delay: Duration::from_millis(25),
            rate_bps: Some(100_000_000),
            ..LinkConditions::default()
        };
        let mib = if only_delay { 20 } else { 100 };
        transfer(&server, "50 ms round trip", Some(delay), mib).await;
        server.shutdown().await;
    });
}

async fn transfer(server: &Server, path: &str, conditions: Option<LinkConditions>, mib: usize) {
    let dir = temp_path("bench-files");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("payload.bin");
    support::random_file(&file, mib << 20);
    let setup = |seed: u64| PeerSetup {
        link: conditions.clone().map(|c| SimulatedLink::new(c, seed)),
        files: FileSettings {
            download_dir: dir.join("Downloads"),
            max_size: 1 << 30,
        },
        ..PeerSetup::default()
    };
    let mut alice = Peer::join(server, "Alice", setup(1)).await;
    let mut bob = Peer::join(server, "Bob", setup(2)).await;
    connect(&mut alice, &mut bob).await;
    // Both sides take their frames as the app would.
    let stop = Arc::new(AtomicBool::new(false));
    let viewers: Vec<_> = [&alice, &bob]
        .into_iter()
        .map(|peer| {
            let (slot, stop) = (peer.engine.remote_video.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    slot.wait_take(Duration::from_millis(20));
                }
            })
        })
        .collect();

    let mut before = Vec::new();
    while before.len() < BEFORE {
        let p95 = bob
            .wait_for(|e| match e {
                EngineEvent::Stats(s) => Some(s.latency_p95_ms),
                _ => None,
            })
            .await;
        before.extend(p95);
    }
    alice.send(Command::SendFile(file.clone()));
    let offer = bob
        .wait_for(|e| match e {
            EngineEvent::File(t) if t.state == TransferState::Offered => Some(t.file),
            _ => None,
        })
        .await;
    let started = Instant::now();
    bob.send(Command::AcceptFile(offer));
    let mut during = Vec::new();
    let done = loop {
        let Some(event) = bob.events.recv().await else {
            panic!("Bob's engine stopped");
        };
        match event {
            EngineEvent::Stats(s) => during.extend(s.latency_p95_ms),
            EngineEvent::File(t) if t.file == offer && t.state.is_over() => break t,
            _ => {}
        }
    };
    let took = started.elapsed();
    assert!(matches!(done.state, TransferState::Done { .. }), "{done:?}");
    stop.store(true, Ordering::Relaxed);
    for viewer in viewers {
        viewer.join().unwrap();
    }
    let mb_per_s = (mib << 20) as f64 / 1e6 / took.as_secs_f64();
    println!(
        "| {path} | {mib} MiB | {mb_per_s:.1} MB/s ({took:.1?}) | {} | {} |",
        spread(&mut before),
        spread(&mut during)
    );
    alice.send(Command::HangUp);
    bob.ended().await;
    alice.shutdown().await;
    bob.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// "median M ms, worst W ms" of per-second values.
fn spread(values: &mut [f64]) -> String {
    if values.is_empty() {
        return "none".into();
    }
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    let worst = values[values.len() - 1];
    format!(
        "median {median:.0} ms, worst {worst:.0} ms ({} s)",
        values.len()
    )
}
