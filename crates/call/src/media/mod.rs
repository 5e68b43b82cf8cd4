//! The media of one call: what is captured and sent, what is received and played.
//!
//! Heavy work runs on named threads (`video-encode`, `video-decode`, `audio-send`,
//! `audio-playout`, plus the media crate's `video-capture`); the async side only moves
//! encoded data between those threads and the peer connection's tracks. Sending and
//! playout are the call's, whatever its number of links: one encoder per medium feeds a
//! writer per link ([`fanout`]), one playout mixes every link's audio ([`playout`]);
//! receiving video is per link. Video crosses
//! threads through latest-frame slots or short bounded channels, never growing queues.

mod audio_in;
mod audio_out;
mod fanout;
mod playout;
mod video_in;
mod video_out;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use confab_media::audio::{
    AudioSink, AudioSource, EchoReference, EchoTap, MicrophoneSource, SpeakerSink, ToneSource,
    WavSink, WavSource, echo_reference,
};
use confab_media::video::{
    CameraSelector, CameraSource, TestPattern, VideoCapture, VideoFormat, Y4mSource,
};

pub(crate) use audio_in::AudioReceiver;
pub(crate) use audio_out::{AudioSender, OPUS_BITRATE_BPS, SendSetup};
pub(crate) use playout::{AudioPlayout, PlayoutInput};
pub use video_in::RemoteVideoFrame;
pub(crate) use video_in::{VideoOutput, VideoReceiver};
pub(crate) use video_out::{SCREEN_SHARE, VideoKind, VideoSender};

use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

use confab_media::thread::MediaThread;

use crate::{CallError, Problem};

/// The call's senders and playout, shared by its links and dropped (off the runtime: their
/// threads are joined) when the call is over.
#[derive(Default)]
pub(crate) struct CallStreams {
    pub video: Option<VideoSender>,
    /// A shared screen's, while one is shared.
    pub screen: Option<VideoSender>,
    pub audio: Option<AudioSender>,
    pub playout: Option<AudioPlayout>,
    /// The two ends of the echo canceller's reference: the call's speaker feeds its
    /// microphone's canceller. Each is taken when its side starts.
    echo: Option<(Option<EchoTap>, Option<EchoReference>)>,
}

impl CallStreams {
    fn echo_ends(&mut self) -> &mut (Option<EchoTap>, Option<EchoReference>) {
        self.echo.get_or_insert_with(|| {
            let (tap, reference) = echo_reference();
            (Some(tap), Some(reference))
        })
    }

    pub fn echo_tap(&mut self) -> Option<EchoTap> {
        self.echo_ends().0.take()
    }

    pub fn echo_reference(&mut self) -> Option<EchoReference> {
        self.echo_ends().1.take()
    }

    /// A link closes: nothing goes to it or comes from it any more.
    pub fn remove_link(&mut self, link: confab_call_core::LinkId) {
        if let Some(video) = &mut self.video {
            video.links().remove_link(link);
        }
        if let Some(screen) = &mut self.screen {
            screen.links().remove_link(link);
        }
        if let Some(audio) = &mut self.audio {
            audio.links().remove_link(link);
        }
        if let Some(playout) = &self.playout {
            playout.remove_link(link);
        }
    }
}

/// Where outgoing video comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoInput {
    None,
    TestPattern,
    Camera(CameraSelector),
    File(PathBuf),
}

/// Where outgoing audio comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioInput {
    None,
    Tone(f32),
    /// A microphone by name, or the default one.
    Microphone(Option<String>),
    File(PathBuf),
}

/// Where received audio goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioOutput {
    None,
    /// A speaker by name, or the default one.
    Speaker(Option<String>),
    /// A WAV file (48 kHz mono).
    File(PathBuf),
}

/// Starts capturing `input` at `format`; `None` for no video. Blocks until the source is
/// open: call it from a worker thread, not a UI thread.
pub fn open_video(
    input: &VideoInput,
    format: VideoFormat,
) -> Result<Option<VideoCapture>, CallError> {
    let capture = match input {
        VideoInput::None => return Ok(None),
        VideoInput::TestPattern => VideoCapture::start(move || TestPattern::new(format))?,
        VideoInput::Camera(selector) => {
            let selector = selector.clone();
            VideoCapture::start(move || CameraSource::open(&selector, format))?
        }
        VideoInput::File(path) => {
            let path = path.clone();
            VideoCapture::start(move || Y4mSource::open(path))?
        }
    };
    Ok(Some(capture))
}

pub(crate) fn open_audio_input(
    input: &AudioInput,
) -> Result<Option<Box<dyn AudioSource>>, CallError> {
    Ok(match input {
        AudioInput::None => None,
        AudioInput::Tone(hz) => Some(Box::new(ToneSource::new(*hz)?)),
        AudioInput::Microphone(name) => Some(Box::new(MicrophoneSource::open(name.as_deref())?)),
        AudioInput::File(path) => Some(Box::new(WavSource::open(path)?)),
    })
}

pub(crate) fn open_audio_output(
    output: &AudioOutput,
) -> Result<Option<Box<dyn AudioSink>>, CallError> {
    Ok(match output {
        AudioOutput::None => None,
        AudioOutput::Speaker(name) => Some(Box::new(SpeakerSink::open(name.as_deref())?)),
        AudioOutput::File(path) => Some(Box::new(WavSink::create(path)?)),
    })
}

/// Starts a media thread of a call; if it panics, the user is told (as
/// [`Problem::ThreadFailed`]) and the call goes on without it.
fn spawn_thread(
    name: &str,
    problems: &tokio::sync::mpsc::UnboundedSender<Problem>,
    body: impl FnOnce() + Send + 'static,
) -> Result<MediaThread, CallError> {
    let (problems, thread) = (problems.clone(), name.to_owned());
    let on_panic = move |reason| {
        tracing::error!("the {thread} thread panicked: {reason}");
        let _ = problems.send(Problem::ThreadFailed { thread, reason });
    };
    MediaThread::spawn(name, body, on_panic).map_err(|err| CallError::Thread {
        name: name.to_owned(),
        reason: err.to_string(),
    })
}

/// Counters the media threads update and the stats read, all lock-free but the latency
/// samples.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub video_frames_sent: AtomicU64,
    pub video_bytes_sent: AtomicU64,
    pub video_keyframes_sent: AtomicU64,
    pub video_size_out: AtomicU64,
    /// A shared screen's frames and bytes sent, and the size it goes at.
    pub screen_frames_sent: AtomicU64,
    pub screen_bytes_sent: AtomicU64,
    pub screen_size_out: AtomicU64,
    pub keyframe_requests_received: AtomicU64,
    /// Retransmissions the gate held back as useless.
    pub retransmissions_held_back: AtomicU64,
    pub video_frames_received: AtomicU64,
    pub video_frames_decoded: AtomicU64,
    pub video_decode_errors: AtomicU64,
    pub video_size_in: AtomicU64,
    pub video_losses: AtomicU64,
    pub plis_sent: AtomicU64,
    pub audio_packets_sent: AtomicU64,
    pub audio_packets_received: AtomicU64,
    pub audio_frames_played: AtomicU64,
    pub audio_concealed: AtomicU64,
    pub jitter_delay_ms: AtomicU32,
    /// The newest frame number read from a received test pattern.
    pub last_stamp_frame: AtomicU64,
    pub latency: Mutex<Latency>,
    /// Received test-pattern frames scored against the pattern (one a second): the sum of
    /// their luma PSNR in hundredths of a dB, and how many.
    pub pattern_psnr_centi_db: AtomicU64,
    pub pattern_psnr_samples: AtomicU64,
    pub first_frame_at: Mutex<Option<Instant>>,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn set_size(counter: &AtomicU64, width: u32, height: u32) {
        counter.store(
            u64::from(width) << 32 | u64::from(height),
            Ordering::Relaxed,
        );
    }

    /// Adds one received frame's PSNR (an identical frame's infinity counts as 100 dB).
    pub fn add_pattern_psnr(&self, db: f64) {
        let centi_db = (db.min(100.0) * 100.0).round().max(0.0) as u64;
        Counters::add(&self.pattern_psnr_centi_db, centi_db);
        Counters::add(&self.pattern_psnr_samples, 1);
    }

    /// The mean of the PSNR scores so far, in dB.
    pub fn pattern_psnr_db(&self) -> Option<f64> {
        let samples = Counters::get(&self.pattern_psnr_samples);
        (samples > 0)
            .then(|| Counters::get(&self.pattern_psnr_centi_db) as f64 / 100.0 / samples as f64)
    }

    pub fn clear_size(counter: &AtomicU64) {
        counter.store(0, Ordering::Relaxed);
    }

    pub fn size(counter: &AtomicU64) -> Option<(u32, u32)> {
        let v = counter.load(Ordering::Relaxed);
        (v != 0).then_some(((v >> 32) as u32, v as u32))
    }
}

/// Capture-to-display latency samples from test-pattern stamps (both ends on one clock).
#[derive(Debug, Default)]
pub(crate) struct Latency {
    /// The whole call's, for its summary.
    samples: Vec<f64>,
    /// Since the last stats tick.
    recent: Vec<f64>,
}

/// Latency samples kept: a five-minute call at 30 fps.
const MAX_LATENCY_SAMPLES: usize = 10_000;

impl Latency {
    pub fn record(&mut self, capture_time_us: u64) {
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        if now_us < capture_time_us {
            return;
        }
        let ms = (now_us - capture_time_us) as f64 / 1000.0;
        if self.samples.len() < MAX_LATENCY_SAMPLES {
            self.samples.push(ms);
        }
        if self.recent.len() < MAX_LATENCY_SAMPLES {
            self.recent.push(ms);
        }
    }

    /// The call's `q` quantile (0..=1) in milliseconds.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        quantile(&self.samples, q)
    }

    /// The median and 95th percentile since the last call, in milliseconds.
    pub fn take_recent(&mut self) -> (Option<f64>, Option<f64>) {
        let taken = (quantile(&self.recent, 0.5), quantile(&self.recent, 0.95));
        self.recent.clear();
        taken
    }

    pub fn count(&self) -> usize {
        self.samples.len()
    }
}

fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get(((sorted.len() - 1) as f64 * q).round() as usize)
        .copied()
}

/// Encoded media on its way to a track: a frame (or Opus packet) and how long it lasts.
#[derive(Clone)]
pub(crate) struct Encoded {
    pub data: bytes::Bytes,
    /// Advances the RTP timestamp after this sample.
    pub duration: std::time::Duration,
}

/// The writer task of an outgoing track: samples from an encoder thread onto the track.
pub(crate) async fn write_samples(
    track: std::sync::Arc<TrackLocalStaticSample>,
    payload_type: u8,
    mut samples: tokio::sync::mpsc::Receiver<Encoded>,
) {
    let Some(&ssrc) = track.ssrcs().await.first() else {
        tracing::warn!("an outgoing track has no SSRC");
        return;
    };
    while let Some(encoded) = samples.recv().await {
        let sample = rtc::media::Sample {
            data: encoded.data,
            duration: encoded.duration,
            ..rtc::media::Sample::new(Instant::now())
        };
        if let Err(err) = track.write_sample(ssrc, payload_type, &sample, &[]).await {
            tracing::debug!("writing a media sample failed: {err}");
        }
    }
}

/// The next instruction for a sending thread (for video: `Some` source or `None` to stop
/// sending). A thread that is sending only looks (`Err(false)`: nothing new); an idle one
/// waits. `Err(true)`: the engine is gone and the thread should end.
pub(crate) fn next_message<M>(
    messages: &std::sync::mpsc::Receiver<M>,
    sending: bool,
) -> Result<M, bool> {
    if sending {
        messages
            .try_recv()
            .map_err(|e| matches!(e, std::sync::mpsc::TryRecvError::Disconnected))
    } else {
        messages.recv().map_err(|_| true)
    }
}
