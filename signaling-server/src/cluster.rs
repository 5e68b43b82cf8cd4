//! The cluster's transport: NATS, through `async-nats`.
//!
//! Every server of cluster `NAME` subscribes to `confab.NAME.all` (what is said to all) and
//! `confab.NAME.server.ID` (what is said to it alone), and publishes JSON envelopes
//! `{"server": ID, "msg": ...}` stamped with its own id. What they carry, and what the
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
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::hub::{ClusterMessage, ServerId};
use crate::server::Server;

/// How often a server says it is alive.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// A server silent this long is gone: its peers leave.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(3);

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
    prefix: String,
}

impl Subjects {
    fn new(cluster: &str) -> Self {
        Subjects {
            all: format!("confab.{cluster}.all"),
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
    let client = options(config, &me)
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
    let publish = |to: Option<ServerId>, msg: ClusterMessage| {
        let client = client.clone();
        let subject = to.map_or_else(|| subjects.all.clone(), |to| subjects.of(&to));
        let envelope = Envelope {
            server: me.clone(),
            msg,
        };
        async move {
            let Ok(payload) = serde_json::to_vec(&envelope) else {
                return;
            };
            if let Err(err) = client.publish(subject, payload.into()).await {
                debug!("cannot publish to NATS: {err}");
            }
        }
    };
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
            _ = heartbeat.tick(), if connected => publish(None, ClusterMessage::Heartbeat).await,
            Some(event) = events.recv() => match event {
                Event::Connected => {
                    info!(cluster = %config.name, "connected to NATS");
                    connected = true;
                    server.set_cluster_state(ClusterState::Connected);
                    for part in server.roster() {
                        publish(None, part).await;
                    }
                }
                Event::Disconnected => {
                    warn!("lost NATS: serving this server's clients alone until it is back");
                    connected = false;
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

fn receive(server: &Server, me: &ServerId, payload: &[u8]) {
    match serde_json::from_slice::<Envelope>(payload) {
        Ok(envelope) if envelope.server == *me => {}
        Ok(envelope) => server.handle_cluster(&envelope.server, envelope.msg),
        Err(err) => debug!("ignoring a malformed cluster message: {err}"),
    }
}

async fn options(config: &ClusterConfig, me: &ServerId) -> Result<ConnectOptions, ClusterError> {
    let mut options = ConnectOptions::new()
        .name(format!("confab-signaling {me}"))
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
