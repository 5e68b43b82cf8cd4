//! The capture thread: runs a video source at its own pace and publishes each frame into
//! latest-frame slots, one per consumer (the encoder, the self-view...).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::warn;

use super::{I420Frame, VideoError, VideoFormat, VideoSource};
use crate::slot::LatestSlot;
use crate::thread::MediaThread;

/// Frames as consumers receive them: shared, never copied.
pub type FrameSlot = LatestSlot<Arc<I420Frame>>;

type Wake = Box<dyn Fn() + Send + Sync>;

struct Subscriber {
    slot: Arc<FrameSlot>,
    /// Called after each publish, e.g. to ask the UI for a repaint.
    wake: Option<Wake>,
    /// Close the slot when capture stops (its owner reads only this capture).
    close_at_end: bool,
}

#[derive(Default)]
struct Subscribers {
    list: Vec<Subscriber>,
    /// The thread has stopped: new subscribers get a closed slot.
    finished: bool,
}

#[derive(Default)]
struct Shared {
    subscribers: Mutex<Subscribers>,
    error: Mutex<Option<VideoError>>,
    stop: AtomicBool,
}

/// A running capture. Dropping it stops the thread and closes the source (for a camera,
/// its light goes off).
pub struct VideoCapture {
    shared: Arc<Shared>,
    thread: Option<MediaThread>,
    name: String,
    format: VideoFormat,
}

impl VideoCapture {
    /// Opens a source on a new thread named `video-capture` and starts capturing. Returns
    /// once the source is open, or with the error that kept it from opening.
    pub fn start<S, F>(open: F) -> Result<VideoCapture, VideoError>
    where
        S: VideoSource,
        F: FnOnce() -> Result<S, VideoError> + Send + 'static,
    {
        let shared = Arc::new(Shared::default());
        let (opened_tx, opened_rx) = mpsc::sync_channel(1);
        let thread_shared = shared.clone();
        let panic_shared = shared.clone();
        let thread = MediaThread::spawn(
            "video-capture",
            move || {
                let source = match open() {
                    Ok(source) => {
                        let _ = opened_tx.send(Ok((source.name(), source.format())));
                        source
                    }
                    Err(err) => {
                        let _ = opened_tx.send(Err(err));
                        return;
                    }
                };
                run(source, &thread_shared);
            },
            move |message| {
                // Capture stopped: say why, as a camera that stopped by itself does.
                let err = VideoError::Camera(format!("the capture thread failed: {message}"));
                *panic_shared
                    .error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(err);
                finish(&panic_shared);
            },
        )
        .map_err(|err| VideoError::Camera(format!("cannot start the capture thread: {err}")))?;
        let opened = opened_rx
            .recv()
            .map_err(|_| VideoError::Camera("the capture thread ended while opening".into()));
        match opened {
            Ok(Ok((name, format))) => Ok(VideoCapture {
                shared,
                thread: Some(thread),
                name,
                format,
            }),
            Ok(Err(err)) | Err(err) => {
                drop(thread);
                Err(err)
            }
        }
    }

    /// A new consumer: its own slot, holding the newest frame it has not taken yet.
    pub fn subscribe(&self) -> Arc<FrameSlot> {
        let slot = Arc::new(FrameSlot::new());
        self.add_subscriber(slot.clone(), None, true);
        slot
    }

    /// Like [`VideoCapture::subscribe`], and calls `wake` after every new frame.
    pub fn subscribe_with_wake(&self, wake: impl Fn() + Send + Sync + 'static) -> Arc<FrameSlot> {
        let slot = Arc::new(FrameSlot::new());
        self.add_subscriber(slot.clone(), Some(Box::new(wake)), true);
        slot
    }

    /// Publishes into a slot that outlives this capture (a preview fed by one camera, then
    /// another); it is not closed when capture stops.
    pub fn attach(&self, slot: Arc<FrameSlot>, wake: Option<Arc<dyn Fn() + Send + Sync>>) {
        let wake = wake.map(|w| Box::new(move || w()) as Wake);
        self.add_subscriber(slot, wake, false);
    }

    fn add_subscriber(&self, slot: Arc<FrameSlot>, wake: Option<Wake>, close_at_end: bool) {
        let mut subscribers = self
            .shared
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if subscribers.finished && close_at_end {
            slot.close();
        }
        subscribers.list.push(Subscriber {
            slot,
            wake,
            close_at_end,
        });
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn format(&self) -> VideoFormat {
        self.format
    }

    /// Why capture stopped by itself (a camera unplugged, say), once it has.
    pub fn take_error(&self) -> Option<VideoError> {
        self.shared
            .error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Whether the thread is still capturing.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for VideoCapture {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // The source returns within about one frame interval; the guard joins it.
        self.thread.take();
    }
}

fn run<S: VideoSource>(mut source: S, shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        match source.next_frame() {
            Ok(frame) => {
                let frame = Arc::new(frame);
                let subscribers = shared
                    .subscribers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for subscriber in &subscribers.list {
                    subscriber.slot.publish(frame.clone());
                    if let Some(wake) = &subscriber.wake {
                        wake();
                    }
                }
            }
            Err(err) => {
                warn!("video capture from {} stopped: {err}", source.name());
                *shared.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(err);
                break;
            }
        }
    }
    finish(shared);
}

/// Capture is over: closing the slots wakes consumers waiting for a frame that will not
/// come.
fn finish(shared: &Shared) {
    let mut subscribers = shared
        .subscribers
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    subscribers.finished = true;
    for subscriber in subscribers.list.iter().filter(|s| s.close_at_end) {
        subscriber.slot.close();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;
    use crate::video::{TestPattern, read_stamp};

    const FORMAT: VideoFormat = VideoFormat {
        width: 320,
        height: 240,
        fps: 100,
    };

    #[test]
    fn a_slow_consumer_gets_the_latest_frame_not_a_queue() {
        let capture = VideoCapture::start(|| TestPattern::new(FORMAT)).unwrap();
        assert_eq!(capture.name(), "test pattern");
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = wakes.clone();
        let slot = capture.subscribe_with_wake(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let first = slot.wait_take(Duration::from_secs(5)).unwrap();
        let first_number = read_stamp(&first).unwrap().frame_number;
        // Be slow: wait until at least five more frames were published.
        let published = slot.published();
        while slot.published() < published + 5 {
            std::thread::yield_now();
        }
        let latest = slot.take().unwrap();
        let latest_number = read_stamp(&latest).unwrap().frame_number;
        assert!(
            latest_number >= first_number + 5,
            "{first_number} -> {latest_number}"
        );
        assert!(
            slot.dropped() >= 4,
            "missed frames must be dropped, not queued"
        );
        assert!(wakes.load(Ordering::Relaxed) >= 6);
        assert!(capture.is_running());
    }

    #[test]
    fn open_errors_come_back_from_start() {
        let err = VideoCapture::start(|| {
            TestPattern::new(VideoFormat {
                width: 3,
                height: 3,
                fps: 30,
            })
        })
        .err()
        .unwrap();
        assert!(matches!(err, VideoError::BadSize { .. }));
    }

    /// A source that fails after a few frames, like an unplugged camera.
    struct Failing(u32);

    impl VideoSource for Failing {
        fn name(&self) -> String {
            "flaky".into()
        }
        fn format(&self) -> VideoFormat {
            FORMAT
        }
        fn next_frame(&mut self) -> Result<I420Frame, VideoError> {
            if self.0 == 0 {
                return Err(VideoError::CameraLost("flaky".into()));
            }
            self.0 -= 1;
            I420Frame::black(320, 240)
        }
    }

    #[test]
    fn a_source_error_stops_capture_and_is_reported() {
        let capture = VideoCapture::start(|| Ok(Failing(3))).unwrap();
        let slot = capture.subscribe();
        // Wait until the slot is closed: the source failed.
        while slot.wait_take(Duration::from_secs(5)).is_some() || !slot.is_closed() {}
        assert!(matches!(
            capture.take_error(),
            Some(VideoError::CameraLost(_))
        ));
        assert!(slot.wait_take(Duration::from_millis(1)).is_none());
    }

    /// A source with a bug: it panics after a few frames.
    struct Panicking(u32);

    impl VideoSource for Panicking {
        fn name(&self) -> String {
            "buggy".into()
        }
        fn format(&self) -> VideoFormat {
            FORMAT
        }
        fn next_frame(&mut self) -> Result<I420Frame, VideoError> {
            assert!(self.0 > 0, "the buggy source ran out");
            self.0 -= 1;
            I420Frame::black(320, 240)
        }
    }

    #[test]
    fn a_panic_in_the_source_stops_capture_and_is_reported_with_its_message() {
        let capture = VideoCapture::start(|| Ok(Panicking(3))).unwrap();
        let slot = capture.subscribe();
        while slot.wait_take(Duration::from_secs(5)).is_some() || !slot.is_closed() {}
        let err = capture.take_error().expect("the panic is reported");
        assert!(
            err.to_string().contains("the buggy source ran out"),
            "{err}"
        );
    }
}
