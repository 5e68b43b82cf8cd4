//! Sending audio: source -> `audio-send` thread (echo cancellation, noise suppression and
//! gain control for a microphone; mute, level meter, Opus) -> writer task -> track.
//!
//! A microphone keeps time by itself (its reads block); other sources are paced at one
//! frame per 20 ms. The source can be swapped, and the processing stages switched, while
//! running, without touching the connection. The canceller's numbers go out once a second
//! on a watch channel, for the stats.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use std::time::Instant;

use bytes::Bytes;
use confab_media::audio::{
    AudioProcessor, AudioSource, EchoReference, EchoStats, FRAME_DURATION, FRAME_SAMPLES,
    InputControl, OpusEncoder, ProcessingSettings,
};
use confab_media::pacer::Pacer;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

use confab_media::thread::MediaThread;

use super::{Counters, Encoded, Problem, next_message, spawn_thread, write_samples};

/// Opus packets waiting for the writer: 200 ms.
const PACKET_QUEUE: usize = 10;
/// Voice bitrate.
const OPUS_BITRATE_BPS: u32 = 32_000;

/// Frames between two publications of the canceller's numbers: one second.
const STATS_EVERY: u32 = 50;

type Source = Box<dyn AudioSource>;

/// What the engine tells the send thread.
enum SendCommand {
    /// Send from this source from now on; `None` sends nothing.
    Source(Option<Source>),
    Processing(ProcessingSettings),
}

pub(crate) struct AudioSender {
    commands: Option<std_mpsc::Sender<SendCommand>>,
    thread: Option<MediaThread>,
    writer: tokio::task::JoinHandle<()>,
    echo: watch::Receiver<Option<EchoStats>>,
}

/// What the send thread starts with besides its source.
pub(crate) struct SendSetup {
    pub control: Arc<InputControl>,
    pub processing: ProcessingSettings,
    /// What the speaker of this call plays, for the echo canceller.
    pub reference: Option<EchoReference>,
}

impl AudioSender {
    pub fn start(
        track: Arc<TrackLocalStaticSample>,
        payload_type: u8,
        setup: SendSetup,
        counters: Arc<Counters>,
        problems: mpsc::UnboundedSender<Problem>,
    ) -> Result<AudioSender, crate::CallError> {
        let encoder = OpusEncoder::new(OPUS_BITRATE_BPS)?;
        let (commands, command_rx) = std_mpsc::channel();
        let (packets, packet_rx) = mpsc::channel(PACKET_QUEUE);
        let (echo_tx, echo) = watch::channel(None);
        let processor = AudioProcessor::new(setup.processing, setup.reference)?;
        let control = setup.control;
        let thread = spawn_thread("audio-send", &problems.clone(), move || {
            let mut sending = Sending {
                encoder,
                processor,
                echo: echo_tx,
                out: packets,
            };
            sending.run(&command_rx, &control, &counters, &problems);
        })?;
        let writer = tokio::spawn(write_samples(track, payload_type, packet_rx));
        Ok(AudioSender {
            commands: Some(commands),
            thread: Some(thread),
            writer,
            echo,
        })
    }

    /// Sends from `source` from now on; `None` sends nothing.
    pub fn set_source(&self, source: Option<Source>) {
        self.command(SendCommand::Source(source));
    }

    /// Switches the microphone's processing stages from the next frame.
    pub fn set_processing(&self, settings: ProcessingSettings) {
        self.command(SendCommand::Processing(settings));
    }

    fn command(&self, command: SendCommand) {
        if let Some(commands) = &self.commands {
            let _ = commands.send(command);
        }
    }

    /// The echo canceller's latest numbers, while it runs on a microphone.
    pub fn echo_stats(&self) -> Option<EchoStats> {
        *self.echo.borrow()
    }
}

impl Drop for AudioSender {
    fn drop(&mut self) {
        self.commands.take();
        self.writer.abort();
        self.thread.take(); // Joins it.
    }
}

/// The send thread's own state.
struct Sending {
    encoder: OpusEncoder,
    processor: AudioProcessor,
    echo: watch::Sender<Option<EchoStats>>,
    out: mpsc::Sender<Encoded>,
}

impl Sending {
    fn run(
        &mut self,
        commands: &std_mpsc::Receiver<SendCommand>,
        control: &InputControl,
        counters: &Counters,
        problems: &mpsc::UnboundedSender<Problem>,
    ) {
        let mut source: Option<Source> = None;
        let mut pacer = Pacer::new(50);
        let mut frame = [0.0f32; FRAME_SAMPLES];
        let mut frames = 0u32;
        loop {
            match next_message(commands, source.is_some()) {
                Ok(SendCommand::Source(new_source)) => {
                    source = new_source;
                    pacer = Pacer::new(50);
                    continue;
                }
                Ok(SendCommand::Processing(settings)) => {
                    self.processor.set_settings(settings);
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
                self.echo.send_replace(None);
                continue;
            }
            // Only a microphone is cleaned: a tone or a file is sent as it is.
            if let Some(captured_at) = input.captured_at() {
                self.processor
                    .process(&mut frame, captured_at, Instant::now());
                frames += 1;
                if frames.is_multiple_of(STATS_EVERY) {
                    let stats = self
                        .processor
                        .settings()
                        .any()
                        .then(|| self.processor.stats());
                    self.echo.send_replace(stats);
                }
            }
            control.process(&mut frame);
            if !self.encode(&frame, counters) {
                return;
            }
        }
    }

    /// Encodes and queues a frame; `false` when the writer is gone.
    fn encode(&mut self, frame: &[f32], counters: &Counters) -> bool {
        match self.encoder.encode(frame) {
            Ok(packet) => {
                Counters::add(&counters.audio_packets_sent, 1);
                let encoded = Encoded {
                    data: Bytes::from(packet),
                    duration: FRAME_DURATION,
                };
                self.out.blocking_send(encoded).is_ok()
            }
            Err(err) => {
                debug!("Opus encoding failed: {err}");
                true
            }
        }
    }
}
