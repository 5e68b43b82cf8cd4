//! The microphone's clean-up before Opus: acoustic echo cancellation (AEC3), noise
//! suppression, automatic gain control and a high-pass filter, by `sonora` (a pure-Rust
//! port of WebRTC's audio processing module; why this one: ARCHITECTURE.md).
//!
//! Two threads meet here. The playout thread hands what the speaker is about to play to an
//! [`EchoTap`]; the audio-send thread owns the [`AudioProcessor`], which reads those frames
//! back (the canceller's far-end reference) through a lock-free ring, brings them onto the
//! microphone's clock (`drift`), and feeds them to the canceller 10 ms at a time, in step
//! with the microphone. Confab's part allocates nothing per frame, never locks, and never
//! runs in a device callback.

use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer, RingBuffer};
use sonora::config::{
    AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, NoiseSuppression,
    NoiseSuppressionLevel,
};
use sonora::{AudioProcessing, Config, StreamConfig};

use super::drift::{CHUNK, ClockBridge};
use super::{AudioError, FRAME_SAMPLES, SAMPLE_RATE};
/// Chunks of speaker audio the ring holds: half a second.
const REFERENCE_RING: usize = 50;

/// Which stages clean the microphone. All on by default; each switches at once, mid-call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingSettings {
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub gain_control: bool,
}

impl Default for ProcessingSettings {
    fn default() -> Self {
        ProcessingSettings {
            echo_cancellation: true,
            noise_suppression: true,
            gain_control: true,
        }
    }
}

impl ProcessingSettings {
    /// Every stage off: the microphone goes to Opus as it is.
    pub const OFF: ProcessingSettings = ProcessingSettings {
        echo_cancellation: false,
        noise_suppression: false,
        gain_control: false,
    };

    pub fn any(&self) -> bool {
        self.echo_cancellation || self.noise_suppression || self.gain_control
    }

    fn config(&self) -> Config {
        Config {
            // Rumble and DC go whenever anything runs (the canceller needs it too).
            high_pass_filter: self.any().then(HighPassFilter::default),
            echo_canceller: self.echo_cancellation.then(EchoCanceller::default),
            noise_suppression: self.noise_suppression.then(|| NoiseSuppression {
                level: NoiseSuppressionLevel::High,
                ..NoiseSuppression::default()
            }),
            gain_controller2: self.gain_control.then(|| GainController2 {
                adaptive_digital: Some(AdaptiveDigital {
                    // Start neutral and raise only speech that is measured to be quiet:
                    // WebRTC's 15 dB head start lifts a room's noise back up as far as the
                    // suppressor took it down before any word is heard.
                    initial_gain_db: 0.0,
                    ..AdaptiveDigital::default()
                }),
                ..GainController2::default()
            }),
            ..Config::default()
        }
    }
}

/// What the canceller says about the echo, for the stats overlay and the echo doctor.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EchoStats {
    /// How much the canceller removed (echo return loss enhancement), dB.
    pub erle_db: Option<f64>,
    /// How likely the cleaned microphone still carries the far end's voice (0 to 1), over
    /// the last while.
    pub residual_echo_likelihood: Option<f64>,
    /// The speaker-to-microphone delay the canceller found, ms.
    pub delay_ms: Option<i32>,
    /// The delay it was told (from the devices' timestamps and buffers), ms.
    pub reported_delay_ms: i32,
    /// How far the speaker's clock runs ahead of the microphone's, in parts per million.
    pub drift_ppm: Option<f64>,
}

/// One 10 ms chunk of speaker audio and when it reaches the speaker.
struct ReferenceChunk {
    samples: [f32; CHUNK],
    plays_at: Instant,
}

/// A linked pair: the playout side's [`EchoTap`] and the send side's [`EchoReference`].
pub fn echo_reference() -> (EchoTap, EchoReference) {
    let (producer, consumer) = RingBuffer::new(REFERENCE_RING);
    (
        EchoTap {
            ring: producer,
            dropped: 0,
        },
        EchoReference { ring: consumer },
    )
}

/// The playout thread's end: what the speaker plays, as it is queued.
pub struct EchoTap {
    ring: Producer<ReferenceChunk>,
    dropped: u64,
}

impl EchoTap {
    /// Records a 20 ms frame whose first sample the speaker plays `delay` from `now`. Never
    /// blocks: when nobody reads (no microphone), chunks are dropped and counted.
    pub fn played(&mut self, frame: &[f32], delay: Duration, now: Instant) {
        for (i, part) in frame.chunks_exact(CHUNK).enumerate() {
            let mut samples = [0.0; CHUNK];
            samples.copy_from_slice(part);
            let offset = Duration::from_millis(10 * i as u64);
            let chunk = ReferenceChunk {
                samples,
                plays_at: now + delay + offset,
            };
            if self.ring.push(chunk).is_err() {
                self.dropped += 1;
            }
        }
    }

    /// Chunks dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The send thread's end, given to its [`AudioProcessor`].
pub struct EchoReference {
    ring: Consumer<ReferenceChunk>,
}

/// The speaker's side, as the send thread sees it.
struct Speaker {
    reference: EchoReference,
    bridge: ClockBridge,
    /// When the newest chunk taken from the ring plays.
    newest_plays_at: Option<Instant>,
}

/// Cleans 48 kHz mono microphone frames; owned by the audio-send thread.
pub struct AudioProcessor {
    apm: AudioProcessing,
    /// Time zero for the clock bridge's timestamps.
    epoch: Option<Instant>,
    settings: ProcessingSettings,
    speaker: Option<Speaker>,
    reported_delay_ms: i32,
    out: [f32; CHUNK],
    render: [f32; CHUNK],
    render_out: [f32; CHUNK],
}

impl AudioProcessor {
    /// `reference`: what the speaker plays, when there is one (without it the canceller has
    /// nothing to cancel, and the other stages still run).
    pub fn new(
        settings: ProcessingSettings,
        reference: Option<EchoReference>,
    ) -> Result<AudioProcessor, AudioError> {
        let stream = StreamConfig::new(SAMPLE_RATE, 1);
        let apm = AudioProcessing::builder()
            .config(settings.config())
            .capture_config(stream)
            .render_config(stream)
            .echo_detector(true)
            .build();
        let speaker = match reference {
            Some(reference) => Some(Speaker {
                reference,
                bridge: ClockBridge::new()?,
                newest_plays_at: None,
            }),
            None => None,
        };
        Ok(AudioProcessor {
            apm,
            epoch: None,
            settings,
            speaker,
            reported_delay_ms: 0,
            out: [0.0; CHUNK],
            render: [0.0; CHUNK],
            render_out: [0.0; CHUNK],
        })
    }

    pub fn settings(&self) -> ProcessingSettings {
        self.settings
    }

    /// Switches stages on or off from the next frame.
    pub fn set_settings(&mut self, settings: ProcessingSettings) {
        if settings != self.settings {
            self.settings = settings;
            self.apm.apply_config(settings.config());
        }
    }

    /// Cleans one 20 ms frame in place. `captured_at`: when its first sample reached the
    /// microphone (from the device's timestamps); `now`: this moment.
    pub fn process(&mut self, frame: &mut [f32], captured_at: Instant, now: Instant) {
        let epoch = *self.epoch.get_or_insert(captured_at);
        let seconds = |at: Instant| match at.checked_duration_since(epoch) {
            Some(after) => after.as_secs_f64(),
            None => -epoch.duration_since(at).as_secs_f64(),
        };
        self.take_speaker_audio(&seconds);
        let mut chunk_captured_at = seconds(captured_at);
        let on = self.settings.any();
        if on {
            // delay = (t_render - t_analyse) + (t_process - t_capture), as the module asks.
            let capture_age = now.saturating_duration_since(captured_at);
            let delay = self.render_lead(now) + capture_age;
            self.reported_delay_ms = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
            // Out of range is clamped (to 0..=500 ms) and still processed.
            let _ = self.apm.set_stream_delay_ms(self.reported_delay_ms);
        }
        for part in frame.chunks_exact_mut(CHUNK) {
            // 10 ms of the speaker, then 10 ms of the microphone, in step.
            let pulled = match &mut self.speaker {
                Some(speaker) => speaker.bridge.pull(&mut self.render, chunk_captured_at),
                None => false,
            };
            chunk_captured_at += 0.01;
            if pulled && on {
                let _ = self
                    .apm
                    .process_render_f32(&[&self.render], &mut [&mut self.render_out]);
            }
            if on
                && self
                    .apm
                    .process_capture_f32(&[part], &mut [&mut self.out])
                    .is_ok()
            {
                part.copy_from_slice(&self.out);
            }
        }
    }

    /// Moves what the speaker has played since the last frame onto the bridge; `seconds`
    /// puts an instant on the bridge's clock.
    fn take_speaker_audio(&mut self, seconds: &impl Fn(Instant) -> f64) {
        let Some(speaker) = &mut self.speaker else {
            return;
        };
        while let Ok(chunk) = speaker.reference.ring.pop() {
            speaker.bridge.push(&chunk.samples, seconds(chunk.plays_at));
            speaker.newest_plays_at = Some(chunk.plays_at);
        }
    }

    /// How long until the speaker sample analysed next is heard: the newest chunk's time,
    /// less what waits on the bridge ahead of it.
    fn render_lead(&self, now: Instant) -> Duration {
        let Some(speaker) = &self.speaker else {
            return Duration::ZERO;
        };
        let Some(newest) = speaker.newest_plays_at else {
            return Duration::ZERO;
        };
        let chunk = Duration::from_millis(10);
        let waiting = Duration::from_secs_f64(speaker.bridge.lag_seconds());
        (newest + chunk)
            .checked_sub(waiting)
            .map_or(Duration::ZERO, |at| at.saturating_duration_since(now))
    }

    /// The canceller's numbers, when it runs.
    pub fn stats(&self) -> EchoStats {
        let stats = self.apm.statistics();
        EchoStats {
            erle_db: stats.echo_return_loss_enhancement,
            residual_echo_likelihood: stats.residual_echo_likelihood_recent_max,
            delay_ms: stats.delay_ms,
            reported_delay_ms: self.reported_delay_ms,
            drift_ppm: self.speaker.as_ref().map(|s| s.bridge.drift_ppm()),
        }
    }
}

/// Samples in one 20 ms frame must split into whole 10 ms chunks.
const _: () = assert!(FRAME_SAMPLES.is_multiple_of(CHUNK));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{analysis, babble};

    /// The speaker's queue: it plays a frame this long after it is handed over.
    const SPEAKER_DELAY: Duration = Duration::from_millis(60);
    /// Samples from handing a frame to the speaker to its echo in the microphone: the
    /// speaker's queue and 40 ms of room.
    const ECHO_DELAY: usize = 100 * 48;

    /// A room: what the speaker plays comes back `delay` later at `gain`, plus `near`.
    fn room(far: &[f32], near: &[f32], delay: usize, gain: f32) -> Vec<f32> {
        (0..far.len())
            .map(|i| {
                let echo = i.checked_sub(delay).map_or(0.0, |j| far[j] * gain);
                echo + near.get(i).copied().unwrap_or(0.0)
            })
            .collect()
    }

    /// Runs `mic` through a processor fed `far` as the speaker's audio, frame by frame,
    /// the way the send and playout threads do (time passed in: 20 ms per frame).
    fn run(settings: ProcessingSettings, far: &[f32], mic: &[f32], told_delay_ms: u64) -> Vec<f32> {
        let (mut tap, reference) = echo_reference();
        let mut processor = AudioProcessor::new(settings, Some(reference)).unwrap();
        let start = Instant::now();
        let mut out = Vec::with_capacity(mic.len());
        for (i, (speaker, captured)) in far
            .chunks_exact(FRAME_SAMPLES)
            .zip(mic.chunks_exact(FRAME_SAMPLES))
            .enumerate()
        {
            let now = start + Duration::from_millis(20 * i as u64);
            tap.played(speaker, SPEAKER_DELAY, now);
            let mut frame = [0.0; FRAME_SAMPLES];
            frame.copy_from_slice(captured);
            processor.process(&mut frame, now - Duration::from_millis(told_delay_ms), now);
            out.extend_from_slice(&frame);
        }
        out
    }

    fn db(samples: &[f32]) -> f32 {
        analysis::level(samples).rms_dbfs()
    }

    const TWO_SECONDS: usize = 2 * SAMPLE_RATE as usize;

    #[test]
    fn cancels_the_echo_of_the_far_end() {
        let far = babble(8.0, 7);
        let mic = room(&far, &[], ECHO_DELAY, 0.125);
        let settings = ProcessingSettings {
            echo_cancellation: true,
            ..ProcessingSettings::OFF
        };
        let out = run(settings, &far, &mic, 40);
        let removed = db(&mic[TWO_SECONDS..]) - db(&out[TWO_SECONDS..]);
        assert!(removed > 20.0, "only {removed:.1} dB of echo removed");
    }

    #[test]
    fn off_passes_the_microphone_through_untouched() {
        let far = babble(3.0, 7);
        let mic = room(&far, &babble(3.0, 11), ECHO_DELAY, 0.125);
        let out = run(ProcessingSettings::OFF, &far, &mic, 40);
        assert_eq!(out, mic[..out.len()]);
    }

    #[test]
    fn keeps_the_near_talker_when_nobody_plays() {
        let near = babble(6.0, 11);
        let silence = vec![0.0; near.len()];
        let settings = ProcessingSettings {
            gain_control: false,
            ..ProcessingSettings::default()
        };
        let out = run(settings, &silence, &near, 40);
        let loss = db(&near[TWO_SECONDS..]) - db(&out[TWO_SECONDS..]);
        assert!(loss.abs() < 3.0, "near-end speech changed by {loss:.1} dB");
    }

    #[test]
    fn settings_switch_mid_stream() {
        let far = babble(6.0, 7);
        let mic = room(&far, &[], ECHO_DELAY, 0.125);
        let (mut tap, reference) = echo_reference();
        let mut processor =
            AudioProcessor::new(ProcessingSettings::default(), Some(reference)).unwrap();
        let start = Instant::now();
        let mut on = Vec::new();
        let mut off = Vec::new();
        for (i, (speaker, captured)) in far
            .chunks_exact(FRAME_SAMPLES)
            .zip(mic.chunks_exact(FRAME_SAMPLES))
            .enumerate()
        {
            if i == 200 {
                processor.set_settings(ProcessingSettings::OFF);
            }
            let now = start + Duration::from_millis(20 * i as u64);
            tap.played(speaker, SPEAKER_DELAY, now);
            let mut frame = [0.0; FRAME_SAMPLES];
            frame.copy_from_slice(captured);
            processor.process(&mut frame, now - Duration::from_millis(40), now);
            match i {
                100..200 => on.extend_from_slice(&frame),
                200.. => off.extend_from_slice(&frame),
                _ => {}
            }
        }
        assert!(
            db(&off) - db(&on) > 20.0,
            "off {:.1} dB, on {:.1} dB",
            db(&off),
            db(&on)
        );
        assert!(processor.stats().erle_db.is_some());
    }

    #[test]
    fn noise_suppression_takes_out_steady_noise() {
        let noise: Vec<f32> = babble(6.0, 5)
            .iter()
            .enumerate()
            // Steady: the same noise without the syllable rhythm.
            .map(|(i, _)| ((i as f32 * 0.37).sin() * 1e3).fract() * 0.02)
            .collect();
        let silence = vec![0.0; noise.len()];
        let with = |noise_suppression| {
            let settings = ProcessingSettings {
                noise_suppression,
                ..ProcessingSettings::OFF
            };
            db(&run(settings, &silence, &noise, 40)[TWO_SECONDS..])
        };
        let (suppressed, left) = (with(true), with(false));
        assert!(
            left - suppressed > 10.0,
            "suppressed {suppressed:.1} dBFS, without {left:.1}"
        );
    }

    #[test]
    fn a_tap_nobody_reads_drops_instead_of_blocking() {
        let (mut tap, _reference) = echo_reference();
        let frame = [0.1; FRAME_SAMPLES];
        for _ in 0..REFERENCE_RING {
            tap.played(&frame, SPEAKER_DELAY, Instant::now());
        }
        assert_eq!(tap.dropped(), REFERENCE_RING as u64);
    }
}
