//! Building a webrtc-rs peer connection the way Confab needs it.
//!
//! Codecs: H.264 packetization mode 1 in the two profiles browsers offer (42e01f constrained
//! baseline, 42001f baseline), each with an RTX stream, FlexFEC, and Opus 48000/2 with
//! in-band FEC; interceptors come from [`crate::interceptors`]; ICE timings and restarts;
//! the local addresses to gather on. The connection's events are forwarded, untouched, to
//! a channel: handler callbacks run on the connection's own task and must return at once.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use confab_call_core::LinkId;
use confab_protocol::{IceCandidate, IceServer};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_FLEX_FEC03, MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX,
};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use tokio::sync::mpsc;
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCIceServer,
    RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCPeerConnectionState, SettingEngineBuilder,
};
use webrtc::runtime::Runtime;

use crate::CallError;
use crate::control::Controls;
use crate::identity::Identity;
use crate::media::Counters;

/// H.264 payload types and profiles we register, preferred first, each with the payload
/// type of its retransmissions (RTX, RFC 4588: their own stream, so loss and repair are
/// told apart, as browsers do).
pub(crate) const H264_PROFILES: [(u8, &str, u8); 2] = [(125, "42e01f", 107), (102, "42001f", 103)];
const OPUS_PAYLOAD_TYPE: u8 = 111;
/// Forward error correction for video: FlexFEC-03 repair packets on their own stream, which
/// rebuild a lost packet without waiting a round trip. Offered to every peer; browsers and
/// aiortc do not take it (Chrome only behind a field trial) and get NACK and RTX alone.
const FLEXFEC_PAYLOAD_TYPE: u8 = 118;

/// ICE timing: a path silent this long is `disconnected` (media counts: a call's audio
/// alone arrives every 20 ms), then `failed` this much later. The call core restarts ICE
/// after 2 s disconnected, and gives a disconnected call 10 s to come back before ending it.
const ICE_DISCONNECTED_AFTER: Duration = Duration::from_secs(3);
const ICE_FAILED_AFTER: Duration = Duration::from_secs(25);
const ICE_KEEPALIVE: Duration = Duration::from_secs(1);
/// Connectivity checks go out this often (webrtc-rs defaults to 200 ms, which the
/// controlling side also waits before nominating a pair: most of a loopback call's setup).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Checks per candidate pair: 28 x 50 ms keeps the default 1.4 s per pair.
const ICE_CHECKS_PER_PAIR: u16 = 28;

pub(crate) fn h264_codec(profile_level_id: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: format!(
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile_level_id}"
        ),
        // nack, nack pli and transport-cc are added by the interceptor registration.
        rtcp_feedback: vec![],
    }
}

/// Every video codec we offer, preferred first: H.264 in both profiles, their
/// retransmission streams, and FlexFEC.
pub(crate) fn video_codecs() -> Vec<RTCRtpCodecParameters> {
    let video = |mime_type: &str, sdp_fmtp_line: String, payload_type| RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime_type.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line,
            rtcp_feedback: vec![],
        },
        payload_type,
    };
    let h264 = H264_PROFILES
        .iter()
        .map(|&(payload_type, profile, _)| RTCRtpCodecParameters {
            rtp_codec: h264_codec(profile),
            payload_type,
        });
    let rtx = H264_PROFILES
        .iter()
        .map(|&(apt, _, rtx)| video(MIME_TYPE_RTX, format!("apt={apt}"), rtx));
    let fec = video(
        MIME_TYPE_FLEX_FEC03,
        "repair-window=10000000".to_owned(),
        FLEXFEC_PAYLOAD_TYPE,
    );
    h264.chain(rtx).chain([fec]).collect()
}

pub(crate) fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The H.264 profile to send, given the remote offer (when answering): ours first, else the
/// one the offer has.
pub(crate) fn h264_profile_for(remote_sdp: Option<&str>) -> &'static str {
    let preferred = H264_PROFILES[0].1;
    let Some(sdp) = remote_sdp else {
        return preferred;
    };
    let sdp = sdp.to_ascii_lowercase();
    H264_PROFILES
        .iter()
        .map(|(_, profile, _)| *profile)
        .find(|profile| sdp.contains(&format!("profile-level-id={profile}")))
        .unwrap_or(preferred)
}

fn media_engine() -> Result<MediaEngine, CallError> {
    let mut engine = MediaEngine::default();
    for codec in video_codecs() {
        engine.register_codec(codec, RtpCodecKind::Video)?;
    }
    let opus = RTCRtpCodecParameters {
        rtp_codec: opus_codec(),
        payload_type: OPUS_PAYLOAD_TYPE,
    };
    engine.register_codec(opus, RtpCodecKind::Audio)?;
    Ok(engine)
}

/// Where a link's peer connection (and its chat channel) reports to: one channel for every
/// link of the engine, each event tagged with its link.
#[derive(Clone)]
pub(crate) struct PeerEvents {
    pub link: LinkId,
    pub to: mpsc::UnboundedSender<(LinkId, PeerEvent)>,
}

impl PeerEvents {
    /// False once the engine no longer listens.
    pub fn send(&self, event: PeerEvent) -> bool {
        self.to.send((self.link, event)).is_ok()
    }
}

/// What the peer connection (and its chat channel) reports.
pub(crate) enum PeerEvent {
    LocalCandidate(IceCandidate),
    GatheringComplete,
    State(RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
    DataChannel(Arc<dyn DataChannel>),
    ChatOpen,
    ChatMessage(Vec<u8>),
    ChatClosed,
    /// How a file transfer of the link is going (`crate::files`).
    File(confab_call_core::FileReport),
}

struct Handler {
    events: PeerEvents,
    /// Relay-only: candidates go out without the local address webrtc-rs puts in them.
    hide_address: bool,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(mut init) = event.candidate.to_json() {
            if self.hide_address {
                init.candidate = hide_related_address(&init.candidate);
            }
            self.events.send(PeerEvent::LocalCandidate(to_signal(init)));
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        // The only end-of-candidates signal webrtc-rs gives.
        if state == RTCIceGatheringState::Complete {
            self.events.send(PeerEvent::GatheringComplete);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.events.send(PeerEvent::State(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.events.send(PeerEvent::Track(track));
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        self.events.send(PeerEvent::DataChannel(channel));
    }
}

/// Network settings of the peer connection.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// STUN/TURN servers: the server's welcome plus the user's own.
    pub ice_servers: Vec<IceServer>,
    /// Use only TURN relays, so the other side never learns our address.
    pub relay_only: bool,
    /// Local UDP addresses to gather on. `0.0.0.0:0` and `[::]:0` cover every interface of
    /// their family but loopback (each IPv4 link-local address is added to the first, which
    /// webrtc-rs leaves out), enumerated again at every ICE restart.
    pub udp_addrs: Vec<String>,
    /// Ceiling for the congestion controller, bits per second.
    pub max_bitrate_bps: u32,
    /// The webrtc-rs runtime whose sockets carry the call instead of tokio's: tests put a
    /// simulated network here (`confab-netsim`).
    pub socket_runtime: Option<Arc<dyn Runtime>>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            ice_servers: Vec::new(),
            relay_only: false,
            // Loopback too, so two Confabs on one machine can call each other offline.
            udp_addrs: vec!["0.0.0.0:0".into(), "[::]:0".into(), "127.0.0.1:0".into()],
            max_bitrate_bps: 2_500_000,
            socket_runtime: None,
        }
    }
}

fn rtc_ice_servers(servers: &[IceServer]) -> Vec<RTCIceServer> {
    servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone().unwrap_or_default(),
            credential: s.credential.clone().unwrap_or_default(),
        })
        .collect()
}

/// Creates a peer connection; its events go to `events`. It must be `close()`d: dropping
/// it leaks its task and sockets.
pub(crate) async fn build(
    network: &NetworkConfig,
    identity: &Identity,
    events: PeerEvents,
    counters: Arc<Counters>,
    controls: Arc<Controls>,
) -> Result<Arc<dyn PeerConnection>, CallError> {
    let mut engine = media_engine()?;
    let registry =
        crate::interceptors::registry(&mut engine, network.max_bitrate_bps, counters, controls)?;
    let mut configuration = RTCConfigurationBuilder::new()
        .with_ice_servers(rtc_ice_servers(&network.ice_servers))
        .with_certificates(vec![identity.certificate()]);
    if network.relay_only {
        configuration = configuration.with_ice_transport_policy(RTCIceTransportPolicy::Relay);
    }
    let mut settings = SettingEngineBuilder::new()
        .with_ice_timeouts(
            Some(ICE_DISCONNECTED_AFTER),
            Some(ICE_FAILED_AFTER),
            Some(ICE_KEEPALIVE),
        )
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_CHECKS_PER_PAIR))
        // An ICE restart binds again, on the interfaces there are then: it follows the
        // computer onto a new network or address rather than keep the sockets of the old.
        .with_discard_local_candidates_during_ice_restart(true);
    if network.relay_only {
        // ICE waits 2 s before it takes a relay pair, in case a direct one turns up: with
        // relay only, none will (pion/webrtc#1635).
        settings = settings.with_relay_acceptance_min_wait(Some(std::time::Duration::ZERO));
    }
    let settings = settings.build();
    let mut builder = PeerConnectionBuilder::new();
    if let Some(runtime) = &network.socket_runtime {
        builder = builder.with_runtime(runtime.clone());
    }
    let pc = builder
        .with_configuration(configuration.build())
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .with_handler(Arc::new(Handler {
            events,
            hide_address: network.relay_only,
        }))
        .with_udp_addrs(bind_addrs(&network.udp_addrs, &local_ips()))
        .build()
        .await?;
    Ok(Arc::new(pc))
}

/// The addresses to bind: the configured ones and, when they include the IPv4 wildcard,
/// each IPv4 link-local address of `interfaces`. webrtc-rs expands a wildcard without
/// link-local addresses (an IPv6 one needs a scope id a candidate cannot carry), but an
/// IPv4 one (169.254/16) is all two computers on one cable without DHCP have, and browsers
/// gather it.
fn bind_addrs(configured: &[String], interfaces: &[IpAddr]) -> Vec<String> {
    let mut addrs = configured.to_vec();
    if configured.iter().any(|addr| addr.starts_with("0.0.0.0:")) {
        addrs.extend(
            interfaces
                .iter()
                .filter(|ip| matches!(ip, IpAddr::V4(v4) if v4.is_link_local()))
                .map(|ip| format!("{ip}:0")),
        );
    }
    addrs
}

/// This machine's interface addresses now (none if they cannot be listed).
pub(crate) fn local_ips() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces.iter().map(|i| i.ip()).collect(),
        Err(err) => {
            tracing::warn!("cannot list the network interfaces: {err}");
            Vec::new()
        }
    }
}

/// A candidate line with its related address (`raddr`/`rport`) masked as browsers do in
/// relay-only mode. webrtc-rs fills it in from the local socket of a relay candidate, which
/// is the very address relay-only mode exists to hide.
pub(crate) fn hide_related_address(candidate: &str) -> String {
    let mut previous = "";
    let words: Vec<&str> = candidate
        .split(' ')
        .map(|word| {
            let masked = match previous {
                "raddr" => "0.0.0.0",
                "rport" => "0",
                _ => word,
            };
            previous = word;
            masked
        })
        .collect();
    words.join(" ")
}

/// Every `a=candidate` line of `sdp` with its related address masked.
pub(crate) fn hide_related_addresses(sdp: &str) -> String {
    sdp.split_inclusive('\n')
        .map(|line| match line.strip_prefix("a=candidate:") {
            Some(_) => {
                let body = line.trim_end_matches(['\r', '\n']);
                format!("{}{}", hide_related_address(body), &line[body.len()..])
            }
            None => line.to_owned(),
        })
        .collect()
}

/// A candidate from webrtc-rs, as the signaling protocol carries it.
pub(crate) fn to_signal(init: RTCIceCandidateInit) -> IceCandidate {
    IceCandidate {
        candidate: init.candidate,
        // webrtc-rs BUNDLEs everything and reports mid "" ; browsers expect the first mid.
        sdp_mid: Some(
            init.sdp_mid
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "0".into()),
        ),
        sdp_m_line_index: init.sdp_mline_index,
        username_fragment: init.username_fragment,
    }
}

/// A candidate from signaling, for webrtc-rs.
pub(crate) fn from_signal(candidate: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: candidate.candidate,
        sdp_mid: candidate.sdp_mid,
        sdp_mline_index: candidate.sdp_m_line_index,
        username_fragment: candidate.username_fragment,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_candidates_lose_their_related_address() {
        let relay = "candidate:1 1 udp 16777215 203.0.113.9 50000 typ relay raddr 192.168.1.20 \
                     rport 51406";
        assert_eq!(
            hide_related_address(relay),
            "candidate:1 1 udp 16777215 203.0.113.9 50000 typ relay raddr 0.0.0.0 rport 0"
        );
        let sdp = format!("v=0\r\na={relay}\r\na=end-of-candidates\r\n");
        assert_eq!(
            hide_related_addresses(&sdp),
            "v=0\r\na=candidate:1 1 udp 16777215 203.0.113.9 50000 typ relay raddr 0.0.0.0 \
             rport 0\r\na=end-of-candidates\r\n"
        );
    }

    #[test]
    fn link_local_ipv4_addresses_join_the_wildcard() {
        let interfaces: Vec<IpAddr> = ["127.0.0.1", "169.254.7.9", "10.0.0.2", "fe80::1"]
            .iter()
            .map(|ip| ip.parse().unwrap())
            .collect();
        let wildcard = vec!["0.0.0.0:0".to_owned(), "[::]:0".to_owned()];
        assert_eq!(
            bind_addrs(&wildcard, &interfaces),
            ["0.0.0.0:0", "[::]:0", "169.254.7.9:0"]
        );
        // Addresses the user chose are bound as they are.
        let chosen = vec!["10.0.0.2:5000".to_owned()];
        assert_eq!(bind_addrs(&chosen, &interfaces), ["10.0.0.2:5000"]);
    }

    #[test]
    fn answer_uses_the_profile_the_offer_has() {
        assert_eq!(h264_profile_for(None), "42e01f");
        assert_eq!(
            h264_profile_for(Some(
                "a=fmtp:102 packetization-mode=1;profile-level-id=42001f"
            )),
            "42001f"
        );
        assert_eq!(
            h264_profile_for(Some(
                "a=fmtp:96 profile-level-id=42E01F;packetization-mode=1"
            )),
            "42e01f"
        );
        assert_eq!(h264_profile_for(Some("a=rtpmap:96 VP8/90000")), "42e01f");
    }

    #[test]
    fn candidates_convert_both_ways() {
        let init = RTCIceCandidateInit {
            candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host".into(),
            sdp_mid: Some(String::new()),
            sdp_mline_index: Some(0),
            username_fragment: None,
            ..Default::default()
        };
        let signal = to_signal(init);
        assert_eq!(signal.sdp_mid.as_deref(), Some("0"));
        let back = from_signal(signal.clone());
        assert_eq!(
            (back.candidate, back.sdp_mid, back.sdp_mline_index),
            (signal.candidate, Some("0".into()), Some(0))
        );
    }
}
