//! Receiving audio: track -> reader task -> jitter buffer -> `audio-playout` thread (Opus
//! decode, FEC, concealment) -> speaker or file. What a speaker plays is also handed to the
//! echo canceller on the send side, with when it will be heard.
//!
//! The playout thread keeps time: a speaker's writes block at the device's pace; without
//! one (a file, or nothing), it paces itself at one frame per 20 ms.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use confab_call_core::jitter::{JitterBuffer, Playout};
use confab_media::audio::{AudioSink, EchoTap, FRAME_SAMPLES, InputControl, OpusDecoder};
use confab_media::pacer::Pacer;
use tokio::sync::mpsc;
use tracing::warn;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use confab_media::thread::MediaThread;

use super::{Counters, Problem, spawn_thread};

type Sink = Box<dyn AudioSink>;

pub(crate) struct AudioReceiver {
    stop: Arc<AtomicBool>,
    thread: Option<MediaThread>,
    reader: tokio::task::JoinHandle<()>,
}

impl AudioReceiver {
    pub fn start(
        track: Arc<dyn TrackRemote>,
        sink: Option<Sink>,
        tap: Option<EchoTap>,
        level: Arc<InputControl>,
        counters: Arc<Counters>,
        problems: mpsc::UnboundedSender<Problem>,
    ) -> Result<AudioReceiver, crate::CallError> {
        let decoder = OpusDecoder::new()?;
        let jitter = Arc::new(Mutex::new(JitterBuffer::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (jitter, stop, counters) = (jitter.clone(), stop.clone(), counters.clone());
            spawn_thread("audio-playout", &problems.clone(), move || {
                let output = Output { sink, tap };
                playout_loop(
                    decoder, &jitter, output, &stop, &level, &counters, &problems,
                );
            })?
        };
        let reader = tokio::spawn(read_loop(track, jitter, counters));
        Ok(AudioReceiver {
            stop,
            thread: Some(thread),
            reader,
        })
    }
}

impl Drop for AudioReceiver {
    fn drop(&mut self) {
        self.reader.abort();
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take(); // Joins it.
    }
}

async fn read_loop(
    track: Arc<dyn TrackRemote>,
    jitter: Arc<Mutex<JitterBuffer>>,
    counters: Arc<Counters>,
) {
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                Counters::add(&counters.audio_packets_received, 1);
                let header = &packet.header;
                let mut buffer = jitter.lock().unwrap_or_else(PoisonError::into_inner);
                buffer.push(
                    header.sequence_number,
                    header.timestamp,
                    packet.payload.to_vec(),
                    Instant::now(),
                );
            }
            TrackRemoteEvent::OnEnded => return,
            _ => {}
        }
    }
}

/// Where decoded audio goes: the sink, and the echo canceller's tap when the sink is a
/// speaker.
struct Output {
    sink: Option<Sink>,
    tap: Option<EchoTap>,
}

fn playout_loop(
    mut decoder: OpusDecoder,
    jitter: &Mutex<JitterBuffer>,
    Output { mut sink, mut tap }: Output,
    stop: &AtomicBool,
    level: &InputControl,
    counters: &Counters,
    problems: &mpsc::UnboundedSender<Problem>,
) {
    let mut pacer = Pacer::new(50);
    let mut frame = [0.0f32; FRAME_SAMPLES];
    while !stop.load(Ordering::Relaxed) {
        if !sink.as_ref().is_some_and(|s| s.is_live()) {
            pacer.wait();
        }
        let (playout, delay_ms) = {
            let mut buffer = jitter.lock().unwrap_or_else(PoisonError::into_inner);
            let playout = buffer.pop(Instant::now());
            (playout, buffer.stats().buffered_ms)
        };
        counters
            .jitter_delay_ms
            .store(delay_ms as u32, Ordering::Relaxed);
        // A bad packet is concealed by the decoder itself: playback never stops.
        let _ = match playout {
            Playout::Packet(packet) => decoder.decode(&packet, &mut frame),
            Playout::Fec(next) => decoder.decode_fec(&next, &mut frame),
            Playout::Conceal => {
                Counters::add(&counters.audio_concealed, 1);
                decoder.conceal(&mut frame)
            }
            Playout::Silence => {
                frame.fill(0.0);
                Ok(())
            }
        };
        Counters::add(&counters.audio_frames_played, 1);
        level.process(&mut frame);
        let Some(output) = &mut sink else { continue };
        if let Err(err) = output.write(&frame) {
            warn!("audio output {} stopped: {err}", output.name());
            let _ = problems.send(Problem::Speaker(err.to_string()));
            sink = None;
            continue;
        }
        if let (Some(tap), Some(delay)) = (&mut tap, output.delay()) {
            tap.played(&frame, delay, Instant::now());
        }
    }
    // Dropping the sink completes a WAV file's header.
    drop(sink);
}
