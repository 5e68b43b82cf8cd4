//! What a hostile peer can put in front of the receiving side, fuzzed with proptest: RTP
//! payloads through the H.264 depacketizer and every access unit it completes through the
//! real decoder (single NAL units, STAP-A and FU-A, truncated and malformed, in any order),
//! and chat data-channel messages through their parser. No panic, no hang, bounded memory.
//!
//! Bounded for CI (a few seconds); `PROPTEST_CASES=100000 cargo test -p confab-call --test
//! hostile_media` searches longer, `PROPTEST_RNG_SEED=N` replays a run.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use confab_call_core::h264_rtp::{H264Depacketizer, MAX_ACCESS_UNIT_BYTES, Output};
use confab_media::video::{
    H264Decoder, H264Encoder, H264EncoderConfig, TestPattern, VideoFormat, VideoSource,
};
use confab_protocol::chat::ChatMessage;
use proptest::prelude::*;

/// One RTP packet as a hostile sender might shape it.
#[derive(Debug, Clone)]
struct RtpPacket {
    /// Added to the previous sequence number: mostly +1, sometimes reordered, repeated or
    /// far away.
    seq_step: i16,
    timestamp_step: u32,
    marker: bool,
    payload: Vec<u8>,
    /// Milliseconds since the previous packet.
    gap_ms: u8,
}

/// An H.264 payload: a NAL header chosen to reach every branch, then arbitrary bytes.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        // Single NAL units of every type, including reserved ones and the F bit set.
        any::<u8>(),
        // STAP-A: a length-prefixed list whose lengths may lie.
        Just(24u8),
        Just(24u8 | 0x60),
        // FU-A with start/end bits in any combination.
        Just(28u8),
        Just(28u8 | 0x60),
    ];
    let body = prop_oneof![
        // Short and empty bodies: truncation at every offset.
        proptest::collection::vec(any::<u8>(), 0..4),
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 0..1400),
    ];
    (header, body).prop_map(|(header, mut body)| {
        body.insert(0, header);
        body
    })
}

fn packet() -> impl Strategy<Value = RtpPacket> {
    let seq_step = prop_oneof![
        8 => Just(1i16),
        1 => -3i16..=3,
        1 => any::<i16>(),
    ];
    let timestamp_step = prop_oneof![Just(0u32), Just(3000u32), any::<u32>()];
    (seq_step, timestamp_step, any::<bool>(), payload(), 0u8..60).prop_map(
        |(seq_step, timestamp_step, marker, payload, gap_ms)| RtpPacket {
            seq_step,
            timestamp_step,
            marker,
            payload,
            gap_ms,
        },
    )
}

/// Frames of a real stream: a keyframe (SPS, PPS, IDR) then P-frames of the test pattern
/// at 320x240, each an Annex B access unit. Mutating these reaches deep into the decoder,
/// which random bytes alone rarely do.
fn real_stream() -> &'static [Vec<u8>] {
    static STREAM: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    STREAM.get_or_init(|| {
        let format = VideoFormat {
            width: 320,
            height: 240,
            fps: 30,
        };
        let mut source = TestPattern::new(format).expect("pattern");
        let mut encoder = H264Encoder::new(H264EncoderConfig::default()).expect("encoder");
        (0..STREAM_FRAMES)
            .map(|_| {
                let frame = source.next_frame().expect("frame");
                encoder.encode(&frame).expect("encode").data
            })
            .collect()
    })
}

const STREAM_FRAMES: usize = 6;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn hostile_rtp_never_panics_and_stays_bounded(packets in proptest::collection::vec(packet(), 1..200)) {
        let mut depacketizer = H264Depacketizer::new();
        let mut decoder = H264Decoder::new().expect("decoder");
        let mut now = Instant::now();
        let (mut seq, mut timestamp) = (0u16, 0u32);
        let mut outputs = Vec::new();
        for packet in &packets {
            seq = seq.wrapping_add_signed(packet.seq_step);
            timestamp = timestamp.wrapping_add(packet.timestamp_step);
            now += Duration::from_millis(u64::from(packet.gap_ms));
            outputs.extend(depacketizer.push(seq, timestamp, packet.marker, &packet.payload, now));
            outputs.extend(depacketizer.poll(now));
        }
        // Whatever is still waiting comes out (or is given up) once the wait is over.
        outputs.extend(depacketizer.poll(now + Duration::from_secs(1)));
        for output in outputs {
            match output {
                Output::Frame(unit) => {
                    prop_assert!(unit.data.len() <= MAX_ACCESS_UNIT_BYTES);
                    // The decoder may refuse it; it must not crash or hang.
                    let _ = decoder.decode(&unit.data);
                }
                Output::Lost => decoder.expect_keyframe(),
            }
        }
    }

    #[test]
    fn a_damaged_real_stream_never_crashes_the_decoder(
        flips in proptest::collection::vec((0..STREAM_FRAMES, any::<usize>(), 1u8..=255), 0..24),
        cuts in proptest::collection::vec((0..STREAM_FRAMES, any::<usize>()), 0..3),
    ) {
        let mut frames = real_stream().to_vec();
        for (frame, at, xor) in flips {
            let data = &mut frames[frame];
            if !data.is_empty() {
                let at = at % data.len();
                data[at] ^= xor;
            }
        }
        for (frame, at) in cuts {
            let data = &mut frames[frame];
            let at = at % (data.len() + 1);
            data.truncate(at);
        }
        let mut decoder = H264Decoder::new().expect("decoder");
        for frame in &frames {
            // Refusing is fine (and then it waits for a keyframe); crashing is not.
            let _ = decoder.decode(frame);
        }
    }

    #[test]
    fn hostile_chat_messages_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = ChatMessage::parse(&bytes);
    }

    #[test]
    fn chat_json_with_hostile_fields_never_panics(
        text in r#"\{("(type|id|text|sent_at)":("chat"|"ack"|"bye"|""|null|-1|1e400|18446744073709551616|\[\]|\{\}|"x{0,80}"),?){0,6}\}?"#
    ) {
        let _ = ChatMessage::parse(text.as_bytes());
    }
}
