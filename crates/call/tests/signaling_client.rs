//! The signaling client against the real server over loopback.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::Duration;

use confab_call::signaling::{
    ServerStatus, SignalingConfig, SignalingEvent, SignalingHandle, spawn,
};
use confab_protocol::{CallId, ClientMessage, ErrorCode, PeerId, ServerMessage};
use confab_signaling::Config;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const PATIENCE: Duration = Duration::from_secs(10);

struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn serve(addr: SocketAddr, config: Config) -> Server {
    let listener = TcpListener::bind(addr).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(confab_signaling::run(listener, config, async {
        let _ = stopped.await;
    }));
    Server { stop, task }
}

impl Server {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

async fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Client {
    handle: SignalingHandle,
    events: mpsc::UnboundedReceiver<SignalingEvent>,
    stop: CancellationToken,
}

impl Client {
    fn start(addr: SocketAddr, name: &str, token: Option<&str>) -> Client {
        let (tx, events) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let config = SignalingConfig {
            url: format!("ws://{addr}/ws"),
            name: name.into(),
            token: token.map(str::to_owned),
        };
        let (handle, _task) = spawn(config, tx, stop.clone());
        Client {
            handle,
            events,
            stop,
        }
    }

    /// Waits for the first event `pick` accepts.
    async fn wait_for<T>(&mut self, mut pick: impl FnMut(&SignalingEvent) -> Option<T>) -> T {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let event = self.events.recv().await.expect("client stopped");
                if let Some(value) = pick(&event) {
                    return value;
                }
            }
        })
        .await
        .expect("event did not come in time")
    }

    async fn online(&mut self) -> PeerId {
        self.wait_for(|e| match e {
            SignalingEvent::Status(ServerStatus::Online { my_id }) => Some(my_id.clone()),
            _ => None,
        })
        .await
    }

    async fn roster_names(&mut self, expected: &[&str]) {
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        self.wait_for(|e| match e {
            SignalingEvent::Roster(peers) => {
                let names: Vec<String> = peers.iter().map(|p| p.name.clone()).collect();
                (names == expected).then_some(())
            }
            _ => None,
        })
        .await
    }
}

#[tokio::test]
async fn roster_and_relay_between_two_clients() {
    let addr = free_addr().await;
    let server = serve(addr, Config::default()).await;
    let mut alice = Client::start(addr, "Alice", None);
    alice.online().await;
    let mut bob = Client::start(addr, "Bob", None);
    let bob_id = bob.online().await;
    bob.roster_names(&["Alice"]).await;
    alice.roster_names(&["Bob"]).await;

    let call_id = CallId::new("c1").unwrap();
    assert!(alice.handle.send(ClientMessage::Offer {
        to: bob_id,
        call_id: call_id.clone(),
        sdp: "v=0".into(),
    }));
    let offer = bob
        .wait_for(|e| match e {
            SignalingEvent::Message(ServerMessage::Offer {
                from_name, call_id, ..
            }) => Some((from_name.clone(), call_id.clone())),
            _ => None,
        })
        .await;
    assert_eq!(offer, ("Alice".to_string(), call_id));

    bob.stop.cancel();
    alice.roster_names(&[]).await;
    alice.stop.cancel();
    server.shutdown().await;
}

#[tokio::test]
async fn reconnects_after_the_server_restarts() {
    let addr = free_addr().await;
    let server = serve(addr, Config::default()).await;
    let mut alice = Client::start(addr, "Alice", None);
    let first_id = alice.online().await;
    server.shutdown().await;
    let retry_in = alice
        .wait_for(|e| match e {
            SignalingEvent::Status(ServerStatus::Offline { retry_in, .. }) => Some(*retry_in),
            _ => None,
        })
        .await;
    assert!(
        retry_in <= Duration::from_secs(1),
        "a lost session retries quickly: {retry_in:?}"
    );

    let server = serve(addr, Config::default()).await;
    let second_id = alice.online().await;
    assert_ne!(first_id, second_id, "a new session, a new id");
    let mut bob = Client::start(addr, "Bob", None);
    bob.online().await;
    bob.roster_names(&["Alice"]).await;
    alice.stop.cancel();
    bob.stop.cancel();
    server.shutdown().await;
}

#[tokio::test]
async fn refusals_stop_the_client_with_the_reason() {
    let addr = free_addr().await;
    let server = serve(
        addr,
        Config {
            token: Some("secret".into()),
            ..Config::default()
        },
    )
    .await;
    let mut wrong = Client::start(addr, "Eve", Some("guess"));
    let code = wrong
        .wait_for(|e| match e {
            SignalingEvent::Status(ServerStatus::Refused { code, .. }) => Some(*code),
            _ => None,
        })
        .await;
    assert_eq!(code, ErrorCode::Unauthorized);
    // The client has stopped: its handle no longer takes messages.
    tokio::time::timeout(PATIENCE, async {
        while wrong.handle.send(ClientMessage::Hello {
            protocol: 1,
            name: "x".into(),
            token: None,
            resume: None,
        }) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the refused client must stop");

    let mut alice = Client::start(addr, "Alice", Some("secret"));
    alice.online().await;
    let mut twin = Client::start(addr, "ALICE", Some("secret"));
    let code = twin
        .wait_for(|e| match e {
            SignalingEvent::Status(ServerStatus::Refused { code, .. }) => Some(*code),
            _ => None,
        })
        .await;
    assert_eq!(code, ErrorCode::NameTaken);
    alice.stop.cancel();
    server.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_server_is_retried_with_backoff() {
    let addr = free_addr().await;
    let mut alice = Client::start(addr, "Alice", None);
    let mut waits = Vec::new();
    for _ in 0..2 {
        waits.push(
            alice
                .wait_for(|e| match e {
                    SignalingEvent::Status(ServerStatus::Offline { retry_in, .. }) => {
                        Some(*retry_in)
                    }
                    _ => None,
                })
                .await,
        );
    }
    assert_eq!(waits, [Duration::from_millis(500), Duration::from_secs(1)]);
    // It connects once a server appears.
    let server = serve(addr, Config::default()).await;
    alice.online().await;
    alice.stop.cancel();
    server.shutdown().await;
}

/// The client's timing in tokio's paused clock: against a port nobody listens on, each
/// retry starts exactly the announced backoff after the failure, doubling from 500 ms to
/// the 16 s cap. A minute of backoff runs in no time.
#[tokio::test(start_paused = true)]
async fn retries_start_exactly_their_backoff_after_each_failure_in_fake_time() {
    let addr = free_addr().await;
    let mut alice = Client::start(addr, "Alice", None);
    let mut waits = Vec::new();
    let mut offline_at = None;
    while waits.len() < 7 {
        let event = alice.events.recv().await.expect("client stopped");
        match event {
            SignalingEvent::Status(ServerStatus::Offline { retry_in, .. }) => {
                offline_at = Some((tokio::time::Instant::now(), retry_in));
            }
            SignalingEvent::Status(ServerStatus::Connecting { attempt }) if attempt > 1 => {
                let (at, retry_in) = offline_at.take().expect("offline before a retry");
                assert_eq!(
                    tokio::time::Instant::now() - at,
                    retry_in,
                    "attempt {attempt}"
                );
                waits.push(retry_in.as_millis());
            }
            _ => {}
        }
    }
    assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 16000]);
    alice.stop.cancel();
}
