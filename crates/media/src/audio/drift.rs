//! The speaker's audio on the microphone's clock, for the echo canceller.
//!
//! A speaker and a microphone on different devices each keep their own time: one plays a
//! little faster than the other records (tens to hundreds of parts per million; more for
//! cheap USB devices). Fed the speaker's samples as they are, the canceller would see the echo
//! slide against its reference, a millisecond every few seconds at 300 ppm, and lose it.
//! The bridge keeps a queue of the speaker's audio and resamples it onto the microphone's
//! clock. Each device's rate is the slope of a line fitted through (when a sample was
//! played or captured, its number) over the last minute or so, from the devices' own
//! timestamps; the ratio of the two rates is the resampling ratio. (Steering on the queue's
//! length instead does not work: the playout thread delivers whole 20 ms frames, so the
//! length jumps by whole frames and hides a drift of 100 ppm for minutes. We tried.) A weak
//! pull toward the target length keeps the queue from wandering off. Times come in as
//! seconds: no clock is read here.

use std::collections::VecDeque;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Adjustable, Async, FixedAsync, Resampler, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

use super::{AudioError, SAMPLE_RATE};

/// Samples the bridge hands over at a time: 10 ms, the canceller's chunk.
pub(crate) const CHUNK: usize = SAMPLE_RATE as usize / 100;
/// Speaker audio to hold in the queue: enough to ride out the playout thread's 20 ms
/// bursts, and short, because it delays the reference: the canceller must see the speaker's
/// audio before its echo (the speaker's own queue, 60 ms, leaves room for this).
const TARGET: f64 = 0.030 * SAMPLE_RATE as f64;
/// The queue holds at most this much: half a second.
const CAPACITY: usize = SAMPLE_RATE as usize / 2;
/// How long a fit remembers: about a minute of 10 ms chunks.
const MEMORY: f64 = 6000.0;
/// Chunks before a fit is trusted: 10 s.
const TRUSTED_AFTER: f64 = 1000.0;
/// The pull toward the target: a queue 10 ms long or short moves the ratio by 20 ppm.
const CENTRING: f64 = 0.002;
/// How smooth the measured queue is: its average over about ten seconds.
const SMOOTHING: f64 = 0.001;
/// Late pulls in a row after which the speaker counts as stopped: half a second.
const STOPPED_AFTER: u32 = 50;
/// The furthest the two clocks may be apart: 0.5%.
const MAX_RELATIVE: f64 = 1.005;

/// An exponentially weighted least-squares line through (x, y), kept as running moments.
#[derive(Debug, Default, Clone, Copy)]
struct Fit {
    weight: f64,
    mean_x: f64,
    mean_y: f64,
    sxx: f64,
    sxy: f64,
}

impl Fit {
    fn add(&mut self, x: f64, y: f64) {
        let keep = 1.0 - 1.0 / MEMORY;
        self.weight = keep * self.weight + 1.0;
        let dx = x - self.mean_x;
        self.mean_x += dx / self.weight;
        self.mean_y += (y - self.mean_y) / self.weight;
        self.sxx = keep * self.sxx + dx * (x - self.mean_x);
        self.sxy = keep * self.sxy + dx * (y - self.mean_y);
    }

    fn slope(&self) -> Option<f64> {
        (self.weight >= TRUSTED_AFTER && self.sxx > 0.0).then(|| self.sxy / self.sxx)
    }
}

pub(crate) struct ClockBridge {
    queue: VecDeque<f32>,
    resampler: Async<f32>,
    input: Vec<f32>,
    /// The queue's length, smoothed, in samples.
    level: f64,
    /// Speaker samples pushed and microphone samples pulled since the queue (re)started, and
    /// each device's line of sample number against time.
    pushed: f64,
    pulled: f64,
    speaker: Fit,
    microphone: Fit,
    /// The fitted clock ratio: speaker samples per microphone sample.
    speaker_per_mic: f64,
    /// Output samples per input sample, relative to 1: below 1 when the speaker runs fast.
    ratio: f64,
    /// Filling up to the target before anything comes out.
    priming: bool,
    /// Pulls in a row the speaker's audio was late for.
    late: u32,
}

impl ClockBridge {
    pub fn new() -> Result<ClockBridge, AudioError> {
        let parameters = SincInterpolationParameters {
            sinc_len: 64,
            f_cutoff: None,
            interpolation: SincInterpolationType::Cubic,
            oversampling_factor: 64,
            window: WindowFunction::BlackmanHarris2,
        };
        let resampler =
            Async::new_sinc(1.0, MAX_RELATIVE, &parameters, CHUNK, 1, FixedAsync::Output)
                .map_err(|err| AudioError::Backend(format!("echo reference resampler: {err}")))?;
        Ok(ClockBridge {
            queue: VecDeque::with_capacity(CAPACITY),
            input: vec![0.0; resampler.input_frames_max()],
            resampler,
            level: TARGET,
            pushed: 0.0,
            pulled: 0.0,
            speaker: Fit::default(),
            microphone: Fit::default(),
            speaker_per_mic: 1.0,
            ratio: 1.0,
            priming: true,
            late: 0,
        })
    }

    /// Takes speaker audio whose first sample plays at `plays_at` (seconds, on the caller's
    /// clock). Beyond the capacity the oldest goes (nobody pulled for a while: the
    /// microphone was off).
    pub fn push(&mut self, samples: &[f32], plays_at: f64) {
        let excess = (self.queue.len() + samples.len()).saturating_sub(CAPACITY);
        if excess > 0 {
            self.queue.drain(..excess.min(self.queue.len()));
            self.restart();
        }
        let taken = samples.len().min(CAPACITY);
        self.queue.extend(samples.iter().take(taken).copied());
        self.speaker.add(plays_at, self.pushed);
        self.pushed += taken as f64;
    }

    /// Fills `out` ([`CHUNK`] samples) with the speaker's audio on the microphone's clock,
    /// for microphone audio whose first sample was captured at `captured_at` (seconds, the
    /// same clock as [`ClockBridge::push`]'s). `false` (and silence) while the queue first
    /// fills, or when the speaker is late.
    pub fn pull(&mut self, out: &mut [f32], captured_at: f64) -> bool {
        let needed = self.resampler.input_frames_next();
        if self.priming && (self.queue.len() as f64) < TARGET {
            out.fill(0.0);
            return false;
        }
        self.microphone.add(captured_at, self.pulled);
        self.pulled += CHUNK as f64;
        let input = self.input.get_mut(..needed);
        let (Some(input), true) = (input, self.queue.len() >= needed) else {
            // Late: silence this once; the microphone's time still passes for the fit. A
            // speaker gone quiet for half a second has stopped: start over when it plays.
            out.fill(0.0);
            self.late += 1;
            if self.late > STOPPED_AFTER {
                self.restart();
            } else {
                self.steer();
            }
            return false;
        };
        self.late = 0;
        self.priming = false;
        for (slot, sample) in input.iter_mut().zip(self.queue.drain(..needed)) {
            *slot = sample;
        }
        let produced = match (
            InterleavedSlice::new(&*input, 1, needed),
            InterleavedSlice::new_mut(out, 1, CHUNK),
        ) {
            (Ok(input), Ok(mut output)) => self
                .resampler
                .process_into_buffer(&input, &mut output, None)
                .map_or(0, |(_, written)| written),
            _ => 0,
        };
        if let Some(rest) = out.get_mut(produced..) {
            rest.fill(0.0);
        }
        self.steer();
        true
    }

    /// Starts the queue and the fit over (the ratio learnt so far stays until the new fit
    /// is trusted).
    fn restart(&mut self) {
        self.priming = true;
        self.late = 0;
        self.resampler.reset();
        self.speaker = Fit::default();
        self.microphone = Fit::default();
        self.pushed = 0.0;
        self.pulled = 0.0;
        self.level = TARGET;
    }

    /// Sets the ratio from the fitted clock ratio, nudged toward the target queue.
    fn steer(&mut self) {
        self.level += (self.queue.len() as f64 - self.level) * SMOOTHING;
        let (Some(speaker_rate), Some(mic_rate)) = (self.speaker.slope(), self.microphone.slope())
        else {
            return;
        };
        if mic_rate <= 0.0 {
            return;
        }
        let speaker_per_mic = speaker_rate / mic_rate;
        self.speaker_per_mic = speaker_per_mic;
        let error = (self.level - TARGET) / f64::from(SAMPLE_RATE);
        // A fast speaker (more than one of its samples per microphone sample) or a queue
        // above target: consume faster, output fewer samples per input.
        let wanted = (1.0 - CENTRING * error) / speaker_per_mic;
        self.ratio = wanted.clamp(1.0 / MAX_RELATIVE, MAX_RELATIVE);
        let _ = self.resampler.set_resample_ratio_relative(self.ratio, true);
    }

    /// How far the speaker's clock is from the microphone's, in parts per million (positive:
    /// the speaker runs fast).
    pub fn drift_ppm(&self) -> f64 {
        (self.speaker_per_mic - 1.0) * 1e6
    }

    /// Speaker audio waiting, in seconds: how much later than it was queued a sample is
    /// analysed.
    pub fn lag_seconds(&self) -> f64 {
        self.queue.len() as f64 / f64::from(SAMPLE_RATE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a bridge a speaker running `ppm` fast against 10 ms pulls, in 20 ms frames as
    /// the playout thread writes (stamped with when they play, a few ms off), for
    /// `seconds`; returns it.
    fn run(ppm: f64, seconds: usize) -> ClockBridge {
        let mut bridge = ClockBridge::new().unwrap();
        let mut out = [0.0; CHUNK];
        let frame = [0.1f32; 2 * CHUNK];
        let speaker_rate = f64::from(SAMPLE_RATE) * (1.0 + ppm * 1e-6);
        let mut played = 0.0;
        for pull in 0..seconds * 100 {
            let now = pull as f64 * 0.01;
            // Timestamps are off by up to 5 ms either way, as a device's are.
            let wobble = |n: f64| ((n * 12.9898).sin() * 43_758.547).fract() * 0.005;
            while played / speaker_rate <= now {
                bridge.push(&frame, played / speaker_rate + 0.06 + wobble(played));
                played += frame.len() as f64;
            }
            bridge.pull(&mut out, now - 0.02 + wobble(now));
        }
        bridge
    }

    #[test]
    fn learns_how_far_the_clocks_are_apart_and_holds_the_queue() {
        for ppm in [0.0, 300.0, -1000.0, 2000.0] {
            let bridge = run(ppm, 90);
            let drift = bridge.drift_ppm();
            assert!(
                (drift - ppm).abs() < 50.0,
                "{ppm} ppm measured as {drift:.0}"
            );
            let lag = bridge.lag_seconds();
            assert!(
                (0.005..0.1).contains(&lag),
                "{ppm} ppm: the queue holds {lag} s"
            );
        }
    }

    #[test]
    fn silence_until_primed_and_after_the_speaker_stops() {
        let mut bridge = ClockBridge::new().unwrap();
        let mut out = [1.0; CHUNK];
        assert!(!bridge.pull(&mut out, 0.0), "nothing queued yet");
        assert!(out.iter().all(|&s| s == 0.0));
        bridge.push(&[0.5; 4 * CHUNK], 0.0);
        bridge.push(&[0.5; 4 * CHUNK], 0.04);
        assert!(bridge.pull(&mut out, 0.0));
        while bridge.pull(&mut out, 0.01) {}
        assert!(out.iter().all(|&s| s == 0.0), "ran dry: silence");
    }
}
