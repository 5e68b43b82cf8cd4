//! Congestion control: how fast to send, from how late packets arrive.
//!
//! webrtc-rs 0.21's GCC misjudged every impaired path we tried. Under a cap from 2 Mbit/s
//! to 300 kbit/s its delay-based half never signalled overuse: the target stayed at
//! 1.5 Mbit/s and the delay grew until its send history (2 s) no longer matched the
//! feedback, which froze the estimate for good. Under 50 +- 30 ms of jitter, with no queue
//! and no loss, both halves sank to the 100 kbit/s floor: the delay half read jitter as
//! overuse, and the loss half counted packets still in flight behind reordered ones as
//! lost. [`QueueGuard`] uses the plainest signal there is instead: how much later than the
//! fastest packet seen lately each packet arrives (the queue it met). When that passes
//! [`HIGH_QUEUE`], the target drops under the rate that actually arrives; while the queue
//! stays short it grows again. Jitter that does not build a queue moves nothing, and
//! neither does random loss (sending less does not make a lossy radio lose less); loss
//! from a full queue comes with the queue, which is what it reacts to.
//!
//! Sans-I/O: feedback and instants in, a number out. The driver adapts its transport's
//! feedback reports (TWCC) into [`PacketFeedback`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the receiver's feedback says about one packet we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketFeedback {
    /// When it left here (released by the pacer, not queued for it).
    pub departure: Instant,
    /// When it arrived, on the receiver's clock (an offset from an epoch of its own);
    /// `None` when the receiver reports it missing.
    pub arrival: Option<Duration>,
    /// Size on the wire, in bytes.
    pub size: usize,
}

/// Queueing delay above which the guard cuts.
const HIGH_QUEUE: Duration = Duration::from_millis(120);
/// Queueing delay under which the cap may grow again.
const LOW_QUEUE: Duration = Duration::from_millis(40);
/// A cut is followed by at least this long before another, so the feedback can show it.
const CUT_INTERVAL: Duration = Duration::from_millis(400);
/// The cut: at most this share of what arrives, less the longer the queue, so that it
/// drains in about a second.
const CUT_FACTOR: f64 = 0.85;
/// The deepest cut.
const DEEPEST_CUT: f64 = 0.5;
/// Growth of the target per second while the queue stays short (as GCC's 8%).
const GROWTH_PER_SEC: f64 = 0.08;
/// How far back the arrival rate is measured.
const RATE_WINDOW: Duration = Duration::from_millis(500);
/// The lowest one-way offset is remembered this long (bounds clock drift and route changes).
const BASE_WINDOW: Duration = Duration::from_secs(30);

pub struct QueueGuard {
    target: f64,
    min_bps: f64,
    max_bps: f64,
    epoch: Option<Instant>,
    /// (when seen, lowest arrival-minus-departure offset then), for the base over the window.
    bases: VecDeque<(Instant, f64)>,
    /// Arrivals in the rate window: (arrival on the receiver's clock, bytes).
    arrivals: VecDeque<(Duration, usize)>,
    last_cut: Option<Instant>,
    last_growth: Option<Instant>,
    /// The queueing delay seen in the newest feedback.
    queue: Duration,
}

impl QueueGuard {
    pub fn new(start_bps: f64, min_bps: f64, max_bps: f64) -> Self {
        QueueGuard {
            target: start_bps.clamp(min_bps, max_bps),
            min_bps,
            max_bps,
            epoch: None,
            bases: VecDeque::new(),
            arrivals: VecDeque::new(),
            last_cut: None,
            last_growth: None,
            queue: Duration::ZERO,
        }
    }

    /// What arrived over the rate window, bits per second.
    fn arrival_rate(&self) -> Option<f64> {
        let (first, _) = self.arrivals.front()?;
        let (last, _) = self.arrivals.back()?;
        let span = last.saturating_sub(*first).as_secs_f64();
        if span < 0.1 {
            return None;
        }
        let bytes: usize = self.arrivals.iter().map(|(_, b)| b).sum();
        Some(bytes as f64 * 8.0 / span)
    }

    fn observe(&mut self, now: Instant, reports: &[PacketFeedback]) {
        let epoch = *self.epoch.get_or_insert(now);
        // Seconds from the epoch, negative for packets that left before it.
        let since_epoch = |at: Instant| match at.checked_duration_since(epoch) {
            Some(after) => after.as_secs_f64(),
            None => -epoch.duration_since(at).as_secs_f64(),
        };
        let mut lowest = f64::INFINITY;
        let mut newest_offset = None;
        for report in reports {
            let Some(arrival) = report.arrival else {
                continue;
            };
            let offset = arrival.as_secs_f64() - since_epoch(report.departure);
            lowest = lowest.min(offset);
            newest_offset = Some(offset);
            self.arrivals.push_back((arrival, report.size));
        }
        if let Some((newest, _)) = self.arrivals.back().copied() {
            while self
                .arrivals
                .front()
                .is_some_and(|(at, _)| newest.saturating_sub(*at) > RATE_WINDOW)
            {
                self.arrivals.pop_front();
            }
        }
        if lowest.is_finite() {
            self.bases.push_back((now, lowest));
        }
        while self
            .bases
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > BASE_WINDOW)
        {
            self.bases.pop_front();
        }
        let base = self
            .bases
            .iter()
            .map(|(_, offset)| *offset)
            .fold(f64::INFINITY, f64::min);
        if let Some(offset) = newest_offset
            && base.is_finite()
        {
            self.queue = Duration::from_secs_f64((offset - base).max(0.0));
        }
    }

    fn steer(&mut self, now: Instant) {
        let since = self.last_growth.map_or(Duration::ZERO, |at| now - at);
        self.last_growth = Some(now);
        if self.queue > HIGH_QUEUE {
            let may_cut = self
                .last_cut
                .is_none_or(|at| now.duration_since(at) >= CUT_INTERVAL);
            if may_cut && let Some(arrived) = self.arrival_rate() {
                let share = (1.0 - self.queue.as_secs_f64()).clamp(DEEPEST_CUT, CUT_FACTOR);
                self.target = self.target.min(arrived * share).max(self.min_bps);
                self.last_cut = Some(now);
                tracing::debug!(
                    "queue {:?}: sending at most {:.0} bit/s",
                    self.queue,
                    self.target
                );
            }
        } else if self.queue < LOW_QUEUE {
            let grown = self.target * (1.0 + GROWTH_PER_SEC * since.as_secs_f64());
            self.target = grown.min(self.max_bps);
        }
    }
}

impl QueueGuard {
    /// Feedback arrived at `now` about these packets, in send order.
    pub fn on_feedback(&mut self, now: Instant, reports: &[PacketFeedback]) {
        if reports.is_empty() {
            return;
        }
        self.observe(now, reports);
        self.steer(now);
    }

    /// The bitrate to send at, bits per second.
    pub fn target_bitrate(&self) -> f64 {
        self.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1200-byte packets at the guard's target through a bottleneck (a FIFO queue) with
    /// 20 ms of propagation, and feedback every 100 ms of what has arrived by then.
    struct Path {
        start: Instant,
        now: f64,
        link_free: f64,
        in_flight: Vec<PacketFeedback>,
    }

    impl Path {
        fn new() -> Path {
            Path {
                start: Instant::now(),
                now: 0.0,
                link_free: 0.0,
                in_flight: Vec::new(),
            }
        }

        /// Runs `seconds` at `link_bps`; returns the longest queue the guard saw.
        fn run(&mut self, guard: &mut QueueGuard, seconds: f64, link_bps: f64) -> Duration {
            const SIZE: usize = 1200;
            // The receiver's clock is 5 s ahead: only differences may matter.
            let receiver_clock = |t: f64| Duration::from_secs_f64(t + 5.0);
            let end = self.now + seconds;
            let mut next_feedback = self.now + 0.1;
            let mut longest = Duration::ZERO;
            while self.now < end {
                self.link_free = self.link_free.max(self.now) + SIZE as f64 * 8.0 / link_bps;
                self.in_flight.push(PacketFeedback {
                    size: SIZE,
                    departure: self.start + Duration::from_secs_f64(self.now),
                    arrival: Some(receiver_clock(self.link_free + 0.02)),
                });
                self.now += SIZE as f64 * 8.0 / guard.target_bitrate();
                if self.now >= next_feedback {
                    let now = receiver_clock(self.now);
                    let (arrived, waiting) = std::mem::take(&mut self.in_flight)
                        .into_iter()
                        .partition(|r| r.arrival.is_some_and(|a| a <= now));
                    self.in_flight = waiting;
                    let arrived: Vec<PacketFeedback> = arrived;
                    guard.on_feedback(self.start + Duration::from_secs_f64(self.now), &arrived);
                    longest = longest.max(guard.queue);
                    next_feedback += 0.1;
                }
            }
            longest
        }
    }

    #[test]
    fn a_path_with_room_leaves_the_estimate_alone() {
        let mut guard = QueueGuard::new(1_000_000.0, 100_000.0, 1_000_000.0);
        let longest = Path::new().run(&mut guard, 10.0, 2_000_000.0);
        assert!(longest < LOW_QUEUE, "queue {longest:?}");
        assert_eq!(guard.target_bitrate(), 1_000_000.0);
    }

    #[test]
    fn a_narrower_path_caps_the_estimate_and_the_queue_drains() {
        let mut guard = QueueGuard::new(1_500_000.0, 100_000.0, 1_500_000.0);
        let mut path = Path::new();
        path.run(&mut guard, 3.0, 2_000_000.0);
        assert_eq!(guard.target_bitrate(), 1_500_000.0);
        // What was sent before the first feedback still queues; then it drains.
        let peak = path.run(&mut guard, 5.0, 300_000.0);
        assert!(
            peak < Duration::from_millis(2500),
            "queue peaked at {peak:?}"
        );
        let settled = path.run(&mut guard, 10.0, 300_000.0);
        assert!(
            settled < 2 * HIGH_QUEUE,
            "queue up to {settled:?} once settled"
        );
        let target = guard.target_bitrate();
        assert!(
            (150_000.0..=330_000.0).contains(&target),
            "target {target} under a 300 kbit/s path"
        );
    }

    #[test]
    fn the_cap_lifts_when_the_path_widens_again() {
        let mut guard = QueueGuard::new(1_000_000.0, 100_000.0, 1_000_000.0);
        let mut path = Path::new();
        path.run(&mut guard, 5.0, 300_000.0);
        assert!(guard.target_bitrate() < 400_000.0);
        // Growing 8% a second from about 250 kbit/s takes about 18 s.
        path.run(&mut guard, 25.0, 5_000_000.0);
        assert_eq!(guard.target_bitrate(), 1_000_000.0);
    }
}
