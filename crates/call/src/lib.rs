//! Confab call engine.

pub mod h264_rtp;
pub mod machine;
pub mod signaling;
