//! Several servers sharing one roster: what one server says to the others, and what it
//! does with what they say. The driver ([`crate::cluster`]) carries [`ClusterMessage`]s
//! over NATS; here they are inputs and outputs like any client's, with time passed in.
//!
//! Each server owns the peers connected to it: it alone admits them, announces them
//! (`joined`, `updated`, `left`) and delivers to them. The others hold them as remote peers,
//! so a welcome lists the whole cluster and a message to a remote peer passes the same
//! rules as one to a local peer. A call between a local and a remote peer is recorded on
//! both servers: a client's message is checked by its own server, relayed as the client
//! message it was, and checked again by the other party's server, which delivers it. What a
//! server says of its own accord (the hangups when a peer leaves, a call that timed out)
//! each server says to its own peers only, from its own record of the call.
//!
//! A server trusts another only for what that server stamps: a relayed message comes from
//! a peer the sending server announced, never from whoever a client claims to be.
//!
//! Names stay unique across the cluster: a name held anywhere is refused at `hello`. Two
//! servers that admit the same name at once each see the other's `joined` and keep the
//! peer with the smaller id; the other's own server tells it `name_taken` and closes it.
//!
//! A server silent for longer than [`HubConfig::server_timeout`] is gone: its peers leave
//! as if their connections had dropped (calls already connected go on peer to peer). A
//! server that (re)connects sends its roster and gets everyone else's, so a cluster that
//! lost its message system rebuilds its shared roster when it is back.
//!
//! Group calls stay within one server for now: inviting a remote peer, or into a call
//! with one, is refused as not supported.

use std::collections::HashSet;
use std::time::Instant;

use confab_protocol::name;
use confab_protocol::{CallId, ClientMessage, ErrorCode, PeerId, PeerInfo, ServerMessage};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::{CallKey, CallState, Hub, Output, Peer};

/// One server of a cluster, by the random id it picks when it starts. It names the
/// server's NATS subject, so it is plain ASCII letters and digits, at most 64 of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerId(String);

impl ServerId {
    /// A new unguessable id.
    pub fn random() -> Self {
        ServerId(uuid::Uuid::new_v4().simple().to_string())
    }

    /// `s` if it is a valid server id.
    pub fn new(s: impl Into<String>) -> Option<Self> {
        let s = s.into();
        let valid = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric());
        valid.then_some(ServerId(s))
    }
}

impl TryFrom<String> for ServerId {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ServerId::new(s).ok_or("a server id is 1 to 64 ASCII letters and digits")
    }
}

impl From<ServerId> for String {
    fn from(id: ServerId) -> String {
        id.0
    }
}

impl std::fmt::Display for ServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Peers per roster message: a server's whole roster goes out in parts, each well under
/// NATS's default limit of 1 MiB per message (a peer takes about 120 bytes).
pub const ROSTER_PART: usize = 1000;

/// The most peers kept from one server's roster parts: ten times a server's default
/// connection limit, so parts without end cannot grow our memory without bound.
const MAX_ROSTER: usize = 200_000;

/// What one server tells the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClusterMessage {
    /// The sender's own peers, all of them, in parts of at most [`ROSTER_PART`] (`more`:
    /// another part follows): sent to everyone when it (re)joins the cluster, asking for
    /// theirs, and as the answer (`reply`) to one.
    Roster {
        peers: Vec<PeerInfo>,
        reply: bool,
        more: bool,
    },
    /// The sender is alive.
    Heartbeat,
    /// The sender is shutting down: its peers leave (their calls, already connected, go
    /// on peer to peer).
    Bye,
    /// One of the sender's peers said `hello`.
    Joined { peer: PeerInfo },
    /// One of the sender's peers became busy or free.
    Updated { peer: PeerInfo },
    /// One of the sender's peers left; `clean`: it closed its connection properly.
    Left { id: PeerId, clean: bool },
    /// What the sender's peer `from` sent to a peer of the receiver.
    Relay { from: PeerId, msg: ClientMessage },
    /// The receiver's peer `to` sent a message to the sender's peer `from`, and the sender
    /// refused it with `msg` (an `error`).
    Refused {
        to: PeerId,
        from: PeerId,
        msg: ServerMessage,
    },
}

impl Hub {
    /// The server a peer is connected to, when it is another one.
    pub(super) fn home_of(&self, id: &PeerId) -> Option<&ServerId> {
        self.peers.get(id)?.home.as_ref()
    }

    fn clustered(&self) -> bool {
        self.config.server_timeout.is_some()
    }

    /// To every other server, in a cluster.
    pub(super) fn announce(&self, msg: ClusterMessage, out: &mut Vec<Output>) {
        if self.clustered() {
            out.push(Output::Cluster { to: None, msg });
        }
    }

    /// The roster messages for this server's own peers (at least one, if empty).
    pub fn roster(&self, reply: bool) -> Vec<ClusterMessage> {
        let peers: Vec<PeerInfo> = self
            .peers
            .iter()
            .filter(|(_, p)| p.home.is_none())
            .map(|(id, p)| p.info(id))
            .collect();
        let parts = peers.len().div_ceil(ROSTER_PART).max(1);
        let mut peers = peers.into_iter();
        (1..=parts)
            .map(|part| ClusterMessage::Roster {
                peers: peers.by_ref().take(ROSTER_PART).collect(),
                reply,
                more: part < parts,
            })
            .collect()
    }

    /// Our roster, to `to`.
    fn roster_to(&self, to: &ServerId, reply: bool, out: &mut Vec<Output>) {
        out.extend(self.roster(reply).into_iter().map(|msg| Output::Cluster {
            to: Some(to.clone()),
            msg,
        }));
    }

    /// Peers connected to this server.
    pub fn local_peer_count(&self) -> usize {
        self.peers.values().filter(|p| p.home.is_none()).count()
    }

    /// The other servers heard from lately.
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Something `server` said.
    pub fn handle_cluster(
        &mut self,
        server: &ServerId,
        msg: ClusterMessage,
        now: Instant,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if !self.clustered() {
            return out;
        }
        let known = self.servers.insert(server.clone(), now).is_some();
        if !known && !matches!(msg, ClusterMessage::Roster { .. } | ClusterMessage::Bye) {
            // A server we had not heard of (or had given up on): it learns our roster and
            // answers with its own.
            self.roster_to(server, false, &mut out);
        }
        match msg {
            ClusterMessage::Roster {
                peers, more: true, ..
            } => {
                let parts = self.roster_parts.entry(server.clone()).or_default();
                if parts.len() + peers.len() <= MAX_ROSTER {
                    parts.extend(peers);
                }
            }
            ClusterMessage::Roster {
                peers,
                reply,
                more: false,
            } => {
                let mut whole = self.roster_parts.remove(server).unwrap_or_default();
                whole.extend(peers);
                self.replace_roster(server, whole, &mut out);
                if !reply {
                    self.roster_to(server, true, &mut out);
                }
            }
            ClusterMessage::Heartbeat => {}
            // Its peers' connections end with it, not their calls: as when a connection drops.
            ClusterMessage::Bye => self.server_gone(server, &mut out),
            ClusterMessage::Joined { peer } | ClusterMessage::Updated { peer } => {
                self.remote_peer(server, peer, &mut out);
            }
            ClusterMessage::Left { id, clean } => {
                if self.home_of(&id) == Some(server) {
                    out.extend(self.remove_peer(&id, clean));
                }
            }
            ClusterMessage::Relay { from, msg } => {
                out.extend(self.relayed(server, &from, msg, now))
            }
            ClusterMessage::Refused { to, from, msg } => {
                self.refused(server, &to, &from, msg, &mut out)
            }
        }
        self.route(out)
    }

    /// The connection to the other servers is lost: their peers are gone from here until
    /// it is back (when this server sends its roster again, see [`Hub::roster`]).
    pub fn cluster_lost(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        for server in self.servers.keys().cloned().collect::<Vec<_>>() {
            self.server_gone(&server, &mut out);
        }
        self.route(out)
    }

    /// Servers silent past the timeout are gone.
    pub(super) fn expire_servers(&mut self, now: Instant, out: &mut Vec<Output>) {
        let Some(timeout) = self.config.server_timeout else {
            return;
        };
        let silent: Vec<ServerId> = self
            .servers
            .iter()
            .filter(|(_, heard)| **heard + timeout <= now)
            .map(|(server, _)| server.clone())
            .collect();
        for server in silent {
            warn!(%server, "a server of the cluster went silent: its peers leave");
            self.server_gone(&server, out);
        }
    }

    pub(super) fn server_deadline(&self) -> Option<Instant> {
        let timeout = self.config.server_timeout?;
        self.servers.values().min().map(|heard| *heard + timeout)
    }

    /// A server is gone: its peers leave as if their connections had dropped (calls already
    /// connected go on peer to peer; see `HangupReason::Failed`).
    fn server_gone(&mut self, server: &ServerId, out: &mut Vec<Output>) {
        self.servers.remove(server);
        self.roster_parts.remove(server);
        let theirs: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.home.as_ref() == Some(server))
            .map(|(id, _)| id.clone())
            .collect();
        for id in theirs {
            out.extend(self.remove_peer(&id, false));
        }
    }

    /// `server`'s peers are exactly `peers` now.
    fn replace_roster(&mut self, server: &ServerId, peers: Vec<PeerInfo>, out: &mut Vec<Output>) {
        let listed: HashSet<&PeerId> = peers.iter().map(|info| &info.id).collect();
        let gone: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(id, p)| p.home.as_ref() == Some(server) && !listed.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            out.extend(self.remove_peer(&id, false));
        }
        for peer in peers {
            self.remote_peer(server, peer, out);
        }
    }

    /// A peer of `server`, new or updated.
    fn remote_peer(&mut self, server: &ServerId, info: PeerInfo, out: &mut Vec<Output>) {
        let Ok(name) = name::validate(&info.name).map(str::to_owned) else {
            debug!(%server, "ignoring a peer announced with an invalid name");
            return;
        };
        match self.peers.get_mut(&info.id) {
            Some(peer) if peer.home.as_ref() == Some(server) => {
                if peer.announced_busy != info.busy {
                    peer.announced_busy = info.busy;
                    out.push(Output::Broadcast {
                        except: info.id.clone(),
                        msg: ServerMessage::PeerUpdated {
                            peer: peer.info(&info.id),
                        },
                    });
                }
                return;
            }
            Some(_) => {
                warn!(%server, id = %info.id, "ignoring a peer announced with an id already held");
                return;
            }
            None => {}
        }
        let name_key = name::uniqueness_key(&name);
        if let Some(holder) = self.names.get(&name_key).cloned() {
            if holder < info.id {
                // The holder keeps the name; the newcomer's own server lets it go.
                return;
            }
            if self.home_of(&holder).is_none() {
                let message = format!(
                    "the name {name:?} was taken on another server at the same moment; \
                     join again with another"
                );
                out.push(Output::Kick(
                    holder.clone(),
                    super::error_message(ErrorCode::NameTaken, &message, None),
                ));
            }
            out.extend(self.remove_peer(&holder, true));
        }
        let peer = Peer {
            name,
            name_key: name_key.clone(),
            home: Some(server.clone()),
            announced_busy: info.busy,
            protocol: info.protocol,
            calls: Default::default(),
            active_calls: 0,
            groups: Default::default(),
            resume_secret: String::new(),
        };
        out.push(Output::Broadcast {
            except: info.id.clone(),
            msg: ServerMessage::PeerJoined {
                peer: peer.info(&info.id),
            },
        });
        self.names.insert(name_key, info.id.clone());
        self.peers.insert(info.id, peer);
    }

    /// A message `server`'s peer `from` sent to one of ours: checked as if it had sent it
    /// here; a refusal goes back to `server` for it.
    fn relayed(
        &mut self,
        server: &ServerId,
        from: &PeerId,
        msg: ClientMessage,
        now: Instant,
    ) -> Vec<Output> {
        if self.home_of(from) != Some(server) {
            debug!(%server, %from, "dropping a relay from a peer that server does not hold");
            return Vec::new();
        }
        let (ClientMessage::Offer { to, .. }
        | ClientMessage::Answer { to, .. }
        | ClientMessage::Candidate { to, .. }
        | ClientMessage::Hangup { to, .. }) = &msg
        else {
            debug!(%server, "dropping a relayed message that only its own server handles");
            return Vec::new();
        };
        let to = to.clone();
        // A peer of a third server is not ours to deliver to; one gone from here is refused
        // as unknown, as it would be on one server.
        if self.home_of(&to).is_some() {
            return Vec::new();
        }
        self.handle_message(from, msg, now)
            .into_iter()
            .map(|output| match output {
                Output::To(id, msg @ ServerMessage::Error { .. }) if id == *from => {
                    Output::Cluster {
                        to: Some(server.clone()),
                        msg: ClusterMessage::Refused {
                            to: id,
                            from: to.clone(),
                            msg,
                        },
                    }
                }
                other => other,
            })
            .collect()
    }

    /// `server` refused what our peer `to` sent its peer `from`. A refused offer leaves no
    /// call ringing here either.
    fn refused(
        &mut self,
        server: &ServerId,
        to: &PeerId,
        from: &PeerId,
        msg: ServerMessage,
        out: &mut Vec<Output>,
    ) {
        if self.home_of(from) != Some(server) || self.home_of(to).is_some() {
            return;
        }
        if let ServerMessage::Error {
            call_id: Some(call_id),
            ..
        } = &msg
        {
            self.drop_ringing(call_id, to, from, out);
        }
        out.push(Output::To(to.clone(), msg));
    }

    /// Forgets the call `caller` is ringing `callee` with.
    fn drop_ringing(
        &mut self,
        call_id: &CallId,
        caller: &PeerId,
        callee: &PeerId,
        out: &mut Vec<Output>,
    ) {
        let key = CallKey::new(call_id, caller, callee);
        let ringing = self.calls.get(&key).is_some_and(|call| {
            matches!(call.state, CallState::Ringing { .. }) && call.caller == *caller
        });
        if !ringing {
            return;
        }
        if let Some(call) = self.calls.remove(&key) {
            self.detach(caller, &key, &call, out);
            self.detach(callee, &key, &call, out);
        }
    }

    /// Drops what this server would say to remote peers: their own servers say it.
    pub(super) fn route(&self, out: Vec<Output>) -> Vec<Output> {
        out.into_iter()
            .filter(|output| match output {
                Output::To(id, _) => self.home_of(id).is_none(),
                _ => true,
            })
            .collect()
    }
}
