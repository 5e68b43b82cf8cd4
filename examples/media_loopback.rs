//! Pushes a test pattern and a tone through the encoders and decoders, and writes what
//! comes out to files a standard player opens.
//!
//! ```text
//! cargo run --release --example media_loopback -- [SECONDS] [OUTPUT_PREFIX]
//! ffplay loopback.h264; aplay loopback.wav
//! ```
//!
//! Writes `PREFIX.h264` (the encoded stream, Annex B) and `PREFIX.wav` (the decoded tone,
//! 48 kHz mono), then prints what the receiving side measured.

// An example: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;

use anyhow::Context;
use confab_media::audio::{
    AudioSink, AudioSource, FRAME_SAMPLES, OpusDecoder, OpusEncoder, SAMPLE_RATE, ToneSource,
    WavSink, analysis,
};
use confab_media::video::{
    H264Decoder, H264Encoder, H264EncoderConfig, PatternStamp, TestPattern, VideoFormat, psnr_y,
    read_stamp,
};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u32 = args
        .next()
        .map(|s| s.parse())
        .transpose()
        .context("SECONDS must be a number")?
        .unwrap_or(5);
    let prefix = args.next().unwrap_or_else(|| "loopback".into());

    // Video: 640x480 at 30 fps, 1 Mbit/s.
    let format = VideoFormat {
        width: 640,
        height: 480,
        fps: 30,
    };
    let pattern = TestPattern::new(format)?;
    let mut encoder = H264Encoder::new(H264EncoderConfig {
        bitrate_bps: 1_000_000,
        fps: 30,
        keyframe_interval: None,
        ..H264EncoderConfig::default()
    })?;
    let mut decoder = H264Decoder::new()?;
    let h264_path = format!("{prefix}.h264");
    let mut h264 = std::io::BufWriter::new(
        std::fs::File::create(&h264_path).with_context(|| h264_path.clone())?,
    );
    let (mut bytes, mut psnr_sum, mut stamps_ok) = (0usize, 0.0, 0u32);
    let frames = seconds * format.fps;
    for n in 0..frames {
        let frame = pattern.render(PatternStamp {
            frame_number: n,
            capture_time_us: u64::from(n) * 33_333,
        });
        let encoded = encoder.encode(&frame)?;
        h264.write_all(&encoded.data)?;
        bytes += encoded.data.len();
        if let Some(decoded) = decoder.decode(&encoded.data)? {
            let decoded = decoded.to_frame();
            psnr_sum += psnr_y(&frame, &decoded);
            if read_stamp(&decoded).is_some_and(|s| s.frame_number == n) {
                stamps_ok += 1;
            }
        }
    }
    h264.flush()?;
    println!(
        "video: {frames} frames, {:.0} kbit/s, mean PSNR {:.1} dB, {stamps_ok}/{frames} stamps read back -> {h264_path}",
        bytes as f64 * 8.0 / f64::from(seconds) / 1000.0,
        psnr_sum / f64::from(frames)
    );

    // Audio: a 440 Hz tone through Opus at 32 kbit/s.
    let mut tone = ToneSource::new(440.0)?;
    let mut opus_out = OpusEncoder::new(32_000)?;
    let mut opus_in = OpusDecoder::new()?;
    let wav_path = format!("{prefix}.wav");
    let mut wav = WavSink::create(&wav_path)?;
    let (mut frame, mut decoded) = ([0.0; FRAME_SAMPLES], [0.0; FRAME_SAMPLES]);
    let mut all = Vec::new();
    let mut packet_bytes = 0;
    for _ in 0..seconds * 50 {
        tone.read(&mut frame)?;
        let packet = opus_out.encode(&frame)?;
        packet_bytes += packet.len();
        opus_in.decode(&packet, &mut decoded)?;
        wav.write(&decoded)?;
        all.extend_from_slice(&decoded);
    }
    wav.finish()?;
    let steady = &all[all.len() / 4..];
    println!(
        "audio: {:.1} s, {:.0} kbit/s, {:.1} Hz at {:.1} dBFS -> {wav_path}",
        all.len() as f64 / f64::from(SAMPLE_RATE),
        packet_bytes as f64 * 8.0 / f64::from(seconds) / 1000.0,
        analysis::dominant_frequency(steady, SAMPLE_RATE),
        analysis::level(steady).rms_dbfs()
    );
    Ok(())
}
