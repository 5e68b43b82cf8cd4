//! The microphone's processing (sonora: AEC3 echo cancellation, noise suppression, AGC2
//! gain control, high-pass filter), release build, one core:
//!
//! 1. cost per 10 ms of 48 kHz mono, for each stage alone and all together (the target is
//!    at most 0.3 ms);
//! 2. what the canceller does when the delay it is told is wrong by 50 ms, and when the
//!    microphone and the speaker run on different clocks (they drift apart), in a simulated
//!    room: the speaker plays 60 ms after a frame is handed over (its queue), the echo comes
//!    40 ms later at -18 dB with a few reflections.
//!
//! Run: `cargo bench -p confab-media --bench audio_processing` (numbers in
//! docs/performance.md). It prints a table; there is nothing to pass or fail.

// A benchmark: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use confab_media::audio::{
    AudioProcessor, FRAME_SAMPLES, ProcessingSettings, SAMPLE_RATE, analysis, babble,
    echo_reference,
};

const OFF: ProcessingSettings = ProcessingSettings::OFF;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let seconds = if quick { 3.0 } else { 60.0 };
    cost(seconds);
    room(if quick { 4.0 } else { 120.0 });
}

/// Median and 95th percentile microseconds per 10 ms, for each configuration.
fn cost(seconds: f32) {
    let far = babble(seconds, 7);
    let near = babble(seconds, 11);
    let mic = room_echo(&far, 1.0, &near);
    println!("cost per 10 ms at 48 kHz mono ({seconds} s of two talkers, after 2 s warm-up):");
    println!("{:<28} {:>9} {:>9}", "stages", "p50 µs", "p95 µs");
    let configs = [
        ("all (the default)", ProcessingSettings::default()),
        (
            "echo cancellation only",
            ProcessingSettings {
                echo_cancellation: true,
                ..OFF
            },
        ),
        (
            "noise suppression only",
            ProcessingSettings {
                noise_suppression: true,
                ..OFF
            },
        ),
        (
            "gain control only",
            ProcessingSettings {
                gain_control: true,
                ..OFF
            },
        ),
        ("off", OFF),
    ];
    for (name, settings) in configs {
        let (mut tap, reference) = echo_reference();
        let mut processor = AudioProcessor::new(settings, Some(reference)).unwrap();
        let start = Instant::now();
        let mut took = Vec::new();
        for (i, (speaker, captured)) in far
            .chunks_exact(FRAME_SAMPLES)
            .zip(mic.chunks_exact(FRAME_SAMPLES))
            .enumerate()
        {
            let now = start + Duration::from_millis(20 * i as u64);
            let mut frame = [0.0; FRAME_SAMPLES];
            frame.copy_from_slice(captured);
            let began = Instant::now();
            tap.played(speaker, SPEAKER_DELAY, now);
            processor.process(&mut frame, now - Duration::from_millis(40), now);
            if i >= 100 {
                // A 20 ms frame is two 10 ms chunks.
                took.push(began.elapsed().as_secs_f64() * 1e6 / 2.0);
            }
        }
        took.sort_by(f64::total_cmp);
        let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize];
        println!("{name:<28} {:>9.1} {:>9.1}", at(0.5), at(0.95));
    }
}

/// The speaker's queue: it plays a frame this long after it is handed over.
const SPEAKER_DELAY: Duration = Duration::from_millis(60);

/// The echo of `far` (as handed to the speaker) in a room, the speaker's clock `rate` times
/// the microphone's, plus `near`: 60 ms in the speaker's queue, then 40 ms away at -18 dB, with
/// reflections 5, 11 and 19 ms later.
fn room_echo(far: &[f32], rate: f64, near: &[f32]) -> Vec<f32> {
    let taps = [
        (100.0, 0.125),
        (105.0, -0.06),
        (111.0, 0.03),
        (119.0, -0.015),
    ];
    (0..far.len())
        .map(|i| {
            let echo: f32 = taps
                .iter()
                .map(|&(ms, gain)| {
                    // Where in the speaker's time this microphone sample falls.
                    let at = i as f64 * rate - ms * f64::from(SAMPLE_RATE) / 1000.0;
                    if at < 0.0 {
                        return 0.0;
                    }
                    let (j, frac) = (at as usize, (at.fract()) as f32);
                    let a = far.get(j).copied().unwrap_or(0.0);
                    let b = far.get(j + 1).copied().unwrap_or(0.0);
                    gain * (a + (b - a) * frac)
                })
                .sum();
            echo + near.get(i).copied().unwrap_or(0.0)
        })
        .collect()
}

/// Echo removed after `settle` seconds when the canceller is told `told_ms` (the truth is
/// 40 ms) and the speaker's clock runs at `rate` times the microphone's: the speaker then
/// plays `rate` of its 20 ms frames per microphone frame, which the playout thread hands over
/// whole, as it does in a call.
fn echo_removed(far: &[f32], told_ms: u64, rate: f64, settle: f32) -> (f32, Option<f64>) {
    let mic = room_echo(far, rate, &[]);
    let settings = ProcessingSettings {
        echo_cancellation: true,
        ..OFF
    };
    let (mut tap, reference) = echo_reference();
    let mut processor = AudioProcessor::new(settings, Some(reference)).unwrap();
    let start = Instant::now();
    let mut out = Vec::with_capacity(mic.len());
    let mut speaker = far.chunks_exact(FRAME_SAMPLES).enumerate();
    let mut next = speaker.next();
    for (i, captured) in mic.chunks_exact(FRAME_SAMPLES).enumerate() {
        let now = start + Duration::from_millis(20 * i as u64);
        // The speaker's frames handed over by now, each when its clock got to it.
        while let Some((k, frame)) = next
            && k as f64 / rate <= i as f64
        {
            let written = start + Duration::from_secs_f64(0.02 * k as f64 / rate);
            tap.played(frame, SPEAKER_DELAY, written);
            next = speaker.next();
        }
        let mut frame = [0.0; FRAME_SAMPLES];
        frame.copy_from_slice(captured);
        processor.process(&mut frame, now - Duration::from_millis(told_ms), now);
        out.extend_from_slice(&frame);
    }
    let settled = (settle * SAMPLE_RATE as f32) as usize;
    let end = out.len().min(mic.len());
    let removed = analysis::level(&mic[settled..end]).rms_dbfs()
        - analysis::level(&out[settled..end]).rms_dbfs();
    (removed, processor.stats().drift_ppm)
}

fn room(seconds: f32) {
    let far = babble(seconds, 7);
    let settle = seconds / 2.0;
    println!();
    println!(
        "echo removed ({seconds} s of far-end talk, measured after {settle} s; the right capture \
         delay to tell is 40 ms):"
    );
    println!(
        "{:<44} {:>8} {:>14}",
        "the capture delay told / the clocks", "removed", "drift learnt"
    );
    let cases = [
        ("40 ms (right), same clock", 40, 1.0),
        ("90 ms (50 ms too long), same clock", 90, 1.0),
        ("0 ms (40 ms too short), same clock", 0, 1.0),
        ("40 ms, the speaker's clock 100 ppm fast", 40, 1.0001),
        ("40 ms, the speaker's clock 300 ppm slow", 40, 0.9997),
        ("40 ms, the speaker's clock 1000 ppm slow", 40, 0.999),
    ];
    for (name, told, rate) in cases {
        let (removed, drift) = echo_removed(&far, told, rate, settle);
        let drift = drift.map_or("?".into(), |ppm| format!("{ppm:+.0} ppm"));
        println!("{name:<44} {removed:>5.1} dB {drift:>14}");
    }
}
