//! What a safety code costs to derive (10,400 SHA-512 rounds: 5,200 per identity), once per
//! link when its DTLS handshake is done, on the engine's driver task.
//!
//! Run: `cargo bench -p confab-protocol --bench safety_code` (release build; numbers in
//! docs/performance.md). It prints the median and the slowest of 200 derivations; there is
//! nothing to pass or fail. `cargo test --benches` runs it once, with 5.

// A benchmark: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use confab_protocol::safety::{Fingerprint, SafetyCode};

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once, quickly.
    let runs = if std::env::args().any(|a| a == "--bench") {
        200
    } else {
        5
    };
    let ours = Fingerprint([0xa1; 32]);
    let mut times: Vec<Duration> = (0..runs)
        .map(|i| {
            let theirs = Fingerprint([i as u8; 32]);
            let started = Instant::now();
            std::hint::black_box(SafetyCode::derive(&ours, std::hint::black_box(&theirs)));
            started.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "safety code: {runs} derivations, median {:.2} ms, slowest {:.2} ms",
        ms(times[runs / 2]),
        ms(times[runs - 1])
    );
}
