//! Whole calls between call cores in memory, in fake time (like quinn-proto's `Pair`): a
//! tiny signaling server routes what each core sends, and fake links stand in for peer
//! connections (their session descriptions name the link, so the two ends find each
//! other). No sockets, no sleeps, no clock but the one the test moves.

// A test: it may panic, and it reads the clock once, for the start of its fake time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use confab_call_core::machine::{CallEnd, CallState, Role, Timeouts};
use confab_call_core::{
    CallCore, ChatEvent, Command, Event, Input, LinkAction, LinkClosed, LinkEvent, LinkId, Output,
    Problem, Randomness, Signaling,
};
use confab_protocol::chat::ChatMessage;
use confab_protocol::{
    CallId, ClientMessage, HangupReason, IceCandidate, PeerId, PeerInfo, ServerMessage,
};

/// Counts up: ids are unique and the same on every run.
struct Counter(u128);

impl Randomness for Counter {
    fn random_u128(&mut self) -> u128 {
        self.0 += 1;
        self.0
    }
}

#[derive(Debug, Default)]
struct FakeLink {
    /// The other end: (peer index, its link).
    remote: Option<(usize, LinkId)>,
    connected: bool,
    chat_open: bool,
    media_started: bool,
    remote_candidates: Vec<Option<IceCandidate>>,
    /// Remote candidates given to the link before its peer sent its offer or answer.
    candidates_before_description: usize,
    closed: Option<LinkClosed>,
    camera_open_at_close: bool,
}

struct Peer {
    name: &'static str,
    id: PeerId,
    core: CallCore,
    events: Vec<Event>,
    signals_sent: Vec<ClientMessage>,
    links: BTreeMap<LinkId, FakeLink>,
    camera_open: bool,
    microphone_opened: usize,
    /// A vanished peer: its process is gone, nothing it would send leaves.
    gone: bool,
}

impl Peer {
    fn chats(&self) -> Vec<&ChatEvent> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Chat(chat) => Some(chat),
                _ => None,
            })
            .collect()
    }

    fn state(&self) -> &CallState {
        self.core.state()
    }

    fn ended(&self) -> &CallEnd {
        match self.state() {
            CallState::Ended(end) => end,
            other => panic!("{} is {other:?}, not ended", self.name),
        }
    }

    /// What the driver was told when the call's first link closed.
    fn first_link_closed(&self) -> LinkClosed {
        let link = self.links.values().next().expect("a link");
        link.closed.clone().expect("the link closed")
    }

    fn link(&self) -> &FakeLink {
        let mut open = self.links.values().filter(|l| l.closed.is_none());
        let link = open.next().expect("an open link");
        assert!(open.next().is_none(), "one open link");
        link
    }
}

/// Peers, a signaling server between them, and the time.
struct World {
    peers: Vec<Peer>,
    now: Instant,
    /// (to peer, what) waiting to be delivered.
    pending: VecDeque<(usize, Input)>,
    /// Every link started, by the number its session description carries.
    registry: Vec<(usize, LinkId)>,
    /// Whether chat channels open once connected (a lost handshake keeps one shut).
    chat_opens: bool,
}

const NAMES: [&str; 3] = ["Alice", "Bob", "Carol"];

impl World {
    /// Alice and Bob, Alice has called and Bob accepted.
    fn in_a_call() -> World {
        let mut w = World::new(2);
        w.call(ALICE, BOB);
        w.command(BOB, Command::Accept);
        w
    }

    fn new(count: usize) -> World {
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
                microphone_opened: 0,
                gone: false,
            })
            .collect();
        let roster: Vec<PeerInfo> = peers
            .iter()
            .map(|p| PeerInfo {
                id: p.id.clone(),
                name: p.name.to_owned(),
                busy: false,
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
        }
    }

    fn index(&self, id: &PeerId) -> Option<usize> {
        self.peers.iter().position(|p| &p.id == id)
    }

    fn command(&mut self, peer: usize, command: Command) {
        let now = self.now;
        self.peers[peer].core.handle(Input::Command(command), now);
        self.settle();
    }

    fn call(&mut self, from: usize, to: usize) {
        let peer = self.peers[to].id.clone();
        self.command(from, Command::Call { peer });
    }

    fn chat(&mut self, from: usize, text: &str) {
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
    fn advance(&mut self, by: Duration) {
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
    fn settle(&mut self) {
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

    fn send_link_event(&mut self, peer: usize, link: LinkId, event: LinkEvent) {
        self.pending.push_back((peer, Input::Link(link, event)));
    }

    fn perform(&mut self, i: usize, output: Output) {
        if self.peers[i].gone {
            return;
        }
        match output {
            Output::Signal(message) => self.server(i, message),
            Output::Event(event) => self.peers[i].events.push(event),
            Output::OpenCamera => self.peers[i].camera_open = true,
            Output::CloseCamera => self.peers[i].camera_open = false,
            Output::OpenMicrophone => self.peers[i].microphone_opened += 1,
            Output::Link(id, action) => self.link_action(i, id, action),
        }
    }

    /// The signaling server: stamps the sender and forwards.
    fn server(&mut self, from: usize, message: ClientMessage) {
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
            other => panic!("unexpected {other:?}"),
        };
        if let Some(to) = self.index(&to) {
            let input = Input::Signaling(Signaling::Message(forwarded));
            self.pending.push_back((to, input));
        }
    }

    fn link_action(&mut self, i: usize, id: LinkId, action: LinkAction) {
        match action {
            LinkAction::Start { role, remote_offer } => {
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
                self.send_link_event(i, id, LinkEvent::LocalDescription("renegotiated".into()));
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
    fn remote_of(&self, sdp: &str) -> (usize, LinkId) {
        self.registry[sdp.parse::<usize>().expect("a fake session description")]
    }

    /// The peer `i` vanishes (its process killed): its links go quiet.
    fn vanish(&mut self, i: usize) {
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

const ALICE: usize = 0;
const BOB: usize = 1;
const CAROL: usize = 2;

fn connected(world: &World, peer: usize) -> bool {
    matches!(world.peers[peer].state(), CallState::Connected { .. })
}

#[test]
fn a_call_connects_with_offer_answer_and_candidates_then_hangs_up() {
    let mut w = World::new(2);
    w.call(ALICE, BOB);
    assert!(matches!(w.peers[ALICE].state(), CallState::Outgoing { .. }));
    assert!(matches!(w.peers[BOB].state(), CallState::Incoming { .. }));
    assert!(
        w.peers[ALICE].camera_open,
        "the caller's camera comes on with the call"
    );

    w.advance(Duration::from_secs(2));
    w.command(BOB, Command::Accept);
    assert!(connected(&w, ALICE) && connected(&w, BOB));
    for peer in [ALICE, BOB] {
        let link = w.peers[peer].link();
        assert!(link.media_started, "{}", w.peers[peer].name);
        assert_eq!(w.peers[peer].microphone_opened, 1);
        assert!(w.peers[peer].camera_open);
        // The other side's candidate and its end of candidates arrived.
        assert_eq!(link.remote_candidates.len(), 2, "{}", w.peers[peer].name);
        assert!(link.remote_candidates[1].is_none());
        // Bob's came while he was ringing; they reached his connection only after his
        // answer went out, so his checks cannot overtake it.
        assert_eq!(
            link.candidates_before_description, 0,
            "{}",
            w.peers[peer].name
        );
    }

    w.command(ALICE, Command::HangUp);
    assert_eq!(w.peers[ALICE].ended().reason, HangupReason::Ended);
    let bob_end = w.peers[BOB].ended();
    assert_eq!(
        (bob_end.reason, bob_end.by_peer),
        (HangupReason::Ended, true)
    );
    for peer in [ALICE, BOB] {
        assert!(!w.peers[peer].camera_open, "the camera is released");
        let closed = w.peers[peer].links.values().next().unwrap();
        assert!(!closed.camera_open_at_close, "the camera goes off first");
        assert!(
            matches!(
                &closed.closed,
                Some(LinkClosed {
                    state: CallState::Ended(_),
                    ..
                })
            ),
            "{closed:?}"
        );
    }
}

#[test]
fn the_callee_creates_and_sends_nothing_before_accepting_and_declining_sends_only_declined() {
    let mut w = World::new(2);
    w.call(ALICE, BOB);
    w.advance(Duration::from_secs(5));
    let bob = &w.peers[BOB];
    assert!(bob.links.is_empty() && !bob.camera_open && bob.signals_sent.is_empty());

    w.command(BOB, Command::Decline);
    let bob = &w.peers[BOB];
    assert!(bob.links.is_empty() && !bob.camera_open);
    assert!(matches!(
        bob.signals_sent[..],
        [ClientMessage::Hangup {
            reason: HangupReason::Declined,
            ..
        }]
    ));
    let alice = w.peers[ALICE].ended();
    assert_eq!(
        (alice.reason, alice.by_peer),
        (HangupReason::Declined, true)
    );
    assert!(!w.peers[ALICE].camera_open);
}

#[test]
fn a_third_caller_gets_busy_and_the_call_goes_on() {
    let mut w = World::new(3);
    w.call(ALICE, BOB);
    w.command(BOB, Command::Accept);
    w.call(CAROL, BOB);
    let carol = w.peers[CAROL].ended();
    assert_eq!((carol.reason, carol.by_peer), (HangupReason::Busy, true));
    assert!(connected(&w, ALICE) && connected(&w, BOB));
    // Carol's link was closed; Bob never made one for her.
    assert_eq!(w.peers[BOB].links.len(), 1);
    assert!(w.peers[CAROL].links.values().all(|l| l.closed.is_some()));
}

#[test]
fn glare_the_lower_id_keeps_its_call_and_the_other_answers_it() {
    let mut w = World::new(2);
    // Both call at once: neither hears the other's offer before sending its own.
    let (alice_id, bob_id) = (w.peers[ALICE].id.clone(), w.peers[BOB].id.clone());
    let now = w.now;
    w.peers[ALICE]
        .core
        .handle(Input::Command(Command::Call { peer: bob_id }), now);
    w.peers[BOB]
        .core
        .handle(Input::Command(Command::Call { peer: alice_id }), now);
    w.settle();
    assert!(connected(&w, ALICE) && connected(&w, BOB));
    // Bob (the higher id) dropped his own call: his first link is closed, the second is up.
    let bob_links: Vec<_> = w.peers[BOB].links.values().collect();
    assert_eq!(bob_links.len(), 2);
    assert!(bob_links[0].closed.is_some() && bob_links[1].connected);
    assert_eq!(
        w.peers[ALICE].link().remote.map(|(peer, _)| peer),
        Some(BOB)
    );
}

#[test]
fn an_unanswered_call_times_out_after_45_seconds() {
    let mut w = World::new(2);
    w.call(ALICE, BOB);
    w.advance(Duration::from_secs(44));
    assert!(matches!(w.peers[BOB].state(), CallState::Incoming { .. }));
    w.advance(Duration::from_secs(2));
    assert_eq!(w.peers[ALICE].ended().reason, HangupReason::Timeout);
    assert_eq!(w.peers[BOB].ended().reason, HangupReason::Timeout);
    assert!(w.peers[BOB].links.is_empty());
}

#[test]
fn chat_goes_both_ways_with_acknowledgements() {
    let mut w = World::in_a_call();
    w.chat(ALICE, "hello Bob");
    w.chat(BOB, "hi Alice");
    let alice = w.peers[ALICE].chats();
    assert!(matches!(alice[0], ChatEvent::Open));
    let ChatEvent::Sent { id, text, .. } = alice[1] else {
        panic!("{alice:?}")
    };
    assert_eq!(text, "hello Bob");
    assert_eq!(alice[2], &ChatEvent::Delivered { id: id.clone() });
    assert!(matches!(alice[3], ChatEvent::Received { text, .. } if text == "hi Alice"));
    let bob = w.peers[BOB].chats();
    assert!(matches!(bob[1], ChatEvent::Received { id: got, .. } if got == id));

    w.command(BOB, Command::HangUp);
    let closed = |p: usize| w.peers[p].first_link_closed();
    assert_eq!(
        (closed(ALICE).chats_sent, closed(ALICE).chats_received),
        (1, 1)
    );
    assert_eq!((closed(BOB).chats_sent, closed(BOB).chats_received), (1, 1));
}

#[test]
fn chat_before_the_call_or_too_long_is_refused_with_a_reason() {
    let mut w = World::new(2);
    w.chat(ALICE, "anyone?");
    w.chat(ALICE, &"x".repeat(4001));
    let reasons: Vec<_> = w.peers[ALICE]
        .chats()
        .into_iter()
        .map(|c| match c {
            ChatEvent::Failed {
                id: None, reason, ..
            } => reason.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(reasons[0], "not in a call");
    assert!(reasons[1].contains("4000"), "{}", reasons[1]);
}

#[test]
fn messages_wait_for_a_chat_that_never_opens_and_are_reported_not_sent_at_the_end() {
    let mut w = World::new(2);
    w.chat_opens = false;
    w.call(ALICE, BOB);
    w.command(BOB, Command::Accept);
    w.chat(ALICE, "first");
    w.chat(ALICE, "second");
    assert!(matches!(
        w.peers[ALICE].chats()[..],
        [ChatEvent::Sent { .. }, ChatEvent::Sent { .. }]
    ));
    w.command(ALICE, Command::HangUp);
    let failed: Vec<_> = w.peers[ALICE].chats()[2..]
        .iter()
        .map(|c| (*c).clone())
        .collect();
    let expected = |text: &str| ChatEvent::Failed {
        id: None,
        text: text.to_owned(),
        reason: "the call ended before the chat connected".into(),
    };
    let without_ids: Vec<_> = failed
        .into_iter()
        .map(|c| match c {
            ChatEvent::Failed {
                id: Some(_),
                text,
                reason,
            } => ChatEvent::Failed {
                id: None,
                text,
                reason,
            },
            other => other,
        })
        .collect();
    assert_eq!(without_ids, [expected("first"), expected("second")]);
    let closed = w.peers[ALICE].first_link_closed();
    assert_eq!(
        closed.chats_sent, 2,
        "both were taken, though neither went out"
    );
}

#[test]
fn a_message_the_channel_refuses_is_marked_not_sent() {
    let mut w = World::in_a_call();
    // The channel closes under Alice: the link reports the message it could not send.
    let link = *w.peers[ALICE].links.keys().next().unwrap();
    w.peers[ALICE].links.get_mut(&link).unwrap().chat_open = false;
    w.chat(ALICE, "lost?");
    let last = w.peers[ALICE].chats().last().map(|c| (*c).clone());
    assert!(
        matches!(&last, Some(ChatEvent::Failed { id: Some(_), text, reason })
            if text == "lost?" && reason.contains("closed")),
        "{last:?}"
    );
}

#[test]
fn a_peer_that_vanishes_ends_the_call_ten_seconds_after_the_connection_drops() {
    let mut w = World::in_a_call();
    w.vanish(BOB);
    w.advance(Duration::from_secs(9));
    assert!(connected(&w, ALICE), "a blip is not the end");
    w.advance(Duration::from_secs(2));
    let end = w.peers[ALICE].ended();
    assert_eq!((end.reason, end.by_peer), (HangupReason::Failed, false));
    assert!(!w.peers[ALICE].camera_open);
}

#[test]
fn calling_someone_who_left_is_a_problem_not_a_call() {
    let mut w = World::new(2);
    let now = w.now;
    w.peers[ALICE]
        .core
        .handle(Input::Signaling(Signaling::Roster(Vec::new())), now);
    w.call(ALICE, BOB);
    assert_eq!(
        w.peers[ALICE].events,
        [Event::Problem(Problem::PeerOffline)]
    );
    assert!(w.peers[ALICE].links.is_empty() && w.peers[ALICE].signals_sent.is_empty());
}

#[test]
fn the_camera_switch_and_device_changes_mid_call() {
    let mut w = World::new(2);
    w.command(ALICE, Command::SetCamera(false));
    w.call(ALICE, BOB);
    assert!(!w.peers[ALICE].camera_open, "switched off before the call");
    w.command(BOB, Command::Accept);
    w.command(ALICE, Command::SetCamera(true));
    assert!(w.peers[ALICE].camera_open);
    w.command(ALICE, Command::AudioSourceChanged);
    assert_eq!(
        w.peers[ALICE].microphone_opened, 2,
        "reopened for the new input"
    );
    // Between calls nothing is opened.
    w.command(ALICE, Command::HangUp);
    w.command(ALICE, Command::VideoSourceChanged);
    w.command(ALICE, Command::AudioSourceChanged);
    assert!(!w.peers[ALICE].camera_open);
    assert_eq!(w.peers[ALICE].microphone_opened, 2);
}

#[test]
fn messages_for_another_call_id_are_ignored() {
    let mut w = World::in_a_call();
    let from = w.peers[BOB].id.clone();
    let hangup = ServerMessage::Hangup {
        from,
        call_id: CallId::new("not-this-call").unwrap(),
        reason: HangupReason::Ended,
    };
    let now = w.now;
    w.peers[ALICE]
        .core
        .handle(Input::Signaling(Signaling::Message(hangup)), now);
    w.settle();
    assert!(connected(&w, ALICE));
}
