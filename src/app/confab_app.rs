//! The app: owns the engine handle, the model, the textures and the device threads, and
//! runs one frame at a time: take what arrived (events, frames, device lists), draw, then
//! apply what the user asked for. Nothing here waits: the engine and every device live on
//! other threads and answer through channels and latest-value slots.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use confab_call::{CallState, Command, Engine, EngineEvent, Identity, Wake};
use confab_media::video::ScreenSelector;

use super::verified::Verified;
use egui::ViewportCommand;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::devices::{DeviceWatcher, Preview};
use super::history::History;
use super::local_server::{self, LocalServer};
use super::model::{Hosting, Model, Severity};
use super::notify::{Answer, Notifier};
use super::screens::ScreenPicker;
use super::settings::Settings;
use super::sound::{Sound, SoundPlayer};
use super::ui::{self, CallMedia, DeviceLists, HomeView, SettingsView, UiAction, UiState};
use super::video::{RemoteTextures, VideoTexture};
use crate::script::Script;

/// What a local-server check found, and where others reach a server started here.
type Found = (LocalServer, Vec<String>);

/// The outcome of a local-server check, once it is known (the check is then done).
fn outcome_of(pending: &mut Option<oneshot::Receiver<Found>>) -> Option<Found> {
    let outcome = match pending.as_mut()?.try_recv() {
        Ok(outcome) => outcome,
        Err(oneshot::error::TryRecvError::Empty) => return None,
        Err(oneshot::error::TryRecvError::Closed) => (LocalServer::Remote, Vec::new()),
    };
    *pending = None;
    Some(outcome)
}

/// Narrower than this, a window in a call hides the people list: the call comes first.
const NARROW_WINDOW: f32 = 1000.0;

/// Options that are not settings: they come from the command line, for one run.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Call this peer (by name) as soon as they are online.
    pub call: Option<String>,
    /// Send these chat messages when a call's chat opens.
    pub chat: Vec<String>,
    /// Close the window after this long (for measurements).
    pub quit_after: Option<Duration>,
    /// Never start the bundled server, even for a local URL that nobody answers.
    pub no_bundled_server: bool,
    /// Write frame times here at exit (for measurements).
    pub frame_stats: Option<std::path::PathBuf>,
    /// No settings were saved yet: ask for a name before connecting.
    pub first_run: bool,
    /// `confab demo`: without a camera, send the test pattern rather than nothing.
    pub demo: bool,
    /// The profile's identity (`None`: a new one for this run, as when the file is
    /// damaged: `identity_problem` says why).
    pub identity: Option<Identity>,
    /// Why the profile's identity could not be used.
    pub identity_problem: Option<String>,
    /// The X display whose screens are listed and shared (`None`: `$DISPLAY`). Tests set
    /// it to a display of their own.
    pub screen_display: Option<String>,
}

/// The engine, once started, and its event stream.
struct Running {
    engine: Engine,
    events: mpsc::UnboundedReceiver<EngineEvent>,
}

pub struct ConfabApp {
    runtime: tokio::runtime::Handle,
    wake: Wake,
    /// What the engine runs with, plus device changes applied since.
    settings: Settings,
    launch: Launch,
    started: Instant,
    model: Model,
    ui: UiState,
    running: Option<Running>,
    /// The local-server check that runs before the engine starts.
    pending_start: Option<oneshot::Receiver<Found>>,
    /// The same check while the engine retries a lost local server: whoever finds it gone
    /// first hosts it (the engine's next retry connects).
    pending_takeover: Option<oneshot::Receiver<Found>>,
    /// Recent calls (kept with the settings).
    history: History,
    /// Stops the bundled server, if we started one.
    server_stop: CancellationToken,
    muted: bool,
    camera_on: bool,
    remote: RemoteTextures,
    /// The screens shared with us, by who shares them.
    screens: RemoteTextures,
    /// The screen picker's thumbnails (captured only while it is open).
    screen_picker: ScreenPicker,
    local: VideoTexture,
    preview_texture: VideoTexture,
    preview: Option<Preview>,
    preview_problem: Option<String>,
    devices: DeviceWatcher,
    device_lists: Option<DeviceLists>,
    sound: SoundPlayer,
    notifier: Notifier,
    /// The window has the keyboard focus (else calls are also announced on the desktop).
    focused: bool,
    /// Ask the window manager to draw the user's attention to the window (a call rings).
    wants_attention: bool,
    /// `--call` and `--chat`.
    script: Script,
    /// CPU time of each frame, seconds (only with `Launch::frame_stats`).
    frame_times: Vec<f32>,
    /// The call state changed since the window's title was last set.
    title_stale: bool,
    /// Files chosen in the file picker (it runs on a thread of its own).
    picked: (
        std::sync::mpsc::Sender<Vec<PathBuf>>,
        std::sync::mpsc::Receiver<Vec<PathBuf>>,
    ),
}

impl ConfabApp {
    /// Starts everything the app needs; `runtime` runs the engine and the bundled server.
    pub fn new(
        ctx: &egui::Context,
        runtime: tokio::runtime::Handle,
        settings: Settings,
        launch: Launch,
    ) -> ConfabApp {
        let wake = paced_wake(ctx.clone());
        let mut model = Model::new();
        model.set_chat_open(settings.chat_open);
        model.identity_problem.clone_from(&launch.identity_problem);
        let script = Script::new(launch.call.iter().cloned().collect(), launch.chat.clone());
        let mut app = ConfabApp {
            runtime: runtime.clone(),
            devices: DeviceWatcher::start(wake.clone()),
            sound: SoundPlayer::start(wake.clone()),
            notifier: Notifier::new(runtime.clone(), wake.clone()),
            focused: true,
            wants_attention: false,
            wake,
            settings,
            launch,
            started: Instant::now(),
            model,
            ui: UiState::default(),
            running: None,
            pending_start: None,
            pending_takeover: None,
            history: History::default(),
            server_stop: CancellationToken::new(),
            muted: false,
            camera_on: true,
            remote: RemoteTextures::new("remote-video"),
            screens: RemoteTextures::new("remote-screen"),
            screen_picker: ScreenPicker::default(),
            local: VideoTexture::new("self-view"),
            preview_texture: VideoTexture::new("camera-preview"),
            preview: None,
            preview_problem: None,
            device_lists: None,
            script,
            frame_times: Vec::new(),
            title_stale: false,
            picked: std::sync::mpsc::channel(),
        };
        if app.launch.first_run {
            // Nothing connects before there is a name (else everyone is "Guest").
            app.ui.welcome_name = Some(super::settings::suggested_name());
        } else {
            app.connect();
        }
        app
    }

    /// The calls kept from earlier runs.
    pub fn restore_history(&mut self, history: History) {
        self.history = history;
    }

    /// The people verified in earlier runs.
    pub fn restore_verified(&mut self, verified: Verified) {
        self.model.verified = verified;
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// What the screen picker shows (tests look at its thumbnails).
    pub fn screen_choices(&self) -> &ui::ScreenChoices {
        self.screen_picker.choices()
    }

    /// The engine, once it runs (tests read its slots and send it commands).
    pub fn engine(&self) -> Option<&Engine> {
        self.running.as_ref().map(|r| &r.engine)
    }

    /// Looks for (or starts) a local server, then starts the engine (`poll_start`).
    fn connect(&mut self) {
        if let Some(problem) = self.settings.problem() {
            self.model.cannot_connect(problem);
            return;
        }
        self.model.connecting();
        let host_port = self.settings.host_port;
        self.pending_start = Some(self.look_for_server(move |port| {
            port == local_server::DEFAULT_PORT || Some(port) == host_port
        }));
    }

    /// Starts the bundled server in the background if the server URL is on this machine,
    /// nothing answers there, the bundled server is allowed and `may_start(port)`.
    fn look_for_server(
        &self,
        may_start: impl FnOnce(u16) -> bool + Send + 'static,
    ) -> oneshot::Receiver<Found> {
        let (done, result) = oneshot::channel();
        let url = self.settings.server_url.clone();
        let stop = self.server_stop.clone();
        let wake = self.wake.clone();
        let bundled = !self.launch.no_bundled_server;
        self.runtime.spawn(async move {
            let outcome = if bundled {
                local_server::ensure(&url, stop, may_start).await
            } else {
                LocalServer::Remote
            };
            let urls = match outcome {
                LocalServer::Started { port } => local_server::lan_urls(port),
                _ => Vec::new(),
            };
            let _ = done.send((outcome, urls));
            wake();
        });
        result
    }

    /// The server we used was the bundled one of another Confab on this machine, which
    /// quit: take over hosting it (on any port: it was a server, not a typo).
    fn take_over_hosting(&mut self) {
        let local = local_server::local_port(&self.settings.server_url).is_some();
        let hosting = matches!(self.model.hosting, Hosting::Yes { .. });
        let was_online = self.model.was_online;
        if local && was_online && !hosting && self.pending_takeover.is_none() {
            self.pending_takeover = Some(self.look_for_server(|_| true));
        }
    }

    fn poll_takeover(&mut self, now: Instant) {
        let Some((outcome, urls)) = outcome_of(&mut self.pending_takeover) else {
            return;
        };
        match outcome {
            LocalServer::Started { port } => {
                self.model.notify(
                    "The signaling server had stopped: this Confab hosts it now",
                    Severity::Info,
                    now,
                );
                self.model.hosting = Hosting::Yes { port, urls };
            }
            // Another Confab was quicker (its server holds the port), or it cannot be
            // started: the engine keeps retrying either way.
            LocalServer::Failed(reason) => tracing::debug!("not taking over: {reason}"),
            LocalServer::Remote | LocalServer::AlreadyRunning | LocalServer::NotHosted { .. } => {}
        }
    }

    fn poll_start(&mut self, now: Instant) {
        let Some((outcome, urls)) = outcome_of(&mut self.pending_start) else {
            return;
        };
        match outcome {
            LocalServer::Started { port } => self.model.hosting = Hosting::Yes { port, urls },
            LocalServer::NotHosted { port } => self.model.hosting = Hosting::Offered { port },
            LocalServer::Failed(reason) => {
                self.model.notify(reason, Severity::Error, now);
                self.model.hosting = Hosting::No;
            }
            // Our own server, started earlier, answers too: still ours.
            LocalServer::AlreadyRunning if self.hosts_url() => {}
            LocalServer::Remote | LocalServer::AlreadyRunning => {
                self.model.hosting = Hosting::No;
            }
        }
        let _guard = self.runtime.enter();
        let identity = match &self.launch.identity {
            Some(identity) => identity.clone(),
            None => match Identity::generate() {
                Ok(identity) => self.launch.identity.insert(identity).clone(),
                Err(err) => {
                    self.model.notify(err.to_string(), Severity::Error, now);
                    return;
                }
            },
        };
        let mut config = self.settings.engine_config(identity);
        if !self.camera_on {
            config.video_input = confab_call::VideoInput::None;
        }
        let (engine, events) = Engine::start(config, Some(self.wake.clone()));
        engine.input.set_muted(self.muted);
        self.running = Some(Running { engine, events });
    }

    /// This Confab hosts the server its URL names.
    fn hosts_url(&self) -> bool {
        match self.model.hosting {
            Hosting::Yes { port, .. } => {
                local_server::local_port(&self.settings.server_url) == Some(port)
            }
            Hosting::No | Hosting::Offered { .. } => false,
        }
    }

    /// Logs out and in again with the current settings.
    fn reconnect(&mut self) {
        if let Some(running) = self.running.take() {
            // Shutting down hangs up and says goodbye: let it finish in the background.
            self.runtime.spawn(running.engine.shutdown());
        }
        self.model.roster.clear();
        self.model.call = CallState::Idle;
        self.model.sharing = false;
        self.title_stale = true;
        self.script.restart();
        self.remote.clear();
        self.screens.clear();
        self.local.clear();
        self.connect();
    }

    /// One frame: take news, draw, act.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let now = Instant::now();
        let ctx = ui.ctx().clone();
        // Unknown (no window system says) counts as focused.
        self.focused = ctx.input(|input| input.viewport().focused.unwrap_or(true));
        self.poll_start(now);
        self.poll_takeover(now);
        self.take_device_news(now);
        self.update_video(&ctx);
        self.update_preview(&ctx);
        self.update_screen_picker(&ctx);

        let mut actions = Vec::new();
        self.take_events(now, &mut actions);
        self.take_answers(&ctx, &mut actions);
        self.take_files(&ctx, now);
        if std::mem::take(&mut self.wants_attention) {
            ctx.send_viewport_cmd(ViewportCommand::RequestUserAttention(
                egui::UserAttentionType::Critical,
            ));
        }
        self.shortcuts(&ctx, &mut actions);
        self.draw(ui, now, &mut actions);
        if std::mem::take(&mut self.title_stale) {
            ctx.send_viewport_cmd(ViewportCommand::Title(self.model.window_title()));
        }
        for action in actions {
            self.apply(action, &ctx, now);
        }
        self.schedule_repaint(&ctx, now);
    }

    /// Files dropped on the window or chosen in the picker: offered in the call.
    fn take_files(&mut self, ctx: &egui::Context, now: Instant) {
        let mut paths: Vec<PathBuf> = ctx.input(|i| {
            let dropped = i.raw.dropped_files.iter();
            dropped.map(|file| file.path().to_path_buf()).collect()
        });
        while let Ok(picked) = self.picked.1.try_recv() {
            paths.extend(picked);
        }
        if paths.is_empty() {
            return;
        }
        if !self.model.in_call() {
            let text = "Files can be sent during a call";
            return self.model.notify(text, Severity::Info, now);
        }
        for path in paths {
            self.send(Command::SendFile(path));
        }
    }

    /// The desktop's file picker, on a thread of its own (it waits for the user).
    fn pick_files(&self) {
        let (picked, wake) = (self.picked.0.clone(), self.wake.clone());
        let spawned = std::thread::Builder::new()
            .name("file-picker".into())
            .spawn(move || {
                let files = rfd::FileDialog::new()
                    .set_title("Send files")
                    .pick_files()
                    .unwrap_or_default();
                if !files.is_empty() && picked.send(files).is_ok() {
                    wake();
                }
            });
        if let Err(err) = spawned {
            tracing::warn!("cannot open the file picker: {err}");
        }
    }

    /// Engine news into the model; what `--call` and `--chat` ask for into `actions`.
    fn take_events(&mut self, now: Instant, actions: &mut Vec<UiAction>) {
        while let Some(event) = self
            .running
            .as_mut()
            .and_then(|running| running.events.try_recv().ok())
        {
            if let EngineEvent::Call(state) = &event {
                self.call_changed(state);
            }
            if matches!(event, EngineEvent::Call(_) | EngineEvent::Sharing(_)) {
                self.title_stale = true;
            }
            if let EngineEvent::Server(confab_call::ServerStatus::Offline { .. }) = &event {
                self.take_over_hosting();
            }
            // The demo shows Confab working: without a camera, the test pattern stands in.
            if self.launch.demo
                && let EngineEvent::Problem(confab_call::Problem::Camera(reason)) = &event
            {
                self.model.notify(
                    format!("No camera to use ({reason}): the demo sends the test pattern"),
                    Severity::Info,
                    now,
                );
                actions.push(UiAction::UseTestPattern);
                continue;
            }
            actions.extend(
                self.script
                    .on_event(&event)
                    .into_iter()
                    .map(UiAction::Engine),
            );
            let sharers = self.model.sharers();
            self.model.apply(event, now);
            self.forget_stopped_screens(&sharers);
        }
        for call in self.model.finished.drain(..) {
            if call.missed && !self.focused {
                let title = format!("Missed call from {}", call.with.join(", "));
                self.notifier.tell(&title, &call.outcome);
            }
            self.history.add(call, wall_clock_ms());
        }
    }

    /// A peer that stopped sharing leaves no picture behind: its next share starts with
    /// its own first frame, not this one's last.
    fn forget_stopped_screens(&mut self, before: &[confab_protocol::PeerId]) {
        let now = self.model.sharers();
        for peer in before.iter().filter(|peer| !now.contains(peer)) {
            self.screens.forget(peer);
        }
    }

    /// What the user chose in a desktop notification.
    fn take_answers(&mut self, ctx: &egui::Context, actions: &mut Vec<UiAction>) {
        while let Some(answer) = self.notifier.answer() {
            let ringing = matches!(
                self.model.call,
                CallState::Incoming { .. } | CallState::Invited { .. }
            );
            match answer {
                Answer::Accept if ringing => {
                    actions.push(UiAction::Engine(Command::Accept));
                    ctx.send_viewport_cmd(ViewportCommand::Focus);
                }
                Answer::Decline if ringing => actions.push(UiAction::Engine(Command::Decline)),
                Answer::Show => ctx.send_viewport_cmd(ViewportCommand::Focus),
                // The call stopped ringing before the answer came.
                Answer::Accept | Answer::Decline => {}
            }
        }
    }

    /// Side effects of a new call state: the ringtone or ringback, the desktop
    /// notification, the previews, old pictures.
    fn call_changed(&mut self, state: &CallState) {
        // Audio off means no sound devices at all, the ringtone included.
        let sound = match state {
            CallState::Incoming { .. } | CallState::Invited { .. } => Some(Sound::Ringtone),
            CallState::Outgoing { .. } => Some(Sound::Ringback),
            _ => None,
        }
        .filter(|_| self.settings.audio_enabled);
        match sound {
            Some(sound) => self.sound.play(sound, self.speaker()),
            None => {
                if self.sound.playing().is_some_and(Sound::loops) {
                    self.sound.stop();
                }
            }
        }
        match state {
            CallState::Incoming { peer_name, .. } if !self.focused => {
                let title = format!("{peer_name} is calling");
                self.notifier.ringing(&title, "Video call", "Accept");
                self.wants_attention = true;
            }
            CallState::Invited {
                peer_name, others, ..
            } if !self.focused => {
                let title = format!("{peer_name} invites you");
                let body = format!("Group call with {}", others.join(", "));
                self.notifier.ringing(&title, &body, "Join");
                self.wants_attention = true;
            }
            _ => self.notifier.stop_ringing(),
        }
        match state {
            CallState::Outgoing { .. } | CallState::Incoming { .. } | CallState::Invited { .. } => {
                // The camera is about to be the call's: release the preview's hold on it.
                self.preview = None;
                self.remote.clear();
                self.screens.clear();
                self.local.clear();
            }
            CallState::Ended(_) => {
                self.remote.clear();
                self.screens.clear();
                self.local.clear();
            }
            _ => {}
        }
    }

    fn speaker(&self) -> Option<String> {
        self.settings.speaker.clone()
    }

    fn take_device_news(&mut self, now: Instant) {
        if let Some(problem) = self.sound.problems.take() {
            self.model.notify(problem, Severity::Error, now);
        }
        if let Some(lists) = self.devices.lists.take() {
            self.device_lists = Some(lists);
        }
        if let Some(preview) = &self.preview
            && let Some(problem) = preview.problems.take()
        {
            self.preview_problem = Some(problem);
        }
    }

    fn update_video(&mut self, ctx: &egui::Context) {
        let Some(running) = &self.running else {
            return;
        };
        self.remote.update(ctx, &running.engine.remote_video);
        self.screens.update(ctx, &running.engine.remote_screen);
        self.local.update_local(ctx, &running.engine.local_video);
    }

    /// The screen picker captures thumbnails while it is open in a call.
    fn update_screen_picker(&mut self, ctx: &egui::Context) {
        if !self.model.in_call() {
            self.ui.share_open = false;
        }
        let display = self.launch.screen_display.as_deref();
        let open = self.ui.share_open;
        self.screen_picker.update(ctx, open, display, &self.wake);
    }

    /// The settings' camera and microphone preview runs while they are open outside a call.
    fn update_preview(&mut self, ctx: &egui::Context) {
        let wanted = self.ui.settings_open && !self.model.busy();
        self.devices.set_active(self.ui.settings_open);
        let settings = self.ui.settings_draft.as_ref().unwrap_or(&self.settings);
        let current = self.preview.as_ref().is_some_and(|p| p.matches(settings));
        if !wanted || !current {
            self.preview = None;
            self.preview_texture.clear();
            self.preview_problem = None;
        }
        if !wanted {
            return;
        }
        if self.preview.is_none() {
            self.preview = Some(Preview::start(settings, self.wake.clone()));
        }
        if let Some(preview) = &self.preview {
            self.preview_texture.update_local(ctx, &preview.frames);
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context, actions: &mut Vec<UiAction>) {
        ctx.input_mut(|input| {
            if self.model.in_call() {
                if input.consume_shortcut(&ui::MUTE) {
                    actions.push(UiAction::SetMuted(!self.muted));
                }
                if input.consume_shortcut(&ui::CAMERA) {
                    actions.push(UiAction::SetCamera(!self.camera_on));
                }
                if input.consume_shortcut(&ui::STATS) {
                    self.ui.show_stats = !self.ui.show_stats;
                }
            }
            if self.model.busy() && input.consume_shortcut(&ui::HANG_UP) {
                actions.push(UiAction::Engine(Command::HangUp));
            }
            if input.consume_shortcut(&ui::FOCUS_CHAT) {
                actions.push(UiAction::SetChatOpen(true));
                self.ui.focus_chat = true;
            }
            if input.consume_shortcut(&ui::FULLSCREEN) {
                actions.push(UiAction::SetFullscreen(!self.ui.fullscreen));
            }
            if input.consume_shortcut(&ui::SHORTCUTS) {
                self.ui.shortcuts_open = !self.ui.shortcuts_open;
            }
            // Esc leaves fullscreen, as everywhere else.
            if self.ui.fullscreen && input.consume_key(egui::Modifiers::NONE, egui::Key::Escape) {
                actions.push(UiAction::SetFullscreen(false));
            }
        });
    }

    fn draw(&mut self, ui: &mut egui::Ui, now: Instant, actions: &mut Vec<UiAction>) {
        let ctx = ui.ctx().clone();
        // In a call on a small window, the people list gives way to the call.
        let narrow = ui.available_width() < NARROW_WINDOW;
        if !self.ui.fullscreen {
            egui::Panel::top("top-bar").show(ui, |ui| {
                ui::top_bar_ui(ui, &self.model, &self.settings, &mut self.ui, now, actions);
            });
            if let Some(reason) = &self.model.camera_problem {
                egui::Panel::top("camera-notice").show(ui, |ui| {
                    ui::camera_notice_ui(ui, reason, actions);
                });
            }
            if !(narrow && self.model.in_call()) {
                egui::Panel::left("peers")
                    .default_size(220.0)
                    .size_range(180.0..=360.0)
                    .show(ui, |ui| {
                        ui::peers_ui(ui, &self.model, &mut self.ui, actions)
                    });
            }
            if self.model.chat_open {
                egui::Panel::right("chat")
                    .default_size(300.0)
                    .size_range(220.0..=480.0)
                    .show(ui, |ui| ui::chat_ui(ui, &self.model, &mut self.ui, actions));
            }
        }
        let media = self.call_media();
        let main = egui::CentralPanel::default().show(ui, |ui| {
            if self.model.in_call() {
                ui::call_ui(ui, &self.model, &media, &mut self.ui, now, actions);
            } else {
                let view = HomeView {
                    settings: &self.settings,
                    history: &self.history,
                };
                ui::home_ui(ui, &self.model, &view, &mut self.ui, actions);
            }
        });
        if let Some(name) = &mut self.ui.welcome_name {
            ui::welcome_ui(&ctx, name, actions);
        }
        ui::dialogs_ui(&ctx, &self.model, actions);
        ui::invite_ui(&ctx, &self.model, &mut self.ui, actions);
        ui::shortcuts_ui(&ctx, &mut self.ui);
        ui::verify_ui(&ctx, &self.model, &mut self.ui, actions);
        let choices = self.screen_picker.choices();
        ui::share_picker_ui(&ctx, choices, &mut self.ui, actions);
        self.settings_window(&ctx, actions);
        let mut notices = main.response.rect;
        if self.model.sharing && self.model.in_call() {
            // Below the sharing banner, not over it.
            notices.min.y += ui::share::BANNER_HEIGHT;
        }
        ui::toasts_ui(&ctx, &self.model, now, notices);
    }

    fn call_media(&self) -> CallMedia {
        let engine = self.engine();
        let remotes = self.remote.pictures();
        CallMedia {
            remote: remotes.values().next().copied(),
            remotes,
            screens: self.screens.pictures(),
            local: self.local.picture(),
            muted: self.muted,
            camera_on: self.camera_on,
            self_view: self.settings.self_view,
            me_speaking: engine.is_some_and(|e| e.input.is_speaking()),
            peer_speaking: engine.is_some_and(|e| e.remote_audio.is_speaking()),
        }
    }

    fn settings_window(&mut self, ctx: &egui::Context, actions: &mut Vec<UiAction>) {
        if !self.ui.settings_open {
            if let Some(draft) = self.ui.settings_draft.take()
                && self.settings.needs_reconnect(&draft)
                && draft.problem().is_none()
            {
                // Closing the window keeps what was typed: log in with it.
                actions.push(UiAction::ApplySettings(draft));
            }
            return;
        }
        let mut draft = self
            .ui
            .settings_draft
            .take()
            .unwrap_or_else(|| self.settings.clone());
        let input_level = match (&self.preview, self.engine()) {
            (Some(preview), _) => preview.level.level().rms,
            (None, Some(engine)) if self.model.in_call() => engine.input.level().rms,
            _ => 0.0,
        };
        let view = SettingsView {
            devices: self.device_lists.as_ref(),
            preview: self.preview_texture.picture(),
            preview_problem: self.preview_problem.as_deref(),
            // RMS of speech sits around 0.05-0.2: scale so talking fills most of the bar.
            input_level: (input_level * 5.0).sqrt(),
            applied: Some(&self.settings),
            busy: self.model.busy(),
        };
        ui::settings_ui(ctx, &mut self.ui.settings_open, &mut draft, &view, actions);
        self.ui.settings_draft = Some(draft);
    }

    fn send(&self, command: Command) {
        if let Some(running) = &self.running {
            running.engine.send(command);
        }
    }

    fn apply(&mut self, action: UiAction, ctx: &egui::Context, now: Instant) {
        match action {
            UiAction::Engine(command) => {
                if self.running.is_none() {
                    self.model
                        .notify("Not connected to the server yet.", Severity::Error, now);
                }
                self.send(command);
            }
            UiAction::SetMuted(muted) => {
                self.muted = muted;
                self.send(Command::SetMuted(muted));
            }
            UiAction::SetCamera(on) => {
                self.camera_on = on;
                self.send(Command::SetCamera(on));
                if !on {
                    self.local.clear();
                }
            }
            UiAction::SetChatOpen(open) => {
                self.model.set_chat_open(open);
                self.settings.chat_open = open;
            }
            UiAction::SetSelfView(on) => self.settings.self_view = on,
            UiAction::ShareScreen { monitor } => {
                let display = self.launch.screen_display.clone();
                self.send(Command::ShareScreen(ScreenSelector { display, monitor }));
            }
            UiAction::StopSharing => self.send(Command::StopSharing),
            UiAction::SetFullscreen(on) => {
                self.ui.fullscreen = on;
                ctx.send_viewport_cmd(ViewportCommand::Fullscreen(on));
            }
            UiAction::ChangeSettings(new) => self.change_devices(new),
            UiAction::ApplySettings(new) => {
                let reconnect = self.settings.needs_reconnect(&new);
                self.change_devices(new.clone());
                self.settings = new;
                if reconnect {
                    self.reconnect();
                }
            }
            UiAction::Reconnect => self.reconnect(),
            UiAction::UseTestPattern => {
                let mut new = self.settings.clone();
                new.camera = crate::app::settings::CameraChoice::TestPattern;
                self.change_devices(new);
                self.model.camera_problem = None;
            }
            UiAction::ChooseName(name) => {
                self.ui.welcome_name = None;
                self.settings.name = name;
                self.reconnect();
            }
            UiAction::HostServer(port) => {
                self.settings.host_port = Some(port);
                self.reconnect();
            }
            UiAction::Copy(text) => {
                ctx.copy_text(text.clone());
                self.model
                    .notify(format!("Copied {text}"), Severity::Info, now);
            }
            UiAction::ClearHistory => self.history.clear(),
            UiAction::MarkVerified { name, identity } => {
                self.model.verified.mark(name, identity);
            }
            UiAction::ForgetVerified(name) => self.model.verified.forget(&name),
            UiAction::PickFiles => self.pick_files(),
            UiAction::ShowInFolder(path) => {
                let folder = path.parent().map_or(path.clone(), Path::to_path_buf);
                if let Err(err) = open::that_detached(&folder) {
                    let text = format!("Cannot open {}: {err}", folder.display());
                    self.model.notify(text, Severity::Error, now);
                }
            }
            UiAction::TestSound => {
                let speaker = self
                    .ui
                    .settings_draft
                    .as_ref()
                    .unwrap_or(&self.settings)
                    .speaker
                    .clone();
                self.sound.play(Sound::Chime, speaker);
            }
        }
    }

    /// Device choices apply at once (for the next call, or this one); identity and
    /// network wait for a reconnect.
    fn change_devices(&mut self, new: Settings) {
        let old = self.settings.clone();
        if (new.camera.clone(), new.video_format()) != (old.camera.clone(), old.video_format()) {
            self.send(Command::SetVideoInput(new.camera.video_input()));
            self.send(Command::SetVideoFormat(new.video_format()));
        }
        if new.audio_input() != old.audio_input() {
            self.send(Command::SetAudioInput(new.audio_input()));
        }
        if new.audio_output() != old.audio_output() {
            self.send(Command::SetAudioOutput(new.audio_output()));
        }
        if new.audio_processing() != old.audio_processing() {
            self.send(Command::SetAudioProcessing(new.audio_processing()));
        }
        if new.files() != old.files() {
            self.send(Command::SetFileSettings(new.files()));
        }
        let settings = &mut self.settings;
        settings.camera = new.camera;
        (settings.width, settings.height) = (new.width, new.height);
        settings.microphone = new.microphone;
        settings.speaker = new.speaker;
        settings.audio_enabled = new.audio_enabled;
        settings.echo_cancellation = new.echo_cancellation;
        settings.noise_suppression = new.noise_suppression;
        settings.gain_control = new.gain_control;
        settings.download_dir = new.download_dir;
        settings.max_file_mib = new.max_file_mib;
    }

    fn schedule_repaint(&mut self, ctx: &egui::Context, now: Instant) {
        if let Some(after) = self.launch.quit_after
            && now.duration_since(self.started) >= after
        {
            ctx.send_viewport_cmd(ViewportCommand::Close);
        }
        let mut next = self.model.expire_toasts(now).map(|at| at - now);
        let mut soon = |wait: Duration| next = Some(next.map_or(wait, |n| n.min(wait)));
        // Clocks on screen: the call duration and the retry countdown tick each second.
        if self.model.connected_at.is_some() || self.model.retry_at.is_some() {
            soon(Duration::from_secs(1));
        }
        // The level meter and speaking indicators move continuously.
        if self.ui.settings_open || self.model.in_call() {
            soon(Duration::from_millis(100));
        }
        if let Some(after) = self.launch.quit_after {
            soon(after.saturating_sub(now.duration_since(self.started)));
        }
        if let Some(wait) = next {
            ctx.request_repaint_after(wait);
        }
    }

    /// Hangs up, logs out and stops the bundled server; waits at most `limit`.
    pub fn shutdown(&mut self, limit: Duration) {
        self.sound.stop();
        self.notifier.stop_ringing();
        self.preview = None;
        if let Some(running) = self.running.take() {
            let _ = self
                .runtime
                .block_on(async { tokio::time::timeout(limit, running.engine.shutdown()).await });
        }
        self.server_stop.cancel();
    }
}

/// Other threads wake the UI at most this often. Two 30 fps streams (the peer and the
/// self-view) then cost 30 repaints a second instead of up to 60; events wait at most
/// this long too.
const MIN_REPAINT_INTERVAL: Duration = Duration::from_millis(33);

/// A wake callback that asks for a repaint no sooner than [`MIN_REPAINT_INTERVAL`]
/// after the previous one it asked for. Lock-free: frame threads call it.
fn paced_wake(ctx: egui::Context) -> Wake {
    use std::sync::atomic::{AtomicU64, Ordering};
    let epoch = Instant::now();
    let last_ms = AtomicU64::new(0);
    let interval_ms = MIN_REPAINT_INTERVAL.as_millis() as u64;
    std::sync::Arc::new(move || {
        let now_ms = epoch.elapsed().as_millis() as u64;
        let due_ms = last_ms.load(Ordering::Relaxed) + interval_ms;
        if now_ms >= due_ms {
            last_ms.store(now_ms, Ordering::Relaxed);
            ctx.request_repaint();
        } else {
            // egui keeps the earliest request: a burst of wakes is one repaint.
            ctx.request_repaint_after(Duration::from_millis(due_ms - now_ms));
        }
    })
}

impl eframe::App for ConfabApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if self.launch.frame_stats.is_some()
            && let Some(cpu) = frame.info().cpu_usage
        {
            self.frame_times.push(cpu);
        }
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, super::settings::STORAGE_KEY, &self.settings);
        eframe::set_value(storage, super::history::STORAGE_KEY, &self.history);
        eframe::set_value(storage, super::verified::STORAGE_KEY, &self.model.verified);
    }

    fn on_exit(&mut self) {
        // Said once, at exit: give the peer a clean hang-up rather than a timeout.
        self.shutdown(Duration::from_secs(2));
        if let Some(path) = &self.launch.frame_stats
            && let Err(err) = write_frame_stats(path, &mut self.frame_times)
        {
            tracing::warn!("cannot write {}: {err}", path.display());
        }
    }
}

/// Now, in ms since the Unix epoch (to date the call history).
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Frame CPU times as JSON: count, p50, p95 and max in milliseconds.
fn write_frame_stats(path: &std::path::Path, times: &mut [f32]) -> std::io::Result<()> {
    times.sort_by(f32::total_cmp);
    let at = |q: f64| {
        let index = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(index).map_or(0.0, |t| f64::from(*t) * 1000.0)
    };
    let json = serde_json::json!({
        "frames": times.len(),
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "max_ms": at(1.0),
    });
    std::fs::write(path, json.to_string())
}
