//! Audio: 48 kHz mono in 20 ms frames, from microphones, tones and WAV files, to speakers
//! and WAV files, through Opus. (The jitter buffer is in `confab-call-core`.)

pub mod analysis;
mod convert;
mod device;
mod drift;
mod level;
mod opus_codec;
mod processing;
mod synth;

use std::path::PathBuf;

pub use convert::{DeviceToMono, MonoToDevice, Resample};
pub use device::{AudioDevices, MicrophoneSource, SpeakerSink, list_devices};
pub use level::{InputControl, Level};
pub use opus_codec::{DEFAULT_EXPECTED_LOSS_PERCENT, OpusDecoder, OpusEncoder};
pub use processing::{
    AudioProcessor, EchoReference, EchoStats, EchoTap, ProcessingSettings, echo_reference,
};
pub use synth::{ToneSource, WavSink, WavSource, babble};

/// Confab's internal sample rate: Opus's native rate.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms mono frame.
pub const FRAME_SAMPLES: usize = 960;
/// Length of one frame.
pub const FRAME_DURATION: std::time::Duration = std::time::Duration::from_millis(20);

/// Produces 20 ms frames of 48 kHz mono audio.
pub trait AudioSource: Send {
    /// What this is, for people: a microphone's name, "440 Hz tone", a file name.
    fn name(&self) -> String;

    /// Fills `frame` ([`FRAME_SAMPLES`] samples). A live source (a microphone) blocks until
    /// the audio is there; others return at once and the caller keeps time.
    fn read(&mut self, frame: &mut [f32]) -> Result<(), AudioError>;

    /// Whether [`AudioSource::read`] keeps real time by itself.
    fn is_live(&self) -> bool;

    /// When the first sample of the frame last read reached the device: only a microphone
    /// knows (from its timestamps and buffers), for the echo canceller.
    fn captured_at(&self) -> Option<std::time::Instant> {
        None
    }
}

/// Consumes 20 ms frames of 48 kHz mono audio.
pub trait AudioSink: Send {
    fn name(&self) -> String;

    /// Plays or stores `frame`. A live sink (a speaker) blocks while its buffer is full, so
    /// a loop writing to it runs at the device's pace.
    fn write(&mut self, frame: &[f32]) -> Result<(), AudioError>;

    fn is_live(&self) -> bool;

    /// How long until the first sample of the frame last written is heard: only a speaker
    /// knows (from its timestamps and queue), for the echo canceller.
    fn delay(&self) -> Option<std::time::Duration> {
        None
    }
}

/// What can go wrong with audio, in words a user understands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    #[error("no {0} found")]
    NoDevice(&'static str),
    #[error("audio device {0:?} not found")]
    DeviceNotFound(String),
    #[error("audio device {0} is in use by another program")]
    DeviceBusy(String),
    #[error("audio device {0} was disconnected")]
    DeviceLost(String),
    #[error("unsupported audio format: {0}")]
    UnsupportedFormat(String),
    #[error("audio system error: {0}")]
    Backend(String),
    #[error("cannot use {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("Opus: {0}")]
    Codec(String),
}
