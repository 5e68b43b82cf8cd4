//! Confab signaling protocol, version 2 (version 1 plus group calls).
//!
//! This crate owns the wire format spoken between Confab clients and the signaling server:
//! one JSON object per WebSocket text frame, discriminated by its `type` field. It holds the
//! message types ([`ClientMessage`] and [`ServerMessage`]), the identifiers ([`PeerId`],
//! [`CallId`]), display-name rules ([`name`]), the protocol limits, and the messages peers
//! exchange on their chat data channel ([`chat`]) the files they send each other ([`file`]), and the safety code two people compare
//! ([`safety`]). It does no I/O and knows nothing of
//! tokio: the server and the call engine both build on it.
//!
//! `docs/protocol.md` at the repository root is the public contract; this crate implements
//! it, and its tests check the examples printed there.
//!
//! ```
//! use confab_protocol::{ClientMessage, parse_client_message};
//!
//! let msg = parse_client_message(r#"{"type":"hello","protocol":1,"name":"Alice"}"#).unwrap();
//! assert!(matches!(msg, ClientMessage::Hello { .. }));
//! ```

#![forbid(unsafe_code)]

pub mod chat;
pub mod file;
mod ids;
mod message;
pub mod name;
pub mod safety;

pub use ids::{CallId, IdError, PeerId};
pub use message::{
    ClientMessage, ErrorCode, HangupReason, IceCandidate, IceServer, ParseError, PeerInfo, Resume,
    ServerMessage, parse_client_message, parse_server_message,
};

/// The protocol version this crate speaks; clients send it in `hello`. Version 2 adds
/// group calls; a server speaks every version from [`OLDEST_PROTOCOL_VERSION`] up.
pub const PROTOCOL_VERSION: u32 = 2;

/// The oldest version a server still speaks: version 1 clients make one-to-one calls.
pub const OLDEST_PROTOCOL_VERSION: u32 = 1;

/// Most members a group call may have.
pub const MAX_CALL_MEMBERS: usize = 6;

/// The HTTP path of the WebSocket endpoint.
pub const WS_PATH: &str = "/ws";

/// The HTTP path of the health check (`200 OK` while the server runs).
pub const HEALTH_PATH: &str = "/healthz";

/// Largest message, in bytes, a server accepts by default (it may be configured lower or
/// higher). Generous for SDP, which is usually 2-10 KiB.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
