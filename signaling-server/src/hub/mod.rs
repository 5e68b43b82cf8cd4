//! The roster and call routing, with no I/O.
//!
//! [`Hub`] is a plain state machine: the connection tasks feed it what clients said (and the
//! current time), and it answers with [`Output`]s saying which messages go to whom. It never
//! touches a socket or reads the clock, so its tests drive it directly with fake time.
//!
//! It enforces the call rules of protocol v1: an offer registers a call between caller and
//! callee; answers, candidates and hangups travel only between the two parties of a known
//! call; an answered call marks both parties busy; a call left ringing for too long ends
//! with `timeout`; a peer that leaves ends its calls. Version 2's group calls (invitations,
//! members, who offers to whom) are in [`groups`]: a group call is a set of such two-party
//! calls sharing one call id, one between every two members. Several servers share one
//! roster through [`cluster`]: the other servers' peers are remote peers here, and what
//! the servers tell each other is more input and output of the same machine.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

mod cluster;
mod groups;

pub use cluster::{ClusterMessage, ServerId};

use confab_protocol::name::{self, NameError};
use confab_protocol::{
    CallId, ClientMessage, ErrorCode, HangupReason, IceServer, PeerId, PeerInfo, Resume,
    ServerMessage,
};
use subtle::ConstantTimeEq;

/// A message to deliver.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// To one peer.
    To(PeerId, ServerMessage),
    /// To every peer except one (the one the news is about).
    Broadcast { except: PeerId, msg: ServerMessage },
    /// To the other servers of the cluster: one (`to`), or all.
    Cluster {
        to: Option<ServerId>,
        msg: ClusterMessage,
    },
    /// To one peer, whose connection then closes: it lost its name to a peer of another
    /// server that took the same name at the same moment.
    Kick(PeerId, ServerMessage),
}

/// Why a `hello` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("invalid name: {0}")]
    NameInvalid(#[from] NameError),
    #[error("the name {0:?} is already taken")]
    NameTaken(String),
}

impl JoinError {
    pub fn code(&self) -> ErrorCode {
        match self {
            JoinError::NameInvalid(_) => ErrorCode::NameInvalid,
            JoinError::NameTaken(_) => ErrorCode::NameTaken,
        }
    }
}

/// What the hub needs to know from the server configuration.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub ice_servers: Vec<IceServer>,
    pub ring_timeout: Duration,
    /// Calls (ringing or active) one peer may be part of at once; bounds the memory a client
    /// can make the server hold by sending offers.
    pub max_calls_per_peer: usize,
    /// In a cluster: how long another server may stay silent before its peers count as
    /// gone. `None`: this server is on its own.
    pub server_timeout: Option<Duration>,
}

struct Peer {
    name: String,
    name_key: String,
    /// The server it is connected to when that is another one of the cluster.
    home: Option<ServerId>,
    /// Whether a remote peer is busy, as its server says (a local peer's busy flag comes
    /// from its calls here).
    announced_busy: bool,
    calls: HashSet<CallKey>,
    /// Answered calls this peer is in; the peer is busy while this is non-zero.
    active_calls: usize,
    /// The protocol version it said `hello` with.
    protocol: u32,
    /// The group calls it is in or invited to, by call id (at most one per id).
    groups: HashMap<CallId, groups::GroupId>,
    /// What a new connection presents to take this session over (from its last welcome).
    resume_secret: String,
}

impl Peer {
    fn info(&self, id: &PeerId) -> PeerInfo {
        PeerInfo {
            id: id.clone(),
            name: self.name.clone(),
            busy: match self.home {
                None => self.active_calls > 0,
                Some(_) => self.announced_busy,
            },
            protocol: self.protocol,
        }
    }
}

/// A call is identified by its id together with its two parties, so no client can collide
/// with, or reach into, a call between other peers by reusing its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CallKey {
    call_id: CallId,
    low: PeerId,
    high: PeerId,
}

impl CallKey {
    fn new(call_id: &CallId, a: &PeerId, b: &PeerId) -> Self {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        CallKey {
            call_id: call_id.clone(),
            low: low.clone(),
            high: high.clone(),
        }
    }
}

enum CallState {
    Ringing { deadline: Instant },
    Active,
}

struct Call {
    caller: PeerId,
    callee: PeerId,
    state: CallState,
}

impl Call {
    fn other(&self, id: &PeerId) -> &PeerId {
        if *id == self.caller {
            &self.callee
        } else {
            &self.caller
        }
    }
}

pub struct Hub {
    config: HubConfig,
    server_version: String,
    peers: HashMap<PeerId, Peer>,
    /// Who holds each name, by its uniqueness key.
    names: HashMap<String, PeerId>,
    /// The other servers of the cluster, by when each was last heard from.
    servers: HashMap<ServerId, Instant>,
    /// Roster parts received from a server, until its last part.
    roster_parts: HashMap<ServerId, Vec<PeerInfo>>,
    calls: HashMap<CallKey, Call>,
    groups: HashMap<groups::GroupId, groups::Group>,
    next_group: u64,
}

impl Hub {
    pub fn new(config: HubConfig) -> Self {
        Hub {
            config,
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
            peers: HashMap::new(),
            names: HashMap::new(),
            servers: HashMap::new(),
            roster_parts: HashMap::new(),
            calls: HashMap::new(),
            groups: HashMap::new(),
            next_group: 0,
        }
    }

    /// Admits a peer under `id` with the name it asked for, speaking `protocol`; `secret`
    /// will let a later connection take the session over. Both are chosen by the caller of
    /// this function, unguessable. Returns its `welcome` and the news for everyone else.
    pub fn join(
        &mut self,
        id: PeerId,
        requested_name: &str,
        protocol: u32,
        secret: String,
    ) -> Result<(ServerMessage, Vec<Output>), JoinError> {
        let name = name::validate(requested_name)?.to_owned();
        let name_key = name::uniqueness_key(&name);
        if self.names.contains_key(&name_key) {
            return Err(JoinError::NameTaken(name));
        }
        let welcome = self.welcome(&id, &secret);
        self.names.insert(name_key.clone(), id.clone());
        let peer = Peer {
            name,
            name_key,
            home: None,
            announced_busy: false,
            calls: HashSet::new(),
            active_calls: 0,
            protocol,
            groups: HashMap::new(),
            resume_secret: secret,
        };
        let info = peer.info(&id);
        let mut news = vec![Output::Broadcast {
            except: id.clone(),
            msg: ServerMessage::PeerJoined { peer: info.clone() },
        }];
        self.announce(ClusterMessage::Joined { peer: info }, &mut news);
        self.peers.insert(id, peer);
        Ok((welcome, news))
    }

    /// A new connection takes over the session `resume` names, if it is still here, the
    /// secret matches and the name is the same: the same id, its calls and seats kept,
    /// nobody else told. Returns the new welcome (with `new_secret` for the next time).
    pub fn resume(
        &mut self,
        resume: &Resume,
        requested_name: &str,
        new_secret: String,
    ) -> Option<ServerMessage> {
        let peer = self.peers.get_mut(&resume.id)?;
        if peer.home.is_some() {
            return None;
        }
        let secret_matches = bool::from(
            peer.resume_secret
                .as_bytes()
                .ct_eq(resume.secret.as_bytes()),
        );
        if !secret_matches || name::validate(requested_name).ok() != Some(peer.name.as_str()) {
            return None;
        }
        peer.resume_secret = new_secret.clone();
        Some(self.welcome(&resume.id, &new_secret))
    }

    /// The welcome for `id`: everyone else online.
    fn welcome(&self, id: &PeerId, secret: &str) -> ServerMessage {
        ServerMessage::Welcome {
            id: id.clone(),
            peers: self
                .peers
                .iter()
                .filter(|(other, _)| *other != id)
                .map(|(id, p)| p.info(id))
                .collect(),
            ice_servers: self.config.ice_servers.clone(),
            server_version: self.server_version.clone(),
            resume_secret: Some(secret.to_owned()),
        }
    }

    /// Removes a peer, ending its calls. `clean` is true when the client closed its
    /// connection properly; the other party of each call then hears `ended`, else `failed`.
    pub fn leave(&mut self, id: &PeerId, clean: bool) -> Vec<Output> {
        let out = self.remove_peer(id, clean);
        self.route(out)
    }

    /// Removes a peer, local or remote, ending its calls here; a local one's leaving is
    /// announced to the cluster.
    fn remove_peer(&mut self, id: &PeerId, clean: bool) -> Vec<Output> {
        let reason = if clean {
            HangupReason::Ended
        } else {
            HangupReason::Failed
        };
        let mut out = Vec::new();
        // Group seats first: they end the peer's two-party calls inside its groups quietly
        // (the members hear `member_left` instead of a hangup for each).
        self.leave_groups(id, reason, &mut out);
        let Some(peer) = self.peers.remove(id) else {
            return out;
        };
        if self.names.get(&peer.name_key) == Some(id) {
            self.names.remove(&peer.name_key);
        }
        if peer.home.is_none() {
            let left = ClusterMessage::Left {
                id: id.clone(),
                clean,
            };
            self.announce(left, &mut out);
        }
        for key in peer.calls {
            if let Some(call) = self.calls.remove(&key) {
                let other = call.other(id).clone();
                out.push(Output::To(
                    other.clone(),
                    ServerMessage::Hangup {
                        from: id.clone(),
                        call_id: key.call_id.clone(),
                        reason,
                    },
                ));
                self.detach(&other, &key, &call, &mut out);
            }
        }
        out.push(Output::Broadcast {
            except: id.clone(),
            msg: ServerMessage::PeerLeft { id: id.clone() },
        });
        out
    }

    /// Handles a message from a logged-in peer.
    pub fn handle(&mut self, from: &PeerId, msg: ClientMessage, now: Instant) -> Vec<Output> {
        let out = self.handle_message(from, msg, now);
        self.route(out)
    }

    /// Handles a message from a peer, local or (relayed) remote. What is forwarded to a
    /// remote peer goes to its server as the client message it was.
    fn handle_message(&mut self, from: &PeerId, msg: ClientMessage, now: Instant) -> Vec<Output> {
        let Some(sender) = self.peers.get(from) else {
            // Only connections that joined call this; one that already left has nothing to say.
            return Vec::new();
        };
        let from_name = sender.name.clone();
        let (to, call_id) = match &msg {
            ClientMessage::Hello { .. } => {
                return vec![refuse(
                    from,
                    ErrorCode::BadMessage,
                    "already logged in",
                    None,
                )];
            }
            ClientMessage::Invite { to, call_id } => {
                return self.invite(from, to, call_id, now);
            }
            ClientMessage::Join { call_id } => return self.join_group(from, call_id),
            ClientMessage::Leave { call_id } => return self.leave_group(from, call_id),
            ClientMessage::Offer { to, call_id, .. }
            | ClientMessage::Answer { to, call_id, .. }
            | ClientMessage::Candidate { to, call_id, .. }
            | ClientMessage::Hangup { to, call_id, .. } => (to.clone(), call_id.clone()),
        };
        if to == *from {
            return vec![refuse(
                from,
                ErrorCode::UnknownPeer,
                "you cannot call yourself",
                Some(call_id),
            )];
        }
        if !self.peers.contains_key(&to) {
            return vec![refuse(
                from,
                ErrorCode::UnknownPeer,
                &format!("no peer with id {to} is online"),
                Some(call_id),
            )];
        }
        // Inside a group call, two-party messages go between its members only; between an
        // invitee and its inviter only the hangup that declines or cancels the invitation.
        match self.pair_in_group(from, &to, &call_id) {
            groups::Pair::Unrelated | groups::Pair::Members => {}
            groups::Pair::Invitation(group) => {
                return match msg {
                    ClientMessage::Hangup { reason, .. } => {
                        self.end_invitation(group, from, &to, reason)
                    }
                    _ => vec![unknown_call(from, call_id)],
                };
            }
            groups::Pair::Strangers => return vec![unknown_call(from, call_id)],
        }
        let key = CallKey::new(&call_id, from, &to);
        let mut out = Vec::new();
        let relay = self.home_of(&to).map(|server| Output::Cluster {
            to: Some(server.clone()),
            msg: ClusterMessage::Relay {
                from: from.clone(),
                msg: msg.clone(),
            },
        });
        let forward = match msg {
            ClientMessage::Offer { sdp, .. } => {
                if !self.calls.contains_key(&key)
                    && let Err(refusal) = self.open_call(&key, from, &to, now)
                {
                    return vec![*refusal];
                }
                ServerMessage::Offer {
                    from: from.clone(),
                    from_name,
                    call_id,
                    sdp,
                }
            }
            ClientMessage::Answer { sdp, .. } => {
                let Some(call) = self.calls.get_mut(&key) else {
                    return vec![unknown_call(from, call_id)];
                };
                if let CallState::Ringing { .. } = call.state {
                    if call.callee != *from {
                        // Only the callee may answer; the caller answering its own offer is
                        // a confused or hostile client.
                        return vec![unknown_call(from, call_id)];
                    }
                    call.state = CallState::Active;
                    for party in [from, &to] {
                        self.change_active_calls(party, 1, &mut out);
                    }
                }
                ServerMessage::Answer {
                    from: from.clone(),
                    call_id,
                    sdp,
                }
            }
            ClientMessage::Candidate { candidate, .. } => {
                if !self.calls.contains_key(&key) {
                    return vec![unknown_call(from, call_id)];
                }
                ServerMessage::Candidate {
                    from: from.clone(),
                    call_id,
                    candidate,
                }
            }
            ClientMessage::Hangup { reason, .. } => {
                let Some(call) = self.calls.remove(&key) else {
                    return vec![unknown_call(from, call_id)];
                };
                self.detach(from, &key, &call, &mut out);
                self.detach(&to, &key, &call, &mut out);
                self.pair_hung_up(from, &call_id, &mut out);
                ServerMessage::Hangup {
                    from: from.clone(),
                    call_id,
                    reason,
                }
            }
            ClientMessage::Hello { .. }
            | ClientMessage::Invite { .. }
            | ClientMessage::Join { .. }
            | ClientMessage::Leave { .. } => unreachable!("handled above"),
        };
        // The forwarded message goes before any roster news it caused.
        out.insert(0, relay.unwrap_or(Output::To(to, forward)));
        out
    }

    /// Ends every call that has been ringing past its deadline.
    pub fn expire(&mut self, now: Instant) -> Vec<Output> {
        let expired: Vec<CallKey> = self
            .calls
            .iter()
            .filter(|(_, call)| matches!(call.state, CallState::Ringing { deadline } if deadline <= now))
            .map(|(key, _)| key.clone())
            .collect();
        let mut out = Vec::new();
        for key in expired {
            let Some(call) = self.calls.remove(&key) else {
                continue;
            };
            for (to, from) in [(&call.caller, &call.callee), (&call.callee, &call.caller)] {
                out.push(Output::To(
                    to.clone(),
                    ServerMessage::Hangup {
                        from: from.clone(),
                        call_id: key.call_id.clone(),
                        reason: HangupReason::Timeout,
                    },
                ));
                self.detach(to, &key, &call, &mut out);
            }
        }
        self.expire_invitations(now, &mut out);
        self.expire_servers(now, &mut out);
        self.route(out)
    }

    /// When [`Hub::expire`] next has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let calls = self.calls.values().filter_map(|call| match call.state {
            CallState::Ringing { deadline } => Some(deadline),
            CallState::Active => None,
        });
        calls
            .chain(self.invitation_deadlines())
            .chain(self.server_deadline())
            .min()
    }

    fn open_call(
        &mut self,
        key: &CallKey,
        caller: &PeerId,
        callee: &PeerId,
        now: Instant,
    ) -> Result<(), Box<Output>> {
        let limit = self.config.max_calls_per_peer;
        let calls = |id: &PeerId| self.calls_of(id);
        if calls(caller) >= limit {
            return Err(Box::new(refuse(
                caller,
                ErrorCode::RateLimited,
                &format!("you are already in {limit} calls"),
                Some(key.call_id.clone()),
            )));
        }
        if calls(callee) >= limit {
            return Err(Box::new(refuse(
                caller,
                ErrorCode::RateLimited,
                "that peer has too many calls ringing",
                Some(key.call_id.clone()),
            )));
        }
        for party in [caller, callee] {
            if let Some(peer) = self.peers.get_mut(party) {
                peer.calls.insert(key.clone());
            }
        }
        self.calls.insert(
            key.clone(),
            Call {
                caller: caller.clone(),
                callee: callee.clone(),
                state: CallState::Ringing {
                    deadline: now + self.config.ring_timeout,
                },
            },
        );
        Ok(())
    }

    /// The calls and group seats `id` holds: bounded by `max_calls_per_peer`.
    fn calls_of(&self, id: &PeerId) -> usize {
        self.peers
            .get(id)
            .map_or(0, |peer| peer.calls.len() + peer.groups.len())
    }

    fn info(&self, id: &PeerId) -> Option<PeerInfo> {
        self.peers.get(id).map(|peer| peer.info(id))
    }

    /// Forgets a removed call on `party`'s side, clearing its busy flag if it was the last
    /// answered call.
    fn detach(&mut self, party: &PeerId, key: &CallKey, call: &Call, out: &mut Vec<Output>) {
        if let Some(peer) = self.peers.get_mut(party) {
            peer.calls.remove(key);
        }
        if let CallState::Active = call.state {
            self.change_active_calls(party, -1, out);
        }
    }

    fn change_active_calls(&mut self, id: &PeerId, delta: isize, out: &mut Vec<Output>) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let was_busy = peer.active_calls > 0;
        peer.active_calls = peer.active_calls.saturating_add_signed(delta);
        // A remote peer's busy flag is its own server's to announce.
        if was_busy != (peer.active_calls > 0) && peer.home.is_none() {
            let info = peer.info(id);
            out.push(Output::Broadcast {
                except: id.clone(),
                msg: ServerMessage::PeerUpdated { peer: info.clone() },
            });
            self.announce(ClusterMessage::Updated { peer: info }, out);
        }
    }
}

/// An `error` reply to `to`.
pub fn refuse(to: &PeerId, code: ErrorCode, message: &str, call_id: Option<CallId>) -> Output {
    Output::To(to.clone(), error_message(code, message, call_id))
}

pub fn error_message(code: ErrorCode, message: &str, call_id: Option<CallId>) -> ServerMessage {
    ServerMessage::Error {
        code,
        message: message.to_owned(),
        call_id,
    }
}

fn unknown_call(to: &PeerId, call_id: CallId) -> Output {
    let message = format!("no call {call_id} between you and that peer");
    refuse(to, ErrorCode::UnknownCall, &message, Some(call_id))
}

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod tests;
