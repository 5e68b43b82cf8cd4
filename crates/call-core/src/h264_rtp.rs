//! H.264 RTP depacketization (RFC 6184, packetization mode 1), written to survive a hostile
//! or lossy sender.
//!
//! Packets go into a short reorder window (retransmissions asked for by NACK arrive late
//! and out of order), come out in sequence, and are assembled into Annex B access units:
//! single NAL units, STAP-A aggregates and FU-A fragments. Every length is checked; a
//! malformed payload, a fragment without its start, a gap that does not fill in time or an
//! oversized frame marks the frame broken: it is dropped and reported as [`Output::Lost`],
//! so the receiver asks for a keyframe instead of decoding garbage. (The upstream
//! depacketizer panics on a truncated STAP-A and never resets a broken FU-A.)
//!
//! No I/O and no clock: the caller passes the arrival time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::rtp::extend_seq;

/// How long a missing packet is waited for before it counts as lost, on a short path:
/// several NACK rounds. A longer round trip waits longer ([`reorder_wait`]).
pub const REORDER_WAIT: Duration = Duration::from_millis(150);
/// The longest wait, however long the round trip: past this, a keyframe is sooner.
pub const MAX_REORDER_WAIT: Duration = Duration::from_millis(500);

/// The wait for a gap on a path with this round-trip time: a round trip for the first
/// resend (plus up to a NACK interval before the request goes out), then four more
/// resends half a round trip apart. Giving up costs a keyframe, a round trip and more: on
/// a lossy path (20% on a 100 ms round trip) waiting is the cheaper bet.
pub fn reorder_wait(rtt: Duration) -> Duration {
    (rtt * 3 + Duration::from_millis(40)).clamp(REORDER_WAIT, MAX_REORDER_WAIT)
}
/// Packets held waiting for a gap to fill, at most.
const MAX_PENDING: usize = 1024;
/// Largest access unit accepted (a 4K keyframe is well under this).
pub const MAX_ACCESS_UNIT_BYTES: usize = 4 * 1024 * 1024;

const START_CODE: [u8; 4] = [0, 0, 0, 1];
const STAP_A: u8 = 24;
const FU_A: u8 = 28;
/// NAL unit type of an IDR picture (a keyframe).
const NAL_IDR: u8 = 5;

/// One complete picture, ready for the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// Annex B: each NAL unit after a 4-byte start code.
    pub data: Vec<u8>,
    /// RTP timestamp (90 kHz).
    pub timestamp: u32,
    pub keyframe: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Frame(AccessUnit),
    /// Part of the stream was lost or damaged: frames after this may reference what is
    /// missing, so ask for a keyframe.
    Lost,
}

struct Packet {
    timestamp: u32,
    marker: bool,
    payload: Vec<u8>,
    arrived: Instant,
}

#[derive(Default)]
pub struct H264Depacketizer {
    pending: BTreeMap<u64, Packet>,
    highest: Option<u64>,
    /// The next sequence number to assemble.
    next: Option<u64>,
    frame: Vec<u8>,
    frame_timestamp: Option<u32>,
    frame_broken: bool,
    /// A fragmented NAL unit is open (its FU-A start was seen, not its end).
    in_fragment: bool,
    /// The frame being assembled holds an IDR picture.
    frame_has_idr: bool,
    /// The path's round-trip time (zero until known), which sets the wait for gaps.
    rtt: Duration,
    /// Counters, for stats.
    pub frames: u64,
    pub losses: u64,
}

impl H264Depacketizer {
    pub fn new() -> H264Depacketizer {
        H264Depacketizer::default()
    }

    /// Adds one RTP packet's payload; returns whatever it completes.
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        now: Instant,
    ) -> Vec<Output> {
        let ext = extend_seq(self.highest, seq);
        if self.next.is_some_and(|next| ext < next) {
            // Too late: its frame was already given up (or it is a duplicate).
            return Vec::new();
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.next.get_or_insert(ext);
        if self.pending.len() >= MAX_PENDING {
            // A flood of packets that never fills in: give up on the gap.
            let mut out = Vec::new();
            self.skip_gap(&mut out);
            self.pending.clear();
            self.next = Some(ext);
            self.reset_frame();
            self.pending.insert(
                ext,
                Packet {
                    timestamp,
                    marker,
                    payload: payload.to_vec(),
                    arrived: now,
                },
            );
            out.extend(self.drain(now));
            return out;
        }
        self.pending.entry(ext).or_insert_with(|| Packet {
            timestamp,
            marker,
            payload: payload.to_vec(),
            arrived: now,
        });
        self.drain(now)
    }

    /// The path's newest round-trip time: gaps are waited for [`reorder_wait`] of it.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// Gives up on gaps older than the wait. Call periodically (every 20-50 ms).
    pub fn poll(&mut self, now: Instant) -> Vec<Output> {
        self.drain(now)
    }

    fn drain(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let wait = reorder_wait(self.rtt);
        while let Some(next) = self.next {
            if let Some(packet) = self.pending.remove(&next) {
                self.next = Some(next + 1);
                self.assemble(packet, &mut out);
                continue;
            }
            // A gap. Wait for it, unless the oldest packet behind it has waited long enough.
            match self.pending.first_key_value() {
                Some((&after, oldest)) if now.saturating_duration_since(oldest.arrived) >= wait => {
                    self.skip_gap(&mut out);
                    self.next = Some(after);
                }
                _ => break,
            }
        }
        out
    }

    /// Packets are missing: the frame in progress is broken.
    fn skip_gap(&mut self, out: &mut Vec<Output>) {
        if !self.frame_broken {
            self.losses += 1;
            out.push(Output::Lost);
        }
        self.frame_broken = true;
        self.in_fragment = false;
    }

    fn reset_frame(&mut self) {
        self.frame.clear();
        self.frame_has_idr = false;
        self.frame_timestamp = None;
        self.frame_broken = false;
        self.in_fragment = false;
    }

    fn assemble(&mut self, packet: Packet, out: &mut Vec<Output>) {
        // A new timestamp without the previous frame's marker: that frame ends here.
        if self
            .frame_timestamp
            .is_some_and(|ts| ts != packet.timestamp)
        {
            self.finish_frame(out);
        }
        self.frame_timestamp = Some(packet.timestamp);
        if !self.frame_broken && self.append(&packet.payload).is_err() {
            if !self.frame_broken {
                self.losses += 1;
                out.push(Output::Lost);
            }
            self.frame_broken = true;
        }
        if packet.marker {
            self.finish_frame(out);
        }
    }

    fn finish_frame(&mut self, out: &mut Vec<Output>) {
        let broken = self.frame_broken || self.in_fragment || self.frame.is_empty();
        if broken {
            if !self.frame_broken && !self.frame.is_empty() {
                self.losses += 1;
                out.push(Output::Lost);
            }
        } else {
            self.frames += 1;
            let data = std::mem::take(&mut self.frame);
            out.push(Output::Frame(AccessUnit {
                keyframe: self.frame_has_idr,
                data,
                timestamp: self.frame_timestamp.unwrap_or_default(),
            }));
        }
        self.reset_frame();
    }

    /// Appends one payload's NAL units to the frame.
    fn append(&mut self, payload: &[u8]) -> Result<(), ()> {
        let (&header, body) = payload.split_first().ok_or(())?;
        if header & 0x80 != 0 {
            return Err(()); // forbidden_zero_bit
        }
        match header & 0x1f {
            STAP_A => {
                let mut rest = body;
                if rest.is_empty() {
                    return Err(());
                }
                while !rest.is_empty() {
                    let [hi, lo, tail @ ..] = rest else {
                        return Err(());
                    };
                    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
                    let Some((nal, after)) = tail.split_at_checked(len) else {
                        return Err(());
                    };
                    if nal.is_empty() {
                        return Err(());
                    }
                    self.push_nal(nal)?;
                    rest = after;
                }
                Ok(())
            }
            FU_A => {
                let (&fu_header, fragment) = body.split_first().ok_or(())?;
                let (start, end) = (fu_header & 0x80 != 0, fu_header & 0x40 != 0);
                if start {
                    if self.in_fragment {
                        return Err(()); // the previous fragment never ended
                    }
                    let nal_header = (header & 0xe0) | (fu_header & 0x1f);
                    self.push_nal(&[nal_header])?;
                    self.in_fragment = true;
                } else if !self.in_fragment {
                    return Err(()); // a middle without its start
                }
                self.extend(fragment)?;
                if end {
                    self.in_fragment = false;
                }
                Ok(())
            }
            1..=23 => {
                if self.in_fragment {
                    return Err(());
                }
                self.push_nal(payload)
            }
            // STAP-B, MTAP, FU-B: not in packetization mode 1.
            _ => Err(()),
        }
    }

    fn push_nal(&mut self, nal: &[u8]) -> Result<(), ()> {
        self.extend(&START_CODE)?;
        self.extend(nal)?;
        self.frame_has_idr |= nal.first().is_some_and(|header| header & 0x1f == NAL_IDR);
        Ok(())
    }

    fn extend(&mut self, bytes: &[u8]) -> Result<(), ()> {
        if self.frame.len() + bytes.len() > MAX_ACCESS_UNIT_BYTES {
            return Err(());
        }
        self.frame.extend_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits an Annex B access unit into RTP payloads the way a mode-1 packetizer does:
    /// small NAL units whole, big ones as FU-A fragments of `mtu` bytes.
    fn packetize(au: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        let mut payloads = Vec::new();
        for nal in split_annex_b(au) {
            if nal.len() <= mtu {
                payloads.push(nal.to_vec());
                continue;
            }
            let (header, body) = (nal[0], &nal[1..]);
            let chunks: Vec<&[u8]> = body.chunks(mtu - 2).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                let mut fu_header = header & 0x1f;
                if i == 0 {
                    fu_header |= 0x80;
                }
                if i == chunks.len() - 1 {
                    fu_header |= 0x40;
                }
                let mut p = vec![(header & 0xe0) | FU_A, fu_header];
                p.extend_from_slice(chunk);
                payloads.push(p);
            }
        }
        payloads
    }

    fn split_annex_b(au: &[u8]) -> Vec<&[u8]> {
        let mut starts = Vec::new();
        for i in 0..au.len().saturating_sub(3) {
            if au[i..i + 4] == START_CODE {
                starts.push(i + 4);
            }
        }
        starts
            .iter()
            .enumerate()
            .map(|(n, &s)| &au[s..starts.get(n + 1).map_or(au.len(), |next| next - 4)])
            .collect()
    }

    fn au(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| START_CODE.iter().chain(n.iter()).copied())
            .collect()
    }

    struct Feed {
        depack: H264Depacketizer,
        seq: u16,
        t0: Instant,
    }

    impl Feed {
        fn new() -> Feed {
            Feed {
                depack: H264Depacketizer::new(),
                seq: 65_530, // exercises wrap-around
                t0: Instant::now(),
            }
        }

        /// Sends a frame's payloads, skipping those in `lose`; returns outputs.
        fn frame(&mut self, access_unit: &[u8], ts: u32, lose: &[usize]) -> Vec<Output> {
            let payloads = packetize(access_unit, 100);
            let n = payloads.len();
            let mut out = Vec::new();
            for (i, p) in payloads.into_iter().enumerate() {
                let seq = self.seq;
                self.seq = self.seq.wrapping_add(1);
                if !lose.contains(&i) {
                    out.extend(self.depack.push(seq, ts, i == n - 1, &p, self.t0));
                }
            }
            out
        }
    }

    fn keyframe() -> Vec<u8> {
        let idr: Vec<u8> = std::iter::once(0x65)
            .chain((0..500).map(|i| (i % 251) as u8 + 1))
            .collect();
        au(&[&[0x67, 0x42, 0xc0, 0x1e], &[0x68, 0xce, 0x3c, 0x80], &idr])
    }

    fn delta(n: u8) -> Vec<u8> {
        let p: Vec<u8> = std::iter::once(0x41)
            .chain((0..300).map(|i| (i as u8) ^ n | 1))
            .collect();
        au(&[&p])
    }

    #[test]
    fn frames_round_trip_through_single_nals_and_fu_a() {
        let mut feed = Feed::new();
        let key = keyframe();
        let out = feed.frame(&key, 0, &[]);
        assert_eq!(
            out,
            [Output::Frame(AccessUnit {
                data: key,
                timestamp: 0,
                keyframe: true
            })]
        );
        let d = delta(1);
        assert_eq!(
            feed.frame(&d, 3000, &[]),
            [Output::Frame(AccessUnit {
                data: d,
                timestamp: 3000,
                keyframe: false
            })]
        );
    }

    #[test]
    fn stap_a_is_unpacked() {
        let mut d = H264Depacketizer::new();
        let t0 = Instant::now();
        let stap = [STAP_A, 0, 2, 0x67, 0x42, 0, 3, 0x68, 0xce, 0x3c];
        assert!(d.push(1, 0, false, &stap, t0).is_empty());
        let out = d.push(2, 0, true, &[0x65, 0x88, 0x99], t0);
        let expected = au(&[&[0x67, 0x42], &[0x68, 0xce, 0x3c], &[0x65, 0x88, 0x99]]);
        assert_eq!(
            out,
            [Output::Frame(AccessUnit {
                data: expected,
                timestamp: 0,
                keyframe: true
            })]
        );
    }

    #[test]
    fn reordered_packets_are_put_back_in_order() {
        let key = keyframe();
        let payloads = packetize(&key, 100);
        let mut d = H264Depacketizer::new();
        let t0 = Instant::now();
        let n = payloads.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.swap(1, 3);
        order.swap(2, n - 1);
        let mut out = Vec::new();
        for i in order {
            out.extend(d.push(i as u16, 0, i == n - 1, &payloads[i], t0));
        }
        assert_eq!(
            out,
            [Output::Frame(AccessUnit {
                data: key,
                timestamp: 0,
                keyframe: true
            })]
        );
    }

    #[test]
    fn a_lost_packet_drops_its_frame_once_the_wait_is_over() {
        let mut feed = Feed::new();
        feed.frame(&keyframe(), 0, &[]);
        // Lose the second fragment of a delta frame, then send the next frame.
        assert!(
            feed.frame(&delta(1), 3000, &[1]).is_empty(),
            "waiting for the gap"
        );
        assert!(
            feed.frame(&delta(2), 6000, &[]).is_empty(),
            "still within the wait"
        );
        let later = feed.t0 + REORDER_WAIT;
        let out = feed.depack.poll(later);
        assert_eq!(out.first(), Some(&Output::Lost));
        // Frame 2 comes out; the receiver must still wait for a keyframe (decoder's job).
        assert!(
            matches!(
                out.get(1),
                Some(Output::Frame(AccessUnit {
                    timestamp: 6000,
                    ..
                }))
            ),
            "{out:?}"
        );
        assert_eq!(feed.depack.losses, 1);
    }

    #[test]
    fn a_longer_round_trip_waits_longer_for_a_gap() {
        assert_eq!(reorder_wait(Duration::ZERO), REORDER_WAIT);
        assert_eq!(
            reorder_wait(Duration::from_millis(100)),
            Duration::from_millis(340)
        );
        assert_eq!(reorder_wait(Duration::from_secs(3)), MAX_REORDER_WAIT);
        let mut feed = Feed::new();
        feed.depack.set_rtt(Duration::from_millis(200));
        feed.frame(&keyframe(), 0, &[]);
        assert!(feed.frame(&delta(1), 3000, &[1]).is_empty());
        assert!(feed.frame(&delta(2), 6000, &[]).is_empty());
        assert_eq!(feed.depack.poll(feed.t0 + REORDER_WAIT * 2), []);
        assert_eq!(feed.depack.poll(feed.t0 + Duration::from_millis(499)), []);
        let out = feed.depack.poll(feed.t0 + MAX_REORDER_WAIT);
        assert_eq!(out.first(), Some(&Output::Lost), "{out:?}");
    }

    #[test]
    fn a_late_retransmission_fills_the_gap_in_time() {
        let key = keyframe();
        let payloads = packetize(&key, 100);
        let n = payloads.len();
        let mut d = H264Depacketizer::new();
        let t0 = Instant::now();
        let mut out = Vec::new();
        for i in (0..n).filter(|&i| i != 2) {
            out.extend(d.push(i as u16, 0, i == n - 1, &payloads[i], t0));
        }
        assert!(out.is_empty());
        // NACK brought it back before the wait ran out.
        let out = d.push(2, 0, false, &payloads[2], t0 + REORDER_WAIT / 2);
        assert_eq!(
            out,
            [Output::Frame(AccessUnit {
                data: key,
                timestamp: 0,
                keyframe: true
            })]
        );
    }

    #[test]
    fn malformed_payloads_never_panic_and_break_only_their_frame() {
        let t0 = Instant::now();
        let bad: &[&[u8]] = &[
            &[],
            &[0x80],
            &[STAP_A],
            &[STAP_A, 0, 0, 0],
            &[STAP_A, 0, 1, 0xaa, 0],
            &[STAP_A, 0, 9, 0xaa, 0xbb],
            &[STAP_A, 0xff, 0xff],
            &[FU_A],
            &[FU_A, 0x05],
            &[FU_A, 0x45, 1, 2],
            &[25, 1, 2],
            &[29, 1, 2],
            &[31],
        ];
        for (i, payload) in bad.iter().enumerate() {
            let mut d = H264Depacketizer::new();
            let out = d.push(0, 0, true, payload, t0);
            assert_eq!(out, [Output::Lost], "payload {i}: {payload:?}");
            // The next good frame is delivered.
            let out = d.push(1, 90, true, &[0x65, 1, 2], t0);
            assert!(
                matches!(
                    out.as_slice(),
                    [Output::Frame(AccessUnit { keyframe: true, .. })]
                ),
                "after {i}: {out:?}"
            );
        }
    }

    #[test]
    fn an_fu_a_without_an_end_does_not_swallow_the_next_frame() {
        let t0 = Instant::now();
        let mut d = H264Depacketizer::new();
        // Start of a fragmented IDR, then the marker comes with a new start (broken sender).
        d.push(0, 0, false, &[FU_A, 0x85, 1, 2, 3], t0);
        let out = d.push(1, 0, true, &[FU_A, 0x85, 4, 5], t0);
        assert_eq!(out, [Output::Lost]);
        let out = d.push(2, 90, true, &[0x41, 7, 7], t0);
        assert!(matches!(
            out.as_slice(),
            [Output::Frame(AccessUnit {
                keyframe: false,
                ..
            })]
        ));
    }

    #[test]
    fn floods_and_giant_frames_are_bounded() {
        let t0 = Instant::now();
        let mut d = H264Depacketizer::new();
        // Endless middle fragments of one frame, never ending: capped at the frame size limit.
        d.push(0, 0, false, &[FU_A, 0x85, 0], t0);
        let chunk = vec![0xab; 60_000];
        let mut payload = vec![FU_A, 0x05];
        payload.extend_from_slice(&chunk);
        let mut lost = 0;
        for seq in 1..200u16 {
            lost += d
                .push(seq, 0, false, &payload, t0)
                .iter()
                .filter(|o| **o == Output::Lost)
                .count();
        }
        assert_eq!(lost, 1);
        assert!(d.frame.len() <= MAX_ACCESS_UNIT_BYTES);
        // Packets far ahead of a gap that never fills: the pending window stays bounded.
        let mut d = H264Depacketizer::new();
        d.push(0, 0, false, &[0x41, 1], t0);
        for seq in 2..3000u16 {
            d.push(seq, u32::from(seq), false, &[0x41, 1], t0);
        }
        assert!(d.pending.len() <= MAX_PENDING);
    }
}
