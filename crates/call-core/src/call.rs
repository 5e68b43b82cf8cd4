//! The call core: every decision of a call, in the shape of str0m's `Rtc` and quinn-proto's
//! `Connection`. The driver passes in what happened with the current time
//! ([`CallCore::handle`], [`CallCore::handle_timeout`]), takes what to do from
//! [`CallCore::poll_output`] and performs it in order, and calls back at
//! [`CallCore::poll_timeout`].
//!
//! A call is a set of peer links, one per remote peer, each with its own [`LinkId`] (today a
//! call has one link). The core decides which remote messages belong to the call, when a
//! link is created (the callee's only after the user accepts), which candidates go to whom,
//! when media starts, when the camera is on, what the chat sends and tells the user, and
//! when everything is released.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Instant;

use confab_protocol::chat::{ChatMessage, validate_chat_text};
use confab_protocol::{CallId, ClientMessage, IceCandidate, PeerId, PeerInfo, ServerMessage};
use tracing::debug;

use crate::chat::{ChatBook, ChatEvent, ChatFailure, Incoming};
use crate::machine::{Action, CallMachine, CallState, MAX_BUFFERED_CANDIDATES, Role, Timeouts};

/// One peer connection of a call. Never reused: events of a closed link are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(u64);

impl LinkId {
    /// The first link a core makes (for tests of the driver's parts).
    pub fn first() -> LinkId {
        LinkId(0)
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
    /// Another camera or format was chosen.
    VideoSourceChanged,
    /// Another microphone (or audio input) was chosen.
    AudioSourceChanged,
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
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Command(Command),
    Signaling(Signaling),
    Link(LinkId, LinkEvent),
}

/// Something the user should know that is not a call state or a chat message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The person called is no longer in the list.
    #[error("that person is no longer online")]
    PeerOffline,
}

/// What the user is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Call(CallState),
    Chat(ChatEvent),
    Problem(Problem),
}

/// The totals of a link that closed, for its summary.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkClosed {
    pub chats_sent: u64,
    pub chats_received: u64,
    /// The call's state when the link closed (`Ended` with the reason, normally).
    pub state: CallState,
}

/// What the driver must do with a link.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkAction {
    /// Create the peer connection. The caller makes an offer; the callee applies
    /// `remote_offer` and answers. Report the result with [`LinkEvent::LocalDescription`]
    /// or [`LinkEvent::SetupFailed`].
    Start {
        role: Role,
        remote_offer: Option<String>,
    },
    /// Apply the callee's answer ([`LinkEvent::SetupFailed`] if it is refused).
    ApplyAnswer(String),
    /// The peer renegotiates: apply its offer and report our answer.
    ApplyOffer(String),
    AddCandidate(Option<IceCandidate>),
    /// The connection is up: start sending what the user has switched on.
    StartMedia,
    /// Send on the chat channel ([`LinkEvent::ChatNotSent`] if it cannot).
    SendChat(ChatMessage),
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
    /// Open the audio input as configured for the links that send, closing the one open.
    OpenMicrophone,
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
    chat: ChatBook,
    owed: Option<Owed>,
    /// The peer's candidates, held while the link still owes its description: checks to
    /// the peer must not overtake our answer (the peer's ICE would see them before it
    /// knows our credentials, and webrtc-rs then took a second to connect).
    held_candidates: Vec<Option<IceCandidate>>,
    media_started: bool,
}

/// Every decision of a call. See the module documentation.
pub struct CallCore {
    machine: CallMachine,
    randomness: Box<dyn Randomness>,
    roster: Vec<PeerInfo>,
    links: BTreeMap<LinkId, Link>,
    next_link: u64,
    /// The user's camera switch.
    camera_wanted: bool,
    /// Whether the driver was told to open the camera (and not to close it since).
    camera_open: bool,
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
            camera_wanted: true,
            camera_open: false,
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
        self.machine.next_deadline()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let actions = self.machine.tick(now);
        self.perform(actions);
    }

    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Command(command) => self.command(command, now),
            Input::Signaling(signaling) => self.signaling(signaling, now),
            Input::Link(link, event) => self.link_event(link, event, now),
        }
    }

    fn command(&mut self, command: Command, now: Instant) {
        let actions = match command {
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
            Command::Accept => self.machine.accept(now),
            Command::Decline => self.machine.decline(),
            Command::HangUp => self.machine.hang_up(),
            Command::SendChat { text, sent_at_ms } => {
                self.send_chat(text, sent_at_ms);
                return;
            }
            Command::SetCamera(on) => {
                self.camera_wanted = on;
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
        };
        self.perform(actions);
    }

    fn signaling(&mut self, signaling: Signaling, now: Instant) {
        let actions = match signaling {
            Signaling::Online { my_id } => {
                self.machine.set_my_id(my_id);
                return;
            }
            // Answered calls go on (media is peer to peer); ringing ones cannot.
            Signaling::Offline => self.machine.on_signaling_lost(),
            Signaling::Roster(peers) => {
                self.roster = peers;
                return;
            }
            Signaling::Message(message) => match message {
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
        };
        self.perform(actions);
    }

    fn link_event(&mut self, id: LinkId, event: LinkEvent, now: Instant) {
        let Some(link) = self.links.get_mut(&id) else {
            debug!("{id} is closed: ignoring {event:?}");
            return;
        };
        let actions = match event {
            LinkEvent::LocalDescription(sdp) => {
                let Some((call_id, _)) = self.machine.current() else {
                    return;
                };
                let (to, call_id) = (link.peer.clone(), call_id.clone());
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
            LinkEvent::SetupFailed(reason) => self.machine.on_failed(&reason),
            LinkEvent::LocalCandidate(candidate) => {
                let Some((call_id, _)) = self.machine.current() else {
                    return;
                };
                vec![Action::Signal(ClientMessage::Candidate {
                    to: link.peer.clone(),
                    call_id: call_id.clone(),
                    candidate,
                })]
            }
            LinkEvent::Connected => {
                let start_media = !link.media_started;
                let actions = self.machine.on_connected(now);
                self.perform(actions);
                if start_media && self.machine.is_connected() {
                    if let Some(link) = self.links.get_mut(&id) {
                        link.media_started = true;
                    }
                    self.outputs
                        .push_back(Output::Link(id, LinkAction::StartMedia));
                    self.outputs.push_back(Output::OpenMicrophone);
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
                return;
            }
            LinkEvent::ChatMessage(bytes) => match link.chat.receive(&bytes) {
                Ok(Incoming::Message { event, ack }) => {
                    self.outputs
                        .push_back(Output::Link(id, LinkAction::SendChat(ack)));
                    self.event(Event::Chat(event));
                    return;
                }
                Ok(Incoming::Delivered(event)) => {
                    self.event(Event::Chat(event));
                    return;
                }
                Ok(Incoming::Bye) => self.machine.on_bye(),
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
        // Today's calls have one link: the chat goes to it.
        let link = match self.links.keys().next() {
            Some(&link) if self.machine.is_connected() => link,
            _ => {
                self.event(fail(text, ChatFailure::NoCall));
                return;
            }
        };
        let id = self.uuid();
        let message = ChatMessage::Chat {
            id: id.clone(),
            text: text.clone(),
            sent_at_ms,
        };
        let Some(book) = self.links.get_mut(&link).map(|l| &mut l.chat) else {
            return;
        };
        match book.send(message) {
            Ok(now) => {
                if let Some(message) = now {
                    self.outputs
                        .push_back(Output::Link(link, LinkAction::SendChat(message)));
                }
                self.event(Event::Chat(ChatEvent::Sent {
                    id,
                    text,
                    sent_at_ms,
                }));
            }
            Err(reason) => self.event(fail(text, reason)),
        }
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
            Action::State(state) => self.event(Event::Call(state)),
            Action::StartPeer {
                role,
                peer,
                remote_offer,
                ..
            } => {
                let id = LinkId(self.next_link);
                self.next_link += 1;
                let owed = match role {
                    Role::Caller => Owed::Offer,
                    Role::Callee => Owed::Answer,
                };
                let link = Link {
                    peer,
                    chat: ChatBook::default(),
                    owed: Some(owed),
                    held_candidates: Vec::new(),
                    media_started: false,
                };
                self.links.insert(id, link);
                // The camera comes on with the call (the callee's once accepted), for the
                // self-view while it connects.
                if self.camera_wanted {
                    self.open_camera();
                }
                let start = LinkAction::Start { role, remote_offer };
                self.outputs.push_back(Output::Link(id, start));
            }
            Action::ApplyAnswer(sdp) => self.send_to_current_link(LinkAction::ApplyAnswer(sdp)),
            Action::ApplyOffer(sdp) => {
                if let Some(link) = self.current_link().and_then(|id| self.links.get_mut(&id)) {
                    link.owed = Some(Owed::Answer);
                }
                self.send_to_current_link(LinkAction::ApplyOffer(sdp));
            }
            Action::AddCandidate(candidate) => {
                let link = self.current_link();
                match link.and_then(|id| self.links.get_mut(&id)) {
                    Some(link) if link.owed.is_some() => {
                        if link.held_candidates.len() < MAX_BUFFERED_CANDIDATES {
                            link.held_candidates.push(candidate);
                        }
                    }
                    _ => self.send_to_current_link(LinkAction::AddCandidate(candidate)),
                }
            }
            Action::ClosePeer => {
                // The camera first: its light goes off at the hang-up, and the link's
                // summary (the end of the call for whoever waits on it) comes after.
                self.close_camera();
                let state = self.machine.state().clone();
                for (id, mut link) in std::mem::take(&mut self.links) {
                    for event in link.chat.close() {
                        self.event(Event::Chat(event));
                    }
                    let closed = LinkClosed {
                        chats_sent: link.chat.sent,
                        chats_received: link.chat.received,
                        state: state.clone(),
                    };
                    self.outputs
                        .push_back(Output::Link(id, LinkAction::Close(closed)));
                }
            }
        }
    }

    /// The link of the current call with its peer.
    fn current_link(&self) -> Option<LinkId> {
        let (_, peer) = self.machine.current()?;
        self.links
            .iter()
            .find(|(_, link)| &link.peer == peer)
            .map(|(id, _)| *id)
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
