//! What can go wrong in the call engine, in words a user understands.

use confab_media::audio::AudioError;
use confab_media::video::{CodecError, VideoError};
use confab_protocol::chat::ChatError;

/// Something the user should know that is not a call state or a chat message. A device or
/// file that fails leaves the call going on without it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    #[error("camera: {0}")]
    Camera(String),
    /// Sharing the screen could not start, or stopped by itself; the call goes on. (The
    /// reason says it is about screen sharing.)
    #[error("{0}")]
    Screen(String),
    #[error("microphone: {0}")]
    Microphone(String),
    #[error("speaker: {0}")]
    Speaker(String),
    #[error("recording: {0}")]
    Recording(String),
    #[error("cannot send media: {0}")]
    Sending(String),
    #[error("cannot receive media: {0}")]
    Receiving(String),
    /// A media thread of the call died; the call goes on without what it did.
    #[error("the {thread} thread failed: {reason}")]
    ThreadFailed { thread: String, reason: String },
    /// What the call core reports (the person called has left, say).
    #[error(transparent)]
    Call(#[from] confab_call_core::Problem),
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    #[error("connection setup failed: {0}")]
    WebRtc(String),
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error("the chat connection is closed")]
    ChatClosed,
    #[error("cannot start the {name} thread: {reason}")]
    Thread { name: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Record {
        path: std::path::PathBuf,
        reason: String,
    },
}

impl From<webrtc::error::Error> for CallError {
    fn from(err: webrtc::error::Error) -> Self {
        CallError::WebRtc(err.to_string())
    }
}
