//! Sending video: capture slot -> one `video-encode` thread (H.264) for the whole call ->
//! a writer task per link -> that link's track. One encode, N-1 sends.
//!
//! The engine owns the capture (the camera) and hands the encoder a slot to read from, so
//! turning the camera off is dropping the capture: its slot closes and the encoder idles.
//! Keyframe requests (PLI/FIR) and the congestion controller's target bitrate reach the
//! encoder from each link's interceptor chain through the link's `EncoderControl`: any
//! link's request makes a keyframe, and the weakest link's estimate is the target.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use confab_call_core::LinkId;
use confab_call_core::budget::FrameBudget;
use confab_call_core::resolution::ResolutionLadder;
use confab_media::video::{FrameSlot, H264Encoder, H264EncoderConfig, I420Frame};
use tokio::sync::mpsc;
use tracing::warn;

use confab_media::thread::MediaThread;

use super::fanout::{Feeds, LinkCommands, Outlet, deliver};
use super::{Counters, Encoded, next_message, spawn_thread};
use crate::Problem;

/// Encoded frames waiting for a link's writer. Short: a stalled network must not build a
/// video backlog (the capture slot keeps only the newest frame).
const ENCODED_QUEUE: usize = 4;

/// What a video sender sends: the camera, or a shared screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VideoKind {
    Camera,
    /// Kept at its size when the estimate drops (text must stay legible: the frame budget
    /// sends fewer frames instead), and given [`SCREEN_SHARE`] of a link's estimate when
    /// it goes next to the camera.
    Screen,
}

/// A shared screen's part of a link's video estimate when the camera is sent too.
pub(crate) const SCREEN_SHARE: f32 = 0.75;

/// What the engine tells the encoder thread.
pub(crate) enum VideoCommand {
    /// Encode from this slot from now on; `None` stops sending video.
    Source(Option<Arc<FrameSlot>>),
    /// The camera's part of each link's estimate (all of it but while a screen is shared
    /// beside it).
    Share(f32),
    AddLink(Outlet),
    RemoveLink(LinkId),
}

impl LinkCommands for VideoCommand {
    fn add(outlet: Outlet) -> Self {
        VideoCommand::AddLink(outlet)
    }

    fn remove(link: LinkId) -> Self {
        VideoCommand::RemoveLink(link)
    }
}

/// The call's video encoder and the links it feeds.
pub(crate) struct VideoSender {
    feeds: Feeds<VideoCommand>,
    thread: Option<MediaThread>,
}

impl VideoSender {
    pub fn start(
        config: H264EncoderConfig,
        kind: VideoKind,
        problems: &mpsc::UnboundedSender<Problem>,
    ) -> Result<VideoSender, crate::CallError> {
        let encoder = H264Encoder::new(config)?;
        let (feeds, command_rx) = Feeds::new(ENCODED_QUEUE);
        let name = match kind {
            VideoKind::Camera => "video-encode",
            VideoKind::Screen => "screen-encode",
        };
        let thread = spawn_thread(name, problems, move || {
            encode_loop(encoder, (config.fps, kind), &command_rx);
        })?;
        Ok(VideoSender {
            feeds,
            thread: Some(thread),
        })
    }

    /// Encodes frames from `slot` from now on; `None` stops sending video.
    pub fn set_source(&self, slot: Option<Arc<FrameSlot>>) {
        self.feeds.command(VideoCommand::Source(slot));
    }

    /// The camera's part of each link's estimate.
    pub fn set_share(&self, share: f32) {
        self.feeds.command(VideoCommand::Share(share));
    }

    /// The links sent to (added with the track and payload type they negotiated).
    pub fn links(&mut self) -> &mut Feeds<VideoCommand> {
        &mut self.feeds
    }
}

impl Drop for VideoSender {
    fn drop(&mut self) {
        self.feeds.close();
        self.thread.take(); // Joins it.
    }
}

/// Keyframes asked for by a peer are at least this far apart.
const MIN_KEYFRAME_GAP: Duration = Duration::from_millis(500);

/// How long the encoder waits for a frame before checking its commands again.
const FRAME_WAIT: Duration = Duration::from_millis(50);

fn encode_loop(
    mut encoder: H264Encoder,
    (fps, kind): (u32, VideoKind),
    commands: &std_mpsc::Receiver<VideoCommand>,
) {
    let mut source: Option<Arc<FrameSlot>> = None;
    let mut share = 1.0;
    let mut outlets: Vec<Outlet> = Vec::new();
    let mut last_capture: Option<Instant> = None;
    let mut bitrate = encoder.config().bitrate_bps;
    let mut last_keyframe: Option<Instant> = None;
    let mut budget = FrameBudget::default();
    let mut ladder = ResolutionLadder::default();
    // Reused for the smaller pictures a slow path gets.
    let black = || I420Frame::black(2, 2);
    let (Ok(mut half), Ok(mut quarter)) = (black(), black()) else {
        return; // Cannot happen: 2x2 is a valid size.
    };
    loop {
        // New instructions first; without a source, wait for one.
        match next_message(commands, source.is_some()) {
            Ok(VideoCommand::Source(new_source)) => {
                source = new_source;
                last_capture = None;
                if source.is_none() {
                    // Nothing goes out: the stats say so until frames flow again.
                    for outlet in &outlets {
                        Counters::clear_size(size_out(&outlet.counters, kind));
                    }
                }
                // The receivers need a fresh picture to start from.
                encoder.request_keyframe();
                continue;
            }
            Ok(VideoCommand::Share(new_share)) => {
                share = new_share;
                continue;
            }
            Ok(VideoCommand::AddLink(outlet)) => {
                outlets.push(outlet);
                // The new receiver needs a picture to start from.
                encoder.request_keyframe();
                continue;
            }
            Ok(VideoCommand::RemoveLink(link)) => {
                outlets.retain(|o| o.link != link);
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
        if outlets.is_empty() {
            continue;
        }
        // The weakest link's congestion estimate (each chain caps it at the configured
        // maximum), or the current rate until there is one.
        let target = outlets
            .iter()
            .filter_map(|o| {
                let part = match kind {
                    VideoKind::Camera => share,
                    VideoKind::Screen if o.screen_track => SCREEN_SHARE,
                    VideoKind::Screen => 1.0,
                };
                let estimate = o.controls.encoder.target_bitrate()?;
                Some((estimate as f32 * part) as u32)
            })
            .min()
            .unwrap_or(bitrate);
        let now = Instant::now();
        if !budget.allows(now, target) {
            continue;
        }
        // Requests that come sooner after a keyframe wait for the gap: a keyframe still on
        // its way would otherwise be chased by more, each bigger than what the path carries.
        let keyframe_allowed = last_keyframe.is_none_or(|at| at.elapsed() >= MIN_KEYFRAME_GAP);
        if keyframe_allowed {
            let mut wanted = false;
            for outlet in &mut outlets {
                wanted |= outlet.keyframe_control().take_keyframe_request();
                wanted |= std::mem::take(&mut outlet.missed);
            }
            if wanted {
                encoder.request_keyframe();
            }
        }
        if target != bitrate {
            if let Err(err) = encoder.set_bitrate(target) {
                warn!("cannot change the video bitrate: {err}");
            }
            // Either way, do not retry the same target every frame.
            bitrate = target;
        }
        // Under a low estimate, a smaller picture (the encoder restarts at a new size with
        // a keyframe).
        let steps = match kind {
            VideoKind::Camera => ladder.update(now, target, (frame.width(), frame.height()), fps),
            VideoKind::Screen => 0,
        };
        let halved = match steps {
            0 => Ok(&*frame),
            1 => frame.halve_into(&mut half).map(|()| &half),
            _ => frame
                .halve_into(&mut half)
                .and_then(|()| half.halve_into(&mut quarter))
                .map(|()| &quarter),
        };
        let picture = match halved {
            Ok(picture) => picture,
            Err(err) => {
                warn!("cannot send a smaller picture: {err}");
                &*frame
            }
        };
        let encoded = match encoder.encode(picture) {
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
        let (bytes, keyframe) = (encoded.data.len() as u64, encoded.keyframe);
        if keyframe {
            last_keyframe = Some(Instant::now());
            tracing::debug!(?kind, bytes, target, "keyframe");
        }
        let packet = Encoded {
            data: Bytes::from(encoded.data),
            duration,
        };
        deliver(&mut outlets, &packet, |counters| {
            if kind == VideoKind::Screen {
                Counters::add(&counters.screen_frames_sent, 1);
                Counters::add(&counters.screen_bytes_sent, bytes);
            } else {
                Counters::add(&counters.video_frames_sent, 1);
                Counters::add(&counters.video_bytes_sent, bytes);
                if keyframe {
                    Counters::add(&counters.video_keyframes_sent, 1);
                }
            }
            Counters::set_size(size_out(counters, kind), picture.width(), picture.height());
        });
    }
}

/// The counter of the size a sender sends at.
fn size_out(counters: &Counters, kind: VideoKind) -> &std::sync::atomic::AtomicU64 {
    match kind {
        VideoKind::Camera => &counters.video_size_out,
        VideoKind::Screen => &counters.screen_size_out,
    }
}
