//! The chat of one peer link: what the user sends and receives, and what they are told.
//!
//! Messages typed before the chat channel opens wait for it, in order (it opens a round trip
//! or two after the call connects, more when a packet of its handshake is lost), at most
//! [`MAX_WAITING`] of them. Each received message is acknowledged; an acknowledgement makes
//! ours [`ChatEvent::Delivered`]. Messages still waiting when the call ends are reported
//! as not sent.

use confab_protocol::chat::{ChatError, ChatMessage};

/// How many chat messages wait for the channel to open before more are refused.
pub const MAX_WAITING: usize = 100;

/// What the user is told about the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// The chat channel is open: messages can be sent.
    Open,
    /// Our message left (not yet delivered).
    Sent {
        id: String,
        text: String,
        sent_at_ms: u64,
    },
    /// The peer confirmed it (in a group call: every member it went to).
    Delivered { id: String },
    /// In a group call: `delivered` of the `of` members it went to confirmed it so far.
    DeliveredTo {
        id: String,
        delivered: usize,
        of: usize,
    },
    Received {
        id: String,
        text: String,
        sent_at_ms: u64,
        /// Who wrote it, in a group call (in a call of two, the peer).
        from_name: Option<String>,
    },
    /// Could not be sent (too long, no call...). `id` is set for a message already
    /// reported as [`ChatEvent::Sent`] that never went out after all (it waited for the chat
    /// channel and the call ended first, or the channel closed under it).
    Failed {
        id: Option<String>,
        text: String,
        reason: String,
    },
}

/// Why a chat message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChatFailure {
    #[error(transparent)]
    Invalid(#[from] ChatError),
    #[error("not in a call")]
    NoCall,
    #[error("the chat is still connecting and too many messages are waiting")]
    TooManyWaiting,
    #[error("the call ended before the chat connected")]
    NeverOpened,
    #[error("the chat connection is closed")]
    Closed,
}

/// What a message from the peer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A message for the user; `ack` goes back to the peer.
    Message {
        event: ChatEvent,
        ack: ChatMessage,
    },
    Delivered(ChatEvent),
    /// The peer is hanging up.
    Bye,
    /// The peer's microphone, camera and screen switches; `screen` is `None` from a peer
    /// that cannot take a shared screen as a second video track.
    State {
        muted: bool,
        camera_off: bool,
        screen: Option<bool>,
    },
    /// About a file transfer (`file_*`): the call core's [`crate::files`] decides.
    File(ChatMessage),
}

/// One link's chat.
#[derive(Debug, Default)]
pub struct ChatBook {
    open: bool,
    waiting: Vec<ChatMessage>,
    /// Our messages the link took (sent, or waiting for the channel).
    pub sent: u64,
    pub received: u64,
}

impl ChatBook {
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Our `message`: `Some` to send it now, `None` when it waits for the channel.
    pub fn send(&mut self, message: ChatMessage) -> Result<Option<ChatMessage>, ChatFailure> {
        if !self.open {
            if self.waiting.len() >= MAX_WAITING {
                return Err(ChatFailure::TooManyWaiting);
            }
            self.waiting.push(message);
            self.sent += 1;
            return Ok(None);
        }
        self.sent += 1;
        Ok(Some(message))
    }

    /// The channel opened: what waited for it, in order.
    pub fn opened(&mut self) -> Vec<ChatMessage> {
        self.open = true;
        std::mem::take(&mut self.waiting)
    }

    /// The transport could not send `message`: what the user is told, if anything.
    pub fn not_sent(&mut self, message: ChatMessage) -> Option<ChatEvent> {
        match message {
            ChatMessage::Chat { id, text, .. } => {
                self.sent = self.sent.saturating_sub(1);
                Some(ChatEvent::Failed {
                    id: Some(id),
                    text,
                    reason: ChatFailure::Closed.to_string(),
                })
            }
            _ => None,
        }
    }

    /// A data-channel message from the peer, checked (the peer may be hostile).
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Incoming, ChatError> {
        Ok(match ChatMessage::parse(bytes)? {
            ChatMessage::Chat {
                id,
                text,
                sent_at_ms,
            } => {
                self.received += 1;
                Incoming::Message {
                    ack: ChatMessage::Ack { id: id.clone() },
                    event: ChatEvent::Received {
                        id,
                        text,
                        sent_at_ms,
                        from_name: None,
                    },
                }
            }
            ChatMessage::Ack { id } => Incoming::Delivered(ChatEvent::Delivered { id }),
            ChatMessage::Bye => Incoming::Bye,
            ChatMessage::State {
                muted,
                camera_off,
                screen,
            } => Incoming::State {
                muted,
                camera_off,
                screen,
            },
            file @ (ChatMessage::FileOffer { .. }
            | ChatMessage::FileAnswer { .. }
            | ChatMessage::FileProgress { .. }
            | ChatMessage::FileDone { .. }
            | ChatMessage::FileCancel { .. }) => Incoming::File(file),
        })
    }

    /// The call is over: the messages that never went out, as the user is told of them.
    pub fn close(&mut self) -> Vec<ChatEvent> {
        std::mem::take(&mut self.waiting)
            .into_iter()
            .filter_map(|message| match message {
                ChatMessage::Chat { id, text, .. } => Some(ChatEvent::Failed {
                    id: Some(id),
                    text,
                    reason: ChatFailure::NeverOpened.to_string(),
                }),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(n: u64) -> ChatMessage {
        ChatMessage::Chat {
            id: format!("m{n}"),
            text: format!("message {n}"),
            sent_at_ms: n,
        }
    }

    #[test]
    fn messages_wait_for_the_channel_in_order_and_then_go_at_once() {
        let mut book = ChatBook::default();
        assert_eq!(book.send(chat(1)), Ok(None));
        assert_eq!(book.send(chat(2)), Ok(None));
        assert_eq!(book.opened(), [chat(1), chat(2)]);
        assert_eq!(book.send(chat(3)), Ok(Some(chat(3))));
        assert_eq!(book.sent, 3);
        assert!(book.close().is_empty());
    }

    #[test]
    fn at_most_a_hundred_wait_and_those_left_at_the_end_are_not_sent() {
        let mut book = ChatBook::default();
        for n in 0..MAX_WAITING as u64 {
            assert_eq!(book.send(chat(n)), Ok(None));
        }
        assert_eq!(book.send(chat(100)), Err(ChatFailure::TooManyWaiting));
        let failed = book.close();
        assert_eq!(failed.len(), MAX_WAITING);
        assert_eq!(
            failed[0],
            ChatEvent::Failed {
                id: Some("m0".into()),
                text: "message 0".into(),
                reason: "the call ended before the chat connected".into(),
            }
        );
    }

    #[test]
    fn received_messages_are_acknowledged_and_acks_deliver() {
        let mut book = ChatBook::default();
        let incoming = book.receive(chat(7).to_json().as_bytes());
        assert_eq!(
            incoming,
            Ok(Incoming::Message {
                event: ChatEvent::Received {
                    id: "m7".into(),
                    text: "message 7".into(),
                    sent_at_ms: 7,
                    from_name: None,
                },
                ack: ChatMessage::Ack { id: "m7".into() },
            })
        );
        let ack = ChatMessage::Ack { id: "m1".into() }.to_json();
        assert_eq!(
            book.receive(ack.as_bytes()),
            Ok(Incoming::Delivered(ChatEvent::Delivered {
                id: "m1".into()
            }))
        );
        assert_eq!(book.receive(b"{\"type\":\"bye\"}"), Ok(Incoming::Bye));
        assert!(book.receive(b"not json").is_err());
        assert_eq!(book.received, 1);
    }

    #[test]
    fn a_message_the_transport_dropped_is_reported_with_its_id() {
        let mut book = ChatBook::default();
        book.opened();
        let message = book.send(chat(1)).ok().flatten();
        let event = message.and_then(|m| book.not_sent(m));
        assert!(
            matches!(&event, Some(ChatEvent::Failed { id: Some(id), .. }) if id == "m1"),
            "{event:?}"
        );
        assert_eq!(book.sent, 0);
        assert_eq!(book.not_sent(ChatMessage::Bye), None);
    }
}
