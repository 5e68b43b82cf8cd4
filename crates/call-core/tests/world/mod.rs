//! The in-memory world of call cores the tests drive (like quinn-proto's `Pair`): a tiny
//! signaling server routes what each core sends (with version 2's group calls), and fake
//! links stand in for peer connections (their session descriptions name the link, so the
//! two ends find each other). No sockets, no sleeps, no clock but the one the test moves.
#![allow(dead_code, reason = "each test file uses its own part of the world")]

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use confab_call_core::machine::{CallEnd, CallState, Role, Timeouts};
use confab_call_core::{
    CallCore, ChatEvent, Command, Event, Input, LinkAction, LinkClosed, LinkEvent, LinkId, Output,
    Randomness, Signaling,
};
use confab_protocol::chat::ChatMessage;
use confab_protocol::{
    CallId, ClientMessage, HangupReason, IceCandidate, PeerId, PeerInfo, ServerMessage,
};

/// Counts up: ids are unique and the same on every run.
pub struct Counter(u128);

impl Randomness for Counter {
    fn random_u128(&mut self) -> u128 {
        self.0 += 1;
        self.0
    }
}

#[derive(Debug, Default)]
pub struct FakeLink {
    /// The other end: (peer index, its link).
    pub remote: Option<(usize, LinkId)>,
    pub connected: bool,
    pub chat_open: bool,
    pub media_started: bool,
    pub remote_candidates: Vec<Option<IceCandidate>>,
    /// Remote candidates given to the link before its peer sent its offer or answer.
    pub candidates_before_description: usize,
    pub closed: Option<LinkClosed>,
    pub camera_open_at_close: bool,
    /// Where the screen goes on this link, as the core said last.
    pub screen: confab_call_core::ScreenRoute,
    /// File transfers the core asked the link to perform, and to stop.
    pub file_actions: Vec<LinkAction>,
}

pub struct Peer {
    pub name: &'static str,
    pub id: PeerId,
    pub core: CallCore,
    pub events: Vec<Event>,
    pub signals_sent: Vec<ClientMessage>,
    pub links: BTreeMap<LinkId, FakeLink>,
    pub camera_open: bool,
    /// Whether the driver would be capturing a screen.
    pub screen_open: bool,
    pub microphone_opened: usize,
    /// A vanished peer: its process is gone, nothing it would send leaves.
    pub gone: bool,
    /// ICE restarts this peer made, and restart offers it answered.
    pub restarts: usize,
    pub restarts_answered: usize,
    /// Files the core asked to hash, with the transfers they are for.
    pub hash_requests: Vec<(Vec<confab_call_core::FileId>, std::path::PathBuf)>,
}

impl Peer {
    pub fn chats(&self) -> Vec<&ChatEvent> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Chat(chat) => Some(chat),
                _ => None,
            })
            .collect()
    }

    pub fn state(&self) -> &CallState {
        self.core.state()
    }

    pub fn ended(&self) -> &CallEnd {
        match self.state() {
            CallState::Ended(end) => end,
            other => panic!("{} is {other:?}, not ended", self.name),
        }
    }

    /// What the driver was told when the call's first link closed.
    pub fn first_link_closed(&self) -> LinkClosed {
        let link = self.links.values().next().expect("a link");
        link.closed.clone().expect("the link closed")
    }

    pub fn link(&self) -> &FakeLink {
        let mut open = self.links.values().filter(|l| l.closed.is_none());
        let link = open.next().expect("an open link");
        assert!(open.next().is_none(), "one open link");
        link
    }
}

/// Peers, a signaling server between them, and the time.
pub struct World {
    pub peers: Vec<Peer>,
    pub now: Instant,
    /// (to peer, what) waiting to be delivered.
    pub pending: VecDeque<(usize, Input)>,
    /// Every link started, by the number its session description carries.
    pub registry: Vec<(usize, LinkId)>,
    /// Whether chat channels open once connected (a lost handshake keeps one shut).
    pub chat_opens: bool,
    /// Group calls: their members, and their invitations.
    pub groups: BTreeMap<CallId, (Vec<usize>, Vec<Invitation>)>,
}

/// (invitee, inviter)
pub type Invitation = (usize, usize);

pub const NAMES: [&str; 4] = ["Alice", "Bob", "Carol", "Dave"];

impl World {
    /// Alice and Bob, Alice has called and Bob accepted.
    pub fn in_a_call() -> World {
        let mut w = World::new(2);
        w.call(ALICE, BOB);
        w.command(BOB, Command::Accept);
        w
    }

    pub fn new(count: usize) -> World {
        let now = Instant::now();
        let mut peers: Vec<Peer> = NAMES[..count]
            .iter()
            .enumerate()
            .map(|(i, &name)| Peer {
                name,
                // Alice has the lowest id, then Bob, then Carol.
                id: PeerId::new(format!("{:032x}", i + 1)).unwrap(),
                core: CallCore::new(Timeouts::default(), Box::new(Counter(i as u128 * 1000))),
                events: Vec::new(),
                signals_sent: Vec::new(),
                links: BTreeMap::new(),
                camera_open: false,
                screen_open: false,
                microphone_opened: 0,
                gone: false,
                restarts: 0,
                restarts_answered: 0,
                hash_requests: Vec::new(),
            })
            .collect();
        let roster: Vec<PeerInfo> = peers
            .iter()
            .map(|p| PeerInfo {
                id: p.id.clone(),
                name: p.name.to_owned(),
                busy: false,
                protocol: 2,
            })
            .collect();
        for peer in &mut peers {
            let my_id = peer.id.clone();
            peer.core
                .handle(Input::Signaling(Signaling::Online { my_id }), now);
            let others = roster.iter().filter(|p| p.id != peer.id).cloned().collect();
            peer.core
                .handle(Input::Signaling(Signaling::Roster(others)), now);
        }
        World {
            peers,
            now,
            pending: VecDeque::new(),
            registry: Vec::new(),
            chat_opens: true,
            groups: BTreeMap::new(),
        }
    }

    pub fn index(&self, id: &PeerId) -> Option<usize> {
        self.peers.iter().position(|p| &p.id == id)
    }

    pub fn command(&mut self, peer: usize, command: Command) {
        let now = self.now;
        self.peers[peer].core.handle(Input::Command(command), now);
        self.settle();
    }

    pub fn call(&mut self, from: usize, to: usize) {
        let peer = self.peers[to].id.clone();
        self.command(from, Command::Call { peer });
    }

    pub fn chat(&mut self, from: usize, text: &str) {
        let text = text.to_owned();
        self.command(
            from,
            Command::SendChat {
                text,
                sent_at_ms: 7,
            },
        );
    }

    /// Moves time on, firing every timer due on the way.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            let next = self
                .peers
                .iter()
                .filter(|p| !p.gone)
                .filter_map(|p| p.core.poll_timeout())
                .filter(|&at| at <= end)
                .min();
            let Some(at) = next else { break };
            self.now = self.now.max(at);
            let now = self.now;
            for peer in self.peers.iter_mut().filter(|p| !p.gone) {
                if peer.core.poll_timeout().is_some_and(|t| t <= now) {
                    peer.core.handle_timeout(now);
                }
            }
            self.settle();
        }
        self.now = end;
    }

    /// Performs every output and delivers every message until nothing moves.
    pub fn settle(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.peers.len() {
                while let Some(output) = self.peers[i].core.poll_output() {
                    moved = true;
                    self.perform(i, output);
                }
            }
            while let Some((to, input)) = self.pending.pop_front() {
                moved = true;
                if !self.peers[to].gone {
                    let now = self.now;
                    self.peers[to].core.handle(input, now);
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// `peer` gets `input` now, and everything settles.
    pub fn input(&mut self, peer: usize, input: Input) {
        let now = self.now;
        self.peers[peer].core.handle(input, now);
        self.settle();
    }

    /// The server tells `peer` something, out of turn, and everything settles.
    pub fn server_says(&mut self, peer: usize, message: ServerMessage) {
        let now = self.now;
        self.peers[peer]
            .core
            .handle(Input::Signaling(Signaling::Message(message)), now);
        self.settle();
    }

    pub fn send_link_event(&mut self, peer: usize, link: LinkId, event: LinkEvent) {
        self.pending.push_back((peer, Input::Link(link, event)));
    }

    pub fn perform(&mut self, i: usize, output: Output) {
        if self.peers[i].gone {
            return;
        }
        match output {
            Output::Signal(message) => self.server(i, message),
            Output::Event(event) => self.peers[i].events.push(event),
            Output::OpenCamera => self.peers[i].camera_open = true,
            Output::CloseCamera => self.peers[i].camera_open = false,
            Output::OpenScreen => self.peers[i].screen_open = true,
            Output::CloseScreen => self.peers[i].screen_open = false,
            Output::OpenMicrophone => self.peers[i].microphone_opened += 1,
            Output::HashFile { files, path } => self.peers[i].hash_requests.push((files, path)),
            Output::Link(id, action) => self.link_action(i, id, action),
        }
    }

    /// The signaling server: stamps the sender and forwards.
    pub fn server(&mut self, from: usize, message: ClientMessage) {
        self.peers[from].signals_sent.push(message.clone());
        let sender = &self.peers[from];
        let (from_id, from_name) = (sender.id.clone(), sender.name.to_owned());
        let (to, forwarded) = match message {
            ClientMessage::Offer { to, call_id, sdp } => (
                to,
                ServerMessage::Offer {
                    from: from_id,
                    from_name,
                    call_id,
                    sdp,
                },
            ),
            ClientMessage::Answer { to, call_id, sdp } => (
                to,
                ServerMessage::Answer {
                    from: from_id,
                    call_id,
                    sdp,
                },
            ),
            ClientMessage::Candidate {
                to,
                call_id,
                candidate,
            } => (
                to,
                ServerMessage::Candidate {
                    from: from_id,
                    call_id,
                    candidate,
                },
            ),
            ClientMessage::Hangup {
                to,
                call_id,
                reason,
            } => (
                to,
                ServerMessage::Hangup {
                    from: from_id,
                    call_id,
                    reason,
                },
            ),
            ClientMessage::Invite { to, call_id } => {
                let members = self.group_for(from, &call_id);
                let invitee = self.index(&to).expect("an invitee");
                if let Some((_, invited)) = self.groups.get_mut(&call_id) {
                    invited.push((invitee, from));
                }
                let members = members.iter().map(|&m| self.info(m)).collect();
                (
                    to,
                    ServerMessage::Invite {
                        from: from_id,
                        from_name,
                        call_id,
                        members,
                    },
                )
            }
            ClientMessage::Join { call_id } => return self.join_group(from, call_id),
            ClientMessage::Leave { call_id } => {
                let Some((members, _)) = self.groups.get_mut(&call_id) else {
                    return;
                };
                members.retain(|&m| m != from);
                for m in members.clone() {
                    let left = ServerMessage::MemberLeft {
                        call_id: call_id.clone(),
                        id: from_id.clone(),
                        reason: HangupReason::Ended,
                    };
                    self.pending
                        .push_back((m, Input::Signaling(Signaling::Message(left))));
                }
                return;
            }
            other => panic!("unexpected {other:?}"),
        };
        if let Some(to) = self.index(&to) {
            let input = Input::Signaling(Signaling::Message(forwarded));
            self.pending.push_back((to, input));
        }
    }

    /// The members of the group call `call_id`, made of `from` and the peers it has open
    /// links to when `from` invites for the first time.
    fn group_for(&mut self, from: usize, call_id: &CallId) -> Vec<usize> {
        if let Some((members, _)) = self.groups.get(call_id) {
            return members.clone();
        }
        let mut members = vec![from];
        members.extend(
            self.peers[from]
                .links
                .values()
                .filter(|l| l.closed.is_none())
                .filter_map(|l| l.remote.map(|(peer, _)| peer)),
        );
        self.groups
            .insert(call_id.clone(), (members.clone(), Vec::new()));
        members
    }

    fn join_group(&mut self, joiner: usize, call_id: CallId) {
        let Some((members, invited)) = self.groups.get_mut(&call_id) else {
            return;
        };
        invited.retain(|(invitee, _)| *invitee != joiner);
        let others = members.clone();
        members.push(joiner);
        let list = others.iter().map(|&m| self.info(m)).collect();
        let to_joiner = ServerMessage::Members {
            call_id: call_id.clone(),
            members: list,
        };
        self.pending
            .push_back((joiner, Input::Signaling(Signaling::Message(to_joiner))));
        let peer = self.info(joiner);
        for m in others {
            let joined = ServerMessage::MemberJoined {
                call_id: call_id.clone(),
                peer: peer.clone(),
            };
            self.pending
                .push_back((m, Input::Signaling(Signaling::Message(joined))));
        }
    }

    fn info(&self, i: usize) -> PeerInfo {
        PeerInfo {
            id: self.peers[i].id.clone(),
            name: self.peers[i].name.to_owned(),
            busy: true,
            protocol: 2,
        }
    }

    pub fn link_action(&mut self, i: usize, id: LinkId, action: LinkAction) {
        match action {
            LinkAction::Start {
                role, remote_offer, ..
            } => {
                let mut link = FakeLink::default();
                if let Some(offer) = remote_offer {
                    assert_eq!(role, Role::Callee);
                    link.remote = Some(self.remote_of(&offer));
                }
                self.peers[i].links.insert(id, link);
                self.registry.push((i, id));
                let sdp = format!("{}", self.registry.len() - 1);
                self.send_link_event(i, id, LinkEvent::LocalDescription(sdp));
                let candidate = IceCandidate {
                    candidate: format!("candidate:{i} 1 udp 1 192.0.2.{i} 5000 typ host"),
                    sdp_mid: Some("0".into()),
                    sdp_m_line_index: Some(0),
                    username_fragment: None,
                };
                self.send_link_event(i, id, LinkEvent::LocalCandidate(Some(candidate)));
                self.send_link_event(i, id, LinkEvent::LocalCandidate(None));
            }
            LinkAction::ApplyAnswer(sdp) => {
                let remote = self.remote_of(&sdp);
                self.peers[i].links.get_mut(&id).expect("the link").remote = Some(remote);
                // Both ends know each other: the connection comes up, then the chat.
                for (peer, link) in [(i, id), remote] {
                    self.peers[peer].links.get_mut(&link).unwrap().connected = true;
                    self.send_link_event(peer, link, LinkEvent::Connected);
                    if self.chat_opens {
                        self.peers[peer].links.get_mut(&link).unwrap().chat_open = true;
                        self.send_link_event(peer, link, LinkEvent::ChatOpen);
                    }
                }
            }
            LinkAction::ApplyOffer(_) => {
                self.peers[i].restarts_answered += 1;
                let sdp = self.own_description(i, id);
                self.send_link_event(i, id, LinkEvent::LocalDescription(sdp));
            }
            LinkAction::RestartIce => {
                self.peers[i].restarts += 1;
                let sdp = self.own_description(i, id);
                self.send_link_event(i, id, LinkEvent::LocalDescription(sdp));
            }
            LinkAction::AddCandidate(candidate) => {
                let described = self.peers[i].signals_sent.iter().any(|m| {
                    matches!(
                        m,
                        ClientMessage::Offer { .. } | ClientMessage::Answer { .. }
                    )
                });
                let link = self.peers[i].links.get_mut(&id).expect("the link");
                link.candidates_before_description += usize::from(!described);
                link.remote_candidates.push(candidate);
            }
            LinkAction::StartMedia => {
                self.peers[i].links.get_mut(&id).unwrap().media_started = true;
            }
            LinkAction::Screen(route) => {
                self.peers[i].links.get_mut(&id).expect("the link").screen = route;
            }
            LinkAction::SendChat(message) => {
                let link = &self.peers[i].links[&id];
                match link.remote.filter(|_| link.chat_open) {
                    Some((peer, remote)) => {
                        let bytes = message.to_json().into_bytes();
                        self.send_link_event(peer, remote, LinkEvent::ChatMessage(bytes));
                    }
                    None => self.send_link_event(i, id, LinkEvent::ChatNotSent(message)),
                }
            }
            action @ (LinkAction::SendFile { .. }
            | LinkAction::ReceiveFile { .. }
            | LinkAction::StopFile { .. }) => {
                let link = self.peers[i].links.get_mut(&id).expect("the link");
                link.file_actions.push(action);
            }
            LinkAction::Close(closed) => {
                let camera_open = self.peers[i].camera_open;
                let link = self.peers[i].links.get_mut(&id).expect("the link");
                assert!(link.closed.is_none(), "closed twice");
                link.camera_open_at_close = camera_open;
                link.closed = Some(closed);
                if let Some((peer, remote)) = link.remote.filter(|_| link.chat_open) {
                    let bye = ChatMessage::Bye.to_json().into_bytes();
                    self.send_link_event(peer, remote, LinkEvent::ChatMessage(bye));
                }
            }
        }
    }

    /// The link a session description names.
    /// The fake session description of peer `i`'s link `id`: its place in the registry.
    fn own_description(&self, i: usize, id: LinkId) -> String {
        let index = self.registry.iter().position(|&link| link == (i, id));
        index.expect("a registered link").to_string()
    }

    pub fn remote_of(&self, sdp: &str) -> (usize, LinkId) {
        self.registry[sdp.parse::<usize>().expect("a fake session description")]
    }

    /// The peer `i` vanishes (its process killed): its links go quiet.
    pub fn vanish(&mut self, i: usize) {
        self.peers[i].gone = true;
        let remotes: Vec<(usize, LinkId)> = self.peers[i]
            .links
            .values()
            .filter_map(|l| l.remote)
            .collect();
        for (peer, link) in remotes {
            self.send_link_event(peer, link, LinkEvent::Disconnected);
        }
        self.settle();
    }
}

pub const ALICE: usize = 0;
pub const BOB: usize = 1;
pub const CAROL: usize = 2;

pub fn connected(world: &World, peer: usize) -> bool {
    matches!(world.peers[peer].state(), CallState::Connected { .. })
}
