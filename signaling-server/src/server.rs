//! The accept loop, the HTTP layer and the state every connection shares.
//!
//! One port serves `GET /healthz`, the browser client ([`crate::web`], at `/`) and the
//! WebSocket upgrade at `/ws`, over plain TCP or TLS. Each upgraded connection becomes a
//! session task ([`crate::session`]); the sessions talk to each other only through
//! [`Server`], which owns the [`Hub`] and each logged-in peer's outbound queue.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use confab_protocol::{HEALTH_PATH, PeerId, Resume, ServerMessage, WS_PATH};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::cluster::{self, ClusterState, Outgoing};
use crate::config::Config;
use crate::hub::{ClusterMessage, Hub, HubConfig, JoinError, Output, ServerId};
use crate::outbox::Outbox;
use crate::session;
use crate::web;

/// How long to wait before accepting again after `accept` failed (typically out of file
/// descriptors): retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Outbound messages bigger than this are sent as several WebSocket frames. The
/// WebSocket library keeps its write buffer at the size of the largest frame it ever
/// wrote, so capping frames keeps an idle connection small even after it was sent a
/// welcome listing thousands of peers.
pub(crate) const MAX_FRAME_BYTES: usize = 2 * 1024;

/// Initial read buffer per connection: small, so idle connections are cheap; it grows
/// for the occasional large message.
const READ_BUFFER_BYTES: usize = 1024;

/// Upper bound of the WebSocket write buffer; never reached, since the writer waits for
/// the socket once the buffer holds a frame.
const MAX_WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Runs the signaling server on `listener` until `shutdown` completes, then closes every
/// connection with a close frame (1001, going away) and returns once all tasks are done.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) {
    let (server, outgoing) = Server::new(config);
    let server = Arc::new(server);
    server.tasks.spawn(ring_timer(server.clone()));
    if let (Some(cluster), Some(outgoing)) = (server.config.cluster.clone(), outgoing) {
        info!(server = %server.server_id, cluster = %cluster.name, "joining the cluster");
        server
            .tasks
            .spawn(cluster::run(server.clone(), cluster, outgoing));
    }
    let tls = server
        .config
        .tls
        .clone()
        .map(tokio_rustls::TlsAcceptor::from);

    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, addr)) => {
                server
                    .tasks
                    .spawn(serve_tcp(server.clone(), tls.clone(), tcp, addr));
            }
            Err(err) => {
                warn!("accept failed: {err}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    drop(listener);
    info!(
        peers = server.lock().hub.local_peer_count(),
        "shutting down: closing every connection"
    );
    server.stop.cancel();
    server.tasks.close();
    server.tasks.wait().await;
    info!("shut down");
}

/// What the connections share, behind one lock that is never held across an await.
struct Shared {
    hub: Hub,
    clients: HashMap<PeerId, Client>,
    /// To the other servers, in a cluster.
    cluster: Option<mpsc::UnboundedSender<Outgoing>>,
    cluster_state: ClusterState,
}

/// A logged-in connection, as the server reaches it.
pub(crate) struct Client {
    pub outbox: Outbox,
    /// Cancelled when a new connection takes the session over (`hello` with `resume`).
    pub replaced: CancellationToken,
    /// Cancelled when a peer of another server took its name at the same moment.
    pub name_lost: CancellationToken,
}

impl Shared {
    fn deliver(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::To(id, msg) => {
                    if let Some(client) = self.clients.get(&id) {
                        client.outbox.send(encode(&msg));
                    }
                }
                Output::Broadcast { except, msg } => {
                    let text = encode(&msg);
                    for (id, client) in &self.clients {
                        if *id != except {
                            client.outbox.send(text.clone());
                        }
                    }
                }
                Output::Cluster { to, msg } => {
                    if let Some(cluster) = &self.cluster {
                        let _ = cluster.send((to, msg));
                    }
                }
                Output::Kick(id, msg) => {
                    if let Some(client) = self.clients.remove(&id) {
                        client.outbox.send_always(encode(&msg));
                        client.name_lost.cancel();
                    }
                }
            }
        }
    }
}

pub(crate) fn encode(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(msg.to_json())
}

pub(crate) struct Server {
    pub config: Config,
    /// This server's id in the cluster: new at every start.
    pub server_id: ServerId,
    shared: Mutex<Shared>,
    /// Woken when a call starts ringing, so the timer looks at the new deadline.
    ring_timer: Notify,
    connection_slots: Arc<Semaphore>,
    /// Cancelled on shutdown; every session's kick token is a child of it.
    pub stop: CancellationToken,
    pub tasks: TaskTracker,
}

impl Server {
    /// The server, and where its messages to the cluster come out when it is in one.
    fn new(config: Config) -> (Self, Option<mpsc::UnboundedReceiver<Outgoing>>) {
        let clustered = config.cluster.is_some();
        let hub = Hub::new(HubConfig {
            ice_servers: config.ice_servers.clone(),
            ring_timeout: config.limits.ring_timeout,
            max_calls_per_peer: config.limits.max_calls_per_peer,
            server_timeout: clustered.then_some(cluster::SERVER_TIMEOUT),
        });
        let (cluster, outgoing, cluster_state) = if clustered {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx), ClusterState::Connecting)
        } else {
            (None, None, ClusterState::Alone)
        };
        let server = Server {
            connection_slots: Arc::new(Semaphore::new(config.limits.max_connections)),
            config,
            server_id: ServerId::random(),
            shared: Mutex::new(Shared {
                hub,
                clients: HashMap::new(),
                cluster,
                cluster_state,
            }),
            ring_timer: Notify::new(),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        (server, outgoing)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // The hub does not panic; if it ever did, serving the others beats failing them all.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn try_take_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.connection_slots.clone().try_acquire_owned().ok()
    }

    /// Admits a peer: its welcome is queued before any later news reaches it.
    pub fn join(
        &self,
        (id, secret): (PeerId, String),
        name: &str,
        protocol: u32,
        client: Client,
    ) -> Result<(), JoinError> {
        let mut shared = self.lock();
        let (welcome, news) = shared.hub.join(id.clone(), name, protocol, secret)?;
        client.outbox.send_always(encode(&welcome));
        shared.clients.insert(id, client);
        shared.deliver(news);
        Ok(())
    }

    /// Hands the session `resume` names over to `client`, if the hub agrees; the
    /// connection it had is told it was replaced. False: join as a new peer instead.
    pub fn resume(&self, resume: &Resume, name: &str, new_secret: String, client: Client) -> bool {
        let mut shared = self.lock();
        let Some(welcome) = shared.hub.resume(resume, name, new_secret) else {
            return false;
        };
        client.outbox.send_always(encode(&welcome));
        if let Some(old) = shared.clients.insert(resume.id.clone(), client) {
            old.replaced.cancel();
        }
        true
    }

    pub fn handle(&self, from: &PeerId, msg: confab_protocol::ClientMessage) {
        let may_start_ringing = matches!(
            msg,
            confab_protocol::ClientMessage::Offer { .. }
                | confab_protocol::ClientMessage::Invite { .. }
        );
        let mut shared = self.lock();
        let outputs = shared.hub.handle(from, msg, Instant::now().into_std());
        shared.deliver(outputs);
        drop(shared);
        if may_start_ringing {
            self.ring_timer.notify_one();
        }
    }

    /// The connection with `outbox` ended. Unless a new connection has taken its session
    /// over, the peer leaves.
    pub fn leave(&self, id: &PeerId, outbox: &Outbox, clean: bool) {
        let mut shared = self.lock();
        if !shared.clients.get(id).is_some_and(|c| c.outbox.is(outbox)) {
            return;
        }
        shared.clients.remove(id);
        let outputs = shared.hub.leave(id, clean);
        shared.deliver(outputs);
    }

    /// Something another server of the cluster said.
    pub fn handle_cluster(&self, server: &ServerId, msg: ClusterMessage) {
        let mut shared = self.lock();
        let outputs = shared
            .hub
            .handle_cluster(server, msg, Instant::now().into_std());
        shared.deliver(outputs);
        drop(shared);
        // A relayed offer may start a call ringing, and a server heard from for the first
        // time brings a liveness deadline: the timer looks again.
        self.ring_timer.notify_one();
    }

    /// NATS is gone: the other servers' peers leave until it is back.
    pub fn cluster_lost(&self) {
        let mut shared = self.lock();
        shared.cluster_state = ClusterState::Lost;
        let outputs = shared.hub.cluster_lost();
        shared.deliver(outputs);
    }

    /// This server's own peers, to tell the cluster.
    pub fn roster(&self) -> Vec<ClusterMessage> {
        self.lock().hub.roster(false)
    }

    pub fn set_cluster_state(&self, state: ClusterState) {
        self.lock().cluster_state = state;
    }

    /// What `/healthz` says.
    fn health(&self) -> String {
        let shared = self.lock();
        let servers = shared.hub.server_count();
        match &shared.cluster_state {
            ClusterState::Alone => "ok\n".to_owned(),
            ClusterState::Connecting => "ok\ncluster: connecting to NATS\n".to_owned(),
            ClusterState::Connected => format!("ok\ncluster: connected, {servers} other servers\n"),
            ClusterState::Lost => {
                "ok\ncluster: NATS unreachable, serving this server's clients alone\n".to_owned()
            }
            ClusterState::Failed(err) => {
                format!("ok\ncluster: not joined ({err}), serving this server's clients alone\n")
            }
        }
    }

    fn websocket_config(&self) -> WebSocketConfig {
        let max = self.config.limits.max_message_bytes;
        WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(MAX_FRAME_BYTES)
            .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES.max(2 * MAX_FRAME_BYTES))
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }
}

/// Ends calls that ring too long. Sleeps until the hub's next deadline, or until a new
/// call starts ringing.
async fn ring_timer(server: Arc<Server>) {
    loop {
        let deadline = server.lock().hub.next_deadline();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {
                let mut shared = server.lock();
                let outputs = shared.hub.expire(Instant::now().into_std());
                shared.deliver(outputs);
            }
            () = server.ring_timer.notified() => {}
            () = server.stop.cancelled() => return,
        }
    }
}

async fn serve_tcp(
    server: Arc<Server>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    tcp: TcpStream,
    addr: SocketAddr,
) {
    // Signaling messages are small and latency-sensitive.
    if let Err(err) = tcp.set_nodelay(true) {
        debug!(%addr, "set_nodelay failed: {err}");
    }
    let handshake_timeout = server.config.limits.handshake_timeout;
    match tls {
        None => serve_http(server, TokioIo::new(tcp), addr).await,
        Some(acceptor) => {
            match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => serve_http(server, TokioIo::new(stream), addr).await,
                Ok(Err(err)) => debug!(%addr, "TLS handshake failed: {err}"),
                Err(_) => debug!(%addr, "TLS handshake timed out"),
            }
        }
    }
}

async fn serve_http<I>(server: Arc<Server>, io: I, addr: SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(|req| {
        let server = server.clone();
        async move { Ok::<_, Infallible>(route(req, &server, addr)) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(server.config.limits.handshake_timeout);
    let connection = builder.serve_connection(io, service).with_upgrades();
    tokio::select! {
        result = connection => {
            if let Err(err) = result {
                debug!(%addr, "HTTP connection error: {err}");
            }
        }
        () = server.stop.cancelled() => {}
    }
}

fn route(req: Request<Incoming>, server: &Arc<Server>, addr: SocketAddr) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if let Some(asset) = web::asset(path) {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok());
        return match *req.method() {
            Method::GET => web::response(asset, host, false),
            Method::HEAD => web::response(asset, host, true),
            _ => plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"),
        };
    }
    match (req.method(), path) {
        (&Method::GET, HEALTH_PATH) => plain(StatusCode::OK, server.health()),
        (&Method::GET, WS_PATH) => upgrade(req, server, addr),
        (_, HEALTH_PATH | WS_PATH) => plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"),
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn plain(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    // One request per connection: nothing idles on a kept-alive HTTP connection.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Answers a WebSocket upgrade request (RFC 6455 section 4.2) and starts its session
/// once hyper hands over the connection.
fn upgrade(
    mut req: Request<Incoming>,
    server: &Arc<Server>,
    addr: SocketAddr,
) -> Response<Full<Bytes>> {
    let headers = req.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let is_upgrade = has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
        && headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13");
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|_| is_upgrade)
    else {
        let mut response = plain(
            StatusCode::UPGRADE_REQUIRED,
            "this endpoint speaks WebSocket (version 13)\n",
        );
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return response;
    };
    let accept = derive_accept_key(key.as_bytes());

    let on_upgrade = hyper::upgrade::on(&mut req);
    let task_server = server.clone();
    server.tasks.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let config = task_server.websocket_config();
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                session::run(task_server, ws, addr).await;
            }
            Err(err) => debug!(%addr, "WebSocket upgrade failed: {err}"),
        }
    });

    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    // The accept key is base64, always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}
