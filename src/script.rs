//! What `--call NAME` and `--chat TEXT` do, in one place for the desktop app and `confab
//! headless`: call the first name (any case) the first time it is in the list, invite the
//! other names into the call once it is connected (a group call), and send the texts once
//! per call, when its chat first opens. It reads engine events and returns commands;
//! whoever runs it sends them its own way (the app through its `apply`).

use confab_call::{CallState, ChatEvent, Command, EngineEvent};
use confab_protocol::PeerInfo;

#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The first is called; the others are invited once the call is connected.
    call: Vec<String>,
    chat: Vec<String>,
    called: bool,
    invited: Vec<String>,
    roster: Vec<PeerInfo>,
    connected: bool,
    chatted: bool,
}

impl Script {
    pub fn new(call: Vec<String>, chat: Vec<String>) -> Script {
        Script {
            call,
            chat,
            ..Script::default()
        }
    }

    /// The name to call, until the call has been placed.
    pub fn waiting_to_call(&self) -> Option<&str> {
        self.call
            .first()
            .map(String::as_str)
            .filter(|_| !self.called)
    }

    /// Starts over, as after logging in again: the call is placed again.
    pub fn restart(&mut self) {
        self.called = false;
        self.invited.clear();
    }

    /// The commands `event` calls for.
    pub fn on_event(&mut self, event: &EngineEvent) -> Vec<Command> {
        match event {
            EngineEvent::Roster(peers) => {
                self.roster = peers.clone();
                if let Some(name) = self.waiting_to_call()
                    && let Some(peer) = self.find(name)
                {
                    self.called = true;
                    return vec![Command::Call { peer }];
                }
                self.invitations()
            }
            EngineEvent::Call(CallState::Connected { .. } | CallState::Group { .. }) => {
                self.connected = true;
                self.invitations()
            }
            EngineEvent::Call(CallState::Ended(_)) => {
                self.connected = false;
                self.chatted = false;
                Vec::new()
            }
            EngineEvent::Chat(ChatEvent::Open) if !self.chatted => {
                self.chatted = true;
                self.chat.iter().cloned().map(Command::SendChat).collect()
            }
            _ => Vec::new(),
        }
    }

    fn find(&self, name: &str) -> Option<confab_protocol::PeerId> {
        let peer = self
            .roster
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))?;
        Some(peer.id.clone())
    }

    /// Invitations for the names after the first, once connected and once they are online.
    fn invitations(&mut self) -> Vec<Command> {
        if !self.connected || !self.called {
            return Vec::new();
        }
        let mut commands = Vec::new();
        for name in self.call.iter().skip(1) {
            if self.invited.contains(name) {
                continue;
            }
            if let Some(peer) = self.find(name) {
                self.invited.push(name.clone());
                commands.push(Command::Invite { peer });
            }
        }
        commands
    }
}

#[cfg(test)]
mod tests {
    use confab_protocol::{PeerId, PeerInfo};

    use super::*;

    fn roster(names: &[&str]) -> EngineEvent {
        EngineEvent::Roster(
            names
                .iter()
                .enumerate()
                .map(|(i, name)| PeerInfo {
                    id: PeerId::new(format!("peer{i}")).expect("valid id"),
                    name: (*name).into(),
                    busy: false,
                    protocol: confab_protocol::PROTOCOL_VERSION,
                })
                .collect(),
        )
    }

    #[test]
    fn calls_the_name_once_it_appears_in_any_case_and_only_once() {
        let mut script = Script::new(vec!["bob".into()], Vec::new());
        assert!(script.on_event(&roster(&["Alice"])).is_empty());
        assert_eq!(script.waiting_to_call(), Some("bob"));
        assert_eq!(
            script.on_event(&roster(&["Alice", "Bob"])),
            vec![Command::Call {
                peer: PeerId::new("peer1").expect("valid id")
            }]
        );
        assert_eq!(script.waiting_to_call(), None);
        assert!(script.on_event(&roster(&["Bob"])).is_empty());
        script.restart();
        assert_eq!(script.on_event(&roster(&["Bob"])).len(), 1);
    }

    #[test]
    fn sends_the_texts_in_order_once_per_call() {
        let mut script = Script::new(Vec::new(), vec!["hello".into(), "bye".into()]);
        assert!(script.on_event(&roster(&["Bob"])).is_empty());
        let sent = vec![
            Command::SendChat("hello".into()),
            Command::SendChat("bye".into()),
        ];
        assert_eq!(script.on_event(&EngineEvent::Chat(ChatEvent::Open)), sent);
        // A group call opens one chat channel per member: the texts go once.
        assert!(
            script
                .on_event(&EngineEvent::Chat(ChatEvent::Open))
                .is_empty()
        );
        let end = confab_call::CallEnd {
            peer_name: "Bob".into(),
            reason: confab_protocol::HangupReason::Ended,
            by_peer: true,
            detail: None,
        };
        script.on_event(&EngineEvent::Call(CallState::Ended(end)));
        assert_eq!(script.on_event(&EngineEvent::Chat(ChatEvent::Open)), sent);
    }

    #[test]
    fn invites_the_other_names_once_connected_and_online() {
        let mut script = Script::new(
            vec!["Bob".into(), "Carol".into(), "Dave".into()],
            Vec::new(),
        );
        assert_eq!(script.on_event(&roster(&["Bob", "Carol"])).len(), 1);
        let connected = EngineEvent::Call(CallState::Connected {
            peer: PeerId::new("peer0").expect("valid id"),
            peer_name: "Bob".into(),
            reconnecting: false,
        });
        assert_eq!(
            script.on_event(&connected),
            vec![Command::Invite {
                peer: PeerId::new("peer1").expect("valid id")
            }]
        );
        assert!(script.on_event(&connected).is_empty(), "invited once");
        assert_eq!(
            script.on_event(&roster(&["Bob", "Carol", "Dave"])),
            vec![Command::Invite {
                peer: PeerId::new("peer2").expect("valid id")
            }]
        );
    }
}
