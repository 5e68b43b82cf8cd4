//! The signaling client: one task that keeps a WebSocket to the server open, reconnecting
//! with backoff, and keeps the roster.
//!
//! It speaks the protocol of `docs/protocol.md`: `hello`, then relays. Everything it learns
//! goes out as [`SignalingEvent`]s; everything the engine wants sent goes in through
//! [`SignalingHandle::send`]. Losing the server does not touch calls: media is peer to
//! peer. A reconnection takes the session over (`resume`: the same id, its calls kept,
//! if the server still has it). Messages queued while offline are dropped on reconnect
//! (they may be about a session the server has forgotten); what needs to go out again,
//! an ICE restart's offer, is made again once online.
//!
//! When this computer's addresses change, the client checks its own connection's local
//! address: gone, it reconnects at once (the server would notice the dead connection only
//! after 30 s). Either way it then tells the engine, so a restart goes out on a connection
//! that works.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use confab_protocol::{
    ClientMessage, ErrorCode, IceServer, PROTOCOL_VERSION, PeerId, PeerInfo, Resume, ServerMessage,
    parse_server_message,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::netwatch::Addresses;

/// Time to connect and be welcomed before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages the engine may queue for the server. Signaling is a trickle (an offer and a
/// few dozen candidates per call); a full queue means the connection is stuck.
const OUTGOING_QUEUE: usize = 256;
/// The largest message accepted from the server: a welcome listing every peer online.
const MAX_SERVER_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalingConfig {
    /// `ws://host:port/ws` or `wss://...`.
    pub url: String,
    pub name: String,
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SignalingEvent {
    /// The connection changed; the engine passes this on to the user as it is.
    Status(ServerStatus),
    /// The STUN/TURN servers the server offers, just before [`ServerStatus::Online`].
    IceServers(Vec<IceServer>),
    /// Everyone else online, sorted by name; sent whenever it changes.
    Roster(Vec<PeerInfo>),
    /// A call message, or an error about one, for the engine.
    Message(ServerMessage),
    /// This computer's addresses changed; told after the connection's status, so a call
    /// restarting ICE knows whether its offer can go out now or after reconnecting.
    NetworkChanged,
}

/// The signaling connection: the one type for it from this client to the screen.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerStatus {
    /// Connecting (again).
    Connecting { attempt: u32 },
    /// Logged in.
    Online { my_id: PeerId },
    /// The connection is gone; the client retries after `retry_in`.
    Offline { reason: String, retry_in: Duration },
    /// The server refused us for good (wrong token, name taken, other protocol version):
    /// the client has stopped. Change the settings and start again.
    Refused { code: ErrorCode, message: String },
}

/// How the engine talks to the signaling task.
#[derive(Debug, Clone)]
pub struct SignalingHandle {
    outgoing: mpsc::Sender<ClientMessage>,
    network: watch::Sender<Addresses>,
}

impl SignalingHandle {
    /// Queues a message; false when the client has stopped or its queue is full.
    pub fn send(&self, msg: ClientMessage) -> bool {
        self.outgoing.try_send(msg).is_ok()
    }

    /// This computer's addresses changed: if the connection's own address is gone, the
    /// connection is too (nothing will tell us for a long while), so reconnect at once.
    pub fn network_changed(&self, addresses: Addresses) {
        self.network.send_replace(addresses);
    }
}

/// Starts the client. It runs until `stop` is cancelled or the server refuses it.
pub fn spawn(
    config: SignalingConfig,
    events: mpsc::UnboundedSender<SignalingEvent>,
    stop: CancellationToken,
) -> (SignalingHandle, JoinHandle<()>) {
    let (outgoing, queue) = mpsc::channel(OUTGOING_QUEUE);
    let (network, addresses) = watch::channel(Addresses::default());
    let task = tokio::spawn(run(config, queue, addresses, events, stop));
    (SignalingHandle { outgoing, network }, task)
}

/// The wait before reconnect attempt `attempt` (1-based): 0.5 s doubling to 16 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500) * 2u32.pow(attempt.saturating_sub(1).min(5))
}

enum SessionEnd {
    Stopped,
    /// The network changed under the connection: its local address is gone.
    AddressGone,
    Lost {
        reason: String,
        was_online: bool,
    },
    Refused {
        code: ErrorCode,
        message: String,
    },
}

async fn run(
    config: SignalingConfig,
    mut queue: mpsc::Receiver<ClientMessage>,
    mut addresses: watch::Receiver<Addresses>,
    events: mpsc::UnboundedSender<SignalingEvent>,
    stop: CancellationToken,
) {
    let mut attempt = 0u32;
    let mut ever_online = false;
    // How the next connection takes this session over, from the last welcome.
    let mut resume = None;
    loop {
        attempt += 1;
        let _ = events.send(SignalingEvent::Status(ServerStatus::Connecting { attempt }));
        // Whatever was queued belongs to an earlier session.
        while queue.try_recv().is_ok() {}
        let channels = (&mut queue, &mut addresses, &events);
        match session(&config, channels, &mut resume, &stop).await {
            SessionEnd::Stopped => return,
            SessionEnd::AddressGone => {
                info!("signaling connection's address is gone: reconnecting");
                let _ = events.send(SignalingEvent::Status(ServerStatus::Offline {
                    reason: "the network changed".into(),
                    retry_in: Duration::ZERO,
                }));
                let _ = events.send(SignalingEvent::NetworkChanged);
                attempt = 0;
                continue;
            }
            // A name refused after we were online is our own old session, not yet noticed
            // gone by the server: retry. Anything else refused is final.
            SessionEnd::Refused { code, message }
                if !(code == ErrorCode::NameTaken && ever_online) =>
            {
                warn!("signaling server refused us: {message}");
                let _ = events.send(SignalingEvent::Status(ServerStatus::Refused {
                    code,
                    message,
                }));
                return;
            }
            SessionEnd::Refused { message, .. } => retry(&mut attempt, message, false, &events),
            SessionEnd::Lost { reason, was_online } => {
                ever_online |= was_online;
                retry(&mut attempt, reason, was_online, &events);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff(attempt)) => {}
            // A new network may well reach the server: try it now.
            Ok(()) = addresses.changed() => attempt = 0,
            () = stop.cancelled() => return,
        }
    }
}

/// Why a connection could not be made, in words a person can act on (not "os error 111").
fn connect_error(url: &str, err: &tokio_tungstenite::tungstenite::Error) -> String {
    use std::io::ErrorKind;
    use tokio_tungstenite::tungstenite::Error;
    match err {
        Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => {
                format!("nothing answers at {url}: is the server running?")
            }
            ErrorKind::TimedOut | ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
                format!("{url} cannot be reached from this network")
            }
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                format!("{url} closed the connection at once")
            }
            // The resolver's failure has no kind of its own.
            _ if io.to_string().contains("lookup address") => {
                format!("no server of that name was found ({url})")
            }
            _ => format!("cannot connect to {url}: {io}"),
        },
        Error::Url(why) => format!("{url} is not a server address: {why}"),
        Error::HttpFormat(why) => format!("{url} is not a server address: {why}"),
        Error::Http(response) => format!(
            "{url} answered with HTTP {}: is it a Confab server?",
            response.status()
        ),
        Error::Tls(why) => format!("no secure connection to {url}: {why}"),
        other => format!("cannot connect to {url}: {other}"),
    }
}

fn retry(
    attempt: &mut u32,
    reason: String,
    was_online: bool,
    events: &mpsc::UnboundedSender<SignalingEvent>,
) {
    if was_online {
        // A connection that worked starts the backoff over.
        *attempt = 1;
    }
    let retry_in = backoff(*attempt);
    info!("signaling connection lost ({reason}); retrying in {retry_in:?}");
    let _ = events.send(SignalingEvent::Status(ServerStatus::Offline {
        reason,
        retry_in,
    }));
}

async fn session(
    config: &SignalingConfig,
    (queue, addresses, events): (
        &mut mpsc::Receiver<ClientMessage>,
        &mut watch::Receiver<Addresses>,
        &mpsc::UnboundedSender<SignalingEvent>,
    ),
    resume: &mut Option<Resume>,
    stop: &CancellationToken,
) -> SessionEnd {
    let lost = |reason: String| SessionEnd::Lost {
        reason,
        was_online: false,
    };
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(MAX_SERVER_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_SERVER_MESSAGE_BYTES));
    let connect = tokio_tungstenite::connect_async_with_config(&config.url, Some(ws_config), true);
    let mut ws = tokio::select! {
        result = tokio::time::timeout(CONNECT_TIMEOUT, connect) => match result {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(err)) => return lost(connect_error(&config.url, &err)),
            Err(_) => return lost(format!("{} did not answer", config.url)),
        },
        () = stop.cancelled() => return SessionEnd::Stopped,
    };
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        name: config.name.clone(),
        token: config.token.clone(),
        resume: resume.clone(),
    };
    if let Err(err) = ws.send(Message::text(hello.to_json())).await {
        return lost(err.to_string());
    }

    let mut roster: BTreeMap<PeerId, PeerInfo> = BTreeMap::new();
    let mut online = false;
    let welcome_deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    loop {
        let frame = tokio::select! {
            frame = ws.next() => frame,
            msg = queue.recv(), if online => {
                let Some(msg) = msg else { return SessionEnd::Stopped };
                if let Err(err) = ws.send(Message::text(msg.to_json())).await {
                    return SessionEnd::Lost { reason: err.to_string(), was_online: online };
                }
                continue;
            }
            Ok(()) = addresses.changed() => {
                let now = addresses.borrow_and_update().clone();
                // An empty list is a listing that failed, not a computer without addresses.
                let gone = !now.is_empty()
                    && local_address(&ws).is_some_and(|ip| !now.contains(&ip));
                if gone {
                    return SessionEnd::AddressGone;
                }
                let _ = events.send(SignalingEvent::NetworkChanged);
                continue;
            }
            () = tokio::time::sleep_until(welcome_deadline), if !online => {
                return lost("no welcome from the server".into());
            }
            () = stop.cancelled() => {
                // Deliver what the engine queued last (a hangup, say), then say goodbye.
                let goodbye = async {
                    while let Ok(msg) = queue.try_recv() {
                        ws.send(Message::text(msg.to_json())).await?;
                    }
                    ws.close(None).await
                };
                let _ = tokio::time::timeout(Duration::from_secs(1), goodbye).await;
                return SessionEnd::Stopped;
            }
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                let reason = frame.map_or_else(
                    || "closed by the server".into(),
                    |f| format!("closed by the server: {}", f.reason),
                );
                return SessionEnd::Lost {
                    reason,
                    was_online: online,
                };
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => {
                return SessionEnd::Lost {
                    reason: err.to_string(),
                    was_online: online,
                };
            }
            None => {
                return SessionEnd::Lost {
                    reason: "connection closed".into(),
                    was_online: online,
                };
            }
        };
        let msg = match parse_server_message(&text) {
            Ok(msg) => msg,
            Err(err) => {
                debug!("ignoring a malformed server message: {err}");
                continue;
            }
        };
        match msg {
            ServerMessage::Welcome {
                id,
                peers,
                ice_servers,
                server_version,
                resume_secret,
            } => {
                info!(%id, %server_version, "signaling online");
                *resume = resume_secret.map(|secret| Resume {
                    id: id.clone(),
                    secret,
                });
                online = true;
                roster = peers.into_iter().map(|p| (p.id.clone(), p)).collect();
                let _ = events.send(SignalingEvent::IceServers(ice_servers));
                let _ = events.send(SignalingEvent::Status(ServerStatus::Online { my_id: id }));
                publish(&roster, events);
            }
            ServerMessage::PeerJoined { peer } | ServerMessage::PeerUpdated { peer } => {
                roster.insert(peer.id.clone(), peer);
                publish(&roster, events);
            }
            ServerMessage::PeerLeft { id } => {
                roster.remove(&id);
                publish(&roster, events);
            }
            ServerMessage::Error { code, message, .. } if !online && is_refusal(code) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                return SessionEnd::Refused { code, message };
            }
            ServerMessage::Unknown => {}
            other => {
                let _ = events.send(SignalingEvent::Message(other));
            }
        }
    }
}

/// The local address of the connection's socket.
fn local_address(ws: &WebSocketStream<MaybeTlsStream<TcpStream>>) -> Option<IpAddr> {
    let tcp = match ws.get_ref() {
        MaybeTlsStream::Plain(tcp) => tcp,
        MaybeTlsStream::Rustls(tls) => tls.get_ref().0,
        _ => return None,
    };
    tcp.local_addr().ok().map(|addr| addr.ip())
}

/// Errors that answer `hello` and mean we cannot log in as configured. (`server_full` is
/// not one: the server closes the connection and we retry later.)
fn is_refusal(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Unauthorized
            | ErrorCode::NameTaken
            | ErrorCode::NameInvalid
            | ErrorCode::ProtocolMismatch
    )
}

fn publish(roster: &BTreeMap<PeerId, PeerInfo>, events: &mpsc::UnboundedSender<SignalingEvent>) {
    let mut peers: Vec<PeerInfo> = roster.values().cloned().collect();
    peers.sort_by_key(|p| p.name.to_lowercase());
    let _ = events.send(SignalingEvent::Roster(peers));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let waits: Vec<u64> = (1..=8).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 16000, 16000]);
    }

    #[tokio::test]
    async fn a_refused_connection_is_said_in_words() {
        // A port that was free a moment ago: nothing listens there now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("a free port");
        let url = format!("ws://127.0.0.1:{port}/ws");
        let err = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect_err("nothing listens there");
        assert_eq!(
            connect_error(&url, &err),
            format!("nothing answers at {url}: is the server running?")
        );
        let err = tokio_tungstenite::connect_async("ws://[::1")
            .await
            .expect_err("not a URL");
        assert!(connect_error("ws://[::1", &err).contains("not a server address"));
    }
}
