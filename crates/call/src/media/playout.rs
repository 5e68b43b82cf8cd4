//! The call's audio playout: one `audio-playout` thread takes 20 ms from every link's
//! jitter buffer (Opus decode, FEC, concealment), mixes them, and plays the mix on the one
//! speaker (or writes it to a file). What the speaker plays is also handed to the echo
//! canceller on the send side, with when it will be heard: in a group call the canceller
//! needs the mix, since that is what the microphone hears.
//!
//! The thread keeps time: a speaker's writes block at the device's pace; without one (a
//! file, or nothing), it paces itself at one frame per 20 ms.

use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use confab_call_core::LinkId;
use confab_call_core::jitter::{JitterBuffer, Playout};
use confab_call_core::speaker::SpeakerDetector;
use confab_media::audio::{AudioSink, EchoTap, FRAME_SAMPLES, InputControl, OpusDecoder};
use confab_media::pacer::Pacer;
use tokio::sync::mpsc;
use tracing::warn;

use confab_media::thread::MediaThread;

use super::{Counters, Problem, spawn_thread};

type Sink = Box<dyn AudioSink>;

/// One link's audio, as the playout takes it.
pub(crate) struct PlayoutInput {
    pub jitter: Arc<Mutex<JitterBuffer>>,
    pub decoder: OpusDecoder,
    pub counters: Arc<Counters>,
}

enum PlayoutCommand {
    Add(LinkId, Box<PlayoutInput>),
    Remove(LinkId),
}

pub(crate) struct AudioPlayout {
    commands: Option<std_mpsc::Sender<PlayoutCommand>>,
    thread: Option<MediaThread>,
}

impl AudioPlayout {
    /// Starts playing on `sink` (`None`: decode and count, play nothing). `tap` gets what
    /// a live speaker plays; `level` measures the mix; `speakers` hears who speaks, when
    /// that changes.
    pub fn start(
        (sink, tap): (Option<Sink>, Option<EchoTap>),
        level: Arc<InputControl>,
        speakers: mpsc::UnboundedSender<Option<LinkId>>,
        problems: mpsc::UnboundedSender<Problem>,
    ) -> Result<AudioPlayout, crate::CallError> {
        let (commands, command_rx) = std_mpsc::channel();
        let thread = spawn_thread("audio-playout", &problems.clone(), move || {
            let mut mixer = Mixer {
                inputs: Vec::new(),
                sink,
                tap,
                speakers,
                detector: SpeakerDetector::new(),
            };
            mixer.run(&command_rx, &level, &problems);
        })?;
        Ok(AudioPlayout {
            commands: Some(commands),
            thread: Some(thread),
        })
    }

    pub fn add_link(&self, link: LinkId, input: PlayoutInput) {
        self.command(PlayoutCommand::Add(link, Box::new(input)));
    }

    pub fn remove_link(&self, link: LinkId) {
        self.command(PlayoutCommand::Remove(link));
    }

    fn command(&self, command: PlayoutCommand) {
        if let Some(commands) = &self.commands {
            let _ = commands.send(command);
        }
    }
}

impl Drop for AudioPlayout {
    fn drop(&mut self) {
        // Closing the channel ends the loop at its next frame.
        self.commands.take();
        self.thread.take(); // Joins it.
    }
}

struct Mixer {
    inputs: Vec<(LinkId, Box<PlayoutInput>)>,
    sink: Option<Sink>,
    tap: Option<EchoTap>,
    speakers: mpsc::UnboundedSender<Option<LinkId>>,
    detector: SpeakerDetector,
}

impl Mixer {
    fn run(
        &mut self,
        commands: &std_mpsc::Receiver<PlayoutCommand>,
        level: &InputControl,
        problems: &mpsc::UnboundedSender<Problem>,
    ) {
        let mut pacer = Pacer::new(50);
        let mut mix = [0.0f32; FRAME_SAMPLES];
        let mut frame = [0.0f32; FRAME_SAMPLES];
        loop {
            loop {
                match commands.try_recv() {
                    Ok(PlayoutCommand::Add(link, input)) => self.inputs.push((link, input)),
                    Ok(PlayoutCommand::Remove(link)) => {
                        self.inputs.retain(|(l, _)| *l != link);
                        if let Some(change) = self.detector.remove(link) {
                            let _ = self.speakers.send(change);
                        }
                    }
                    Err(std_mpsc::TryRecvError::Empty) => break,
                    Err(std_mpsc::TryRecvError::Disconnected) => {
                        // Dropping the sink completes a WAV file's header.
                        self.sink.take();
                        return;
                    }
                }
            }
            if !self.sink.as_ref().is_some_and(|s| s.is_live()) {
                pacer.wait();
            }
            mix.fill(0.0);
            for (link, input) in &mut self.inputs {
                take_frame(input, &mut frame);
                let mut power = 0.0;
                for (m, s) in mix.iter_mut().zip(frame.iter()) {
                    *m += s;
                    power += s * s;
                }
                self.detector
                    .frame(*link, (power / FRAME_SAMPLES as f32).sqrt());
            }
            if let Some(change) = self.detector.tick() {
                let _ = self.speakers.send(change);
            }
            for sample in &mut mix {
                *sample = sample.clamp(-1.0, 1.0);
            }
            level.process(&mut mix);
            let Some(output) = &mut self.sink else {
                continue;
            };
            if let Err(err) = output.write(&mix) {
                warn!("audio output {} stopped: {err}", output.name());
                let _ = problems.send(Problem::Speaker(err.to_string()));
                self.sink = None;
                continue;
            }
            if let (Some(tap), Some(delay)) = (&mut self.tap, output.delay()) {
                tap.played(&mix, delay, Instant::now());
            }
        }
    }
}

/// The link's next 20 ms, decoded (a bad packet is concealed by the decoder itself:
/// playback never stops).
fn take_frame(input: &mut PlayoutInput, frame: &mut [f32; FRAME_SAMPLES]) {
    let counters = &input.counters;
    let (playout, delay_ms) = {
        let mut buffer = input.jitter.lock().unwrap_or_else(PoisonError::into_inner);
        let playout = buffer.pop(Instant::now());
        (playout, buffer.stats().buffered_ms)
    };
    counters
        .jitter_delay_ms
        .store(delay_ms as u32, Ordering::Relaxed);
    let decoder = &mut input.decoder;
    let _ = match playout {
        Playout::Packet(packet) => decoder.decode(&packet, frame),
        Playout::Fec(next) => decoder.decode_fec(&next, frame),
        Playout::Conceal => {
            Counters::add(&counters.audio_concealed, 1);
            decoder.conceal(frame)
        }
        Playout::Silence => {
            frame.fill(0.0);
            Ok(())
        }
    };
    Counters::add(&counters.audio_frames_played, 1);
}
