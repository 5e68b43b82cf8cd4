//! The engine: one driver task that owns the signaling client, the call state machine, the
//! current call's session and the camera, and turns commands and events into actions.
//!
//! The application holds an [`Engine`] (commands in) and a receiver of [`EngineEvent`]s
//! (news out), plus latest-frame slots for the remote video and the self-view. Nothing the
//! application calls blocks: commands are queued, events are polled, frames are taken from
//! slots, and an optional wake callback says when to look.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use confab_media::audio::InputControl;
use confab_media::slot::LatestSlot;
use confab_media::video::{FrameSlot, H264EncoderConfig, VideoCapture, VideoFormat};
use confab_protocol::chat::{CHAT_CHANNEL_LABEL, ChatMessage, validate_chat_text};
use confab_protocol::{
    CallId, ClientMessage, ErrorCode, IceServer, PeerId, PeerInfo, ServerMessage,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use webrtc::peer_connection::RTCPeerConnectionState;

use crate::media::{
    self, AudioInput, AudioOutput, Counters, MediaProblem, RemoteVideoFrame, VideoInput,
    VideoOutput,
};
use crate::peer::{NetworkConfig, PeerEvent};
use crate::session::Session;
use crate::signaling::{self, SignalingConfig, SignalingEvent, SignalingHandle};
use crate::stats::{CallStats, CallSummary, StatsCollector};
use confab_call_core::machine::{Action, CallMachine, CallState, Role, Timeouts};

/// Everything the engine needs to know at start; devices can change later by command.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub signaling: SignalingConfig,
    /// The user's own STUN/TURN servers and network choices; the server's are added.
    pub network: NetworkConfig,
    pub video_input: VideoInput,
    pub video_format: VideoFormat,
    pub audio_input: AudioInput,
    pub audio_output: AudioOutput,
    /// Write received video (Annex B H.264) here.
    pub record_video: Option<PathBuf>,
    /// Convert received video to RGBA for display.
    pub render_video: bool,
    pub timeouts: Timeouts,
}

/// What the application asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Call {
        peer: PeerId,
    },
    Accept,
    Decline,
    HangUp,
    SendChat(String),
    SetMuted(bool),
    /// Camera on or off; off releases the device.
    SetCamera(bool),
    SetVideoInput(VideoInput),
    SetVideoFormat(VideoFormat),
    SetAudioInput(AudioInput),
    /// Takes effect from the next call.
    SetAudioOutput(AudioOutput),
    Shutdown,
}

/// The signaling connection, as the user sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerStatus {
    Connecting {
        attempt: u32,
    },
    Online {
        my_id: PeerId,
    },
    Offline {
        reason: String,
        retry_in: Duration,
    },
    /// Refused for good (wrong token, name taken...): change the settings and restart.
    Refused {
        code: ErrorCode,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// The chat channel is open: messages can be sent.
    Open,
    /// Our message left (not yet delivered).
    Sent {
        id: String,
        text: String,
        sent_at_ms: u64,
    },
    /// The peer confirmed it.
    Delivered { id: String },
    Received {
        id: String,
        text: String,
        sent_at_ms: u64,
    },
    /// Could not be sent (too long, no call...). `id` is set for a message already
    /// reported as [`ChatEvent::Sent`] that never went out after all (it waited for the chat
    /// channel, and the call ended first).
    Failed {
        id: Option<String>,
        text: String,
        reason: String,
    },
}

/// What the engine reports.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    Server(ServerStatus),
    Roster(Vec<PeerInfo>),
    Call(CallState),
    Chat(ChatEvent),
    /// Once a second during a call.
    Stats(CallStats),
    /// When a call ends: its totals.
    Summary(CallSummary),
    /// Something the user should know (a device failed, the peer is offline...).
    Problem(String),
}

pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// The application's handle.
pub struct Engine {
    commands: mpsc::UnboundedSender<Command>,
    /// Decoded remote video, newest frame only.
    pub remote_video: Arc<LatestSlot<Arc<RemoteVideoFrame>>>,
    /// The self-view, newest frame only.
    pub local_video: Arc<FrameSlot>,
    /// Mute switch and microphone level.
    pub input: Arc<InputControl>,
    /// The level of the peer's audio as it is played.
    pub remote_audio: Arc<InputControl>,
    task: tokio::task::JoinHandle<()>,
}

impl Engine {
    /// Starts the engine on the current tokio runtime.
    pub fn start(
        config: EngineConfig,
        wake: Option<Wake>,
    ) -> (Engine, mpsc::UnboundedReceiver<EngineEvent>) {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (events, event_rx) = mpsc::unbounded_channel();
        let (signal_tx, signal_rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let (signaling, signaling_task) =
            signaling::spawn(config.signaling.clone(), signal_tx, stop.clone());
        let remote_video = Arc::new(LatestSlot::new());
        let local_video = Arc::new(FrameSlot::new());
        let input = Arc::new(InputControl::new());
        let remote_audio = Arc::new(InputControl::new());
        let (problems, problem_rx) = mpsc::unbounded_channel();
        let driver = Driver {
            machine: CallMachine::new(config.timeouts),
            config,
            signaling,
            events,
            wake,
            server_ice: Vec::new(),
            roster: Vec::new(),
            call: None,
            camera_on: true,
            remote_video: remote_video.clone(),
            local_video: local_video.clone(),
            input: input.clone(),
            remote_audio: remote_audio.clone(),
            problems,
        };
        let task =
            tokio::spawn(driver.run(command_rx, signal_rx, problem_rx, stop, signaling_task));
        let engine = Engine {
            commands,
            remote_video,
            local_video,
            input,
            remote_audio,
            task,
        };
        (engine, event_rx)
    }

    /// Queues a command; false once the engine has stopped.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// Hangs up any call, disconnects and waits for everything to be released.
    pub async fn shutdown(self) {
        let _ = self.commands.send(Command::Shutdown);
        let _ = self.task.await;
    }
}

/// The current call's resources.
struct ActiveCall {
    session: Option<Session>,
    peer_events: mpsc::UnboundedReceiver<PeerEvent>,
    capture: Option<VideoCapture>,
    counters: Arc<Counters>,
    stats: StatsCollector,
    /// The peer accepted our chat messages so far (for the summary).
    chats_sent: u64,
    chats_received: u64,
}

struct Driver {
    config: EngineConfig,
    signaling: SignalingHandle,
    events: mpsc::UnboundedSender<EngineEvent>,
    wake: Option<Wake>,
    machine: CallMachine,
    server_ice: Vec<IceServer>,
    roster: Vec<PeerInfo>,
    call: Option<ActiveCall>,
    camera_on: bool,
    remote_video: Arc<LatestSlot<Arc<RemoteVideoFrame>>>,
    local_video: Arc<FrameSlot>,
    input: Arc<InputControl>,
    remote_audio: Arc<InputControl>,
    problems: mpsc::UnboundedSender<MediaProblem>,
}

const STATS_INTERVAL: Duration = Duration::from_secs(1);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut signaling: mpsc::UnboundedReceiver<SignalingEvent>,
        mut problems: mpsc::UnboundedReceiver<MediaProblem>,
        stop: CancellationToken,
        signaling_task: tokio::task::JoinHandle<()>,
    ) {
        let mut stats_tick = tokio::time::interval(STATS_INTERVAL);
        loop {
            let deadline = self
                .machine
                .next_deadline()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.command(command).await,
                },
                Some(event) = signaling.recv() => self.signaling_event(event).await,
                Some(event) = next_peer_event(&mut self.call) => self.peer_event(event).await,
                Some(problem) = problems.recv() => self.problem(problem),
                () = sleep_until(deadline) => {
                    let actions = self.machine.tick(Instant::now());
                    self.perform(actions).await;
                }
                _ = stats_tick.tick() => self.stats().await,
            }
        }
        // Leaving: end the call properly; the signaling client sends what is queued (the
        // hangup) before it disconnects.
        let actions = self.machine.hang_up();
        self.perform(actions).await;
        stop.cancel();
        let _ = signaling_task.await;
    }

    fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event);
        if let Some(wake) = &self.wake {
            wake();
        }
    }

    fn problem(&self, problem: MediaProblem) {
        let text = match problem {
            MediaProblem::Camera(e) => format!("camera: {e}"),
            MediaProblem::Microphone(e) => format!("microphone: {e}"),
            MediaProblem::Speaker(e) => format!("speaker: {e}"),
            MediaProblem::Recording(e) => format!("recording: {e}"),
        };
        self.emit(EngineEvent::Problem(text));
    }

    fn signal(&self, msg: ClientMessage) {
        if !self.signaling.send(msg) {
            debug!("signaling is not connected; a message was dropped");
        }
    }

    async fn command(&mut self, command: Command) {
        let now = Instant::now();
        let actions = match command {
            Command::Call { peer } => {
                let Some(info) = self.roster.iter().find(|p| p.id == peer) else {
                    self.emit(EngineEvent::Problem(
                        "that person is no longer online".into(),
                    ));
                    return;
                };
                let call_id = CallId::new(uuid::Uuid::new_v4().to_string())
                    .expect("a UUID is a valid call id");
                self.machine.call(peer, info.name.clone(), call_id, now)
            }
            Command::Accept => self.machine.accept(now),
            Command::Decline => self.machine.decline(),
            Command::HangUp => self.machine.hang_up(),
            Command::SendChat(text) => {
                self.send_chat(text).await;
                Vec::new()
            }
            Command::SetMuted(muted) => {
                self.input.set_muted(muted);
                Vec::new()
            }
            Command::SetCamera(on) => {
                self.camera_on = on;
                self.restart_camera();
                Vec::new()
            }
            Command::SetVideoInput(input) => {
                self.config.video_input = input;
                self.restart_camera();
                Vec::new()
            }
            Command::SetVideoFormat(format) => {
                self.config.video_format = format;
                self.restart_camera();
                Vec::new()
            }
            Command::SetAudioInput(input) => {
                self.config.audio_input = input;
                self.restart_microphone().await;
                Vec::new()
            }
            Command::SetAudioOutput(output) => {
                self.config.audio_output = output;
                Vec::new()
            }
            Command::Shutdown => Vec::new(),
        };
        self.perform(actions).await;
    }

    async fn signaling_event(&mut self, event: SignalingEvent) {
        let now = Instant::now();
        let actions = match event {
            SignalingEvent::Connecting { attempt } => {
                self.emit(EngineEvent::Server(ServerStatus::Connecting { attempt }));
                return;
            }
            SignalingEvent::Online { my_id, ice_servers } => {
                self.machine.set_my_id(my_id.clone());
                self.server_ice = ice_servers;
                self.emit(EngineEvent::Server(ServerStatus::Online { my_id }));
                return;
            }
            SignalingEvent::Offline { reason, retry_in } => {
                self.emit(EngineEvent::Server(ServerStatus::Offline {
                    reason,
                    retry_in,
                }));
                // Answered calls go on (media is peer to peer); ringing ones cannot.
                self.machine.on_signaling_lost()
            }
            SignalingEvent::Refused { code, message } => {
                self.emit(EngineEvent::Server(ServerStatus::Refused { code, message }));
                return;
            }
            SignalingEvent::Roster(peers) => {
                self.roster = peers.clone();
                self.emit(EngineEvent::Roster(peers));
                return;
            }
            SignalingEvent::Message(msg) => match msg {
                ServerMessage::Offer {
                    from,
                    from_name,
                    call_id,
                    sdp,
                } => self.machine.on_offer(from, from_name, call_id, sdp, now),
                ServerMessage::Answer { from, call_id, sdp } => {
                    self.machine.on_answer(&from, &call_id, sdp, now)
                }
                ServerMessage::Candidate {
                    from,
                    call_id,
                    candidate,
                } => self.machine.on_candidate(&from, &call_id, candidate),
                ServerMessage::Hangup {
                    from,
                    call_id,
                    reason,
                } => self.machine.on_hangup(&from, &call_id, reason),
                ServerMessage::Error {
                    message,
                    call_id: Some(call_id),
                    ..
                } => self.machine.on_signal_error(&call_id, &message),
                ServerMessage::Error { message, .. } => {
                    warn!("signaling server: {message}");
                    return;
                }
                _ => return,
            },
        };
        self.perform(actions).await;
    }

    async fn peer_event(&mut self, event: PeerEvent) {
        let Some((call_id, peer)) = self.machine.current().map(|(c, p)| (c.clone(), p.clone()))
        else {
            return;
        };
        let now = Instant::now();
        let actions = match event {
            PeerEvent::LocalCandidate(candidate) => {
                self.signal(ClientMessage::Candidate {
                    to: peer,
                    call_id,
                    candidate: Some(candidate),
                });
                return;
            }
            PeerEvent::GatheringComplete => {
                self.signal(ClientMessage::Candidate {
                    to: peer,
                    call_id,
                    candidate: None,
                });
                return;
            }
            PeerEvent::State(RTCPeerConnectionState::Connected) => {
                if let Some(call) = &mut self.call {
                    call.stats.connected(now);
                }
                let actions = self.machine.on_connected(now);
                self.start_media().await;
                actions
            }
            PeerEvent::State(RTCPeerConnectionState::Disconnected) => {
                self.machine.on_disconnected(now)
            }
            PeerEvent::State(RTCPeerConnectionState::Failed) => {
                self.machine.on_failed("the connection failed")
            }
            PeerEvent::State(_) => return,
            PeerEvent::Track(track) => {
                self.receive_track(track).await;
                return;
            }
            PeerEvent::DataChannel(channel) => {
                if channel
                    .label()
                    .await
                    .is_ok_and(|label| label == CHAT_CHANNEL_LABEL)
                    && let Some(session) = self.session_mut()
                {
                    session.attach_chat(channel);
                }
                return;
            }
            PeerEvent::ChatOpen => {
                self.emit(EngineEvent::Chat(ChatEvent::Open));
                if let Some(session) = self.session_mut()
                    && let Err(err) = session.chat_opened().await
                {
                    self.emit(EngineEvent::Problem(format!("chat: {err}")));
                }
                return;
            }
            PeerEvent::ChatClosed => return,
            PeerEvent::ChatMessage(bytes) => self.chat_message(&bytes).await,
        };
        self.perform(actions).await;
    }

    fn session_mut(&mut self) -> Option<&mut Session> {
        self.call.as_mut().and_then(|c| c.session.as_mut())
    }

    /// Performs the machine's actions, and any they lead to.
    async fn perform(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Signal(msg) => self.signal(msg),
                Action::State(state) => {
                    if let CallState::Connected { peer_name, .. } = &state {
                        info!(peer = %peer_name, "call connected");
                    }
                    self.emit(EngineEvent::Call(state))
                }
                Action::StartPeer {
                    role,
                    peer,
                    call_id,
                    remote_offer,
                } => {
                    if let Err(err) = self.start_peer(role, peer, call_id, remote_offer).await {
                        warn!("starting the call failed: {err}");
                        queue.extend(self.machine.on_failed(&err.to_string()));
                    }
                }
                Action::ApplyAnswer(sdp) => {
                    let result = match self.session_mut() {
                        Some(session) => session.apply_answer(sdp).await,
                        None => Ok(()),
                    };
                    if let Err(err) = result {
                        queue.extend(self.machine.on_failed(&format!("bad answer: {err}")));
                    }
                }
                Action::ApplyOffer(sdp) => {
                    let answer = match self.session_mut() {
                        Some(session) => session.apply_offer(sdp).await.map(Some),
                        None => Ok(None),
                    };
                    match (answer, self.machine.current()) {
                        (Ok(Some(sdp)), Some((call_id, peer))) => {
                            self.signal(ClientMessage::Answer {
                                to: peer.clone(),
                                call_id: call_id.clone(),
                                sdp,
                            })
                        }
                        (Err(err), _) => warn!("renegotiation failed: {err}"),
                        _ => {}
                    }
                }
                Action::AddCandidate(candidate) => {
                    if let Some(session) = self.session_mut()
                        && let Err(err) = session.add_candidate(candidate).await
                    {
                        debug!("a remote candidate was refused: {err}");
                    }
                }
                Action::ClosePeer => self.close_call().await,
            }
        }
    }

    async fn start_peer(
        &mut self,
        role: Role,
        peer: PeerId,
        call_id: CallId,
        remote_offer: Option<String>,
    ) -> Result<(), crate::CallError> {
        let mut network = self.config.network.clone();
        network
            .ice_servers
            .splice(0..0, self.server_ice.iter().cloned());
        let (peer_tx, peer_events) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters {
            remote_level: self.remote_audio.clone(),
            ..Counters::default()
        });
        let session_counters = counters.clone();
        self.call = Some(ActiveCall {
            session: None,
            peer_events,
            capture: None,
            stats: StatsCollector::new(Instant::now()),
            counters,
            chats_sent: 0,
            chats_received: 0,
        });
        // The camera comes on with the call (the callee's only once accepted), for the
        // self-view while it connects.
        self.restart_camera();
        let (session, sdp) =
            Session::start(role, &network, remote_offer, peer_tx, session_counters).await?;
        let message = match role {
            Role::Caller => ClientMessage::Offer {
                to: peer,
                call_id,
                sdp,
            },
            Role::Callee => ClientMessage::Answer {
                to: peer,
                call_id,
                sdp,
            },
        };
        self.signal(message);
        if let Some(call) = &mut self.call {
            call.session = Some(session);
        }
        Ok(())
    }

    /// Connected: start sending what the user has switched on.
    async fn start_media(&mut self) {
        let encoder = H264EncoderConfig {
            bitrate_bps: crate::interceptors::START_BITRATE_BPS as u32,
            fps: self.config.video_format.fps,
            keyframe_interval: None,
        };
        let Some(call) = &mut self.call else { return };
        let Some(session) = &mut call.session else {
            return;
        };
        if let Err(err) = session
            .start_sending(encoder, self.input.clone(), &call.counters, &self.problems)
            .await
        {
            warn!("cannot start sending: {err}");
            self.emit(EngineEvent::Problem(format!("cannot send media: {err}")));
            return;
        }
        if let (Some(capture), Some(sender)) = (&call.capture, &session.video_sender) {
            sender.set_source(Some(capture.subscribe()));
        }
        self.restart_microphone().await;
    }

    /// (Re)opens the camera as configured, or releases it.
    fn restart_camera(&mut self) {
        let Some(call) = &mut self.call else { return };
        // Release the old device before opening the new one.
        if let Some(sender) = call.session.as_ref().and_then(|s| s.video_sender.as_ref()) {
            sender.set_source(None);
        }
        call.capture = None;
        if !self.camera_on {
            return;
        }
        match media::open_video(&self.config.video_input, self.config.video_format) {
            Ok(Some(capture)) => {
                capture.attach(self.local_video.clone(), self.wake.clone());
                if let Some(sender) = call.session.as_ref().and_then(|s| s.video_sender.as_ref()) {
                    sender.set_source(Some(capture.subscribe()));
                }
                call.capture = Some(capture);
            }
            Ok(None) => {}
            Err(err) => {
                let _ = self.problems.send(MediaProblem::Camera(err.to_string()));
            }
        }
    }

    /// The current call's audio sender, once its media runs.
    fn audio_sender(&self) -> Option<&media::AudioSender> {
        self.call
            .as_ref()
            .and_then(|c| c.session.as_ref())
            .and_then(|s| s.audio_sender.as_ref())
    }

    /// (Re)opens the microphone (or other audio input) for a call that is sending.
    async fn restart_microphone(&mut self) {
        let Some(sender) = self.audio_sender() else {
            return;
        };
        sender.set_source(None);
        let input = self.config.audio_input.clone();
        // Opening a device may block (a sound server handshake): not on the runtime.
        let opened = tokio::task::spawn_blocking(move || media::open_audio_input(&input)).await;
        let Some(sender) = self.audio_sender() else {
            return;
        };
        match opened {
            Ok(Ok(source)) => sender.set_source(source),
            Ok(Err(err)) => {
                let _ = self
                    .problems
                    .send(MediaProblem::Microphone(err.to_string()));
            }
            Err(err) => warn!("opening the microphone panicked: {err}"),
        }
    }

    async fn receive_track(
        &mut self,
        track: Arc<dyn webrtc::media_stream::track_remote::TrackRemote>,
    ) {
        let output = self.config.audio_output.clone();
        let sink =
            match tokio::task::spawn_blocking(move || media::open_audio_output(&output)).await {
                Ok(Ok(sink)) => sink,
                Ok(Err(err)) => {
                    let _ = self.problems.send(MediaProblem::Speaker(err.to_string()));
                    None
                }
                Err(_) => None,
            };
        let video = VideoOutput {
            frames: self.remote_video.clone(),
            wake: self.wake.clone(),
            render: self.config.render_video,
            record: self.config.record_video.clone(),
        };
        let Some(call) = &mut self.call else { return };
        let Some(session) = &mut call.session else {
            return;
        };
        if let Err(err) = session
            .receive(track, video, sink, &call.counters, &self.problems)
            .await
        {
            self.emit(EngineEvent::Problem(format!("cannot receive media: {err}")));
        }
    }

    async fn send_chat(&mut self, text: String) {
        if let Err(err) = validate_chat_text(&text) {
            self.emit(EngineEvent::Chat(ChatEvent::Failed {
                id: None,
                text,
                reason: err.to_string(),
            }));
            return;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let sent_at_ms = now_ms();
        let message = ChatMessage::Chat {
            id: id.clone(),
            text: text.clone(),
            sent_at_ms,
        };
        let connected = self.machine.is_connected();
        let result = match self.session_mut() {
            Some(session) if connected => session.send_chat(message).await,
            _ => Err(crate::CallError::NoCall),
        };
        match result {
            Ok(()) => {
                if let Some(call) = &mut self.call {
                    call.chats_sent += 1;
                }
                self.emit(EngineEvent::Chat(ChatEvent::Sent {
                    id,
                    text,
                    sent_at_ms,
                }));
            }
            Err(err) => self.emit(EngineEvent::Chat(ChatEvent::Failed {
                id: None,
                text,
                reason: err.to_string(),
            })),
        }
    }

    async fn chat_message(&mut self, bytes: &[u8]) -> Vec<Action> {
        let message = match ChatMessage::parse(bytes) {
            Ok(message) => message,
            Err(err) => {
                debug!("ignoring a chat message from the peer: {err}");
                return Vec::new();
            }
        };
        match message {
            ChatMessage::Chat {
                id,
                text,
                sent_at_ms,
            } => {
                if let Some(call) = &mut self.call {
                    call.chats_received += 1;
                    if let Some(session) = &mut call.session {
                        let _ = session.send_chat(ChatMessage::Ack { id: id.clone() }).await;
                    }
                }
                self.emit(EngineEvent::Chat(ChatEvent::Received {
                    id,
                    text,
                    sent_at_ms,
                }));
                Vec::new()
            }
            ChatMessage::Ack { id } => {
                self.emit(EngineEvent::Chat(ChatEvent::Delivered { id }));
                Vec::new()
            }
            ChatMessage::Bye => self.machine.on_bye(),
        }
    }

    async fn close_call(&mut self) {
        let Some(mut call) = self.call.take() else {
            return;
        };
        let summary = call.stats.summary(
            &call.counters,
            call.chats_sent,
            call.chats_received,
            self.machine.state(),
        );
        call.capture = None;
        if let Some(mut session) = call.session.take() {
            for (id, text) in session.take_unsent_chats() {
                self.emit(EngineEvent::Chat(ChatEvent::Failed {
                    id: Some(id),
                    text,
                    reason: crate::CallError::ChatNeverOpened.to_string(),
                }));
            }
            session.close(true).await;
        }
        info!("call ended");
        self.emit(EngineEvent::Summary(summary));
    }

    async fn stats(&mut self) {
        let Some(call) = &mut self.call else { return };
        if let Some(capture) = &call.capture
            && let Some(err) = capture.take_error()
        {
            let _ = self.problems.send(MediaProblem::Camera(err.to_string()));
        }
        let Some(session) = &call.session else { return };
        let stats = call
            .stats
            .collect(
                session.peer_connection(),
                &call.counters,
                self.machine.state(),
            )
            .await;
        self.emit(EngineEvent::Stats(stats));
    }
}

async fn next_peer_event(call: &mut Option<ActiveCall>) -> Option<PeerEvent> {
    match call {
        Some(call) => call.peer_events.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
