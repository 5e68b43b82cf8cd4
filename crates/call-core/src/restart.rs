//! When a connected call restarts ICE (new credentials, new candidates, a new path).
//!
//! A restart goes out when this computer's addresses change (a new network, a VPN, an
//! address moved) or when the connection has stayed down for [`RESTART_AFTER_DOWN`]; it
//! needs the signaling server to carry the offer, so while we are offline it waits. One
//! that brings no connection is tried again every [`RESTART_RETRY`]. Either side may
//! restart; when both do at once, the caller's offer wins (the callee takes it instead of
//! its own).

use std::time::{Duration, Instant};

/// A connection down this long is restarted (browsers report `disconnected` after about
/// as long again without packets).
pub const RESTART_AFTER_DOWN: Duration = Duration::from_secs(2);
/// A restart that has not brought the connection back is tried again after this.
pub const RESTART_RETRY: Duration = Duration::from_secs(4);

/// One link's restart bookkeeping.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IceRestart {
    /// Since when the connection has been down, if it is.
    down_since: Option<Instant>,
    /// When our addresses changed, if a restart for that is still to go out.
    changed_at: Option<Instant>,
    /// When our last restart went out, while the connection has not come back since.
    last_attempt: Option<Instant>,
    /// Our last restart offer has not been answered.
    offer_pending: bool,
}

impl IceRestart {
    /// The connection is up (again): whatever we offered is settled or moot.
    pub fn connected(&mut self) {
        self.down_since = None;
        self.last_attempt = None;
        self.offer_pending = false;
    }

    /// The connection dropped. Returns whether it was up until now.
    pub fn disconnected(&mut self, now: Instant) -> bool {
        let was_up = self.down_since.is_none();
        self.down_since.get_or_insert(now);
        was_up
    }

    pub fn is_down(&self) -> bool {
        self.down_since.is_some()
    }

    /// Since when the connection has been down, if it is.
    pub fn down_since(&self) -> Option<Instant> {
        self.down_since
    }

    /// This computer's addresses changed.
    pub fn network_changed(&mut self, now: Instant) {
        self.changed_at.get_or_insert(now);
    }

    /// When [`IceRestart::poll`] will next say yes (if signaling is up then).
    pub fn due(&self) -> Option<Instant> {
        if let Some(changed) = self.changed_at {
            return Some(changed);
        }
        let down = self.down_since? + RESTART_AFTER_DOWN;
        Some(
            self.last_attempt
                .map_or(down, |at| (at + RESTART_RETRY).max(down)),
        )
    }

    /// Whether to restart now; if so, the restart counts as sent.
    pub fn poll(&mut self, now: Instant, online: bool) -> bool {
        if !online || self.due().is_none_or(|due| now < due) {
            return false;
        }
        self.changed_at = None;
        self.last_attempt = Some(now);
        self.offer_pending = true;
        true
    }

    /// Our restart offer is settled: the peer answered it, or we took the peer's offer
    /// instead (glare, and we are the one that yields).
    pub fn offer_settled(&mut self) {
        self.offer_pending = false;
    }

    /// Our restart offer is out, unanswered: an offer from the peer now is glare.
    pub fn offer_pending(&self) -> bool {
        self.offer_pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_down_two_seconds_restarts_then_retries() {
        let t0 = Instant::now();
        let mut restart = IceRestart::default();
        assert_eq!(restart.due(), None);
        assert!(restart.disconnected(t0));
        assert!(!restart.disconnected(t0 + Duration::from_millis(500)));
        assert_eq!(restart.due(), Some(t0 + RESTART_AFTER_DOWN));
        assert!(!restart.poll(t0 + Duration::from_millis(1999), true));
        // Offline: it waits for signaling.
        assert!(!restart.poll(t0 + RESTART_AFTER_DOWN, false));
        let first = t0 + Duration::from_secs(3);
        assert!(restart.poll(first, true));
        assert!(restart.offer_pending());
        assert!(!restart.poll(first + Duration::from_secs(1), true));
        assert_eq!(restart.due(), Some(first + RESTART_RETRY));
        restart.offer_settled();
        assert!(!restart.offer_pending());
        assert!(restart.poll(first + RESTART_RETRY, true));
        restart.connected();
        assert_eq!(restart.due(), None);
    }

    #[test]
    fn a_network_change_restarts_at_once_and_once() {
        let t0 = Instant::now();
        let mut restart = IceRestart::default();
        restart.network_changed(t0);
        restart.network_changed(t0 + Duration::from_millis(10));
        assert_eq!(restart.due(), Some(t0));
        assert!(restart.poll(t0 + Duration::from_millis(20), true));
        assert!(
            !restart.poll(t0 + Duration::from_secs(30), true),
            "up all along"
        );
    }
}
