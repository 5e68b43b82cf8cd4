//! What the app knows, built only from the engine's events and the clock passed in: the
//! server connection, the roster, the call, its chat and stats, and the notices to show.
//! No I/O and no egui here, so every rule is a plain unit test.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use confab_call::{
    CallState, CallStats, ChatEvent, Direction, EngineEvent, FileId, MemberStatus, PeerIdentity,
    ServerStatus, Transfer, TransferState, human_bytes,
};
use confab_protocol::{ErrorCode, HangupReason, PeerId, PeerInfo};

use super::history::{FinishedCall, SavedLine};
use super::settings::SettingsProblem;
use super::verified::{Trust, Verified};

/// How long a notice stays on screen.
pub const TOAST_TIME: Duration = Duration::from_secs(6);
/// Notices shown at once; older ones go first.
const MAX_TOASTS: usize = 4;
/// Chat messages kept for one call; the oldest go first. Far more than a call's worth.
const MAX_CHAT_MESSAGES: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    pub text: String,
    pub severity: Severity,
    pub until: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Sent, not confirmed yet.
    Sent,
    /// The peer confirmed it (in a group call, every member).
    Delivered,
    /// In a group call: `delivered` of the `of` members confirmed it so far.
    DeliveredTo { delivered: usize, of: usize },
    /// It waited for the chat to connect, and the call ended first.
    NotSent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    /// The message id; empty for lines that never left (see `failed`).
    pub id: String,
    /// `None` for our own messages.
    pub from: Option<String>,
    pub text: String,
    /// Sender's clock, ms since the Unix epoch.
    pub sent_at_ms: u64,
    /// Our messages only.
    pub delivery: Option<Delivery>,
    /// A file sent or offered: the line shows the transfer (see [`Model::transfer`]).
    pub transfer: Option<FileId>,
}

#[derive(Debug)]
pub struct Model {
    /// The server connection, as the engine reports it.
    pub connection: ServerStatus,
    /// When the engine retries, while `connection` is `Offline`.
    pub retry_at: Option<Instant>,
    /// What in the settings keeps Confab from connecting at all (no engine runs then).
    pub settings_problem: Option<SettingsProblem>,
    pub roster: Vec<PeerInfo>,
    pub call: CallState,
    /// When the current call connected, for its duration.
    pub connected_at: Option<Instant>,
    pub stats: Option<CallStats>,
    /// In a group call, each member's latest stats, by name.
    pub member_stats: std::collections::BTreeMap<String, CallStats>,
    /// In a group call, who is speaking now.
    pub active_speaker: Option<PeerId>,
    /// In a call of two, the peer's switches as it said them.
    pub peer_state: PeerSwitches,
    /// We share our screen now (the engine says so; off again when the call ends).
    pub sharing: bool,
    /// The chosen camera could not be opened (why): shown once as a notice that offers
    /// the test pattern, not as an error on every call.
    pub camera_problem: Option<String>,
    pub chat: Vec<ChatLine>,
    /// The call's file transfers, in the order they began.
    pub transfers: Vec<Transfer>,
    pub chat_open: bool,
    /// Received while the chat pane was closed.
    pub unread: usize,
    pub toasts: VecDeque<Toast>,
    /// Whether the server is hosted here (and where others find it), or could be.
    pub hosting: Hosting,
    /// Online at least once since connecting with these settings (so the server URL was
    /// a real server, not a typo).
    pub was_online: bool,
    /// The call being made or had, for the history once it ends.
    log: Option<CallLog>,
    /// Calls that ended since the app last took them (for the history).
    pub finished: Vec<FinishedCall>,
    /// The identities of the call's peers: claimed while it rings, then proven with the
    /// safety code, one per peer.
    pub identities: Vec<PeerIdentity>,
    /// The people this user has verified (kept with the settings).
    pub verified: Verified,
    /// Why the profile's identity could not be used (this run has one of its own).
    pub identity_problem: Option<String>,
}

/// What the peer of a call of two said of its switches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerSwitches {
    pub muted: bool,
    pub camera_off: bool,
    /// It shares its screen.
    pub sharing: bool,
}

/// The bundled server and this Confab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosting {
    /// The server runs elsewhere (or another program here runs it).
    No,
    /// The server URL names a port here that nobody answers on: we could host it.
    Offered { port: u16 },
    /// This Confab hosts the server; others reach it at `urls`.
    Yes { port: u16, urls: Vec<String> },
}

/// What the history needs to know about the call in progress.
#[derive(Debug)]
struct CallLog {
    with: Vec<String>,
    incoming: bool,
    started: Instant,
    answered: bool,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

impl Model {
    pub fn new() -> Model {
        Model {
            connection: ServerStatus::Connecting { attempt: 0 },
            retry_at: None,
            settings_problem: None,
            roster: Vec::new(),
            call: CallState::Idle,
            connected_at: None,
            stats: None,
            member_stats: std::collections::BTreeMap::new(),
            active_speaker: None,
            peer_state: PeerSwitches::default(),
            sharing: false,
            camera_problem: None,
            chat: Vec::new(),
            transfers: Vec::new(),
            chat_open: false,
            unread: 0,
            toasts: VecDeque::new(),
            hosting: Hosting::No,
            was_online: false,
            log: None,
            finished: Vec::new(),
            identities: Vec::new(),
            verified: Verified::default(),
            identity_problem: None,
        }
    }

    pub fn apply(&mut self, event: EngineEvent, now: Instant) {
        match event {
            EngineEvent::Server(status) => self.server(status, now),
            EngineEvent::Roster(peers) => self.roster = peers,
            EngineEvent::Call(state) => self.call_state(state, now),
            EngineEvent::Chat(chat) => self.chat_event(chat, now),
            EngineEvent::File(transfer) => self.file_event(transfer, now),
            EngineEvent::Stats(stats) => {
                if let Some(name) = &stats.peer_name {
                    self.member_stats.insert(name.clone(), stats.clone());
                }
                self.stats = Some(stats);
            }
            EngineEvent::ActiveSpeaker(peer) => self.active_speaker = peer,
            EngineEvent::PeerState {
                muted,
                camera_off,
                sharing,
            } => {
                self.peer_state = PeerSwitches {
                    muted,
                    camera_off,
                    sharing,
                };
            }
            EngineEvent::Sharing(on) => self.sharing = on,
            EngineEvent::Identity(identity) => self.identity(identity, now),
            EngineEvent::Summary(_) | EngineEvent::CallFinished => {}
            EngineEvent::Problem(confab_call::Problem::Camera(reason)) => {
                self.camera_problem = Some(reason);
            }
            EngineEvent::Problem(problem) => self.notify(problem.to_string(), Severity::Error, now),
        }
    }

    fn server(&mut self, status: ServerStatus, now: Instant) {
        self.retry_at = None;
        match &status {
            ServerStatus::Connecting { .. } => {}
            ServerStatus::Online { .. } => self.was_online = true,
            ServerStatus::Offline { retry_in, .. } => {
                self.roster.clear();
                self.retry_at = Some(now + *retry_in);
            }
            // Said in place (the main area), with what to do about it.
            ServerStatus::Refused { .. } => self.roster.clear(),
        }
        self.connection = status;
    }

    /// Connecting anew (the settings allow it).
    pub fn connecting(&mut self) {
        self.settings_problem = None;
        self.was_online = false;
        self.retry_at = None;
        self.connection = ServerStatus::Connecting { attempt: 0 };
    }

    /// The settings keep Confab from connecting (said in place, in the main area).
    pub fn cannot_connect(&mut self, problem: SettingsProblem) {
        self.settings_problem = Some(problem);
    }

    pub fn is_online(&self) -> bool {
        self.settings_problem.is_none() && matches!(self.connection, ServerStatus::Online { .. })
    }

    /// Why Confab is not online, in words for the user; `None` while connecting or online.
    pub fn connection_problem(&self) -> Option<String> {
        if let Some(problem) = &self.settings_problem {
            return Some(problem.to_string());
        }
        match &self.connection {
            ServerStatus::Offline { reason, .. } => {
                Some(format!("Cannot reach the server: {reason}"))
            }
            ServerStatus::Refused { code, message } => Some(refusal(*code, message)),
            ServerStatus::Connecting { .. } | ServerStatus::Online { .. } => None,
        }
    }

    fn call_state(&mut self, state: CallState, now: Instant) {
        self.members_changed(&state, now);
        self.log_call(&state, now);
        match &state {
            CallState::Outgoing { .. } | CallState::Incoming { .. } | CallState::Invited { .. } => {
                // A new call: a fresh chat and stats.
                self.chat.clear();
                self.transfers.clear();
                self.unread = 0;
                self.stats = None;
                self.member_stats.clear();
                self.peer_state = PeerSwitches::default();
                self.sharing = false;
                self.connected_at = None;
                self.identities.clear();
            }
            CallState::Connected { .. } => self.connected_at = Some(now),
            // A call of two that grew keeps its clock.
            CallState::Group { .. } => {
                self.connected_at.get_or_insert(now);
            }
            CallState::Ended(end) => {
                self.connected_at = None;
                self.active_speaker = None;
                // Nobody shares after the call, whatever news is still on its way.
                self.sharing = false;
                self.peer_state.sharing = false;
                self.notify(end.describe(), Severity::Info, now);
            }
            CallState::Idle | CallState::Connecting { .. } => {}
        }
        self.call = state;
    }

    fn identity(&mut self, identity: PeerIdentity, now: Instant) {
        let proven = identity.safety_code.is_some();
        if proven && self.trust(&identity) == Trust::Changed {
            let name = &identity.peer_name;
            self.notify(
                format!(
                    "⚠ {name}'s identity is not the one you verified. Someone may be in the \
                     middle: compare safety codes (Verify) before you trust this call."
                ),
                Severity::Error,
                now,
            );
        }
        let proven_before = self
            .identities
            .iter()
            .any(|known| known.peer == identity.peer && known.safety_code.is_some());
        if !proven && proven_before {
            return; // A claim never replaces what a handshake proved.
        }
        self.identities.retain(|known| known.peer != identity.peer);
        self.identities.push(identity);
    }

    /// How far the user can trust this identity.
    pub fn trust(&self, identity: &PeerIdentity) -> Trust {
        self.verified
            .trust(&identity.peer_name, &identity.fingerprint)
    }

    /// The identity of `peer` in this call, if known, and how far to trust it.
    pub fn identity_of(&self, peer: &PeerId) -> Option<(&PeerIdentity, Trust)> {
        let identity = self.identities.iter().find(|i| i.peer == *peer)?;
        Some((identity, self.trust(identity)))
    }

    /// Keeps what the history needs; a call that ends goes to `finished`.
    fn log_call(&mut self, next: &CallState, now: Instant) {
        let start = |with: Vec<String>, incoming: bool| CallLog {
            with,
            incoming,
            started: now,
            answered: false,
        };
        match next {
            CallState::Outgoing { peer_name, .. } => {
                self.log = Some(start(vec![peer_name.clone()], false));
            }
            CallState::Incoming { peer_name, .. } => {
                self.log = Some(start(vec![peer_name.clone()], true));
            }
            CallState::Invited {
                peer_name, others, ..
            } => {
                let with = std::iter::once(peer_name).chain(others).cloned().collect();
                self.log = Some(start(with, true));
            }
            CallState::Connecting { .. } | CallState::Connected { .. } => {
                if let Some(log) = &mut self.log {
                    log.answered = true;
                }
            }
            CallState::Group { members } => {
                if let Some(log) = &mut self.log {
                    log.answered = true;
                    for member in members {
                        if !log.with.contains(&member.name) {
                            log.with.push(member.name.clone());
                        }
                    }
                }
            }
            CallState::Ended(end) => {
                // A call that rang while we were busy never had a log of its own.
                let log = self
                    .log
                    .take()
                    .unwrap_or_else(|| start(vec![end.peer_name.clone()], true));
                let we_said_no = end.reason == HangupReason::Declined && !end.by_peer;
                self.finished.push(FinishedCall {
                    missed: log.incoming && !log.answered && !we_said_no,
                    with: log.with,
                    incoming: log.incoming,
                    connected_for: self.call_duration(now),
                    outcome: end.describe(),
                    age: now.saturating_duration_since(log.started),
                    chat: self
                        .chat
                        .iter()
                        .map(|line| SavedLine {
                            from: line.from.clone(),
                            text: line.text.clone(),
                            sent_at_ms: line.sent_at_ms,
                        })
                        .collect(),
                });
            }
            CallState::Idle => {}
        }
    }

    /// In a group call, says who joined and who left (a member whose connection was lost
    /// leaves too, after its grace time).
    fn members_changed(&mut self, next: &CallState, now: Instant) {
        let CallState::Group { members: after } = next else {
            return;
        };
        let before: &[confab_call::Member] = match &self.call {
            CallState::Group { members } => members,
            _ => return,
        };
        let status = |list: &[confab_call::Member], peer: &PeerId| {
            list.iter().find(|m| m.peer == *peer).map(|m| m.status)
        };
        let mut notices = Vec::new();
        for member in before {
            if status(after, &member.peer).is_none() && member.status != MemberStatus::Invited {
                notices.push(format!("{} left the call", member.name));
            }
        }
        for member in after {
            let was = status(before, &member.peer);
            if member.status == MemberStatus::Connected
                && matches!(
                    was,
                    None | Some(MemberStatus::Invited | MemberStatus::Joining)
                )
            {
                notices.push(format!("{} joined the call", member.name));
            }
        }
        for notice in notices {
            self.notify(notice, Severity::Info, now);
        }
    }

    fn chat_event(&mut self, event: ChatEvent, now: Instant) {
        match event {
            ChatEvent::Open => {}
            ChatEvent::Sent {
                id,
                text,
                sent_at_ms,
            } => self.push_line(ChatLine {
                id,
                from: None,
                text,
                sent_at_ms,
                delivery: Some(Delivery::Sent),
                transfer: None,
            }),
            ChatEvent::Delivered { id } => self.mark_mine(&id, Delivery::Delivered),
            ChatEvent::DeliveredTo { id, delivered, of } => {
                self.mark_mine(&id, Delivery::DeliveredTo { delivered, of });
            }
            ChatEvent::Received {
                id,
                text,
                sent_at_ms,
                from_name,
            } => {
                let from =
                    from_name.unwrap_or_else(|| self.peer_name().unwrap_or("Peer").to_owned());
                self.push_line(ChatLine {
                    id,
                    from: Some(from),
                    text,
                    sent_at_ms,
                    delivery: None,
                    transfer: None,
                });
                if !self.chat_open {
                    self.unread += 1;
                }
            }
            ChatEvent::Failed { id, reason, .. } => {
                if let Some(id) = id {
                    self.mark_mine(&id, Delivery::NotSent);
                }
                self.notify(format!("Message not sent: {reason}"), Severity::Error, now)
            }
        }
    }

    /// A transfer began (a line in the chat) or moved on.
    fn file_event(&mut self, transfer: Transfer, now: Instant) {
        let size = human_bytes(transfer.size);
        if let Some(known) = self.transfers.iter_mut().find(|t| t.file == transfer.file) {
            // The chat's line (and so the history) says how it ended.
            let outcome = match &transfer.state {
                TransferState::Done { saved_to: Some(_) } => Some("saved".to_string()),
                TransferState::Done { saved_to: None } => Some("sent".to_string()),
                TransferState::Declined { .. } => Some("declined".to_string()),
                TransferState::Cancelled { .. } => Some("cancelled".to_string()),
                TransferState::Failed { reason } => Some(format!("failed: {reason}")),
                _ => None,
            };
            let line = self
                .chat
                .iter_mut()
                .find(|l| l.transfer == Some(transfer.file));
            if let (Some(outcome), Some(line)) = (outcome, line) {
                line.text = format!("📎 {} ({size}): {outcome}", transfer.name);
            }
            *known = transfer;
            return;
        }
        let incoming = transfer.direction == Direction::Receiving;
        if incoming && transfer.state == TransferState::Offered && !self.chat_open {
            self.unread += 1;
            let (who, name) = (&transfer.peer_name, &transfer.name);
            self.notify(
                format!("{who} wants to send {name} ({size})"),
                Severity::Info,
                now,
            );
        }
        self.push_line(ChatLine {
            id: String::new(),
            from: incoming.then(|| transfer.peer_name.clone()),
            text: format!("📎 {} ({size})", transfer.name),
            sent_at_ms: 0,
            delivery: None,
            transfer: Some(transfer.file),
        });
        self.transfers.push(transfer);
    }

    /// The transfer a chat line shows.
    pub fn transfer(&self, file: FileId) -> Option<&Transfer> {
        self.transfers.iter().find(|t| t.file == file)
    }

    /// Sets the delivery of our own message `id` (not one the peer sent under that id).
    fn mark_mine(&mut self, id: &str, delivery: Delivery) {
        if let Some(line) = self
            .chat
            .iter_mut()
            .rev()
            .find(|line| line.from.is_none() && line.id == id)
        {
            line.delivery = Some(delivery);
        }
    }

    fn push_line(&mut self, line: ChatLine) {
        if self.chat.len() >= MAX_CHAT_MESSAGES {
            self.chat.remove(0);
        }
        self.chat.push(line);
    }

    pub fn set_chat_open(&mut self, open: bool) {
        self.chat_open = open;
        if open {
            self.unread = 0;
        }
    }

    pub fn notify(&mut self, text: impl Into<String>, severity: Severity, now: Instant) {
        let text = text.into();
        // The same notice twice in a row (a retry loop, say) shows once, for longer.
        self.toasts.retain(|toast| toast.text != text);
        if self.toasts.len() >= MAX_TOASTS {
            self.toasts.pop_front();
        }
        self.toasts.push_back(Toast {
            text,
            severity,
            until: now + TOAST_TIME,
        });
    }

    /// Drops notices whose time is up; returns when the next one expires.
    pub fn expire_toasts(&mut self, now: Instant) -> Option<Instant> {
        self.toasts.retain(|toast| toast.until > now);
        self.toasts.iter().map(|toast| toast.until).min()
    }

    /// The other party of the current or last call.
    pub fn peer_name(&self) -> Option<&str> {
        match &self.call {
            CallState::Outgoing { peer_name, .. }
            | CallState::Incoming { peer_name, .. }
            | CallState::Connecting { peer_name, .. }
            | CallState::Connected { peer_name, .. }
            | CallState::Invited { peer_name, .. } => Some(peer_name),
            CallState::Ended(end) => Some(&end.peer_name),
            CallState::Group { members } => members.first().map(|m| m.name.as_str()),
            CallState::Idle => None,
        }
    }

    /// The window's title: what is happening, so a window in the background says it.
    pub fn window_title(&self) -> String {
        let what = match &self.call {
            CallState::Idle | CallState::Ended(_) => return "Confab".into(),
            CallState::Outgoing { peer_name, .. } => format!("Calling {peer_name}…"),
            CallState::Incoming { peer_name, .. } => format!("{peer_name} is calling"),
            CallState::Invited { peer_name, .. } => format!("{peer_name} invites you"),
            CallState::Connecting { peer_name, .. } | CallState::Connected { peer_name, .. } => {
                format!("In a call with {peer_name}")
            }
            CallState::Group { members } => format!("In a call with {} people", members.len()),
        };
        if self.sharing && self.in_call() {
            format!("Sharing your screen · {what} · Confab")
        } else {
            format!("{what} · Confab")
        }
    }

    /// Who shares a screen with us now, in the order of the call's members (in a call of
    /// two, the peer).
    pub fn sharers(&self) -> Vec<PeerId> {
        match &self.call {
            CallState::Connecting { peer, .. } | CallState::Connected { peer, .. }
                if self.peer_state.sharing =>
            {
                vec![peer.clone()]
            }
            CallState::Group { members } => members
                .iter()
                .filter(|m| m.sharing && m.status == MemberStatus::Connected)
                .map(|m| m.peer.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// In a call that has been accepted (connecting or connected).
    pub fn in_call(&self) -> bool {
        matches!(
            self.call,
            CallState::Connecting { .. } | CallState::Connected { .. } | CallState::Group { .. }
        )
    }

    /// Any call at all, ringing included.
    pub fn busy(&self) -> bool {
        !matches!(self.call, CallState::Idle | CallState::Ended(_))
    }

    pub fn call_duration(&self, now: Instant) -> Option<Duration> {
        self.connected_at
            .map(|at| now.saturating_duration_since(at))
    }
}

/// Why the server refused us, and what to do about it.
fn refusal(code: ErrorCode, message: &str) -> String {
    match code {
        ErrorCode::NameTaken => {
            "Someone on this server already has that name: choose another.".into()
        }
        ErrorCode::NameInvalid => format!("The server does not accept that name: {message}"),
        ErrorCode::Unauthorized => "The server needs the right token: set it in Settings.".into(),
        ErrorCode::ProtocolMismatch => {
            format!("This server speaks another version of Confab: {message}")
        }
        ErrorCode::ServerFull => "The server is full; try again later.".into(),
        _ => format!("The server refused us: {message}"),
    }
}

/// `mm:ss`, or `h:mm:ss` from an hour.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use confab_call::CallEnd;
    use confab_protocol::{HangupReason, PeerId};

    use super::*;

    fn incoming(name: &str) -> EngineEvent {
        EngineEvent::Call(CallState::Incoming {
            peer: PeerId::new("p1").expect("valid id"),
            peer_name: name.into(),
        })
    }

    fn sent(id: &str, text: &str) -> EngineEvent {
        EngineEvent::Chat(ChatEvent::Sent {
            id: id.into(),
            text: text.into(),
            sent_at_ms: 1,
        })
    }

    fn received(id: &str, text: &str) -> EngineEvent {
        EngineEvent::Chat(ChatEvent::Received {
            id: id.into(),
            text: text.into(),
            sent_at_ms: 2,
            from_name: None,
        })
    }

    /// In a call with Bob, two messages sent: `a` and `b`.
    fn two_sent(now: Instant) -> Model {
        let mut model = Model::new();
        model.apply(incoming("Bob"), now);
        model.apply(sent("a", "one"), now);
        model.apply(sent("b", "two"), now);
        model
    }

    fn ticks(model: &Model) -> Vec<Option<Delivery>> {
        model.chat.iter().map(|l| l.delivery.clone()).collect()
    }

    #[test]
    fn identities_are_trusted_as_verified_and_a_change_is_warned() {
        use confab_protocol::safety::{Fingerprint, SafetyCode};
        let now = Instant::now();
        let peer = PeerId::new("p1").expect("valid id");
        let (known, other) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        let identity = |fingerprint, proven: bool| {
            EngineEvent::Identity(PeerIdentity {
                peer: peer.clone(),
                peer_name: "Bob".into(),
                fingerprint,
                safety_code: proven.then(|| SafetyCode::derive(&known, &fingerprint)),
            })
        };
        let mut model = Model::new();
        model.verified.mark("Bob".into(), known);
        model.apply(incoming("Bob"), now);
        model.apply(identity(known, false), now);
        assert_eq!(
            model.identity_of(&peer).map(|(_, t)| t),
            Some(Trust::Verified)
        );
        model.apply(identity(known, true), now);
        // A later claim (an ICE restart's answer) keeps the proven identity and its code.
        model.apply(identity(known, false), now);
        let (shown, _) = model.identity_of(&peer).expect("known");
        assert!(shown.safety_code.is_some());
        assert!(model.toasts.is_empty(), "nothing to warn about");

        // The next call: Bob with another identity. The claim is marked, the proof warned.
        model.apply(incoming("Bob"), now);
        assert!(model.identities.is_empty(), "a new call starts afresh");
        model.apply(identity(other, false), now);
        assert_eq!(
            model.identity_of(&peer).map(|(_, t)| t),
            Some(Trust::Changed)
        );
        assert!(model.toasts.is_empty());
        model.apply(identity(other, true), now);
        assert!(model.toasts.iter().any(|t| {
            t.severity == Severity::Error
                && t.text
                    .contains("Bob's identity is not the one you verified")
        }));
    }

    #[test]
    fn a_message_that_never_went_out_is_marked_not_sent() {
        let now = Instant::now();
        let mut model = two_sent(now);
        model.apply(
            EngineEvent::Chat(ChatEvent::Failed {
                id: Some("b".into()),
                text: "two".into(),
                reason: "the call ended before the chat connected".into(),
            }),
            now,
        );
        assert_eq!(
            ticks(&model),
            [Some(Delivery::Sent), Some(Delivery::NotSent)]
        );
    }

    fn ended(name: &str, reason: HangupReason, by_peer: bool) -> EngineEvent {
        EngineEvent::Call(CallState::Ended(CallEnd {
            peer_name: name.into(),
            reason,
            by_peer,
            detail: None,
        }))
    }

    #[test]
    fn finished_calls_are_logged_with_duration_chat_and_whether_missed() {
        let start = Instant::now();
        let mut model = Model::new();
        // Answered, talked for 95 s, one message each way.
        model.apply(incoming("Bob"), start);
        model.apply(
            EngineEvent::Call(CallState::Connected {
                peer: PeerId::new("p1").expect("valid id"),
                peer_name: "Bob".into(),
                reconnecting: false,
            }),
            start + Duration::from_secs(5),
        );
        model.apply(sent("a", "hello"), start + Duration::from_secs(6));
        model.apply(received("b", "hi"), start + Duration::from_secs(7));
        model.apply(
            ended("Bob", HangupReason::Ended, true),
            start + Duration::from_secs(100),
        );
        // Rang and the caller gave up: missed.
        model.apply(incoming("Carol"), start + Duration::from_secs(200));
        model.apply(
            ended("Carol", HangupReason::Cancelled, true),
            start + Duration::from_secs(210),
        );
        // We declined: seen, not missed.
        model.apply(incoming("Dave"), start + Duration::from_secs(300));
        model.apply(
            ended("Dave", HangupReason::Declined, false),
            start + Duration::from_secs(301),
        );
        // Nobody answered our call: not a missed call of ours.
        model.apply(
            EngineEvent::Call(CallState::Outgoing {
                peer: PeerId::new("p5").expect("valid id"),
                peer_name: "Erin".into(),
            }),
            start + Duration::from_secs(400),
        );
        model.apply(
            ended("Erin", HangupReason::Timeout, true),
            start + Duration::from_secs(430),
        );

        let [bob, carol, dave, erin] = model.finished.as_slice() else {
            panic!("four calls: {:?}", model.finished);
        };
        assert_eq!(bob.with, ["Bob"]);
        assert_eq!(bob.connected_for, Some(Duration::from_secs(95)));
        assert_eq!(bob.age, Duration::from_secs(100));
        assert!(!bob.missed && bob.incoming);
        let chat: Vec<_> = bob
            .chat
            .iter()
            .map(|l| (l.from.as_deref(), l.text.as_str()))
            .collect();
        assert_eq!(chat, [(None, "hello"), (Some("Bob"), "hi")]);
        assert!(carol.missed && carol.connected_for.is_none());
        assert_eq!(carol.outcome, "Carol cancelled the call");
        assert!(!dave.missed);
        assert!(!erin.missed && !erin.incoming);
    }

    #[test]
    fn acks_tick_the_right_message() {
        let now = Instant::now();
        let mut model = two_sent(now);
        model.apply(
            EngineEvent::Chat(ChatEvent::Delivered { id: "b".into() }),
            now,
        );
        assert_eq!(
            ticks(&model),
            [Some(Delivery::Sent), Some(Delivery::Delivered)],
            "only b is delivered"
        );
        // An ack for an id the peer sent us does not tick anything.
        model.apply(received("c", "hi"), now);
        model.apply(
            EngineEvent::Chat(ChatEvent::Delivered { id: "c".into() }),
            now,
        );
        assert_eq!(model.chat[2].delivery, None);
        assert_eq!(model.chat[2].from.as_deref(), Some("Bob"));
    }

    #[test]
    fn a_group_call_says_who_joined_and_who_left_and_names_writers() {
        use confab_call::{Member, MemberStatus};
        let now = Instant::now();
        let member = |name: &str, status| Member {
            peer: PeerId::new(name.to_lowercase()).expect("valid id"),
            name: name.into(),
            status,
            muted: false,
            camera_off: false,
            sharing: false,
        };
        let group = |members: Vec<Member>| EngineEvent::Call(CallState::Group { members });
        let mut model = Model::new();
        model.apply(
            group(vec![
                member("Bob", MemberStatus::Connected),
                member("Carol", MemberStatus::Invited),
            ]),
            now,
        );
        model.apply(
            group(vec![
                member("Bob", MemberStatus::Connected),
                member("Carol", MemberStatus::Joining),
            ]),
            now,
        );
        model.apply(
            group(vec![
                member("Bob", MemberStatus::Connected),
                member("Carol", MemberStatus::Connected),
            ]),
            now,
        );
        model.apply(group(vec![member("Carol", MemberStatus::Connected)]), now);
        let notices: Vec<&str> = model.toasts.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(notices, ["Carol joined the call", "Bob left the call"]);
        assert!(model.in_call());
        model.apply(
            EngineEvent::Chat(ChatEvent::Received {
                id: "m".into(),
                text: "hi all".into(),
                sent_at_ms: 1,
                from_name: Some("Carol".into()),
            }),
            now,
        );
        assert_eq!(model.chat[0].from.as_deref(), Some("Carol"));
        model.apply(
            EngineEvent::ActiveSpeaker(Some(PeerId::new("carol").expect("id"))),
            now,
        );
        assert_eq!(
            model
                .active_speaker
                .as_ref()
                .map(|p| p.to_string())
                .as_deref(),
            Some("carol")
        );
    }

    #[test]
    fn the_window_title_says_what_is_happening() {
        let now = Instant::now();
        let mut model = Model::new();
        assert_eq!(model.window_title(), "Confab");
        model.apply(incoming("Bob"), now);
        assert_eq!(model.window_title(), "Bob is calling · Confab");
    }

    fn connected(name: &str) -> EngineEvent {
        EngineEvent::Call(CallState::Connected {
            peer: PeerId::new("p1").expect("valid id"),
            peer_name: name.into(),
            reconnecting: false,
        })
    }

    fn peer_sharing(sharing: bool) -> EngineEvent {
        EngineEvent::PeerState {
            muted: false,
            camera_off: false,
            sharing,
        }
    }

    #[test]
    fn our_screen_sharing_follows_the_engine_shows_in_the_title_and_ends_with_the_call() {
        let now = Instant::now();
        let mut model = Model::new();
        model.apply(incoming("Bob"), now);
        model.apply(connected("Bob"), now);
        assert!(!model.sharing);
        model.apply(EngineEvent::Sharing(true), now);
        assert!(model.sharing);
        assert_eq!(
            model.window_title(),
            "Sharing your screen · In a call with Bob · Confab"
        );
        // The capture stopped by itself: the engine says so, and why.
        model.apply(EngineEvent::Sharing(false), now);
        model.apply(
            EngineEvent::Problem(confab_call::Problem::Screen("the display went away".into())),
            now,
        );
        assert!(!model.sharing);
        assert_eq!(model.window_title(), "In a call with Bob · Confab");
        assert!(
            model
                .toasts
                .iter()
                .any(|t| t.text.contains("the display went away"))
        );
        // Sharing when the call ends: off at once, before the engine's own word.
        model.apply(EngineEvent::Sharing(true), now);
        model.apply(ended("Bob", HangupReason::Ended, true), now);
        assert!(!model.sharing);
        assert_eq!(model.window_title(), "Confab");
        model.apply(incoming("Carol"), now);
        assert!(!model.sharing, "a new call starts without sharing");
    }

    #[test]
    fn the_peers_screen_is_shown_while_it_shares_and_forgotten_when_the_call_ends() {
        let now = Instant::now();
        let bob = PeerId::new("p1").expect("valid id");
        let mut model = Model::new();
        model.apply(incoming("Bob"), now);
        // Ringing: no screen is shown yet.
        model.apply(peer_sharing(true), now);
        assert!(model.sharers().is_empty());
        model.apply(connected("Bob"), now);
        assert_eq!(model.sharers(), [bob]);
        model.apply(peer_sharing(false), now);
        assert!(model.sharers().is_empty());
        model.apply(peer_sharing(true), now);
        model.apply(ended("Bob", HangupReason::Ended, true), now);
        assert!(model.sharers().is_empty());
        assert!(!model.peer_state.sharing);
        model.apply(incoming("Bob"), now);
        model.apply(connected("Bob"), now);
        assert!(model.sharers().is_empty(), "the next call starts afresh");
    }

    #[test]
    fn in_a_group_call_the_members_who_share_and_are_connected_are_the_sharers() {
        use confab_call::{Member, MemberStatus};
        let now = Instant::now();
        let member = |name: &str, status, sharing| Member {
            peer: PeerId::new(name.to_lowercase()).expect("valid id"),
            name: name.into(),
            status,
            muted: false,
            camera_off: false,
            sharing,
        };
        let group = |members: Vec<Member>| EngineEvent::Call(CallState::Group { members });
        let mut model = Model::new();
        model.apply(
            group(vec![
                member("Bob", MemberStatus::Connected, false),
                member("Carol", MemberStatus::Connected, true),
                member("Dave", MemberStatus::Reconnecting, true),
            ]),
            now,
        );
        let carol = PeerId::new("carol").expect("valid id");
        assert_eq!(model.sharers(), [carol]);
        model.apply(
            group(vec![
                member("Bob", MemberStatus::Connected, false),
                member("Carol", MemberStatus::Connected, false),
            ]),
            now,
        );
        assert!(model.sharers().is_empty());
    }

    #[test]
    fn unread_counts_only_while_the_pane_is_closed() {
        let now = Instant::now();
        let mut model = Model::new();
        model.apply(incoming("Bob"), now);
        model.set_chat_open(false);
        model.apply(received("1", "hi"), now);
        model.apply(received("2", "there"), now);
        assert_eq!(model.unread, 2);
        model.set_chat_open(true);
        assert_eq!(model.unread, 0);
        model.apply(received("3", "again"), now);
        assert_eq!(model.unread, 0);
    }

    #[test]
    fn a_new_call_starts_a_fresh_chat_but_the_ended_call_keeps_its_history() {
        let now = Instant::now();
        let mut model = Model::new();
        model.apply(incoming("Bob"), now);
        model.apply(received("1", "hi"), now);
        model.apply(
            EngineEvent::Call(CallState::Ended(CallEnd {
                peer_name: "Bob".into(),
                reason: HangupReason::Ended,
                by_peer: true,
                detail: None,
            })),
            now,
        );
        assert_eq!(model.chat.len(), 1, "history stays readable after the call");
        assert!(model.toasts.iter().any(|t| t.text == "Bob hung up"));
        model.apply(incoming("Carol"), now);
        assert!(model.chat.is_empty());
    }

    #[test]
    fn refusals_say_what_to_do() {
        let now = Instant::now();
        let mut model = Model::new();
        model.apply(
            EngineEvent::Server(ServerStatus::Refused {
                code: ErrorCode::NameTaken,
                message: "taken".into(),
            }),
            now,
        );
        assert!(matches!(model.connection, ServerStatus::Refused { .. }));
        let text = model.connection_problem().expect("refused is a problem");
        assert!(text.contains("choose another"), "{text}");
        assert!(model.toasts.is_empty(), "said in place, not in a notice");
    }

    #[test]
    fn offline_empties_the_roster_and_says_when_it_retries() {
        let now = Instant::now();
        let mut model = Model::new();
        model.apply(
            EngineEvent::Roster(vec![PeerInfo {
                id: PeerId::new("p1").expect("valid id"),
                name: "Bob".into(),
                busy: false,
                protocol: 1,
            }]),
            now,
        );
        model.apply(
            EngineEvent::Server(ServerStatus::Offline {
                reason: "connection refused".into(),
                retry_in: Duration::from_secs(2),
            }),
            now,
        );
        assert!(model.roster.is_empty());
        assert_eq!(model.retry_at, Some(now + Duration::from_secs(2)));
        assert_eq!(
            model.connection_problem().as_deref(),
            Some("Cannot reach the server: connection refused")
        );
        assert!(!model.is_online());
    }

    #[test]
    fn toasts_expire_dedupe_and_are_capped() {
        let now = Instant::now();
        let mut model = Model::new();
        for i in 0..6 {
            model.notify(format!("n{i}"), Severity::Info, now);
        }
        model.notify("n5", Severity::Info, now);
        let texts: Vec<_> = model.toasts.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["n2", "n3", "n4", "n5"]);
        assert_eq!(model.expire_toasts(now), Some(now + TOAST_TIME));
        assert_eq!(model.expire_toasts(now + TOAST_TIME), None);
        assert!(model.toasts.is_empty());
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(format_duration(Duration::from_secs(65)), "01:05");
        assert_eq!(format_duration(Duration::from_secs(3_725)), "1:02:05");
    }
}
