//! The bundled Confab signaling server.
//!
//! Clients connect over WebSocket (`/ws`), say `hello`, receive the roster and then
//! exchange offers, answers, ICE candidates and hangups with the peers they call; the
//! server relays those between the two parties of each call and nothing else. The wire
//! format is `confab-protocol`, documented in `docs/protocol.md`.
//!
//! [`run`] serves one listener until a shutdown future completes; the `confab-signaling`
//! binary and `confab server` are thin wrappers around [`cli::serve`].
//!
//! Module map: `hub` is the roster and call routing (no I/O, fake time in tests), with
//! `hub::cluster` for several servers sharing one roster; `cluster` carries that over NATS;
//! `rate`
//! the per-connection token bucket; `outbox` a client's byte-bounded queue; `server` the
//! accept loop, HTTP and shared state; `session` one connection's read/write task; `web`
//! the browser client's files (from `web/`), served at `/`; [`tls`] loads certificates;
//! [`cli`] the flags.

#![forbid(unsafe_code)]

pub mod cli;
mod cluster;
mod config;
mod hub;
mod outbox;
mod rate;
mod server;
mod session;
pub mod tls;
mod web;

pub use cluster::{ClusterConfig, ClusterError};
pub use config::{Config, Limits};
pub use server::run;
