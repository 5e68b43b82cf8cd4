//! Drawing. Every `*_ui` function reads the model and pushes [`UiAction`]s; it never talks
//! to the engine, a device or the network itself. The app applies the actions after the
//! frame (`confab_app.rs`). View-only state (text being typed, which window is open) lives in
//! [`UiState`].

pub mod call;
mod chat;
mod dialogs;
mod grid;
pub mod home;
mod invite;
mod peers;
mod settings;
pub mod share;
mod top_bar;
mod verify;

use confab_call::Command;
use confab_protocol::safety::Fingerprint;
use egui::{Key, KeyboardShortcut, Modifiers};

pub use call::{CallMedia, Picture, call_ui};
pub use chat::chat_ui;
pub use dialogs::{dialogs_ui, toasts_ui, welcome_ui};
pub use home::{HomeView, home_ui};
pub use invite::invite_ui;
pub use peers::peers_ui;
pub use settings::{DeviceLists, SettingsView, settings_ui};
pub use share::{ScreenChoice, ScreenChoices, share_picker_ui};
pub use top_bar::top_bar_ui;
pub use verify::{trust_badge, verify_ui};

use super::settings::Settings;

/// What the user asked for; applied by the app after drawing.
#[derive(Debug, Clone, PartialEq)]
pub enum UiAction {
    /// Straight to the engine (call, accept, decline, hang up, chat).
    Engine(Command),
    SetMuted(bool),
    SetCamera(bool),
    SetChatOpen(bool),
    SetFullscreen(bool),
    SetSelfView(bool),
    /// Share this monitor (its index in the display's list) in the call.
    ShareScreen {
        monitor: usize,
    },
    StopSharing,
    /// The edited settings: devices apply at once, the rest on `ApplySettings`.
    ChangeSettings(Settings),
    /// These settings, every field, are the settings now; log in again if identity or
    /// network changed (the settings' Reconnect button, or closing the window).
    ApplySettings(Settings),
    /// Log in again with the current settings.
    Reconnect,
    /// Play a short sound on the chosen speaker.
    TestSound,
    /// The camera cannot be opened: send the test pattern instead.
    UseTestPattern,
    /// Go by this display name (first run, or the one we had is taken) and log in.
    ChooseName(String),
    /// Host the bundled server on this local port (the server URL's) from now on.
    HostServer(u16),
    /// Put this text on the clipboard.
    Copy(String),
    /// Forget the call history.
    ClearHistory,
    /// Open the desktop's file picker for files to send.
    PickFiles,
    /// Open the folder a received file was saved in.
    ShowInFolder(std::path::PathBuf),
    /// The safety codes matched: remember `name` with this identity.
    MarkVerified {
        name: String,
        identity: Fingerprint,
    },
    /// Forget that `name` was verified.
    ForgetVerified(String),
}

/// View state: what is being typed and what is open. Not persisted (except through
/// `Settings`), not seen by the engine.
#[derive(Debug, Default)]
pub struct UiState {
    pub filter: String,
    pub draft: String,
    pub settings_open: bool,
    /// A copy of the settings being edited.
    pub settings_draft: Option<Settings>,
    pub show_stats: bool,
    pub fullscreen: bool,
    /// Move keyboard focus to the chat box on the next frame.
    pub focus_chat: bool,
    /// The "Add person" list is open.
    pub invite_open: bool,
    /// In a group call, the active speaker big and the others in a row below.
    pub speaker_view: bool,
    /// The F1 list of shortcuts is open.
    pub shortcuts_open: bool,
    /// First run: the name being typed in the welcome dialog (open while `Some`).
    pub welcome_name: Option<String>,
    /// The name being typed after ours was taken.
    pub rename: Option<String>,
    /// The Verify window (safety codes) is open.
    pub verify_open: bool,
    /// The screen picker is open (its thumbnails are captured only while it is).
    pub share_open: bool,
    /// The monitor chosen in the picker, before Share.
    pub share_choice: Option<usize>,
}

pub const MUTE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::D);
pub const CAMERA: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::E);
pub const HANG_UP: KeyboardShortcut =
    KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::H);
pub const FOCUS_CHAT: KeyboardShortcut =
    KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::C);
pub const STATS: KeyboardShortcut =
    KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::S);
pub const FULLSCREEN: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::F11);
pub const SHORTCUTS: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::F1);

/// Every shortcut and what it does, for the F1 window.
pub fn shortcut_list() -> [(&'static str, KeyboardShortcut); 7] {
    [
        ("Mute or unmute", MUTE),
        ("Camera on or off", CAMERA),
        ("Hang up", HANG_UP),
        ("Open the chat and write a message", FOCUS_CHAT),
        ("Call stats", STATS),
        ("Fullscreen (Esc leaves it)", FULLSCREEN),
        ("This list", SHORTCUTS),
    ]
}

/// A camera that cannot be opened, said once and calmly, with the way out.
pub fn camera_notice_ui(ui: &mut egui::Ui, reason: &str, actions: &mut Vec<UiAction>) {
    ui.horizontal(|ui| {
        ui.label(format!(
            "📷 The camera cannot be used ({reason}). Others see no video from you."
        ));
        if ui
            .button("Use test pattern")
            .on_hover_text("Send a moving test picture instead (change it in Settings)")
            .clicked()
        {
            actions.push(UiAction::UseTestPattern);
        }
    });
}

/// The F1 window: every shortcut.
pub fn shortcuts_ui(ctx: &egui::Context, state: &mut UiState) {
    if !state.shortcuts_open {
        return;
    }
    egui::Window::new("Keyboard shortcuts")
        .open(&mut state.shortcuts_open)
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
            egui::Grid::new("shortcuts").num_columns(2).show(ui, |ui| {
                for (what, shortcut) in shortcut_list() {
                    ui.label(ctx.format_shortcut(&shortcut));
                    ui.label(what);
                    ui.end_row();
                }
            });
        });
}

/// A time from another clock (ms since the Unix epoch) in this machine's time zone;
/// `None` if it is out of range.
fn local_time(ms: u64) -> Option<chrono::DateTime<chrono::Local>> {
    use chrono::TimeZone;
    match chrono::Local.timestamp_millis_opt(i64::try_from(ms).ok()?) {
        chrono::LocalResult::Single(time) => Some(time),
        _ => None,
    }
}

/// "Mute (Ctrl+D)": a tooltip naming the shortcut.
pub fn with_shortcut(ctx: &egui::Context, text: &str, shortcut: &KeyboardShortcut) -> String {
    format!("{text} ({})", ctx.format_shortcut(shortcut))
}
