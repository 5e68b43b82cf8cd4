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
            server_timeout: None,
        });
        for name in names {
            hub.join(id(&name.to_lowercase()), name, 2, "secret".into())
                .unwrap();
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

/// A new connection takes a session over with its secret: same id, calls kept, nobody
/// told; a wrong secret, another name or a session gone get nothing.
#[test]
fn a_session_is_resumed_with_its_secret_only() {
    let mut f = Fixture::new(&["Alice", "Bob"]);
    f.answered("alice", "bob", "c1");
    let resume = |id_: &str, secret: &str| Resume {
        id: id(id_),
        secret: secret.into(),
    };
    assert_eq!(
        f.hub.resume(&resume("bob", "wrong"), "Bob", "s2".into()),
        None
    );
    assert_eq!(
        f.hub
            .resume(&resume("bob", "secret"), "Mallory", "s2".into()),
        None
    );
    assert_eq!(
        f.hub
            .resume(&resume("nobody", "secret"), "Bob", "s2".into()),
        None
    );
    let welcome = f.hub.resume(&resume("bob", "secret"), " Bob", "s2".into());
    let Some(ServerMessage::Welcome {
        id: me,
        peers,
        resume_secret,
        ..
    }) = welcome
    else {
        panic!("not a welcome: {welcome:?}");
    };
    assert_eq!((me, resume_secret.as_deref()), (id("bob"), Some("s2")));
    assert_eq!(
        peers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["Alice"]
    );
    // The old secret is spent; the call goes on: Bob's restart offer reaches Alice.
    assert_eq!(
        f.hub.resume(&resume("bob", "secret"), "Bob", "s3".into()),
        None
    );
    let out = f.offer("bob", "alice", "c1");
    assert!(
        matches!(&out[..], [Output::To(to, ServerMessage::Offer { .. })] if *to == id("alice"))
    );
}

#[test]
fn join_lists_others_and_announces() {
    let mut f = Fixture::new(&["Alice"]);
    let (welcome, news) = f.hub.join(id("bob"), "  Bob ", 2, "secret".into()).unwrap();
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
        f.hub.join(id("x"), "ALICE", 2, "secret".into()),
        Err(JoinError::NameTaken(_))
    ));
    assert!(matches!(
        f.hub.join(id("x"), "\n", 2, "secret".into()),
        Err(JoinError::NameInvalid(_))
    ));
    f.hub.leave(&id("alice"), true);
    assert!(f.hub.join(id("x"), "alice", 2, "secret".into()).is_ok());
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
    assert!(matches!(&out[0], Output::To(to, ServerMessage::Answer { .. }) if *to == id("alice")));
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
    assert!(matches!(&out[..], [Output::To(to, ServerMessage::Answer { .. })] if *to == id("bob")));

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
    assert!(matches!(&out[0], Output::To(to, ServerMessage::Answer { .. }) if *to == id("alice")));
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
            resume: None,
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
        assert_eq!(f.hub.local_peer_count(), 1);
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

// ---- Group calls (protocol v2) ----

impl Fixture {
    fn invite(&mut self, from: &str, to: &str, call: &str) -> Vec<Output> {
        let msg = ClientMessage::Invite {
            to: id(to),
            call_id: cid(call),
        };
        self.send(from, msg)
    }

    fn join_call(&mut self, from: &str, call: &str) -> Vec<Output> {
        self.send(from, ClientMessage::Join { call_id: cid(call) })
    }

    fn leave_call(&mut self, from: &str, call: &str) -> Vec<Output> {
        self.send(from, ClientMessage::Leave { call_id: cid(call) })
    }

    /// `a` calls `b` and `b` answers.
    fn answered(&mut self, a: &str, b: &str, call: &str) {
        assert!(error_code(&self.offer(a, b, call)).is_none());
        assert!(error_code(&self.answer(b, a, call)).is_none());
    }

    /// `inviter` brings `who` into `call`: invitation, join, and an offer from every member.
    fn brings_in(&mut self, inviter: &str, who: &str, call: &str) {
        assert!(error_code(&self.invite(inviter, who, call)).is_none());
        let out = self.join_call(who, call);
        let others: Vec<String> = match &out[0] {
            Output::To(_, ServerMessage::Members { members, .. }) => {
                members.iter().map(|m| m.id.to_string()).collect()
            }
            other => panic!("no members list: {other:?}"),
        };
        for member in others {
            self.answered(&member, who, call);
        }
    }
}

/// Who received which message types, in order.
fn deliveries(out: &[Output]) -> Vec<(String, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::To(to, msg) => {
                let json: serde_json::Value = serde_json::from_str(&msg.to_json()).ok()?;
                Some((to.to_string(), json["type"].as_str()?.to_owned()))
            }
            Output::Broadcast { .. } | Output::Cluster { .. } | Output::Kick(..) => None,
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn an_answered_call_becomes_a_group_and_the_members_offer_to_the_joiner() {
    let mut f = Fixture::new(&["Alice", "Bob", "Carol"]);
    f.answered("alice", "bob", "c1");

    let out = f.invite("alice", "carol", "c1");
    let [
        Output::To(
            to,
            ServerMessage::Invite {
                from,
                from_name,
                members,
                ..
            },
        ),
    ] = &out[..]
    else {
        panic!("not an invitation: {out:?}");
    };
    assert_eq!(
        (to, from, from_name.as_str()),
        (&id("carol"), &id("alice"), "Alice")
    );
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Alice", "Bob"]);
    assert!(members.iter().all(|m| m.busy && m.protocol == 2));

    let out = f.join_call("carol", "c1");
    let Output::To(to, ServerMessage::Members { members, .. }) = &out[0] else {
        panic!("the joiner learns the members first: {out:?}");
    };
    assert_eq!(*to, id("carol"));
    assert_eq!(members.len(), 2);
    assert_eq!(
        deliveries(&out[1..]),
        pairs(&[("alice", "member_joined"), ("bob", "member_joined")])
    );
    assert_eq!(
        f.hub.members(&id("bob"), &cid("c1")),
        ["Alice", "Bob", "Carol"]
    );

    // Each member offers to the joiner; its answers make it busy.
    for member in ["alice", "bob"] {
        let out = f.offer(member, "carol", "c1");
        assert_eq!(deliveries(&out), pairs(&[("carol", "offer")]));
        let out = f.answer("carol", member, "c1");
        assert_eq!(deliveries(&out), pairs(&[(member, "answer")]));
    }
    assert!(f.hub.info(&id("carol")).unwrap().busy);
}

#[test]
fn group_rules_are_enforced_by_the_server() {
    let mut f = Fixture::new(&["Alice", "Bob", "Carol", "Dave"]);
    f.hub.join(id("old"), "Old", 1, "secret".into()).unwrap();
    // Nobody can invite into a call they are not in, nor into one that was never answered.
    assert_eq!(
        error_code(&f.invite("alice", "carol", "c1")),
        Some(ErrorCode::UnknownCall)
    );
    assert!(error_code(&f.offer("alice", "bob", "c1")).is_none());
    assert_eq!(
        error_code(&f.invite("alice", "carol", "c1")),
        Some(ErrorCode::UnknownCall)
    );
    assert!(error_code(&f.answer("bob", "alice", "c1")).is_none());
    assert_eq!(
        error_code(&f.invite("dave", "carol", "c1")),
        Some(ErrorCode::UnknownCall),
        "a non-member invited"
    );
    assert_eq!(
        error_code(&f.invite("alice", "alice", "c1")),
        Some(ErrorCode::UnknownPeer)
    );
    assert_eq!(
        error_code(&f.invite("alice", "old", "c1")),
        Some(ErrorCode::NotSupported),
        "a version-1 client cannot join a group"
    );
    assert!(f.hub.members(&id("alice"), &cid("c1")).is_empty());

    assert!(error_code(&f.invite("alice", "carol", "c1")).is_none());
    assert_eq!(
        error_code(&f.invite("bob", "carol", "c1")),
        Some(ErrorCode::BadMessage),
        "invited twice"
    );
    // Joining needs an invitation; an invitee is not a member yet.
    assert_eq!(
        error_code(&f.join_call("dave", "c1")),
        Some(ErrorCode::UnknownCall)
    );
    assert_eq!(
        error_code(&f.join_call("carol", "nope")),
        Some(ErrorCode::UnknownCall)
    );
    assert_eq!(
        error_code(&f.offer("carol", "alice", "c1")),
        Some(ErrorCode::UnknownCall),
        "an invitee offered before joining"
    );
    assert_eq!(
        error_code(&f.offer("bob", "carol", "c1")),
        Some(ErrorCode::UnknownCall),
        "a member offered to an invitee before it joined"
    );
    assert_eq!(
        error_code(&f.leave_call("carol", "c1")),
        Some(ErrorCode::UnknownCall)
    );
    // Outsiders cannot reach into the group with its call id, nor hang up a member's seat.
    assert_eq!(
        error_code(&f.offer("dave", "alice", "c1")),
        Some(ErrorCode::UnknownCall)
    );
    assert_eq!(
        error_code(&f.hangup("dave", "bob", "c1")),
        Some(ErrorCode::UnknownCall)
    );
    assert_eq!(
        error_code(&f.hangup("dave", "carol", "c1")),
        Some(ErrorCode::UnknownCall)
    );
    assert!(error_code(&f.join_call("carol", "c1")).is_none());
    assert_eq!(
        f.hub.members(&id("alice"), &cid("c1")),
        ["Alice", "Bob", "Carol"]
    );
}

#[test]
fn a_seventh_person_is_refused() {
    let names = ["A", "B", "C", "D", "E", "F", "G", "H"];
    let mut f = Fixture::new(&names);
    f.hub.config.max_calls_per_peer = 16;
    f.answered("a", "b", "c1");
    for who in ["c", "d", "e"] {
        f.brings_in("a", who, "c1");
    }
    // Five members and one invitation ringing fill the call.
    assert!(error_code(&f.invite("b", "f", "c1")).is_none());
    let out = f.invite("c", "g", "c1");
    assert_eq!(error_code(&out), Some(ErrorCode::CallFull));
    let Output::To(_, ServerMessage::Error { message, .. }) = &out[0] else {
        unreachable!()
    };
    assert!(message.contains("at most 6"), "{message}");
    assert!(error_code(&f.join_call("f", "c1")).is_none());
    assert_eq!(f.hub.members(&id("a"), &cid("c1")).len(), 6);
    assert_eq!(
        error_code(&f.invite("a", "h", "c1")),
        Some(ErrorCode::CallFull)
    );
}

#[test]
fn declined_cancelled_and_unanswered_invitations_free_the_seat() {
    let mut f = Fixture::new(&["Alice", "Bob", "Carol"]);
    f.answered("alice", "bob", "c1");
    assert!(error_code(&f.invite("alice", "carol", "c1")).is_none());
    let out = f.send(
        "carol",
        ClientMessage::Hangup {
            to: id("alice"),
            call_id: cid("c1"),
            reason: HangupReason::Declined,
        },
    );
    assert!(
        matches!(&out[..], [Output::To(to, ServerMessage::Hangup { from, reason: HangupReason::Declined, .. })]
        if *to == id("alice") && *from == id("carol"))
    );
    assert_eq!(
        error_code(&f.join_call("carol", "c1")),
        Some(ErrorCode::UnknownCall)
    );

    // The inviter cancels.
    assert!(error_code(&f.invite("alice", "carol", "c1")).is_none());
    let out = f.hangup("alice", "carol", "c1");
    assert_eq!(deliveries(&out), pairs(&[("carol", "hangup")]));

    // Nobody answers: both sides hear `timeout` when the ring time is up.
    let at = f.t0 + Duration::from_secs(5);
    let msg = ClientMessage::Invite {
        to: id("carol"),
        call_id: cid("c1"),
    };
    assert!(error_code(&f.hub.handle(&id("bob"), msg, at)).is_none());
    assert_eq!(f.hub.next_deadline(), Some(at + RING));
    assert!(
        f.hub
            .expire(at + RING - Duration::from_millis(1))
            .is_empty()
    );
    let out = f.hub.expire(at + RING);
    assert_eq!(
        deliveries(&out),
        pairs(&[("bob", "hangup"), ("carol", "hangup")])
    );
    assert!(out.iter().all(|o| matches!(
        o,
        Output::To(
            _,
            ServerMessage::Hangup {
                reason: HangupReason::Timeout,
                ..
            }
        )
    )));
    assert_eq!(f.hub.next_deadline(), None);
    assert!(
        error_code(&f.invite("bob", "carol", "c1")).is_none(),
        "the seat is free"
    );
}

#[test]
fn members_leave_and_the_last_two_carry_on() {
    let mut f = Fixture::new(&["Alice", "Bob", "Carol", "Dave"]);
    f.answered("alice", "bob", "c1");
    f.brings_in("bob", "carol", "c1");
    // Alice invites Dave, then leaves: her invitation is cancelled, the others hear of it.
    assert!(error_code(&f.invite("alice", "dave", "c1")).is_none());
    let out = f.leave_call("alice", "c1");
    assert_eq!(
        deliveries(&out),
        pairs(&[
            ("dave", "hangup"),
            ("bob", "member_left"),
            ("carol", "member_left")
        ])
    );
    assert!(
        busy_updates(&out).contains(&("Alice".to_string(), false)),
        "{out:?}"
    );
    assert_eq!(f.hub.members(&id("bob"), &cid("c1")), ["Bob", "Carol"]);
    assert_eq!(
        error_code(&f.offer("alice", "bob", "c1")),
        Some(ErrorCode::UnknownCall),
        "Alice is no longer in the call"
    );
    // Bob and Carol carry on; their hangup ends the call for good.
    let out = f.hangup("carol", "bob", "c1");
    assert_eq!(deliveries(&out), pairs(&[("bob", "hangup")]));
    assert!(f.hub.members(&id("bob"), &cid("c1")).is_empty());
    assert!(!f.hub.info(&id("bob")).unwrap().busy);
    // The call id is free again for a new call of two.
    f.answered("bob", "carol", "c1");
}

#[test]
fn a_member_whose_connection_is_lost_leaves_the_group() {
    let mut f = Fixture::new(&["Alice", "Bob", "Carol"]);
    f.answered("alice", "bob", "c1");
    f.brings_in("alice", "carol", "c1");
    let out = f.hub.leave(&id("carol"), false);
    let told: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::To(
                to,
                ServerMessage::MemberLeft {
                    id: who, reason, ..
                },
            ) => Some((to.to_string(), who.to_string(), *reason)),
            Output::To(_, other) => panic!("only member_left goes to the members: {other:?}"),
            Output::Broadcast { .. } | Output::Cluster { .. } | Output::Kick(..) => None,
        })
        .collect();
    assert_eq!(told.len(), 2);
    assert!(
        told.iter()
            .all(|(_, who, reason)| who == "carol" && *reason == HangupReason::Failed)
    );
    assert_eq!(f.hub.members(&id("alice"), &cid("c1")), ["Alice", "Bob"]);
    // An invitee whose connection is lost is a hangup to its inviter.
    f.hub.join(id("dave"), "Dave", 2, "secret".into()).unwrap();
    assert!(error_code(&f.invite("bob", "dave", "c1")).is_none());
    let out = f.hub.leave(&id("dave"), true);
    assert!(
        matches!(&out[0], Output::To(to, ServerMessage::Hangup { reason: HangupReason::Ended, .. }) if *to == id("bob"))
    );
}
