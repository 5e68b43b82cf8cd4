//! A client's outbound queue: unbounded in messages, bounded in bytes, empty when idle.
//!
//! Anything may put a message in a client's [`Outbox`] without waiting. When the client
//! has more than its byte budget waiting (it does not read, or reads too slowly), its kick
//! token is cancelled and its session closes: a client can never make the server hold more
//! than its budget. Broadcast messages share their bytes between all queues, so the budget
//! counts each at full size, which overestimates what is really held.
//!
//! The writer takes the whole queue at once, leaving an empty `VecDeque` with no
//! allocation behind. (A tokio mpsc channel keeps the blocks of its largest backlog for
//! ever; with ten thousand idle clients that was a third of the server's memory.)

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

struct Queue {
    messages: VecDeque<Utf8Bytes>,
    /// Bytes queued or taken by the writer and not yet written.
    bytes: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Notify,
    max_queued_bytes: usize,
    kick: CancellationToken,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding this lock; recover rather than spread a panic.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub(crate) struct Outbox(Arc<Shared>);

/// The receiving side, owned by the session's writer.
pub(crate) struct OutboxRx(Arc<Shared>);

pub(crate) fn channel(max_queued_bytes: usize, kick: CancellationToken) -> (Outbox, OutboxRx) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            messages: VecDeque::new(),
            bytes: 0,
        }),
        ready: Notify::new(),
        max_queued_bytes,
        kick,
    });
    (Outbox(shared.clone()), OutboxRx(shared))
}

impl Outbox {
    /// Queues a message, or kicks the client if that would exceed its budget.
    pub fn send(&self, text: Utf8Bytes) {
        self.push(text, true);
    }

    /// Queues a message whatever the budget says. For the welcome: its size follows the
    /// roster, which the server bounds, not anything the client controls.
    pub fn send_always(&self, text: Utf8Bytes) {
        self.push(text, false);
    }

    /// Whether `other` is this very outbox (not another connection's).
    pub fn is(&self, other: &Outbox) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn push(&self, text: Utf8Bytes, enforce_budget: bool) {
        let mut queue = self.0.lock();
        if enforce_budget && queue.bytes + text.len() > self.0.max_queued_bytes {
            drop(queue);
            self.0.kick.cancel();
            return;
        }
        queue.bytes += text.len();
        queue.messages.push_back(text);
        drop(queue);
        self.0.ready.notify_one();
    }
}

impl OutboxRx {
    /// Waits for messages and takes all that are queued.
    pub async fn recv_all(&mut self) -> VecDeque<Utf8Bytes> {
        loop {
            let taken = self.take_all();
            if !taken.is_empty() {
                return taken;
            }
            // A message pushed after take_all left a permit in `ready`.
            self.0.ready.notified().await;
        }
    }

    /// Takes whatever is queued, without waiting.
    pub fn take_all(&mut self) -> VecDeque<Utf8Bytes> {
        std::mem::take(&mut self.0.lock().messages)
    }

    /// Gives `bytes` of written messages back to the budget.
    pub fn written(&mut self, bytes: usize) {
        let mut queue = self.0.lock();
        queue.bytes = queue.bytes.saturating_sub(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> Utf8Bytes {
        Utf8Bytes::from_static(s)
    }

    #[test]
    fn budget_counts_until_written() {
        let kick = CancellationToken::new();
        let (outbox, mut rx) = channel(10, kick.clone());
        outbox.send(text("12345"));
        outbox.send(text("67890"));
        let batch = rx.take_all();
        assert_eq!(batch, [text("12345"), text("67890")]);
        // Taken but not yet written: still counted.
        outbox.send(text("x"));
        assert!(kick.is_cancelled(), "11 bytes against a budget of 10");

        let kick = CancellationToken::new();
        let (outbox, mut rx) = channel(10, kick.clone());
        outbox.send(text("12345"));
        outbox.send(text("67890"));
        rx.take_all();
        rx.written(10);
        outbox.send(text("abcde"));
        assert!(!kick.is_cancelled());
        assert_eq!(rx.take_all(), [text("abcde")]);
    }

    #[test]
    fn a_refused_message_is_not_queued() {
        let kick = CancellationToken::new();
        let (outbox, mut rx) = channel(4, kick.clone());
        outbox.send(text("toolong"));
        assert!(kick.is_cancelled());
        assert!(rx.take_all().is_empty());
    }

    #[test]
    fn welcome_bypasses_the_budget() {
        let kick = CancellationToken::new();
        let (outbox, mut rx) = channel(4, kick.clone());
        outbox.send_always(text("a long welcome"));
        assert!(!kick.is_cancelled());
        assert_eq!(rx.take_all().len(), 1);
    }

    #[tokio::test]
    async fn recv_all_wakes_for_a_message_sent_while_waiting() {
        let (outbox, mut rx) = channel(100, CancellationToken::new());
        let receiver = tokio::spawn(async move { rx.recv_all().await });
        tokio::task::yield_now().await;
        outbox.send(text("hello"));
        assert_eq!(receiver.await.unwrap(), [text("hello")]);
    }
}
