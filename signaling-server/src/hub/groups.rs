//! Group calls (protocol v2): invitations, membership, and who offers to whom.
//!
//! A group call is the set of two-party calls, one between every two members, that share
//! one call id. An answered call of two becomes a group when either party invites a third
//! peer. The invitee rings like a callee (it declines, or is cancelled, with a `hangup`
//! between it and its inviter; unanswered, it times out with the ring timeout); on `join`
//! it becomes a member, the members already there hear `member_joined` and each offers to
//! it, so no two members ever offer to each other at once. `leave`, or losing the
//! connection, ends a member's calls inside the group and tells the others `member_left`.
//! A group of one member with no invitations left is forgotten.

use std::collections::HashMap;
use std::time::Instant;

use confab_protocol::{CallId, ErrorCode, HangupReason, MAX_CALL_MEMBERS, PeerId, ServerMessage};

use super::{CallState, Hub, Output, refuse, unknown_call};

/// The first protocol version with group calls.
const GROUPS_VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct GroupId(u64);

pub(super) struct Group {
    call_id: CallId,
    /// In the order they joined.
    members: Vec<PeerId>,
    invited: HashMap<PeerId, Invitation>,
}

struct Invitation {
    inviter: PeerId,
    deadline: Instant,
}

impl Group {
    fn seats(&self) -> usize {
        self.members.len() + self.invited.len()
    }
}

/// How two peers stand to each other in the group calls of one call id.
pub(super) enum Pair {
    /// Neither is in a group with that id: a two-party call as in version 1.
    Unrelated,
    /// Both are members of this group.
    Members,
    /// One invited the other into this group, which has not answered yet.
    Invitation(GroupId),
    /// Anything else: one is in a group the other is not in.
    Strangers,
}

impl Hub {
    fn group_of(&self, peer: &PeerId, call_id: &CallId) -> Option<GroupId> {
        self.peers.get(peer)?.groups.get(call_id).copied()
    }

    fn is_member(&self, group: GroupId, peer: &PeerId) -> bool {
        self.groups
            .get(&group)
            .is_some_and(|g| g.members.contains(peer))
    }

    pub(super) fn pair_in_group(&self, a: &PeerId, b: &PeerId, call_id: &CallId) -> Pair {
        match (self.group_of(a, call_id), self.group_of(b, call_id)) {
            (None, None) => Pair::Unrelated,
            (Some(g), Some(h)) if g == h => {
                let Some(group) = self.groups.get(&g) else {
                    return Pair::Strangers;
                };
                let invited_by = |x: &PeerId, y: &PeerId| {
                    group.invited.get(x).is_some_and(|inv| inv.inviter == *y)
                };
                if group.members.contains(a) && group.members.contains(b) {
                    Pair::Members
                } else if invited_by(a, b) || invited_by(b, a) {
                    Pair::Invitation(g)
                } else {
                    Pair::Strangers
                }
            }
            _ => Pair::Strangers,
        }
    }

    /// Whether a group call with id `call_id` between `from` and `to` would reach
    /// another server.
    fn group_crosses_servers(&self, from: &PeerId, to: &PeerId, call_id: &CallId) -> bool {
        let remote = |id: &PeerId| self.home_of(id).is_some();
        if remote(to) {
            return true;
        }
        let Some(peer) = self.peers.get(from) else {
            return false;
        };
        let in_group = peer
            .groups
            .get(call_id)
            .and_then(|g| self.groups.get(g))
            .is_some_and(|g| g.members.iter().any(remote));
        let in_pair = peer
            .calls
            .iter()
            .any(|key| key.call_id == *call_id && (remote(&key.low) || remote(&key.high)));
        in_group || in_pair
    }

    /// `invite`: `from` asks `to` into the group call `call_id`.
    pub(super) fn invite(
        &mut self,
        from: &PeerId,
        to: &PeerId,
        call_id: &CallId,
        now: Instant,
    ) -> Vec<Output> {
        let call = Some(call_id.clone());
        if to == from {
            return vec![refuse(
                from,
                ErrorCode::UnknownPeer,
                "you cannot invite yourself",
                call,
            )];
        }
        let Some(invitee) = self.peers.get(to) else {
            let message = format!("no peer with id {to} is online");
            return vec![refuse(from, ErrorCode::UnknownPeer, &message, call)];
        };
        if self.group_crosses_servers(from, to, call_id) {
            let message = "group calls between peers on different servers are not supported yet";
            return vec![refuse(from, ErrorCode::NotSupported, message, call)];
        }
        if invitee.protocol < GROUPS_VERSION {
            let message = format!(
                "{}'s app speaks protocol {}, which has no group calls",
                invitee.name, invitee.protocol
            );
            return vec![refuse(from, ErrorCode::NotSupported, &message, call)];
        }
        if let Some(group) = self.group_of(to, call_id) {
            let message = if Some(group) == self.group_of(from, call_id) {
                format!("{} is already in this call or invited", invitee.name)
            } else {
                format!("{} is in another call with this id", invitee.name)
            };
            return vec![refuse(from, ErrorCode::BadMessage, &message, call)];
        }
        let limit = self.config.max_calls_per_peer;
        if self.calls_of(to) >= limit {
            let message = "that peer has too many calls ringing";
            return vec![refuse(from, ErrorCode::RateLimited, message, call)];
        }
        let Some(group_id) = self.group_for_inviter(from, call_id) else {
            return vec![unknown_call(from, call_id.clone())];
        };
        let Some(group) = self.groups.get_mut(&group_id) else {
            return vec![unknown_call(from, call_id.clone())];
        };
        if group.seats() >= MAX_CALL_MEMBERS {
            let message = format!(
                "a call has at most {MAX_CALL_MEMBERS} people, counting those still invited"
            );
            return vec![refuse(from, ErrorCode::CallFull, &message, call)];
        }
        group.invited.insert(
            to.clone(),
            Invitation {
                inviter: from.clone(),
                deadline: now + self.config.ring_timeout,
            },
        );
        let member_ids = group.members.clone();
        if let Some(invitee) = self.peers.get_mut(to) {
            invitee.groups.insert(call_id.clone(), group_id);
        }
        let members = member_ids.iter().filter_map(|m| self.info(m)).collect();
        let from_name = self.peers.get(from).map(|p| p.name.clone());
        vec![Output::To(
            to.clone(),
            ServerMessage::Invite {
                from: from.clone(),
                from_name: from_name.unwrap_or_default(),
                call_id: call_id.clone(),
                members,
            },
        )]
    }

    /// The group `from` may invite into: the one it is a member of, or a new one made of
    /// its answered two-party call with this id. `None` when it is in neither.
    fn group_for_inviter(&mut self, from: &PeerId, call_id: &CallId) -> Option<GroupId> {
        if let Some(group) = self.group_of(from, call_id) {
            return self.is_member(group, from).then_some(group);
        }
        let peer = self.peers.get(from)?;
        let mut answered = peer.calls.iter().filter(|key| {
            key.call_id == *call_id
                && self
                    .calls
                    .get(key)
                    .is_some_and(|c| matches!(c.state, CallState::Active))
        });
        let key = answered.next()?;
        let other = if key.low == *from {
            key.high.clone()
        } else {
            key.low.clone()
        };
        if self.group_of(&other, call_id).is_some() {
            return None;
        }
        let id = GroupId(self.next_group);
        self.next_group += 1;
        self.groups.insert(
            id,
            Group {
                call_id: call_id.clone(),
                members: vec![from.clone(), other.clone()],
                invited: HashMap::new(),
            },
        );
        for member in [from, &other] {
            if let Some(peer) = self.peers.get_mut(member) {
                peer.groups.insert(call_id.clone(), id);
            }
        }
        Some(id)
    }

    /// `join`: an invitee accepts. It learns the members; each of them learns of it and
    /// offers to it.
    pub(super) fn join_group(&mut self, from: &PeerId, call_id: &CallId) -> Vec<Output> {
        let invited = self
            .group_of(from, call_id)
            .filter(|g| !self.is_member(*g, from));
        let Some(group) = invited.and_then(|g| self.groups.get_mut(&g)) else {
            return not_in(from, call_id, "no invitation to call");
        };
        group.invited.remove(from);
        let others = group.members.clone();
        group.members.push(from.clone());
        let mut out = vec![Output::To(
            from.clone(),
            ServerMessage::Members {
                call_id: call_id.clone(),
                members: others.iter().filter_map(|m| self.info(m)).collect(),
            },
        )];
        if let Some(peer) = self.info(from) {
            for member in others {
                out.push(Output::To(
                    member,
                    ServerMessage::MemberJoined {
                        call_id: call_id.clone(),
                        peer: peer.clone(),
                    },
                ));
            }
        }
        out
    }

    /// `leave`: a member leaves; the others carry on.
    pub(super) fn leave_group(&mut self, from: &PeerId, call_id: &CallId) -> Vec<Output> {
        let member = self
            .group_of(from, call_id)
            .filter(|g| self.is_member(*g, from));
        let Some(group) = member else {
            return not_in(from, call_id, "you are not in call");
        };
        let mut out = Vec::new();
        self.remove_member(group, from, HangupReason::Ended, &mut out);
        out
    }

    /// A peer's connection is gone: it leaves every group it is in and its invitations
    /// end as if it had hung up.
    pub(super) fn leave_groups(
        &mut self,
        id: &PeerId,
        reason: HangupReason,
        out: &mut Vec<Output>,
    ) {
        let seats: Vec<(CallId, GroupId)> = match self.peers.get(id) {
            Some(peer) => peer.groups.iter().map(|(c, g)| (c.clone(), *g)).collect(),
            None => return,
        };
        for (_, group) in seats {
            if self.is_member(group, id) {
                self.remove_member(group, id, reason, out);
            } else if let Some(inviter) = self.inviter_of(group, id) {
                out.extend(self.end_invitation(group, id, &inviter, reason));
            }
        }
    }

    fn inviter_of(&self, group: GroupId, invitee: &PeerId) -> Option<PeerId> {
        let invitation = self.groups.get(&group)?.invited.get(invitee)?;
        Some(invitation.inviter.clone())
    }

    /// The `hangup` that declines (from the invitee) or cancels (from the inviter) an
    /// invitation: forwarded like any hangup, and the seat is free again.
    pub(super) fn end_invitation(
        &mut self,
        group: GroupId,
        from: &PeerId,
        to: &PeerId,
        reason: HangupReason,
    ) -> Vec<Output> {
        let Some(g) = self.groups.get_mut(&group) else {
            return Vec::new();
        };
        let call_id = g.call_id.clone();
        let invitee = if g.invited.contains_key(from) {
            from
        } else {
            to
        };
        g.invited.remove(invitee);
        if let Some(peer) = self.peers.get_mut(invitee) {
            peer.groups.remove(&call_id);
        }
        self.forget_if_alone(group);
        vec![Output::To(
            to.clone(),
            ServerMessage::Hangup {
                from: from.clone(),
                call_id,
                reason,
            },
        )]
    }

    /// Removes a member: its calls inside the group end without hangups, the invitations
    /// it made are cancelled, and the others hear `member_left`.
    fn remove_member(
        &mut self,
        group: GroupId,
        id: &PeerId,
        reason: HangupReason,
        out: &mut Vec<Output>,
    ) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        let call_id = g.call_id.clone();
        g.members.retain(|m| m != id);
        let members = g.members.clone();
        self.cancel_invitations_by(group, id, out);
        if let Some(peer) = self.peers.get_mut(id) {
            peer.groups.remove(&call_id);
        }
        let keys: Vec<_> = self
            .peers
            .get(id)
            .map(|p| {
                p.calls
                    .iter()
                    .filter(|k| k.call_id == call_id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for key in keys {
            if let Some(call) = self.calls.remove(&key) {
                self.detach(&key.low, &key, &call, out);
                self.detach(&key.high, &key, &call, out);
            }
        }
        for member in members {
            out.push(Output::To(
                member,
                ServerMessage::MemberLeft {
                    call_id: call_id.clone(),
                    id: id.clone(),
                    reason,
                },
            ));
        }
        self.forget_if_alone(group);
    }

    /// Two members hung up on each other: in a group of two that ends the call (and the
    /// invitations either made); in a larger one only that pair's connection.
    pub(super) fn pair_hung_up(&mut self, from: &PeerId, call_id: &CallId, out: &mut Vec<Output>) {
        let Some(group) = self.group_of(from, call_id) else {
            return;
        };
        let pair_was_the_call = self
            .groups
            .get(&group)
            .is_some_and(|g| g.members.len() <= 2);
        if !pair_was_the_call {
            return;
        }
        let members = self
            .groups
            .get(&group)
            .map(|g| g.members.clone())
            .unwrap_or_default();
        for member in members {
            self.cancel_invitations_by(group, &member, out);
            if let Some(peer) = self.peers.get_mut(&member) {
                peer.groups.remove(call_id);
            }
        }
        self.groups.remove(&group);
    }

    /// Cancels the invitations `inviter` made into `group` (a `hangup` `cancelled` to each
    /// invitee).
    fn cancel_invitations_by(&mut self, group: GroupId, inviter: &PeerId, out: &mut Vec<Output>) {
        let invitees: Vec<PeerId> = self.groups.get(&group).map_or_else(Vec::new, |g| {
            g.invited
                .iter()
                .filter(|(_, inv)| inv.inviter == *inviter)
                .map(|(invitee, _)| invitee.clone())
                .collect()
        });
        for invitee in invitees {
            out.extend(self.end_invitation(group, inviter, &invitee, HangupReason::Cancelled));
        }
    }

    /// Forgets a group that no longer joins anyone: one member (or none) and no
    /// invitations.
    fn forget_if_alone(&mut self, group: GroupId) {
        let Some(g) = self.groups.get(&group) else {
            return;
        };
        if g.members.len() > 1 || !g.invited.is_empty() {
            return;
        }
        let call_id = g.call_id.clone();
        for member in g.members.clone() {
            if let Some(peer) = self.peers.get_mut(&member) {
                peer.groups.remove(&call_id);
            }
        }
        self.groups.remove(&group);
    }

    /// Invitations nobody answered in time end with `timeout` on both sides.
    pub(super) fn expire_invitations(&mut self, now: Instant, out: &mut Vec<Output>) {
        let expired: Vec<(GroupId, PeerId, PeerId)> = self
            .groups
            .iter()
            .flat_map(|(id, g)| {
                g.invited
                    .iter()
                    .filter(|(_, inv)| inv.deadline <= now)
                    .map(|(invitee, inv)| (*id, invitee.clone(), inv.inviter.clone()))
            })
            .collect();
        for (group, invitee, inviter) in expired {
            let call_id = self.groups.get(&group).map(|g| g.call_id.clone());
            out.extend(self.end_invitation(group, &invitee, &inviter, HangupReason::Timeout));
            if let Some(call_id) = call_id {
                out.push(Output::To(
                    invitee,
                    ServerMessage::Hangup {
                        from: inviter,
                        call_id,
                        reason: HangupReason::Timeout,
                    },
                ));
            }
        }
    }

    pub(super) fn invitation_deadlines(&self) -> impl Iterator<Item = Instant> + '_ {
        self.groups
            .values()
            .flat_map(|g| g.invited.values().map(|inv| inv.deadline))
    }
}

/// The members of a group as a list, for tests.
#[cfg(test)]
impl Hub {
    pub(super) fn members(&self, member: &PeerId, call_id: &CallId) -> Vec<String> {
        let Some(group) = self
            .group_of(member, call_id)
            .and_then(|g| self.groups.get(&g))
        else {
            return Vec::new();
        };
        group
            .members
            .iter()
            .filter_map(|m| Some(self.info(m)?.name))
            .collect()
    }
}

/// An `unknown_call` refusal: `what` and the call's id.
fn not_in(to: &PeerId, call_id: &CallId, what: &str) -> Vec<Output> {
    let message = format!("{what} {call_id}");
    vec![refuse(
        to,
        ErrorCode::UnknownCall,
        &message,
        Some(call_id.clone()),
    )]
}
