//! A latest-value slot: a producer publishes, a consumer takes the newest.
//!
//! Video moves through these instead of queues: a consumer that is slow (or busy) gets the
//! newest frame when it looks, and the frames it missed are counted as dropped, never
//! queued. The producer never waits for the consumer.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub struct LatestSlot<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

struct State<T> {
    value: Option<T>,
    published: u64,
    dropped: u64,
    closed: bool,
}

impl<T> Default for LatestSlot<T> {
    fn default() -> Self {
        LatestSlot {
            state: Mutex::new(State {
                value: None,
                published: 0,
                dropped: 0,
                closed: false,
            }),
            changed: Condvar::new(),
        }
    }
}

impl<T> LatestSlot<T> {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Only plain assignments happen under this lock; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the value; one that was never taken counts as dropped.
    pub fn publish(&self, value: T) {
        let mut state = self.lock();
        if state.value.replace(value).is_some() {
            state.dropped += 1;
        }
        state.published += 1;
        drop(state);
        self.changed.notify_all();
    }

    /// Takes the newest value, if one arrived since the last take.
    pub fn take(&self) -> Option<T> {
        self.lock().value.take()
    }

    /// Waits up to `timeout` for a value and takes it. `None` on timeout or once closed.
    pub fn wait_take(&self, timeout: Duration) -> Option<T> {
        let state = self.lock();
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| s.value.is_none() && !s.closed)
            .unwrap_or_else(PoisonError::into_inner);
        state.value.take()
    }

    /// Wakes every waiter for good: the producer is gone.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Values published so far.
    pub fn published(&self) -> u64 {
        self.lock().published
    }

    /// Values replaced before anyone took them.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_slow_consumer_gets_the_newest_and_drops_the_rest() {
        let slot = LatestSlot::new();
        for i in 0..5 {
            slot.publish(i);
        }
        assert_eq!(slot.take(), Some(4));
        assert_eq!(slot.take(), None);
        assert_eq!((slot.published(), slot.dropped()), (5, 4));
    }

    #[test]
    fn wait_take_wakes_on_publish_and_on_close() {
        let slot = Arc::new(LatestSlot::new());
        let producer = {
            let slot = slot.clone();
            std::thread::spawn(move || slot.publish("frame"))
        };
        assert_eq!(slot.wait_take(Duration::from_secs(5)), Some("frame"));
        producer.join().unwrap();

        let closer = {
            let slot = slot.clone();
            std::thread::spawn(move || slot.close())
        };
        assert_eq!(slot.wait_take(Duration::from_secs(5)), None);
        closer.join().unwrap();
        assert!(slot.is_closed());
    }
}
