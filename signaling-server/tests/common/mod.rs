//! A real server on 127.0.0.1:0 and a small WebSocket client for driving it.

#![allow(dead_code)] // Each test binary uses a different part of this.

use std::net::SocketAddr;
use std::time::Duration;

use confab_signaling::{Config, Limits};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expected event may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(5);

pub fn offer(to: &str, call_id: &str) -> Value {
    json!({"type":"offer","to":to,"call_id":call_id,"sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"})
}

pub fn answer(to: &str, call_id: &str) -> Value {
    json!({"type":"answer","to":to,"call_id":call_id,"sdp":"v=0 answer"})
}

pub fn hangup(to: &str, call_id: &str, reason: &str) -> Value {
    json!({"type":"hangup","to":to,"call_id":call_id,"reason":reason})
}

/// Sends one raw HTTP request and reads the answer until the server closes.
pub async fn http(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(PATIENCE, tcp.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    response
}

pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(confab_signaling::run(listener, config, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub async fn with_limits(limits: Limits) -> TestServer {
        Self::start(Config {
            limits,
            ..Config::default()
        })
        .await
    }

    pub async fn default() -> TestServer {
        Self::start(Config::default()).await
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Triggers a graceful shutdown and waits for `run` to return. The clients still
    /// connected answer the server's close frame, as real clients do; a client left
    /// unread would hold each session for the server's whole close timeout (2 s).
    pub async fn shutdown(mut self, connected: impl IntoIterator<Item = Client>) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        futures_util::future::join_all(connected.into_iter().map(Client::answer_shutdown)).await;
        tokio::time::timeout(PATIENCE * 2, &mut self.task)
            .await
            .expect("server did not shut down in time")
            .unwrap();
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub id: String,
}

impl Client {
    pub async fn connect(server: &TestServer) -> Client {
        Client::connect_to(&server.url()).await
    }

    /// Connects to the server at `url` (`ws://HOST:PORT/ws`).
    pub async fn connect_to(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Client {
            ws,
            id: String::new(),
        }
    }

    /// Connects and says hello (protocol 1); returns the client and its welcome.
    pub async fn join(server: &TestServer, name: &str) -> (Client, Value) {
        Client::join_speaking(server, name, 1).await
    }

    /// Connects and says hello with `protocol`; returns the client and its welcome.
    pub async fn join_speaking(server: &TestServer, name: &str, protocol: u32) -> (Client, Value) {
        Client::join_at(&server.url(), name, protocol).await
    }

    /// Connects to `url` and says hello with `protocol`; returns the client and its welcome.
    pub async fn join_at(url: &str, name: &str, protocol: u32) -> (Client, Value) {
        let mut client = Client::connect_to(url).await;
        client
            .send(json!({"type":"hello","protocol":protocol,"name":name}))
            .await;
        let welcome = client.recv_type("welcome").await;
        client.id = welcome["id"].as_str().unwrap().to_owned();
        (client, welcome)
    }

    /// Joins one client per name and consumes the `peer_joined` news each receives about
    /// the later ones, so every returned client's next message is a fresh one.
    pub async fn join_all<const N: usize>(server: &TestServer, names: [&str; N]) -> [Client; N] {
        let mut clients = Vec::with_capacity(N);
        for name in names {
            clients.push(Client::join(server, name).await.0);
        }
        for (i, client) in clients.iter_mut().enumerate() {
            for _ in i + 1..N {
                client.recv_type("peer_joined").await;
            }
        }
        match clients.try_into() {
            Ok(clients) => clients,
            Err(_) => unreachable!("one client per name"),
        }
    }

    pub async fn send(&mut self, msg: Value) {
        self.send_text(&msg.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next message from the server, as JSON. Fails on timeout or close.
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("no message from the server in time")
                .expect("connection ended")
                .expect("connection failed");
            match msg {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// The next message, which must be of type `ty`.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        let msg = self.recv().await;
        assert_eq!(msg["type"], ty, "unexpected message: {msg}");
        msg
    }

    /// The next message other than roster news, which must be of type `ty`.
    pub async fn recv_past_roster(&mut self, ty: &str) -> Value {
        loop {
            let msg = self.recv().await;
            let kind = msg["type"].as_str().unwrap_or_default();
            if !matches!(kind, "peer_joined" | "peer_left" | "peer_updated") {
                assert_eq!(kind, ty, "unexpected message: {msg}");
                return msg;
            }
        }
    }

    /// The next message, which must be an error with `code`.
    pub async fn recv_error(&mut self, code: &str) -> Value {
        let msg = self.recv_type("error").await;
        assert_eq!(msg["code"], code, "unexpected error: {msg}");
        msg
    }

    /// Reads until the server closes; returns the close frame it sent.
    pub async fn recv_close(&mut self) -> Option<CloseFrame> {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("the server did not close in time");
            match next {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("connection failed before a close frame: {err}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    }

    pub async fn expect_close_code(&mut self, code: CloseCode) {
        let frame = self.recv_close().await.expect("close frame without a code");
        assert_eq!(frame.code, code, "close reason: {}", frame.reason);
    }

    /// Reads up to the server's going-away close frame, then on to the end of the
    /// connection, which sends the client's close reply.
    pub async fn answer_shutdown(mut self) {
        self.expect_close_code(CloseCode::Away).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(PATIENCE, self.ws.next()).await {}
    }

    pub async fn close(mut self) {
        self.ws.close(None).await.unwrap();
        // Drain until the server acknowledges.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(PATIENCE, self.ws.next()).await {}
    }
}
