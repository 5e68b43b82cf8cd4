//! Sending audio: source -> `audio-send` thread (mute, level meter, Opus) -> writer task ->
//! track.
//!
//! A microphone keeps time by itself (its reads block); other sources are paced at one
//! frame per 20 ms. The source can be swapped while running (a different microphone, or
//! none) without touching the connection.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use bytes::Bytes;
use confab_media::audio::{AudioSource, FRAME_DURATION, FRAME_SAMPLES, InputControl, OpusEncoder};
use confab_media::pacer::Pacer;
use tokio::sync::mpsc;
use tracing::{debug, warn};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

use confab_media::thread::MediaThread;

use super::{Counters, Encoded, Problem, next_source, spawn_thread, write_samples};

/// Opus packets waiting for the writer: 200 ms.
const PACKET_QUEUE: usize = 10;
/// Voice bitrate.
const OPUS_BITRATE_BPS: u32 = 32_000;

type Source = Box<dyn AudioSource>;

pub(crate) struct AudioSender {
    sources: Option<std_mpsc::Sender<Option<Source>>>,
    thread: Option<MediaThread>,
    writer: tokio::task::JoinHandle<()>,
}

impl AudioSender {
    pub fn start(
        track: Arc<TrackLocalStaticSample>,
        payload_type: u8,
        control: Arc<InputControl>,
        counters: Arc<Counters>,
        problems: mpsc::UnboundedSender<Problem>,
    ) -> Result<AudioSender, crate::CallError> {
        let encoder = OpusEncoder::new(OPUS_BITRATE_BPS)?;
        let (sources, source_rx) = std_mpsc::channel();
        let (packets, packet_rx) = mpsc::channel(PACKET_QUEUE);
        let thread = spawn_thread("audio-send", &problems.clone(), move || {
            send_loop(encoder, source_rx, packets, &control, &counters, &problems);
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
        self.thread.take(); // Joins it.
    }
}

fn send_loop(
    mut encoder: OpusEncoder,
    sources: std_mpsc::Receiver<Option<Source>>,
    out: mpsc::Sender<Encoded>,
    control: &InputControl,
    counters: &Counters,
    problems: &mpsc::UnboundedSender<Problem>,
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
            let _ = problems.send(Problem::Microphone(err.to_string()));
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
