//! Group call benchmark: 2, 3, 4 and 6 people in one mesh call, each a separate
//! `confab headless` process on this machine (so all of them share its cores), sending
//! 640x480@30 test pattern and a tone. Per participant: CPU and RSS over the middle of the
//! call, video upload bitrate, and for the last to join, the time from each member's offer
//! to its first decoded frame.
//!
//! `cargo bench --bench group_call` (release build). Prints a report for
//! docs/performance.md.

// A benchmark: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::usage::usage_over;
use support::{Server, temp_path};

const NAMES: [&str; 6] = ["P1", "P2", "P3", "P4", "P5", "P6"];
/// How long the first caller stays; the others stay a little longer.
const CALL_SECS: u64 = 30;
/// Measured: the middle of the call, once everyone has joined.
const SETTLE: Duration = Duration::from_secs(10);
const WINDOW: Duration = Duration::from_secs(15);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!("## Group call benchmark (release build, every participant on this machine)\n");
    println!(
        "| people | CPU per participant (% of one core, mean / max) | RSS per participant (max) | video sent per participant | last joiner: first frame from each member (max) |"
    );
    println!("|---|---|---|---|---|");
    runtime.block_on(async {
        let server = Server::start().await;
        for people in [2, 3, 4, 6] {
            group(&server, people).await;
        }
        server.shutdown().await;
    });
}

async fn group(server: &Server, people: usize) {
    let names = &NAMES[..people];
    let stats: Vec<_> = names
        .iter()
        .map(|n| temp_path(&format!("group-bench-{n}.json")))
        .collect();
    let mut children: Vec<Child> = Vec::new();
    // Everyone but the first answers; the first calls the second and invites the rest.
    for (i, name) in names.iter().enumerate().skip(1) {
        let stay = (CALL_SECS + 2 + i as u64).to_string();
        children.push(headless(
            server,
            name,
            &["--answer", "--duration", &stay],
            &stats[i],
        ));
    }
    let mut first = vec!["--duration".to_owned(), CALL_SECS.to_string()];
    for name in &names[1..] {
        first.extend(["--call".to_owned(), (*name).to_owned()]);
    }
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    children.insert(0, headless(server, names[0], &first, &stats[0]));

    tokio::time::sleep(SETTLE).await;
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let usage = usage_over(&pids, WINDOW).await;
    let cpu: Vec<f64> = usage.iter().map(|u| u.cpu_percent).collect();
    for (name, child) in names.iter().zip(children.iter_mut()) {
        let status = tokio::task::block_in_place(|| child.wait());
        assert!(status.is_ok_and(|s| s.success()), "{name} failed");
    }

    // Video upload: every link's bytes over the time it was connected.
    let upload: Vec<f64> = stats
        .iter()
        .map(|path| {
            let report = read(path);
            let links = report["participants"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            links
                .iter()
                .map(|l| {
                    let bytes = l["video_bytes_sent"].as_f64().unwrap_or(0.0);
                    bytes * 8.0 / l["connected_secs"].as_f64().unwrap_or(f64::NAN) / 1000.0
                })
                .sum()
        })
        .collect();
    let last = read(&stats[people - 1]);
    let first_frames: Vec<f64> = last["participants"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["first_frame_ms"].as_f64())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        first_frames.len(),
        people - 1,
        "the last joiner saw everyone: {last}"
    );
    let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "| {people} | {:.0}% / {:.0}% | {:.0} MB | {:.0} kbit/s | {:.0} ms |",
        mean(&cpu),
        max(&cpu),
        usage.iter().map(|u| u.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0,
        mean(&upload),
        max(&first_frames)
    );
    for path in &stats {
        let _ = std::fs::remove_file(path);
    }
}

fn headless(server: &Server, name: &str, args: &[&str], stats: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(["headless", "--server", &server.url(), "--name", name])
        .args(["--bind", "127.0.0.1:0", "--stats"])
        .arg(stats)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("confab headless starts")
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}
