//! Confab call engine.

pub mod machine;
pub mod signaling;
