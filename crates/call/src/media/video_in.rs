//! Receiving video: track -> reader task (depacketize, ask for keyframes) -> `video-decode`
//! thread -> latest-frame slot (+ a wake-up for the UI), and optionally a recording.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use confab_media::slot::LatestSlot;
use confab_media::video::{CodecError, H264Decoder, I420Frame, PatternStamp, pattern_psnr};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use tracing::{debug, warn};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use confab_media::thread::MediaThread;

use super::{Counters, Problem, spawn_thread};
use crate::control::Controls;
use confab_call_core::h264_rtp::{AccessUnit, H264Depacketizer, Output};
use confab_protocol::PeerId;

/// A decoded picture for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteVideoFrame {
    pub width: u32,
    pub height: u32,
    /// RGBA, rows tightly packed.
    pub rgba: Vec<u8>,
    /// What a received test pattern says about itself.
    pub stamp: Option<PatternStamp>,
    /// Who sent it (in a group call, frames from every member share the slot).
    pub peer: PeerId,
}

/// Access units waiting for the decoder; when full, the reader drops frames and asks for a
/// keyframe instead of queueing.
const DECODE_QUEUE: usize = 8;

/// One received test-pattern frame in this many is scored against the pattern (once a
/// second at 30 fps: rendering the reference costs about a frame's capture).
const PSNR_EVERY: u32 = 30;
/// How often the reader gives up on gaps and repeats keyframe requests.
const TICK: Duration = Duration::from_millis(20);
/// Keyframe requests are repeated at most this often while the decoder waits for one.
const PLI_INTERVAL: Duration = Duration::from_millis(300);
/// Frames published to the UI reuse their buffers once the UI is done with them.
const FRAME_POOL: usize = 3;

enum DecodeInput {
    Unit(AccessUnit),
    Lost,
    /// The receiver is being dropped: end now.
    Stop,
}

/// Where decoded video goes.
pub(crate) struct VideoOutput {
    pub frames: Arc<LatestSlot<Arc<RemoteVideoFrame>>>,
    /// Who sends this video.
    pub peer: PeerId,
    pub wake: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Convert to RGBA for display (off for headless peers, which only measure).
    pub render: bool,
    pub record: Option<PathBuf>,
}

pub(crate) struct VideoReceiver {
    thread: Option<MediaThread>,
    reader: tokio::task::JoinHandle<()>,
    /// To tell the decoder to stop: the reader's own sender lives on until the runtime
    /// gets round to dropping the aborted task, which it cannot do while every worker
    /// is inside a receiver's drop (two calls ending at once on two workers, or any call
    /// on one).
    units: std_mpsc::SyncSender<DecodeInput>,
}

impl VideoReceiver {
    pub fn start(
        track: Arc<dyn TrackRemote>,
        output: VideoOutput,
        counters: Arc<Counters>,
        controls: Arc<Controls>,
        problems: tokio::sync::mpsc::UnboundedSender<Problem>,
    ) -> Result<VideoReceiver, crate::CallError> {
        let decoder = H264Decoder::new()?;
        let recorder = match &output.record {
            Some(path) => Some(BufWriter::new(File::create(path).map_err(|err| {
                crate::CallError::Record {
                    path: path.clone(),
                    reason: err.to_string(),
                }
            })?)),
            None => None,
        };
        let (units, unit_rx) = std_mpsc::sync_channel(DECODE_QUEUE);
        let needs_keyframe = Arc::new(AtomicBool::new(true));
        let thread = {
            let (needs_keyframe, counters) = (needs_keyframe.clone(), counters.clone());
            spawn_thread("video-decode", &problems.clone(), move || {
                decode_loop(
                    decoder,
                    unit_rx,
                    output,
                    recorder,
                    &needs_keyframe,
                    &counters,
                    &problems,
                );
            })?
        };
        let reader = tokio::spawn(read_loop(
            track,
            units.clone(),
            needs_keyframe,
            counters,
            controls,
        ));
        Ok(VideoReceiver {
            thread: Some(thread),
            reader,
            units,
        })
    }
}

impl Drop for VideoReceiver {
    fn drop(&mut self) {
        self.reader.abort();
        // The decoder drains at most DECODE_QUEUE units before it sees this; an error
        // means it has already ended.
        let _ = self.units.send(DecodeInput::Stop);
        self.thread.take(); // Joins it.
    }
}

async fn read_loop(
    track: Arc<dyn TrackRemote>,
    units: std_mpsc::SyncSender<DecodeInput>,
    needs_keyframe: Arc<AtomicBool>,
    counters: Arc<Counters>,
    controls: Arc<Controls>,
) {
    let mut depacketizer = H264Depacketizer::new();
    let mut tick = tokio::time::interval(TICK);
    let mut last_pli: Option<Instant> = None;
    let media_ssrc = track.ssrcs().await.first().copied().unwrap_or_default();
    loop {
        let outputs = tokio::select! {
            event = track.poll() => match event {
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                    let header = &packet.header;
                    depacketizer.push(header.sequence_number, header.timestamp, header.marker, &packet.payload, Instant::now())
                }
                Some(TrackRemoteEvent::OnEnded) | None => return,
                Some(_) => continue,
            },
            _ = tick.tick() => {
                let wants = needs_keyframe.load(Ordering::Relaxed);
                if wants && last_pli.is_none_or(|at| at.elapsed() >= PLI_INTERVAL) {
                    last_pli = Some(Instant::now());
                    let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc };
                    match track.write_rtcp(vec![Box::new(pli)]).await {
                        Ok(()) => Counters::add(&counters.plis_sent, 1),
                        Err(err) => debug!("cannot send PLI: {err}"),
                    }
                }
                depacketizer.set_rtt(controls.round_trip.get());
                depacketizer.poll(Instant::now())
            }
        };
        for output in outputs {
            let input = match output {
                Output::Frame(unit) => {
                    Counters::add(&counters.video_frames_received, 1);
                    DecodeInput::Unit(unit)
                }
                Output::Lost => {
                    Counters::add(&counters.video_losses, 1);
                    needs_keyframe.store(true, Ordering::Relaxed);
                    DecodeInput::Lost
                }
            };
            match units.try_send(input) {
                Ok(()) => {}
                Err(std_mpsc::TrySendError::Full(_)) => {
                    // The decoder is behind: skip to the next keyframe.
                    needs_keyframe.store(true, Ordering::Relaxed);
                    let _ = units.try_send(DecodeInput::Lost);
                }
                Err(std_mpsc::TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

fn decode_loop(
    mut decoder: H264Decoder,
    units: std_mpsc::Receiver<DecodeInput>,
    output: VideoOutput,
    mut recorder: Option<BufWriter<File>>,
    needs_keyframe: &AtomicBool,
    counters: &Counters,
    problems: &tokio::sync::mpsc::UnboundedSender<Problem>,
) {
    let mut pool: Vec<Arc<RemoteVideoFrame>> = Vec::new();
    #[allow(clippy::expect_used, reason = "2x2 is a valid size")]
    let mut i420 = I420Frame::black(2, 2).expect("2x2 is a valid size");
    while let Ok(input) = units.recv() {
        let unit = match input {
            DecodeInput::Unit(unit) => unit,
            DecodeInput::Lost => {
                decoder.expect_keyframe();
                continue;
            }
            DecodeInput::Stop => break,
        };
        let picture = match decoder.decode(&unit.data) {
            Ok(Some(picture)) => picture,
            Ok(None) => continue,
            Err(CodecError::NeedKeyframe) => {
                needs_keyframe.store(true, Ordering::Relaxed);
                continue;
            }
            Err(err) => {
                debug!("video decode error: {err}");
                Counters::add(&counters.video_decode_errors, 1);
                needs_keyframe.store(true, Ordering::Relaxed);
                continue;
            }
        };
        needs_keyframe.store(false, Ordering::Relaxed);
        let now = Instant::now();
        if let Ok(mut first) = counters.first_frame_at.lock() {
            first.get_or_insert(now);
        }
        Counters::add(&counters.video_frames_decoded, 1);
        Counters::set_size(&counters.video_size_in, picture.width(), picture.height());
        if let Some(file) = &mut recorder
            && let Err(err) = file.write_all(&unit.data)
        {
            warn!("recording video failed: {err}");
            let _ = problems.send(Problem::Recording(err.to_string()));
            recorder = None;
        }
        let stamp = picture.stamp();
        if let Some(stamp) = stamp {
            counters
                .last_stamp_frame
                .store(u64::from(stamp.frame_number), Ordering::Relaxed);
            if let Ok(mut latency) = counters.latency.lock() {
                latency.record(stamp.capture_time_us);
            }
            if stamp.frame_number.is_multiple_of(PSNR_EVERY) {
                picture.copy_to(&mut i420);
                if let Some(db) = pattern_psnr(&i420, stamp) {
                    counters.add_pattern_psnr(db);
                }
            }
        }
        if output.render {
            let mut frame = reusable(&mut pool, &output.peer);
            #[allow(clippy::expect_used, reason = "the pool hands out frames nobody holds")]
            let slot = Arc::get_mut(&mut frame).expect("a pooled frame nobody else holds");
            slot.width = picture.width();
            slot.height = picture.height();
            slot.stamp = stamp;
            picture.write_rgba(&mut slot.rgba);
            output.frames.publish(frame.clone());
            pool.push(frame);
            if let Some(wake) = &output.wake {
                wake();
            }
        }
    }
    if let Some(mut file) = recorder {
        let _ = file.flush();
    }
    // The slot belongs to the engine and outlives the call: leave it open for the next one,
    // but do not let that call start with this one's last picture.
    output.frames.take();
}

/// A frame buffer to fill: one from the pool nobody else holds any more, or a new one.
fn reusable(pool: &mut Vec<Arc<RemoteVideoFrame>>, peer: &PeerId) -> Arc<RemoteVideoFrame> {
    if let Some(free) = pool.iter().position(|f| Arc::strong_count(f) == 1) {
        return pool.swap_remove(free);
    }
    if pool.len() >= FRAME_POOL {
        pool.remove(0);
    }
    Arc::new(RemoteVideoFrame {
        width: 0,
        height: 0,
        rgba: Vec::new(),
        stamp: None,
        peer: peer.clone(),
    })
}
