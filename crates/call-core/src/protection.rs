//! How much forward error correction video gets: repair packets per block of
//! [`BLOCK`] video packets, from the loss the peer reports, as libwebrtc's loss-based
//! protection does. None on a clean path (it would cost a sixth of the video's bitrate
//! for nothing), one per block at light loss (any single loss in a block is rebuilt
//! without a round trip), two at heavy loss.

/// Video packets each block of repair packets protects.
pub const BLOCK: u32 = 5;
/// Reported loss (percent) from which each block gets one repair packet, and two.
const ONE_REPAIR_FROM: u8 = 1;
const TWO_REPAIRS_FROM: u8 = 10;
/// Before the first report: light protection, the usual case for a path that loses at all.
const UNKNOWN: u32 = 1;

/// Repair packets per block for `loss_percent` (`None`: no report yet).
pub fn repair_packets(loss_percent: Option<u8>) -> u32 {
    match loss_percent {
        None => UNKNOWN,
        Some(loss) if loss >= TWO_REPAIRS_FROM => 2,
        Some(loss) if loss >= ONE_REPAIR_FROM => 1,
        Some(_) => 0,
    }
}

/// The share of the video's bitrate left for the picture, the rest going to repair.
pub fn media_share(loss_percent: Option<u8>) -> f64 {
    f64::from(BLOCK) / f64::from(BLOCK + repair_packets(loss_percent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protection_follows_the_reported_loss() {
        assert_eq!(repair_packets(Some(0)), 0);
        assert_eq!(media_share(Some(0)), 1.0);
        assert_eq!(repair_packets(None), 1);
        assert_eq!(repair_packets(Some(1)), 1);
        assert_eq!(repair_packets(Some(5)), 1);
        assert!((media_share(Some(5)) - 5.0 / 6.0).abs() < 1e-9);
        assert_eq!(repair_packets(Some(10)), 2);
        assert_eq!(repair_packets(Some(60)), 2);
    }
}
