//! RTP numbers: sequence numbers (16 bits on the wire, extended here so they keep
//! counting), and the round-trip time a peer's reception report tells us.

use std::time::Duration;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;
/// A round trip longer than this is a report that cannot be right (clock jumps, wrap).
const MAX_ROUND_TRIP: Duration = Duration::from_secs(10);

/// Turns a 16-bit RTP sequence number into a 64-bit one that keeps counting through
/// wrap-around, given the highest extended number seen so far.
pub fn extend_seq(highest: Option<u64>, seq: u16) -> u64 {
    match highest {
        // Start far from zero so sequence numbers before the first stay positive.
        None => (1 << 32) + u64::from(seq),
        Some(highest) => {
            let delta = seq.wrapping_sub(highest as u16) as i16;
            highest.saturating_add_signed(i64::from(delta))
        }
    }
}

/// A time in RTCP's compact NTP form (16.16 fixed-point seconds, the middle 32 bits of
/// a 64-bit NTP timestamp), from the time since the Unix epoch.
pub fn compact_ntp(since_unix_epoch: Duration) -> u32 {
    let secs = since_unix_epoch.as_secs() + NTP_UNIX_OFFSET_SECS;
    let fraction = (u64::from(since_unix_epoch.subsec_nanos()) << 16) / 1_000_000_000;
    ((secs as u32) << 16) | fraction as u32
}

/// The round trip a reception report measures (RFC 3550 section 6.4.1): it arrived at
/// `arrival`; the peer last heard our sender report stamped `last_sr` and held it `delay`
/// (all compact NTP). `None` before the peer has heard a sender report, or when the
/// numbers cannot be a round trip.
pub fn round_trip_from_report(arrival: u32, last_sr: u32, delay: u32) -> Option<Duration> {
    if last_sr == 0 {
        return None;
    }
    let units = arrival.wrapping_sub(last_sr).checked_sub(delay)?;
    let rtt = Duration::from_nanos((u64::from(units) * 1_000_000_000) >> 16);
    (rtt <= MAX_ROUND_TRIP).then_some(rtt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_ntp_is_the_middle_of_the_ntp_timestamp() {
        // 1970 is 2_208_988_800 s after 1900: its low 16 bits are 0x7e80... in compact form
        // the seconds sit in the high half, the fraction (here one half) in the low half.
        let t = compact_ntp(Duration::from_millis(1500));
        assert_eq!(t >> 16, ((NTP_UNIX_OFFSET_SECS + 1) & 0xffff) as u32);
        assert_eq!(t & 0xffff, 0x8000);
    }

    #[test]
    fn a_reception_report_gives_the_round_trip_without_the_peers_holding_time() {
        let sent = Duration::from_secs(1_800_000_000);
        let last_sr = compact_ntp(sent);
        let delay = compact_ntp(Duration::from_millis(250)) - compact_ntp(Duration::ZERO);
        let arrival = compact_ntp(sent + Duration::from_millis(250 + 40));
        let rtt = round_trip_from_report(arrival, last_sr, delay).expect("a round trip");
        assert!(
            rtt.abs_diff(Duration::from_millis(40)) < Duration::from_micros(100),
            "{rtt:?}"
        );
        // Across the 16-bit seconds wrap, too.
        let wrap = Duration::from_secs((1 << 16) - NTP_UNIX_OFFSET_SECS % (1 << 16));
        let rtt = round_trip_from_report(
            compact_ntp(wrap + Duration::from_millis(30)),
            compact_ntp(wrap - Duration::from_millis(10)),
            0,
        )
        .expect("a round trip");
        assert!(
            rtt.abs_diff(Duration::from_millis(40)) < Duration::from_micros(100),
            "{rtt:?}"
        );
    }

    #[test]
    fn reports_that_cannot_be_a_round_trip_give_none() {
        let now = compact_ntp(Duration::from_secs(1_800_000_000));
        // No sender report heard yet.
        assert_eq!(round_trip_from_report(now, 0, 0), None);
        // Held longer than the whole trip took.
        assert_eq!(round_trip_from_report(now, now - 100, 200), None);
        // Minutes: a clock jump, not a round trip.
        assert_eq!(round_trip_from_report(now, now - (600 << 16), 0), None);
    }

    #[test]
    fn sequence_numbers_keep_counting_through_wrap_around_and_reordering() {
        let first = extend_seq(None, 65_534);
        let wrapped = extend_seq(Some(first), 1);
        assert_eq!(wrapped, first + 3);
        // A late packet from before the wrap counts back, not forward.
        assert_eq!(extend_seq(Some(wrapped), 65_535), first + 1);
    }
}
