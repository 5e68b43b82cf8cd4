//! The call core: every decision of a call, in the shape of str0m's `Rtc` and quinn-proto's
//! `Connection`. The driver passes in what happened with the current time
//! ([`CallCore::handle`], [`CallCore::handle_timeout`]), takes what to do from
//! [`CallCore::poll_output`] and performs it in order, and calls back at
//! [`CallCore::poll_timeout`].
//!
//! A call is a set of peer links, one per remote peer, each with its own [`LinkId`]: one
//! in a call of two, one per other member in a group call ([`group`]). The core decides which remote messages belong to the call, when a
//! link is created (the callee's only after the user accepts), which candidates go to whom,
//! when media starts, when the camera is on, what the chat sends and tells the user, and
//! when everything is released.

mod group;
mod screen;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use confab_protocol::chat::{ChatMessage, validate_chat_text};
use confab_protocol::safety::{Fingerprint, SafetyCode};
use confab_protocol::{CallId, ClientMessage, IceCandidate, PeerId, PeerInfo, ServerMessage};
use tracing::debug;

use crate::chat::{ChatBook, ChatEvent, ChatFailure, Incoming};
use crate::files::{FileId, FileOut, FileReport, Files, Transfer};
pub use screen::{SWITCHES_WAIT, ScreenRoute};

use crate::machine::{Action, CallMachine, CallState, MAX_BUFFERED_CANDIDATES, Role, Timeouts};

/// One peer connection of a call. Never reused: events of a closed link are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(u64);

impl LinkId {
    /// The first link a core makes (for tests of the driver's parts).
    pub fn first() -> LinkId {
        LinkId(0)
    }

    /// The link made after this one (for tests).
    #[cfg(test)]
    pub(crate) fn next(self) -> LinkId {
        LinkId(self.0 + 1)
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link {}", self.0)
    }
}

/// Where fresh random ids (calls, chat messages) come from: the operating system's
/// randomness in the driver, a counter in tests.
pub trait Randomness: Send {
    fn random_u128(&mut self) -> u128;
}

/// What the user asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Call {
        peer: PeerId,
    },
    /// Ask `peer` into the call in progress (which becomes a group call).
    Invite {
        peer: PeerId,
    },
    Accept,
    Decline,
    HangUp,
    /// `sent_at_ms`: the wall clock when the user sent it (ms since the Unix epoch).
    SendChat {
        text: String,
        sent_at_ms: u64,
    },
    /// The camera switch; off releases the device.
    SetCamera(bool),
    /// The microphone's mute switch (the driver mutes; the peers are told).
    SetMuted(bool),
    /// Share the screen the driver was told of (again: another screen), or stop sharing.
    /// Only in a call; sharing stops when the call ends.
    SetSharing(bool),
    /// Another camera or format was chosen.
    VideoSourceChanged,
    /// Another microphone (or audio input) was chosen.
    AudioSourceChanged,
    /// Send this file to everyone in the call (`name`: its name as offered).
    SendFile {
        path: PathBuf,
        name: String,
        size: u64,
        mime: Option<String>,
    },
    /// Receive a file the peer offers (into the driver's download folder).
    AcceptFile(FileId),
    DeclineFile(FileId),
    /// Stop a transfer, whichever way it goes.
    CancelFile(FileId),
    /// Files larger than this are neither offered nor accepted.
    SetMaxFileSize(u64),
}

/// What the signaling connection reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Signaling {
    Online {
        my_id: PeerId,
    },
    /// The connection to the server dropped (it reconnects by itself).
    Offline,
    Roster(Vec<PeerInfo>),
    Message(ServerMessage),
}

/// What a link (its peer connection and chat channel) reports.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// Our session description, after [`LinkAction::Start`] or [`LinkAction::ApplyOffer`].
    LocalDescription(String),
    /// Setting the link up failed (creating it, or applying the peer's answer).
    SetupFailed(String),
    /// A local candidate to trickle to the peer; `None`: gathering is complete.
    LocalCandidate(Option<IceCandidate>),
    Connected,
    /// The connection dropped; it may come back.
    Disconnected,
    /// The connection failed for good.
    Failed,
    ChatOpen,
    ChatMessage(Vec<u8>),
    /// The chat channel could not take this message.
    ChatNotSent(ChatMessage),
    /// How a transfer the driver performs is going.
    File(FileReport),
    /// The DTLS handshake is done: the fingerprints of our certificate and of the one the
    /// peer presented.
    Identity {
        ours: Fingerprint,
        theirs: Fingerprint,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Command(Command),
    Signaling(Signaling),
    Link(LinkId, LinkEvent),
    /// This computer's network addresses changed (a new network, a VPN, an address moved).
    NetworkChanged,
    /// The SHA-256 of the file of these transfers ([`Output::HashFile`]), or why it could
    /// not be read.
    FileHashed {
        files: Vec<FileId>,
        sha256: Result<String, String>,
    },
}

/// Something the user should know that is not a call state or a chat message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The person called is no longer in the list.
    #[error("that person is no longer online")]
    PeerOffline,
    /// An invitation into the call could not be made, or was not accepted.
    #[error("{0}")]
    CannotInvite(String),
    /// A file could not be offered (no call, too large).
    #[error("{0}")]
    CannotSendFile(String),
}

/// What the user is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Call(CallState),
    Chat(ChatEvent),
    /// A file transfer changed (sent whenever it does, the last time when it is over).
    File(Transfer),
    Problem(Problem),
    /// In a call of two, what the peer says of its switches (in a group call each
    /// member's are in [`CallState::Group`]).
    PeerState {
        muted: bool,
        camera_off: bool,
        sharing: bool,
    },
    /// Whether we share our screen now.
    Sharing(bool),
    /// Who a peer of the call is, as far as can be told: claimed in its description while
    /// it rings, then proven by the DTLS handshake (with the safety code).
    Identity(PeerIdentity),
}

/// A peer's identity in a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub peer: PeerId,
    pub peer_name: String,
    /// The fingerprint of the peer's certificate.
    pub fingerprint: Fingerprint,
    /// `None` while the fingerprint is only what the peer's description claims (it rings,
    /// nothing is connected); once the DTLS handshake presented that certificate, the code
    /// both sides derive from their two identities
    /// ([`SafetyCode::derive`](confab_protocol::safety::SafetyCode::derive)).
    pub safety_code: Option<SafetyCode>,
}

/// The totals of a link that closed, for its summary.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkClosed {
    pub chats_sent: u64,
    pub chats_received: u64,
    /// The call's state when the link closed (`Ended` with the reason, normally).
    pub state: CallState,
    /// The code both sides derived, if the handshake was done.
    pub safety_code: Option<SafetyCode>,
}

/// What the driver must do with a link.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkAction {
    /// Create the peer connection. The caller makes an offer; the callee applies
    /// `remote_offer` and answers. Report the result with [`LinkEvent::LocalDescription`]
    /// or [`LinkEvent::SetupFailed`].
    Start {
        role: Role,
        /// Who is at the other end, and their name.
        peer: PeerId,
        peer_name: String,
        remote_offer: Option<String>,
    },
    /// Apply the callee's answer ([`LinkEvent::SetupFailed`] if it is refused).
    ApplyAnswer(String),
    /// The peer renegotiates: apply its offer and report our answer (dropping an offer of
    /// ours it crossed).
    ApplyOffer(String),
    /// Restart ICE: bind and gather anew, and report the offer with new credentials.
    RestartIce,
    AddCandidate(Option<IceCandidate>),
    /// The connection is up: start sending what the user has switched on.
    StartMedia,
    /// Where the shared screen goes on this link, from now on.
    Screen(ScreenRoute),
    /// Send on the chat channel ([`LinkEvent::ChatNotSent`] if it cannot).
    SendChat(ChatMessage),
    /// The peer accepted our file: open the transfer's channel and send `size` bytes of
    /// `path` on it ([`LinkEvent::File`] if that fails).
    SendFile {
        file: FileId,
        id: String,
        path: PathBuf,
        size: u64,
    },
    /// We accepted the peer's file: create it (`name` is safe) in the download folder, take
    /// the transfer's channel when the peer opens it, write, check the SHA-256 and report
    /// ([`LinkEvent::File`]). On any failure, or [`LinkAction::StopFile`], what was written
    /// is deleted.
    ReceiveFile {
        file: FileId,
        id: String,
        name: String,
        size: u64,
        sha256: String,
    },
    /// Stop sending or receiving this file. `close`: we ended the transfer and close its
    /// channel; otherwise the peer ended it and closes the channel itself (when both close
    /// at once, webrtc-rs can leave the stream's reset spinning).
    StopFile {
        file: FileId,
        close: bool,
    },
    /// Say goodbye on the chat channel (waiting briefly for it to open, if it is still
    /// opening), then release everything the link holds.
    Close(LinkClosed),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this to the signaling server.
    Signal(ClientMessage),
    /// Tell the user.
    Event(Event),
    Link(LinkId, LinkAction),
    /// Open the camera as configured, closing the one open (for the self-view and the
    /// links that send).
    OpenCamera,
    /// Release the camera.
    CloseCamera,
    /// Start capturing the chosen screen, closing the one shared (report a capture that
    /// cannot start or stops with [`Command::SetSharing`]`(false)`).
    OpenScreen,
    /// Stop capturing the screen.
    CloseScreen,
    /// Open the audio input as configured for the links that send, closing the one open.
    OpenMicrophone,
    /// Read this file for its SHA-256 (off the runtime) and report [`Input::FileHashed`].
    HashFile {
        files: Vec<FileId>,
        path: PathBuf,
    },
}

/// The session description a link owes us next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owed {
    Offer,
    Answer,
}

#[derive(Debug)]
struct Link {
    peer: PeerId,
    peer_name: String,
    chat: ChatBook,
    owed: Option<Owed>,
    /// The peer's candidates, held while the link still owes its description: checks to
    /// the peer must not overtake our answer (the peer's ICE would see them before it
    /// knows our credentials, and webrtc-rs then took a second to connect).
    held_candidates: Vec<Option<IceCandidate>>,
    media_started: bool,
    /// Whether the peer takes a shared screen as a second video track, as its `state`
    /// said (`None`: it has said nothing yet).
    takes_screen: Option<bool>,
    /// When media started, and whether the peer let [`screen::SWITCHES_WAIT`] pass since
    /// without saying its switches (then it counts as one that takes one picture).
    media_since: Option<Instant>,
    switches_overdue: bool,
    /// Where our shared screen goes on this link, as the driver was last told.
    screen_route: ScreenRoute,
    /// The peer's certificate, once the handshake presented it, and the safety code.
    identity: Option<(Fingerprint, SafetyCode)>,
}

impl Link {
    /// Its totals, as it closes while the call is in `state`.
    fn closed(&self, state: CallState) -> LinkClosed {
        LinkClosed {
            chats_sent: self.chat.sent,
            chats_received: self.chat.received,
            state,
            safety_code: self.identity.as_ref().map(|(_, code)| code.clone()),
        }
    }
}

/// Every decision of a call. See the module documentation.
pub struct CallCore {
    machine: CallMachine,
    randomness: Box<dyn Randomness>,
    roster: Vec<PeerInfo>,
    links: BTreeMap<LinkId, Link>,
    next_link: u64,
    /// The group call, while there is one (the machine is idle meanwhile).
    group: Option<group::GroupCall>,
    /// Our chat messages in a group call and the acknowledgements each still waits for.
    group_acks: HashMap<String, (usize, usize)>,
    /// The user's camera switch.
    camera_wanted: bool,
    /// The user's mute switch.
    muted: bool,
    /// Whether the driver was told to open the camera (and not to close it since).
    camera_open: bool,
    /// Whether we share a screen (the driver was told to open it).
    sharing: bool,
    /// The files sent and received.
    files: Files,
    outputs: VecDeque<Output>,
}

impl CallCore {
    pub fn new(timeouts: Timeouts, randomness: Box<dyn Randomness>) -> CallCore {
        CallCore {
            machine: CallMachine::new(timeouts),
            randomness,
            roster: Vec::new(),
            links: BTreeMap::new(),
            next_link: 0,
            group: None,
            group_acks: HashMap::new(),
            camera_wanted: true,
            muted: false,
            camera_open: false,
            sharing: false,
            files: Files::new(),
            outputs: VecDeque::new(),
        }
    }

    /// The call's state, as the user sees it.
    pub fn state(&self) -> &CallState {
        self.machine.state()
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`CallCore::handle_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.machine.next_deadline(),
            self.group_deadline(),
            self.screen_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let actions = self.machine.tick(now);
        self.perform(actions);
        self.group_tick(now);
        self.screen_tick(now);
        self.flush_files();
    }

    pub fn handle(&mut self, input: Input, now: Instant) {
        self.handle_input(input, now);
        self.flush_files();
    }

    fn handle_input(&mut self, input: Input, now: Instant) {
        match input {
            Input::Command(command) => self.command(command, now),
            Input::Signaling(signaling) => self.signaling(signaling, now),
            Input::Link(link, event) => self.link_event(link, event, now),
            Input::NetworkChanged if self.group.is_some() => self.group_network_changed(now),
            Input::NetworkChanged => {
                let actions = self.machine.on_network_changed(now);
                self.perform(actions);
            }
            Input::FileHashed { files, sha256 } => self.files.hashed(&files, sha256),
        }
    }

    fn command(&mut self, command: Command, now: Instant) {
        let actions = match command {
            Command::Call { .. } if self.group.is_some() => return,
            Command::Invite { peer } => {
                self.invite(peer, now);
                return;
            }
            Command::HangUp if self.group.is_some() => {
                self.leave_group();
                return;
            }
            Command::Call { peer } => {
                let Some(info) = self.roster.iter().find(|p| p.id == peer) else {
                    self.event(Event::Problem(Problem::PeerOffline));
                    return;
                };
                let name = info.name.clone();
                let Ok(call_id) = CallId::new(self.uuid()) else {
                    return; // Cannot happen: 32 hex digits are a valid call id.
                };
                self.machine.call(peer, name, call_id, now)
            }
            Command::Accept => {
                let actions = self.machine.accept(now);
                for action in actions {
                    match action {
                        Action::Join {
                            call_id,
                            inviter,
                            inviter_name,
                        } => self.joined(call_id, inviter, inviter_name, now),
                        other => self.perform_one(other),
                    }
                }
                return;
            }
            Command::Decline => self.machine.decline(),
            Command::HangUp => self.machine.hang_up(),
            Command::SendChat { text, sent_at_ms } => {
                self.send_chat(text, sent_at_ms);
                return;
            }
            Command::SetMuted(muted) => {
                self.muted = muted;
                self.tell_state();
                return;
            }
            Command::SetSharing(on) => return self.set_sharing(on),
            Command::SetCamera(on) => {
                self.camera_wanted = on;
                self.tell_state();
                match (on, self.links.is_empty()) {
                    (true, false) => self.open_camera(),
                    (false, _) => self.close_camera(),
                    (true, true) => {}
                }
                return;
            }
            Command::VideoSourceChanged => {
                if self.camera_open {
                    self.open_camera();
                }
                return;
            }
            Command::AudioSourceChanged => {
                if self.links.values().any(|link| link.media_started) {
                    self.outputs.push_back(Output::OpenMicrophone);
                }
                return;
            }
            Command::SendFile {
                path,
                name,
                size,
                mime,
            } => {
                let links: Vec<(LinkId, String)> = self
                    .links
                    .iter()
                    .map(|(id, link)| (*id, link.peer_name.clone()))
                    .collect();
                // Each link's transfer gets an id of its own on the wire.
                let to: Vec<(LinkId, String, String)> = links
                    .into_iter()
                    .map(|(link, peer_name)| (link, peer_name, self.uuid()))
                    .collect();
                if let Err(reason) = self.files.send(&to, path, name, size, mime) {
                    self.event(Event::Problem(Problem::CannotSendFile(reason)));
                }
                return;
            }
            Command::AcceptFile(file) => return self.files.accept(file, now),
            Command::DeclineFile(file) => return self.files.decline(file),
            Command::CancelFile(file) => return self.files.cancel(file),
            Command::SetMaxFileSize(bytes) => return self.files.set_max_size(bytes),
        };
        self.perform(actions);
    }

    fn signaling(&mut self, signaling: Signaling, now: Instant) {
        let actions = match signaling {
            Signaling::Online { my_id } => {
                self.machine.set_my_id(my_id);
                // A restart may have waited for the server.
                self.group_tick(now);
                self.machine.tick(now)
            }
            // Answered calls go on (media is peer to peer); ringing ones cannot.
            Signaling::Offline => self.machine.on_signaling_lost(),
            Signaling::Roster(peers) => {
                self.roster = peers;
                return;
            }
            Signaling::Message(message) => match self.group_signal(message, now) {
                None => return,
                Some(ServerMessage::MemberJoined { call_id, peer })
                    if self.machine.current().is_some_and(|(id, _)| *id == call_id) =>
                {
                    // The peer invited someone: our call of two is a group now.
                    if self.form_group(now) {
                        let _ =
                            self.group_signal(ServerMessage::MemberJoined { call_id, peer }, now);
                    }
                    return;
                }
                Some(ServerMessage::Invite {
                    from,
                    from_name,
                    call_id,
                    members,
                }) => self
                    .machine
                    .on_invite(from, from_name, call_id, members, now),
                Some(message) => match message {
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
                    _ => return,
                },
            },
        };
        self.perform(actions);
    }

    fn link_event(&mut self, id: LinkId, event: LinkEvent, now: Instant) {
        let Some(link) = self.links.get_mut(&id) else {
            debug!("{id} is closed: ignoring {event:?}");
            return;
        };
        let in_group = self.group.is_some();
        let call_id = match &self.group {
            Some(group) => Some(group.id.clone()),
            None => self.machine.current().map(|(id, _)| id.clone()),
        };
        let actions = match event {
            LinkEvent::LocalDescription(sdp) => {
                let Some(call_id) = call_id else {
                    return;
                };
                let to = link.peer.clone();
                let message = match link.owed.take() {
                    Some(Owed::Offer) => ClientMessage::Offer { to, call_id, sdp },
                    Some(Owed::Answer) => ClientMessage::Answer { to, call_id, sdp },
                    None => return,
                };
                let held = std::mem::take(&mut link.held_candidates);
                self.outputs.push_back(Output::Signal(message));
                for candidate in held {
                    self.outputs
                        .push_back(Output::Link(id, LinkAction::AddCandidate(candidate)));
                }
                return;
            }
            LinkEvent::SetupFailed(reason) if in_group => {
                self.member_unreachable(id, &reason, now);
                return;
            }
            LinkEvent::Failed if in_group => {
                self.member_unreachable(id, "the connection failed", now);
                return;
            }
            LinkEvent::Connected if in_group => {
                self.member_connected(id, now);
                return;
            }
            LinkEvent::Disconnected if in_group => {
                self.member_disconnected(id, now);
                return;
            }
            LinkEvent::SetupFailed(reason) => self.machine.on_failed(&reason),
            LinkEvent::LocalCandidate(candidate) => {
                let Some(call_id) = call_id else {
                    return;
                };
                vec![Action::Signal(ClientMessage::Candidate {
                    to: link.peer.clone(),
                    call_id,
                    candidate,
                })]
            }
            LinkEvent::Connected => {
                let start_media = !link.media_started;
                let actions = self.machine.on_connected(now);
                self.perform(actions);
                if start_media && self.machine.is_connected() {
                    self.start_media(id, now);
                }
                return;
            }
            LinkEvent::Disconnected => self.machine.on_disconnected(now),
            LinkEvent::Failed => self.machine.on_failed("the connection failed"),
            LinkEvent::ChatOpen => {
                let waiting = link.chat.opened();
                self.event(Event::Chat(ChatEvent::Open));
                self.outputs.extend(
                    waiting
                        .into_iter()
                        .map(|message| Output::Link(id, LinkAction::SendChat(message))),
                );
                let state = self.state_message(id);
                self.outputs
                    .push_back(Output::Link(id, LinkAction::SendChat(state)));
                return;
            }
            LinkEvent::ChatMessage(bytes) => match link.chat.receive(&bytes) {
                Ok(Incoming::Message { mut event, ack }) => {
                    self.outputs
                        .push_back(Output::Link(id, LinkAction::SendChat(ack)));
                    if let ChatEvent::Received { from_name, .. } = &mut event {
                        *from_name = self.member_name(id);
                    }
                    self.event(Event::Chat(event));
                    return;
                }
                Ok(Incoming::Delivered(event)) => {
                    if let Some(event) = self.count_ack(event) {
                        self.event(Event::Chat(event));
                    }
                    return;
                }
                Ok(Incoming::Bye) if in_group => {
                    self.member_bye(id);
                    return;
                }
                Ok(Incoming::Bye) => self.machine.on_bye(),
                Ok(Incoming::File(message)) => {
                    let peer_name = link.peer_name.clone();
                    self.files.receive(id, peer_name, message, now);
                    return;
                }
                Ok(Incoming::State {
                    muted,
                    camera_off,
                    screen,
                }) => {
                    let sharing = screen == Some(true);
                    if in_group {
                        self.member_state(id, muted, camera_off, sharing);
                    } else {
                        self.event(Event::PeerState {
                            muted,
                            camera_off,
                            sharing,
                        });
                    }
                    self.peer_takes_screen(id, screen.is_some());
                    return;
                }
                Err(err) => {
                    debug!("ignoring a chat message from the peer: {err}");
                    return;
                }
            },
            LinkEvent::ChatNotSent(message) => {
                if let Some(event) = link.chat.not_sent(message) {
                    self.event(Event::Chat(event));
                }
                return;
            }
            LinkEvent::File(report) => return self.files.report(report, now),
            LinkEvent::Identity { ours, theirs } => {
                if link
                    .identity
                    .as_ref()
                    .is_some_and(|(known, _)| *known == theirs)
                {
                    return; // The same handshake, reported again after an ICE restart.
                }
                let code = SafetyCode::derive(&ours, &theirs);
                link.identity = Some((theirs, code.clone()));
                let identity = PeerIdentity {
                    peer: link.peer.clone(),
                    peer_name: link.peer_name.clone(),
                    fingerprint: theirs,
                    safety_code: Some(code),
                };
                self.event(Event::Identity(identity));
                return;
            }
        };
        self.perform(actions);
    }

    fn send_chat(&mut self, text: String, sent_at_ms: u64) {
        let fail = |text: String, reason: ChatFailure| {
            Event::Chat(ChatEvent::Failed {
                id: None,
                text,
                reason: reason.to_string(),
            })
        };
        if let Err(err) = validate_chat_text(&text) {
            self.event(fail(text, err.into()));
            return;
        }
        // The chat goes to every link of the call: one in a call of two, one per member
        // in a group call (each member acknowledges it on its own link).
        let links: Vec<LinkId> = if self.group.is_some() || self.machine.is_connected() {
            self.links.keys().copied().collect()
        } else {
            Vec::new()
        };
        if links.is_empty() {
            self.event(fail(text, ChatFailure::NoCall));
            return;
        }
        let id = self.uuid();
        let message = ChatMessage::Chat {
            id: id.clone(),
            text: text.clone(),
            sent_at_ms,
        };
        let mut went = 0;
        let mut refusal = None;
        for link in links {
            let Some(book) = self.links.get_mut(&link).map(|l| &mut l.chat) else {
                continue;
            };
            match book.send(message.clone()) {
                Ok(now) => {
                    went += 1;
                    if let Some(message) = now {
                        self.outputs
                            .push_back(Output::Link(link, LinkAction::SendChat(message)));
                    }
                }
                Err(reason) => refusal = Some(reason),
            }
        }
        match refusal {
            Some(reason) if went == 0 => self.event(fail(text, reason)),
            _ => {
                if self.group.is_some() {
                    self.group_acks.insert(id.clone(), (0, went));
                }
                self.event(Event::Chat(ChatEvent::Sent {
                    id,
                    text,
                    sent_at_ms,
                }));
            }
        }
    }

    /// Our switches, as the peer of link `id` is told them. A peer that gets the screen
    /// instead of the camera is told the camera is on while it does: it shows that picture.
    fn state_message(&self, id: LinkId) -> ChatMessage {
        let screen_as_camera = self
            .links
            .get(&id)
            .is_some_and(|link| link.screen_route == ScreenRoute::InPlaceOfCamera);
        ChatMessage::State {
            muted: self.muted,
            camera_off: !self.camera_wanted && !screen_as_camera,
            screen: Some(self.sharing),
        }
    }

    /// Tells every link whose chat is open what our switches are now.
    fn tell_state(&mut self) {
        let open: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, link)| link.chat.is_open())
            .map(|(id, _)| *id)
            .collect();
        for id in open {
            self.tell_state_to(id);
        }
    }

    fn tell_state_to(&mut self, id: LinkId) {
        let state = self.state_message(id);
        self.outputs
            .push_back(Output::Link(id, LinkAction::SendChat(state)));
    }

    /// In a group call a message is delivered once every member it went to acknowledged
    /// it; until then each acknowledgement says how many have.
    fn count_ack(&mut self, event: ChatEvent) -> Option<ChatEvent> {
        let ChatEvent::Delivered { id } = &event else {
            return Some(event);
        };
        let Some((acked, of)) = self.group_acks.get_mut(id) else {
            return Some(event);
        };
        *acked += 1;
        let (acked, of) = (*acked, *of);
        if acked >= of {
            self.group_acks.remove(id);
            return Some(event);
        }
        Some(ChatEvent::DeliveredTo {
            id: id.clone(),
            delivered: acked,
            of,
        })
    }

    /// Turns the machine's actions into outputs.
    fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            self.perform_one(action);
        }
    }

    fn perform_one(&mut self, action: Action) {
        match action {
            Action::Signal(message) => self.outputs.push_back(Output::Signal(message)),
            Action::State(state) => {
                let ringing = match &state {
                    CallState::Incoming { peer, peer_name } => self
                        .machine
                        .ringing_offer()
                        .map(|sdp| (peer.clone(), peer_name.clone(), sdp.to_owned())),
                    _ => None,
                };
                self.event(Event::Call(state));
                if let Some((peer, peer_name, offer)) = ringing {
                    self.claimed_identity(peer, peer_name, &offer);
                }
            }
            Action::StartPeer {
                role,
                peer,
                peer_name,
                remote_offer,
                ..
            } => {
                self.start_link(peer, peer_name, role, remote_offer);
            }
            Action::Join { .. } => debug!("a join outside accepting: ignored"),
            Action::ApplyAnswer(sdp) => {
                // Until the handshake proves it, the identity the answer claims (the caller
                // learns it before anything connects).
                let link = self.current_link().and_then(|id| self.links.get(&id));
                if let Some(link) = link.filter(|link| link.identity.is_none()) {
                    let (peer, peer_name) = (link.peer.clone(), link.peer_name.clone());
                    self.claimed_identity(peer, peer_name, &sdp);
                }
                self.send_to_current_link(LinkAction::ApplyAnswer(sdp));
            }
            Action::ApplyOffer(sdp) => {
                if let Some(link) = self.current_link().and_then(|id| self.links.get_mut(&id)) {
                    link.owed = Some(Owed::Answer);
                }
                self.send_to_current_link(LinkAction::ApplyOffer(sdp));
            }
            Action::RestartIce => {
                if let Some(link) = self.current_link().and_then(|id| self.links.get_mut(&id)) {
                    link.owed = Some(Owed::Offer);
                }
                self.send_to_current_link(LinkAction::RestartIce);
            }
            Action::AddCandidate(candidate) => match self.current_link() {
                Some(link) => self.add_candidate(link, candidate),
                None => debug!("no link for a candidate"),
            },
            Action::ClosePeer => {
                // The camera first: its light goes off at the hang-up, and the link's
                // summary (the end of the call for whoever waits on it) comes after.
                self.close_camera();
                self.stop_sharing();
                let state = self.machine.state().clone();
                for (id, mut link) in std::mem::take(&mut self.links) {
                    self.files.link_closed(id);
                    self.flush_files();
                    for event in link.chat.close() {
                        self.event(Event::Chat(event));
                    }
                    let closed = link.closed(state.clone());
                    self.outputs
                        .push_back(Output::Link(id, LinkAction::Close(closed)));
                }
            }
        }
    }

    /// Creates a link to `peer`: the caller makes an offer, the callee answers
    /// `remote_offer`.
    fn start_link(
        &mut self,
        peer: PeerId,
        peer_name: String,
        role: Role,
        remote_offer: Option<String>,
    ) -> LinkId {
        let id = LinkId(self.next_link);
        self.next_link += 1;
        let owed = match role {
            Role::Caller => Owed::Offer,
            Role::Callee => Owed::Answer,
        };
        let link = Link {
            peer: peer.clone(),
            peer_name: peer_name.clone(),
            chat: ChatBook::default(),
            owed: Some(owed),
            held_candidates: Vec::new(),
            media_started: false,
            takes_screen: None,
            media_since: None,
            switches_overdue: false,
            screen_route: ScreenRoute::Off,
            identity: None,
        };
        self.links.insert(id, link);
        // The camera comes on with the call (the callee's once accepted), for the
        // self-view while it connects.
        if self.camera_wanted {
            self.open_camera();
        }
        let start = LinkAction::Start {
            role,
            peer,
            peer_name,
            remote_offer,
        };
        self.outputs.push_back(Output::Link(id, start));
        id
    }

    /// The peer's candidate, held while the link still owes its description.
    fn add_candidate(&mut self, id: LinkId, candidate: Option<IceCandidate>) {
        match self.links.get_mut(&id) {
            Some(link) if link.owed.is_some() => {
                let room = link.held_candidates.len() < MAX_BUFFERED_CANDIDATES;
                room.then(|| link.held_candidates.push(candidate));
            }
            Some(_) => self
                .outputs
                .push_back(Output::Link(id, LinkAction::AddCandidate(candidate))),
            None => {}
        }
    }

    /// A link connected for the first time: media starts on it (and the microphone opens
    /// with the call's first).
    fn start_media(&mut self, id: LinkId, now: Instant) {
        let first = !self.links.values().any(|l| l.media_started);
        let Some(link) = self.links.get_mut(&id).filter(|l| !l.media_started) else {
            return;
        };
        link.media_started = true;
        link.media_since = Some(now);
        self.outputs
            .push_back(Output::Link(id, LinkAction::StartMedia));
        self.route_screen(id);
        if first {
            self.outputs.push_back(Output::OpenMicrophone);
        }
    }

    fn link_of(&self, peer: &PeerId) -> Option<LinkId> {
        self.links
            .iter()
            .find(|(_, link)| &link.peer == peer)
            .map(|(id, _)| *id)
    }

    /// The link of the current call with its peer.
    fn current_link(&self) -> Option<LinkId> {
        let (_, peer) = self.machine.current()?;
        self.link_of(peer)
    }

    /// The identity a peer's description claims (its `a=fingerprint`), as news; nothing is
    /// proven until the handshake ([`LinkEvent::Identity`]).
    fn claimed_identity(&mut self, peer: PeerId, peer_name: String, sdp: &str) {
        if let Some(fingerprint) = Fingerprint::from_sdp(sdp) {
            self.event(Event::Identity(PeerIdentity {
                peer,
                peer_name,
                fingerprint,
                safety_code: None,
            }));
        }
    }

    fn send_to_current_link(&mut self, action: LinkAction) {
        match self.current_link() {
            Some(id) => self.outputs.push_back(Output::Link(id, action)),
            None => debug!("no link for {action:?}"),
        }
    }

    fn open_camera(&mut self) {
        self.camera_open = true;
        self.outputs.push_back(Output::OpenCamera);
    }

    fn close_camera(&mut self) {
        if self.camera_open {
            self.camera_open = false;
            self.outputs.push_back(Output::CloseCamera);
        }
    }

    fn event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Carries out what the file decisions led to; their chat goes through the link's
    /// book (it waits there for the channel to open).
    fn flush_files(&mut self) {
        for out in self.files.take_outputs() {
            match out {
                FileOut::Chat(id, message) => {
                    let Some(link) = self.links.get_mut(&id) else {
                        continue;
                    };
                    match link.chat.send(message) {
                        Ok(Some(message)) => self
                            .outputs
                            .push_back(Output::Link(id, LinkAction::SendChat(message))),
                        Ok(None) => {}
                        Err(err) => debug!("{id}: a file message was not sent: {err}"),
                    }
                }
                FileOut::Link(id, action) => self.outputs.push_back(Output::Link(id, action)),
                FileOut::Hash { files, path } => {
                    self.outputs.push_back(Output::HashFile { files, path });
                }
                FileOut::Event(transfer) => self.event(Event::File(transfer)),
            }
        }
    }

    /// A random UUID (version 4), as text.
    fn uuid(&mut self) -> String {
        let bits = self.randomness.random_u128();
        let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
        let hex = format!("{bits:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}
