//! Confab call engine.

pub mod machine;
