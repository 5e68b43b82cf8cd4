//! An adaptive jitter buffer for incoming audio packets. No I/O and no clock: packets come
//! in with their arrival time, and the playout side asks for one 20 ms frame at a time.
//!
//! It reorders packets by RTP sequence number and plays each in its slot. A missing packet
//! is rebuilt from the FEC data of the next one when that has arrived, otherwise concealed.
//! The delay it holds adapts to the network: it watches how much each packet's transit time
//! (arrival time less RTP timestamp) varies, and aims to hold the 95th percentile of that
//! variation (between 20 and 200 ms). Holding too little, it plays a concealed frame without
//! moving on (stretching time); holding too much (after a burst, or once the network calms
//! down), it drops a frame to catch up. A packet that arrives after its slot has played is
//! counted late and dropped.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use crate::rtp::extend_seq;

const FRAME_MS: f64 = 20.0;
/// The RTP clock rate of Opus, whatever the rate of the audio itself.
const OPUS_CLOCK_HZ: u32 = 48_000;
const MIN_TARGET_MS: f64 = 20.0;
const MAX_TARGET_MS: f64 = 200.0;
/// Transit samples kept for the delay estimate: the last 2 s.
const WINDOW: usize = 100;
/// Packets held at most (2 s); more means the sender or clock went wrong.
const MAX_PACKETS: usize = 100;
/// Extra delay tolerated above the target before dropping a frame to catch up.
const SLACK_MS: f64 = 60.0;
/// After this many frames with nothing to play, stop and buffer afresh.
const RESTART_AFTER_EMPTY: u32 = 25;

/// What to play in the next 20 ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Decode this packet.
    Packet(Vec<u8>),
    /// This slot's packet is missing; decode the *next* packet's FEC data to rebuild it.
    Fec(Vec<u8>),
    /// This slot's packet is missing; conceal.
    Conceal,
    /// Nothing is playing (not started yet, or the stream paused): play silence.
    Silence,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    pub received: u64,
    pub played: u64,
    pub recovered_by_fec: u64,
    pub concealed: u64,
    /// Arrived after their slot had been played.
    pub late: u64,
    pub duplicates: u64,
    /// Dropped to bring the delay back down.
    pub dropped: u64,
    /// Concealed frames played to let the delay grow.
    pub stretched: u64,
    /// The delay the buffer aims for.
    pub target_delay_ms: f64,
    /// Audio currently held, in ms.
    pub buffered_ms: f64,
}

#[derive(Debug, Default)]
pub struct JitterBuffer {
    packets: BTreeMap<u64, Vec<u8>>,
    highest: Option<u64>,
    /// The next sequence number to play; `None` while buffering.
    next: Option<u64>,
    /// When the first packet arrived, and its RTP timestamp: the reference for transit
    /// times.
    reference: Option<(Instant, u32)>,
    /// The newest RTP timestamp, extended past wrap-around, relative to the reference.
    newest_ts: i64,
    /// Recent transit times relative to the reference, in ms.
    transits: VecDeque<f64>,
    /// Arrival of the oldest held packet, while buffering.
    buffering_since: Option<Instant>,
    empty_in_a_row: u32,
    /// A packet arrived since the last pop: the stream is live, so stretching will fill up.
    arrived_since_pop: bool,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new() -> JitterBuffer {
        let mut buffer = JitterBuffer::default();
        buffer.stats.target_delay_ms = MIN_TARGET_MS;
        buffer
    }

    /// Adds a packet: its RTP sequence number and timestamp (48 kHz), payload and arrival.
    pub fn push(&mut self, seq: u16, timestamp: u32, payload: Vec<u8>, now: Instant) {
        let ext = extend_seq(self.highest, seq);
        self.stats.received += 1;
        if self.next.is_some_and(|next| ext < next) {
            // Too late to play, but exactly the evidence that the delay is too short.
            self.record_transit(timestamp, now);
            self.stats.late += 1;
            return;
        }
        if self
            .next
            .is_some_and(|next| ext >= next + MAX_PACKETS as u64)
        {
            // The stream jumped far ahead (a new source, a restart): start over.
            self.restart();
        }
        if self.packets.contains_key(&ext) {
            self.stats.duplicates += 1;
            return;
        }
        if self.packets.len() >= MAX_PACKETS {
            self.packets.pop_first();
            self.stats.dropped += 1;
        }
        self.packets.insert(ext, payload);
        self.arrived_since_pop = true;
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        if self.next.is_none() && self.buffering_since.is_none() {
            self.buffering_since = Some(now);
        }
        self.record_transit(timestamp, now);
    }

    fn record_transit(&mut self, timestamp: u32, now: Instant) {
        let (ref_time, ref_ts) = *self.reference.get_or_insert((now, timestamp));
        // Timestamps wrap every 25 hours at 48 kHz; follow them relative to the newest.
        let step = timestamp.wrapping_sub(ref_ts.wrapping_add(self.newest_ts as u32)) as i32;
        let ts = self.newest_ts + i64::from(step);
        self.newest_ts = self.newest_ts.max(ts);
        let arrival_ms = signed_ms(now, ref_time);
        let sent_ms = ts as f64 / (f64::from(OPUS_CLOCK_HZ) / 1000.0);
        if self.transits.len() == WINDOW {
            self.transits.pop_front();
        }
        self.transits.push_back(arrival_ms - sent_ms);
        self.stats.target_delay_ms = self.target_ms();
    }

    /// The 95th percentile of transit-time variation: enough delay for 95% of packets.
    fn target_ms(&self) -> f64 {
        if self.transits.len() < 2 {
            return MIN_TARGET_MS;
        }
        let min = self.transits.iter().copied().fold(f64::INFINITY, f64::min);
        let mut spread: Vec<f64> = self.transits.iter().map(|t| t - min).collect();
        spread.sort_by(f64::total_cmp);
        let p95 = spread
            .get((spread.len() - 1) * 95 / 100)
            .copied()
            .unwrap_or_default();
        (p95 + FRAME_MS / 2.0).clamp(MIN_TARGET_MS, MAX_TARGET_MS)
    }

    /// Forgets everything: a new stream.
    fn restart(&mut self) {
        self.pause();
        self.highest = None;
        self.reference = None;
        self.newest_ts = 0;
        self.transits.clear();
    }

    /// Stops playing and buffers afresh, keeping what it knows of the network.
    fn pause(&mut self) {
        self.packets.clear();
        self.next = None;
        self.buffering_since = None;
        self.empty_in_a_row = 0;
    }

    /// The next 20 ms to play, at `now`. Call once per frame, on the playout clock.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let target = self.target_ms();
        let next = match self.next {
            Some(next) => next,
            None => {
                // Buffering: start once the oldest packet has waited for the target delay.
                let waited = self
                    .buffering_since
                    .map_or(0.0, |since| signed_ms(now, since));
                match self.packets.first_key_value() {
                    Some((&oldest, _)) if waited + FRAME_MS / 2.0 >= target => oldest,
                    _ => return self.report(Playout::Silence),
                }
            }
        };
        self.buffering_since = None;

        // Too little held: the network got jumpier. Stretch: play a concealed frame and
        // stay on this slot, so what is held grows by a frame.
        let mut slot = next;
        let live = std::mem::take(&mut self.arrived_since_pop);
        if self.next.is_some() && live && self.held_ms(slot) + FRAME_MS / 2.0 < target {
            self.stats.stretched += 1;
            return self.report(Playout::Conceal);
        }
        // Too much held (a burst arrived, or the network calmed down): skip a frame.
        if self.held_ms(slot) > target + SLACK_MS && self.packets.remove(&slot).is_some() {
            self.stats.dropped += 1;
            slot += 1;
        }

        let playout = if let Some(packet) = self.packets.remove(&slot) {
            self.empty_in_a_row = 0;
            self.stats.played += 1;
            Playout::Packet(packet)
        } else if let Some(following) = self.packets.get(&(slot + 1)) {
            self.empty_in_a_row = 0;
            self.stats.recovered_by_fec += 1;
            Playout::Fec(following.clone())
        } else if self.packets.is_empty() && self.empty_in_a_row >= RESTART_AFTER_EMPTY {
            // The stream has paused or ended: stop until packets come again.
            self.pause();
            return self.report(Playout::Silence);
        } else {
            self.empty_in_a_row += 1;
            self.stats.concealed += 1;
            Playout::Conceal
        };
        self.next = Some(slot + 1);
        self.report(playout)
    }

    /// Audio held from `slot` to the newest packet, in ms.
    fn held_ms(&self, slot: u64) -> f64 {
        self.highest
            .map_or(0.0, |h| (h + 1).saturating_sub(slot) as f64 * FRAME_MS)
    }

    fn report(&mut self, playout: Playout) -> Playout {
        self.stats.target_delay_ms = self.target_ms();
        self.stats.buffered_ms = match self.next {
            Some(next) => self.held_ms(next),
            None => self.packets.len() as f64 * FRAME_MS,
        };
        playout
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }
}

fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b {
        (a - b).as_secs_f64() * 1000.0
    } else {
        -((b - a).as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds packets `(seq, arrival in ms)` (RTP timestamps 20 ms apart) and plays `slots`
    /// frames from t0; returns what each slot played and the final stats.
    fn run(arrivals: &[(u16, u64)], slots: usize) -> (Vec<String>, JitterStats) {
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new();
        let first = arrivals
            .iter()
            .map(|&(seq, _)| seq)
            .min_by_key(|&seq| seq.wrapping_sub(arrivals[0].0) as i16)
            .unwrap_or(0);
        let mut pending: Vec<(u16, u64)> = arrivals.to_vec();
        pending.sort_by_key(|&(_, at)| at);
        let mut played = Vec::new();
        let mut i = 0;
        for slot in 0..slots as u64 {
            while i < pending.len() && pending[i].1 <= slot * 20 {
                let (seq, at) = pending[i];
                // RTP timestamps advance 960 a packet from the first sequence number sent.
                let sent = i32::from(seq.wrapping_sub(first) as i16);
                let timestamp = (sent * 960) as u32;
                buffer.push(seq, timestamp, seq.to_be_bytes().to_vec(), t0 + ms(at));
                i += 1;
            }
            played.push(match buffer.pop(t0 + ms(slot * 20)) {
                Playout::Packet(p) => u16::from_be_bytes([p[0], p[1]]).to_string(),
                Playout::Fec(p) => format!("fec({})", u16::from_be_bytes([p[0], p[1]])),
                Playout::Conceal => "conceal".into(),
                Playout::Silence => "-".into(),
            });
        }
        (played, buffer.stats())
    }

    /// What was played, without the silence before playback started.
    fn from_start(played: &[String]) -> Vec<String> {
        played.iter().skip_while(|p| *p == "-").cloned().collect()
    }

    fn numbers(range: std::ops::Range<u16>) -> Vec<String> {
        range.map(|s| s.to_string()).collect()
    }

    #[test]
    fn steady_packets_play_in_order_with_minimal_delay() {
        let arrivals: Vec<(u16, u64)> = (0..50).map(|s| (s, u64::from(s) * 20)).collect();
        let (played, stats) = run(&arrivals, 52);
        assert_eq!(from_start(&played)[..50], numbers(0..50)[..]);
        assert_eq!(stats.target_delay_ms, MIN_TARGET_MS);
        assert_eq!(
            (stats.late, stats.recovered_by_fec, stats.played),
            (0, 0, 50)
        );
        assert!(
            played.iter().take_while(|p| *p == "-").count() <= 2,
            "{played:?}"
        );
    }

    #[test]
    fn reordered_packets_play_in_order() {
        // Pairs swapped: 1 before 0, 3 before 2...
        let arrivals: Vec<(u16, u64)> = (0..40u16)
            .map(|s| (s ^ 1, 40 + u64::from(s) * 20))
            .collect();
        let (played, stats) = run(&arrivals, 45);
        assert_eq!(from_start(&played)[..40], numbers(0..40)[..], "{played:?}");
        assert_eq!(stats.late, 0);
    }

    #[test]
    fn a_lost_packet_is_rebuilt_from_the_next_ones_fec_or_concealed() {
        let arrivals: Vec<(u16, u64)> = (0..30u16)
            .filter(|s| ![10, 20, 21].contains(s))
            .map(|s| (s, u64::from(s) * 20))
            .collect();
        let (played, stats) = run(&arrivals, 32);
        let played = from_start(&played);
        assert_eq!(played[10], "fec(11)");
        assert_eq!(played[20], "conceal", "21 is lost too, so no FEC for 20");
        assert_eq!(played[21], "fec(22)");
        assert_eq!(stats.recovered_by_fec, 2);
    }

    #[test]
    fn a_packet_after_its_slot_is_late() {
        let mut arrivals: Vec<(u16, u64)> = (0..30u16)
            .filter(|&s| s != 5)
            .map(|s| (s, u64::from(s) * 20))
            .collect();
        arrivals.push((5, 400));
        let (played, stats) = run(&arrivals, 32);
        assert_eq!(from_start(&played)[5], "fec(6)");
        assert_eq!(stats.late, 1);
    }

    #[test]
    fn delay_grows_with_jitter_and_packets_are_not_lost() {
        // Transit varies between 0 and 80 ms.
        let arrivals: Vec<(u16, u64)> = (0..300u16)
            .map(|s| {
                (
                    s,
                    u64::from(s) * 20 + [0, 80, 40, 10, 60][usize::from(s) % 5],
                )
            })
            .collect();
        let (played, stats) = run(&arrivals, 300);
        assert!(
            stats.target_delay_ms >= 80.0,
            "target {}",
            stats.target_delay_ms
        );
        assert!(
            stats.stretched > 0,
            "the delay grew by stretching: {stats:?}"
        );
        // Once it has adapted (the first second), everything plays on time.
        let played = from_start(&played);
        assert!(
            played[60..250].iter().all(|p| p.parse::<u16>().is_ok()),
            "{played:?}"
        );
    }

    #[test]
    fn delay_comes_back_down_when_the_network_calms() {
        // Two seconds of 0-150 ms jitter, then four seconds of a steady network.
        let arrivals: Vec<(u16, u64)> = (0..300u16)
            .map(|s| {
                let jitter = if s < 100 {
                    [0, 150, 75, 30, 120][usize::from(s) % 5]
                } else {
                    0
                };
                (s, u64::from(s) * 20 + jitter)
            })
            .collect();
        let t_calm = 100;
        let (_, stats) = run(&arrivals[..t_calm + 150], t_calm + 150);
        assert!(stats.dropped > 0, "{stats:?}");
        assert!(stats.target_delay_ms <= 30.0, "{stats:?}");
        assert!(
            stats.buffered_ms <= stats.target_delay_ms + SLACK_MS,
            "{stats:?}"
        );
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let arrivals: Vec<(u16, u64)> = (0..20u64).map(|i| ((65530 + i) as u16, i * 20)).collect();
        let (played, stats) = run(&arrivals, 22);
        assert_eq!(from_start(&played)[5..8], ["65535", "0", "1"]);
        assert_eq!(stats.late, 0);
    }

    #[test]
    fn duplicates_and_floods_stay_bounded() {
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new();
        buffer.push(1, 960, vec![1], t0);
        buffer.push(1, 960, vec![1], t0);
        assert_eq!(buffer.stats().duplicates, 1);
        for seq in 0..1000u16 {
            buffer.push(seq, u32::from(seq) * 960, vec![0; 100], t0);
        }
        assert!(buffer.packets.len() <= MAX_PACKETS);
    }

    #[test]
    fn a_paused_stream_stops_then_restarts() {
        // Half a second of audio, a two-second outage (those packets are lost), then more.
        let arrivals: Vec<(u16, u64)> = (0..25u16)
            .chain(125..150)
            .map(|s| (s, u64::from(s) * 20))
            .collect();
        let (played, _) = run(&arrivals, 160);
        assert!(
            played[60..120].iter().all(|p| p == "-"),
            "silence while paused: {played:?}"
        );
        assert!(
            played[125..].iter().any(|p| p == "130"),
            "plays again: {played:?}"
        );
    }
}
