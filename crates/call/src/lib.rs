//! Confab's call engine: it turns the signaling protocol, the media engine and webrtc-rs
//! into calls. No UI in here: the desktop app and the headless peer drive it the same way.
//! Every decision is `confab-call-core`'s (the call itself, chat, the depacketizer, the
//! jitter buffer, congestion control); this crate is the driver that performs them.
//!
//! - [`engine`]: the [`Engine`] handle (commands in, [`EngineEvent`]s out, latest-frame
//!   slots for video) and its single driver task, which feeds the `CallCore`.
//! - [`signaling`]: the WebSocket client with reconnect and the roster.
//! - `session`: one link's peer connection, tracks and chat channel; `peer`: how the peer
//!   connection is built (codecs, ICE); `interceptors`: the RTP/RTCP chain (NACK, reports,
//!   congestion control and pacing, keyframe requests, the round trip).
//! - `files`: file transfers performed: hashing, sending, receiving into `.part` files.
//! - `control`: a link's control paths (encoder control, round trip).
//! - `media`: the threads that capture, encode, send, receive, decode and play.
//! - [`stats`]: per-second snapshots and end-of-call summaries.
//! - `error`: [`CallError`] and the user's [`Problem`]s.

#![forbid(unsafe_code)]

mod control;
pub mod engine;
mod error;
mod files;
mod identity;
mod interceptors;
mod media;
mod netwatch;
mod peer;
mod session;
pub mod signaling;
pub mod stats;

pub use confab_call_core::Problem as CallProblem;
pub use confab_call_core::files::{DEFAULT_MAX_FILE_SIZE, human_bytes};
pub use confab_call_core::machine::{CallEnd, CallState, Member, MemberStatus, Timeouts};
pub use confab_call_core::{Direction, FileId, PeerIdentity, Transfer, TransferState};
pub use engine::{ChatEvent, Command, Engine, EngineConfig, EngineEvent, Wake};
pub use error::{CallError, Problem};
pub use files::{FileSettings, sha256_hex, sha256_of};
pub use identity::{Identity, IdentityError};
pub use media::{AudioInput, AudioOutput, RemoteVideoFrame, VideoInput, open_video};
pub use peer::NetworkConfig;
pub use signaling::{ServerStatus, SignalingConfig};
pub use stats::{CallStats, CallSummary, EchoReport, VideoFlow};
