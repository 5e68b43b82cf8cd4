//! The audio processing stage runs on the audio-send thread in real time. Once warmed up
//! it allocates nothing per frame: neither Confab's own part of it (the speaker's tap, the
//! ring to the send thread, the framing) nor, with every stage on, the stages inside sonora
//! (the patched copy in third_party/sonora*, whose echo canceller and gain control kept
//! allocating about 103 small scratch buffers per 20 ms frame before), and memory never
//! grows. Counted with a global allocator, in a binary of its own.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use confab_media::audio::{AudioProcessor, FRAME_SAMPLES, ProcessingSettings, echo_reference};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES_ALLOCATED: AtomicU64 = AtomicU64::new(0);
static BYTES_FREED: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES_ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BYTES_FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES_ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        BYTES_FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated and not yet freed.
fn live_bytes() -> u64 {
    BYTES_ALLOCATED.load(Ordering::Relaxed) - BYTES_FREED.load(Ordering::Relaxed)
}

/// Runs frames `range` through `processor` the way the playout and send threads do;
/// returns (allocations, growth of live bytes).
fn frames(
    processor: &mut AudioProcessor,
    tap: &mut confab_media::audio::EchoTap,
    range: std::ops::Range<u64>,
) -> (u64, i64) {
    let start = Instant::now();
    let mut speaker = [0.0f32; FRAME_SAMPLES];
    let mut mic = [0.0f32; FRAME_SAMPLES];
    let (allocations, live) = (ALLOCATIONS.load(Ordering::Relaxed), live_bytes());
    for i in range {
        let now = start + Duration::from_millis(20 * i);
        for (n, (s, m)) in speaker.iter_mut().zip(mic.iter_mut()).enumerate() {
            let t = (i as usize * FRAME_SAMPLES + n) as f32 / 48_000.0;
            *s = 0.3 * (t * 2.0 * std::f32::consts::PI * 220.0).sin() * (t * 3.0).sin();
            *m = 0.05 * *s + 0.01 * (t * 2.0 * std::f32::consts::PI * 1000.0).sin();
        }
        tap.played(&speaker, Duration::from_millis(30), now);
        processor.process(&mut mic, now - Duration::from_millis(20), now);
    }
    (
        ALLOCATIONS.load(Ordering::Relaxed) - allocations,
        live_bytes() as i64 - live as i64,
    )
}

#[test]
fn a_frame_allocates_nothing_and_keeps_nothing() {
    // Stages off: the tap, the ring and the processor's own framing alone.
    let (mut tap, reference) = echo_reference();
    let mut processor = AudioProcessor::new(ProcessingSettings::OFF, Some(reference)).unwrap();
    frames(&mut processor, &mut tap, 0..100);
    let (allocations, growth) = frames(&mut processor, &mut tap, 100..600);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in 500 frames (10 s)"
    );
    assert_eq!(growth, 0);

    // Every stage on: nothing allocated either, once warmed up.
    processor.set_settings(ProcessingSettings::default());
    frames(&mut processor, &mut tap, 600..1100);
    let (allocations, growth) = frames(&mut processor, &mut tap, 1100..1600);
    assert_eq!(
        allocations, 0,
        "every stage on: {allocations} allocations in 500 frames (10 s)"
    );
    assert_eq!(growth, 0, "live memory grew by {growth} bytes in 10 s");
}
