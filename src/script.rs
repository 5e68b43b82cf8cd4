//! What `--call NAME` and `--chat TEXT` do, in one place for the desktop app and `confab
//! headless`: call that person (by name, any case) the first time they are in the list,
//! and send the texts each time a call's chat opens. It reads engine events and returns
//! commands; whoever runs it sends them its own way (the app through its `apply`).

use confab_call::{ChatEvent, Command, EngineEvent};

#[derive(Debug, Clone, Default)]
pub struct Script {
    call: Option<String>,
    chat: Vec<String>,
    called: bool,
}

impl Script {
    pub fn new(call: Option<String>, chat: Vec<String>) -> Script {
        Script {
            call,
            chat,
            called: false,
        }
    }

    /// The name to call, until the call has been placed.
    pub fn waiting_to_call(&self) -> Option<&str> {
        self.call.as_deref().filter(|_| !self.called)
    }

    /// Starts over, as after logging in again: the call is placed again.
    pub fn restart(&mut self) {
        self.called = false;
    }

    /// The commands `event` calls for.
    pub fn on_event(&mut self, event: &EngineEvent) -> Vec<Command> {
        match event {
            EngineEvent::Roster(peers) => {
                let Some(name) = self.waiting_to_call() else {
                    return Vec::new();
                };
                match peers.iter().find(|p| p.name.eq_ignore_ascii_case(name)) {
                    Some(peer) => {
                        self.called = true;
                        vec![Command::Call {
                            peer: peer.id.clone(),
                        }]
                    }
                    None => Vec::new(),
                }
            }
            EngineEvent::Chat(ChatEvent::Open) => {
                self.chat.iter().cloned().map(Command::SendChat).collect()
            }
            _ => Vec::new(),
        }
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
        let mut script = Script::new(Some("bob".into()), Vec::new());
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
    fn sends_the_texts_in_order_each_time_the_chat_opens() {
        let mut script = Script::new(None, vec!["hello".into(), "bye".into()]);
        assert!(script.on_event(&roster(&["Bob"])).is_empty());
        let sent = vec![
            Command::SendChat("hello".into()),
            Command::SendChat("bye".into()),
        ];
        assert_eq!(script.on_event(&EngineEvent::Chat(ChatEvent::Open)), sent);
        assert_eq!(script.on_event(&EngineEvent::Chat(ChatEvent::Open)), sent);
    }
}
