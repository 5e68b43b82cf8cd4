//! Confab's desktop app and command-line peers. The `confab` binary (`main.rs`) only
//! parses the command line and calls in here; tests drive the same code.

#![forbid(unsafe_code)]

pub mod app;
pub mod devices;
pub mod headless;
pub mod profile;
pub mod script;
