//! Server configuration: what to hand out, who may join and every limit.

use std::sync::Arc;
use std::time::Duration;

use confab_protocol::{IceServer, MAX_MESSAGE_BYTES};

use crate::cluster::ClusterConfig;

/// Everything [`crate::run`] needs besides the listener.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// When set, `hello` must carry this token.
    pub token: Option<String>,
    /// STUN/TURN servers listed in every `welcome`.
    pub ice_servers: Vec<IceServer>,
    /// Serve `wss://` instead of `ws://`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub limits: Limits,
    /// Share the roster with other servers through NATS.
    pub cluster: Option<ClusterConfig>,
}

/// The server's limits. Each is a command-line flag; the defaults suit a public server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// WebSocket sessions at once; the next one is told `server_full`.
    pub max_connections: usize,
    /// Largest inbound message; a bigger one closes the connection with 1009.
    pub max_message_bytes: usize,
    /// Sustained inbound messages per second per connection.
    pub rate_per_sec: u32,
    /// Messages a connection may send at once before the rate applies.
    pub rate_burst: u32,
    /// Refused messages in a row after which the connection is closed for abuse.
    pub abuse_after: u32,
    /// Time a new connection has to send `hello`.
    pub hello_timeout: Duration,
    /// Time for TLS and the HTTP upgrade request.
    pub handshake_timeout: Duration,
    /// The server pings each client this often...
    pub ping_interval: Duration,
    /// ...and closes a connection it has heard nothing from for this long.
    pub idle_timeout: Duration,
    /// A call not answered in this time ends with `timeout`.
    pub ring_timeout: Duration,
    /// Bytes of messages waiting to be written to one client. A client that does not read
    /// fills this and is dropped, so it can never grow the server's memory.
    pub max_queued_bytes: usize,
    /// Calls (ringing or answered) one peer may be part of at once.
    pub max_calls_per_peer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 20_000,
            max_message_bytes: MAX_MESSAGE_BYTES,
            rate_per_sec: 20,
            rate_burst: 60,
            abuse_after: 60,
            hello_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(30),
            ring_timeout: Duration::from_secs(60),
            max_queued_bytes: 1024 * 1024,
            max_calls_per_peer: 16,
        }
    }
}
