//! Microphones and speakers through cpal.
//!
//! Real-time discipline: the device callbacks only convert samples to or from `f32` and
//! move them through lock-free ring buffers (rtrb). They never lock, allocate, log or
//! block; on underrun the speaker plays silence, on overrun the microphone drops samples
//! (both counted). Mixing, resampling and the 20 ms framing happen on the thread that calls
//! `read` or `write`. A device error (unplugged, say) is recorded by cpal's error callback
//! and returned by the next `read` or `write`.
//!
//! On Linux the PulseAudio host (also served by PipeWire) is used when a server is
//! reachable, for real device names; otherwise the default host (ALSA).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample, Stream, SupportedStreamConfig};
use rtrb::{Consumer, Producer, RingBuffer};
use tracing::debug;

use super::convert::{DeviceToMono, MonoToDevice};
use super::{AudioError, AudioSink, AudioSource};

/// How long the reader or writer naps while waiting for the device.
const POLL: Duration = Duration::from_millis(2);
/// Device audio the microphone ring holds: plenty for a reader that falls behind a bit.
const MIC_RING: Duration = Duration::from_millis(500);
/// Audio queued for the speaker at most: the playout delay this sink adds.
const SPEAKER_QUEUE: Duration = Duration::from_millis(60);
/// A device that delivers nothing for this long has failed. (PulseAudio capture can take a
/// second or two to start.)
const STALL: Duration = Duration::from_secs(5);

/// The names of the audio devices on this machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioDevices {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

fn host() -> cpal::Host {
    #[cfg(target_os = "linux")]
    if let Ok(host) = cpal::host_from_id(cpal::HostId::PulseAudio) {
        return host;
    }
    cpal::default_host()
}

fn backend(err: cpal::Error) -> AudioError {
    AudioError::Backend(err.to_string())
}

fn device_name(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_owned())
        .or_else(|_| device.id().map(|id| id.to_string()))
        .unwrap_or_else(|_| "unknown device".into())
}

/// Whether a device is a real input or output a person would pick (not ALSA's "discard
/// everything" null device, not a PulseAudio monitor of a speaker).
fn is_user_facing(name: &str, id: &str) -> bool {
    let lower = name.to_lowercase();
    id != "null"
        && !id.ends_with(":null")
        && !lower.starts_with("monitor of ")
        && !lower.contains("discard all samples")
}

fn listed(devices: impl Iterator<Item = cpal::Device>) -> Vec<(String, cpal::Device)> {
    devices
        .filter_map(|device| {
            let name = device_name(&device);
            let id = device.id().map(|id| id.to_string()).unwrap_or_default();
            let id = id.rsplit(':').next().unwrap_or_default().to_owned();
            is_user_facing(&name, &id).then_some((name, device))
        })
        .collect()
}

/// Lists microphones and speakers by name. No devices (no sound server, no sound card) is
/// an empty list, not an error.
pub fn list_devices() -> Result<AudioDevices, AudioError> {
    let host = host();
    let inputs = host.input_devices().map(listed).unwrap_or_default();
    let outputs = host.output_devices().map(listed).unwrap_or_default();
    let usable_inputs = inputs
        .into_iter()
        .filter(|(_, d)| d.default_input_config().is_ok());
    let usable_outputs = outputs
        .into_iter()
        .filter(|(_, d)| d.default_output_config().is_ok());
    Ok(AudioDevices {
        inputs: usable_inputs.map(|(name, _)| name).collect(),
        outputs: usable_outputs.map(|(name, _)| name).collect(),
    })
}

/// Finds a device by name (or PulseAudio id), exactly then by part of the name, or the
/// default when `name` is `None`.
fn find_device(input: bool, name: Option<&str>) -> Result<(String, cpal::Device), AudioError> {
    let host = host();
    let kind = if input { "microphone" } else { "speaker" };
    let Some(wanted) = name else {
        let device = if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        };
        let device = device.ok_or(AudioError::NoDevice(kind))?;
        return Ok((device_name(&device), device));
    };
    let devices = if input {
        host.input_devices()
    } else {
        host.output_devices()
    };
    let devices = listed(devices.map_err(backend)?);
    let lower = wanted.to_lowercase();
    let id_of = |d: &cpal::Device| {
        d.id()
            .map(|id| id.to_string().to_lowercase())
            .unwrap_or_default()
    };
    let position = devices
        .iter()
        .position(|(n, d)| n.to_lowercase() == lower || id_of(d).ends_with(&format!(":{lower}")))
        .or_else(|| {
            devices
                .iter()
                .position(|(n, _)| n.to_lowercase().contains(&lower))
        });
    position
        .and_then(|i| devices.into_iter().nth(i))
        .ok_or_else(|| AudioError::DeviceNotFound(wanted.to_owned()))
}

/// Maps an error opening `name` to what a user should hear.
fn open_error(err: cpal::Error, name: &str, kind: &'static str, default: bool) -> AudioError {
    match err.kind() {
        cpal::ErrorKind::DeviceBusy => AudioError::DeviceBusy(name.to_owned()),
        cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::HostUnavailable if default => {
            AudioError::NoDevice(kind)
        }
        cpal::ErrorKind::DeviceNotAvailable => AudioError::DeviceNotFound(name.to_owned()),
        cpal::ErrorKind::UnsupportedConfig => {
            AudioError::UnsupportedFormat(format!("{name}: {err}"))
        }
        _ => AudioError::Backend(format!("{name}: {err}")),
    }
}

/// What the error callback reports to the reading or writing side.
#[derive(Default)]
struct Failure(Mutex<Option<AudioError>>);

impl Failure {
    fn report(&self, err: cpal::Error, name: &str) {
        let error = match err.kind() {
            // Recoverable: a glitch or a reroute, not a failure.
            cpal::ErrorKind::Xrun
            | cpal::ErrorKind::DeviceChanged
            | cpal::ErrorKind::RealtimeDenied => return,
            cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::StreamInvalidated => {
                AudioError::DeviceLost(name.to_owned())
            }
            _ => AudioError::Backend(format!("{name}: {err}")),
        };
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    fn check(&self) -> Result<(), AudioError> {
        match self.0.lock().unwrap_or_else(PoisonError::into_inner).take() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// Audio the device hands over per callback, when it lets us choose: small, for low delay.
/// (PulseAudio otherwise delivers microphone audio in bursts of seconds.)
const DEVICE_BUFFER: Duration = Duration::from_millis(10);

/// The device's own format with a small buffer, if its range allows one.
fn stream_config(config: &SupportedStreamConfig) -> cpal::StreamConfig {
    let mut stream = config.config();
    let wanted = (f64::from(config.sample_rate()) * DEVICE_BUFFER.as_secs_f64()) as u32;
    if let cpal::SupportedBufferSize::Range { min, max } = config.buffer_size() {
        stream.buffer_size = cpal::BufferSize::Fixed(wanted.clamp(*min, *max));
    }
    stream
}

fn ring_len(config: &SupportedStreamConfig, duration: Duration) -> usize {
    let per_second = config.sample_rate() as usize * usize::from(config.channels());
    (per_second as f64 * duration.as_secs_f64()) as usize
}

/// A microphone: its audio as 48 kHz mono 20 ms frames.
pub struct MicrophoneSource {
    name: String,
    _stream: Stream,
    ring: Consumer<f32>,
    convert: DeviceToMono,
    scratch: Vec<f32>,
    failure: Arc<Failure>,
    overruns: Arc<AtomicU64>,
    /// Device rate times channels: ring samples per second.
    ring_rate: f64,
    /// From the device's timestamps: how long audio takes from the microphone to the
    /// callback, in microseconds.
    latency_us: Arc<AtomicU32>,
    captured_at: Option<Instant>,
}

impl MicrophoneSource {
    /// Opens the named microphone, or the default one.
    pub fn open(name: Option<&str>) -> Result<MicrophoneSource, AudioError> {
        let requested = name.filter(|n| !n.is_empty());
        let default = requested.is_none();
        let (name, device) = find_device(true, requested)?;
        let config = device
            .default_input_config()
            .map_err(|err| open_error(err, &name, "microphone", default))?;
        let (producer, ring) = RingBuffer::new(ring_len(&config, MIC_RING));
        let failure = Arc::new(Failure::default());
        let overruns = Arc::new(AtomicU64::new(0));
        let latency_us = Arc::new(AtomicU32::new(0));
        let counters = (overruns.clone(), latency_us.clone());
        let stream = build_input(&device, &config, producer, &failure, counters, &name)
            .map_err(|err| open_error(err, &name, "microphone", default))?;
        stream
            .play()
            .map_err(|err| open_error(err, &name, "microphone", default))?;
        debug!(%name, rate = config.sample_rate(), channels = config.channels(), "microphone open");
        Ok(MicrophoneSource {
            convert: DeviceToMono::new(config.sample_rate(), config.channels())?,
            name,
            _stream: stream,
            ring,
            scratch: Vec::new(),
            failure,
            overruns,
            ring_rate: f64::from(config.sample_rate()) * f64::from(config.channels()),
            latency_us,
            captured_at: None,
        })
    }

    /// Device samples dropped because the reader fell behind.
    pub fn overruns(&self) -> u64 {
        self.overruns.load(Ordering::Relaxed)
    }
}

/// Calls `build::<T>(device, config, ring, failure, counter, name)` with `T` the sample
/// type the device uses.
macro_rules! with_sample_type {
    ($format:expr, $build:ident($device:expr, $config:expr, $args:expr)) => {{
        let (ring, failure, counter, name) = $args;
        match $format {
            SampleFormat::F32 => $build::<f32>($device, $config, ring, failure, counter, name),
            SampleFormat::I16 => $build::<i16>($device, $config, ring, failure, counter, name),
            SampleFormat::U16 => $build::<u16>($device, $config, ring, failure, counter, name),
            SampleFormat::I32 => $build::<i32>($device, $config, ring, failure, counter, name),
            SampleFormat::U8 => $build::<u8>($device, $config, ring, failure, counter, name),
            SampleFormat::I8 => $build::<i8>($device, $config, ring, failure, counter, name),
            SampleFormat::F64 => $build::<f64>($device, $config, ring, failure, counter, name),
            other => Err(cpal::Error::with_message(
                cpal::ErrorKind::UnsupportedConfig,
                format!("sample format {other}"),
            )),
        }
    }};
}

/// What a device callback counts: samples it had to drop or fill, and the device latency
/// its timestamps tell, in microseconds.
type CallbackCounters = (Arc<AtomicU64>, Arc<AtomicU32>);

fn micros(latency: Duration) -> u32 {
    u32::try_from(latency.as_micros()).unwrap_or(u32::MAX)
}

fn build_input(
    device: &cpal::Device,
    config: &SupportedStreamConfig,
    producer: Producer<f32>,
    failure: &Arc<Failure>,
    counters: CallbackCounters,
    name: &str,
) -> Result<Stream, cpal::Error> {
    fn build<T>(
        device: &cpal::Device,
        config: &SupportedStreamConfig,
        mut producer: Producer<f32>,
        failure: Arc<Failure>,
        (overruns, latency_us): CallbackCounters,
        name: String,
    ) -> Result<Stream, cpal::Error>
    where
        T: SizedSample,
        f32: FromSample<T>,
    {
        let data = move |samples: &[T], info: &cpal::InputCallbackInfo| {
            let stamps = info.timestamp();
            let latency = stamps.callback.saturating_duration_since(stamps.capture);
            latency_us.store(micros(latency), Ordering::Relaxed);
            // Real-time: copy what fits, count what does not.
            let room = producer.slots().min(samples.len());
            if let Ok(chunk) = producer.write_chunk_uninit(room) {
                chunk.fill_from_iter(samples.iter().map(|&s| f32::from_sample(s)));
            }
            if room < samples.len() {
                overruns.fetch_add((samples.len() - room) as u64, Ordering::Relaxed);
            }
        };
        let error = move |err| failure.report(err, &name);
        device.build_input_stream(stream_config(config), data, error, None)
    }
    let args = (producer, failure.clone(), counters, name.to_owned());
    with_sample_type!(config.sample_format(), build(device, config, args))
}

impl MicrophoneSource {
    /// When the first sample of a frame just taken reached the microphone: now, less what
    /// is still buffered behind it, the frame itself, and the device's own latency.
    fn capture_time(&self, frame_len: usize) -> Option<Instant> {
        let in_ring = self.ring.slots() as f64 / self.ring_rate;
        let frame = frame_len as f64 / f64::from(super::SAMPLE_RATE);
        let device = Duration::from_micros(u64::from(self.latency_us.load(Ordering::Relaxed)));
        let age = Duration::from_secs_f64(in_ring + frame) + self.convert.buffered() + device;
        Instant::now().checked_sub(age)
    }
}

impl AudioSource for MicrophoneSource {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn read(&mut self, frame: &mut [f32]) -> Result<(), AudioError> {
        let mut last_data = Instant::now();
        loop {
            self.failure.check()?;
            if self.convert.take(frame) {
                self.captured_at = self.capture_time(frame.len());
                return Ok(());
            }
            let available = self.ring.slots();
            let channels = self.convert.channels();
            let whole_frames = available - available % channels;
            if whole_frames > 0 {
                let chunk = self
                    .ring
                    .read_chunk(whole_frames)
                    .map_err(|err| AudioError::Backend(err.to_string()))?;
                let (a, b) = chunk.as_slices();
                self.scratch.clear();
                self.scratch.extend_from_slice(a);
                self.scratch.extend_from_slice(b);
                chunk.commit_all();
                self.convert.push(&self.scratch);
                last_data = Instant::now();
                continue;
            }
            if last_data.elapsed() > STALL {
                return Err(AudioError::DeviceLost(self.name.clone()));
            }
            std::thread::sleep(POLL);
        }
    }

    fn is_live(&self) -> bool {
        true
    }

    fn captured_at(&self) -> Option<Instant> {
        self.captured_at
    }
}

/// A speaker: plays 48 kHz mono 20 ms frames.
pub struct SpeakerSink {
    name: String,
    _stream: Stream,
    ring: Producer<f32>,
    convert: MonoToDevice,
    interleaved: Vec<f32>,
    /// Ring samples to keep queued at most.
    queue_limit: usize,
    failure: Arc<Failure>,
    underruns: Arc<AtomicU64>,
    /// Device rate times channels: ring samples per second.
    ring_rate: f64,
    /// From the device's timestamps: how long audio takes from the callback to the
    /// speaker, in microseconds.
    latency_us: Arc<AtomicU32>,
    delay: Option<Duration>,
}

impl SpeakerSink {
    /// Opens the named speaker, or the default one.
    pub fn open(name: Option<&str>) -> Result<SpeakerSink, AudioError> {
        let requested = name.filter(|n| !n.is_empty());
        let default = requested.is_none();
        let (name, device) = find_device(false, requested)?;
        let config = device
            .default_output_config()
            .map_err(|err| open_error(err, &name, "speaker", default))?;
        let queue_limit = ring_len(&config, SPEAKER_QUEUE);
        // Room for the queue plus one converted frame on top.
        let (producer, consumer) =
            RingBuffer::new(queue_limit * 2 + ring_len(&config, super::FRAME_DURATION));
        let failure = Arc::new(Failure::default());
        let underruns = Arc::new(AtomicU64::new(0));
        let latency_us = Arc::new(AtomicU32::new(0));
        let counters = (underruns.clone(), latency_us.clone());
        let stream = build_output(&device, &config, consumer, &failure, counters, &name)
            .map_err(|err| open_error(err, &name, "speaker", default))?;
        stream
            .play()
            .map_err(|err| open_error(err, &name, "speaker", default))?;
        debug!(%name, rate = config.sample_rate(), channels = config.channels(), "speaker open");
        Ok(SpeakerSink {
            convert: MonoToDevice::new(config.sample_rate(), config.channels())?,
            name,
            _stream: stream,
            ring: producer,
            interleaved: Vec::new(),
            queue_limit,
            failure,
            underruns,
            ring_rate: f64::from(config.sample_rate()) * f64::from(config.channels()),
            latency_us,
            delay: None,
        })
    }

    /// Times the device found nothing to play (and played silence).
    pub fn underruns(&self) -> u64 {
        self.underruns.load(Ordering::Relaxed)
    }
}

fn build_output(
    device: &cpal::Device,
    config: &SupportedStreamConfig,
    consumer: Consumer<f32>,
    failure: &Arc<Failure>,
    counters: CallbackCounters,
    name: &str,
) -> Result<Stream, cpal::Error> {
    fn build<T>(
        device: &cpal::Device,
        config: &SupportedStreamConfig,
        mut consumer: Consumer<f32>,
        failure: Arc<Failure>,
        (underruns, latency_us): CallbackCounters,
        name: String,
    ) -> Result<Stream, cpal::Error>
    where
        T: SizedSample + FromSample<f32>,
    {
        let data = move |out: &mut [T], info: &cpal::OutputCallbackInfo| {
            let stamps = info.timestamp();
            let latency = stamps.playback.saturating_duration_since(stamps.callback);
            latency_us.store(micros(latency), Ordering::Relaxed);
            // Real-time: play what is queued, silence for the rest.
            let ready = consumer.slots().min(out.len());
            let mut written = 0;
            if let Ok(chunk) = consumer.read_chunk(ready) {
                let (a, b) = chunk.as_slices();
                for (slot, &sample) in out.iter_mut().zip(a.iter().chain(b)) {
                    *slot = T::from_sample(sample);
                    written += 1;
                }
                chunk.commit_all();
            }
            if written < out.len() {
                if let Some(rest) = out.get_mut(written..) {
                    rest.fill(T::EQUILIBRIUM);
                }
                underruns.fetch_add(1, Ordering::Relaxed);
            }
        };
        let error = move |err| failure.report(err, &name);
        device.build_output_stream(stream_config(config), data, error, None)
    }
    let args = (consumer, failure.clone(), counters, name.to_owned());
    with_sample_type!(config.sample_format(), build(device, config, args))
}

impl AudioSink for SpeakerSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn write(&mut self, frame: &[f32]) -> Result<(), AudioError> {
        self.interleaved.clear();
        self.convert.convert(frame, &mut self.interleaved);
        let capacity = self.ring.buffer().capacity();
        let started = Instant::now();
        // Wait until the device has played enough that this frame fits in the queue.
        loop {
            self.failure.check()?;
            let queued = capacity - self.ring.slots();
            if queued + self.interleaved.len() <= self.queue_limit.max(self.interleaved.len()) {
                break;
            }
            if started.elapsed() > STALL {
                return Err(AudioError::DeviceLost(self.name.clone()));
            }
            std::thread::sleep(POLL);
        }
        // This frame plays after what is queued ahead of it and the device's own latency.
        let queued = (capacity - self.ring.slots()) as f64 / self.ring_rate;
        let device = Duration::from_micros(u64::from(self.latency_us.load(Ordering::Relaxed)));
        self.delay = Some(Duration::from_secs_f64(queued) + device);
        let chunk = self
            .ring
            .write_chunk_uninit(self.interleaved.len())
            .map_err(|err| AudioError::Backend(err.to_string()))?;
        chunk.fill_from_iter(self.interleaved.iter().copied());
        Ok(())
    }

    fn is_live(&self) -> bool {
        true
    }

    fn delay(&self) -> Option<Duration> {
        self.delay
    }
}
