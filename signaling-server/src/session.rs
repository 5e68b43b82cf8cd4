//! One client's WebSocket session, from upgrade to close.
//!
//! A session is a single task that reads frames, writes its outbound queue and watches its
//! timers. It holds no shared state itself: everything a client says that concerns others
//! goes through [`Server`]. It owns the rules that concern only the connection: `hello`
//! first (and in time), the token, the rate limit, the size limit, liveness pings, and how
//! the connection is closed.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use confab_protocol::{
    ClientMessage, ErrorCode, OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION, PeerId, Resume,
    parse_client_message,
};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::hub::error_message;
use crate::outbox::{self, Outbox, OutboxRx};
use crate::rate::RateLimiter;
use crate::server::{Client, MAX_FRAME_BYTES, Server, encode};

/// How long closing may take: flushing what is queued, the close frame, and the client's
/// close reply. A client that does not cooperate is simply dropped after this.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest parser error echoed back in a `bad_message` reply.
const MAX_ERROR_DETAIL: usize = 200;

type Sink<S> = SplitSink<WebSocketStream<S>, Message>;
type Stream<S> = SplitStream<WebSocketStream<S>>;

/// How a session ended.
#[derive(Debug)]
enum Exit {
    /// The client sent a close frame.
    ClientClosed,
    /// The transport failed or ended without a close frame.
    Lost,
    /// The server closes the connection with this code and reason.
    Close(CloseCode, &'static str),
}

pub(crate) async fn run<S>(server: Arc<Server>, ws: WebSocketStream<S>, addr: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (sink, mut stream) = ws.split();
    let mut writer = Writer {
        sink,
        mid_message: false,
    };
    let limits = &server.config.limits;
    let kick = server.stop.child_token();
    let (outbox, mut queue) = outbox::channel(limits.max_queued_bytes, kick.clone());
    let Some(_slot) = server.try_take_slot() else {
        info!(%addr, "refusing connection: server full");
        let error = error_message(
            ErrorCode::ServerFull,
            "the server is full, try again later",
            None,
        );
        outbox.send(encode(&error));
        let exit = Exit::Close(CloseCode::Again, "server full");
        writer.finish(&mut stream, &mut queue, exit).await;
        return;
    };

    let replaced = CancellationToken::new();
    let name_lost = CancellationToken::new();
    let mut session = Session {
        server: &server,
        outbox,
        replaced: replaced.clone(),
        name_lost: name_lost.clone(),
        peer: None,
        rate: RateLimiter::new(
            limits.rate_per_sec,
            limits.rate_burst,
            limits.abuse_after,
            Instant::now().into_std(),
        ),
    };
    let exit = tokio::select! {
        exit = session.read(&mut stream) => exit,
        exit = writer.run(&mut queue, limits.ping_interval) => exit,
        () = replaced.cancelled() => Exit::Close(CloseCode::Normal, "resumed on another connection"),
        () = name_lost.cancelled() => Exit::Close(CloseCode::Policy, "name taken on another server"),
        () = kick.cancelled() => if server.stop.is_cancelled() {
            Exit::Close(CloseCode::Away, "server shutting down")
        } else {
            info!(%addr, "dropping a client that does not read its messages");
            Exit::Close(CloseCode::Policy, "not reading fast enough")
        },
    };
    debug!(%addr, ?exit, "session ends");
    if let Some(id) = session.peer.take() {
        server.leave(&id, &session.outbox, matches!(exit, Exit::ClientClosed));
    }
    drop(session);
    writer.finish(&mut stream, &mut queue, exit).await;
}

struct Session<'a> {
    server: &'a Server,
    /// This session's own outbound queue, for replies.
    outbox: Outbox,
    /// Cancelled when another connection takes this session over.
    replaced: CancellationToken,
    /// Cancelled when a peer of another server took this peer's name at the same moment.
    name_lost: CancellationToken,
    /// Set once `hello` succeeded.
    peer: Option<PeerId>,
    rate: RateLimiter,
}

impl Session<'_> {
    async fn read<S>(&mut self, stream: &mut Stream<S>) -> Exit
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let limits = &self.server.config.limits;
        let hello_deadline = Instant::now() + limits.hello_timeout;
        let mut last_heard = Instant::now();
        loop {
            let idle_deadline = last_heard + limits.idle_timeout;
            let deadline = match self.peer {
                None => hello_deadline.min(idle_deadline),
                Some(_) => idle_deadline,
            };
            let frame = tokio::select! {
                frame = stream.next() => frame,
                () = tokio::time::sleep_until(deadline) => {
                    return if self.peer.is_none() && deadline == hello_deadline {
                        Exit::Close(CloseCode::Policy, "no hello in time")
                    } else {
                        Exit::Close(CloseCode::Away, "connection idle")
                    };
                }
            };
            let now = Instant::now();
            last_heard = now;
            let msg = match frame {
                None => return Exit::Lost,
                Some(Ok(msg)) => msg,
                Some(Err(WsError::Capacity(_))) => {
                    let max = limits.max_message_bytes;
                    self.refuse(
                        ErrorCode::TooLarge,
                        &format!("messages are limited to {max} bytes"),
                    );
                    return Exit::Close(CloseCode::Size, "message too large");
                }
                Some(Err(WsError::Utf8(_))) => {
                    self.refuse(ErrorCode::BadMessage, "text frame is not valid UTF-8");
                    return Exit::Close(CloseCode::Invalid, "invalid UTF-8");
                }
                Some(Err(err)) => {
                    debug!("read error: {err}");
                    return Exit::Lost;
                }
            };
            if let Message::Close(_) = msg {
                return Exit::ClientClosed;
            }
            if !self.rate.allow(now.into_std()) {
                if self.rate.is_abusive() {
                    return Exit::Close(CloseCode::Policy, "rate limit exceeded");
                }
                self.refuse(
                    ErrorCode::RateLimited,
                    "too many messages; this one was dropped",
                );
                continue;
            }
            match msg {
                Message::Text(text) => {
                    if let Some(exit) = self.on_text(&text) {
                        return exit;
                    }
                }
                Message::Binary(_) => {
                    self.refuse(
                        ErrorCode::BadMessage,
                        "binary frames are not supported; send JSON text",
                    );
                }
                // Pings are answered by the WebSocket layer; any frame counts as liveness.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_) => {}
            }
        }
    }

    fn on_text(&mut self, text: &str) -> Option<Exit> {
        let msg = match parse_client_message(text) {
            Ok(msg) => msg,
            Err(err) => {
                let mut detail = err.to_string();
                if detail.len() > MAX_ERROR_DETAIL {
                    let cut = (0..=MAX_ERROR_DETAIL)
                        .rev()
                        .find(|i| detail.is_char_boundary(*i));
                    detail.truncate(cut.unwrap_or(0));
                }
                self.refuse(
                    ErrorCode::BadMessage,
                    &format!("malformed message: {detail}"),
                );
                return None;
            }
        };
        match (&self.peer, msg) {
            (Some(id), msg) => {
                self.server.handle(id, msg);
                None
            }
            (
                None,
                ClientMessage::Hello {
                    protocol,
                    name,
                    token,
                    resume,
                },
            ) => self.hello(protocol, &name, token.as_deref(), resume.as_ref()),
            (None, _) => {
                self.refuse(ErrorCode::NotLoggedIn, "send hello first");
                None
            }
        }
    }

    fn hello(
        &mut self,
        protocol: u32,
        name: &str,
        token: Option<&str>,
        resume: Option<&Resume>,
    ) -> Option<Exit> {
        if !(OLDEST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&protocol) {
            self.refuse(
                ErrorCode::ProtocolMismatch,
                &format!(
                    "this server speaks protocols {OLDEST_PROTOCOL_VERSION} to {PROTOCOL_VERSION}, not {protocol}"
                ),
            );
            return Some(Exit::Close(
                CloseCode::Protocol,
                "unsupported protocol version",
            ));
        }
        if let Some(expected) = &self.server.config.token {
            let given = token.unwrap_or_default().as_bytes();
            if !bool::from(given.ct_eq(expected.as_bytes())) {
                self.refuse(ErrorCode::Unauthorized, "missing or wrong token");
                return Some(Exit::Close(CloseCode::Policy, "unauthorized"));
            }
        }
        let client = || Client {
            outbox: self.outbox.clone(),
            replaced: self.replaced.clone(),
            name_lost: self.name_lost.clone(),
        };
        if let Some(resume) = resume
            && self.server.resume(resume, name, new_secret(), client())
        {
            debug!(id = %resume.id, "resumed");
            self.peer = Some(resume.id.clone());
            return None;
        }
        let id = new_peer_id();
        match self
            .server
            .join((id.clone(), new_secret()), name, protocol, client())
        {
            Ok(()) => {
                debug!(%id, "joined");
                self.peer = Some(id);
            }
            // The client may retry with another name.
            Err(err) => self.refuse(err.code(), &err.to_string()),
        }
        None
    }

    /// Queues an `error` reply to this client.
    fn refuse(&self, code: ErrorCode, message: &str) {
        self.outbox
            .send(encode(&error_message(code, message, None)));
    }
}

/// A fresh secret for taking a session over: 122 random bits from the operating system.
fn new_secret() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A fresh unguessable peer id: 122 random bits from the operating system.
#[allow(clippy::expect_used, reason = "32 hex digits are always a valid id")]
fn new_peer_id() -> PeerId {
    let id = uuid::Uuid::new_v4().simple().to_string();
    PeerId::new(id).expect("a UUID in simple form is 32 hex digits, a valid id")
}

/// The writing half of the connection.
struct Writer<S> {
    sink: Sink<S>,
    /// Some frames of a fragmented message are written but not its last: nothing but
    /// control frames (close) may be written until it is complete.
    mid_message: bool,
}

impl<S> Writer<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Writes queued messages and pings the client every `ping_interval`.
    async fn run(&mut self, queue: &mut OutboxRx, ping_interval: Duration) -> Exit {
        let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
        loop {
            let result = tokio::select! {
                batch = queue.recv_all() => self.write_batch(queue, batch).await,
                _ = ping.tick() => self.sink.send(Message::Ping(Bytes::new())).await,
            };
            if let Err(err) = result {
                debug!("write error: {err}");
                return Exit::Lost;
            }
        }
    }

    /// Writes a batch of messages with a single flush at the end.
    async fn write_batch(
        &mut self,
        queue: &mut OutboxRx,
        batch: VecDeque<Utf8Bytes>,
    ) -> Result<(), WsError> {
        for text in batch {
            let len = text.len();
            self.feed_text(text).await?;
            queue.written(len);
        }
        self.sink.flush().await
    }

    /// Buffers one text message, split into frames of at most [`MAX_FRAME_BYTES`].
    async fn feed_text(&mut self, text: Utf8Bytes) -> Result<(), WsError> {
        if text.len() <= MAX_FRAME_BYTES {
            return self.sink.feed(Message::Text(text)).await;
        }
        let bytes = Bytes::from(text);
        let mut start = 0;
        self.mid_message = true;
        while start < bytes.len() {
            let end = (start + MAX_FRAME_BYTES).min(bytes.len());
            // Fragments may split a UTF-8 sequence: only the whole message must be valid.
            let opcode = if start == 0 {
                Data::Text
            } else {
                Data::Continue
            };
            let frame = Frame::message(
                bytes.slice(start..end),
                OpCode::Data(opcode),
                end == bytes.len(),
            );
            self.sink.feed(Message::Frame(frame)).await?;
            start = end;
        }
        self.mid_message = false;
        Ok(())
    }

    /// Closes the connection: delivers what is still queued (the error explaining the
    /// close, say), sends the close frame and waits briefly for the client's reply.
    async fn finish(&mut self, stream: &mut Stream<S>, queue: &mut OutboxRx, exit: Exit) {
        let close = async {
            match exit {
                Exit::Lost => return,
                // The WebSocket layer has queued the reply to the client's close frame.
                Exit::ClientClosed => {
                    let _ = self.sink.close().await;
                    return;
                }
                Exit::Close(code, reason) => {
                    // A message cut short by the close cannot be completed, and no other
                    // may start inside it; the close frame may.
                    if !self.mid_message {
                        for text in queue.take_all() {
                            if self.feed_text(text).await.is_err() {
                                return;
                            }
                        }
                    }
                    let frame = CloseFrame {
                        code,
                        reason: Utf8Bytes::from_static(reason),
                    };
                    if self.sink.send(Message::Close(Some(frame))).await.is_err() {
                        return;
                    }
                }
            }
            // Wait for the client's close frame (or the end of the stream).
            while let Some(Ok(msg)) = stream.next().await {
                if let Message::Close(_) = msg {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
    }
}
