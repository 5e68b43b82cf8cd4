//! The interceptor chain of a peer connection: what happens to RTP and RTCP between the
//! tracks and the network.
//!
//! NACK (retransmission of lost video packets, on their own RTX stream when the peer
//! agrees), FlexFEC repair packets (decoded by webrtc-rs, encoded by us), RTCP sender and
//! receiver reports, and send-side congestion control (our [`QueueGuard`] over TWCC
//! feedback, with a pacer). (webrtc-rs's default set would add a second TWCC receiver and
//! simulcast header extensions we do not use.) Plus small hooks of our own:
//!
//! - The encoder hears from the chain directly through the link's `EncoderControl`: each
//!   new estimate, and incoming PLI and FIR as a keyframe request, right here. (webrtc-rs 0.21
//!   routes them to a track by SSRC and, once the peer's video arrives on the same
//!   transceiver, hands them to our *receiving* track instead of the sending one: the
//!   encoder saw only the first request of a call, and after any loss the video froze.)
//! - The pacer runs at [`PACING_FACTOR`] times the estimate, as libwebrtc's does. Pacing at
//!   exactly the estimate queues every frame larger than average (a keyframe, or an encoder
//!   that overshoots), and the queue becomes seconds of video latency.
//! - The peer's reception reports give the round-trip time (RFC 3550 6.4.1) as they arrive:
//!   it goes to the link's `RoundTrip`, which the retransmission gate here and the
//!   depacketizer's reorder window read; and the loss, to the link's `PathLoss`, which
//!   sets how much FlexFEC and Opus FEC go out.
//! - Retransmissions held back by the call core's `RetransmitGate`; incoming RTX unwrapped
//!   before the NACK generator; our FlexFEC encoder at the wire end (the slots below say
//!   why each sits where it does).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtc::interceptor::{
    Attribute, AttributedPacket, BandwidthEstimator, FlexFec03Encoder, FlexFec03ReceiveBuilder,
    Interceptor, NackGeneratorBuilder, NackResponderBuilder, Packet, PacketReport, StreamInfo,
    TaggedPacket,
};
use rtc::peer_connection::configuration::interceptor_registry::configure_rtcp_reports;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RtpCodecKind, TYPE_RTCP_FB_NACK};
use rtc::sansio::Protocol;
use webrtc::peer_connection::{
    CongestionFeedback, MediaEngine, Registry, Slot, configure_congestion_control,
};

use crate::CallError;
use crate::control::Controls;
use crate::media::Counters;
use confab_call_core::congestion::{PacketFeedback, QueueGuard};
use confab_call_core::protection;
use confab_call_core::retransmit::RetransmitGate;
use confab_call_core::rtp::{compact_ntp, round_trip_from_report};

/// Congestion control bounds, bits per second.
pub(crate) const START_BITRATE_BPS: f64 = 600_000.0;
pub(crate) const MIN_BITRATE_BPS: f64 = 100_000.0;

/// A missing video packet is asked for again this often, up to this many times: for as
/// long as our depacketizer may wait for a gap (`h264_rtp::reorder_wait`, up to 500 ms on a
/// long path), so a retransmission that is lost too is asked for again. webrtc-rs's
/// default (every 100 ms, without limit) asked once before a short path's wait was over,
/// so at 20% loss a keyframe of 40 packets rarely came whole; five NACKs in 100 ms all
/// reached a far sender before its first resend could arrive, and a lost resend was never
/// asked for again. The [`RetransmitGate`] sends a packet again at most every half round
/// trip, so the repeats cost little more than their small RTCP packets.
const NACK_INTERVAL: Duration = Duration::from_millis(20);
const NACKS_PER_PACKET: u16 = 25;

/// What the call's audio takes of the estimate before video gets the rest: Opus, plus
/// the IP, UDP, RTP and SRTP headers of its 50 packets a second (about 60 bytes each).
const AUDIO_BPS: f64 = crate::media::OPUS_BITRATE_BPS as f64 + 50.0 * 60.0 * 8.0;
/// The least the video encoder is told to aim for, whatever the estimate.
const MIN_VIDEO_BPS: f64 = 30_000.0;

/// The pacer releases packets this much faster than the congestion controller's estimate.
pub(crate) const PACING_FACTOR: f64 = 2.5;

/// Slots of our hooks. Reads walk from small slots (the network) to large ones (the
/// application): congestion control (1_000) sets the estimate, the pacer (3_000) reads it.
const PACING_UP_SLOT: usize = 2_500;
/// Between the NACK responder (4_000) and the pacer (3_000): sees each packet's first
/// send and every retransmission.
const RETRANSMIT_GATE_SLOT: usize = 3_800;
const PACING_DOWN_SLOT: usize = 3_500;
/// Our FlexFEC encoder (when the peer takes FlexFEC) protects packets as they go on the
/// wire: after the transport-wide sequence number (2_000) is stamped on them, because a
/// repair packet is the XOR of the protected packets' bytes, header extensions included,
/// and the receiver's decoder XORs what arrived. In webrtc-rs's own slot (5_000) the
/// extensions were added after encoding and every rebuilt packet came out garbled. Repair
/// packets go out unpaced, right after their block's last packet, and the congestion
/// controller does not see them. How many, the call core's `protection` says from the
/// loss the peer reports (webrtc-rs's encoder takes a fixed number).
const FEC_ENCODER_SLOT: usize = 500;
/// Between the FlexFEC decoder (6_000) and the NACK generator (7_000) on the read walk: a
/// retransmission arriving on its RTX stream becomes the packet it repairs here. webrtc-rs
/// unwraps RTX only after the chain, so its NACK generator never saw a repaired packet and
/// asked for every lost one as often as it may. (Wire-ward of the FEC decoder, the late
/// old packets confused its blocks: 20% loss fell to 14 fps.)
const RTX_UNWRAP_SLOT: usize = 6_500;
/// Closest to the application: every built-in interceptor has seen RTCP first.
const ENCODER_SLOT: usize = 14_000;

/// The chain for one peer connection. Codecs must be registered in `engine` first: the
/// helpers add their RTCP feedback to existing codecs.
pub(crate) fn registry(
    engine: &mut MediaEngine,
    max_bitrate_bps: u32,
    counters: Arc<Counters>,
    controls: Arc<Controls>,
) -> Result<Registry, CallError> {
    let estimator = Estimator(QueueGuard::new(
        START_BITRATE_BPS,
        MIN_BITRATE_BPS,
        f64::from(max_bitrate_bps),
    ));
    let registry =
        configure_congestion_control(Registry::new(), estimator, CongestionFeedback::Twcc, engine)?;
    let registry = configure_rtcp_reports(configure_nack(registry, engine))
        .with(
            Slot::from(FEC_ENCODER_SLOT),
            Hook::new(Action::ProtectVideo {
                streams: HashMap::new(),
                controls: controls.clone(),
            }),
        )
        .with(Slot::FecDecoder, FlexFec03ReceiveBuilder::new().build());
    Ok(registry
        // The pacer between these two sees the estimate scaled up; everything after them
        // (stats, the encoder) sees it as it is.
        .with(
            Slot::from(PACING_UP_SLOT),
            Hook::new(Action::ScaleEstimate(PACING_FACTOR)),
        )
        .with(
            Slot::from(PACING_DOWN_SLOT),
            Hook::new(Action::ScaleEstimate(1.0 / PACING_FACTOR)),
        )
        .with(
            Slot::from(RETRANSMIT_GATE_SLOT),
            Hook::new(Action::GateRetransmissions {
                gate: RetransmitGate::default(),
                rtx_streams: HashMap::new(),
                counters: counters.clone(),
                controls: controls.clone(),
            }),
        )
        .with(
            Slot::from(RTX_UNWRAP_SLOT),
            Hook::new(Action::UnwrapRtx {
                streams: HashMap::new(),
            }),
        )
        .with(
            Slot::from(ENCODER_SLOT),
            Hook::new(Action::Listen {
                counters,
                controls,
                fec: false,
                losses: HashMap::new(),
            }),
        ))
}

/// The core's [`QueueGuard`] as webrtc-rs's estimator: TWCC reports in, a target out.
struct Estimator(QueueGuard);

impl BandwidthEstimator for Estimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        let feedback: Vec<PacketFeedback> = reports
            .iter()
            .map(|report| PacketFeedback {
                departure: report.departure,
                arrival: report.arrival.filter(|_| report.arrived),
                size: report.size,
            })
            .collect();
        self.0.on_feedback(now, &feedback);
    }

    fn target_bitrate(&self) -> f64 {
        self.0.target_bitrate()
    }
}

/// Retransmission of lost video packets (RFC 4585 NACK), with our timing.
fn configure_nack(registry: Registry, engine: &mut MediaEngine) -> Registry {
    for parameter in ["", "pli"] {
        let feedback = RTCPFeedback {
            typ: TYPE_RTCP_FB_NACK.to_owned(),
            parameter: parameter.to_owned(),
        };
        engine.register_feedback(feedback, RtpCodecKind::Video);
    }
    registry
        .with(Slot::NackResponder, NackResponderBuilder::new().build())
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_interval(NACK_INTERVAL)
                .with_max_nacks_per_packet(NACKS_PER_PACKET)
                .build(),
        )
}

#[derive(Debug)]
enum Action {
    /// Multiplies the congestion controller's estimate riding on incoming packets.
    ScaleEstimate(f64),
    /// Passes on what the chain learns: incoming PLI and FIR and each new estimate to the
    /// encoder, the round trip from reception reports to the link's `RoundTrip`. Every
    /// packet passes through unchanged.
    Listen {
        counters: Arc<Counters>,
        controls: Arc<Controls>,
        /// FlexFEC goes out with the video: the encoder gets the estimate (less the
        /// audio's) less what the repair packets take.
        fec: bool,
        /// The newest `fraction lost` the peer reported for each of our streams (only
        /// ours: a peer cannot grow it by reporting on streams it invents).
        losses: HashMap<u32, u8>,
    },
    /// FlexFEC for the video streams the peer agreed to protect: a block of
    /// [`protection::BLOCK`] packets as they went out, then its repair packets.
    ProtectVideo {
        streams: HashMap<u32, ProtectedStream>,
        controls: Arc<Controls>,
    },
    /// Turns each incoming RTX packet (RFC 4588) back into the packet it repairs: the
    /// repaired stream's SSRC and payload type, the original sequence number from its first
    /// two payload bytes, the rest as payload. One without them (padding) goes no further.
    UnwrapRtx {
        /// RTX SSRC -> (the repaired stream's SSRC, its payload type), from the peer's
        /// streams as they are bound.
        streams: HashMap<u32, (u32, u8)>,
    },
    /// Holds back outgoing retransmissions the [`RetransmitGate`] finds useless, given the
    /// link's round trip.
    GateRetransmissions {
        gate: RetransmitGate,
        /// RTX stream -> the stream it repairs: an RTX packet carries the original
        /// sequence number in its first two payload bytes.
        rtx_streams: HashMap<u32, u32>,
        counters: Arc<Counters>,
        controls: Arc<Controls>,
    },
}

/// One protected video stream: its encoder and the block being filled.
struct ProtectedStream {
    encoder: FlexFec03Encoder,
    block: Vec<rtc::rtp::Packet>,
}

impl std::fmt::Debug for ProtectedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProtectedStream({} in the block)", self.block.len())
    }
}

impl ProtectedStream {
    fn new(payload_type: u8, ssrc: u32) -> ProtectedStream {
        ProtectedStream {
            encoder: FlexFec03Encoder::new(payload_type, ssrc),
            block: Vec::with_capacity(protection::BLOCK as usize),
        }
    }

    /// Adds a packet that went out; when the block is full, returns as many repair packets
    /// as `repairs` says then (decided once per block, not per packet).
    fn protect(
        &mut self,
        packet: &rtc::rtp::Packet,
        repairs: impl FnOnce() -> u32,
    ) -> Vec<rtc::rtp::Packet> {
        self.block.push(packet.clone());
        if self.block.len() < protection::BLOCK as usize {
            return Vec::new();
        }
        let packets = self.encoder.encode(&self.block, repairs());
        self.block.clear();
        packets
    }
}

/// An interceptor that does one [`Action`] to incoming packets and passes outgoing ones.
struct Hook {
    action: Action,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Hook {
    fn new(action: Action) -> Hook {
        Hook {
            action,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }
}

/// The reception reports among `packets` (receiver reports, and sender reports, which
/// carry them too).
fn reception_reports(
    packets: &[Box<dyn rtc::rtcp::Packet>],
) -> impl Iterator<Item = &ReceptionReport> {
    packets.iter().flat_map(|packet| {
        let any = packet.as_any();
        let reports = any
            .downcast_ref::<ReceiverReport>()
            .map(|rr| rr.reports.as_slice())
            .or_else(|| {
                any.downcast_ref::<SenderReport>()
                    .map(|sr| sr.reports.as_slice())
            });
        reports.unwrap_or_default()
    })
}

/// The newest round trip the reception reports among `packets` measure, on arrival at
/// `now`.
fn round_trip(packets: &[Box<dyn rtc::rtcp::Packet>], now: SystemTime) -> Option<Duration> {
    let arrival = compact_ntp(now.duration_since(UNIX_EPOCH).ok()?);
    reception_reports(packets)
        .filter_map(|report| {
            round_trip_from_report(arrival, report.last_sender_report, report.delay)
        })
        .last()
}

/// The SSRC a PLI or FIR asks a keyframe of.
fn keyframe_request(packet: &dyn rtc::rtcp::Packet) -> Option<u32> {
    let any = packet.as_any();
    if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
        return Some(pli.media_ssrc);
    }
    let fir = any.downcast_ref::<FullIntraRequest>()?;
    Some(fir.fir.first().map_or(fir.media_ssrc, |entry| entry.ssrc))
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for Hook {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = webrtc::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        match &mut self.action {
            Action::ScaleEstimate(factor) => {
                for attribute in &mut msg.message.attributes {
                    if let Attribute::TargetBitrateChanged { bits_per_second } = attribute {
                        *bits_per_second *= *factor;
                    }
                }
            }
            Action::Listen {
                counters,
                controls,
                fec,
                losses,
            } => {
                for attribute in &msg.message.attributes {
                    if let Attribute::TargetBitrateChanged { bits_per_second } = attribute {
                        let share = match fec {
                            true => protection::media_share(
                                controls.loss.percent(),
                                controls.round_trip.get(),
                            ),
                            false => 1.0,
                        };
                        let video = (*bits_per_second - AUDIO_BPS) * share;
                        controls
                            .encoder
                            .set_target_bitrate(video.max(MIN_VIDEO_BPS) as u32);
                    }
                }
                if let Packet::Rtcp(packets) = &msg.message.packet {
                    let screen_ssrc = controls.screen_ssrc.load(Ordering::Relaxed);
                    for ssrc in packets.iter().filter_map(|p| keyframe_request(p.as_ref())) {
                        Counters::add(&counters.keyframe_requests_received, 1);
                        match ssrc == screen_ssrc && screen_ssrc != 0 {
                            true => controls.screen.request_keyframe(),
                            false => controls.encoder.request_keyframe(),
                        }
                    }
                    if let Some(rtt) = round_trip(packets, SystemTime::now()) {
                        controls.round_trip.set(rtt);
                    }
                    // The path's loss: the worst of our streams' newest reports. Reports may
                    // come one stream at a time, and video's count what RTX and FEC
                    // repaired as received, audio's do not.
                    let mut reported = false;
                    for report in reception_reports(packets) {
                        if let Some(loss) = losses.get_mut(&report.ssrc) {
                            *loss = report.fraction_lost;
                            reported = true;
                        }
                    }
                    if reported && let Some(&worst) = losses.values().max() {
                        controls.loss.set_fraction(worst);
                    }
                }
            }
            Action::UnwrapRtx { streams } => {
                if let Packet::Rtp(rtp) = &mut msg.message.packet
                    && let Some(&(ssrc, payload_type)) = streams.get(&rtp.header.ssrc)
                {
                    let Some(&[high, low]) = rtp.payload.get(..2) else {
                        return Ok(());
                    };
                    rtp.header.ssrc = ssrc;
                    rtp.header.payload_type = payload_type;
                    rtp.header.sequence_number = u16::from_be_bytes([high, low]);
                    rtp.payload = rtp.payload.slice(2..);
                }
            }
            Action::GateRetransmissions { .. } | Action::ProtectVideo { .. } => {}
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Action::ProtectVideo { streams, controls } = &mut self.action
            && let Packet::Rtp(rtp) = &msg.message.packet
            && !msg.message.has(&Attribute::Retransmission)
            && let Some(stream) = streams.get_mut(&rtp.header.ssrc)
        {
            let repairs = stream.protect(rtp, || {
                protection::repair_packets(controls.loss.percent(), controls.round_trip.get())
            });
            let (now, transport) = (msg.now, msg.transport);
            self.writes.push_back(msg);
            self.writes
                .extend(repairs.into_iter().map(|packet| TaggedPacket {
                    now,
                    transport,
                    message: AttributedPacket::new(Packet::Rtp(packet)),
                }));
            return Ok(());
        }
        if let Action::GateRetransmissions {
            gate,
            rtx_streams,
            counters,
            controls,
        } = &mut self.action
            && let Packet::Rtp(rtp) = &msg.message.packet
        {
            let retransmission = msg.message.has(&Attribute::Retransmission);
            let rtt = controls.round_trip.get();
            let (ssrc, seq) = match rtx_streams.get(&rtp.header.ssrc) {
                Some(&primary) => match rtp.payload.get(..2) {
                    Some(&[high, low]) => (primary, u16::from_be_bytes([high, low])),
                    _ => (rtp.header.ssrc, rtp.header.sequence_number),
                },
                None => (rtp.header.ssrc, rtp.header.sequence_number),
            };
            if !gate.admit(ssrc, seq, retransmission, msg.now, rtt) {
                Counters::add(&counters.retransmissions_held_back, 1);
                return Ok(());
            }
        }
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
}

impl Interceptor for Hook {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        match &mut self.action {
            Action::GateRetransmissions { rtx_streams, .. } => {
                if let Some(rtx) = info.ssrc_rtx {
                    rtx_streams.insert(rtx, info.ssrc);
                }
            }
            Action::Listen { fec, losses, .. } => {
                losses.insert(info.ssrc, 0);
                *fec |= info.ssrc_fec.is_some();
            }
            Action::ProtectVideo { streams, .. } => {
                if let (Some(ssrc), Some(payload_type)) = (info.ssrc_fec, info.payload_type_fec) {
                    streams.insert(info.ssrc, ProtectedStream::new(payload_type, ssrc));
                }
            }
            Action::ScaleEstimate(_) | Action::UnwrapRtx { .. } => {}
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        match &mut self.action {
            Action::GateRetransmissions { rtx_streams, .. } => {
                rtx_streams.retain(|_, primary| *primary != info.ssrc);
            }
            Action::Listen { fec, losses, .. } => {
                losses.remove(&info.ssrc);
                if info.ssrc_fec.is_some() {
                    *fec = false;
                }
            }
            Action::ProtectVideo { streams, .. } => {
                streams.remove(&info.ssrc);
            }
            Action::ScaleEstimate(_) | Action::UnwrapRtx { .. } => {}
        }
    }

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        if let Action::UnwrapRtx { streams } = &mut self.action
            && let (Some(rtx), Some(_)) = (info.ssrc_rtx, info.payload_type_rtx)
        {
            streams.insert(rtx, (info.ssrc, info.payload_type));
        }
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        if let Action::UnwrapRtx { streams } = &mut self.action {
            streams.retain(|_, (ssrc, _)| *ssrc != info.ssrc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rtc::interceptor::FlexFec03Decoder;
    use rtc::shared::TransportContext;

    const MEDIA_SSRC: u32 = 0x1111;
    const RTX_SSRC: u32 = 0x2222;
    const FEC_SSRC: u32 = 0x3333;

    fn packet(ssrc: u32, seq: u16, payload: Vec<u8>) -> rtc::rtp::Packet {
        rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: 96,
                sequence_number: seq,
                ssrc,
                ..Default::default()
            },
            payload: payload.into(),
        }
    }

    fn tagged(packet: rtc::rtp::Packet) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(packet)),
        }
    }

    fn unwrapper() -> Hook {
        let mut hook = Hook::new(Action::UnwrapRtx {
            streams: HashMap::new(),
        });
        hook.bind_remote_stream(&StreamInfo {
            ssrc: MEDIA_SSRC,
            payload_type: 125,
            ssrc_rtx: Some(RTX_SSRC),
            payload_type_rtx: Some(107),
            ..Default::default()
        });
        hook
    }

    #[test]
    fn an_rtx_packet_becomes_the_packet_it_repairs() {
        let mut hook = unwrapper();
        hook.handle_read(tagged(packet(RTX_SSRC, 9, vec![0x12, 0x34, 7, 8])))
            .unwrap();
        // Padding with no original sequence number goes no further.
        hook.handle_read(tagged(packet(RTX_SSRC, 10, vec![0])))
            .unwrap();
        hook.handle_read(tagged(packet(MEDIA_SSRC, 5, vec![1])))
            .unwrap();
        let out: Vec<rtc::rtp::Packet> = std::iter::from_fn(|| hook.poll_read())
            .filter_map(|msg| match msg.message.packet {
                Packet::Rtp(rtp) => Some(rtp),
                _ => None,
            })
            .collect();
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].header.ssrc, out[0].header.payload_type),
            (MEDIA_SSRC, 125)
        );
        assert_eq!(out[0].header.sequence_number, 0x1234);
        assert_eq!(&out[0].payload[..], &[7, 8]);
        assert_eq!(
            (out[1].header.ssrc, out[1].header.sequence_number),
            (MEDIA_SSRC, 5)
        );
    }

    #[test]
    fn each_full_block_gets_the_repairs_asked_for() {
        let mut stream = ProtectedStream::new(118, FEC_SSRC);
        let sent = |stream: &mut ProtectedStream, first: u16, repairs| -> usize {
            (first..first + 5)
                .map(|seq| {
                    stream.protect(&packet(MEDIA_SSRC, seq, vec![seq as u8; 50]), || repairs)
                })
                .map(|packets| packets.len())
                .sum()
        };
        assert_eq!(sent(&mut stream, 0, 0), 0);
        assert_eq!(sent(&mut stream, 5, 1), 1);
        assert_eq!(sent(&mut stream, 10, 2), 2);
    }

    proptest! {
        /// What a peer sends on its repair and RTX streams is its own: garbage there never
        /// panics our RTX unwrapping or webrtc-rs's FlexFEC decoder, and never makes the
        /// decoder hold or rebuild more than its window.
        #[test]
        fn hostile_repair_and_rtx_packets_are_harmless(
            packets in proptest::collection::vec(
                (0u8..3, any::<u16>(), proptest::collection::vec(any::<u8>(), 0..200)),
                1..200,
            )
        ) {
            let mut hook = unwrapper();
            let mut decoder = FlexFec03Decoder::new(FEC_SSRC, MEDIA_SSRC);
            for (kind, seq, payload) in packets {
                let ssrc = [MEDIA_SSRC, RTX_SSRC, FEC_SSRC][usize::from(kind)];
                let rtp = packet(ssrc, seq, payload);
                hook.handle_read(tagged(rtp.clone())).unwrap();
                while hook.poll_read().is_some() {}
                let rebuilt = decoder.decode(rtp);
                prop_assert!(rebuilt.len() <= 64);
                prop_assert!(decoder.recovered_len() <= 1024);
                prop_assert!(decoder.pending_repair_packets() <= 1024);
            }
        }
    }
}
