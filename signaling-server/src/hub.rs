//! The roster and call routing, with no I/O.
//!
//! [`Hub`] is a plain state machine: the connection tasks feed it what clients said (and the
//! current time), and it answers with [`Output`]s saying which messages go to whom. It never
//! touches a socket or reads the clock, so its tests drive it directly with fake time.
//!
//! It enforces the call rules of protocol v1: an offer registers a call between caller and
//! callee; answers, candidates and hangups travel only between the two parties of a known
//! call; an answered call marks both parties busy; a call left ringing for too long ends
//! with `timeout`; a peer that leaves ends its calls.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use confab_protocol::name::{self, NameError};
use confab_protocol::{
    CallId, ClientMessage, ErrorCode, HangupReason, IceServer, PeerId, PeerInfo, ServerMessage,
};

/// A message to deliver.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// To one peer.
    To(PeerId, ServerMessage),
    /// To every peer except one (the one the news is about).
    Broadcast { except: PeerId, msg: ServerMessage },
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
}

struct Peer {
    name: String,
    name_key: String,
    calls: HashSet<CallKey>,
    /// Answered calls this peer is in; the peer is busy while this is non-zero.
    active_calls: usize,
}

impl Peer {
    fn info(&self, id: &PeerId) -> PeerInfo {
        PeerInfo {
            id: id.clone(),
            name: self.name.clone(),
            busy: self.active_calls > 0,
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
    names: HashSet<String>,
    calls: HashMap<CallKey, Call>,
}

impl Hub {
    pub fn new(config: HubConfig) -> Self {
        Hub {
            config,
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
            peers: HashMap::new(),
            names: HashSet::new(),
            calls: HashMap::new(),
        }
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Admits a peer under `id` (chosen by the caller of this function, unguessable) with
    /// the name it asked for. Returns its `welcome` and the news for everyone else.
    pub fn join(
        &mut self,
        id: PeerId,
        requested_name: &str,
    ) -> Result<(ServerMessage, Vec<Output>), JoinError> {
        let name = name::validate(requested_name)?.to_owned();
        let name_key = name::uniqueness_key(&name);
        if self.names.contains(&name_key) {
            return Err(JoinError::NameTaken(name));
        }
        let welcome = ServerMessage::Welcome {
            id: id.clone(),
            peers: self.peers.iter().map(|(id, p)| p.info(id)).collect(),
            ice_servers: self.config.ice_servers.clone(),
            server_version: self.server_version.clone(),
        };
        self.names.insert(name_key.clone());
        let peer = Peer {
            name,
            name_key,
            calls: HashSet::new(),
            active_calls: 0,
        };
        let news = Output::Broadcast {
            except: id.clone(),
            msg: ServerMessage::PeerJoined {
                peer: peer.info(&id),
            },
        };
        self.peers.insert(id, peer);
        Ok((welcome, vec![news]))
    }

    /// Removes a peer, ending its calls. `clean` is true when the client closed its
    /// connection properly; the other party of each call then hears `ended`, else `failed`.
    pub fn leave(&mut self, id: &PeerId, clean: bool) -> Vec<Output> {
        let Some(peer) = self.peers.remove(id) else {
            return Vec::new();
        };
        self.names.remove(&peer.name_key);
        let reason = if clean {
            HangupReason::Ended
        } else {
            HangupReason::Failed
        };
        let mut out = Vec::new();
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
        let key = CallKey::new(&call_id, from, &to);
        let mut out = Vec::new();
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
                ServerMessage::Hangup {
                    from: from.clone(),
                    call_id,
                    reason,
                }
            }
            ClientMessage::Hello { .. } => unreachable!("handled above"),
        };
        // The forwarded message goes before any roster news it caused.
        out.insert(0, Output::To(to, forward));
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
        out
    }

    /// When [`Hub::expire`] next has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter_map(|call| match call.state {
                CallState::Ringing { deadline } => Some(deadline),
                CallState::Active => None,
            })
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
        let calls = |id: &PeerId| self.peers.get(id).map_or(0, |peer| peer.calls.len());
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
        if was_busy != (peer.active_calls > 0) {
            out.push(Output::Broadcast {
                except: id.clone(),
                msg: ServerMessage::PeerUpdated {
                    peer: peer.info(id),
                },
            });
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
mod tests {
    use super::*;

    const RING: Duration = Duration::from_secs(60);

    struct Fixture {
        hub: Hub,
        t0: Instant,
    }

    fn id(s: &str) -> PeerId {
        PeerId::new(s).unwrap()
    }

    fn cid(s: &str) -> CallId {
        CallId::new(s).unwrap()
    }

    impl Fixture {
        fn new(names: &[&str]) -> Self {
            let mut hub = Hub::new(HubConfig {
                ice_servers: vec![],
                ring_timeout: RING,
                max_calls_per_peer: 4,
            });
            for name in names {
                hub.join(id(&name.to_lowercase()), name).unwrap();
            }
            Fixture {
                hub,
                t0: Instant::now(),
            }
        }

        fn send(&mut self, from: &str, msg: ClientMessage) -> Vec<Output> {
            self.hub.handle(&id(from), msg, self.t0)
        }

        fn offer(&mut self, from: &str, to: &str, call: &str) -> Vec<Output> {
            let msg = ClientMessage::Offer {
                to: id(to),
                call_id: cid(call),
                sdp: "v=0".into(),
            };
            self.send(from, msg)
        }

        fn answer(&mut self, from: &str, to: &str, call: &str) -> Vec<Output> {
            let msg = ClientMessage::Answer {
                to: id(to),
                call_id: cid(call),
                sdp: "v=0".into(),
            };
            self.send(from, msg)
        }

        fn hangup(&mut self, from: &str, to: &str, call: &str) -> Vec<Output> {
            let msg = ClientMessage::Hangup {
                to: id(to),
                call_id: cid(call),
                reason: HangupReason::Ended,
            };
            self.send(from, msg)
        }
    }

    fn error_code(out: &[Output]) -> Option<ErrorCode> {
        match out {
            [Output::To(_, ServerMessage::Error { code, .. })] => Some(*code),
            _ => None,
        }
    }

    fn busy_updates(out: &[Output]) -> Vec<(String, bool)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Broadcast {
                    msg: ServerMessage::PeerUpdated { peer },
                    ..
                } => Some((peer.name.clone(), peer.busy)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn join_lists_others_and_announces() {
        let mut f = Fixture::new(&["Alice"]);
        let (welcome, news) = f.hub.join(id("bob"), "  Bob ").unwrap();
        let ServerMessage::Welcome { id: me, peers, .. } = welcome else {
            panic!("not a welcome: {welcome:?}");
        };
        assert_eq!(me, id("bob"));
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].name, "Alice");
        assert!(
            matches!(&news[..], [Output::Broadcast { except, msg: ServerMessage::PeerJoined { peer } }]
            if *except == id("bob") && peer.name == "Bob")
        );
    }

    #[test]
    fn names_are_unique_and_freed_on_leave() {
        let mut f = Fixture::new(&["Alice"]);
        assert!(matches!(
            f.hub.join(id("x"), "ALICE"),
            Err(JoinError::NameTaken(_))
        ));
        assert!(matches!(
            f.hub.join(id("x"), "\n"),
            Err(JoinError::NameInvalid(_))
        ));
        f.hub.leave(&id("alice"), true);
        assert!(f.hub.join(id("x"), "alice").is_ok());
    }

    #[test]
    fn full_call_flow_forwards_and_marks_busy() {
        let mut f = Fixture::new(&["Alice", "Bob", "Carol"]);
        let out = f.offer("alice", "bob", "c1");
        assert!(
            matches!(&out[..], [Output::To(to, ServerMessage::Offer { from, from_name, .. })]
            if *to == id("bob") && *from == id("alice") && from_name == "Alice")
        );

        let out = f.send(
            "alice",
            ClientMessage::Candidate {
                to: id("bob"),
                call_id: cid("c1"),
                candidate: None,
            },
        );
        assert!(
            matches!(&out[..], [Output::To(to, ServerMessage::Candidate { .. })] if *to == id("bob"))
        );

        let out = f.answer("bob", "alice", "c1");
        assert!(
            matches!(&out[0], Output::To(to, ServerMessage::Answer { .. }) if *to == id("alice"))
        );
        assert_eq!(
            busy_updates(&out),
            [("Bob".to_string(), true), ("Alice".to_string(), true)]
        );

        // Renegotiation from the callee side within the active call.
        let out = f.offer("bob", "alice", "c1");
        assert!(
            matches!(&out[..], [Output::To(to, ServerMessage::Offer { .. })] if *to == id("alice"))
        );
        let out = f.answer("alice", "bob", "c1");
        assert!(
            matches!(&out[..], [Output::To(to, ServerMessage::Answer { .. })] if *to == id("bob"))
        );

        let out = f.hangup("bob", "alice", "c1");
        assert!(
            matches!(&out[0], Output::To(to, ServerMessage::Hangup { reason: HangupReason::Ended, .. }) if *to == id("alice"))
        );
        assert_eq!(
            busy_updates(&out),
            [("Bob".to_string(), false), ("Alice".to_string(), false)]
        );
        assert_eq!(
            error_code(&f.hangup("bob", "alice", "c1")),
            Some(ErrorCode::UnknownCall)
        );
    }

    #[test]
    fn third_parties_cannot_touch_a_call() {
        let mut f = Fixture::new(&["Alice", "Bob", "Mallory"]);
        f.offer("alice", "bob", "c1");
        assert_eq!(
            error_code(&f.answer("mallory", "alice", "c1")),
            Some(ErrorCode::UnknownCall)
        );
        assert_eq!(
            error_code(&f.hangup("mallory", "bob", "c1")),
            Some(ErrorCode::UnknownCall)
        );
        // The caller cannot answer its own ringing call either.
        assert_eq!(
            error_code(&f.answer("alice", "bob", "c1")),
            Some(ErrorCode::UnknownCall)
        );
        // Reusing the id towards a victim opens a separate call; it does not hijack c1.
        f.offer("mallory", "bob", "c1");
        let out = f.answer("bob", "alice", "c1");
        assert!(
            matches!(&out[0], Output::To(to, ServerMessage::Answer { .. }) if *to == id("alice"))
        );
    }

    #[test]
    fn unknown_peer_and_self_calls_are_refused() {
        let mut f = Fixture::new(&["Alice"]);
        let out = f.offer("alice", "ghost", "c1");
        assert!(
            matches!(&out[..], [Output::To(_, ServerMessage::Error { code: ErrorCode::UnknownPeer, call_id: Some(c), .. })] if *c == cid("c1"))
        );
        assert_eq!(
            error_code(&f.offer("alice", "alice", "c1")),
            Some(ErrorCode::UnknownPeer)
        );
    }

    #[test]
    fn second_hello_is_refused() {
        let mut f = Fixture::new(&["Alice"]);
        let out = f.send(
            "alice",
            ClientMessage::Hello {
                protocol: 1,
                name: "Eve".into(),
                token: None,
            },
        );
        assert_eq!(error_code(&out), Some(ErrorCode::BadMessage));
    }

    #[test]
    fn leaving_ends_calls_with_failed_or_ended() {
        for (clean, reason) in [(true, HangupReason::Ended), (false, HangupReason::Failed)] {
            let mut f = Fixture::new(&["Alice", "Bob"]);
            f.offer("alice", "bob", "c1");
            f.answer("bob", "alice", "c1");
            let out = f.hub.leave(&id("alice"), clean);
            assert!(
                matches!(&out[0], Output::To(to, ServerMessage::Hangup { reason: r, from, .. })
                if *to == id("bob") && *r == reason && *from == id("alice"))
            );
            assert_eq!(busy_updates(&out), [("Bob".to_string(), false)]);
            assert!(matches!(
                out.last(),
                Some(Output::Broadcast {
                    msg: ServerMessage::PeerLeft { .. },
                    ..
                })
            ));
            assert_eq!(f.hub.peer_count(), 1);
            assert!(f.hub.calls.is_empty());
        }
    }

    #[test]
    fn ringing_call_times_out_after_sixty_seconds() {
        let mut f = Fixture::new(&["Alice", "Bob"]);
        f.offer("alice", "bob", "c1");
        assert_eq!(f.hub.next_deadline(), Some(f.t0 + RING));
        assert!(
            f.hub
                .expire(f.t0 + RING - Duration::from_millis(1))
                .is_empty()
        );
        let out = f.hub.expire(f.t0 + RING);
        let timeouts: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Output::To(
                    to,
                    ServerMessage::Hangup {
                        reason: HangupReason::Timeout,
                        from,
                        ..
                    },
                ) => Some((to.clone(), from.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            timeouts,
            [(id("alice"), id("bob")), (id("bob"), id("alice"))]
        );
        assert_eq!(f.hub.next_deadline(), None);
        assert_eq!(
            error_code(&f.answer("bob", "alice", "c1")),
            Some(ErrorCode::UnknownCall)
        );
    }

    #[test]
    fn answered_call_never_times_out() {
        let mut f = Fixture::new(&["Alice", "Bob"]);
        f.offer("alice", "bob", "c1");
        f.answer("bob", "alice", "c1");
        assert_eq!(f.hub.next_deadline(), None);
        assert!(f.hub.expire(f.t0 + RING * 10).is_empty());
    }

    #[test]
    fn calls_per_peer_are_bounded() {
        let mut f = Fixture::new(&["Alice", "Bob"]);
        for i in 0..4 {
            assert!(error_code(&f.offer("alice", "bob", &format!("c{i}"))).is_none());
        }
        assert_eq!(
            error_code(&f.offer("alice", "bob", "c9")),
            Some(ErrorCode::RateLimited)
        );
        f.hangup("alice", "bob", "c0");
        assert!(error_code(&f.offer("alice", "bob", "c9")).is_none());
    }
}
