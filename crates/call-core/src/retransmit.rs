//! Which retransmissions are worth sending, decided per packet with the time passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::h264_rtp::{REORDER_WAIT, reorder_wait};

/// Which retransmissions are worth sending. webrtc-rs's NACK responder resends a packet
/// every time it is asked, and we ask often (every 20 ms). A resend is held back when
/// - one went out less than half a round trip ago. On a long path all of a packet's NACKs
///   arrive before the first resend can, so resending on each would waste the path; but
///   waiting a whole round trip made a lost resend cost two (5% loss on a 200 ms path:
///   pauses of 450-525 ms). Two resends per round trip make that rare for 5% more video;
/// - the packet first went out longer ago than the receiver waits for a gap
///   ([`reorder_wait`], plus [`REORDER_WAIT`] for time in our pacer's queue): the receiver
///   has given up on it. After an outage the receiver asks for everything it missed, and those
///   resends would queue ahead of the keyframe it needs.
#[derive(Debug, Default)]
pub struct RetransmitGate {
    /// Per SSRC (ours: one video, one audio), the newest packets by sequence number.
    streams: HashMap<u32, Vec<Option<Sent>>>,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u16,
    first: Instant,
    last: Instant,
}

impl RetransmitGate {
    /// Packets remembered per stream: more than the NACK responder keeps (1024).
    const HISTORY: usize = 2048;

    /// Records a first send (always passes); decides on a retransmission.
    pub fn admit(
        &mut self,
        ssrc: u32,
        seq: u16,
        retransmission: bool,
        now: Instant,
        rtt: Duration,
    ) -> bool {
        let history = self
            .streams
            .entry(ssrc)
            .or_insert_with(|| vec![None; Self::HISTORY]);
        let Some(slot) = history.get_mut(usize::from(seq) % Self::HISTORY) else {
            return true; // Cannot happen: the history has HISTORY slots.
        };
        if !retransmission {
            *slot = Some(Sent {
                seq,
                first: now,
                last: now,
            });
            return true;
        }
        match slot {
            Some(sent) if sent.seq == seq => {
                let wanted =
                    now.saturating_duration_since(sent.first) <= reorder_wait(rtt) + REORDER_WAIT;
                let due = now.saturating_duration_since(sent.last) >= rtt / 2;
                if wanted && due {
                    sent.last = now;
                }
                wanted && due
            }
            // Not ours to judge (forgotten already): let the responder decide.
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(100);

    #[test]
    fn a_packet_is_resent_at_most_twice_per_round_trip() {
        let mut gate = RetransmitGate::default();
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(gate.admit(1, 7, false, t0, RTT));
        // NACKs every 20 ms: the first resend goes, the next ones wait half the round trip.
        assert!(gate.admit(1, 7, true, ms(110), RTT));
        for at in [130, 150] {
            assert!(!gate.admit(1, 7, true, ms(at), RTT), "at {at} ms");
        }
        assert!(gate.admit(1, 7, true, ms(170), RTT));
        assert!(!gate.admit(1, 7, true, ms(190), RTT));
        assert!(gate.admit(1, 7, true, ms(230), RTT));
        // Another stream's packet with the same number keeps its own record.
        let rtt = Duration::from_millis(40);
        assert!(gate.admit(2, 7, false, ms(240), rtt));
        assert!(gate.admit(1, 7, true, ms(255), rtt));
        assert!(!gate.admit(2, 7, true, ms(255), rtt));
    }

    #[test]
    fn a_short_path_gets_every_resend() {
        let mut gate = RetransmitGate::default();
        let t0 = Instant::now();
        assert!(gate.admit(1, 65_535, false, t0, Duration::ZERO));
        for n in 1..=5 {
            let at = t0 + Duration::from_millis(20 * n);
            assert!(gate.admit(1, 65_535, true, at, Duration::from_millis(1)));
        }
    }

    #[test]
    fn what_the_receiver_gave_up_on_is_not_resent() {
        let mut gate = RetransmitGate::default();
        let t0 = Instant::now();
        for seq in 0..200 {
            gate.admit(
                1,
                seq,
                false,
                t0 + Duration::from_millis(u64::from(seq)),
                RTT,
            );
        }
        // Asked for everything after an outage, 3 s later: nothing goes.
        let later = t0 + Duration::from_secs(3);
        assert!((0..200).all(|seq| !gate.admit(1, seq, true, later, RTT)));
        // A packet the gate never saw is left to the responder.
        assert!(gate.admit(1, 5_000, true, later, RTT));
    }
}
