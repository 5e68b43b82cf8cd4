//! The engine: one driver task that owns the signaling client, the call's links (peer
//! connections), the camera and the media threads, and performs what the call core
//! (`confab_call_core::CallCore`) decides. Every decision is the core's: this task feeds it
//! commands, signaling and link events with the time, and carries out its outputs.
//!
//! The application holds an [`Engine`] (commands in) and a receiver of [`EngineEvent`]s
//! (news out), plus latest-frame slots for the remote video and the self-view. Nothing the
//! application calls blocks: commands are queued, events are polled, frames are taken from
//! slots, and an optional wake callback says when to look.

mod sharing;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use confab_call_core::ChatEvent;
use confab_call_core::echo::EchoDoctor;
use confab_call_core::machine::{CallState, Role, Timeouts};
use confab_call_core::{
    CallCore, Event, Input, LinkAction, LinkClosed, LinkEvent, LinkId, Output, Randomness,
    ScreenRoute, Signaling,
};
use confab_call_core::{FileId, FileReport, PeerIdentity, Transfer};
use confab_media::audio::{InputControl, ProcessingSettings};
use confab_media::slot::LatestSlot;
use confab_media::video::{
    FrameSlot, H264EncoderConfig, ScreenSelector, VideoCapture, VideoFormat,
};
use confab_protocol::chat::CHAT_CHANNEL_LABEL;
use confab_protocol::file::{channel_label, transfer_of_label};
use confab_protocol::{ClientMessage, IceServer, PeerId, PeerInfo, ServerMessage};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use webrtc::peer_connection::RTCPeerConnectionState;

use crate::Problem;
use crate::control::Controls;
use crate::files::{self, FileSettings, Transfers};
use crate::identity::Identity;
use crate::media::{
    self, AudioInput, AudioOutput, Counters, RemoteVideoFrame, VideoInput, VideoOutput,
};
use crate::netwatch;
use crate::peer::{NetworkConfig, PeerEvent, PeerEvents};
use crate::session::Session;
use crate::signaling::{self, ServerStatus, SignalingConfig, SignalingEvent, SignalingHandle};
use crate::stats::{CallStats, CallSummary, EchoReport, StatsCollector};

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
    /// Which stages clean the microphone (echo cancellation, noise suppression, gain).
    pub audio_processing: ProcessingSettings,
    /// Write received video (Annex B H.264) here.
    pub record_video: Option<PathBuf>,
    /// Convert received video to RGBA for display.
    pub render_video: bool,
    pub timeouts: Timeouts,
    /// Where accepted files are saved, and the size limit.
    pub files: FileSettings,
    /// The certificate every call presents (the profile's, so safety codes stay the same).
    pub identity: Identity,
}

/// What the application asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Call {
        peer: PeerId,
    },
    /// Ask `peer` into the call in progress, which becomes a group call.
    Invite {
        peer: PeerId,
    },
    Accept,
    Decline,
    HangUp,
    SendChat(String),
    SetMuted(bool),
    /// Camera on or off; off releases the device.
    SetCamera(bool),
    /// Share this screen in the call (another one, if one is shared); the peers see it
    /// next to the camera (or, a peer that cannot take two pictures, instead of it).
    ShareScreen(ScreenSelector),
    StopSharing,
    SetVideoInput(VideoInput),
    SetVideoFormat(VideoFormat),
    SetAudioInput(AudioInput),
    /// Takes effect from the next call.
    SetAudioOutput(AudioOutput),
    /// Takes effect at once, mid-call too.
    SetAudioProcessing(ProcessingSettings),
    /// Offer this file to everyone in the call.
    SendFile(PathBuf),
    /// Receive a file offered to us (into the download folder).
    AcceptFile(FileId),
    DeclineFile(FileId),
    /// Stop a transfer, either way.
    CancelFile(FileId),
    /// Takes effect for the next transfer.
    SetFileSettings(FileSettings),
    Shutdown,
}

/// What the engine reports.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    Server(ServerStatus),
    Roster(Vec<PeerInfo>),
    Call(CallState),
    Chat(ChatEvent),
    /// A file transfer changed (the last time, when it is over).
    File(Transfer),
    /// Once a second during a call.
    Stats(CallStats),
    /// When a link closes (a call of two ends, a member leaves a group call): its totals.
    Summary(CallSummary),
    /// The call has ended and every link's summary has been sent.
    CallFinished,
    /// Who is speaking now (by their audio), when that changes; `None`: nobody.
    ActiveSpeaker(Option<PeerId>),
    /// In a call of two, the peer's switches, when it says them.
    PeerState {
        muted: bool,
        camera_off: bool,
        /// It shares its screen (the pictures arrive in [`Engine::remote_screen`]).
        sharing: bool,
    },
    /// Whether we share our screen (off again when the call ends or the capture stops).
    Sharing(bool),
    /// Something the user should know (a device failed, the peer is offline...).
    Problem(Problem),
    /// Who a peer is: claimed while it rings, proven (with the safety code) once connected.
    Identity(PeerIdentity),
}

pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// The application's handle.
pub struct Engine {
    commands: mpsc::UnboundedSender<Command>,
    /// Decoded remote video, newest frame only.
    pub remote_video: Arc<LatestSlot<Arc<RemoteVideoFrame>>>,
    /// Decoded remote shared screens, newest frame only.
    pub remote_screen: Arc<LatestSlot<Arc<RemoteVideoFrame>>>,
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
        let remote_screen = Arc::new(LatestSlot::new());
        let local_video = Arc::new(FrameSlot::new());
        let input = Arc::new(InputControl::new());
        let remote_audio = Arc::new(InputControl::new());
        let (problems, problem_rx) = mpsc::unbounded_channel();
        let (link_events, link_event_rx) = mpsc::unbounded_channel();
        let (speakers, speaker_rx) = mpsc::unbounded_channel();
        let (later, later_rx) = mpsc::unbounded_channel();
        let mut core = CallCore::new(config.timeouts, Box::new(OsRandomness));
        let max_size = confab_call_core::Command::SetMaxFileSize(config.files.max_size);
        core.handle(Input::Command(max_size), now());
        let driver = Driver {
            core,
            later,
            config,
            signaling,
            events,
            wake,
            server_ice: Vec::new(),
            links: HashMap::new(),
            link_events,
            capture: None,
            screen: None,
            screen_choice: ScreenSelector::default(),
            remote_video: remote_video.clone(),
            remote_screen: remote_screen.clone(),
            local_video: local_video.clone(),
            input: input.clone(),
            remote_audio: remote_audio.clone(),
            problems,
            speakers,
            call_open: false,
            streams: media::CallStreams::default(),
        };
        let (network, _network_task) = netwatch::spawn(stop.clone());
        let inputs = Inputs {
            network,
            commands: command_rx,
            signaling: signal_rx,
            links: link_event_rx,
            problems: problem_rx,
            speakers: speaker_rx,
            later: later_rx,
        };
        let task = tokio::spawn(driver.run(inputs, stop, signaling_task));
        let engine = Engine {
            commands,
            remote_video,
            remote_screen,
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

/// Fresh random ids from the operating system.
struct OsRandomness;

impl Randomness for OsRandomness {
    fn random_u128(&mut self) -> u128 {
        uuid::Uuid::new_v4().as_u128()
    }
}

/// A link of the call: its peer connection (once created), what its media counts, and its
/// control paths.
struct LinkDriver {
    /// Who is at the other end, and their name.
    peer: PeerId,
    peer_name: String,
    session: Option<Session>,
    counters: Arc<Counters>,
    /// What the peer's shared screen brings.
    screen_counters: Arc<Counters>,
    controls: Arc<Controls>,
    /// Where our shared screen goes on this link.
    screen_route: ScreenRoute,
    stats: StatsCollector,
    /// Whether the peer probably hears an echo of their voice from our speaker.
    echo_doctor: EchoDoctor,
    /// Files being sent and received.
    files: Transfers,
}

/// Everything the driver task listens to.
struct Inputs {
    commands: mpsc::UnboundedReceiver<Command>,
    signaling: mpsc::UnboundedReceiver<SignalingEvent>,
    links: mpsc::UnboundedReceiver<(LinkId, PeerEvent)>,
    problems: mpsc::UnboundedReceiver<Problem>,
    /// The playout's news of who is speaking.
    speakers: mpsc::UnboundedReceiver<Option<LinkId>>,
    /// This computer's addresses, as they change.
    network: watch::Receiver<netwatch::Addresses>,
    /// What the driver's own background work (file sizes and hashes) found.
    later: mpsc::UnboundedReceiver<Input>,
}

struct Driver {
    config: EngineConfig,
    core: CallCore,
    /// Where background work reports ([`Inputs::later`]).
    later: mpsc::UnboundedSender<Input>,
    signaling: SignalingHandle,
    events: mpsc::UnboundedSender<EngineEvent>,
    wake: Option<Wake>,
    server_ice: Vec<IceServer>,
    links: HashMap<LinkId, LinkDriver>,
    /// Every link's peer connection reports here, tagged with its link.
    link_events: mpsc::UnboundedSender<(LinkId, PeerEvent)>,
    /// The camera (or other video source), while the core wants it open.
    capture: Option<VideoCapture>,
    /// The shared screen's capture, while the core wants it open.
    screen: Option<VideoCapture>,
    /// The screen the user chose to share.
    screen_choice: ScreenSelector,
    remote_video: Arc<LatestSlot<Arc<RemoteVideoFrame>>>,
    remote_screen: Arc<LatestSlot<Arc<RemoteVideoFrame>>>,
    local_video: Arc<FrameSlot>,
    input: Arc<InputControl>,
    remote_audio: Arc<InputControl>,
    problems: mpsc::UnboundedSender<Problem>,
    /// For the playout: who speaks.
    speakers: mpsc::UnboundedSender<Option<LinkId>>,
    /// A link was started since the last [`EngineEvent::CallFinished`].
    call_open: bool,
    /// The call's encoders and playout, shared by its links.
    streams: media::CallStreams,
}

const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// The time the core is given: tokio's clock, which its deadlines are slept on (the same
/// as the system's monotonic clock, except in tests that pause it).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Driver {
    async fn run(
        mut self,
        mut inputs: Inputs,
        stop: CancellationToken,
        signaling_task: tokio::task::JoinHandle<()>,
    ) {
        let mut stats_tick = tokio::time::interval(STATS_INTERVAL);
        loop {
            let deadline = self.core.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                command = inputs.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.command(command),
                },
                Some(event) = inputs.signaling.recv() => self.signaling_event(event),
                Some((link, event)) = inputs.links.recv() => self.link_event(link, event).await,
                Some(problem) = inputs.problems.recv() => self.problem(problem),
                Some(input) = inputs.later.recv() => self.feed(input),
                Ok(()) = inputs.network.changed() => {
                    let addresses = inputs.network.borrow_and_update().clone();
                    info!("the network addresses changed: {addresses:?}");
                    // The signaling client tells the core, once it knows whether its
                    // connection survived.
                    self.signaling.network_changed(addresses);
                }
                Some(speaker) = inputs.speakers.recv() => {
                    let peer = speaker.and_then(|id| Some(self.links.get(&id)?.peer.clone()));
                    self.emit(EngineEvent::ActiveSpeaker(peer));
                }
                () = sleep_until(deadline) => self.core.handle_timeout(now()),
                _ = stats_tick.tick() => self.stats().await,
            }
            self.perform().await;
        }
        // Leaving: end the call properly; the signaling client sends what is queued (the
        // hangup) before it disconnects.
        self.feed(Input::Command(confab_call_core::Command::HangUp));
        self.perform().await;
        stop.cancel();
        let _ = signaling_task.await;
    }

    fn feed(&mut self, input: Input) {
        self.core.handle(input, now());
    }

    fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event);
        if let Some(wake) = &self.wake {
            wake();
        }
    }

    fn problem(&self, problem: Problem) {
        self.emit(EngineEvent::Problem(problem));
    }

    fn signal(&self, msg: ClientMessage) {
        if !self.signaling.send(msg) {
            debug!("signaling is not connected; a message was dropped");
        }
    }

    fn command(&mut self, command: Command) {
        use confab_call_core::Command as Core;
        let core = match command {
            Command::Call { peer } => Core::Call { peer },
            Command::Invite { peer } => Core::Invite { peer },
            Command::Accept => Core::Accept,
            Command::Decline => Core::Decline,
            Command::HangUp => Core::HangUp,
            Command::SendChat(text) => Core::SendChat {
                text,
                sent_at_ms: now_ms(),
            },
            Command::SetMuted(muted) => {
                self.input.set_muted(muted);
                Core::SetMuted(muted)
            }
            Command::SetCamera(on) => Core::SetCamera(on),
            Command::ShareScreen(screen) => {
                self.screen_choice = screen;
                Core::SetSharing(true)
            }
            Command::StopSharing => Core::SetSharing(false),
            Command::SetVideoInput(input) => {
                self.config.video_input = input;
                Core::VideoSourceChanged
            }
            Command::SetVideoFormat(format) => {
                self.config.video_format = format;
                Core::VideoSourceChanged
            }
            Command::SetAudioInput(input) => {
                self.config.audio_input = input;
                Core::AudioSourceChanged
            }
            Command::SetAudioOutput(output) => return self.config.audio_output = output,
            Command::SendFile(path) => return self.offer_file(path),
            Command::AcceptFile(file) => Core::AcceptFile(file),
            Command::DeclineFile(file) => Core::DeclineFile(file),
            Command::CancelFile(file) => Core::CancelFile(file),
            Command::SetFileSettings(settings) => {
                let max_size = settings.max_size;
                self.config.files = settings;
                Core::SetMaxFileSize(max_size)
            }
            Command::SetAudioProcessing(settings) => {
                self.config.audio_processing = settings;
                if let Some(sender) = &self.streams.audio {
                    sender.set_processing(settings);
                }
                return;
            }
            Command::Shutdown => return,
        };
        self.feed(Input::Command(core));
    }

    /// Looks at the file off the runtime, then tells the core.
    fn offer_file(&self, path: PathBuf) {
        let later = self.later.clone();
        let problems = self.problems.clone();
        tokio::spawn(async move {
            let name = path
                .file_name()
                .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
            let look = path.clone();
            let metadata = tokio::task::spawn_blocking(move || std::fs::metadata(look)).await;
            let reason = match metadata {
                Ok(Ok(metadata)) if metadata.is_file() => {
                    let command = confab_call_core::Command::SendFile {
                        mime: mime_guess::from_path(&path).first().map(|m| m.to_string()),
                        path,
                        name,
                        size: metadata.len(),
                    };
                    let _ = later.send(Input::Command(command));
                    return;
                }
                Ok(Ok(_)) => format!("{name} is not a file"),
                Ok(Err(err)) => format!("cannot read {name}: {err}"),
                Err(err) => err.to_string(),
            };
            let problem = confab_call_core::Problem::CannotSendFile(reason);
            let _ = problems.send(Problem::Call(problem));
        });
    }

    fn hash_file(&self, files: Vec<FileId>, path: PathBuf) {
        let later = self.later.clone();
        tokio::spawn(async move {
            let sha256 = files::hash(path).await;
            let _ = later.send(Input::FileHashed { files, sha256 });
        });
    }

    fn signaling_event(&mut self, event: SignalingEvent) {
        let input = match event {
            SignalingEvent::IceServers(servers) => {
                self.server_ice = servers;
                return;
            }
            SignalingEvent::Status(status) => {
                let input = match &status {
                    ServerStatus::Online { my_id } => Signaling::Online {
                        my_id: my_id.clone(),
                    },
                    ServerStatus::Offline { .. } => Signaling::Offline,
                    ServerStatus::Connecting { .. } | ServerStatus::Refused { .. } => {
                        return self.emit(EngineEvent::Server(status));
                    }
                };
                self.emit(EngineEvent::Server(status));
                input
            }
            SignalingEvent::Roster(peers) => {
                self.emit(EngineEvent::Roster(peers.clone()));
                Signaling::Roster(peers)
            }
            SignalingEvent::NetworkChanged => return self.feed(Input::NetworkChanged),
            SignalingEvent::Message(msg) => {
                if let ServerMessage::Error {
                    message,
                    call_id: None,
                    ..
                } = &msg
                {
                    warn!("signaling server: {message}");
                }
                Signaling::Message(msg)
            }
        };
        self.feed(Input::Signaling(input));
    }

    async fn link_event(&mut self, id: LinkId, event: PeerEvent) {
        let Some(link) = self.links.get_mut(&id) else {
            return; // A closed link's late news.
        };
        let event = match event {
            PeerEvent::LocalCandidate(candidate) => LinkEvent::LocalCandidate(Some(candidate)),
            PeerEvent::GatheringComplete => LinkEvent::LocalCandidate(None),
            PeerEvent::State(RTCPeerConnectionState::Connected) => {
                link.stats.connected(now());
                let theirs = match &link.session {
                    Some(session) => session.remote_fingerprint().await,
                    None => None,
                };
                self.feed(Input::Link(id, LinkEvent::Connected));
                match theirs {
                    Some(theirs) => {
                        let ours = self.config.identity.fingerprint();
                        self.feed(Input::Link(id, LinkEvent::Identity { ours, theirs }));
                    }
                    None => warn!("connected, but the peer's certificate is not known"),
                }
                return;
            }
            // `connecting` again after connected: an ICE restart is looking for a new path.
            PeerEvent::State(
                RTCPeerConnectionState::Disconnected | RTCPeerConnectionState::Connecting,
            ) => LinkEvent::Disconnected,
            PeerEvent::State(RTCPeerConnectionState::Failed) => LinkEvent::Failed,
            PeerEvent::State(_) | PeerEvent::ChatClosed => return,
            PeerEvent::Track(track) => return self.receive_track(id, track).await,
            PeerEvent::DataChannel(channel) => {
                let label = channel.label().await.unwrap_or_default();
                if let Some(transfer) = transfer_of_label(&label) {
                    let events = PeerEvents {
                        link: id,
                        to: self.link_events.clone(),
                    };
                    link.files.channel(transfer, channel, events);
                } else if label == CHAT_CHANNEL_LABEL
                    && let Some(session) = &mut link.session
                {
                    session.attach_chat(channel);
                }
                return;
            }
            PeerEvent::File(report) => LinkEvent::File(report),
            PeerEvent::ChatOpen => LinkEvent::ChatOpen,
            PeerEvent::ChatMessage(bytes) => LinkEvent::ChatMessage(bytes),
        };
        self.feed(Input::Link(id, event));
    }

    /// Performs what the core decided, in order, and what that leads to.
    async fn perform(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Signal(msg) => self.signal(msg),
                Output::Event(Event::Call(state)) => {
                    if let CallState::Connected {
                        peer_name,
                        reconnecting,
                        ..
                    } = &state
                    {
                        let what = if *reconnecting {
                            "reconnecting"
                        } else {
                            "connected"
                        };
                        info!(peer = %peer_name, "call {what}");
                    }
                    self.emit(EngineEvent::Call(state));
                }
                Output::Event(Event::Chat(chat)) => self.emit(EngineEvent::Chat(chat)),
                Output::Event(Event::File(transfer)) => self.emit(EngineEvent::File(transfer)),
                Output::HashFile { files, path } => self.hash_file(files, path),
                Output::Event(Event::Problem(problem)) => self.problem(problem.into()),
                Output::Event(Event::Identity(identity)) => {
                    self.emit(EngineEvent::Identity(identity));
                }
                Output::Event(Event::PeerState {
                    muted,
                    camera_off,
                    sharing,
                }) => {
                    self.emit(EngineEvent::PeerState {
                        muted,
                        camera_off,
                        sharing,
                    });
                }
                Output::Event(Event::Sharing(on)) => self.emit(EngineEvent::Sharing(on)),
                Output::OpenScreen => self.open_screen().await,
                Output::CloseScreen => self.close_screen().await,
                Output::OpenCamera => self.open_camera().await,
                Output::CloseCamera => self.close_camera().await,
                Output::OpenMicrophone => self.open_microphone().await,
                Output::Link(id, action) => self.link_action(id, action).await,
            }
        }
        let over = matches!(self.core.state(), CallState::Ended(_)) && self.links.is_empty();
        if over && self.call_open {
            self.call_open = false;
            // The encoders' and the playout's threads are joined: not on the runtime.
            let streams = std::mem::take(&mut self.streams);
            let _ = tokio::task::spawn_blocking(move || drop(streams)).await;
            self.emit(EngineEvent::CallFinished);
        }
    }

    async fn link_action(&mut self, id: LinkId, action: LinkAction) {
        if let LinkAction::Start {
            role,
            peer,
            peer_name,
            remote_offer,
        } = action
        {
            return self
                .start_link(id, role, (peer, peer_name), remote_offer)
                .await;
        }
        if let LinkAction::Close(closed) = action {
            return self.close_link(id, closed).await;
        }
        if let LinkAction::Screen(route) = action {
            return self.route_screen(id, route).await;
        }
        let Some(link) = self.links.get_mut(&id) else {
            debug!("{id} is gone: {action:?} not done");
            return;
        };
        let Some(session) = link.session.as_mut() else {
            debug!("{id} has no connection for {action:?}");
            return;
        };
        match action {
            LinkAction::ApplyAnswer(sdp) => {
                if let Err(err) = session.apply_answer(sdp).await {
                    let reason = format!("bad answer: {err}");
                    self.feed(Input::Link(id, LinkEvent::SetupFailed(reason)));
                }
            }
            LinkAction::ApplyOffer(sdp) => match session.apply_offer(sdp).await {
                Ok(answer) => self.feed(Input::Link(id, LinkEvent::LocalDescription(answer))),
                Err(err) => warn!("renegotiation failed: {err}"),
            },
            LinkAction::RestartIce => match session.restart_ice().await {
                Ok(offer) => {
                    info!("{id}: restarting ICE");
                    link.stats.ice_restarted();
                    self.feed(Input::Link(id, LinkEvent::LocalDescription(offer)));
                }
                Err(err) => warn!("{id}: ICE restart failed: {err}"),
            },
            LinkAction::AddCandidate(candidate) => {
                if let Err(err) = session.add_candidate(candidate).await {
                    debug!("a remote candidate was refused: {err}");
                }
            }
            LinkAction::StartMedia => self.start_media(id).await,
            LinkAction::SendChat(message) => {
                if session.send_chat(&message).await.is_err() {
                    self.feed(Input::Link(id, LinkEvent::ChatNotSent(message)));
                }
            }
            LinkAction::SendFile {
                file,
                id: transfer,
                path,
                size,
            } => match session.open_file_channel(&channel_label(&transfer)).await {
                Ok(channel) => {
                    let events = PeerEvents {
                        link: id,
                        to: self.link_events.clone(),
                    };
                    link.files.send(file, channel, (path, size), events);
                }
                Err(err) => {
                    let reason = format!("cannot open the transfer: {err}");
                    let report = FileReport::Failed { file, reason };
                    self.feed(Input::Link(id, LinkEvent::File(report)));
                }
            },
            LinkAction::ReceiveFile {
                file,
                id: transfer,
                name,
                size,
                sha256,
            } => {
                let dir = self.config.files.download_dir.clone();
                let expected = link
                    .files
                    .expect(dir, (file, transfer), name, size, sha256)
                    .await;
                if let Err(reason) = expected {
                    let report = FileReport::Failed { file, reason };
                    self.feed(Input::Link(id, LinkEvent::File(report)));
                }
            }
            LinkAction::StopFile { file, close } => link.files.stop(file, close).await,
            LinkAction::Start { .. } | LinkAction::Close(_) | LinkAction::Screen(_) => {}
        }
    }

    async fn start_link(
        &mut self,
        id: LinkId,
        role: Role,
        (peer, peer_name): (PeerId, String),
        remote_offer: Option<String>,
    ) {
        let mut network = self.config.network.clone();
        network
            .ice_servers
            .splice(0..0, self.server_ice.iter().cloned());
        let counters = Arc::new(Counters::default());
        let controls = Arc::new(Controls::default());
        self.call_open = true;
        let link = LinkDriver {
            peer,
            peer_name,
            session: None,
            counters: counters.clone(),
            screen_counters: Arc::new(Counters::default()),
            controls: controls.clone(),
            screen_route: ScreenRoute::Off,
            stats: StatsCollector::new(now()),
            echo_doctor: EchoDoctor::new(),
            files: Transfers::default(),
        };
        self.links.insert(id, link);
        let events = PeerEvents {
            link: id,
            to: self.link_events.clone(),
        };
        let identity = &self.config.identity;
        let started = Session::start(
            role,
            &network,
            identity,
            remote_offer,
            events,
            (counters, controls),
        );
        let event = match started.await {
            Ok((session, sdp)) => {
                if let Some(link) = self.links.get_mut(&id) {
                    link.session = Some(session);
                }
                LinkEvent::LocalDescription(sdp)
            }
            Err(err) => {
                warn!("starting the call failed: {err}");
                LinkEvent::SetupFailed(err.to_string())
            }
        };
        self.feed(Input::Link(id, event));
    }

    /// Connected: start sending what the user has switched on.
    /// The link connected: the call's encoders (started with its first link) send to it too.
    async fn start_media(&mut self, id: LinkId) {
        let Some(session) = self.links.get(&id).and_then(|l| l.session.as_ref()) else {
            return;
        };
        let tracks = match session.sending_tracks().await {
            Ok(tracks) => tracks,
            Err(err) => {
                warn!("cannot start sending: {err}");
                self.problem(Problem::Sending(err.to_string()));
                return;
            }
        };
        if let Err(err) = self.start_senders() {
            warn!("cannot start sending: {err}");
            self.problem(Problem::Sending(err.to_string()));
            return;
        }
        let Some(link) = self.links.get(&id) else {
            return;
        };
        let (counters, controls) = (link.counters.clone(), link.controls.clone());
        if let Some(video) = &mut self.streams.video {
            let links = video.links();
            links.add_link(id, tracks.video, counters.clone(), controls.clone());
        }
        if let Some(audio) = &mut self.streams.audio {
            audio.links().add_link(id, tracks.audio, counters, controls);
        }
    }

    /// Starts the call's video and audio senders, if they are not running yet.
    fn start_senders(&mut self) -> Result<(), crate::CallError> {
        if self.streams.video.is_none() {
            let encoder = H264EncoderConfig {
                bitrate_bps: crate::interceptors::START_BITRATE_BPS as u32,
                fps: self.config.video_format.fps,
                keyframe_interval: None,
                ..H264EncoderConfig::default()
            };
            let video =
                media::VideoSender::start(encoder, media::VideoKind::Camera, &self.problems)?;
            if let Some(capture) = &self.capture {
                video.set_source(Some(capture.subscribe()));
            }
            self.streams.video = Some(video);
        }
        if self.streams.audio.is_none() {
            let setup = media::SendSetup {
                control: self.input.clone(),
                processing: self.config.audio_processing,
                reference: self.streams.echo_reference(),
            };
            self.streams.audio = Some(media::AudioSender::start(setup, self.problems.clone())?);
        }
        Ok(())
    }

    /// (Re)opens the camera as configured. Opening waits for the device: not on the
    /// runtime's threads.
    async fn open_camera(&mut self) {
        // Release the old device before opening the new one.
        self.close_camera().await;
        let (input, format) = (self.config.video_input.clone(), self.config.video_format);
        let opened = tokio::task::spawn_blocking(move || media::open_video(&input, format))
            .await
            .unwrap_or_else(|err| {
                Err(crate::CallError::Thread {
                    name: "camera open".into(),
                    reason: err.to_string(),
                })
            });
        match opened {
            Ok(Some(capture)) => {
                capture.attach(self.local_video.clone(), self.wake.clone());
                if let Some(sender) = &self.streams.video {
                    sender.set_source(Some(capture.subscribe()));
                }
                self.capture = Some(capture);
            }
            Ok(None) => {}
            Err(err) => {
                let _ = self.problems.send(Problem::Camera(err.to_string()));
            }
        }
    }

    /// Releases the camera. Closing joins its capture thread: not on the runtime's threads.
    async fn close_camera(&mut self) {
        if let Some(sender) = &self.streams.video {
            sender.set_source(None);
        }
        if let Some(capture) = self.capture.take() {
            let _ = tokio::task::spawn_blocking(move || drop(capture)).await;
        }
    }

    /// (Re)opens the microphone (or other audio input) for the call's audio sender.
    async fn open_microphone(&mut self) {
        let Some(sender) = &self.streams.audio else {
            return;
        };
        sender.set_source(None);
        let input = self.config.audio_input.clone();
        // Opening a device may block (a sound server handshake): not on the runtime.
        let opened = tokio::task::spawn_blocking(move || media::open_audio_input(&input)).await;
        let Some(sender) = &self.streams.audio else {
            return;
        };
        match opened {
            Ok(Ok(source)) => sender.set_source(source),
            Ok(Err(err)) => {
                let _ = self.problems.send(Problem::Microphone(err.to_string()));
            }
            Err(err) => warn!("opening the microphone panicked: {err}"),
        }
    }

    async fn receive_track(
        &mut self,
        id: LinkId,
        track: Arc<dyn webrtc::media_stream::track_remote::TrackRemote>,
    ) {
        let Some(peer) = self.links.get(&id).map(|l| l.peer.clone()) else {
            return;
        };
        let video = VideoOutput {
            frames: self.remote_video.clone(),
            peer: peer.clone(),
            wake: self.wake.clone(),
            render: self.config.render_video,
            record: self.config.record_video.clone(),
        };
        let screen = VideoOutput {
            frames: self.remote_screen.clone(),
            peer,
            wake: self.wake.clone(),
            render: self.config.render_video,
            record: None,
        };
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        let Some(session) = &mut link.session else {
            return;
        };
        let counters = (&link.counters, &link.screen_counters);
        match session
            .receive(track, (video, screen), counters, &self.problems)
            .await
        {
            Ok(Some(audio)) => {
                self.start_playout().await;
                if let Some(playout) = &self.streams.playout {
                    playout.add_link(id, audio);
                }
            }
            Ok(None) => {}
            Err(err) => self.problem(Problem::Receiving(err.to_string())),
        }
    }

    /// Starts the call's playout on the configured speaker, if it is not running yet.
    async fn start_playout(&mut self) {
        if self.streams.playout.is_some() {
            return;
        }
        let output = self.config.audio_output.clone();
        let sink =
            match tokio::task::spawn_blocking(move || media::open_audio_output(&output)).await {
                Ok(Ok(sink)) => sink,
                Ok(Err(err)) => {
                    let _ = self.problems.send(Problem::Speaker(err.to_string()));
                    None
                }
                Err(_) => None,
            };
        // Only a speaker is heard by the microphone.
        let tap = sink
            .as_ref()
            .filter(|sink| sink.is_live())
            .and_then(|_| self.streams.echo_tap());
        let started = media::AudioPlayout::start(
            (sink, tap),
            self.remote_audio.clone(),
            self.speakers.clone(),
            self.problems.clone(),
        );
        match started {
            Ok(playout) => self.streams.playout = Some(playout),
            Err(err) => self.problem(Problem::Receiving(err.to_string())),
        }
    }

    async fn close_link(&mut self, id: LinkId, closed: LinkClosed) {
        let Some(mut link) = self.links.remove(&id) else {
            return;
        };
        let mut summary = link.stats.summary(
            (&link.counters, &link.screen_counters),
            closed.chats_sent,
            closed.chats_received,
            &closed.state,
        );
        // In a group call the state names everyone; the summary is this link's.
        summary.peer_name = Some(link.peer_name);
        summary.safety_code = closed.safety_code;
        link.files.stop_all().await;
        self.streams.remove_link(id);
        if let Some(session) = link.session.take() {
            session.close(true).await;
        }
        info!("call ended");
        self.emit(EngineEvent::Summary(summary));
    }

    async fn stats(&mut self) {
        self.check_screen();
        if let Some(capture) = &self.capture
            && let Some(err) = capture.take_error()
        {
            let _ = self.problems.send(Problem::Camera(err.to_string()));
        }
        let state = self.core.state().clone();
        let mut snapshots = Vec::new();
        for link in self.links.values_mut() {
            let Some(session) = &link.session else {
                continue;
            };
            let mut stats = link
                .stats
                .collect(
                    session.peer_connection(),
                    (&link.counters, &link.screen_counters),
                    link.controls.round_trip.get(),
                    &state,
                    now(),
                )
                .await;
            stats.peer_name = Some(link.peer_name.clone());
            let echo = self.streams.audio.as_ref().and_then(|s| s.echo_stats());
            stats.echo = echo.map(EchoReport::from);
            let likelihood = echo.and_then(|e| e.residual_echo_likelihood);
            stats.peer_hears_echo = link.echo_doctor.observe(likelihood);
            snapshots.push(stats);
        }
        for stats in snapshots {
            self.emit(EngineEvent::Stats(stats));
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
