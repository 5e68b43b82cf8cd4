//! The call state machine: who is calling whom, and when a call ends and why.
//!
//! No I/O, no clock, no randomness: the driver feeds it user commands, signaling messages,
//! peer-connection events and the current time, and performs the [`Action`]s it returns
//! (sending signaling, creating and closing the peer connection). Every rule about calls
//! lives here: one call at a time (others get `busy`), consent before any connection on the
//! callee's side, glare resolution, ringing and connection timeouts, and which remote
//! messages belong to the current call (anything else is ignored).

use std::time::{Duration, Instant};

use confab_protocol::{CallId, ClientMessage, HangupReason, IceCandidate, PeerId, PeerInfo};

use crate::restart::IceRestart;

/// How long each stage of a call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A call not answered in this time ends with `timeout` (the server gives up at 60 s).
    pub ring: Duration,
    /// From accepting (or being answered) to connected.
    pub connect: Duration,
    /// A connected call whose connection stays down this long has failed.
    pub disconnected: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            ring: Duration::from_secs(45),
            connect: Duration::from_secs(20),
            disconnected: Duration::from_secs(10),
        }
    }
}

/// The callee gives up this long after the caller should have (a safety net: the caller or
/// the server normally ends an unanswered call).
const CALLEE_RING_GRACE: Duration = Duration::from_secs(20);
/// Candidates kept for a call the user has not accepted yet.
pub(crate) const MAX_BUFFERED_CANDIDATES: usize = 64;

/// What the UI shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CallState {
    #[default]
    Idle,
    /// We are calling; it rings at the other end.
    Outgoing { peer: PeerId, peer_name: String },
    /// Someone is calling us.
    Incoming { peer: PeerId, peer_name: String },
    /// Accepted; the connection is being set up.
    Connecting { peer: PeerId, peer_name: String },
    Connected {
        peer: PeerId,
        peer_name: String,
        /// The connection is down and being restored (ICE restarts); media has stopped.
        reconnecting: bool,
    },
    /// `peer` asks us into a group call; `others` are the rest of the people in it.
    Invited {
        peer: PeerId,
        peer_name: String,
        others: Vec<String>,
    },
    /// A call with others: a call of two becomes one when someone is invited, and stays one
    /// while anyone is left. `members` are everyone else, in the order they came.
    Group { members: Vec<Member> },
    /// The last call ended; shown until the next one starts.
    Ended(CallEnd),
}

/// Someone else in a group call, as the user sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub peer: PeerId,
    pub name: String,
    pub status: MemberStatus,
    /// What the member said of its switches (on the chat channel).
    pub muted: bool,
    pub camera_off: bool,
    /// Whether the member shares its screen.
    pub sharing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    /// Invited by us; it rings at their end.
    Invited,
    /// In the call; our connection to them is being set up.
    Joining,
    Connected,
    /// Our connection to them dropped; it may come back.
    Reconnecting,
    /// Our connection to them could not be set up or failed; the others are unaffected.
    Unreachable,
}

/// How and why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnd {
    pub peer_name: String,
    pub reason: HangupReason,
    /// The other side (or the server on its behalf) ended it.
    pub by_peer: bool,
    /// More detail for a person, when there is any.
    pub detail: Option<String>,
}

impl CallEnd {
    /// A sentence a person understands.
    pub fn describe(&self) -> String {
        let who = &self.peer_name;
        let text = match (self.reason, self.by_peer) {
            (HangupReason::Declined, true) => format!("{who} declined the call"),
            (HangupReason::Declined, false) => format!("You declined {who}'s call"),
            (HangupReason::Busy, true) => format!("{who} is in another call"),
            (HangupReason::Busy, false) => format!("Missed a call from {who} while busy"),
            (HangupReason::Cancelled, true) => format!("{who} cancelled the call"),
            (HangupReason::Cancelled, false) => format!("You cancelled the call to {who}"),
            (HangupReason::Ended, true) => format!("{who} hung up"),
            (HangupReason::Ended, false) => format!("Call with {who} ended"),
            (HangupReason::Timeout, _) => format!("No answer from {who}"),
            (HangupReason::Failed, _) => format!("The call with {who} failed"),
        };
        match &self.detail {
            Some(detail) => format!("{text}: {detail}"),
            None => text,
        }
    }
}

/// Who started the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Caller,
    Callee,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this to the signaling server.
    Signal(ClientMessage),
    /// Create the peer connection. The caller makes an offer and sends it; the callee
    /// applies `remote_offer`, answers and sends the answer.
    StartPeer {
        role: Role,
        peer: PeerId,
        peer_name: String,
        call_id: CallId,
        remote_offer: Option<String>,
    },
    /// Apply the callee's answer.
    ApplyAnswer(String),
    /// The peer renegotiates: apply its offer and answer it.
    ApplyOffer(String),
    /// Restart ICE: make an offer with new credentials, gathering anew (and send it).
    RestartIce,
    AddCandidate(Option<IceCandidate>),
    /// Tear down the peer connection and release every media resource.
    ClosePeer,
    /// The user accepted an invitation into a group call: the call is the group's now.
    Join {
        call_id: CallId,
        inviter: PeerId,
        inviter_name: String,
    },
    /// Tell the UI.
    State(CallState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing,
    Connecting,
    Connected,
}

#[derive(Debug)]
struct Call {
    id: CallId,
    peer: PeerId,
    peer_name: String,
    role: Role,
    phase: Phase,
    /// When the current phase began.
    since: Instant,
    /// The caller's offer, held until the user accepts.
    offer: Option<String>,
    /// The caller's candidates, held until the user accepts.
    candidates: Vec<Option<IceCandidate>>,
    /// When the connected call lost its connection, and its ICE restarts.
    restart: IceRestart,
    /// An invitation into a group call, with its members, rather than a call of two.
    invitation: Option<Vec<PeerInfo>>,
}

#[derive(Debug, Default)]
pub struct CallMachine {
    me: Option<PeerId>,
    /// Whether the signaling server can carry messages now.
    online: bool,
    call: Option<Call>,
    state: CallState,
    timeouts: Timeouts,
}

impl CallMachine {
    pub fn new(timeouts: Timeouts) -> CallMachine {
        CallMachine {
            timeouts,
            ..CallMachine::default()
        }
    }

    /// Our id, from the server's welcome (it changes when we reconnect).
    pub fn set_my_id(&mut self, id: PeerId) {
        self.me = Some(id);
        self.online = true;
    }

    pub fn state(&self) -> &CallState {
        &self.state
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The current call's id and peer, if there is a call.
    pub fn current(&self) -> Option<(&CallId, &PeerId)> {
        self.call.as_ref().map(|c| (&c.id, &c.peer))
    }

    /// The caller's offer while the call rings here (it is applied on accepting).
    pub fn ringing_offer(&self) -> Option<&str> {
        self.call.as_ref()?.offer.as_deref()
    }

    pub fn is_connected(&self) -> bool {
        self.call
            .as_ref()
            .is_some_and(|c| c.phase == Phase::Connected)
    }

    // ---- the user ----

    /// Calls `peer`. `call_id` is fresh and random (the driver's job).
    pub fn call(
        &mut self,
        peer: PeerId,
        peer_name: String,
        call_id: CallId,
        now: Instant,
    ) -> Vec<Action> {
        if self.call.is_some() {
            return Vec::new();
        }
        let call = Call {
            id: call_id.clone(),
            peer: peer.clone(),
            peer_name: peer_name.clone(),
            role: Role::Caller,
            phase: Phase::Ringing,
            since: now,
            offer: None,
            candidates: Vec::new(),
            restart: IceRestart::default(),
            invitation: None,
        };
        self.call = Some(call);
        vec![
            self.set_state(CallState::Outgoing {
                peer: peer.clone(),
                peer_name: peer_name.clone(),
            }),
            Action::StartPeer {
                role: Role::Caller,
                peer,
                peer_name,
                call_id,
                remote_offer: None,
            },
        ]
    }

    /// Accepts the ringing incoming call: only now is a connection created.
    pub fn accept(&mut self, now: Instant) -> Vec<Action> {
        let Some(call) = self
            .call
            .as_mut()
            .filter(|c| c.role == Role::Callee && c.phase == Phase::Ringing)
        else {
            return Vec::new();
        };
        if call.invitation.is_some() {
            // Accepting an invitation: the group takes over from here (the members offer).
            let Some(call) = self.call.take() else {
                return Vec::new();
            };
            return vec![Action::Join {
                call_id: call.id,
                inviter: call.peer,
                inviter_name: call.peer_name,
            }];
        }
        call.phase = Phase::Connecting;
        call.since = now;
        let mut actions = vec![Action::StartPeer {
            role: Role::Callee,
            peer: call.peer.clone(),
            peer_name: call.peer_name.clone(),
            call_id: call.id.clone(),
            remote_offer: call.offer.take(),
        }];
        actions.extend(call.candidates.drain(..).map(Action::AddCandidate));
        let state = CallState::Connecting {
            peer: call.peer.clone(),
            peer_name: call.peer_name.clone(),
        };
        actions.insert(0, self.set_state(state));
        actions
    }

    /// Declines the ringing incoming call.
    pub fn decline(&mut self) -> Vec<Action> {
        match &self.call {
            Some(c) if c.role == Role::Callee && c.phase == Phase::Ringing => {
                self.end(HangupReason::Declined, false, None, true)
            }
            _ => Vec::new(),
        }
    }

    /// Hangs up: cancels an outgoing call, declines an incoming one, ends a connected one.
    pub fn hang_up(&mut self) -> Vec<Action> {
        let Some(call) = &self.call else {
            return Vec::new();
        };
        let reason = match (call.role, call.phase) {
            (Role::Caller, Phase::Ringing) => HangupReason::Cancelled,
            (Role::Callee, Phase::Ringing) => HangupReason::Declined,
            _ => HangupReason::Ended,
        };
        self.end(reason, false, None, true)
    }

    // ---- the signaling server ----

    pub fn on_offer(
        &mut self,
        from: PeerId,
        from_name: String,
        call_id: CallId,
        sdp: String,
        now: Instant,
    ) -> Vec<Action> {
        if let Some(call) = self.call.as_mut()
            && call.peer == from
            && call.id == call_id
        {
            // A renegotiation of our call (an ICE restart, say).
            return match call.phase {
                Phase::Ringing => Vec::new(),
                // Glare: both restarted at once. The caller's offer wins; the callee's
                // driver drops its own offer when it applies the caller's.
                _ if call.restart.offer_pending() && call.role == Role::Caller => Vec::new(),
                _ => {
                    call.restart.offer_settled();
                    vec![Action::ApplyOffer(sdp)]
                }
            };
        }
        if let Some(call) = &self.call {
            let glare =
                call.peer == from && call.role == Role::Caller && call.phase == Phase::Ringing;
            if glare {
                // We called each other at once. The lower id keeps its call.
                let we_win = self.me.as_ref().is_some_and(|me| me < &from);
                if we_win {
                    // Ignore theirs; they will cancel it and answer ours.
                    return Vec::new();
                }
                let mut actions = self.drop_call(HangupReason::Cancelled);
                actions.extend(self.ring(from, from_name, call_id, sdp, now));
                actions.extend(self.accept(now));
                return actions;
            }
            // One call at a time.
            return vec![hangup(&from, &call_id, HangupReason::Busy)];
        }
        self.ring(from, from_name, call_id, sdp, now)
    }

    fn ring(
        &mut self,
        from: PeerId,
        from_name: String,
        call_id: CallId,
        sdp: String,
        now: Instant,
    ) -> Vec<Action> {
        let state = CallState::Incoming {
            peer: from.clone(),
            peer_name: from_name.clone(),
        };
        self.ringing(from, from_name, call_id, (Some(sdp), None), now);
        vec![self.set_state(state)]
    }

    /// `from` invites us into a group call with `members`; it rings like a call.
    pub fn on_invite(
        &mut self,
        from: PeerId,
        from_name: String,
        call_id: CallId,
        members: Vec<PeerInfo>,
        now: Instant,
    ) -> Vec<Action> {
        if self.call.is_some() {
            return vec![hangup(&from, &call_id, HangupReason::Busy)];
        }
        let state = CallState::Invited {
            peer: from.clone(),
            peer_name: from_name.clone(),
            others: members
                .iter()
                .filter(|m| m.id != from)
                .map(|m| m.name.clone())
                .collect(),
        };
        self.ringing(from, from_name, call_id, (None, Some(members)), now);
        vec![self.set_state(state)]
    }

    /// A call from `from` starts ringing here: a call of two with its offer, or an
    /// invitation into a group call with its members.
    fn ringing(
        &mut self,
        from: PeerId,
        from_name: String,
        call_id: CallId,
        (offer, invitation): (Option<String>, Option<Vec<PeerInfo>>),
        now: Instant,
    ) {
        self.call = Some(Call {
            id: call_id,
            peer: from,
            peer_name: from_name,
            role: Role::Callee,
            phase: Phase::Ringing,
            since: now,
            offer,
            candidates: Vec::new(),
            restart: IceRestart::default(),
            invitation,
        });
    }

    /// Hands the connected call of two over to a group call (someone was invited, or the
    /// peer's group grew): its id, peer and name. The machine is idle afterwards.
    pub fn hand_over(&mut self) -> Option<(CallId, PeerId, String, Role)> {
        let call = self.call.take_if(|c| c.phase == Phase::Connected)?;
        Some((call.id, call.peer, call.peer_name, call.role))
    }

    /// Whether the signaling server can carry messages now (an ICE restart's offer).
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// Shows what the group call shows (the machine has no call while a group has it).
    pub fn show(&mut self, state: CallState) -> Action {
        self.set_state(state)
    }

    pub fn on_answer(
        &mut self,
        from: &PeerId,
        call_id: &CallId,
        sdp: String,
        now: Instant,
    ) -> Vec<Action> {
        let Some(call) = self.call_matching(from, call_id) else {
            return Vec::new();
        };
        match (call.role, call.phase) {
            (Role::Caller, Phase::Ringing) => {
                call.phase = Phase::Connecting;
                call.since = now;
                let state = CallState::Connecting {
                    peer: call.peer.clone(),
                    peer_name: call.peer_name.clone(),
                };
                vec![Action::ApplyAnswer(sdp), self.set_state(state)]
            }
            // The answer to a renegotiation.
            (_, Phase::Connecting | Phase::Connected) => {
                call.restart.offer_settled();
                vec![Action::ApplyAnswer(sdp)]
            }
            _ => Vec::new(),
        }
    }

    pub fn on_candidate(
        &mut self,
        from: &PeerId,
        call_id: &CallId,
        candidate: Option<IceCandidate>,
    ) -> Vec<Action> {
        let Some(call) = self.call_matching(from, call_id) else {
            return Vec::new();
        };
        if call.role == Role::Callee && call.phase == Phase::Ringing {
            // No connection before consent: keep them for when the user accepts.
            if call.candidates.len() < MAX_BUFFERED_CANDIDATES {
                call.candidates.push(candidate);
            }
            return Vec::new();
        }
        vec![Action::AddCandidate(candidate)]
    }

    pub fn on_hangup(
        &mut self,
        from: &PeerId,
        call_id: &CallId,
        reason: HangupReason,
    ) -> Vec<Action> {
        let Some(call) = self.call_matching(from, call_id) else {
            return Vec::new();
        };
        // Once media flows, `failed` from the server only means the peer's signaling
        // connection dropped: the call goes on peer to peer, and our own connection check
        // ends it if the peer is really gone.
        if call.phase == Phase::Connected && reason == HangupReason::Failed {
            return Vec::new();
        }
        self.end(reason, true, None, false)
    }

    /// Our signaling connection dropped. A ringing call cannot be answered or cancelled
    /// without it (and the server forgets it), so it ends; calls past ringing go on.
    pub fn on_signaling_lost(&mut self) -> Vec<Action> {
        self.online = false;
        match &self.call {
            Some(c) if c.phase == Phase::Ringing => self.end(
                HangupReason::Failed,
                false,
                Some("lost the connection to the server".to_owned()),
                false,
            ),
            _ => Vec::new(),
        }
    }

    /// The server refused something about our call (the peer went offline, say). Once
    /// connected, only a restart can have been refused: the call goes on while its
    /// connection lasts.
    pub fn on_signal_error(&mut self, call_id: &CallId, message: &str) -> Vec<Action> {
        match &self.call {
            Some(call) if &call.id == call_id && call.phase != Phase::Connected => {
                self.end(HangupReason::Failed, false, Some(message.to_owned()), false)
            }
            _ => Vec::new(),
        }
    }

    // ---- the peer connection ----

    /// The peer connection reached `connected`.
    pub fn on_connected(&mut self, now: Instant) -> Vec<Action> {
        let Some(call) = self.call.as_mut().filter(|c| c.phase != Phase::Ringing) else {
            return Vec::new();
        };
        let was_down = call.restart.is_down();
        call.restart.connected();
        if call.phase == Phase::Connected && !was_down {
            return Vec::new();
        }
        if call.phase != Phase::Connected {
            call.phase = Phase::Connected;
            call.since = now;
        }
        let state = connected_state(call);
        vec![self.set_state(state)]
    }

    /// The peer connection dropped (`disconnected`, or checking again after an ICE
    /// restart); it may come back.
    pub fn on_disconnected(&mut self, now: Instant) -> Vec<Action> {
        let Some(call) = self.call.as_mut().filter(|c| c.phase == Phase::Connected) else {
            return Vec::new();
        };
        if !call.restart.disconnected(now) {
            return Vec::new();
        }
        let state = connected_state(call);
        vec![self.set_state(state)]
    }

    /// This computer's network addresses changed: a connected call restarts ICE.
    pub fn on_network_changed(&mut self, now: Instant) -> Vec<Action> {
        if let Some(call) = self.call.as_mut().filter(|c| c.phase == Phase::Connected) {
            call.restart.network_changed(now);
        }
        self.restart_if_due(now)
    }

    /// Restarts ICE if the call needs it now and signaling can carry the offer.
    fn restart_if_due(&mut self, now: Instant) -> Vec<Action> {
        let online = self.online;
        let restart = self
            .call
            .as_mut()
            .filter(|c| c.phase == Phase::Connected)
            .is_some_and(|call| call.restart.poll(now, online));
        if restart {
            vec![Action::RestartIce]
        } else {
            Vec::new()
        }
    }

    /// The peer connection failed for good (ICE failed, DTLS failed).
    pub fn on_failed(&mut self, detail: &str) -> Vec<Action> {
        match &self.call {
            Some(c) if c.phase != Phase::Ringing || c.role == Role::Caller => {
                self.end(HangupReason::Failed, false, Some(detail.to_owned()), true)
            }
            _ => Vec::new(),
        }
    }

    /// The peer said goodbye on the data channel: the call is over, whatever signaling says.
    pub fn on_bye(&mut self) -> Vec<Action> {
        match &self.call {
            Some(c) if c.phase != Phase::Ringing => {
                self.end(HangupReason::Ended, true, None, false)
            }
            _ => Vec::new(),
        }
    }

    // ---- time ----

    /// Ends calls that rang, connected or stayed down too long.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        match (self.next_deadline(), &self.call) {
            (Some(deadline), Some(call)) if now >= deadline => match (call.phase, call.role) {
                (Phase::Ringing, Role::Caller) => {
                    self.end(HangupReason::Timeout, false, None, true)
                }
                // The caller (or the server) normally ends an unanswered call first.
                (Phase::Ringing, Role::Callee) => {
                    self.end(HangupReason::Timeout, true, None, false)
                }
                (Phase::Connecting, _) => self.end(
                    HangupReason::Failed,
                    false,
                    Some("could not connect".into()),
                    true,
                ),
                (Phase::Connected, _) => {
                    let lost = call
                        .restart
                        .down_since()
                        .is_some_and(|down| now >= down + self.timeouts.disconnected);
                    if !lost {
                        return self.restart_if_due(now);
                    }
                    self.end(
                        HangupReason::Failed,
                        false,
                        Some("the connection was lost".into()),
                        true,
                    )
                }
            },
            _ => Vec::new(),
        }
    }

    /// When [`CallMachine::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let call = self.call.as_ref()?;
        let t = &self.timeouts;
        match (call.phase, call.role) {
            (Phase::Ringing, Role::Caller) => Some(call.since + t.ring),
            (Phase::Ringing, Role::Callee) => Some(call.since + t.ring + CALLEE_RING_GRACE),
            (Phase::Connecting, _) => Some(call.since + t.connect),
            (Phase::Connected, _) => {
                let failed = call.restart.down_since().map(|down| down + t.disconnected);
                // A restart waiting for signaling is not a deadline: coming online is.
                let restart = call.restart.due().filter(|_| self.online);
                match (failed, restart) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    // ---- internals ----

    fn call_matching(&mut self, from: &PeerId, call_id: &CallId) -> Option<&mut Call> {
        self.call
            .as_mut()
            .filter(|c| &c.peer == from && &c.id == call_id)
    }

    fn set_state(&mut self, state: CallState) -> Action {
        self.state = state.clone();
        Action::State(state)
    }

    /// Ends the current call. `tell_peer`: send a hangup (the peer did not end it itself).
    fn end(
        &mut self,
        reason: HangupReason,
        by_peer: bool,
        detail: Option<String>,
        tell_peer: bool,
    ) -> Vec<Action> {
        let Some(call) = self.call.take() else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        if tell_peer {
            actions.push(hangup(&call.peer, &call.id, reason));
        }
        // The callee has no connection until the user accepts.
        let has_peer = !(call.role == Role::Callee && call.phase == Phase::Ringing);
        let end = CallEnd {
            peer_name: call.peer_name,
            reason,
            by_peer,
            detail,
        };
        actions.push(self.set_state(CallState::Ended(end)));
        if has_peer {
            actions.push(Action::ClosePeer);
        }
        actions
    }

    /// Drops the current call without telling the UI it ended (glare: another replaces it).
    fn drop_call(&mut self, reason: HangupReason) -> Vec<Action> {
        match self.call.take() {
            Some(call) => vec![hangup(&call.peer, &call.id, reason), Action::ClosePeer],
            None => Vec::new(),
        }
    }
}

fn hangup(to: &PeerId, call_id: &CallId, reason: HangupReason) -> Action {
    Action::Signal(ClientMessage::Hangup {
        to: to.clone(),
        call_id: call_id.clone(),
        reason,
    })
}

/// How a connected call looks to the user.
fn connected_state(call: &Call) -> CallState {
    CallState::Connected {
        peer: call.peer.clone(),
        peer_name: call.peer_name.clone(),
        reconnecting: call.restart.is_down(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> PeerId {
        PeerId::new(s).unwrap()
    }

    fn cid(s: &str) -> CallId {
        CallId::new(s).unwrap()
    }

    const RING_TIMEOUT: Duration = Duration::from_secs(45);
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

    fn machine(me: &str) -> CallMachine {
        let mut m = CallMachine::new(Timeouts::default());
        m.set_my_id(id(me));
        m
    }

    fn signals(actions: &[Action]) -> Vec<(String, HangupReason)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Signal(ClientMessage::Hangup { to, reason, .. }) => {
                    Some((to.to_string(), *reason))
                }
                _ => None,
            })
            .collect()
    }

    fn ended(m: &CallMachine) -> CallEnd {
        match m.state() {
            CallState::Ended(end) => end.clone(),
            other => panic!("not ended: {other:?}"),
        }
    }

    #[test]
    fn outgoing_call_connects_and_hangs_up() {
        let t0 = Instant::now();
        let mut m = machine("aaa");
        let actions = m.call(id("bbb"), "Bob".into(), cid("c1"), t0);
        assert!(matches!(
            actions[1],
            Action::StartPeer {
                role: Role::Caller,
                remote_offer: None,
                ..
            }
        ));
        assert!(matches!(m.state(), CallState::Outgoing { .. }));
        // Another call while one is in progress does nothing.
        assert!(m.call(id("ccc"), "Carol".into(), cid("c2"), t0).is_empty());

        let actions = m.on_answer(&id("bbb"), &cid("c1"), "answer".into(), t0);
        assert_eq!(actions[0], Action::ApplyAnswer("answer".into()));
        assert!(matches!(m.state(), CallState::Connecting { .. }));
        assert_eq!(
            m.on_candidate(&id("bbb"), &cid("c1"), None),
            [Action::AddCandidate(None)]
        );
        m.on_connected(t0);
        assert!(m.is_connected());

        let actions = m.hang_up();
        assert_eq!(
            signals(&actions),
            [("bbb".to_string(), HangupReason::Ended)]
        );
        assert!(actions.contains(&Action::ClosePeer));
        assert_eq!(ended(&m).describe(), "Call with Bob ended");
        assert!(m.current().is_none());
    }

    #[test]
    fn callee_creates_nothing_before_accepting() {
        let t0 = Instant::now();
        let mut m = machine("bbb");
        let actions = m.on_offer(id("aaa"), "Alice".into(), cid("c1"), "offer".into(), t0);
        assert_eq!(
            actions,
            [Action::State(CallState::Incoming {
                peer: id("aaa"),
                peer_name: "Alice".into()
            })]
        );
        // Candidates before consent are held, not applied.
        let candidate = Some(IceCandidate {
            candidate: "candidate:1 1 udp 1 192.0.2.1 9 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        });
        assert!(
            m.on_candidate(&id("aaa"), &cid("c1"), candidate.clone())
                .is_empty()
        );

        let actions = m.accept(t0);
        assert!(
            matches!(&actions[1], Action::StartPeer { role: Role::Callee, remote_offer: Some(o), .. } if o == "offer")
        );
        assert_eq!(actions[2], Action::AddCandidate(candidate));
        assert!(matches!(m.state(), CallState::Connecting { .. }));
    }

    #[test]
    fn decline_sends_declined_and_creates_nothing() {
        let t0 = Instant::now();
        let mut m = machine("bbb");
        m.on_offer(id("aaa"), "Alice".into(), cid("c1"), "offer".into(), t0);
        let actions = m.decline();
        assert_eq!(
            signals(&actions),
            [("aaa".to_string(), HangupReason::Declined)]
        );
        assert!(
            !actions.contains(&Action::ClosePeer),
            "no peer connection existed"
        );
        assert_eq!(ended(&m).describe(), "You declined Alice's call");
    }

    #[test]
    fn caller_hears_declined_busy_and_cancel() {
        for (reason, text) in [
            (HangupReason::Declined, "Bob declined the call"),
            (HangupReason::Busy, "Bob is in another call"),
        ] {
            let t0 = Instant::now();
            let mut m = machine("aaa");
            m.call(id("bbb"), "Bob".into(), cid("c1"), t0);
            let actions = m.on_hangup(&id("bbb"), &cid("c1"), reason);
            assert!(actions.contains(&Action::ClosePeer));
            assert!(signals(&actions).is_empty(), "no hangup back");
            assert_eq!(ended(&m).describe(), text);
        }
        let t0 = Instant::now();
        let mut m = machine("aaa");
        m.call(id("bbb"), "Bob".into(), cid("c1"), t0);
        assert_eq!(
            signals(&m.hang_up()),
            [("bbb".to_string(), HangupReason::Cancelled)]
        );
    }

    #[test]
    fn a_second_caller_gets_busy() {
        let t0 = Instant::now();
        let mut m = machine("bbb");
        m.on_offer(id("aaa"), "Alice".into(), cid("c1"), "offer".into(), t0);
        let actions = m.on_offer(id("ccc"), "Carol".into(), cid("c2"), "offer".into(), t0);
        assert_eq!(signals(&actions), [("ccc".to_string(), HangupReason::Busy)]);
        assert!(matches!(m.state(), CallState::Incoming { peer, .. } if *peer == id("aaa")));
    }

    #[test]
    fn messages_for_other_calls_are_ignored() {
        let t0 = Instant::now();
        let mut m = machine("aaa");
        m.call(id("bbb"), "Bob".into(), cid("c1"), t0);
        assert!(
            m.on_answer(&id("bbb"), &cid("other"), "x".into(), t0)
                .is_empty()
        );
        assert!(
            m.on_answer(&id("mallory"), &cid("c1"), "x".into(), t0)
                .is_empty()
        );
        assert!(
            m.on_hangup(&id("mallory"), &cid("c1"), HangupReason::Ended)
                .is_empty()
        );
        assert!(m.on_candidate(&id("mallory"), &cid("c1"), None).is_empty());
        assert!(matches!(m.state(), CallState::Outgoing { .. }));
    }

    #[test]
    fn glare_lower_id_keeps_its_call_higher_id_yields_and_answers() {
        let t0 = Instant::now();
        // aaa < bbb: aaa's call wins.
        let mut a = machine("aaa");
        let mut b = machine("bbb");
        a.call(id("bbb"), "Bob".into(), cid("from-a"), t0);
        b.call(id("aaa"), "Alice".into(), cid("from-b"), t0);

        // Each receives the other's offer.
        assert!(
            a.on_offer(id("bbb"), "Bob".into(), cid("from-b"), "offer-b".into(), t0)
                .is_empty()
        );
        let actions = b.on_offer(
            id("aaa"),
            "Alice".into(),
            cid("from-a"),
            "offer-a".into(),
            t0,
        );
        assert_eq!(
            signals(&actions),
            [("aaa".to_string(), HangupReason::Cancelled)]
        );
        assert!(
            actions.contains(&Action::ClosePeer),
            "b drops its own connection"
        );
        assert!(
            actions.iter().any(|a| matches!(a, Action::StartPeer { role: Role::Callee, remote_offer: Some(o), .. } if o == "offer-a")),
            "b answers a's call at once: {actions:?}"
        );
        assert_eq!(b.current().map(|(c, _)| c.clone()), Some(cid("from-a")));
        // a ignores b's cancel of a call it never took.
        assert!(
            a.on_hangup(&id("bbb"), &cid("from-b"), HangupReason::Cancelled)
                .is_empty()
        );
        assert!(matches!(a.state(), CallState::Outgoing { .. }));
    }

    #[test]
    fn unanswered_call_times_out_after_45_seconds() {
        let t0 = Instant::now();
        let mut m = machine("aaa");
        m.call(id("bbb"), "Bob".into(), cid("c1"), t0);
        assert_eq!(m.next_deadline(), Some(t0 + RING_TIMEOUT));
        assert!(
            m.tick(t0 + RING_TIMEOUT - Duration::from_millis(1))
                .is_empty()
        );
        let actions = m.tick(t0 + RING_TIMEOUT);
        assert_eq!(
            signals(&actions),
            [("bbb".to_string(), HangupReason::Timeout)]
        );
        assert_eq!(ended(&m).describe(), "No answer from Bob");
    }

    #[test]
    fn a_connection_down_for_ten_seconds_fails_but_a_blip_does_not() {
        let t0 = Instant::now();
        let mut m = machine("aaa");
        m.call(id("bbb"), "Bob".into(), cid("c1"), t0);
        m.on_answer(&id("bbb"), &cid("c1"), "a".into(), t0);
        m.on_connected(t0);
        m.on_disconnected(t0 + Duration::from_secs(1));
        m.on_connected(t0 + Duration::from_secs(4));
        assert!(
            m.tick(t0 + Duration::from_secs(30)).is_empty(),
            "it came back"
        );
        m.on_disconnected(t0 + Duration::from_secs(31));
        // ICE restarts 2 s into the outage, then every 4 s, until the call fails at 10 s.
        assert_eq!(m.next_deadline(), Some(t0 + Duration::from_secs(33)));
        assert_eq!(m.tick(t0 + Duration::from_secs(33)), [Action::RestartIce]);
        assert_eq!(m.next_deadline(), Some(t0 + Duration::from_secs(37)));
        let actions = m.tick(t0 + Duration::from_secs(41));
        assert_eq!(
            signals(&actions),
            [("bbb".to_string(), HangupReason::Failed)]
        );
        assert_eq!(
            ended(&m).describe(),
            "The call with Bob failed: the connection was lost"
        );
    }

    #[test]
    fn a_connection_that_never_comes_up_fails() {
        let t0 = Instant::now();
        let mut m = machine("bbb");
        m.on_offer(id("aaa"), "Alice".into(), cid("c1"), "offer".into(), t0);
        m.accept(t0);
        let actions = m.tick(t0 + CONNECT_TIMEOUT);
        assert_eq!(
            signals(&actions),
            [("aaa".to_string(), HangupReason::Failed)]
        );
    }

    #[test]
    fn bye_and_server_errors_end_the_call() {
        let t0 = Instant::now();
        let mut m = machine("aaa");
        m.call(id("bbb"), "Bob".into(), cid("c1"), t0);
        m.on_answer(&id("bbb"), &cid("c1"), "a".into(), t0);
        m.on_connected(t0);
        let actions = m.on_bye();
        assert!(signals(&actions).is_empty() && actions.contains(&Action::ClosePeer));
        assert_eq!(ended(&m).describe(), "Bob hung up");

        m.call(id("ccc"), "Carol".into(), cid("c2"), t0);
        m.on_signal_error(&cid("c2"), "no peer with id ccc is online");
        assert_eq!(ended(&m).reason, HangupReason::Failed);
    }

    #[test]
    fn renegotiation_offers_are_applied_within_the_call() {
        let t0 = Instant::now();
        let mut m = machine("aaa");
        m.call(id("bbb"), "Bob".into(), cid("c1"), t0);
        m.on_answer(&id("bbb"), &cid("c1"), "a".into(), t0);
        m.on_connected(t0);
        assert_eq!(
            m.on_offer(id("bbb"), "Bob".into(), cid("c1"), "re-offer".into(), t0),
            [Action::ApplyOffer("re-offer".into())]
        );
    }

    #[test]
    fn losing_signaling_ends_only_ringing_calls() {
        let t0 = Instant::now();
        let mut m = machine("aaa");
        m.call(id("bbb"), "Bob".into(), cid("c1"), t0);
        let actions = m.on_signaling_lost();
        assert!(signals(&actions).is_empty(), "nobody to tell");
        let end = ended(&m);
        assert_eq!(end.reason, HangupReason::Failed);
        assert!(end.detail.is_some_and(|d| d.contains("server")));

        // Connected: the call goes on, and so does it when the server reports that the
        // peer's own signaling connection was lost.
        m.call(id("bbb"), "Bob".into(), cid("c2"), t0);
        m.on_answer(&id("bbb"), &cid("c2"), "a".into(), t0);
        m.on_connected(t0);
        assert!(m.on_signaling_lost().is_empty());
        assert!(
            m.on_hangup(&id("bbb"), &cid("c2"), HangupReason::Failed)
                .is_empty()
        );
        assert!(m.is_connected());
        // ...until the media connection itself stays down too long.
        m.on_disconnected(t0);
        m.tick(t0 + Duration::from_secs(11));
        assert_eq!(ended(&m).reason, HangupReason::Failed);

        // A deliberate hang-up relayed by the server still ends a connected call.
        m.call(id("bbb"), "Bob".into(), cid("c3"), t0);
        m.on_answer(&id("bbb"), &cid("c3"), "a".into(), t0);
        m.on_connected(t0);
        m.on_hangup(&id("bbb"), &cid("c3"), HangupReason::Ended);
        assert_eq!(ended(&m).describe(), "Bob hung up");
    }
}
