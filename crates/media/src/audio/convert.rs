//! Sample-rate and channel conversion between devices and Confab's 48 kHz mono.
//!
//! Devices run at whatever rate and channel count they like; everything inside Confab is
//! 48 kHz mono. [`Resample`] is one mono resampling stage (rubato's FFT resampler, or a
//! straight copy when the rates match); [`DeviceToMono`] mixes interleaved channels down
//! before it and [`MonoToDevice`] spreads mono across channels after it. None of this runs in
//! a device callback: it runs on the thread that reads or writes 20 ms frames.

use std::collections::VecDeque;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::AudioError;

/// Resampler chunk: 10 ms of input, small enough for low delay.
const CHUNK_MS: usize = 10;

/// One mono resampling stage with input and output queues.
pub struct Resample {
    rate_in: u32,
    rate_out: u32,
    resampler: Option<Fft<f32>>,
    input: VecDeque<f32>,
    output: VecDeque<f32>,
    chunk_in: Vec<f32>,
    chunk_out: Vec<f32>,
}

impl Resample {
    pub fn new(rate_in: u32, rate_out: u32) -> Result<Resample, AudioError> {
        if rate_in == 0 || rate_out == 0 {
            return Err(AudioError::UnsupportedFormat(format!(
                "sample rate {rate_in} -> {rate_out}"
            )));
        }
        let resampler = if rate_in == rate_out {
            None
        } else {
            let chunk = (rate_in as usize * CHUNK_MS / 1000).max(1);
            let fft = Fft::<f32>::new(
                rate_in as usize,
                rate_out as usize,
                chunk,
                1,
                FixedSync::Input,
            )
            .map_err(|err| {
                AudioError::UnsupportedFormat(format!(
                    "cannot resample {rate_in} Hz to {rate_out} Hz: {err}"
                ))
            })?;
            Some(fft)
        };
        let (chunk_in, chunk_out) = match &resampler {
            Some(r) => (
                vec![0.0; r.input_frames_max()],
                vec![0.0; r.output_frames_max()],
            ),
            None => (Vec::new(), Vec::new()),
        };
        Ok(Resample {
            rate_in,
            rate_out,
            resampler,
            input: VecDeque::new(),
            output: VecDeque::new(),
            chunk_in,
            chunk_out,
        })
    }

    pub fn push(&mut self, samples: impl IntoIterator<Item = f32>) {
        match self.resampler {
            None => self.output.extend(samples),
            Some(_) => {
                self.input.extend(samples);
                self.run();
            }
        }
    }

    fn run(&mut self) {
        let Some(resampler) = &mut self.resampler else {
            return;
        };
        // The chunk buffers are sized from the resampler's own maxima, which bound
        // `needed`, `produced` and `written`.
        #[allow(
            clippy::indexing_slicing,
            reason = "buffers sized from the resampler's maxima"
        )]
        loop {
            let needed = resampler.input_frames_next();
            if self.input.len() < needed {
                return;
            }
            for (slot, sample) in self.chunk_in[..needed]
                .iter_mut()
                .zip(self.input.drain(..needed))
            {
                *slot = sample;
            }
            let produced = resampler.output_frames_next();
            let (Ok(input), Ok(mut output)) = (
                InterleavedSlice::new(&self.chunk_in[..needed], 1, needed),
                InterleavedSlice::new_mut(&mut self.chunk_out[..produced], 1, produced),
            ) else {
                // Both buffers were sized from the resampler's own maxima.
                return;
            };
            match resampler.process_into_buffer(&input, &mut output, None) {
                Ok((_, written)) => self.output.extend(&self.chunk_out[..written]),
                Err(_) => return,
            }
        }
    }

    /// Samples ready to take.
    pub fn available(&self) -> usize {
        self.output.len()
    }

    /// Audio waiting inside this stage, input and output alike.
    pub fn buffered(&self) -> std::time::Duration {
        let waiting = self.input.len() as f64 / f64::from(self.rate_in)
            + self.output.len() as f64 / f64::from(self.rate_out);
        std::time::Duration::from_secs_f64(waiting)
    }

    /// Fills `out` if enough samples are ready.
    pub fn take(&mut self, out: &mut [f32]) -> bool {
        if self.output.len() < out.len() {
            return false;
        }
        let len = out.len();
        for (slot, sample) in out.iter_mut().zip(self.output.drain(..len)) {
            *slot = sample;
        }
        true
    }

    /// How many input samples to push before `wanted` output samples are ready.
    pub fn input_needed_for(&self, wanted: usize) -> usize {
        let missing = wanted.saturating_sub(self.output.len());
        match &self.resampler {
            None => missing,
            Some(r) => {
                let ratio = r.resample_ratio();
                ((missing as f64 / ratio).ceil() as usize).saturating_sub(self.input.len())
            }
        }
    }
}

/// Interleaved device audio -> 48 kHz mono.
pub struct DeviceToMono {
    channels: usize,
    stage: Resample,
}

impl DeviceToMono {
    pub fn new(rate: u32, channels: u16) -> Result<DeviceToMono, AudioError> {
        if channels == 0 {
            return Err(AudioError::UnsupportedFormat(
                "a device with no channels".into(),
            ));
        }
        Ok(DeviceToMono {
            channels: usize::from(channels),
            stage: Resample::new(rate, super::SAMPLE_RATE)?,
        })
    }

    /// Adds interleaved samples (a whole number of frames).
    pub fn push(&mut self, interleaved: &[f32]) {
        let channels = self.channels;
        let scale = 1.0 / channels as f32;
        self.stage.push(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
    }

    /// Fills a 48 kHz mono frame if enough audio has been pushed.
    pub fn take(&mut self, frame: &mut [f32]) -> bool {
        self.stage.take(frame)
    }

    /// Interleaved samples still needed before `frame_len` mono samples are ready.
    pub fn interleaved_needed_for(&self, frame_len: usize) -> usize {
        self.stage.input_needed_for(frame_len) * self.channels
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Audio pushed but not yet taken.
    pub fn buffered(&self) -> std::time::Duration {
        self.stage.buffered()
    }
}

/// 48 kHz mono -> interleaved device audio.
pub struct MonoToDevice {
    channels: usize,
    stage: Resample,
    mono: Vec<f32>,
}

impl MonoToDevice {
    pub fn new(rate: u32, channels: u16) -> Result<MonoToDevice, AudioError> {
        if channels == 0 {
            return Err(AudioError::UnsupportedFormat(
                "a device with no channels".into(),
            ));
        }
        Ok(MonoToDevice {
            channels: usize::from(channels),
            stage: Resample::new(super::SAMPLE_RATE, rate)?,
            mono: Vec::new(),
        })
    }

    /// Converts a mono frame; appends the interleaved result to `out`.
    pub fn convert(&mut self, frame: &[f32], out: &mut Vec<f32>) {
        self.stage.push(frame.iter().copied());
        self.mono.resize(self.stage.available(), 0.0);
        if self.stage.take(&mut self.mono) {
            for &sample in &self.mono {
                out.extend(std::iter::repeat_n(sample, self.channels));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{FRAME_SAMPLES, SAMPLE_RATE, analysis};

    fn tone(rate: u32, hz: f32, seconds: f32, channels: u16) -> Vec<f32> {
        let frames = (rate as f32 * seconds) as usize;
        (0..frames)
            .flat_map(|i| {
                let s = 0.5 * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin();
                std::iter::repeat_n(s, usize::from(channels))
            })
            .collect()
    }

    #[test]
    fn device_audio_at_any_rate_becomes_48k_mono_at_the_same_pitch() {
        for (rate, channels) in [
            (48_000, 1),
            (44_100, 2),
            (16_000, 1),
            (96_000, 6),
            (22_050, 2),
        ] {
            let mut convert = DeviceToMono::new(rate, channels).unwrap();
            convert.push(&tone(rate, 440.0, 1.0, channels));
            let mut out = Vec::new();
            let mut frame = [0.0; FRAME_SAMPLES];
            while convert.take(&mut frame) {
                out.extend_from_slice(&frame);
            }
            // About one second comes out (less the resampler's delay).
            assert!(
                out.len() >= SAMPLE_RATE as usize * 9 / 10,
                "{rate}/{channels}: {} samples",
                out.len()
            );
            let tail = &out[out.len() / 2..];
            let hz = analysis::dominant_frequency(tail, SAMPLE_RATE);
            assert!((hz - 440.0).abs() < 4.4, "{rate}/{channels}: {hz} Hz");
            let level = analysis::level(tail);
            assert!(
                (level.rms - 0.354).abs() < 0.03,
                "{rate}/{channels}: rms {}",
                level.rms
            );
        }
    }

    #[test]
    fn mono_spreads_to_every_device_channel() {
        let mut convert = MonoToDevice::new(44_100, 2).unwrap();
        let mut out = Vec::new();
        for chunk in tone(48_000, 1000.0, 1.0, 1).chunks_exact(FRAME_SAMPLES) {
            convert.convert(chunk, &mut out);
        }
        assert!(out.len() >= 2 * 44_100 * 9 / 10);
        let (left, right): (Vec<f32>, Vec<f32>) = out.chunks_exact(2).map(|f| (f[0], f[1])).unzip();
        assert_eq!(left, right);
        let hz = analysis::dominant_frequency(&left[left.len() / 2..], 44_100);
        assert!((hz - 1000.0).abs() < 10.0, "{hz} Hz");
    }

    #[test]
    fn input_needed_is_enough() {
        let mut convert = DeviceToMono::new(44_100, 2).unwrap();
        let mut frame = [0.0; FRAME_SAMPLES];
        for _ in 0..10 {
            let needed = convert.interleaved_needed_for(FRAME_SAMPLES);
            convert.push(&vec![0.1; needed.next_multiple_of(2)]);
            assert!(convert.take(&mut frame));
        }
    }

    #[test]
    fn nonsense_formats_are_errors() {
        assert!(DeviceToMono::new(0, 2).is_err());
        assert!(DeviceToMono::new(48_000, 0).is_err());
        assert!(MonoToDevice::new(48_000, 0).is_err());
    }
}
