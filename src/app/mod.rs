//! The desktop app (eframe/egui over the call engine).
//!
//! - `confab_app.rs`: the frame loop: news in, draw, actions out; owns every runtime handle.
//! - `model.rs`: what the app knows, built from engine events (no I/O, unit-tested).
//! - `ui/`: drawing; each `*_ui` function returns actions and touches nothing else.
//! - `settings.rs`: what persists, and how it becomes the engine's configuration.
//! - `history.rs`: recent calls and their chat, kept with the settings.
//! - `video.rs`, `sound.rs`, `devices.rs`, `screens.rs`: frames to textures, the ringtone,
//!   device lists and previews, the screen picker's thumbnails, each fed by its own thread.
//! - `local_server.rs`: the bundled signaling server, started when it should be here.
//! - `notify.rs`: desktop notifications for calls while the window is in the background.

mod confab_app;
pub mod devices;
pub mod history;
pub mod local_server;
pub mod model;
pub mod notify;
pub mod screens;
pub mod settings;
pub mod sound;
pub mod ui;
pub mod verified;
pub mod video;

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

pub use confab_app::{ConfabApp, Launch};
pub use settings::Settings;

use crate::profile::Profile;

#[derive(Debug, Clone, Default, Args)]
pub struct AppArgs {
    /// Use this display name (saved in the settings).
    #[arg(long)]
    pub name: Option<String>,
    /// Use this signaling server, ws://HOST:PORT/ws (saved in the settings); one on this
    /// machine that nobody runs yet is started here.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Send the test pattern instead of the camera (saved in the settings).
    #[arg(long)]
    pub test_pattern: bool,
    /// Keep settings, history and identity apart from other Confabs on this machine (two
    /// users, one computer); `confab headless --profile NAME` uses the same one.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Call this peer (by name) as soon as they are online.
    #[arg(long, value_name = "PEER_NAME")]
    pub call: Option<String>,
    /// Send this chat message when a call's chat opens (repeatable).
    #[arg(long, value_name = "TEXT", hide = true)]
    pub chat: Vec<String>,
    /// Do not start the bundled signaling server, even when the server URL is local.
    #[arg(long)]
    pub no_bundled_server: bool,
    /// Close the window after this many seconds (for measurements and screenshots).
    #[arg(long, value_name = "SECS", hide = true)]
    pub quit_after: Option<f64>,
    /// Write the UI's frame times (JSON) here at exit.
    #[arg(long, value_name = "FILE.json", hide = true)]
    pub frame_stats: Option<std::path::PathBuf>,
}

/// Opens the window and runs until it is closed.
///
/// `demo` adds the echo bot (`confab demo`), which logs in to the same server.
pub fn run(args: AppArgs, demo: bool) -> anyhow::Result<()> {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        anyhow::bail!(
            "no display to open a window on (DISPLAY and WAYLAND_DISPLAY are unset); \
             on a machine without one, run `xvfb-run confab`, `confab server` or `confab headless`"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("confab-engine")
        .enable_all()
        .build()
        .context("cannot start the engine's runtime")?;
    let handle = runtime.handle().clone();
    let profile = Profile::new(args.profile.as_deref());
    let app_id = profile.app_id().to_owned();
    // Read before the window opens; a damaged file is said in the window, and this run
    // gets an identity of its own.
    let (identity, identity_problem) = match profile.identity() {
        Ok(identity) => (Some(identity), None),
        Err(err) => {
            tracing::error!("{err}");
            (None, Some(err.to_string()))
        }
    };
    // The settings hold the token and TURN credentials: only this user may read them.
    let persistence_path = profile.dir().map(|dir| dir.join("settings.ron"));
    if let Some(path) = &persistence_path
        && let Err(err) = settings::keep_private(path)
    {
        tracing::warn!("cannot make {} private: {err}", path.display());
    }
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("Confab")
        .with_app_id(app_id.clone())
        .with_inner_size([1200.0, 760.0])
        .with_min_inner_size([720.0, 480.0]);
    // The icon X11 shows for the window (Wayland takes it from the installed desktop entry
    // named by the app id). A bad PNG costs the icon, not the window.
    match eframe::icon_data::from_png_bytes(include_bytes!(
        "../../packaging/icons/hicolor/256x256/apps/confab.png"
    )) {
        Ok(icon) => viewport = viewport.with_icon(icon),
        Err(err) => tracing::warn!("the window has no icon: {err}"),
    }
    let options = eframe::NativeOptions {
        viewport,
        persistence_path,
        ..Default::default()
    };
    let mut launch = Launch {
        call: args.call.clone(),
        chat: args.chat.clone(),
        quit_after: args.quit_after.map(Duration::from_secs_f64),
        no_bundled_server: args.no_bundled_server,
        frame_stats: args.frame_stats.clone(),
        first_run: false,
        demo,
        identity,
        identity_problem,
        screen_display: None,
    };
    eframe::run_native(
        "Confab",
        options,
        Box::new(move |cc| {
            let saved: Option<Settings> = cc
                .storage
                .and_then(|storage| eframe::get_value(storage, settings::STORAGE_KEY));
            let history = cc
                .storage
                .and_then(|storage| eframe::get_value(storage, history::STORAGE_KEY))
                .unwrap_or_default();
            launch.first_run = saved.is_none() && args.name.is_none();
            let mut settings = saved.unwrap_or_default();
            if let Some(name) = args.name {
                settings.name = name;
            }
            if let Some(server) = args.server {
                // Named on the command line: if it is on this machine and nobody runs
                // it, this Confab hosts it (a port typed in Settings is only offered).
                settings.host_port = local_server::local_port(&server).or(settings.host_port);
                settings.server_url = server;
            }
            if args.test_pattern {
                settings.camera = settings::CameraChoice::TestPattern;
            }
            if demo {
                handle.spawn(crate::headless::echo_bot(settings.server_url.clone()));
            }
            let verified = cc
                .storage
                .and_then(|storage| eframe::get_value(storage, verified::STORAGE_KEY))
                .unwrap_or_default();
            let mut app = ConfabApp::new(&cc.egui_ctx, handle, settings, launch);
            app.restore_history(history);
            app.restore_verified(verified);
            Ok(Box::new(app))
        }),
    )
    .map_err(|err| anyhow::anyhow!("the window failed: {err}"))?;
    // Whatever is still running (a shutdown handed to the runtime) gets a moment.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
