//! RTP sequence numbers: 16 bits on the wire, extended here so they keep counting.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_keep_counting_through_wrap_around_and_reordering() {
        let first = extend_seq(None, 65_534);
        let wrapped = extend_seq(Some(first), 1);
        assert_eq!(wrapped, first + 3);
        // A late packet from before the wrap counts back, not forward.
        assert_eq!(extend_seq(Some(wrapped), 65_535), first + 1);
    }
}
