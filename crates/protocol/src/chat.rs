//! Messages on the peer-to-peer `chat` data channel (reliable, ordered, created by the
//! caller). One JSON object per data-channel message, discriminated by `type`.

use serde::{Deserialize, Serialize};

/// Longest chat text, in characters (Unicode scalar values).
pub const MAX_CHAT_CHARS: usize = 4_000;

/// Largest data-channel message accepted: the longest text, escaped, plus framing.
pub const MAX_CHAT_MESSAGE_BYTES: usize = 6 * MAX_CHAT_CHARS + 256;

/// The data channel's label.
pub const CHAT_CHANNEL_LABEL: &str = "chat";

/// Longest message id, in bytes (a UUID is 36).
pub const MAX_CHAT_ID_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatMessage {
    /// A message from the user. `id` is chosen by the sender (a UUID), `sent_at_ms` is the
    /// sender's wall clock in milliseconds since the Unix epoch.
    Chat {
        id: String,
        text: String,
        sent_at_ms: u64,
    },
    /// Delivery receipt for the `chat` with this id.
    Ack { id: String },
    /// The sender is hanging up; the receiver may end the call at once.
    Bye,
    /// What the sender sends: whether its microphone is muted, its camera off and its
    /// screen shared. Sent when the channel opens and whenever one changes. `screen` is
    /// present only from a peer whose descriptions carry the screen's video section (and
    /// that takes one from us); a peer without it gets a shared screen in place of the
    /// camera.
    State {
        muted: bool,
        camera_off: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        screen: Option<bool>,
    },
    /// The sender wants to send a file (see [`crate::file`]). `name` is the file's name as
    /// the sender knows it: the receiver makes it safe before writing anything.
    FileOffer {
        id: String,
        name: String,
        size: u64,
        /// SHA-256 of the whole file, 64 lowercase hex digits.
        sha256: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime: Option<String>,
    },
    /// The receiver's answer to `file_offer`. After `accept: true` the sender opens the
    /// transfer's data channel.
    FileAnswer { id: String, accept: bool },
    /// From the receiver: this many bytes of the file arrived and were written.
    FileProgress { id: String, received: u64 },
    /// From the receiver: every byte arrived, the SHA-256 matched, the file is saved.
    FileDone { id: String },
    /// Either side ends the transfer (cancelled, declined late, failed); the receiver
    /// deletes what it wrote.
    FileCancel { id: String, reason: String },
}

/// Why a chat message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    #[error("messages are limited to {MAX_CHAT_CHARS} characters (this one has {0})")]
    TooLong(usize),
    #[error("empty message")]
    Empty,
    #[error("malformed chat message: {0}")]
    Malformed(String),
}

/// Checks text the user wants to send.
pub fn validate_chat_text(text: &str) -> Result<(), ChatError> {
    let chars = text.chars().count();
    if chars > MAX_CHAT_CHARS {
        return Err(ChatError::TooLong(chars));
    }
    if text.trim().is_empty() {
        return Err(ChatError::Empty);
    }
    Ok(())
}

impl ChatMessage {
    /// Parses one data-channel message from the peer, checking sizes: the other side may be
    /// hostile.
    pub fn parse(bytes: &[u8]) -> Result<ChatMessage, ChatError> {
        if bytes.len() > MAX_CHAT_MESSAGE_BYTES {
            return Err(ChatError::Malformed(format!(
                "{} bytes is too large",
                bytes.len()
            )));
        }
        let msg: ChatMessage =
            serde_json::from_slice(bytes).map_err(|e| ChatError::Malformed(e.to_string()))?;
        match &msg {
            ChatMessage::Chat { id, text, .. } => {
                check_id(id)?;
                validate_chat_text(text)?;
            }
            ChatMessage::Ack { id }
            | ChatMessage::FileAnswer { id, .. }
            | ChatMessage::FileProgress { id, .. }
            | ChatMessage::FileDone { id } => check_id(id)?,
            ChatMessage::FileOffer {
                id,
                name,
                sha256,
                mime,
                ..
            } => {
                check_id(id)?;
                crate::file::check_offer(name, sha256, mime.as_deref())
                    .map_err(ChatError::Malformed)?;
            }
            ChatMessage::FileCancel { id, reason } => {
                check_id(id)?;
                if reason.len() > crate::file::MAX_REASON_BYTES {
                    return Err(ChatError::Malformed("reason too long".into()));
                }
            }
            ChatMessage::Bye | ChatMessage::State { .. } => {}
        }
        Ok(msg)
    }

    #[allow(
        clippy::expect_used,
        reason = "plain structs with string keys always serialize"
    )]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("chat messages always serialize")
    }
}

fn check_id(id: &str) -> Result<(), ChatError> {
    if id.is_empty() || id.len() > MAX_CHAT_ID_LEN || id.chars().any(char::is_control) {
        return Err(ChatError::Malformed("bad message id".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let chat = ChatMessage::Chat {
            id: "3f0c0a4e-2b1d-4c6a-9a7e-6d5c4b3a2f10".into(),
            text: "hello 👋".into(),
            sent_at_ms: 1_790_000_000_000,
        };
        assert_eq!(ChatMessage::parse(chat.to_json().as_bytes()), Ok(chat));
        assert_eq!(
            ChatMessage::parse(br#"{"type":"bye"}"#),
            Ok(ChatMessage::Bye)
        );
        assert!(validate_chat_text(&"é".repeat(MAX_CHAT_CHARS)).is_ok());
        assert_eq!(
            validate_chat_text(&"é".repeat(4001)),
            Err(ChatError::TooLong(4001))
        );
        assert_eq!(validate_chat_text("  \n"), Err(ChatError::Empty));
        let long = format!(
            r#"{{"type":"chat","id":"x","text":"{}","sent_at_ms":1}}"#,
            "a".repeat(4001)
        );
        assert!(matches!(
            ChatMessage::parse(long.as_bytes()),
            Err(ChatError::TooLong(_))
        ));
        for bad in [
            &b"not json"[..],
            br#"{"type":"ack"}"#,
            br#"{"type":"ack","id":""}"#,
            br#"{"type":"chat","id":"a","text":"","sent_at_ms":1}"#,
            br#"{"type":"shout"}"#,
        ] {
            assert!(
                ChatMessage::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(ChatMessage::parse(&vec![b' '; MAX_CHAT_MESSAGE_BYTES + 1]).is_err());
    }
}
