//! Audio that does not come from a device: a tone generator, WAV files in and out.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::convert::DeviceToMono;
use super::{AudioError, AudioSink, AudioSource, FRAME_SAMPLES, SAMPLE_RATE};

/// A sine tone at half of full scale (-6 dBFS peak).
pub struct ToneSource {
    hz: f32,
    phase: f32,
}

impl ToneSource {
    pub fn new(hz: f32) -> Result<ToneSource, AudioError> {
        if !(20.0..=20_000.0).contains(&hz) {
            return Err(AudioError::UnsupportedFormat(format!(
                "a {hz} Hz tone (20-20000 Hz)"
            )));
        }
        Ok(ToneSource { hz, phase: 0.0 })
    }
}

impl AudioSource for ToneSource {
    fn name(&self) -> String {
        format!("{} Hz tone", self.hz)
    }

    fn read(&mut self, frame: &mut [f32]) -> Result<(), AudioError> {
        let step = std::f32::consts::TAU * self.hz / SAMPLE_RATE as f32;
        for sample in frame {
            *sample = 0.5 * self.phase.sin();
            self.phase = (self.phase + step) % std::f32::consts::TAU;
        }
        Ok(())
    }

    fn is_live(&self) -> bool {
        false
    }
}

/// A WAV file of any rate, channel count and sample format, converted to 48 kHz mono and
/// played in a loop.
pub struct WavSource {
    path: PathBuf,
    /// The whole file, converted; voice clips are small.
    samples: Vec<f32>,
    position: usize,
}

/// Longest file accepted: ten minutes at 48 kHz.
const MAX_SAMPLES: usize = 10 * 60 * SAMPLE_RATE as usize;

impl WavSource {
    pub fn open(path: impl AsRef<Path>) -> Result<WavSource, AudioError> {
        let path = path.as_ref().to_owned();
        let bad = |reason: String| AudioError::File {
            path: path.clone(),
            reason,
        };
        let mut reader = hound::WavReader::open(&path).map_err(|err| bad(err.to_string()))?;
        let spec = reader.spec();
        if reader.duration() as usize > MAX_SAMPLES {
            return Err(bad("longer than ten minutes".into()));
        }
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>(),
            hound::SampleFormat::Int => {
                let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|s| s as f32 * scale))
                    .collect::<Result<_, _>>()
            }
        }
        .map_err(|err| bad(err.to_string()))?;
        let mut convert = DeviceToMono::new(spec.sample_rate, spec.channels)
            .map_err(|err| bad(err.to_string()))?;
        convert.push(&interleaved);
        // Flush the resampler with a little silence so the end of the clip comes out.
        convert.push(&vec![0.0; convert.interleaved_needed_for(FRAME_SAMPLES)]);
        let mut samples = Vec::new();
        let mut frame = [0.0; FRAME_SAMPLES];
        while convert.take(&mut frame) {
            samples.extend_from_slice(&frame);
        }
        if samples.is_empty() {
            return Err(bad("the file holds no audio".into()));
        }
        Ok(WavSource {
            path,
            samples,
            position: 0,
        })
    }
}

impl AudioSource for WavSource {
    fn name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    fn read(&mut self, frame: &mut [f32]) -> Result<(), AudioError> {
        for sample in frame {
            *sample = self.samples.get(self.position).copied().unwrap_or_default();
            self.position = (self.position + 1) % self.samples.len();
        }
        Ok(())
    }

    fn is_live(&self) -> bool {
        false
    }
}

/// Writes 48 kHz mono 16-bit WAV, playable by any player.
pub struct WavSink {
    path: PathBuf,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
}

impl WavSink {
    pub fn create(path: impl AsRef<Path>) -> Result<WavSink, AudioError> {
        let path = path.as_ref().to_owned();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(&path, spec).map_err(|err| AudioError::File {
            path: path.clone(),
            reason: err.to_string(),
        })?;
        Ok(WavSink {
            path,
            writer: Some(writer),
        })
    }

    /// Completes the file's header. Dropping the sink does this too, but cannot report a
    /// failure.
    pub fn finish(mut self) -> Result<(), AudioError> {
        match self.writer.take() {
            Some(writer) => writer.finalize().map_err(|err| self.error(err)),
            None => Ok(()),
        }
    }

    fn error(&self, err: hound::Error) -> AudioError {
        AudioError::File {
            path: self.path.clone(),
            reason: err.to_string(),
        }
    }
}

impl AudioSink for WavSink {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn write(&mut self, frame: &[f32]) -> Result<(), AudioError> {
        let Some(writer) = &mut self.writer else {
            return Ok(());
        };
        let result = frame
            .iter()
            .try_for_each(|s| writer.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16));
        result.map_err(|err| self.error(err))
    }

    fn is_live(&self) -> bool {
        false
    }
}

/// Speech-like test audio, `seconds` of it at 48 kHz: low-passed noise in syllable-long
/// bursts, three a second (xorshift from `seed`, so repeatable). For tests and benchmarks of
/// the audio processing, which treat it as a talker.
pub fn babble(seconds: f32, seed: u32) -> Vec<f32> {
    let mut state = seed.max(1);
    let len = (seconds * SAMPLE_RATE as f32) as usize;
    let mut smooth = 0.0f32;
    (0..len)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let white = (state as f32 / u32::MAX as f32) * 2.0 - 1.0;
            smooth = 0.7 * smooth + 0.3 * white;
            let t = i as f32 / SAMPLE_RATE as f32;
            let syllable = (t * 2.0 * std::f32::consts::PI * 3.0 + seed as f32).sin();
            smooth * 0.5 * syllable.max(0.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::analysis;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("confab-{}-{name}", std::process::id()))
    }

    #[test]
    fn tone_is_continuous_across_frames() {
        let mut tone = ToneSource::new(440.0).unwrap();
        let mut all = Vec::new();
        let mut frame = [0.0; FRAME_SAMPLES];
        for _ in 0..50 {
            tone.read(&mut frame).unwrap();
            all.extend_from_slice(&frame);
        }
        assert!((analysis::dominant_frequency(&all, SAMPLE_RATE) - 440.0).abs() < 0.5);
        let biggest_step = all
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max);
        assert!(
            biggest_step < 0.03,
            "a click between frames: {biggest_step}"
        );
        assert!(ToneSource::new(5.0).is_err());
    }

    #[test]
    fn wav_out_then_in() {
        let path = temp("tone.wav");
        let mut sink = WavSink::create(&path).unwrap();
        let mut tone = ToneSource::new(1000.0).unwrap();
        let mut frame = [0.0; FRAME_SAMPLES];
        for _ in 0..25 {
            tone.read(&mut frame).unwrap();
            sink.write(&frame).unwrap();
        }
        sink.finish().unwrap();
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(
            (reader.spec().sample_rate, reader.spec().channels),
            (48_000, 1)
        );
        assert_eq!(reader.duration() as usize, 25 * FRAME_SAMPLES);

        let mut source = WavSource::open(&path).unwrap();
        let mut read = Vec::new();
        for _ in 0..60 {
            source.read(&mut frame).unwrap();
            read.extend_from_slice(&frame);
        }
        // 1.2 s read from a 0.5 s file: it loops.
        assert!((analysis::dominant_frequency(&read[..20_000], SAMPLE_RATE) - 1000.0).abs() < 2.0);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn wav_at_another_rate_is_converted() {
        let path = temp("stereo22k.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 22_050,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..22_050 {
            let s = (8000.0 * (std::f32::consts::TAU * 300.0 * i as f32 / 22_050.0).sin()) as i16;
            writer.write_sample(s).unwrap();
            writer.write_sample(s).unwrap();
        }
        writer.finalize().unwrap();
        let mut source = WavSource::open(&path).unwrap();
        let mut all = Vec::new();
        let mut frame = [0.0; FRAME_SAMPLES];
        for _ in 0..40 {
            source.read(&mut frame).unwrap();
            all.extend_from_slice(&frame);
        }
        let hz = analysis::dominant_frequency(&all[4800..36_000], SAMPLE_RATE);
        assert!((hz - 300.0).abs() < 3.0, "{hz} Hz");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn bad_wav_files_are_clear_errors() {
        let missing = WavSource::open("/nonexistent/voice.wav").err().unwrap();
        assert!(
            missing.to_string().contains("/nonexistent/voice.wav"),
            "{missing}"
        );
        let path = temp("junk.wav");
        std::fs::write(&path, b"RIFF....WAVEjunk").unwrap();
        assert!(matches!(
            WavSource::open(&path),
            Err(AudioError::File { .. })
        ));
        assert!(WavSink::create("/nonexistent/dir/out.wav").is_err());
        std::fs::remove_file(path).unwrap();
    }
}
