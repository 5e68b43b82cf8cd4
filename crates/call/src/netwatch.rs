//! Notices when this computer's network addresses change (a new network, a VPN coming up,
//! an address moved): a task lists them twice a second, off the runtime's threads, and
//! publishes each new list. The engine restarts ICE on a change; the signaling client
//! reconnects if its own address is gone.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::peer::local_ips;

/// How often the addresses are listed: a change is acted on within this.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The addresses of every interface, sorted, loopback included.
pub type Addresses = Arc<Vec<IpAddr>>;

/// Starts watching. The receiver's first value is the list at start.
pub(crate) fn spawn(stop: CancellationToken) -> (watch::Receiver<Addresses>, JoinHandle<()>) {
    let (publish, addresses) = watch::channel(Arc::new(sorted(local_ips())));
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => return,
            }
            let Ok(now) = tokio::task::spawn_blocking(|| sorted(local_ips())).await else {
                return;
            };
            publish.send_if_modified(|old| {
                let changed = **old != now;
                if changed {
                    *old = Arc::new(now);
                }
                changed
            });
        }
    });
    (addresses, task)
}

fn sorted(mut ips: Vec<IpAddr>) -> Vec<IpAddr> {
    ips.sort_unstable();
    ips.dedup();
    ips
}
