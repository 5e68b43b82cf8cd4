//! The bundled signaling server, started in-process when the configured server is on this
//! machine and nothing answers there, so `confab` alone works on a fresh machine.
//!
//! It listens on every interface (`0.0.0.0:PORT`), so a Confab elsewhere on the LAN can
//! use this machine's address as its server URL ([`lan_urls`]). It starts by itself only
//! where the user meant it to run: the default port, a port they chose to host on, or the
//! port of a server they were using (taking over from a Confab that quit). A mistyped
//! port is offered instead ([`LocalServer::NotHosted`]), never opened silently.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How long a local "is anyone listening" probe may take. Loopback answers in
/// microseconds; this only bounds a wedged stack.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// What happened when the app looked for its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalServer {
    /// The URL names another machine (or wss://): nothing to do here.
    Remote,
    /// Something already listens on the port: presumably a Confab server.
    AlreadyRunning,
    /// We started the bundled server.
    Started { port: u16 },
    /// Nothing answers on this local port and we may not start a server there unasked.
    NotHosted { port: u16 },
    /// It should run here, but could not be started.
    Failed(String),
}

/// The port of a `ws://` URL whose host is this machine, else `None`.
pub fn local_port(url: &str) -> Option<u16> {
    let rest = url.trim().strip_prefix("ws://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = match authority.strip_prefix('[') {
        // [::1]:8787
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let is_local = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    if !is_local {
        return None;
    }
    match port {
        Some(port) => port.parse().ok(),
        None => Some(80),
    }
}

/// The port the bundled server uses unless the user chooses another.
pub const DEFAULT_PORT: u16 = 8787;

/// Makes sure a server answers at `url` if it is a local one: starts the bundled server
/// when nothing listens there and `may_start(port)` allows it. The server stops when
/// `stop` is cancelled.
pub async fn ensure(
    url: &str,
    stop: CancellationToken,
    may_start: impl FnOnce(u16) -> bool,
) -> LocalServer {
    let Some(port) = local_port(url) else {
        return LocalServer::Remote;
    };
    let probe = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    if let Ok(Ok(_)) = tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(probe)).await {
        return LocalServer::AlreadyRunning;
    }
    if !may_start(port) {
        return LocalServer::NotHosted { port };
    }
    let listener = match TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await {
        Ok(listener) => listener,
        Err(err) => {
            return LocalServer::Failed(format!(
                "Could not start the bundled server on port {port}: {err}"
            ));
        }
    };
    let config = confab_signaling::Config::default();
    tokio::spawn(async move {
        confab_signaling::run(listener, config, stop.cancelled_owned()).await;
    });
    tracing::info!("started the bundled signaling server on port {port}");
    LocalServer::Started { port }
}

/// The addresses others on this machine's networks can use to reach a server hosted
/// here on `port`: IPv4 first, loopback and link-local left out.
pub fn lan_urls(port: u16) -> Vec<String> {
    let mut ips: Vec<IpAddr> = match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces.into_iter().map(|i| i.ip()).collect(),
        Err(err) => {
            tracing::warn!("cannot list this machine's addresses: {err}");
            Vec::new()
        }
    };
    ips.retain(|ip| match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
        IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unicast_link_local(),
    });
    ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    ips.dedup();
    ips.into_iter()
        .map(|ip| format!("ws://{}/ws", SocketAddr::new(ip, port)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_urls_are_recognised() {
        let check =
            |url: &str, expected: Option<u16>| assert_eq!(local_port(url), expected, "{url}");
        check("ws://127.0.0.1:8787/ws", Some(8787));
        check("ws://localhost:9000/ws", Some(9000));
        check("ws://LOCALHOST/ws", Some(80));
        check("ws://[::1]:8787/ws", Some(8787));
        check("ws://0.0.0.0:8787/ws", Some(8787));
        check("ws://192.168.1.20:8787/ws", None);
        check("ws://example.org:8787/ws", None);
        check("wss://127.0.0.1:8787/ws", None);
        check("ws://127.0.0.1:notaport/ws", None);
        check("garbage", None);
    }

    #[tokio::test]
    async fn starts_once_then_finds_itself_running() {
        // A free port below the ephemeral range (from 32768), so a parallel test's
        // connection cannot take it between this check and `ensure`.
        let port = (24000..32768)
            .find(|&port| std::net::TcpListener::bind(("0.0.0.0", port)).is_ok())
            .expect("a free port");
        let url = format!("ws://127.0.0.1:{port}/ws");
        let stop = CancellationToken::new();
        assert_eq!(
            ensure(&url, stop.clone(), |_| false).await,
            LocalServer::NotHosted { port },
            "a port nobody chose is offered, not opened"
        );
        assert_eq!(
            ensure(&url, stop.clone(), |asked| asked == port).await,
            LocalServer::Started { port }
        );
        assert_eq!(
            ensure(&url, stop.clone(), |_| true).await,
            LocalServer::AlreadyRunning
        );
        assert_eq!(
            ensure("ws://example.invalid:1/ws", stop.clone(), |_| true).await,
            LocalServer::Remote
        );
        stop.cancel();
    }

    #[test]
    fn lan_urls_name_this_machine_but_never_loopback() {
        let urls = lan_urls(9000);
        let listed = if_addrs::get_if_addrs().expect("interfaces list");
        let outside = listed
            .iter()
            .filter(|i| !i.is_loopback() && !i.ip().to_string().starts_with("fe80"))
            .filter(|i| !matches!(i.ip(), IpAddr::V4(v4) if v4.is_link_local()))
            .count();
        assert!(!urls.is_empty() || outside == 0, "{listed:?}");
        for url in &urls {
            assert!(
                url.starts_with("ws://") && url.ends_with(":9000/ws"),
                "{url}"
            );
            assert!(
                !url.contains("127.0.0.1") && !url.contains("[::1]"),
                "{url}"
            );
        }
    }
}
