//! Keeping a loop at a fixed rate.

use std::time::{Duration, Instant};

/// Keeps a loop (a video source, an audio sender) at its rate: waits until the next event
/// is due. A loop that falls behind skips ahead instead of bursting to catch up.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Option<Instant>,
}

impl Pacer {
    /// Paces `rate` events a second.
    pub fn new(rate: u32) -> Pacer {
        Pacer {
            interval: Duration::from_secs(1) / rate.max(1),
            next: None,
        }
    }

    /// Sleeps until the next event is due.
    pub fn wait(&mut self) {
        let now = Instant::now();
        let due = self.next.unwrap_or(now);
        if due > now {
            std::thread::sleep(due - now);
        }
        let after = due + self.interval;
        self.next = Some(if after < now {
            now + self.interval
        } else {
            after
        });
    }
}
