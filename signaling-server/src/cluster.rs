//! The cluster's transport: NATS, through `async-nats`.
//!
//! Every server of cluster `NAME` subscribes to `confab.NAME.all` (what is said to all),
//! `confab.NAME.alive` (heartbeats) and `confab.NAME.server.ID` (what is said to it alone),
//! and publishes JSON envelopes `{"server": ID, "msg": ...}` stamped with its own id.
//! Heartbeats have a subject and a NATS connection of their own: a backlog of news
//! (thousands of clients joining at once) on the main connection never holds them up long
//! enough to make a busy server look dead. What they carry, and what the
//! servers do with them, is the hub's business ([`crate::hub::ClusterMessage`]); this
//! module only moves them, says it is alive every [`HEARTBEAT`], and tells the hub when
//! NATS goes away (the remote peers leave) and comes back (the rosters are exchanged
//! again).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::{ConnectOptions, Event};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::hub::{ClusterMessage, ServerId};
use crate::server::Server;

/// How often a server says it is alive.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// A server silent this long is gone: its peers leave.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait between attempts to reach NATS again.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// How to reach the cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// NATS servers (`nats://HOST:PORT`, `tls://HOST:PORT`); any one will do.
    pub urls: Vec<String>,
    /// Namespaces the subjects: servers of one cluster share it.
    pub name: String,
    /// A NATS credentials file (JWT and NKey seed).
    pub credentials: Option<PathBuf>,
    /// PEM root certificates to trust for TLS to NATS.
    pub ca: Option<PathBuf>,
    /// PEM client certificate and key, for NATS servers that verify clients.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Refuse to talk to NATS without TLS.
    pub require_tls: bool,
}

/// A message between servers, as it travels.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    server: ServerId,
    msg: ClusterMessage,
}

/// What the hub asks to send: to one server, or to all.
pub(crate) type Outgoing = (Option<ServerId>, ClusterMessage);

struct Subjects {
    all: String,
    alive: String,
    prefix: String,
}

impl Subjects {
    fn new(cluster: &str) -> Self {
        Subjects {
            all: format!("confab.{cluster}.all"),
            alive: format!("confab.{cluster}.alive"),
            prefix: format!("confab.{cluster}.server."),
        }
    }

    fn of(&self, server: &ServerId) -> String {
        format!("{}{server}", self.prefix)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read the NATS credentials file {0}: {1}")]
    Credentials(PathBuf, std::io::Error),
    #[error("cannot set up NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    #[error("cannot subscribe on NATS: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
}

/// Carries the hub's cluster messages until the server stops; says `bye` on the way out.
pub(crate) async fn run(
    server: Arc<Server>,
    config: ClusterConfig,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
) {
    if let Err(err) = serve(&server, &config, &mut outgoing).await {
        warn!("the cluster is out of reach, serving this server's clients alone: {err}");
        server.set_cluster_state(ClusterState::Failed(err.to_string()));
    }
}

async fn serve(
    server: &Arc<Server>,
    config: &ClusterConfig,
    outgoing: &mut mpsc::UnboundedReceiver<Outgoing>,
) -> Result<(), ClusterError> {
    let me = server.server_id.clone();
    let subjects = Subjects::new(&config.name);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let client = options(config, &me, "")
        .await?
        .event_callback(move |event| {
            let events_tx = events_tx.clone();
            async move {
                let _ = events_tx.send(event);
            }
        })
        .connect(config.urls.clone())
        .await?;
    let mut all = client.subscribe(subjects.all.clone()).await?;
    let mut mine = client.subscribe(subjects.of(&me)).await?;
    let heartbeats = options(config, &me, " heartbeats")
        .await?
        .connect(config.urls.clone())
        .await?;
    let alive = heartbeats.subscribe(subjects.alive.clone()).await?;
    let (connected_tx, connected_rx) = watch::channel(false);
    server.tasks.spawn(beat(
        server.clone(),
        (heartbeats, subjects.alive.clone()),
        alive,
        connected_rx,
    ));
    let publish = |to: Option<ServerId>, msg: ClusterMessage| {
        let client = client.clone();
        let subject = to.map_or_else(|| subjects.all.clone(), |to| subjects.of(&to));
        let payload = encode(&me, msg);
        async move {
            if let Err(err) = client.publish(subject, payload.into()).await {
                debug!("cannot publish to NATS: {err}");
            }
        }
    };
    // Only while connected is anything published: what the hub says in between would only
    // queue up, and the roster sent on (re)connecting says it all anyway.
    let mut connected = false;
    loop {
        tokio::select! {
            Some(message) = all.next() => receive(server, &me, &message.payload),
            Some(message) = mine.next() => receive(server, &me, &message.payload),
            Some((to, msg)) = outgoing.recv() => {
                if connected {
                    publish(to, msg).await;
                }
            }
            Some(event) = events.recv() => match event {
                Event::Connected => {
                    info!(cluster = %config.name, "connected to NATS");
                    connected = true;
                    connected_tx.send_replace(true);
                    server.set_cluster_state(ClusterState::Connected);
                    for part in server.roster() {
                        publish(None, part).await;
                    }
                }
                Event::Disconnected => {
                    warn!("lost NATS: serving this server's clients alone until it is back");
                    connected = false;
                    connected_tx.send_replace(false);
                    server.cluster_lost();
                }
                other => debug!("NATS: {other}"),
            },
            () = server.stop.cancelled() => {
                publish(None, ClusterMessage::Bye).await;
                if let Err(err) = client.flush().await {
                    debug!("cannot flush NATS on the way out: {err}");
                }
                return Ok(());
            }
        }
    }
}

/// Says this server is alive every [`HEARTBEAT`] while its main connection is up, and hears
/// the others say it, on a connection of its own.
async fn beat(
    server: Arc<Server>,
    (client, subject): (async_nats::Client, String),
    mut alive: async_nats::Subscriber,
    connected: watch::Receiver<bool>,
) {
    let me = server.server_id.clone();
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(message) = alive.next() => receive(&server, &me, &message.payload),
            _ = tick.tick() => {
                if *connected.borrow() {
                    let payload = encode(&me, ClusterMessage::Heartbeat);
                    if let Err(err) = client.publish(subject.clone(), payload.into()).await {
                        debug!("cannot publish a heartbeat: {err}");
                    }
                }
            }
            () = server.stop.cancelled() => return,
        }
    }
}

/// `msg` in an envelope stamped with this server's id.
fn encode(me: &ServerId, msg: ClusterMessage) -> Vec<u8> {
    let envelope = Envelope {
        server: me.clone(),
        msg,
    };
    // Plain data with string keys: serializing cannot fail.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

fn receive(server: &Server, me: &ServerId, payload: &[u8]) {
    match serde_json::from_slice::<Envelope>(payload) {
        Ok(envelope) if envelope.server == *me => {}
        Ok(envelope) => server.handle_cluster(&envelope.server, envelope.msg),
        Err(err) => debug!("ignoring a malformed cluster message: {err}"),
    }
}

/// How to connect; `purpose` ends the connection's name as NATS shows it.
async fn options(
    config: &ClusterConfig,
    me: &ServerId,
    purpose: &str,
) -> Result<ConnectOptions, ClusterError> {
    let mut options = ConnectOptions::new()
        .name(format!("confab-signaling {me}{purpose}"))
        // What this server publishes to all does not come back to it.
        .no_echo()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            (Duration::from_millis(100) * attempts as u32).min(MAX_RECONNECT_DELAY)
        });
    if let Some(path) = &config.credentials {
        options = options
            .credentials_file(path)
            .await
            .map_err(|err| ClusterError::Credentials(path.clone(), err))?;
    }
    if let Some(ca) = &config.ca {
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &config.client_cert {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(options.require_tls(config.require_tls))
}

/// How this server stands with the cluster, for `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClusterState {
    /// Not in a cluster.
    Alone,
    Connecting,
    Connected,
    /// NATS went away after it was reached.
    Lost,
    /// The cluster could not be set up at all.
    Failed(String),
}
