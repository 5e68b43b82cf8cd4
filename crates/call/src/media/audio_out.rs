//! Sending audio: source -> one `audio-send` thread for the whole call (echo cancellation,
//! noise suppression and gain control for a microphone; mute, level meter, Opus) -> a
//! writer task per link -> that link's track. One microphone, one encode, N-1 sends.
//!
//! A microphone keeps time by itself (its reads block); other sources are paced at one
//! frame per 20 ms. The source can be swapped, and the processing stages switched, while
//! running, without touching the connection. The canceller's numbers go out once a second
//! on a watch channel, for the stats.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use std::time::Instant;

use bytes::Bytes;
use confab_call_core::LinkId;
use confab_media::audio::{
    AudioProcessor, AudioSource, EchoReference, EchoStats, FRAME_DURATION, FRAME_SAMPLES,
    InputControl, OpusEncoder, ProcessingSettings,
};
use confab_media::pacer::Pacer;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use confab_media::thread::MediaThread;

use super::fanout::{Feeds, LinkCommands, Outlet, deliver};
use super::{Counters, Encoded, Problem, next_message, spawn_thread};

/// Opus packets waiting for the writer: 200 ms.
const PACKET_QUEUE: usize = 10;
/// Voice bitrate.
pub(crate) const OPUS_BITRATE_BPS: u32 = 32_000;
/// The loss Opus's in-band FEC is set for before the peer reports any (the encoder's own
/// setting), and the range the reports move it in: some redundancy always, since loss
/// comes in bursts the reports average out.
const INITIAL_EXPECTED_LOSS: u8 = confab_media::audio::DEFAULT_EXPECTED_LOSS_PERCENT;
const MIN_EXPECTED_LOSS: u8 = 2;
const MAX_EXPECTED_LOSS: u8 = 40;

/// Frames between two publications of the canceller's numbers: one second.
const STATS_EVERY: u32 = 50;

type Source = Box<dyn AudioSource>;

/// What the engine tells the send thread.
pub(crate) enum SendCommand {
    /// Send from this source from now on; `None` sends nothing.
    Source(Option<Source>),
    Processing(ProcessingSettings),
    AddLink(Outlet),
    RemoveLink(LinkId),
}

impl LinkCommands for SendCommand {
    fn add(outlet: Outlet) -> Self {
        SendCommand::AddLink(outlet)
    }

    fn remove(link: LinkId) -> Self {
        SendCommand::RemoveLink(link)
    }
}

/// The call's microphone processing and Opus encoder, and the links it feeds.
pub(crate) struct AudioSender {
    feeds: Feeds<SendCommand>,
    thread: Option<MediaThread>,
    echo: watch::Receiver<Option<EchoStats>>,
}

/// What the send thread starts with besides its source.
pub(crate) struct SendSetup {
    pub control: Arc<InputControl>,
    pub processing: ProcessingSettings,
    /// What the call's speaker plays, for the echo canceller.
    pub reference: Option<EchoReference>,
}

impl AudioSender {
    pub fn start(
        setup: SendSetup,
        problems: mpsc::UnboundedSender<Problem>,
    ) -> Result<AudioSender, crate::CallError> {
        let encoder = OpusEncoder::new(OPUS_BITRATE_BPS)?;
        let (feeds, command_rx) = Feeds::new(PACKET_QUEUE);
        let (echo_tx, echo) = watch::channel(None);
        let processor = AudioProcessor::new(setup.processing, setup.reference)?;
        let control = setup.control;
        let thread = spawn_thread("audio-send", &problems.clone(), move || {
            let mut sending = Sending {
                encoder,
                expected_loss: INITIAL_EXPECTED_LOSS,
                processor,
                echo: echo_tx,
                outlets: Vec::new(),
            };
            sending.run(&command_rx, &control, &problems);
        })?;
        Ok(AudioSender {
            feeds,
            thread: Some(thread),
            echo,
        })
    }

    /// The links sent to (added with the track and payload type they negotiated).
    pub fn links(&mut self) -> &mut Feeds<SendCommand> {
        &mut self.feeds
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
        self.feeds.command(command);
    }

    /// The echo canceller's latest numbers, while it runs on a microphone.
    pub fn echo_stats(&self) -> Option<EchoStats> {
        *self.echo.borrow()
    }
}

impl Drop for AudioSender {
    fn drop(&mut self) {
        self.feeds.close();
        self.thread.take(); // Joins it.
    }
}

/// The send thread's own state.
struct Sending {
    encoder: OpusEncoder,
    /// The loss Opus's in-band FEC is set for, percent.
    expected_loss: u8,
    processor: AudioProcessor,
    echo: watch::Sender<Option<EchoStats>>,
    outlets: Vec<Outlet>,
}

impl Sending {
    fn run(
        &mut self,
        commands: &std_mpsc::Receiver<SendCommand>,
        control: &InputControl,
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
                Ok(SendCommand::AddLink(outlet)) => {
                    self.outlets.push(outlet);
                    continue;
                }
                Ok(SendCommand::RemoveLink(link)) => {
                    self.outlets.retain(|o| o.link != link);
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
            self.encode(&frame);
        }
    }

    /// Encodes a frame and hands it to every link.
    fn encode(&mut self, frame: &[f32]) {
        if self.outlets.is_empty() {
            return;
        }
        // Opus puts as much redundancy in each packet as the loss the peers report (the
        // worst link's) calls for.
        let loss = self
            .outlets
            .iter()
            .filter_map(|o| o.controls.loss.percent())
            .max();
        if let Some(percent) = loss.map(|p| p.clamp(MIN_EXPECTED_LOSS, MAX_EXPECTED_LOSS))
            && percent != self.expected_loss
        {
            self.expected_loss = percent;
            if let Err(err) = self.encoder.set_expected_loss_percent(percent) {
                debug!("Opus would not take {percent}% expected loss: {err}");
            }
        }
        match self.encoder.encode(frame) {
            Ok(packet) => {
                let encoded = Encoded {
                    data: Bytes::from(packet),
                    duration: FRAME_DURATION,
                };
                deliver(&mut self.outlets, &encoded, |counters| {
                    Counters::add(&counters.audio_packets_sent, 1);
                });
            }
            Err(err) => debug!("Opus encoding failed: {err}"),
        }
    }
}
