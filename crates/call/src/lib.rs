//! Confab's call engine: it turns the signaling protocol, the media engine and webrtc-rs
//! into calls. No UI in here: the desktop app and the headless peer drive it the same way.
//!
//! - [`engine`]: the [`Engine`] handle (commands in, [`EngineEvent`]s out, latest-frame
//!   slots for video) and its single driver task.
//! - [`machine`]: the call state machine (no I/O, fake time in tests): consent, busy,
//!   glare, timeouts, which remote messages belong to the call.
//! - [`signaling`]: the WebSocket client with reconnect and the roster.
//! - `session`: one call's peer connection, tracks and chat channel; `peer`: how the peer
//!   connection is built (codecs, ICE); `interceptors`: the RTP/RTCP chain (NACK, reports,
//!   congestion control and pacing, keyframe requests).
//! - `media`: the threads that capture, encode, send, receive, decode and play.
//! - [`h264_rtp`]: a depacketizer that survives loss and hostile payloads.
//! - [`stats`]: per-second snapshots and end-of-call summaries.
//! - [`netsim`]: a simulated lossy, slow or broken network link, for testing.

mod congestion;
pub mod engine;
mod error;
pub mod h264_rtp;
mod interceptors;
pub mod machine;
mod media;
pub mod netsim;
mod peer;
mod session;
pub mod signaling;
pub mod stats;

pub use engine::{ChatEvent, Command, Engine, EngineConfig, EngineEvent, ServerStatus, Wake};
pub use error::CallError;
pub use machine::{CallEnd, CallState, Timeouts};
pub use media::{AudioInput, AudioOutput, RemoteVideoFrame, VideoInput, open_video};
pub use peer::NetworkConfig;
pub use signaling::SignalingConfig;
pub use stats::{CallStats, CallSummary, VideoFlow};
