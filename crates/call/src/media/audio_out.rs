//! Sending audio: source -> `audio-send` thread (mute, level meter, Opus) -> writer task ->
//! track.
//!
//! A microphone keeps time by itself (its reads block); other sources are paced at one
//! frame per 20 ms. The source can be swapped while running (a different microphone, or
//! none) without touching the connection.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use bytes::Bytes;
use confab_media::audio::{AudioSource, FRAME_DURATION, FRAME_SAMPLES, InputControl, OpusEncoder};
use confab_media::pacer::Pacer;
use tokio::sync::mpsc;
use tracing::{debug, warn};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

use super::{Counters, Encoded, MediaProblem, next_source, write_samples};

/// Opus packets waiting for the writer: 200 ms.
const PACKET_QUEUE: usize = 10;
/// Voice bitrate.
const OPUS_BITRATE_BPS: u32 = 32_000;

type Source = Box<dyn AudioSource>;

pub(crate) struct AudioSender {
    sources: Option<std_mpsc::Sender<Option<Source>>>,
    thread: Option<JoinHandle<()>>,
    writer: tokio::task::JoinHandle<()>,
}

impl AudioSender {
    pub fn start(
        track: Arc<TrackLocalStaticSample>,
        payload_type: u8,
        control: Arc<InputControl>,
        counters: Arc<Counters>,
        problems: mpsc::UnboundedSender<MediaProblem>,
    ) -> Result<AudioSender, crate::CallError> {
        let encoder = OpusEncoder::new(OPUS_BITRATE_BPS)?;
        let (sources, source_rx) = std_mpsc::channel();
        let (packets, packet_rx) = mpsc::channel(PACKET_QUEUE);
        let thread = std::thread::Builder::new()
            .name("audio-send".into())
            .spawn(move || send_loop(encoder, source_rx, packets, &control, &counters, &problems))
            .map_err(|err| {
                crate::CallError::WebRtc(format!("cannot start the audio thread: {err}"))
            })?;
        let writer = tokio::spawn(write_samples(track, payload_type, packet_rx));
        Ok(AudioSender {
            sources: Some(sources),
            thread: Some(thread),
            writer,
        })
    }

    /// Sends from `source` from now on; `None` sends nothing.
    pub fn set_source(&self, source: Option<Source>) {
        if let Some(sources) = &self.sources {
            let _ = sources.send(source);
        }
    }
}

impl Drop for AudioSender {
    fn drop(&mut self) {
        self.sources.take();
        self.writer.abort();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn send_loop(
    mut encoder: OpusEncoder,
    sources: std_mpsc::Receiver<Option<Source>>,
    out: mpsc::Sender<Encoded>,
    control: &InputControl,
    counters: &Counters,
    problems: &mpsc::UnboundedSender<MediaProblem>,
) {
    let mut source: Option<Source> = None;
    let mut pacer = Pacer::new(50);
    let mut frame = [0.0f32; FRAME_SAMPLES];
    loop {
        let command = next_source(&sources, source.is_some());
        match command {
            Ok(new_source) => {
                source = new_source;
                pacer = Pacer::new(50);
                continue;
            }
            Err(true) => return,
            Err(false) => {}
        }
        let Some(input) = &mut source else { continue };
        if !input.is_live() {
            pacer.wait();
        }
        if let Err(err) = input.read(&mut frame) {
            warn!("audio input {} stopped: {err}", input.name());
            let _ = problems.send(MediaProblem::Microphone(err.to_string()));
            source = None;
            continue;
        }
        control.process(&mut frame);
        match encoder.encode(&frame) {
            Ok(packet) => {
                Counters::add(&counters.audio_packets_sent, 1);
                if out
                    .blocking_send(Encoded {
                        data: Bytes::from(packet),
                        duration: FRAME_DURATION,
                    })
                    .is_err()
                {
                    return;
                }
            }
            Err(err) => debug!("Opus encoding failed: {err}"),
        }
    }
}
