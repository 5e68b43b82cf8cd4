//! Call statistics: a snapshot every second, and a summary when the call ends.
//!
//! The transport side (bytes, RTT, loss, candidate types, the congestion controller's
//! target) comes from webrtc-rs's stats report; frames, sizes, keyframe requests and
//! latency come from the engine's own media counters. webrtc-rs computes no RTT from RTCP
//! receiver reports, so the RTT is the ICE consent round trip of the selected pair.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use webrtc::peer_connection::{PeerConnection, RTCStatsReport, RTCStatsReportEntry, StatsSelector};

use crate::media::Counters;
use confab_call_core::machine::CallState;
use confab_media::audio::EchoStats;
use confab_protocol::HangupReason;
use confab_protocol::safety::SafetyCode;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

/// One video direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct VideoFlow {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

/// A snapshot, once a second during a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallStats {
    pub state: String,
    /// Whose link this is (in a group call there is one per member).
    pub peer_name: Option<String>,
    pub connected_secs: Option<f64>,
    /// The selected ICE candidate pair's round trip (its connectivity checks).
    pub rtt_ms: Option<f64>,
    /// The round trip the peer's RTCP reception reports measure: what paces
    /// retransmissions and the depacketizer's wait for them.
    pub rtcp_rtt_ms: Option<f64>,
    pub bitrate_out_bps: u64,
    pub bitrate_in_bps: u64,
    /// The congestion controller's estimate of what the path carries.
    pub target_bitrate_bps: Option<u32>,
    /// Of the packets the peer sent us.
    pub packet_loss_percent: f64,
    /// What we send; `None` while no video goes out (camera off, or none), and in the
    /// first snapshot, which has no rate yet.
    pub video_out: Option<VideoFlow>,
    pub video_in: Option<VideoFlow>,
    /// A shared screen, ours and the peer's.
    pub screen_out: Option<VideoFlow>,
    pub screen_in: Option<VideoFlow>,
    pub jitter_buffer_ms: u32,
    /// Our side of the selected candidate pair: host, srflx, prflx or relay.
    pub local_candidate: Option<String>,
    /// The peer's side of it (prflx when the peer's checks taught us the address).
    pub remote_candidate: Option<String>,
    /// Capture-to-decode latency of the frames decoded since the last snapshot, when the
    /// peer sends the test pattern.
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    /// The echo canceller's numbers, while it cleans a microphone.
    pub echo: Option<EchoReport>,
    /// The echo doctor's verdict: the peer probably hears their own voice come back from
    /// our speaker (the canceller cannot keep up, or it is off).
    pub peer_hears_echo: bool,
    /// ICE restarts this side started (the network changed, or the connection was down).
    pub ice_restarts: u32,
}

/// What the echo canceller says about our speaker's echo in our microphone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EchoReport {
    /// How much echo it removes (echo return loss enhancement), dB.
    pub erle_db: Option<f64>,
    /// How likely the peer still hears their voice from our side, 0 to 1 (recent maximum).
    pub residual_echo_likelihood: Option<f64>,
    /// The speaker-to-microphone delay it found, and the one the devices' timestamps gave.
    pub delay_ms: Option<i32>,
    pub reported_delay_ms: i32,
    /// How far our speaker's clock runs ahead of our microphone's, parts per million.
    pub drift_ppm: Option<f64>,
}

impl From<EchoStats> for EchoReport {
    fn from(stats: EchoStats) -> EchoReport {
        EchoReport {
            erle_db: stats.erle_db,
            residual_echo_likelihood: stats.residual_echo_likelihood,
            delay_ms: stats.delay_ms,
            reported_delay_ms: stats.reported_delay_ms,
            drift_ppm: stats.drift_ppm,
        }
    }
}

/// The totals of a finished call.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallSummary {
    pub peer_name: Option<String>,
    /// Serialized as in the protocol: declined, busy, cancelled, ended, timeout or failed.
    pub end_reason: Option<HangupReason>,
    pub end_description: Option<String>,
    /// From starting the call (sending the offer, or accepting) to connected.
    pub connect_ms: Option<f64>,
    /// From starting the call to the first decoded remote frame.
    pub first_frame_ms: Option<f64>,
    pub connected_secs: Option<f64>,
    pub video_frames_sent: u64,
    /// H.264 bytes sent on this link (what the encoder produced for it).
    pub video_bytes_sent: u64,
    pub video_keyframes_sent: u64,
    pub video_frames_received: u64,
    pub video_frames_decoded: u64,
    /// The size being sent when the call ended (`None`: no video was going out).
    pub video_size_out: Option<(u32, u32)>,
    pub video_size_in: Option<(u32, u32)>,
    pub video_losses: u64,
    pub plis_sent: u64,
    pub keyframe_requests_received: u64,
    /// Retransmissions asked for but not sent: one was already on its way, or the peer
    /// had given up on the packet.
    pub retransmissions_held_back: u64,
    pub audio_packets_sent: u64,
    pub audio_packets_received: u64,
    pub audio_concealed: u64,
    pub chats_sent: u64,
    pub chats_received: u64,
    /// ICE restarts this side started.
    pub ice_restarts: u32,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_samples: usize,
    /// The last test-pattern frame number seen.
    pub last_stamp_frame: Option<u64>,
    /// A shared screen: our frames sent, the peer's decoded, and the size it came at.
    pub screen_frames_sent: u64,
    pub screen_bytes_sent: u64,
    pub screen_frames_decoded: u64,
    pub screen_size_in: Option<(u32, u32)>,
    /// Picture quality of a received test pattern: the mean luma PSNR, in dB, of one frame
    /// a second against the pattern it carries (identical counts as 100).
    pub pattern_psnr_db: Option<f64>,
    /// The code both sides derive from their identities (confab_protocol::safety), once the
    /// connection's handshake was done: equal on both sides unless someone sat between.
    pub safety_code: Option<SafetyCode>,
}

/// Turns totals into rates between snapshots.
pub(crate) struct StatsCollector {
    started: Instant,
    connected_at: Option<Instant>,
    previous: Option<Sample>,
    ice_restarts: u32,
}

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    bytes_sent: u64,
    bytes_received: u64,
    frames_sent: u64,
    frames_decoded: u64,
    screen_frames_sent: u64,
    screen_frames_decoded: u64,
}

fn state_name(state: &CallState) -> &'static str {
    match state {
        CallState::Idle => "idle",
        CallState::Outgoing { .. } => "outgoing",
        CallState::Incoming { .. } => "incoming",
        CallState::Connecting { .. } => "connecting",
        CallState::Connected { .. } => "connected",
        CallState::Invited { .. } => "invited",
        CallState::Group { .. } => "group",
        CallState::Ended(_) => "ended",
    }
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

impl StatsCollector {
    pub fn new(started: Instant) -> StatsCollector {
        StatsCollector {
            started,
            connected_at: None,
            previous: None,
            ice_restarts: 0,
        }
    }

    /// Asks the peer connection for its report, then builds the snapshot from it.
    pub async fn collect(
        &mut self,
        pc: &Arc<dyn PeerConnection>,
        counters: (&Counters, &Counters),
        round_trip: Duration,
        state: &CallState,
        now: Instant,
    ) -> CallStats {
        let report = pc.get_stats(now, StatsSelector::None).await;
        let mut stats = self.snapshot(&report, counters, state, now);
        stats.rtcp_rtt_ms = Some(round_trip.as_secs_f64() * 1000.0).filter(|ms| *ms > 0.0);
        stats
    }

    /// The snapshot at `now` from webrtc-rs's report and our counters: statistics only,
    /// nothing here steers the call. Remembers the totals for the next snapshot's rates.
    /// `counters` are the link's, then those of the peer's shared screen.
    fn snapshot(
        &mut self,
        report: &RTCStatsReport,
        (counters, screen): (&Counters, &Counters),
        state: &CallState,
        now: Instant,
    ) -> CallStats {
        if matches!(state, CallState::Connected { .. }) {
            self.connected_at.get_or_insert(now);
        }
        let mut stats = CallStats {
            state: state_name(state).into(),
            connected_secs: self.connected_at.map(|at| ms_between(at, now) / 1000.0),
            jitter_buffer_ms: counters
                .jitter_delay_ms
                .load(std::sync::atomic::Ordering::Relaxed),
            ice_restarts: self.ice_restarts,
            ..CallStats::default()
        };
        let (mut bytes_sent, mut bytes_received) = (0, 0);
        if let Some(transport) = report.transport() {
            bytes_sent = transport.bytes_sent;
            bytes_received = transport.bytes_received;
            if let Some(pair) = report
                .candidate_pairs()
                .find(|p| p.stats.id == transport.selected_candidate_pair_id)
            {
                stats.rtt_ms = Some(pair.current_round_trip_time * 1000.0).filter(|rtt| *rtt > 0.0);
                // Pair ids name candidates without the prefix their own entries carry.
                let candidate_type = |key: String| match report.get(&key) {
                    Some(
                        RTCStatsReportEntry::LocalCandidate(c)
                        | RTCStatsReportEntry::RemoteCandidate(c),
                    ) => Some(c.candidate_type.to_string()),
                    _ => None,
                };
                stats.local_candidate =
                    candidate_type(format!("RTCLocalIceCandidate_{}", pair.local_candidate_id));
                // webrtc-rs lists only the remote candidates that came through signaling;
                // one the pair uses but the report lacks was learned from the peer's own
                // connectivity check, which makes it peer-reflexive (RFC 8445 7.3.1.3).
                let remote = format!("RTCRemoteIceCandidate_{}", pair.remote_candidate_id);
                stats.remote_candidate =
                    Some(candidate_type(remote).unwrap_or_else(|| "prflx".to_owned()));
            }
        }
        for outbound in report.outbound_rtp_streams() {
            if outbound.sent_rtp_stream_stats.rtp_stream_stats.kind == RtpCodecKind::Video
                && outbound.target_bitrate > 0.0
            {
                stats.target_bitrate_bps = Some(outbound.target_bitrate as u32);
            }
        }
        let (mut received, mut lost) = (0u64, 0i64);
        for inbound in report.inbound_rtp_streams() {
            received += inbound.received_rtp_stream_stats.packets_received;
            lost += inbound.received_rtp_stream_stats.packets_lost.max(0);
        }
        if received + lost as u64 > 0 {
            stats.packet_loss_percent = 100.0 * lost as f64 / (received + lost as u64) as f64;
        }

        let sample = Sample {
            at: now,
            bytes_sent,
            bytes_received,
            frames_sent: Counters::get(&counters.video_frames_sent),
            frames_decoded: Counters::get(&counters.video_frames_decoded),
            screen_frames_sent: Counters::get(&counters.screen_frames_sent),
            screen_frames_decoded: Counters::get(&screen.video_frames_decoded),
        };
        let secs = self
            .previous
            .map_or(0.0, |p| now.saturating_duration_since(p.at).as_secs_f64());
        if let Some(previous) = self.previous.filter(|_| secs > 0.0) {
            let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
            stats.bitrate_out_bps = (rate(sample.bytes_sent, previous.bytes_sent) * 8.0) as u64;
            stats.bitrate_in_bps =
                (rate(sample.bytes_received, previous.bytes_received) * 8.0) as u64;
            // A picture's size (while one flows) and how many frames a second.
            let flow = |size: &std::sync::atomic::AtomicU64, frames: u64, before: u64| {
                Counters::size(size).map(|(width, height)| VideoFlow {
                    width,
                    height,
                    fps: rate(frames, before),
                })
            };
            stats.video_out = flow(
                &counters.video_size_out,
                sample.frames_sent,
                previous.frames_sent,
            );
            stats.video_in = flow(
                &counters.video_size_in,
                sample.frames_decoded,
                previous.frames_decoded,
            );
            stats.screen_out = flow(
                &counters.screen_size_out,
                sample.screen_frames_sent,
                previous.screen_frames_sent,
            );
            stats.screen_in = flow(
                &screen.video_size_in,
                sample.screen_frames_decoded,
                previous.screen_frames_decoded,
            );
        }
        self.previous = Some(sample);
        if let Ok(mut latency) = counters.latency.lock() {
            (stats.latency_p50_ms, stats.latency_p95_ms) = latency.take_recent();
        }
        stats
    }

    /// The call's totals. `state` is the machine's state when the call ended.
    /// `counters` are the link's, then those of the peer's shared screen.
    pub fn summary(
        &self,
        (counters, screen): (&Counters, &Counters),
        chats_sent: u64,
        chats_received: u64,
        state: &CallState,
    ) -> CallSummary {
        let now = Instant::now();
        let first_frame = counters.first_frame_at.lock().ok().and_then(|f| *f);
        let (peer_name, end_reason, end_description) = match state {
            CallState::Ended(end) => (
                Some(end.peer_name.clone()),
                Some(end.reason),
                Some(end.describe()),
            ),
            _ => (None, None, None),
        };
        let (p50, p95, samples) = match counters.latency.lock() {
            Ok(latency) => (
                latency.quantile(0.5),
                latency.quantile(0.95),
                latency.count(),
            ),
            Err(_) => (None, None, 0),
        };
        let last_stamp = Counters::get(&counters.last_stamp_frame);
        CallSummary {
            peer_name,
            end_reason,
            end_description,
            connect_ms: self.connected_at.map(|at| ms_between(self.started, at)),
            first_frame_ms: first_frame.map(|at| ms_between(self.started, at)),
            connected_secs: self.connected_at.map(|at| ms_between(at, now) / 1000.0),
            video_frames_sent: Counters::get(&counters.video_frames_sent),
            video_bytes_sent: Counters::get(&counters.video_bytes_sent),
            video_keyframes_sent: Counters::get(&counters.video_keyframes_sent),
            video_frames_received: Counters::get(&counters.video_frames_received),
            video_frames_decoded: Counters::get(&counters.video_frames_decoded),
            video_size_out: Counters::size(&counters.video_size_out),
            video_size_in: Counters::size(&counters.video_size_in),
            video_losses: Counters::get(&counters.video_losses),
            plis_sent: Counters::get(&counters.plis_sent),
            keyframe_requests_received: Counters::get(&counters.keyframe_requests_received),
            retransmissions_held_back: Counters::get(&counters.retransmissions_held_back),
            audio_packets_sent: Counters::get(&counters.audio_packets_sent),
            audio_packets_received: Counters::get(&counters.audio_packets_received),
            audio_concealed: Counters::get(&counters.audio_concealed),
            chats_sent,
            chats_received,
            ice_restarts: self.ice_restarts,
            latency_p50_ms: p50,
            latency_p95_ms: p95,
            latency_samples: samples,
            last_stamp_frame: (samples > 0 || last_stamp > 0).then_some(last_stamp),
            pattern_psnr_db: counters.pattern_psnr_db(),
            screen_frames_sent: Counters::get(&counters.screen_frames_sent),
            screen_bytes_sent: Counters::get(&counters.screen_bytes_sent),
            screen_frames_decoded: Counters::get(&screen.video_frames_decoded),
            screen_size_in: Counters::size(&screen.video_size_in),
            safety_code: None,
        }
    }

    /// This side started an ICE restart.
    pub fn ice_restarted(&mut self) {
        self.ice_restarts += 1;
    }

    /// Marks the connection time for calls that end before a stats tick saw it.
    pub fn connected(&mut self, at: Instant) {
        self.connected_at.get_or_insert(at);
    }
}
