//! The one way media threads are started and ended: [`MediaThread`] names the thread,
//! catches a panic inside it and hands the message to the owner's `on_panic` (a thread
//! that dies must be reported, not vanish), and joins it when the guard is dropped.
//!
//! Dropping the guard blocks until the thread returns, which its owner makes quick (a stop
//! flag or a closed channel first): drop it on a plain thread, never on the async runtime
//! (the call engine drops media through `spawn_blocking`).

use std::any::Any;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::JoinHandle;

/// A running media thread, joined when dropped.
#[derive(Debug)]
pub struct MediaThread {
    name: String,
    handle: Option<JoinHandle<()>>,
}

impl MediaThread {
    /// Runs `body` on a new thread called `name`. If `body` panics, `on_panic` gets the
    /// panic's message on that thread, and the thread ends.
    pub fn spawn(
        name: &str,
        body: impl FnOnce() + Send + 'static,
        on_panic: impl FnOnce(String) + Send + 'static,
    ) -> io::Result<MediaThread> {
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
                    on_panic(panic_message(payload.as_ref()));
                }
            })?;
        Ok(MediaThread {
            name: name.to_owned(),
            handle: Some(handle),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the thread has returned (or died).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for MediaThread {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            // Panics were caught inside: joining only waits for the thread to return.
            let _ = handle.join();
        }
    }
}

/// What a panic said: its `&str` or `String` payload, or a placeholder.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_panic_is_reported_with_its_message_and_the_guard_still_joins() {
        let (reports, reported) = mpsc::channel();
        let thread = MediaThread::spawn(
            "doomed",
            || panic!("the decoder fell over at frame {}", 7),
            move |message| reports.send(message).expect("the test listens"),
        )
        .expect("spawn");
        assert_eq!(thread.name(), "doomed");
        let message = reported.recv().expect("the panic is reported");
        assert_eq!(message, "the decoder fell over at frame 7");
        drop(thread);
    }

    #[test]
    fn a_thread_that_returns_reports_nothing_and_is_joined_on_drop() {
        let (reports, reported) = mpsc::channel::<String>();
        let (done, finished) = mpsc::channel();
        let thread = MediaThread::spawn(
            "fine",
            move || done.send(()).expect("the test listens"),
            move |message| reports.send(message).expect("the test listens"),
        )
        .expect("spawn");
        finished.recv().expect("the body ran");
        drop(thread);
        assert!(thread_is_gone(&reported));
    }

    /// The reporter was dropped without sending: the thread ended with no panic.
    fn thread_is_gone(reported: &mpsc::Receiver<String>) -> bool {
        matches!(reported.recv(), Err(mpsc::RecvError))
    }
}
