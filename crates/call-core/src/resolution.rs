//! How big a picture to send for the bitrate there is: under a low estimate a smaller
//! picture at a fair bitrate looks better than a big one in blocks, as libwebrtc's
//! resolution adaptation decides too. Steps halve the width and height (640x480 ->
//! 320x240 -> 160x120), never below [`MIN_WIDTH`]; down after the estimate has been too
//! low for [`DOWN_AFTER`], up only after it has been comfortably high for [`UP_AFTER`], so
//! a picture does not flip size with every estimate.

use std::time::{Duration, Instant};

/// Bits per pixel per frame below which the picture is too big for the bitrate.
const DOWN_BITS_PER_PIXEL: f64 = 0.03;
/// Bits per pixel per frame (of the bigger picture) above which it is worth going up: 1.5x
/// the threshold down, so the two do not meet.
const UP_BITS_PER_PIXEL: f64 = 0.045;
pub const DOWN_AFTER: Duration = Duration::from_secs(1);
pub const UP_AFTER: Duration = Duration::from_secs(3);
/// The narrowest picture sent.
pub const MIN_WIDTH: u32 = 160;
/// At most this many halvings.
const MAX_STEPS: u32 = 2;

/// The step the sender is at, and since when the estimate has argued for another.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResolutionLadder {
    steps: u32,
    /// Since when the estimate has been below what the current picture needs.
    low_since: Option<Instant>,
    /// Since when the estimate has been enough for the next bigger picture.
    high_since: Option<Instant>,
}

impl ResolutionLadder {
    /// How many times to halve a `width` x `height` picture sent at `fps` with
    /// `target_bps`, at `now`.
    pub fn update(
        &mut self,
        now: Instant,
        target_bps: u32,
        (width, height): (u32, u32),
        fps: u32,
    ) -> u32 {
        let bits_per_pixel = |steps: u32| {
            let pixels = f64::from(width >> steps) * f64::from(height >> steps);
            f64::from(target_bps) / (pixels * f64::from(fps.max(1))).max(1.0)
        };
        let can_go_down = self.steps < MAX_STEPS && (width >> (self.steps + 1)) >= MIN_WIDTH;
        if can_go_down && bits_per_pixel(self.steps) < DOWN_BITS_PER_PIXEL {
            let since = *self.low_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= DOWN_AFTER {
                self.steps += 1;
                self.low_since = None;
            }
        } else {
            self.low_since = None;
        }
        if self.steps > 0 && bits_per_pixel(self.steps - 1) > UP_BITS_PER_PIXEL {
            let since = *self.high_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= UP_AFTER {
                self.steps -= 1;
                self.high_since = None;
            }
        } else {
            self.high_since = None;
        }
        // A source that got smaller (another camera) may leave too many steps.
        while self.steps > 0 && (width >> self.steps) < MIN_WIDTH {
            self.steps -= 1;
        }
        self.steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VGA: (u32, u32) = (640, 480);

    /// Feeds `target` every 100 ms for `seconds`; returns the steps at the end.
    fn run(ladder: &mut ResolutionLadder, t: &mut Instant, target: u32, seconds: u64) -> u32 {
        let mut steps = 0;
        for _ in 0..seconds * 10 {
            *t += Duration::from_millis(100);
            steps = ladder.update(*t, target, VGA, 30);
        }
        steps
    }

    #[test]
    fn a_low_estimate_shrinks_the_picture_and_a_high_one_grows_it_back() {
        let mut ladder = ResolutionLadder::default();
        let mut t = Instant::now();
        assert_eq!(run(&mut ladder, &mut t, 1_500_000, 5), 0);
        // 150 kbit/s: VGA at 30 fps needs 276 kbit/s, 320x240 69: one step, after a second.
        assert_eq!(ladder.update(t, 150_000, VGA, 30), 0);
        assert_eq!(run(&mut ladder, &mut t, 150_000, 1), 1);
        assert_eq!(run(&mut ladder, &mut t, 150_000, 10), 1);
        // 60 kbit/s: 160x120, the smallest.
        assert_eq!(run(&mut ladder, &mut t, 60_000, 2), 2);
        assert_eq!(run(&mut ladder, &mut t, 10_000, 10), 2);
        // Between the thresholds nothing moves; well above them, up one step at a time.
        assert_eq!(run(&mut ladder, &mut t, 90_000, 10), 2);
        assert_eq!(run(&mut ladder, &mut t, 2_000_000, 2), 2, "not before 3 s");
        assert_eq!(run(&mut ladder, &mut t, 2_000_000, 2), 1);
        assert_eq!(run(&mut ladder, &mut t, 2_000_000, 4), 0);
    }

    #[test]
    fn a_dip_shorter_than_a_second_changes_nothing() {
        let mut ladder = ResolutionLadder::default();
        let mut t = Instant::now();
        for _ in 0..5 {
            for _ in 0..9 {
                t += Duration::from_millis(100);
                assert_eq!(ladder.update(t, 100_000, VGA, 30), 0);
            }
            assert_eq!(run(&mut ladder, &mut t, 1_000_000, 1), 0);
        }
    }

    #[test]
    fn never_narrower_than_160() {
        let mut ladder = ResolutionLadder::default();
        let mut t = Instant::now();
        for _ in 0..100 {
            t += Duration::from_millis(100);
            let steps = ladder.update(t, 1_000, (320, 240), 30);
            assert!(320 >> steps >= MIN_WIDTH);
        }
        assert_eq!(ladder.update(t, 1_000, (320, 240), 30), 1);
    }
}
