//! Calls in a row leave nothing behind: threads, file descriptors and the live heap come
//! back to where they were after three warm-up calls. 20 calls in `make test`;
//! `CONFAB_CALL_CYCLES=200` for issue 6's long run (about 30 s; docs/reliability.md). Its
//! own test binary, so that nothing else runs in the process while it counts.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

/// The allocator the `confab` binary runs with, so that memory is measured as users see it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::time::{Duration, Instant};

use confab_call::{Command, EngineEvent};
use support::{Peer, PeerSetup, Server, connect};

#[derive(Debug, Clone, Copy)]
struct Resources {
    threads: usize,
    fds: usize,
    /// Bytes the program holds on the heap: what a leak grows. (Not RSS: that also carries
    /// what the allocator keeps cached for a while after it is freed, 60-90 MB here.)
    heap_kib: u64,
    /// Reported, not checked: it moves with what the allocator caches.
    rss_kib: u64,
}

fn resources() -> Resources {
    let count = |dir: &str| std::fs::read_dir(dir).map_or(0, |d| d.count());
    // jemalloc's statistics are refreshed when the epoch advances.
    let heap_kib = tikv_jemalloc_ctl::epoch::advance()
        .and_then(|_| tikv_jemalloc_ctl::stats::allocated::read())
        .map_or(0, |bytes| bytes as u64 / 1024);
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0);
    Resources {
        threads: count("/proc/self/task"),
        fds: count("/proc/self/fd"),
        heap_kib,
        rss_kib,
    }
}

/// One call: connect, see video arrive, hang up, wait until both sides released it.
async fn one_call(alice: &mut Peer, bob: &mut Peer) {
    connect(alice, bob).await;
    let frame =
        tokio::task::block_in_place(|| bob.engine.remote_video.wait_take(support::PATIENCE));
    assert!(frame.is_some(), "no video arrived");
    alice.send(Command::HangUp);
    for peer in [alice, bob] {
        peer.wait_for(|e| matches!(e, EngineEvent::Summary(_)).then_some(()))
            .await;
    }
}

#[test]
fn repeated_calls_leave_no_threads_descriptors_or_memory_behind() {
    let cycles: usize = std::env::var("CONFAB_CALL_CYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    // Short-lived blocking threads (device opening) must not blur the thread count.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(100))
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = Server::start().await;
        let mut alice = Peer::join(&server, "Alice", PeerSetup::default()).await;
        let mut bob = Peer::join(&server, "Bob", PeerSetup::default()).await;

        // The first calls warm up what is made once (codec tables, allocator pools).
        for _ in 0..3 {
            one_call(&mut alice, &mut bob).await;
        }
        let baseline = settled(None).await;
        let started = Instant::now();
        for _ in 0..cycles {
            one_call(&mut alice, &mut bob).await;
        }
        let after = settled(Some(baseline)).await;
        eprintln!(
            "after three calls: {baseline:?}; after {cycles} more ({:.0} s): {after:?}; \
             RSS {} -> {} KiB",
            started.elapsed().as_secs_f64(),
            baseline.rss_kib,
            after.rss_kib
        );
        assert!(
            after.threads <= baseline.threads,
            "threads: {baseline:?} -> {after:?}"
        );
        assert!(
            after.fds <= baseline.fds,
            "file descriptors: {baseline:?} -> {after:?}"
        );
        assert!(baseline.heap_kib > 0, "jemalloc statistics are unavailable");
        assert!(
            after.heap_kib <= baseline.heap_kib + baseline.heap_kib / 10,
            "heap grew more than 10%: {baseline:?} -> {after:?}"
        );
        alice.shutdown().await;
        bob.shutdown().await;
        server.shutdown().await;
    });
}

/// Resources once released threads and sockets are gone: waits (up to 5 s) until the counts
/// are no higher than `target`'s, or stop changing.
async fn settled(target: Option<Resources>) -> Resources {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = resources();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = resources();
        let reached = target.is_some_and(|t| now.threads <= t.threads && now.fds <= t.fds);
        let steady = target.is_none() && now.threads == last.threads && now.fds == last.fds;
        if reached || steady || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}
