//! Receiving audio from one link: track -> reader task -> that link's jitter buffer. The
//! call's one playout thread ([`super::playout`]) takes 20 ms from every link's buffer,
//! decodes and mixes them.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use confab_call_core::jitter::JitterBuffer;
use confab_media::audio::OpusDecoder;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::Counters;
use super::playout::PlayoutInput;

pub(crate) struct AudioReceiver {
    reader: tokio::task::JoinHandle<()>,
}

impl AudioReceiver {
    /// Starts reading `track`; the returned input goes to the call's playout.
    pub fn start(
        track: Arc<dyn TrackRemote>,
        counters: Arc<Counters>,
    ) -> Result<(AudioReceiver, PlayoutInput), crate::CallError> {
        let decoder = OpusDecoder::new()?;
        let jitter = Arc::new(Mutex::new(JitterBuffer::new()));
        let reader = tokio::spawn(read_loop(track, jitter.clone(), counters.clone()));
        let input = PlayoutInput {
            jitter,
            decoder,
            counters,
        };
        Ok((AudioReceiver { reader }, input))
    }
}

impl Drop for AudioReceiver {
    fn drop(&mut self) {
        self.reader.abort();
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
