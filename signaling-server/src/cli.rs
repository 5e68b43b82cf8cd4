//! The command line shared by `confab-signaling` and `confab server`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use confab_protocol::{IceServer, WS_PATH};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::cluster::ClusterConfig;
use crate::config::{Config, Limits};
use crate::tls::{self, TlsError};

/// Flags of the signaling server.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address and port to listen on.
    #[arg(long, env = "CONFAB_LISTEN", default_value = "0.0.0.0:8787")]
    pub listen: String,

    /// Shared secret every client must send in `hello`.
    #[arg(long, env = "CONFAB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// PEM certificate chain; serves wss:// instead of ws://.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// A STUN or TURN server to hand to clients (stun:, stuns:, turn: or turns: URL);
    /// repeat for several.
    #[arg(long = "ice-server", value_name = "URL")]
    pub ice_servers: Vec<String>,

    /// Username for the turn: and turns: servers.
    #[arg(long, requires = "turn_credential")]
    pub turn_username: Option<String>,

    /// Credential (password) for the turn: and turns: servers.
    #[arg(
        long,
        env = "CONFAB_TURN_CREDENTIAL",
        hide_env_values = true,
        requires = "turn_username"
    )]
    pub turn_credential: Option<String>,

    /// Most WebSocket connections at once.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,

    /// Largest message a client may send, in bytes.
    #[arg(long, default_value_t = Limits::default().max_message_bytes)]
    pub max_message_bytes: usize,

    /// Messages per second a client may send, sustained.
    #[arg(long, default_value_t = Limits::default().rate_per_sec)]
    pub rate_limit: u32,

    /// Messages a client may send in a burst.
    #[arg(long, default_value_t = Limits::default().rate_burst)]
    pub rate_burst: u32,

    /// Refused messages in a row after which a client is disconnected.
    #[arg(long, default_value_t = Limits::default().abuse_after)]
    pub abuse_after: u32,

    /// Seconds a new connection has to send hello.
    #[arg(long, default_value_t = Limits::default().hello_timeout.as_secs())]
    pub hello_timeout_secs: u64,

    /// Seconds between pings to each client.
    #[arg(long, default_value_t = Limits::default().ping_interval.as_secs())]
    pub ping_interval_secs: u64,

    /// Seconds of silence after which a client is disconnected.
    #[arg(long, default_value_t = Limits::default().idle_timeout.as_secs())]
    pub idle_timeout_secs: u64,

    /// Seconds a call may ring before it ends with `timeout`.
    #[arg(long, default_value_t = Limits::default().ring_timeout.as_secs())]
    pub ring_timeout_secs: u64,

    /// Bytes queued for one client before it is dropped as too slow to read.
    #[arg(long, default_value_t = Limits::default().max_queued_bytes)]
    pub max_queued_bytes: usize,

    /// A NATS server through which several signaling servers share one roster
    /// (nats://HOST:PORT or tls://HOST:PORT); repeat for several.
    #[arg(
        long = "cluster",
        value_name = "URL",
        env = "CONFAB_CLUSTER",
        value_delimiter = ','
    )]
    pub cluster: Vec<String>,

    /// The cluster's name: servers with the same name (and NATS) share a roster.
    #[arg(long, value_name = "NAME", default_value = "confab")]
    pub cluster_name: String,

    /// A NATS credentials file (JWT and NKey seed).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub cluster_creds: Option<PathBuf>,

    /// PEM root certificates to trust for TLS to NATS.
    #[arg(long, value_name = "PEM", requires = "cluster")]
    pub cluster_ca: Option<PathBuf>,

    /// PEM client certificate for NATS servers that verify clients.
    #[arg(long, value_name = "PEM", requires_all = ["cluster", "cluster_key"])]
    pub cluster_cert: Option<PathBuf>,

    /// PEM private key for --cluster-cert.
    #[arg(long, value_name = "PEM", requires = "cluster_cert")]
    pub cluster_key: Option<PathBuf>,

    /// Talk to NATS over TLS only.
    #[arg(long, requires = "cluster")]
    pub cluster_tls: bool,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("--ice-server {0}: not a stun:, stuns:, turn: or turns: URL")]
    IceServerUrl(String),
    #[error("TURN servers need --turn-username and --turn-credential")]
    TurnCredentials,
    #[error("--cluster-name {0:?}: use letters, digits, '-' and '_' only")]
    ClusterName(String),
    #[error("cannot read {0}: {1}")]
    ClusterFile(PathBuf, std::io::Error),
}

impl ServerArgs {
    /// The configuration these flags describe (reads the TLS files, if any).
    pub fn config(&self) -> Result<Config, ServeError> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(tls::server_config_from_pem(cert, key)?),
            _ => None,
        };
        Ok(Config {
            token: self.token.clone(),
            ice_servers: self.ice_servers()?,
            tls,
            cluster: self.cluster()?,
            limits: Limits {
                max_connections: self.max_connections,
                max_message_bytes: self.max_message_bytes,
                rate_per_sec: self.rate_limit,
                rate_burst: self.rate_burst,
                abuse_after: self.abuse_after,
                hello_timeout: Duration::from_secs(self.hello_timeout_secs),
                ping_interval: Duration::from_secs(self.ping_interval_secs.max(1)),
                idle_timeout: Duration::from_secs(self.idle_timeout_secs),
                ring_timeout: Duration::from_secs(self.ring_timeout_secs),
                max_queued_bytes: self.max_queued_bytes,
                ..Limits::default()
            },
        })
    }

    fn cluster(&self) -> Result<Option<ClusterConfig>, ServeError> {
        if self.cluster.is_empty() {
            return Ok(None);
        }
        // The name is a token of every NATS subject the servers use.
        let name = &self.cluster_name;
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        if !valid {
            return Err(ServeError::ClusterName(name.clone()));
        }
        // Files named on the command line are checked now, not when NATS is first reached.
        let files = [
            &self.cluster_creds,
            &self.cluster_ca,
            &self.cluster_cert,
            &self.cluster_key,
        ];
        for path in files.into_iter().flatten() {
            std::fs::File::open(path).map_err(|err| ServeError::ClusterFile(path.clone(), err))?;
        }
        Ok(Some(ClusterConfig {
            urls: self.cluster.clone(),
            name: name.clone(),
            credentials: self.cluster_creds.clone(),
            ca: self.cluster_ca.clone(),
            client_cert: self.cluster_cert.clone().zip(self.cluster_key.clone()),
            require_tls: self.cluster_tls,
        }))
    }

    /// STUN URLs become one entry without credentials; TURN URLs one entry with them.
    fn ice_servers(&self) -> Result<Vec<IceServer>, ServeError> {
        let (mut stun, mut turn) = (Vec::new(), Vec::new());
        for url in &self.ice_servers {
            match url.split_once(':').map(|(scheme, _)| scheme) {
                Some("stun" | "stuns") => stun.push(url.clone()),
                Some("turn" | "turns") => turn.push(url.clone()),
                _ => return Err(ServeError::IceServerUrl(url.clone())),
            }
        }
        let mut servers = Vec::new();
        if !stun.is_empty() {
            servers.push(IceServer {
                urls: stun,
                username: None,
                credential: None,
            });
        }
        if !turn.is_empty() {
            if self.turn_username.is_none() {
                return Err(ServeError::TurnCredentials);
            }
            servers.push(IceServer {
                urls: turn,
                username: self.turn_username.clone(),
                credential: self.turn_credential.clone(),
            });
        }
        Ok(servers)
    }
}

/// Runs the server as a program: binds, logs where it listens, serves until SIGINT or
/// SIGTERM, then shuts down gracefully.
pub async fn serve(args: ServerArgs) -> Result<(), ServeError> {
    let config = args.config()?;
    raise_fd_limit(config.limits.max_connections);
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: args.listen.clone(),
            source,
        })?;
    let scheme = if config.tls.is_some() { "wss" } else { "ws" };
    match listener.local_addr() {
        Ok(addr) => info!("listening on {scheme}://{addr}{WS_PATH}"),
        Err(err) => warn!("listening, address unknown: {err}"),
    }
    crate::run(listener, config, shutdown_signal()).await;
    Ok(())
}

/// Each connection is a file descriptor; the usual soft limit of 1024 would cap the
/// server far below `max_connections`.
fn raise_fd_limit(max_connections: usize) {
    let wanted = max_connections as u64 + 256;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) if limit < wanted => {
            warn!("open file limit is {limit}; fewer than {max_connections} connections will fit")
        }
        Ok(_) => {}
        Err(err) => warn!("cannot raise the open file limit: {err}"),
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            warn!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                warn!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("Ctrl-C received"),
        () = terminate => info!("SIGTERM received"),
    }
}

/// The log filter when `RUST_LOG` is not set.
const DEFAULT_LOG_FILTER: &str =
    "info,webrtc=warn,rtc=warn,rtc_ice=warn,rtc_dtls=warn,rtc_sctp=warn,rtc_srtp=warn";

/// Logs to stderr, filtered by `RUST_LOG` (default: `info`, but only warnings from the
/// WebRTC stack, which narrates every state change at `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    fn config(args: &[&str]) -> Result<Config, ServeError> {
        let cli = Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied()))
            .unwrap_or_else(|err| panic!("{err}"));
        cli.server.config()
    }

    #[test]
    fn cluster_flags_make_the_cluster_config_and_are_checked() {
        assert!(config(&[]).unwrap().cluster.is_none());
        let cluster = config(&[
            "--cluster",
            "nats://a:4222",
            "--cluster",
            "nats://b:4222,nats://c:4222",
            "--cluster-name",
            "office-1",
        ])
        .unwrap()
        .cluster
        .unwrap();
        assert_eq!(
            cluster.urls,
            ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
        );
        assert_eq!(cluster.name, "office-1");
        assert!(matches!(
            config(&["--cluster", "nats://a:4222", "--cluster-name", "a.b"]),
            Err(ServeError::ClusterName(_))
        ));
        assert!(matches!(
            config(&[
                "--cluster",
                "nats://a:4222",
                "--cluster-creds",
                "/nonexistent/x.creds"
            ]),
            Err(ServeError::ClusterFile(..))
        ));
    }

    #[test]
    fn ice_servers_are_grouped_with_turn_credentials() {
        let config = config(&[
            "--ice-server",
            "stun:stun.example.org:3478",
            "--ice-server",
            "turn:turn.example.org:3478?transport=udp",
            "--ice-server",
            "turns:turn.example.org:5349",
            "--turn-username",
            "u",
            "--turn-credential",
            "p",
        ])
        .unwrap();
        assert_eq!(
            config.ice_servers,
            [
                IceServer {
                    urls: vec!["stun:stun.example.org:3478".into()],
                    username: None,
                    credential: None,
                },
                IceServer {
                    urls: vec![
                        "turn:turn.example.org:3478?transport=udp".into(),
                        "turns:turn.example.org:5349".into()
                    ],
                    username: Some("u".into()),
                    credential: Some("p".into()),
                },
            ]
        );
    }

    #[test]
    fn limits_come_from_flags() {
        let config = config(&[
            "--rate-limit",
            "5",
            "--ring-timeout-secs",
            "30",
            "--token",
            "t",
        ])
        .unwrap();
        assert_eq!(config.limits.rate_per_sec, 5);
        assert_eq!(config.limits.ring_timeout, Duration::from_secs(30));
        assert_eq!(config.token.as_deref(), Some("t"));
        assert!(config.ice_servers.is_empty());
        assert!(config.tls.is_none());
    }

    #[test]
    fn bad_ice_urls_are_refused() {
        assert!(matches!(
            config(&["--ice-server", "https://example.org"]),
            Err(ServeError::IceServerUrl(_))
        ));
        assert!(matches!(
            config(&["--ice-server", "turn:example.org"]),
            Err(ServeError::TurnCredentials)
        ));
    }
}
