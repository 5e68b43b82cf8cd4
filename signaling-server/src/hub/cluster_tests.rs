//! Several hubs joined by a fake message system, in fake time: what each server's clients
//! hear when their peers are spread over servers.

use std::collections::VecDeque;

use super::cluster::ROSTER_PART;
use super::*;

const RING: Duration = Duration::from_secs(60);
const SILENCE: Duration = Duration::from_secs(3);

fn id(s: &str) -> PeerId {
    PeerId::new(s).unwrap()
}

fn cid(s: &str) -> CallId {
    CallId::new(s).unwrap()
}

fn server(n: usize) -> ServerId {
    ServerId::new(format!("s{n}")).unwrap()
}

/// What one server's clients were told.
#[derive(Default)]
struct Heard {
    to: Vec<(PeerId, ServerMessage)>,
    broadcasts: Vec<ServerMessage>,
    kicked: Vec<PeerId>,
}

struct Cluster {
    hubs: Vec<Hub>,
    heard: Vec<Heard>,
    /// Cluster messages on their way: (from, to, message).
    wire: VecDeque<(usize, Option<ServerId>, ClusterMessage)>,
    /// Servers cut off from the message system.
    cut: Vec<bool>,
    now: Instant,
}

impl Cluster {
    fn new(servers: usize) -> Self {
        let hub = || {
            Hub::new(HubConfig {
                ice_servers: vec![],
                ring_timeout: RING,
                max_calls_per_peer: 2,
                server_timeout: Some(SILENCE),
            })
        };
        Cluster {
            hubs: (0..servers).map(|_| hub()).collect(),
            heard: (0..servers).map(|_| Heard::default()).collect(),
            wire: VecDeque::new(),
            cut: vec![false; servers],
            now: Instant::now(),
        }
    }

    /// Every server sends its roster, as it does when it connects.
    fn start(servers: usize) -> Self {
        let mut c = Cluster::new(servers);
        for n in 0..servers {
            c.send_roster(n);
        }
        c.pump();
        c.clear();
        c
    }

    fn take(&mut self, n: usize, out: Vec<Output>) {
        for output in out {
            match output {
                Output::To(to, msg) => self.heard[n].to.push((to, msg)),
                Output::Broadcast { msg, .. } => self.heard[n].broadcasts.push(msg),
                Output::Cluster { to, msg } => {
                    if !self.cut[n] {
                        self.wire.push_back((n, to, msg));
                    }
                }
                Output::Kick(id, _) => self.heard[n].kicked.push(id),
            }
        }
    }

    /// Delivers every cluster message until none is left.
    fn pump(&mut self) {
        while let Some((from, to, msg)) = self.wire.pop_front() {
            for n in 0..self.hubs.len() {
                let addressed = to.as_ref().is_none_or(|to| *to == server(n));
                if n == from || !addressed || self.cut[n] {
                    continue;
                }
                let out = self.hubs[n].handle_cluster(&server(from), msg.clone(), self.now);
                self.take(n, out);
            }
        }
    }

    /// Server `n` sends its roster to all, as when it (re)connects.
    fn send_roster(&mut self, n: usize) {
        for part in self.hubs[n].roster(false) {
            self.wire.push_back((n, None, part));
        }
    }

    fn clear(&mut self) {
        for heard in &mut self.heard {
            *heard = Heard::default();
        }
    }

    fn join(&mut self, n: usize, peer: &str, name: &str) -> ServerMessage {
        let (welcome, out) = self.hubs[n]
            .join(id(peer), name, 2, "secret".into())
            .unwrap();
        self.take(n, out);
        self.pump();
        welcome
    }

    fn send(&mut self, n: usize, from: &str, msg: ClientMessage) {
        let out = self.hubs[n].handle(&id(from), msg, self.now);
        self.take(n, out);
        self.pump();
    }

    fn offer(&mut self, n: usize, from: &str, to: &str, call: &str) {
        let msg = ClientMessage::Offer {
            to: id(to),
            call_id: cid(call),
            sdp: "v=0".into(),
        };
        self.send(n, from, msg);
    }

    fn answer(&mut self, n: usize, from: &str, to: &str, call: &str) {
        let msg = ClientMessage::Answer {
            to: id(to),
            call_id: cid(call),
            sdp: "v=0".into(),
        };
        self.send(n, from, msg);
    }

    fn hangup(&mut self, n: usize, from: &str, to: &str, call: &str) {
        let msg = ClientMessage::Hangup {
            to: id(to),
            call_id: cid(call),
            reason: HangupReason::Ended,
        };
        self.send(n, from, msg);
    }

    fn expire(&mut self) {
        for n in 0..self.hubs.len() {
            let out = self.hubs[n].expire(self.now);
            self.take(n, out);
        }
        self.pump();
    }

    /// Every server says it is alive.
    fn heartbeats(&mut self) {
        for n in 0..self.hubs.len() {
            if !self.cut[n] {
                self.wire.push_back((n, None, ClusterMessage::Heartbeat));
            }
        }
        self.pump();
    }

    /// The message types peer `to` of server `n` was sent, in order.
    fn told(&self, n: usize, to: &str) -> Vec<String> {
        self.heard[n]
            .to
            .iter()
            .filter(|(peer, _)| *peer == id(to))
            .map(|(_, msg)| kind(msg))
            .collect()
    }

    /// Names of everyone server `n`'s newcomer would be welcomed with.
    fn roster(&self, n: usize) -> Vec<String> {
        let ServerMessage::Welcome { peers, .. } = self.hubs[n].welcome(&id("nobody"), "s") else {
            unreachable!()
        };
        let mut names: Vec<String> = peers.into_iter().map(|p| p.name).collect();
        names.sort();
        names
    }

    /// The busy updates server `n`'s clients heard: (name, busy).
    fn busy(&self, n: usize) -> Vec<(String, bool)> {
        self.heard[n]
            .broadcasts
            .iter()
            .filter_map(|msg| match msg {
                ServerMessage::PeerUpdated { peer } => Some((peer.name.clone(), peer.busy)),
                _ => None,
            })
            .collect()
    }
}

fn kind(msg: &ServerMessage) -> String {
    match msg {
        ServerMessage::Hangup { reason, .. } => format!("hangup {reason:?}"),
        ServerMessage::Error { code, .. } => format!("error {code:?}"),
        other => serde_json::to_value(other).unwrap()["type"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

/// Alice on server 0, Bob on server 1, Carol on server 0.
fn three_peers() -> Cluster {
    let mut c = Cluster::start(2);
    c.join(0, "alice", "Alice");
    c.join(1, "bob", "Bob");
    c.join(0, "carol", "Carol");
    c.clear();
    c
}

#[test]
fn every_server_welcomes_with_the_whole_roster_and_hears_who_comes_and_goes() {
    let mut c = Cluster::start(3);
    c.join(0, "alice", "Alice");
    c.join(1, "bob", "Bob");
    for n in 0..3 {
        assert_eq!(c.roster(n), ["Alice", "Bob"]);
    }
    assert_eq!(
        c.heard[2].broadcasts.len(),
        2,
        "server 2 told its clients of both"
    );
    // A server that starts later learns everyone from the rosters it asks for.
    let late = Cluster::new(1).hubs.remove(0);
    c.hubs.push(late);
    c.heard.push(Heard::default());
    c.cut.push(false);
    c.send_roster(3);
    c.pump();
    assert_eq!(c.roster(3), ["Alice", "Bob"]);

    c.clear();
    let out = c.hubs[1].leave(&id("bob"), true);
    c.take(1, out);
    c.pump();
    for n in [0, 2, 3] {
        assert_eq!(c.roster(n), ["Alice"]);
        assert!(
            matches!(&c.heard[n].broadcasts[..], [ServerMessage::PeerLeft { id: gone }] if *gone == id("bob"))
        );
    }
}

#[test]
fn a_call_across_servers_goes_as_on_one_server() {
    let mut c = three_peers();
    c.offer(0, "alice", "bob", "c1");
    assert_eq!(c.told(1, "bob"), ["offer"]);
    assert!(
        c.heard[0].to.is_empty(),
        "Alice's server delivers nothing itself"
    );
    c.answer(1, "bob", "alice", "c1");
    assert_eq!(c.told(0, "alice"), ["answer"]);
    // Each server's clients hear each party become busy exactly once.
    for n in 0..2 {
        let mut busy = c.busy(n);
        busy.sort();
        assert_eq!(
            busy,
            [("Alice".into(), true), ("Bob".into(), true)],
            "server {n}"
        );
    }
    let candidate = ClientMessage::Candidate {
        to: id("alice"),
        call_id: cid("c1"),
        candidate: None,
    };
    c.send(1, "bob", candidate);
    assert_eq!(c.told(0, "alice"), ["answer", "candidate"]);

    // Only the two parties reach the call: Carol cannot end it.
    c.hangup(0, "carol", "bob", "c1");
    assert_eq!(c.told(0, "carol"), ["error UnknownCall"]);
    assert_eq!(c.told(1, "bob"), ["offer"]);

    c.clear();
    c.hangup(1, "bob", "alice", "c1");
    assert_eq!(c.told(0, "alice"), ["hangup Ended"]);
    for n in 0..2 {
        let mut busy = c.busy(n);
        busy.sort();
        assert_eq!(busy, [("Alice".into(), false), ("Bob".into(), false)]);
    }
    // The call is gone on both servers.
    c.clear();
    c.answer(1, "bob", "alice", "c1");
    assert_eq!(c.told(1, "bob"), ["error UnknownCall"]);
}

#[test]
fn a_server_trusts_another_only_for_its_own_peers() {
    let mut c = three_peers();
    // Server 1 relays a message claiming to come from Carol, a peer of server 0.
    let forged = ClusterMessage::Relay {
        from: id("carol"),
        msg: ClientMessage::Offer {
            to: id("alice"),
            call_id: cid("c1"),
            sdp: "v=0".into(),
        },
    };
    let out = c.hubs[0].handle_cluster(&server(1), forged, c.now);
    assert!(out.is_empty(), "{out:?}");
    // Nor may it announce a peer under an id another server holds.
    let stolen = ClusterMessage::Updated {
        peer: PeerInfo {
            id: id("alice"),
            name: "Alice".into(),
            busy: true,
            protocol: 2,
        },
    };
    let out = c.hubs[0].handle_cluster(&server(1), stolen, c.now);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(c.roster(0), ["Alice", "Bob", "Carol"]);
}

#[test]
fn a_name_taken_on_two_servers_at_once_stays_with_one_peer() {
    let mut c = Cluster::start(3);
    // Both servers admit "Dana" before either hears of the other's.
    c.cut = vec![true, true, false];
    c.join(0, "d1", "Dana");
    c.join(1, "d2", "dana");
    c.cut = vec![false, false, false];
    // Both reconnect and send their rosters.
    for n in 0..2 {
        c.send_roster(n);
    }
    c.pump();
    // The smaller id keeps it; the other's own server closes it with name_taken.
    assert_eq!(c.heard[1].kicked, [id("d2")]);
    assert!(c.heard[0].kicked.is_empty());
    for n in 0..3 {
        assert_eq!(c.roster(n), ["Dana"], "server {n}");
    }
    assert!(c.hubs[1].join(id("x"), "DANA", 2, "s".into()).is_err());
}

#[test]
fn a_call_left_ringing_times_out_once_for_each_party() {
    let mut c = three_peers();
    c.offer(0, "alice", "bob", "c1");
    c.clear();
    c.now += RING;
    c.heartbeats();
    c.expire();
    assert_eq!(c.told(0, "alice"), ["hangup Timeout"]);
    assert_eq!(c.told(1, "bob"), ["hangup Timeout"]);
    assert_eq!(c.heard[0].to.len() + c.heard[1].to.len(), 2);
}

#[test]
fn an_offer_the_other_server_refuses_rings_nowhere() {
    let mut c = three_peers();
    // Bob already has two calls ringing (his limit), from a peer of his own server.
    c.join(1, "dave", "Dave");
    c.offer(1, "dave", "bob", "d1");
    c.offer(1, "dave", "bob", "d2");
    c.clear();
    c.offer(0, "alice", "bob", "c1");
    assert_eq!(c.told(0, "alice"), ["error RateLimited"]);
    assert!(c.told(1, "bob").is_empty());
    // Nothing is left ringing on Alice's server: no timeout later.
    c.clear();
    c.now += RING;
    c.heartbeats();
    c.expire();
    assert!(c.told(0, "alice").is_empty(), "{:?}", c.told(0, "alice"));
}

#[test]
fn a_silent_server_loses_its_peers_and_a_server_saying_bye_at_once() {
    let mut c = three_peers();
    c.offer(0, "alice", "bob", "c1");
    c.answer(1, "bob", "alice", "c1");
    c.clear();
    // Server 1 goes quiet; server 0 gives up on it after SILENCE.
    c.cut[1] = true;
    c.now += SILENCE / 2;
    c.heartbeats();
    c.expire();
    assert_eq!(c.roster(0), ["Alice", "Bob", "Carol"]);
    assert_eq!(c.hubs[0].next_deadline(), Some(c.now + SILENCE / 2));
    c.now += SILENCE;
    c.heartbeats();
    c.expire();
    assert_eq!(c.roster(0), ["Alice", "Carol"]);
    // Alice hears the call failed (her app carries on peer to peer once connected).
    assert_eq!(c.told(0, "alice"), ["hangup Failed"]);

    // It comes back: it says its roster again, and server 0 answers with its own.
    c.cut[1] = false;
    c.clear();
    c.send_roster(1);
    c.pump();
    assert_eq!(c.roster(0), ["Alice", "Bob", "Carol"]);

    // A server that shuts down says bye: its peers leave at once, as if their connections
    // had dropped (a call already connected goes on peer to peer).
    c.offer(0, "carol", "bob", "c2");
    c.clear();
    c.wire.push_back((1, None, ClusterMessage::Bye));
    c.pump();
    assert_eq!(c.roster(0), ["Alice", "Carol"]);
    assert_eq!(c.told(0, "carol"), ["hangup Failed"]);
}

#[test]
fn losing_the_message_system_forgets_remote_peers_until_it_is_back() {
    let mut c = three_peers();
    let out = c.hubs[0].cluster_lost();
    c.take(0, out);
    assert_eq!(c.roster(0), ["Alice", "Carol"]);
    assert_eq!(c.hubs[0].server_count(), 0);
    // Meanwhile server 0 serves its own: a call between its peers works.
    c.offer(0, "alice", "carol", "c1");
    assert_eq!(c.told(0, "carol"), ["offer"]);
    // Back: its roster goes out, the others answer, and everyone is there again.
    c.send_roster(0);
    c.pump();
    assert_eq!(c.roster(0), ["Alice", "Bob", "Carol"]);
    assert_eq!(c.roster(1), ["Alice", "Bob", "Carol"]);
}

#[test]
fn group_calls_stay_within_one_server() {
    let mut c = three_peers();
    c.offer(0, "alice", "carol", "c1");
    c.answer(0, "carol", "alice", "c1");
    c.clear();
    let invite = ClientMessage::Invite {
        to: id("bob"),
        call_id: cid("c1"),
    };
    c.send(0, "alice", invite);
    assert_eq!(c.told(0, "alice"), ["error NotSupported"]);
    assert!(c.told(1, "bob").is_empty());
}

#[test]
fn a_large_roster_travels_in_parts() {
    let mut c = Cluster::start(2);
    let peers = 2 * ROSTER_PART + 1;
    for i in 0..peers {
        let (_, out) = c.hubs[0]
            .join(id(&format!("p{i}")), &format!("Peer {i}"), 2, "s".into())
            .unwrap();
        drop(out);
    }
    let parts = c.hubs[0].roster(false);
    assert_eq!(parts.len(), 3);
    assert!(matches!(
        parts.last(),
        Some(ClusterMessage::Roster { more: false, .. })
    ));
    // Server 1 learns them all from the parts, and nothing before the last one.
    c.wire.extend(parts.into_iter().map(|part| (0, None, part)));
    let first = c.wire.pop_front().unwrap();
    let out = c.hubs[1].handle_cluster(&server(0), first.2, c.now);
    assert!(out.is_empty(), "{out:?}");
    c.pump();
    assert_eq!(c.roster(1).len(), peers);
}

#[test]
fn cluster_messages_travel_as_json() {
    let msg = ClusterMessage::Relay {
        from: id("alice"),
        msg: ClientMessage::Hangup {
            to: id("bob"),
            call_id: cid("c1"),
            reason: HangupReason::Ended,
        },
    };
    let json = serde_json::to_string(&msg).unwrap();
    assert_eq!(
        json,
        r#"{"type":"relay","from":"alice","msg":{"type":"hangup","to":"bob","call_id":"c1","reason":"ended"}}"#
    );
    assert_eq!(serde_json::from_str::<ClusterMessage>(&json).unwrap(), msg);
}
