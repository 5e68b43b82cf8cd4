//! What can go wrong in the call engine, in words a user understands.

use confab_media::audio::AudioError;
use confab_media::video::{CodecError, VideoError};
use confab_protocol::chat::ChatError;

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
