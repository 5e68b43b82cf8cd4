//! How much forward error correction video gets: repair packets per block of
//! [`BLOCK`] video packets, from the loss the peer reports and the round trip, as
//! libwebrtc's hybrid NACK/FEC protection does. None on a clean path (it would cost a
//! sixth of the video's bitrate for nothing), one per block at light loss (any single loss
//! in a block is rebuilt without a round trip), two at heavy loss, or at moderate loss on
//! a long path, where each block FEC cannot rebuild waits a round trip for a resend.

use std::time::Duration;

/// Video packets each block of repair packets protects.
pub const BLOCK: u32 = 5;
/// Reported loss (percent) from which each block gets one repair packet, and two.
const ONE_REPAIR_FROM: u8 = 1;
const TWO_REPAIRS_FROM: u8 = 10;
/// On a path this long or longer, two repair packets from this loss already.
const LONG_PATH: Duration = Duration::from_millis(100);
const TWO_REPAIRS_ON_A_LONG_PATH_FROM: u8 = 4;
/// Before the first report: light protection, the usual case for a path that loses at all.
const UNKNOWN: u32 = 1;

/// Repair packets per block for `loss_percent` (`None`: no report yet) on a path with
/// round trip `rtt`.
pub fn repair_packets(loss_percent: Option<u8>, rtt: Duration) -> u32 {
    let two_from = if rtt >= LONG_PATH {
        TWO_REPAIRS_ON_A_LONG_PATH_FROM
    } else {
        TWO_REPAIRS_FROM
    };
    match loss_percent {
        None => UNKNOWN,
        Some(loss) if loss >= two_from => 2,
        Some(loss) if loss >= ONE_REPAIR_FROM => 1,
        Some(_) => 0,
    }
}

/// The share of the video's bitrate left for the picture, the rest going to repair.
pub fn media_share(loss_percent: Option<u8>, rtt: Duration) -> f64 {
    f64::from(BLOCK) / f64::from(BLOCK + repair_packets(loss_percent, rtt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protection_follows_the_reported_loss_and_the_round_trip() {
        let short = Duration::from_millis(20);
        let long = Duration::from_millis(200);
        assert_eq!(repair_packets(Some(0), long), 0);
        assert_eq!(media_share(Some(0), short), 1.0);
        assert_eq!(repair_packets(None, short), 1);
        assert_eq!(repair_packets(Some(1), short), 1);
        assert_eq!(repair_packets(Some(5), short), 1);
        assert!((media_share(Some(5), short) - 5.0 / 6.0).abs() < 1e-9);
        assert_eq!(repair_packets(Some(5), long), 2);
        assert_eq!(repair_packets(Some(3), long), 1);
        assert_eq!(repair_packets(Some(10), short), 2);
        assert_eq!(repair_packets(Some(60), short), 2);
    }
}
