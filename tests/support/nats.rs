//! A real `nats-server` on 127.0.0.1 (Debian's package, installed by
//! `scripts/install-deps.sh`), for the tests of signaling servers in a cluster. Shared with
//! `signaling-server/tests/cluster.rs`.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long nats-server may take to listen.
const START_PATIENCE: Duration = Duration::from_secs(10);

pub struct Nats {
    child: Child,
    pub port: u16,
}

impl Nats {
    /// On a port nobody listens on.
    pub async fn start() -> Nats {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Nats::on(port).await
    }

    /// On `port` (again, after [`Nats::stop`]).
    pub async fn on(port: u16) -> Nats {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (scripts/install-deps.sh installs it)");
        let deadline = Instant::now() + START_PATIENCE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Nats { child, port }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it: the servers lose NATS.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}
