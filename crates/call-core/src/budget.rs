//! How many bytes of video may go out now: the encoder's frame budget, time passed in.

use std::time::{Duration, Instant};

/// Keeps what the encoder sends within the target bitrate by leaving frames out: OpenH264
/// (frame skipping off) overshoots a low target by 2-3x at 640x480, so under a tight cap
/// the frame rate drops instead of the path's queue growing. A leaky bucket of bytes.
#[derive(Debug, Default)]
pub struct FrameBudget {
    /// Bytes sent and not yet drained at the target rate.
    level: f64,
    updated: Option<Instant>,
}

impl FrameBudget {
    /// How much may be sent ahead of the target rate.
    const BURST: Duration = Duration::from_millis(200);

    fn drain(&mut self, now: Instant, target_bps: u32) {
        if let Some(then) = self.updated {
            let drained =
                now.saturating_duration_since(then).as_secs_f64() * f64::from(target_bps) / 8.0;
            self.level = (self.level - drained).max(0.0);
        }
        self.updated = Some(now);
    }

    /// Whether a frame may be encoded now.
    pub fn allows(&mut self, now: Instant, target_bps: u32) -> bool {
        self.drain(now, target_bps);
        self.level <= Self::BURST.as_secs_f64() * f64::from(target_bps) / 8.0
    }

    pub fn spend(&mut self, now: Instant, target_bps: u32, bytes: usize) {
        self.drain(now, target_bps);
        self.level += bytes as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of `frame_bytes` offered at 30 fps for 10 s; returns the bits per second sent.
    fn sent_bps(target_bps: u32, frame_bytes: usize) -> (f64, usize) {
        let start = Instant::now();
        let mut budget = FrameBudget::default();
        let (mut bytes, mut frames) = (0usize, 0usize);
        for n in 0..300u32 {
            let now = start + Duration::from_secs(1) / 30 * n;
            if budget.allows(now, target_bps) {
                budget.spend(now, target_bps, frame_bytes);
                bytes += frame_bytes;
                frames += 1;
            }
        }
        (bytes as f64 * 8.0 / 10.0, frames)
    }

    #[test]
    fn frames_within_the_target_all_go() {
        // 2 KB frames at 30 fps are 480 kbit/s.
        let (bps, frames) = sent_bps(1_000_000, 2000);
        assert_eq!(frames, 300);
        assert!((bps - 480_000.0).abs() < 1.0, "{bps}");
    }

    #[test]
    fn frames_over_the_target_are_left_out_and_the_rate_follows() {
        // The same frames under a 150 kbit/s target: about 9 fps.
        let (bps, frames) = sent_bps(150_000, 2000);
        assert!(bps <= 150_000.0 * 1.05, "{bps}");
        assert!(bps >= 150_000.0 * 0.8, "{bps}");
        assert!((80..=110).contains(&frames), "{frames} frames");
    }
}
