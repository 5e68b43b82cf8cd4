//! Per-frame cost of the media engine's heavy work, one core, release build:
//! H.264 encode and decode at 640x480 and 1280x720, I420 <-> RGBA, Opus per 20 ms frame.
//!
//! Run: `cargo bench -p confab-media --bench codecs` (numbers in docs/performance.md).

// A benchmark: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;

use confab_media::audio::{AudioSource, FRAME_SAMPLES, OpusDecoder, OpusEncoder, ToneSource};
use confab_media::video::{
    H264Decoder, H264Encoder, H264EncoderConfig, I420Frame, PatternStamp, TestPattern, VideoFormat,
};
use criterion::{Criterion, criterion_group, criterion_main};

const SIZES: [(u32, u32, u32); 2] = [(640, 480, 1_000_000), (1280, 720, 2_500_000)];

/// A second of test pattern frames (moving content, as from a camera).
fn frames(width: u32, height: u32) -> Vec<I420Frame> {
    let pattern = TestPattern::new(VideoFormat {
        width,
        height,
        fps: 30,
    })
    .expect("valid size");
    (0..30)
        .map(|n| {
            pattern.render(PatternStamp {
                frame_number: n,
                capture_time_us: 0,
            })
        })
        .collect()
}

fn h264(c: &mut Criterion) {
    for (w, h, bitrate_bps) in SIZES {
        let frames = frames(w, h);
        let config = H264EncoderConfig {
            bitrate_bps,
            fps: 30,
            keyframe_interval: None,
            ..Default::default()
        };
        let mut encoder = H264Encoder::new(config).expect("encoder");
        let mut n = 0;
        c.bench_function(&format!("h264 encode {w}x{h}"), |b| {
            b.iter(|| {
                n += 1;
                black_box(encoder.encode(&frames[n % frames.len()]).expect("encode"))
            })
        });

        // Decode a realistic stream: one keyframe, then P-frames, looped with a fresh
        // keyframe each time round.
        let mut encoder = H264Encoder::new(config).expect("encoder");
        let stream: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| encoder.encode(f).expect("encode").data)
            .collect();
        let mut decoder = H264Decoder::new().expect("decoder");
        let mut i = 0;
        c.bench_function(&format!("h264 decode {w}x{h}"), |b| {
            b.iter(|| {
                let unit = &stream[i % stream.len()];
                i += 1;
                black_box(decoder.decode(unit).expect("decode").map(|f| f.width()))
            })
        });

        let mut rgba = Vec::new();
        let frame = &frames[0];
        c.bench_function(&format!("i420 to rgba {w}x{h}"), |b| {
            b.iter(|| frame.write_rgba(black_box(&mut rgba)).expect("convert"))
        });
        c.bench_function(&format!("rgba to i420 {w}x{h}"), |b| {
            b.iter(|| black_box(I420Frame::from_rgba(w, h, &rgba).expect("convert")))
        });
    }
}

fn opus(c: &mut Criterion) {
    let mut tone = ToneSource::new(440.0).expect("tone");
    let mut frame = [0.0; FRAME_SAMPLES];
    tone.read(&mut frame).expect("tone");
    let mut encoder = OpusEncoder::new(32_000).expect("encoder");
    c.bench_function("opus encode 20 ms", |b| {
        b.iter(|| black_box(encoder.encode(&frame).expect("encode")))
    });
    let packet = encoder.encode(&frame).expect("encode");
    let mut decoder = OpusDecoder::new().expect("decoder");
    let mut out = [0.0; FRAME_SAMPLES];
    c.bench_function("opus decode 20 ms", |b| {
        b.iter(|| {
            decoder
                .decode(black_box(&packet), &mut out)
                .expect("decode")
        })
    });
}

criterion_group!(benches, h264, opus);
criterion_main!(benches);
