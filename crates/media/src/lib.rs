//! Confab's media engine: everything between the devices and RTP payloads.
//!
//! - [`video`]: I420 frames; sources (camera via nokhwa, a test pattern that carries its
//!   frame number and capture time in its pixels, Y4M files) run on a capture thread that
//!   publishes into latest-frame slots; H.264 encoding and decoding on OpenH264.
//! - [`audio`]: 48 kHz mono 20 ms frames; microphones and speakers through cpal (any device
//!   rate and channel count, resampled; real-time callbacks that never lock or allocate);
//!   tones and WAV files; Opus with in-band FEC; an adaptive jitter buffer; level meters.
//! - [`thread`]: [`thread::MediaThread`], how every media thread starts, reports a panic
//!   and ends.
//!
//! No WebRTC, no UI and no async runtime in here: the call engine builds on this.

pub mod audio;
pub mod pacer;
pub mod slot;
pub mod thread;
pub mod video;
