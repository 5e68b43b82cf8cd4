//! One call's connection: the peer connection, its tracks, the chat channel and the media
//! flowing through them.
//!
//! Video and audio transceivers are always negotiated (send and receive), whatever the user
//! has switched on, so the camera and microphone can come and go mid-call without
//! renegotiation. So is a second video transceiver for a shared screen (track id
//! [`SCREEN_TRACK_ID`]) when both sides have one: the caller offers it, a callee answers it
//! only if it was offered. The caller creates the `chat` data channel (what goes on it is the call
//! core's business: `confab_call_core::chat`). Remote candidates that come
//! before the remote description are held until it is set. [`Session::close`] releases
//! everything: threads, tracks, sockets.

use std::sync::Arc;
use std::time::Instant;

use confab_protocol::IceCandidate;
use confab_protocol::chat::{CHAT_CHANNEL_LABEL, ChatMessage};
use confab_protocol::safety::Fingerprint;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::mpsc;
use tracing::{debug, warn};
use webrtc::data_channel::{
    DataChannel, DataChannelEvent, RTCDataChannelInit, RTCDataChannelState,
};
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCSessionDescription};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit, RtpSender};

use crate::control::Controls;
use crate::identity::Identity;
use crate::media::{AudioReceiver, Counters, PlayoutInput, VideoOutput, VideoReceiver};
use crate::peer::{self, NetworkConfig, PeerEvent, PeerEvents};
use crate::{CallError, Problem};
use confab_call_core::machine::Role;

#[cfg(test)]
mod sdp_fuzz;

/// How long hanging up waits for the peer to acknowledge our `bye`, and how often it looks.
const BYE_WAIT: std::time::Duration = std::time::Duration::from_millis(200);
const BYE_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// A local track and the sender that carries it.
struct Outgoing {
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
}

/// The id of the track that carries a shared screen (in its `msid`).
pub(crate) const SCREEN_TRACK_ID: &str = "screen";

pub(crate) struct Session {
    pc: Arc<dyn PeerConnection>,
    video: Outgoing,
    audio: Outgoing,
    /// The shared screen's track, when the peer negotiated one.
    screen: Option<Outgoing>,
    chat: Option<Arc<dyn DataChannel>>,
    chat_task: Option<tokio::task::JoinHandle<()>>,
    events: PeerEvents,
    /// How the chain steers the encoder and tells the receivers the round trip.
    controls: Arc<Controls>,
    has_remote_description: bool,
    early_candidates: Vec<RTCIceCandidateInit>,
    /// Relay-only: our descriptions go out without the local addresses webrtc-rs puts in.
    hide_addresses: bool,
    video_receiver: Option<VideoReceiver>,
    screen_receiver: Option<VideoReceiver>,
    audio_receiver: Option<AudioReceiver>,
}

/// A link's outgoing tracks with their negotiated payload types, for the call's encoders.
pub(crate) struct SendingTracks {
    pub video: (Arc<TrackLocalStaticSample>, u8),
    pub audio: (Arc<TrackLocalStaticSample>, u8),
    /// For a shared screen, when the peer takes a second video track.
    pub screen: Option<(Arc<TrackLocalStaticSample>, u8)>,
}

fn random_ssrc() -> u32 {
    // The low 32 bits of a random UUID: unique per stream, unpredictable.
    uuid::Uuid::new_v4().as_u128() as u32
}

fn local_track(
    kind: RtpCodecKind,
    id: &str,
    codec: RTCRtpCodec,
) -> Result<Arc<TrackLocalStaticSample>, CallError> {
    let coding = RTCRtpCodingParameters {
        ssrc: Some(random_ssrc()),
        ..Default::default()
    };
    let encoding = RTCRtpEncodingParameters {
        rtp_coding_parameters: coding,
        codec,
        ..Default::default()
    };
    let track = MediaStreamTrack::new("confab".into(), id.into(), id.into(), kind, vec![encoding]);
    Ok(Arc::new(TrackLocalStaticSample::new(
        Instant::now(),
        track,
    )?))
}

impl Session {
    /// Creates the connection. The caller gets its offer back; the callee applies
    /// `remote_offer` and gets its answer back. Either way, send the SDP to the peer.
    pub async fn start(
        role: Role,
        network: &NetworkConfig,
        identity: &Identity,
        remote_offer: Option<String>,
        events: PeerEvents,
        (counters, controls): (Arc<Counters>, Arc<Controls>),
    ) -> Result<(Session, String), CallError> {
        let pc = peer::build(
            network,
            identity,
            events.clone(),
            counters,
            controls.clone(),
        )
        .await?;
        match Session::negotiate(pc.clone(), role, remote_offer, events, controls).await {
            Ok((mut session, sdp)) => {
                session.hide_addresses = network.relay_only;
                let sdp = session.as_sent(sdp);
                Ok((session, sdp))
            }
            Err(err) => {
                // Never leak a half-built connection.
                let _ = pc.close().await;
                Err(err)
            }
        }
    }

    async fn negotiate(
        pc: Arc<dyn PeerConnection>,
        role: Role,
        remote_offer: Option<String>,
        events: PeerEvents,
        controls: Arc<Controls>,
    ) -> Result<(Session, String), CallError> {
        let profile = peer::h264_profile_for(remote_offer.as_deref());
        let video_track = local_track(RtpCodecKind::Video, "video", peer::h264_codec(profile))?;
        let audio_track = local_track(RtpCodecKind::Audio, "audio", peer::opus_codec())?;
        let screen_track = local_track(
            RtpCodecKind::Video,
            SCREEN_TRACK_ID,
            peer::h264_codec(profile),
        )?;
        if let Some(&ssrc) = screen_track.ssrcs().await.first() {
            // The peer's keyframe requests for this SSRC go to the screen's encoder.
            controls
                .screen_ssrc
                .store(ssrc, std::sync::atomic::Ordering::Relaxed);
        }
        let mut session_chat = None;
        let mut screen_sender = None;
        let (video_sender, audio_sender, local) = match (role, remote_offer) {
            (Role::Caller, _) => {
                let video_sender = add_video(&pc, &video_track).await?;
                let audio_sender = pc
                    .add_track(audio_track.clone() as Arc<dyn TrackLocal>)
                    .await?;
                // The screen's, after the camera's and the microphone's (older peers take
                // the first video section for the camera).
                screen_sender = Some(add_video(&pc, &screen_track).await?);
                let chat_init = RTCDataChannelInit {
                    ordered: true,
                    ..Default::default()
                };
                session_chat = Some(
                    pc.create_data_channel(CHAT_CHANNEL_LABEL, Some(chat_init))
                        .await?,
                );
                let offer = pc.create_offer(None).await?;
                pc.set_local_description(offer.clone()).await?;
                (video_sender, audio_sender, offer.sdp)
            }
            (Role::Callee, Some(offer)) => {
                let screen_offered = video_sections(&offer) >= 2;
                pc.set_remote_description(RTCSessionDescription::offer(offer)?)
                    .await?;
                // Added after the offer, the tracks take over the offered transceivers.
                let video_sender = pc
                    .add_track(video_track.clone() as Arc<dyn TrackLocal>)
                    .await?;
                let audio_sender = pc
                    .add_track(audio_track.clone() as Arc<dyn TrackLocal>)
                    .await?;
                if screen_offered {
                    // Takes the second offered video section.
                    let sender = pc
                        .add_track(screen_track.clone() as Arc<dyn TrackLocal>)
                        .await?;
                    screen_sender = Some(sender);
                }
                let answer = pc.create_answer(None).await?;
                pc.set_local_description(answer.clone()).await?;
                (video_sender, audio_sender, answer.sdp)
            }
            (Role::Callee, None) => return Err(CallError::WebRtc("no offer to answer".into())),
        };
        let mut session = Session {
            has_remote_description: role == Role::Callee,
            pc,
            video: Outgoing {
                track: video_track,
                sender: video_sender,
            },
            audio: Outgoing {
                track: audio_track,
                sender: audio_sender,
            },
            screen: screen_sender.map(|sender| Outgoing {
                track: screen_track,
                sender,
            }),
            chat: None,
            chat_task: None,
            events,
            controls,
            early_candidates: Vec::new(),
            hide_addresses: false,
            video_receiver: None,
            screen_receiver: None,
            audio_receiver: None,
        };
        if let Some(channel) = session_chat {
            session.attach_chat(channel);
        }
        Ok((session, local))
    }

    /// The callee's answer, on the caller's side.
    pub async fn apply_answer(&mut self, sdp: String) -> Result<(), CallError> {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        self.has_remote_description = true;
        for candidate in std::mem::take(&mut self.early_candidates) {
            if let Err(err) = self.pc.add_ice_candidate(candidate).await {
                debug!("a held candidate was refused: {err}");
            }
        }
        Ok(())
    }

    /// The peer renegotiates: returns our answer. An offer of ours that it crossed (both
    /// restarted ICE at once, and the core let the peer's win) is rolled back first.
    pub async fn apply_offer(&mut self, sdp: String) -> Result<String, CallError> {
        if self.pc.pending_local_description().await.is_some() {
            self.pc
                .set_local_description(RTCSessionDescription::rollback(None)?)
                .await?;
        }
        self.pc
            .set_remote_description(RTCSessionDescription::offer(sdp)?)
            .await?;
        self.has_remote_description = true;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer.clone()).await?;
        Ok(self.as_sent(answer.sdp))
    }

    /// Restarts ICE: returns the offer with new credentials. The connection binds its
    /// sockets again on the interfaces there are now, and trickles the new candidates.
    pub async fn restart_ice(&mut self) -> Result<String, CallError> {
        let options = RTCOfferOptions { ice_restart: true };
        let offer = self.pc.create_offer(Some(options)).await?;
        self.pc.set_local_description(offer.clone()).await?;
        Ok(self.as_sent(offer.sdp))
    }

    /// Our description as the peer may see it.
    fn as_sent(&self, sdp: String) -> String {
        if self.hide_addresses {
            peer::hide_related_addresses(&sdp)
        } else {
            sdp
        }
    }

    /// A trickled candidate from the peer (`None`: no more).
    pub async fn add_candidate(
        &mut self,
        candidate: Option<IceCandidate>,
    ) -> Result<(), CallError> {
        let Some(candidate) = candidate else {
            return Ok(());
        };
        let init = peer::from_signal(candidate);
        if !self.has_remote_description {
            self.early_candidates.push(init);
            return Ok(());
        }
        self.pc.add_ice_candidate(init).await?;
        Ok(())
    }

    /// The chat channel: ours (caller) or the one the caller opened.
    pub fn attach_chat(&mut self, channel: Arc<dyn DataChannel>) {
        if self.chat.is_some() {
            return;
        }
        let events = self.events.clone();
        let reader = channel.clone();
        self.chat_task = Some(tokio::spawn(async move {
            while let Some(event) = reader.poll().await {
                let forward = match event {
                    DataChannelEvent::OnOpen => PeerEvent::ChatOpen,
                    DataChannelEvent::OnMessage(message) => {
                        PeerEvent::ChatMessage(message.data.to_vec())
                    }
                    DataChannelEvent::OnClose => break,
                    _ => continue,
                };
                if !events.send(forward) {
                    return;
                }
            }
            events.send(PeerEvent::ChatClosed);
        }));
        self.chat = Some(channel);
    }

    /// Opens a file transfer's channel (ordered and reliable, as the chat's).
    pub async fn open_file_channel(&self, label: &str) -> Result<Arc<dyn DataChannel>, CallError> {
        let init = RTCDataChannelInit {
            ordered: true,
            ..Default::default()
        };
        Ok(self.pc.create_data_channel(label, Some(init)).await?)
    }

    /// Sends `message` on the chat channel (the core sends only once it is open).
    pub async fn send_chat(&self, message: &ChatMessage) -> Result<(), CallError> {
        let channel = self.chat.as_ref().ok_or(CallError::ChatClosed)?;
        channel
            .send_text(&message.to_json())
            .await
            .map_err(|_| CallError::ChatClosed)
    }

    /// The outgoing tracks and their payload types, once connected (they are settled by
    /// then), for the call's encoders to send on.
    pub async fn sending_tracks(&self) -> Result<SendingTracks, CallError> {
        let video = negotiated_payload_type(&self.video.sender, MIME_TYPE_H264).await?;
        let audio = negotiated_payload_type(&self.audio.sender, MIME_TYPE_OPUS).await?;
        let mut screen = None;
        if let Some(outgoing) = &self.screen {
            // A peer that refused the section has no codec on it: no screen track.
            match negotiated_payload_type(&outgoing.sender, MIME_TYPE_H264).await {
                Ok(payload_type) => screen = Some((outgoing.track.clone(), payload_type)),
                Err(err) => debug!("no screen track: {err}"),
            }
        }
        Ok(SendingTracks {
            video: (self.video.track.clone(), video),
            audio: (self.audio.track.clone(), audio),
            screen,
        })
    }

    /// A remote track has started: receive it.
    /// Video goes to `video`, a shared screen to `screen` (counted in `screen_counters`);
    /// audio is read into a jitter buffer, returned for the call's playout to take from.
    pub async fn receive(
        &mut self,
        track: Arc<dyn TrackRemote>,
        (video, screen): (VideoOutput, VideoOutput),
        (counters, screen_counters): (&Arc<Counters>, &Arc<Counters>),
        problems: &mpsc::UnboundedSender<Problem>,
    ) -> Result<Option<PlayoutInput>, CallError> {
        let is_screen = track.track_id().await == SCREEN_TRACK_ID;
        match track.kind().await {
            RtpCodecKind::Video if is_screen && self.screen_receiver.is_none() => {
                self.screen_receiver = Some(VideoReceiver::start(
                    track,
                    screen,
                    screen_counters.clone(),
                    self.controls.clone(),
                    problems.clone(),
                )?);
            }
            RtpCodecKind::Video if !is_screen && self.video_receiver.is_none() => {
                self.video_receiver = Some(VideoReceiver::start(
                    track,
                    video,
                    counters.clone(),
                    self.controls.clone(),
                    problems.clone(),
                )?);
            }
            RtpCodecKind::Audio if self.audio_receiver.is_none() => {
                let (receiver, input) = AudioReceiver::start(track, counters.clone())?;
                self.audio_receiver = Some(receiver);
                return Ok(Some(input));
            }
            other => warn!("ignoring an extra remote {other} track"),
        }
        Ok(None)
    }

    /// The fingerprint of the certificate the peer presented in the DTLS handshake (what the
    /// connection is encrypted to, whatever the signaling relayed); `None` before it is done.
    pub async fn remote_fingerprint(&self) -> Option<Fingerprint> {
        let sctp = self.pc.sctp().await?;
        let chain = sctp.transport().get_remote_certificates().await.ok()?;
        chain.first().map(|der| Fingerprint::of_certificate(der))
    }

    pub fn peer_connection(&self) -> &Arc<dyn PeerConnection> {
        &self.pc
    }

    /// Says goodbye on the chat channel, then releases everything. A call hung up just
    /// after it connected may not have its channel open yet: the bye waits for it, within
    /// the same [`BYE_WAIT`].
    pub async fn close(mut self, say_bye: bool) {
        if say_bye && let Some(chat) = &self.chat {
            // `send_text` only queues; closing the channel at once would drop the bye. Wait
            // (briefly) until the peer has acknowledged everything we sent.
            let delivered = async {
                while chat.ready_state().await? == RTCDataChannelState::Connecting {
                    tokio::time::sleep(BYE_POLL).await;
                }
                chat.send_text(&ChatMessage::Bye.to_json()).await?;
                while chat.outstanding_bytes().await? > 0 {
                    tokio::time::sleep(BYE_POLL).await;
                }
                Ok::<_, webrtc::error::Error>(())
            };
            match tokio::time::timeout(BYE_WAIT, delivered).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => debug!("bye not sent: {err}"),
                Err(_) => debug!("bye not acknowledged within {BYE_WAIT:?}"),
            }
        }
        if let Some(chat) = self.chat.take() {
            let _ = chat.close().await;
        }
        if let Some(task) = self.chat_task.take() {
            task.abort();
        }
        // Media threads are joined: do it off the async runtime.
        let media = (
            self.video_receiver.take(),
            self.screen_receiver.take(),
            self.audio_receiver.take(),
        );
        let _ = tokio::task::spawn_blocking(move || drop(media)).await;
        if let Err(err) = self.pc.close().await {
            debug!("closing the peer connection: {err}");
        }
    }
}

/// A caller's video transceiver sending `track`: send and receive, offering both H.264
/// profiles (not only the track's), RTX and FlexFEC.
async fn add_video(
    pc: &Arc<dyn PeerConnection>,
    track: &Arc<TrackLocalStaticSample>,
) -> Result<Arc<dyn RtpSender>, CallError> {
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendrecv,
        ..Default::default()
    };
    let transceiver = pc
        .add_transceiver_from_track(track.clone() as Arc<dyn TrackLocal>, Some(init))
        .await?;
    transceiver
        .set_codec_preferences(peer::video_codecs())
        .await?;
    transceiver
        .sender()
        .await?
        .ok_or_else(|| CallError::WebRtc("a video transceiver has no sender".into()))
}

/// How many video sections (`m=video`) a description has.
fn video_sections(sdp: &str) -> usize {
    sdp.lines()
        .filter(|line| line.starts_with("m=video"))
        .count()
}

/// The payload type negotiated for `mime` on `sender`.
async fn negotiated_payload_type(sender: &Arc<dyn RtpSender>, mime: &str) -> Result<u8, CallError> {
    let parameters = sender.get_parameters().await?;
    parameters
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
        .map(|c| c.payload_type)
        .ok_or_else(|| CallError::WebRtc(format!("the peer accepted no {mime}")))
}
