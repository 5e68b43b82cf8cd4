//! Confab's call core: the decisions of a call, with no I/O. Nothing in here (or in its
//! dependencies) runs an async runtime, opens a socket or reads the clock: the driver
//! (`confab-call`) passes in what happened and the current time, and performs what comes out.
//! That makes every rule testable with fake time, and keeps one place for each decision.
//!
//! - [`call`]: [`CallCore`], every decision of a call: commands, signaling and link events
//!   in with the time; signaling, link actions, device switches and news for the user out.
//! - [`machine`]: the call state machine inside it: consent, busy, glare, timeouts, which
//!   remote messages belong to the call.
//! - [`chat`]: one link's chat: messages waiting for the channel, acknowledgements.
//! - [`files`]: files sent in a call: offers, answers, limits, progress.
//! - [`h264_rtp`]: the H.264 depacketizer, which survives loss and hostile payloads.
//! - [`jitter`]: the adaptive audio jitter buffer.
//! - [`echo`]: the echo doctor: when the peer probably hears an echo of their voice.
//! - [`speaker`]: who is speaking in a group call, from each member's audio level.
//! - [`congestion`]: how fast to send ([`congestion::QueueGuard`]), from transport feedback.
//! - [`protection`]: how much forward error correction video gets, from the loss.
//! - [`resolution`]: how big a picture to send for the bitrate there is.
//! - [`restart`]: when a connected call restarts ICE.
//! - [`retransmit`]: which retransmissions are worth sending.
//! - [`budget`]: the encoder's frame budget (frames left out rather than overshoot).
//! - [`rtp`]: RTP sequence numbers extended past 16 bits.

// No unsafe code, and no clock (clippy.toml): time comes in as an argument. Unit tests take
// `Instant::now()` once, as the start of their fake time.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod budget;
pub mod call;
pub mod chat;
pub mod congestion;
pub mod echo;
pub mod files;
pub mod h264_rtp;
pub mod jitter;
pub mod machine;
pub mod protection;
pub mod resolution;
pub mod restart;
pub mod retransmit;
pub mod rtp;
pub mod speaker;

pub use call::{
    CallCore, Command, Event, Input, LinkAction, LinkClosed, LinkEvent, LinkId, Output,
    PeerIdentity, Problem, Randomness, ScreenRoute, Signaling,
};
pub use chat::ChatEvent;
pub use files::{Direction, FileId, FileReport, Transfer, TransferState};
