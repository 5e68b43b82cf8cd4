//! Group calls (protocol v2): one link to every other member, set up as the server's
//! rules say. The members already in a call offer to whoever joins; the joiner answers
//! every offer without asking its user again (joining was the consent). A call of two
//! becomes a group when either side invites someone or the peer's group grows.
//!
//! Each member has its own connection timeouts: one that cannot be reached is marked
//! unreachable (the others are unaffected), one whose connection stays down is dropped. The
//! call ends when nobody else is left.

use std::collections::BTreeMap;
use std::time::Instant;

use confab_protocol::{
    CallId, ClientMessage, HangupReason, MAX_CALL_MEMBERS, PeerId, PeerInfo, ServerMessage,
};
use tracing::debug;

use super::{CallCore, Event, LinkAction, LinkId, Output, Problem};
use crate::machine::{CallEnd, CallState, Member, MemberStatus, Role};
use crate::restart::IceRestart;

/// The first protocol version with group calls.
const GROUPS_VERSION: u32 = 2;

pub(super) struct GroupCall {
    pub(super) id: CallId,
    /// Everyone else, in the order they came (the map's order is by arrival number).
    members: BTreeMap<u64, Seat>,
    next: u64,
}

struct Seat {
    peer: PeerId,
    name: String,
    status: MemberStatus,
    link: Option<LinkId>,
    /// When the current status began.
    since: Instant,
    /// What the member said of its switches.
    muted: bool,
    camera_off: bool,
    sharing: bool,
    /// The server lost the member's connection: once our link to it drops too, it is gone.
    signal_gone: bool,
    /// We answered the member's offer (it offered to us when we joined): when both restart
    /// ICE at once, we take its offer instead of ours.
    answered: bool,
    restart: IceRestart,
}

impl GroupCall {
    fn seat(&self, peer: &PeerId) -> Option<(u64, &Seat)> {
        self.members
            .iter()
            .find(|(_, s)| s.peer == *peer)
            .map(|(n, s)| (*n, s))
    }

    fn seat_mut(&mut self, peer: &PeerId) -> Option<&mut Seat> {
        self.members.values_mut().find(|s| s.peer == *peer)
    }

    fn add(&mut self, peer: PeerId, name: String, status: MemberStatus, now: Instant) {
        if self.seat(&peer).is_some() {
            return;
        }
        self.members.insert(
            self.next,
            Seat {
                peer,
                name,
                status,
                link: None,
                since: now,
                muted: false,
                camera_off: false,
                sharing: false,
                signal_gone: false,
                answered: false,
                restart: IceRestart::default(),
            },
        );
        self.next += 1;
    }

    fn remove(&mut self, peer: &PeerId) -> Option<Seat> {
        let (n, _) = self.seat(peer)?;
        self.members.remove(&n)
    }

    fn view(&self) -> CallState {
        CallState::Group {
            members: self
                .members
                .values()
                .map(|s| Member {
                    peer: s.peer.clone(),
                    name: s.name.clone(),
                    status: s.status,
                    muted: s.muted,
                    camera_off: s.camera_off,
                    sharing: s.sharing,
                })
                .collect(),
        }
    }

    fn names(&self) -> String {
        let names: Vec<&str> = self.members.values().map(|s| s.name.as_str()).collect();
        names.join(", ")
    }
}

impl CallCore {
    /// The call id of the call in progress, group or not.
    pub(super) fn call_id(&self) -> Option<CallId> {
        match &self.group {
            Some(group) => Some(group.id.clone()),
            None => self.machine.current().map(|(id, _)| id.clone()),
        }
    }

    /// The user asks `peer` into the call.
    pub(super) fn invite(&mut self, peer: PeerId, now: Instant) {
        let Some(info) = self.roster.iter().find(|p| p.id == peer).cloned() else {
            self.event(Event::Problem(Problem::PeerOffline));
            return;
        };
        if info.protocol < GROUPS_VERSION {
            self.event(Event::Problem(Problem::CannotInvite(format!(
                "{}'s app cannot join group calls",
                info.name
            ))));
            return;
        }
        if self.group.is_none() && !self.form_group(now) {
            self.event(Event::Problem(Problem::CannotInvite(
                "invite people once the call is connected".into(),
            )));
            return;
        }
        let Some(group) = &mut self.group else {
            return;
        };
        if group.seat(&peer).is_some() {
            return;
        }
        if group.members.len() + 1 >= MAX_CALL_MEMBERS {
            self.event(Event::Problem(Problem::CannotInvite(format!(
                "a call has at most {MAX_CALL_MEMBERS} people"
            ))));
            return;
        }
        group.add(peer.clone(), info.name, MemberStatus::Invited, now);
        let call_id = group.id.clone();
        self.outputs
            .push_back(Output::Signal(ClientMessage::Invite { to: peer, call_id }));
        self.show_group();
    }

    /// Turns the connected call of two into a group of two. False when there is none.
    pub(super) fn form_group(&mut self, now: Instant) -> bool {
        let Some((id, peer, name, role)) = self.machine.hand_over() else {
            return false;
        };
        let link = self.link_of(&peer);
        let mut group = GroupCall {
            id,
            members: BTreeMap::new(),
            next: 0,
        };
        group.add(peer.clone(), name, MemberStatus::Connected, now);
        if let Some(seat) = group.seat_mut(&peer) {
            seat.link = link;
            seat.answered = role == Role::Callee;
        }
        self.group = Some(group);
        true
    }

    /// Accepted an invitation: we are a member; the others will offer to us.
    pub(super) fn joined(&mut self, call_id: CallId, inviter: PeerId, name: String, now: Instant) {
        let mut group = GroupCall {
            id: call_id.clone(),
            members: BTreeMap::new(),
            next: 0,
        };
        group.add(inviter, name, MemberStatus::Joining, now);
        self.group = Some(group);
        self.outputs
            .push_back(Output::Signal(ClientMessage::Join { call_id }));
        // The self-view comes on with the call, as for a call of two.
        if self.camera_wanted {
            self.open_camera();
        }
        self.show_group();
    }

    /// A server message while a group call is on. Returns it when it is not the group's.
    pub(super) fn group_signal(
        &mut self,
        message: ServerMessage,
        now: Instant,
    ) -> Option<ServerMessage> {
        let Some(group) = self.group.as_mut() else {
            return Some(message);
        };
        let ours = |call_id: &CallId| *call_id == group.id;
        match message {
            ServerMessage::Members { call_id, members } if ours(&call_id) => {
                for member in members {
                    let status = MemberStatus::Joining;
                    group.add(member.id, member.name, status, now);
                }
                self.show_group();
            }
            ServerMessage::MemberJoined { call_id, peer } if ours(&call_id) => {
                self.member_joined(peer, now);
            }
            ServerMessage::MemberLeft {
                call_id,
                id,
                reason,
            } if ours(&call_id) => {
                self.member_gone(&id, reason);
            }
            ServerMessage::Offer {
                from, call_id, sdp, ..
            } if ours(&call_id) && group.seat(&from).is_some() => {
                self.member_offer(from, sdp, now);
            }
            ServerMessage::Answer { from, call_id, sdp } if ours(&call_id) => {
                if let Some(seat) = group.seat_mut(&from)
                    && let Some(link) = seat.link
                {
                    seat.restart.offer_settled();
                    self.outputs
                        .push_back(Output::Link(link, LinkAction::ApplyAnswer(sdp)));
                }
            }
            ServerMessage::Candidate {
                from,
                call_id,
                candidate,
            } if ours(&call_id) => {
                if let Some(link) = group.seat(&from).and_then(|(_, s)| s.link) {
                    self.add_candidate(link, candidate);
                }
            }
            ServerMessage::Hangup {
                from,
                call_id,
                reason,
            } if ours(&call_id) => {
                let seat = group.seat(&from).map(|(_, s)| (s.status, s.name.clone()));
                match seat {
                    Some((MemberStatus::Invited, name)) => {
                        group.remove(&from);
                        let end = CallEnd {
                            peer_name: name,
                            reason,
                            by_peer: true,
                            detail: None,
                        };
                        self.event(Event::Problem(Problem::CannotInvite(end.describe())));
                        self.show_group_or_end();
                    }
                    Some(_) => self.member_gone(&from, reason),
                    None => {}
                }
            }
            // Anyone else calling us is told we are busy, as in a call of two.
            ServerMessage::Offer { from, call_id, .. } => self.busy(from, call_id),
            ServerMessage::Invite { from, call_id, .. } if !ours(&call_id) => {
                self.busy(from, call_id);
            }
            ServerMessage::Error {
                message,
                call_id: Some(call_id),
                ..
            } if ours(&call_id) => {
                // An invitation the server refused (the call is full, say): forget the
                // invitations still waiting for an answer from the server's point of view.
                let refused: Vec<PeerId> = group
                    .members
                    .values()
                    .filter(|s| s.status == MemberStatus::Invited)
                    .map(|s| s.peer.clone())
                    .collect();
                if let Some(last) = refused.last() {
                    group.remove(last);
                }
                self.event(Event::Problem(Problem::CannotInvite(message)));
                self.show_group_or_end();
            }
            other => return Some(other),
        }
        None
    }

    /// The server says a member left. As for a call of two, a lost signaling connection
    /// (`failed`) says nothing about media still flowing: such a member stays while our
    /// link to it is up, and goes as soon as that drops too.
    fn member_gone(&mut self, peer: &PeerId, reason: HangupReason) {
        let seat = self.group.as_mut().and_then(|g| g.seat_mut(peer));
        match seat {
            Some(seat)
                if seat.status == MemberStatus::Connected && reason == HangupReason::Failed =>
            {
                seat.signal_gone = true;
            }
            Some(_) => self.drop_member(peer),
            None => {}
        }
    }

    /// Someone outside the group calls or invites us: we are busy, as in a call of two.
    fn busy(&mut self, to: PeerId, call_id: CallId) {
        let hangup = ClientMessage::Hangup {
            to,
            call_id,
            reason: HangupReason::Busy,
        };
        self.outputs.push_back(Output::Signal(hangup));
    }

    /// `peer` joined: we were here first, so we offer to it.
    fn member_joined(&mut self, peer: PeerInfo, now: Instant) {
        let Some(group) = &mut self.group else {
            return;
        };
        match group.seat_mut(&peer.id) {
            Some(seat) => {
                seat.status = MemberStatus::Joining;
                seat.since = now;
            }
            None => group.add(
                peer.id.clone(),
                peer.name.clone(),
                MemberStatus::Joining,
                now,
            ),
        }
        let link = self.start_link(peer.id.clone(), peer.name, Role::Caller, None);
        if let Some(seat) = self.group.as_mut().and_then(|g| g.seat_mut(&peer.id)) {
            seat.link = Some(link);
        }
        self.show_group();
    }

    /// A member's offer: the first one sets up our link to it (we joined, so we answer),
    /// a later one renegotiates.
    fn member_offer(&mut self, from: PeerId, sdp: String, now: Instant) {
        let existing = self
            .group
            .as_ref()
            .and_then(|g| g.seat(&from))
            .and_then(|(_, s)| s.link);
        if let Some(link) = existing {
            // A renegotiation (an ICE restart). Both at once: the member who made the first
            // offer wins.
            if let Some(seat) = self.group.as_mut().and_then(|g| g.seat_mut(&from)) {
                if seat.restart.offer_pending() && !seat.answered {
                    return;
                }
                seat.restart.offer_settled();
            }
            if let Some(l) = self.links.get_mut(&link) {
                l.owed = Some(super::Owed::Answer);
            }
            self.outputs
                .push_back(Output::Link(link, LinkAction::ApplyOffer(sdp)));
            return;
        }
        let name = self
            .group
            .as_ref()
            .and_then(|g| g.seat(&from))
            .map(|(_, s)| s.name.clone())
            .unwrap_or_default();
        let link = self.start_link(from.clone(), name, Role::Callee, Some(sdp));
        if let Some(seat) = self.group.as_mut().and_then(|g| g.seat_mut(&from)) {
            seat.link = Some(link);
            seat.status = MemberStatus::Joining;
            seat.since = now;
            seat.answered = true;
        }
        self.show_group();
    }

    /// A link of the group connected: media starts on it.
    pub(super) fn member_connected(&mut self, link: LinkId, now: Instant) {
        let Some(seat) = self.seat_of_link(link) else {
            return;
        };
        seat.status = MemberStatus::Connected;
        seat.since = now;
        seat.restart.connected();
        self.start_media(link, now);
        self.show_group();
    }

    /// This computer's addresses changed: every link restarts ICE.
    pub(super) fn group_network_changed(&mut self, now: Instant) {
        if let Some(group) = &mut self.group {
            for seat in group.members.values_mut().filter(|s| s.link.is_some()) {
                seat.restart.network_changed(now);
            }
        }
        self.group_tick(now);
    }

    pub(super) fn member_disconnected(&mut self, link: LinkId, now: Instant) {
        let Some(seat) = self.seat_of_link(link) else {
            return;
        };
        if seat.signal_gone {
            // Signaling and media both gone: the member's app is gone.
            let peer = seat.peer.clone();
            self.drop_member(&peer);
            return;
        }
        if seat.status == MemberStatus::Connected {
            seat.status = MemberStatus::Reconnecting;
            seat.since = now;
            seat.restart.disconnected(now);
            self.show_group();
        }
    }

    /// The connection to one member failed: only that pair gives up (and says so).
    pub(super) fn member_unreachable(&mut self, link: LinkId, detail: &str, now: Instant) {
        let Some(seat) = self.seat_of_link(link) else {
            return;
        };
        debug!("cannot reach {}: {detail}", seat.name);
        seat.status = MemberStatus::Unreachable;
        seat.since = now;
        seat.link = None;
        let peer = seat.peer.clone();
        if let Some(call_id) = self.call_id() {
            self.outputs
                .push_back(Output::Signal(ClientMessage::Hangup {
                    to: peer,
                    call_id,
                    reason: HangupReason::Failed,
                }));
        }
        self.close_link(link);
        self.show_group();
    }

    /// A member said goodbye on its link.
    pub(super) fn member_bye(&mut self, link: LinkId) {
        if let Some(peer) = self.seat_of_link(link).map(|s| s.peer.clone()) {
            self.drop_member(&peer);
        }
    }

    /// What the member at the other end of `link` says of its switches.
    pub(super) fn member_state(
        &mut self,
        link: LinkId,
        muted: bool,
        camera_off: bool,
        sharing: bool,
    ) {
        let Some(seat) = self.seat_of_link(link) else {
            return;
        };
        let new = (muted, camera_off, sharing);
        if (seat.muted, seat.camera_off, seat.sharing) != new {
            (seat.muted, seat.camera_off, seat.sharing) = new;
            self.show_group();
        }
    }

    /// The name of the member at the other end of `link`, in a group call.
    pub(super) fn member_name(&self, link: LinkId) -> Option<String> {
        let group = self.group.as_ref()?;
        let seat = group.members.values().find(|s| s.link == Some(link))?;
        Some(seat.name.clone())
    }

    fn seat_of_link(&mut self, link: LinkId) -> Option<&mut Seat> {
        self.group
            .as_mut()?
            .members
            .values_mut()
            .find(|s| s.link == Some(link))
    }

    /// A member is gone: its link closes; the call ends when nobody is left.
    fn drop_member(&mut self, peer: &PeerId) {
        let Some(seat) = self.group.as_mut().and_then(|g| g.remove(peer)) else {
            return;
        };
        if let Some(link) = seat.link {
            self.close_link(link);
        }
        let last = seat.name;
        match &self.group {
            Some(group) if group.members.is_empty() => {
                self.end_group(last, HangupReason::Ended, true, false);
            }
            _ => self.show_group_or_end(),
        }
    }

    fn show_group_or_end(&mut self) {
        let empty = self.group.as_ref().is_some_and(|g| g.members.is_empty());
        if empty {
            self.end_group(String::new(), HangupReason::Ended, false, true);
        } else {
            self.show_group();
        }
    }

    /// The user hangs up: we leave; the others carry on without us.
    pub(super) fn leave_group(&mut self) {
        let names = self
            .group
            .as_ref()
            .map(GroupCall::names)
            .unwrap_or_default();
        self.end_group(names, HangupReason::Ended, false, true);
    }

    /// Ends our part in the group call: every link says goodbye and closes.
    fn end_group(&mut self, names: String, reason: HangupReason, by_peer: bool, tell_server: bool) {
        let Some(group) = self.group.take() else {
            return;
        };
        // Acknowledgements still awaited will not come now.
        self.group_acks.clear();
        if tell_server {
            self.outputs.push_back(Output::Signal(ClientMessage::Leave {
                call_id: group.id.clone(),
            }));
        }
        for seat in group.members.values() {
            if seat.status == MemberStatus::Invited {
                self.outputs
                    .push_back(Output::Signal(ClientMessage::Hangup {
                        to: seat.peer.clone(),
                        call_id: group.id.clone(),
                        reason: HangupReason::Cancelled,
                    }));
            }
        }
        self.close_camera();
        self.stop_sharing();
        let end = CallEnd {
            peer_name: names,
            reason,
            by_peer,
            detail: None,
        };
        let action = self.machine.show(CallState::Ended(end));
        self.perform_one(action);
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for link in links {
            self.close_link(link);
        }
    }

    fn close_link(&mut self, id: LinkId) {
        let Some(mut link) = self.links.remove(&id) else {
            return;
        };
        self.files.link_closed(id);
        for event in link.chat.close() {
            self.event(Event::Chat(event));
        }
        let closed = link.closed(self.machine.state().clone());
        self.outputs
            .push_back(Output::Link(id, LinkAction::Close(closed)));
    }

    pub(super) fn show_group(&mut self) {
        if let Some(view) = self.group.as_ref().map(GroupCall::view) {
            let action = self.machine.show(view);
            self.perform_one(action);
        }
    }

    /// Members that could not connect in time become unreachable; connections that stay
    /// down drop their member.
    pub(super) fn group_tick(&mut self, now: Instant) {
        let timeouts = self.machine.timeouts();
        let Some(group) = &self.group else {
            return;
        };
        let mut unreachable = Vec::new();
        let mut lost = Vec::new();
        for seat in group.members.values() {
            match seat.status {
                MemberStatus::Joining if now >= seat.since + timeouts.connect => {
                    unreachable.push((seat.peer.clone(), seat.link));
                }
                MemberStatus::Reconnecting if now >= seat.since + timeouts.disconnected => {
                    lost.push(seat.peer.clone());
                }
                _ => {}
            }
        }
        for (peer, link) in unreachable {
            match link {
                Some(link) => self.member_unreachable(link, "could not connect", now),
                None => {
                    if let Some(seat) = self.group.as_mut().and_then(|g| g.seat_mut(&peer)) {
                        seat.status = MemberStatus::Unreachable;
                        seat.since = now;
                    }
                    self.show_group();
                }
            }
        }
        for peer in lost {
            self.drop_member(&peer);
        }
        // ICE restarts that are due (a link down 2 s, or our addresses changed).
        let online = self.machine.is_online();
        let mut restarts = Vec::new();
        if let Some(group) = &mut self.group {
            for seat in group.members.values_mut() {
                let live = matches!(
                    seat.status,
                    MemberStatus::Connected | MemberStatus::Reconnecting
                );
                if let Some(link) = seat.link.filter(|_| live)
                    && seat.restart.poll(now, online)
                {
                    restarts.push(link);
                }
            }
        }
        for link in restarts {
            if let Some(l) = self.links.get_mut(&link) {
                l.owed = Some(super::Owed::Offer);
            }
            self.outputs
                .push_back(Output::Link(link, LinkAction::RestartIce));
        }
    }

    pub(super) fn group_deadline(&self) -> Option<Instant> {
        let timeouts = self.machine.timeouts();
        let online = self.machine.is_online();
        let group = self.group.as_ref()?;
        group
            .members
            .values()
            .flat_map(|seat| {
                let status = match seat.status {
                    MemberStatus::Joining => Some(seat.since + timeouts.connect),
                    MemberStatus::Reconnecting => Some(seat.since + timeouts.disconnected),
                    _ => None,
                };
                let live = matches!(
                    seat.status,
                    MemberStatus::Connected | MemberStatus::Reconnecting
                );
                let restart = seat
                    .restart
                    .due()
                    .filter(|_| online && live && seat.link.is_some());
                [status, restart]
            })
            .flatten()
            .min()
    }
}
