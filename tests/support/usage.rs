//! What a process costs, read from /proc: for the benchmarks that run `confab headless`.

use std::path::Path;
use std::time::{Duration, Instant};

/// What one process cost over a window.
pub struct Usage {
    /// CPU time over wall time, in % of one core.
    pub cpu_percent: f64,
    /// The highest resident memory sampled (every 0.5 s), KiB.
    pub peak_rss_kib: u64,
}

/// What each of `pids` costs over the next `window`.
pub async fn usage_over(pids: &[u32], window: Duration) -> Vec<Usage> {
    let before: Vec<f64> = pids.iter().map(|&pid| cpu_secs(pid)).collect();
    let started = Instant::now();
    let mut peak = vec![0u64; pids.len()];
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (peak, &pid) in peak.iter_mut().zip(pids) {
            *peak = (*peak).max(rss_kib(pid));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    pids.iter()
        .zip(before)
        .zip(peak)
        .map(|((&pid, before), peak_rss_kib)| Usage {
            cpu_percent: (cpu_secs(pid) - before) / elapsed * 100.0,
            peak_rss_kib,
        })
        .collect()
}

/// user + system time of a process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at "state"; utime and
    // stime are the 14th and 15th fields overall.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // /proc reports times in USER_HZ ticks, which Linux fixes at 100 per second.
    (field(11) + field(12)) as f64 / 100.0
}

/// Resident memory, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(Path::new(&format!("/proc/{pid}/status")));
    status
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
