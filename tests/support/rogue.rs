//! The parts of a peer built by hand on webrtc-rs, for tests that play someone Confab must
//! not trust (a hostile peer, a man in the middle) or an older client: Confab's codecs with
//! the payload types a browser uses, local tracks, a handler that forwards the connection's
//! events, and a plain signaling client.

use std::sync::Arc;

use confab_protocol::{
    ClientMessage, IceCandidate, PROTOCOL_VERSION, PeerId, ServerMessage, parse_server_message,
};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use webrtc::peer_connection::PeerConnection;

use super::PATIENCE;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, RTCDataChannelInit};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
};

pub fn h264(profile_level_id: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: format!(
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile_level_id}"
        ),
        rtcp_feedback: vec![],
    }
}

pub fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

pub fn media_engine() -> MediaEngine {
    let mut engine = MediaEngine::default();
    for (payload_type, profile) in [(125, "42e01f"), (102, "42001f")] {
        let codec = RTCRtpCodecParameters {
            rtp_codec: h264(profile),
            payload_type,
        };
        engine.register_codec(codec, RtpCodecKind::Video).unwrap();
    }
    let codec = RTCRtpCodecParameters {
        rtp_codec: opus(),
        payload_type: 111,
    };
    engine.register_codec(codec, RtpCodecKind::Audio).unwrap();
    engine
}

pub fn local_track(
    kind: RtpCodecKind,
    id: &str,
    ssrc: u32,
    codec: RTCRtpCodec,
) -> MediaStreamTrack {
    let encoding = RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters {
            ssrc: Some(ssrc),
            ..Default::default()
        },
        codec,
        ..Default::default()
    };
    MediaStreamTrack::new("rogue".into(), id.into(), id.into(), kind, vec![encoding])
}

/// A candidate from webrtc-rs as the signaling protocol carries it (the first mid where
/// webrtc-rs leaves it empty, as browsers expect).
pub fn to_signal(init: RTCIceCandidateInit) -> IceCandidate {
    IceCandidate {
        candidate: init.candidate,
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
pub fn from_signal(candidate: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: candidate.candidate,
        sdp_mid: candidate.sdp_mid,
        sdp_mline_index: candidate.sdp_m_line_index,
        username_fragment: candidate.username_fragment,
        ..Default::default()
    }
}

/// A caller's last steps: the `chat` channel (made before the offer, as Confab's caller
/// does), then the offer, set as the local description; returns both.
pub async fn chat_and_offer(pc: &Arc<dyn PeerConnection>) -> (Arc<dyn DataChannel>, String) {
    let chat_init = RTCDataChannelInit {
        ordered: true,
        ..Default::default()
    };
    let chat = pc
        .create_data_channel(confab_protocol::chat::CHAT_CHANNEL_LABEL, Some(chat_init))
        .await
        .unwrap();
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer.clone()).await.unwrap();
    (chat, offer.sdp)
}

/// What the peer connection reports.
pub enum PcEvent {
    Candidate(RTCIceCandidateInit),
    State(RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
    DataChannel(Arc<dyn DataChannel>),
}

/// Forwards the connection's events to a channel.
pub struct Handler(pub mpsc::UnboundedSender<PcEvent>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.0.send(PcEvent::Candidate(init));
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.0.send(PcEvent::State(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.0.send(PcEvent::Track(track));
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let _ = self.0.send(PcEvent::DataChannel(channel));
    }
}

// ------------------------------------------------------------------------------------------
// A peer's signaling: a plain WebSocket client speaking docs/protocol.md.
// ------------------------------------------------------------------------------------------

pub struct Signaling {
    pub out: mpsc::UnboundedSender<ClientMessage>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Signs in; returns the connection, what the server sends, and `callee`'s id.
pub async fn sign_in(
    url: &str,
    name: &str,
    callee: &str,
) -> (Signaling, mpsc::UnboundedReceiver<ServerMessage>, PeerId) {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("reaches the server");
    let (mut sink, mut stream) = ws.split();
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        name: name.into(),
        token: None,
        resume: None,
    };
    sink.send(Message::text(serde_json::to_string(&hello).unwrap()))
        .await
        .unwrap();
    let peers = loop {
        let frame = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("welcome in time")
            .expect("the server stays")
            .unwrap();
        if let Message::Text(text) = frame
            && let Ok(ServerMessage::Welcome { peers, .. }) = parse_server_message(&text)
        {
            break peers;
        }
    };
    let callee = peers
        .iter()
        .find(|p| p.name == callee)
        .unwrap_or_else(|| panic!("{callee} is online"))
        .id
        .clone();
    let (out, mut out_rx) = mpsc::unbounded_channel::<ClientMessage>();
    let (inbox_tx, inbox) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                msg = out_rx.recv() => {
                    let Some(msg) = msg else { break };
                    let text = serde_json::to_string(&msg).unwrap();
                    if sink.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                frame = stream.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if let Ok(msg) = parse_server_message(&text) {
                            let _ = inbox_tx.send(msg);
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
            }
        }
        let _ = sink.close().await;
    });
    (Signaling { out, task }, inbox, callee)
}
