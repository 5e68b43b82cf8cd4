//! A link's control paths: how one part of a call steers another, each a typed handle with
//! one writer and one reader, apart from the statistics (`media::Counters`, which only
//! count and are only read for reports).
//!
//! - [`EncoderControl`]: the interceptor chain tells the video encoder what the network
//!   asks: a keyframe (the peer sent PLI or FIR) and the congestion controller's target
//!   bitrate.
//! - [`RoundTrip`]: the newest round-trip time, measured from the peer's RTCP reception
//!   reports as they arrive, for the retransmission gate and the depacketizer's reorder
//!   window.
//! - [`PathLoss`]: the share of our packets the peer's newest reception report says were
//!   lost, for Opus's in-band FEC.
//!
//! Each is a latest-value cell (the readers run on real-time threads and must not wait).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

/// What the network asks of the video encoder.
#[derive(Debug, Default)]
pub(crate) struct EncoderControl {
    keyframe_wanted: AtomicBool,
    /// Bits per second; 0: no estimate yet.
    target_bps: AtomicU32,
}

impl EncoderControl {
    /// The peer asked for a keyframe.
    pub fn request_keyframe(&self) {
        self.keyframe_wanted.store(true, Ordering::Relaxed);
    }

    /// Whether a keyframe was asked for since the last call.
    pub fn take_keyframe_request(&self) -> bool {
        self.keyframe_wanted.swap(false, Ordering::Relaxed)
    }

    /// The congestion controller's newest estimate.
    pub fn set_target_bitrate(&self, bits_per_second: u32) {
        self.target_bps.store(bits_per_second, Ordering::Relaxed);
    }

    /// The newest estimate, once there is one.
    pub fn target_bitrate(&self) -> Option<u32> {
        Some(self.target_bps.load(Ordering::Relaxed)).filter(|bps| *bps > 0)
    }
}

/// The newest round-trip time to the peer.
#[derive(Debug, Default)]
pub(crate) struct RoundTrip {
    /// Microseconds; 0: not measured yet.
    micros: AtomicU32,
}

impl RoundTrip {
    pub fn set(&self, rtt: Duration) {
        let micros = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX).max(1);
        self.micros.store(micros, Ordering::Relaxed);
    }

    /// Zero until the first measurement.
    pub fn get(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed).into())
    }
}

/// How much of what we send the peer says it lost.
#[derive(Debug)]
pub(crate) struct PathLoss {
    /// Percent; `u8::MAX`: no report yet.
    percent: AtomicU8,
}

impl Default for PathLoss {
    fn default() -> Self {
        PathLoss {
            percent: AtomicU8::new(u8::MAX),
        }
    }
}

impl PathLoss {
    /// From a reception report's `fraction lost` (out of 256).
    pub fn set_fraction(&self, fraction_lost: u8) {
        let percent = (u32::from(fraction_lost) * 100 / 256) as u8;
        self.percent.store(percent, Ordering::Relaxed);
    }

    /// Percent lost, once the peer has reported.
    pub fn percent(&self) -> Option<u8> {
        Some(self.percent.load(Ordering::Relaxed)).filter(|p| *p <= 100)
    }
}

/// Every control path of one link.
#[derive(Debug, Default)]
pub(crate) struct Controls {
    /// The camera's encoder.
    pub encoder: EncoderControl,
    /// A shared screen's encoder: keyframe requests for [`Controls::screen_ssrc`] (the
    /// estimate stays in `encoder`, shared by both).
    pub screen: EncoderControl,
    /// The SSRC of our screen track (0: none).
    pub screen_ssrc: AtomicU32,
    pub round_trip: RoundTrip,
    pub loss: PathLoss,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyframe_request_is_taken_once() {
        let control = EncoderControl::default();
        assert!(!control.take_keyframe_request());
        control.request_keyframe();
        control.request_keyframe();
        assert!(control.take_keyframe_request());
        assert!(!control.take_keyframe_request());
    }

    #[test]
    fn the_target_bitrate_is_none_until_estimated_then_the_newest() {
        let control = EncoderControl::default();
        assert_eq!(control.target_bitrate(), None);
        control.set_target_bitrate(800_000);
        control.set_target_bitrate(600_000);
        assert_eq!(control.target_bitrate(), Some(600_000));
    }

    #[test]
    fn loss_is_none_until_reported_then_in_percent() {
        let loss = PathLoss::default();
        assert_eq!(loss.percent(), None);
        loss.set_fraction(26);
        assert_eq!(loss.percent(), Some(10));
        loss.set_fraction(255);
        assert_eq!(loss.percent(), Some(99));
        loss.set_fraction(0);
        assert_eq!(loss.percent(), Some(0));
    }

    #[test]
    fn the_round_trip_keeps_the_newest_measurement() {
        let round_trip = RoundTrip::default();
        assert_eq!(round_trip.get(), Duration::ZERO);
        round_trip.set(Duration::from_millis(80));
        round_trip.set(Duration::from_millis(35));
        assert_eq!(round_trip.get(), Duration::from_millis(35));
    }
}
