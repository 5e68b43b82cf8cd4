//! Sending video: capture slot -> `video-encode` thread (H.264) -> writer task -> track.
//!
//! The engine owns the capture (the camera) and hands the encoder a slot to read from, so
//! turning the camera off is dropping the capture: its slot closes and the encoder idles.
//! Keyframe requests (PLI/FIR) and the congestion controller's target bitrate reach the
//! encoder from the interceptor chain through the link's `EncoderControl`.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use confab_call_core::budget::FrameBudget;
use confab_media::video::{FrameSlot, H264Encoder, H264EncoderConfig};
use tokio::sync::mpsc;
use tracing::warn;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

use confab_media::thread::MediaThread;

use super::{Counters, Encoded, next_message, spawn_thread, write_samples};
use crate::Problem;
use crate::control::{Controls, EncoderControl};

/// Encoded frames waiting for the writer. Short: a stalled network must not build a video
/// backlog (the encoder blocks, the capture slot keeps only the newest frame).
const ENCODED_QUEUE: usize = 4;

pub(crate) struct VideoSender {
    sources: Option<std_mpsc::Sender<Option<Arc<FrameSlot>>>>,
    thread: Option<MediaThread>,
    writer: tokio::task::JoinHandle<()>,
}

impl VideoSender {
    /// Starts encoding into `track` with payload type `payload_type` (negotiated).
    pub fn start(
        track: Arc<TrackLocalStaticSample>,
        payload_type: u8,
        config: H264EncoderConfig,
        counters: Arc<Counters>,
        controls: Arc<Controls>,
        problems: &mpsc::UnboundedSender<Problem>,
    ) -> Result<VideoSender, crate::CallError> {
        let encoder = H264Encoder::new(config)?;
        let (sources, source_rx) = std_mpsc::channel();
        let (encoded_tx, encoded_rx) = mpsc::channel(ENCODED_QUEUE);
        let thread = {
            let counters = counters.clone();
            spawn_thread("video-encode", problems, move || {
                encode_loop(
                    encoder,
                    config.fps,
                    source_rx,
                    encoded_tx,
                    &counters,
                    &controls.encoder,
                );
            })?
        };
        let writer = tokio::spawn(write_samples(track, payload_type, encoded_rx));
        Ok(VideoSender {
            sources: Some(sources),
            thread: Some(thread),
            writer,
        })
    }

    /// Encodes frames from `slot` from now on; `None` stops sending video.
    pub fn set_source(&self, slot: Option<Arc<FrameSlot>>) {
        if let Some(sources) = &self.sources {
            let _ = sources.send(slot);
        }
    }
}

impl Drop for VideoSender {
    fn drop(&mut self) {
        // Closing the source channel ends the encoder loop; aborting the writer drops the
        // encoded queue, which unblocks an encoder waiting on it.
        self.sources.take();
        self.writer.abort();
        self.thread.take(); // Joins it.
    }
}

/// Keyframes asked for by the peer are at least this far apart.
const MIN_KEYFRAME_GAP: Duration = Duration::from_millis(500);

/// How long the encoder waits for a frame before checking its commands again.
const FRAME_WAIT: Duration = Duration::from_millis(50);

fn encode_loop(
    mut encoder: H264Encoder,
    fps: u32,
    sources: std_mpsc::Receiver<Option<Arc<FrameSlot>>>,
    out: mpsc::Sender<Encoded>,
    counters: &Counters,
    control: &EncoderControl,
) {
    let mut source: Option<Arc<FrameSlot>> = None;
    let mut last_capture: Option<Instant> = None;
    let mut bitrate = encoder.config().bitrate_bps;
    let mut last_keyframe: Option<Instant> = None;
    let mut budget = FrameBudget::default();
    loop {
        // New instructions first; without a source, wait for one.
        let command = next_message(&sources, source.is_some());
        match command {
            Ok(new_source) => {
                source = new_source;
                last_capture = None;
                if source.is_none() {
                    // Nothing goes out: the stats say so until frames flow again.
                    Counters::clear_size(&counters.video_size_out);
                }
                // The receiver needs a fresh picture to start from.
                encoder.request_keyframe();
                continue;
            }
            Err(true) => return,
            Err(false) => {}
        }
        let Some(slot) = &source else { continue };
        let Some(frame) = slot.wait_take(FRAME_WAIT) else {
            if slot.is_closed() {
                source = None;
            }
            continue;
        };
        // The congestion controller's estimate (the chain caps it at the configured
        // maximum), or the starting rate until there is one.
        let target = control.target_bitrate().unwrap_or(bitrate);
        let now = Instant::now();
        if !budget.allows(now, target) {
            continue;
        }
        // Requests that come sooner after a keyframe wait for the gap: a keyframe still on
        // its way would otherwise be chased by more, each bigger than what the path carries.
        let keyframe_allowed = last_keyframe.is_none_or(|at| at.elapsed() >= MIN_KEYFRAME_GAP);
        if keyframe_allowed && control.take_keyframe_request() {
            encoder.request_keyframe();
        }
        if target != bitrate {
            if let Err(err) = encoder.set_bitrate(target) {
                warn!("cannot change the video bitrate: {err}");
            }
            // Either way, do not retry the same target every frame.
            bitrate = target;
        }
        let encoded = match encoder.encode(&frame) {
            Ok(encoded) => encoded,
            Err(err) => {
                warn!("video encoding failed: {err}");
                continue;
            }
        };
        let interval = Duration::from_secs(1) / fps.max(1);
        let duration = last_capture
            .map(|previous| frame.captured_at.saturating_duration_since(previous))
            .unwrap_or(interval)
            .clamp(Duration::from_millis(1), Duration::from_millis(500));
        last_capture = Some(frame.captured_at);
        budget.spend(now, target, encoded.data.len());
        Counters::add(&counters.video_frames_sent, 1);
        Counters::add(&counters.video_bytes_sent, encoded.data.len() as u64);
        if encoded.keyframe {
            last_keyframe = Some(Instant::now());
            Counters::add(&counters.video_keyframes_sent, 1);
        }
        Counters::set_size(&counters.video_size_out, frame.width(), frame.height());
        let packet = Encoded {
            data: Bytes::from(encoded.data),
            duration,
        };
        if out.blocking_send(packet).is_err() {
            return;
        }
    }
}
