//! The settings window: who I am and where the server is (applied by reconnecting), and
//! devices (applied at once): camera with a live preview and resolution, microphone with
//! a level meter, speaker with a test sound, audio on/off, STUN/TURN servers.

use egui::{Color32, RichText};

use super::UiAction;
use super::call::Picture;
use crate::app::settings::{CameraChoice, IceEntry, RESOLUTIONS, Settings, SettingsProblem};

/// The devices found on this machine, refreshed while the settings are open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceLists {
    pub cameras: Vec<String>,
    pub microphones: Vec<String>,
    pub speakers: Vec<String>,
    /// Why a list could not be read, in words.
    pub problems: Vec<String>,
}

/// What the settings window shows besides the settings themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct SettingsView<'a> {
    pub devices: Option<&'a DeviceLists>,
    pub preview: Option<Picture>,
    /// Why there is no preview, if there is none.
    pub preview_problem: Option<&'a str>,
    /// Microphone level, 0..=1.
    pub input_level: f32,
    /// The settings the engine runs with now (to tell what needs a reconnect).
    pub applied: Option<&'a Settings>,
    /// In a call (or ringing): the devices belong to the call, there is no preview.
    pub busy: bool,
}

pub fn settings_ui(
    ctx: &egui::Context,
    open: &mut bool,
    draft: &mut Settings,
    view: &SettingsView<'_>,
    actions: &mut Vec<UiAction>,
) {
    let before = draft.clone();
    egui::Window::new("Settings")
        .open(open)
        .default_width(420.0)
        .default_height(620.0)
        .collapsible(false)
        .vscroll(true)
        .show(ctx, |ui| {
            account_ui(ui, draft, view, actions);
            ui.separator();
            camera_ui(ui, draft, view);
            ui.separator();
            audio_ui(ui, draft, view, actions);
            ui.separator();
            files_ui(ui, draft);
            ui.separator();
            network_ui(ui, draft);
        });
    if *draft != before {
        actions.push(UiAction::ChangeSettings(draft.clone()));
    }
}

fn account_ui(
    ui: &mut egui::Ui,
    draft: &mut Settings,
    view: &SettingsView<'_>,
    actions: &mut Vec<UiAction>,
) {
    ui.heading("You");
    let problem = draft.problem();
    // A problem is said under the field it is about.
    let problem_row = |ui: &mut egui::Ui, which: SettingsProblem| {
        if problem == Some(which) {
            ui.label("");
            ui.label(RichText::new(which.here()).color(ui.visuals().warn_fg_color));
            ui.end_row();
        }
    };
    egui::Grid::new("account").num_columns(2).show(ui, |ui| {
        let label = ui.label("Display name");
        ui.text_edit_singleline(&mut draft.name)
            .labelled_by(label.id);
        ui.end_row();
        problem_row(ui, SettingsProblem::NoName);
        let label = ui.label("Server URL");
        ui.text_edit_singleline(&mut draft.server_url)
            .labelled_by(label.id);
        ui.end_row();
        problem_row(ui, SettingsProblem::ServerUrl);
        let label = ui.label("Token");
        ui.add(
            egui::TextEdit::singleline(&mut draft.token)
                .password(true)
                .hint_text("if the server needs one"),
        )
        .labelled_by(label.id);
        ui.end_row();
    });
    let needs_reconnect = view
        .applied
        .is_some_and(|applied| applied.needs_reconnect(draft));
    if problem.is_none() && needs_reconnect {
        ui.horizontal(|ui| {
            ui.label("Name, server and network changes apply when you reconnect.");
            if ui.button("Reconnect").clicked() {
                actions.push(UiAction::ApplySettings(draft.clone()));
            }
        });
    }
}

fn camera_ui(ui: &mut egui::Ui, draft: &mut Settings, view: &SettingsView<'_>) {
    ui.heading("Video");
    let mut choices = vec![CameraChoice::Camera(None)];
    if let Some(devices) = view.devices {
        choices.extend(
            devices
                .cameras
                .iter()
                .map(|name| CameraChoice::Camera(Some(name.clone()))),
        );
    }
    choices.extend([CameraChoice::TestPattern, CameraChoice::Off]);
    let label = ui.label("Camera");
    egui::ComboBox::from_id_salt("camera")
        .selected_text(draft.camera.label())
        .show_ui(ui, |ui| {
            for choice in choices {
                let text = choice.label();
                ui.selectable_value(&mut draft.camera, choice, text);
            }
        })
        .response
        .labelled_by(label.id);
    let label = ui.label("Resolution");
    egui::ComboBox::from_id_salt("resolution")
        .selected_text(format!("{}x{}", draft.width, draft.height))
        .show_ui(ui, |ui| {
            for (width, height) in RESOLUTIONS {
                let selected = (draft.width, draft.height) == (width, height);
                if ui
                    .selectable_label(selected, format!("{width}x{height}"))
                    .clicked()
                {
                    (draft.width, draft.height) = (width, height);
                }
            }
        })
        .response
        .labelled_by(label.id);
    match (view.preview, view.preview_problem) {
        (Some(picture), _) => {
            let width = ui.available_width().min(320.0);
            let size = egui::vec2(
                width,
                width * picture.size[1] as f32 / picture.size[0].max(1) as f32,
            );
            let image = egui::Image::new((picture.texture, size)).uv(egui::Rect::from_min_max(
                egui::pos2(1.0, 0.0),
                egui::pos2(0.0, 1.0),
            ));
            ui.add(image).widget_info(|| {
                egui::WidgetInfo::labeled(egui::Role::Image, true, "Camera preview")
            });
        }
        (None, Some(problem)) => {
            ui.label(RichText::new(problem).color(ui.visuals().warn_fg_color));
        }
        (None, None) if view.busy => {
            ui.label(
                RichText::new("No preview during a call: your picture is in the call view.").weak(),
            );
        }
        (None, None) if draft.camera == CameraChoice::Off => {
            ui.label(RichText::new("Video is off.").weak());
        }
        (None, None) => {
            ui.label(RichText::new("Starting the camera…").weak());
        }
    }
}

fn audio_ui(
    ui: &mut egui::Ui,
    draft: &mut Settings,
    view: &SettingsView<'_>,
    actions: &mut Vec<UiAction>,
) {
    ui.heading("Audio");
    ui.checkbox(
        &mut draft.audio_enabled,
        "Audio on (microphone and speaker)",
    );
    ui.add_enabled_ui(draft.audio_enabled, |ui| {
        let (microphones, speakers) = view
            .devices
            .map(|d| (d.microphones.as_slice(), d.speakers.as_slice()))
            .unwrap_or_default();
        device_combo(ui, "Microphone", &mut draft.microphone, microphones);
        let level = view.input_level.clamp(0.0, 1.0);
        ui.add(
            egui::ProgressBar::new(level)
                .desired_width(200.0)
                .fill(Color32::from_rgb(60, 190, 90))
                .text("input level"),
        );
        device_combo(ui, "Speaker", &mut draft.speaker, speakers);
        if ui
            .button("Play test sound")
            .on_hover_text("A short chime on this speaker")
            .clicked()
        {
            actions.push(UiAction::TestSound);
        }
    });
    // Apply at once, mid-call too.
    ui.checkbox(&mut draft.echo_cancellation, "Echo cancellation")
        .on_hover_text("Keeps the other side from hearing their own voice from your speaker");
    ui.checkbox(&mut draft.noise_suppression, "Noise suppression")
        .on_hover_text("Takes steady background noise (fans, hum) out of your microphone");
    ui.checkbox(&mut draft.gain_control, "Automatic gain")
        .on_hover_text("Keeps your voice at a steady level, near the microphone or far");
    if let Some(devices) = view.devices {
        for problem in &devices.problems {
            ui.label(RichText::new(problem).color(ui.visuals().warn_fg_color));
        }
    }
}

fn device_combo(ui: &mut egui::Ui, title: &str, choice: &mut Option<String>, names: &[String]) {
    let label = ui.label(title);
    let selected = choice.clone().unwrap_or_else(|| "System default".into());
    egui::ComboBox::from_id_salt(title)
        .selected_text(selected)
        .width(260.0)
        .show_ui(ui, |ui| {
            ui.selectable_value(choice, None, "System default");
            for name in names {
                ui.selectable_value(choice, Some(name.clone()), name);
            }
        })
        .response
        .labelled_by(label.id);
}

fn files_ui(ui: &mut egui::Ui, draft: &mut Settings) {
    ui.heading("Files");
    egui::Grid::new("files").num_columns(2).show(ui, |ui| {
        let label = ui.label("Save received files in");
        let default = draft.files().download_dir.display().to_string();
        let mut folder = draft
            .download_dir
            .as_ref()
            .map(|dir| dir.display().to_string())
            .unwrap_or_default();
        let edit = egui::TextEdit::singleline(&mut folder).hint_text(default);
        if ui.add(edit).labelled_by(label.id).changed() {
            let folder = folder.trim();
            draft.download_dir = (!folder.is_empty()).then(|| folder.into());
        }
        ui.end_row();
        let label = ui.label("Largest file (MiB)");
        ui.add(egui::DragValue::new(&mut draft.max_file_mib).range(1..=1 << 20))
            .labelled_by(label.id);
        ui.end_row();
    });
}

fn network_ui(ui: &mut egui::Ui, draft: &mut Settings) {
    ui.heading("Network");
    ui.label(RichText::new("STUN and TURN servers help calls cross firewalls.").weak());
    let mut remove = None;
    for (index, entry) in draft.ice_servers.iter_mut().enumerate() {
        ui.push_id(index, |ui| {
            ui.horizontal(|ui| {
                let label = ui.label("URL");
                ui.add(
                    egui::TextEdit::singleline(&mut entry.url)
                        .hint_text("stun:host:3478 or turn:host:3478")
                        .desired_width(220.0),
                )
                .labelled_by(label.id);
                if ui.button("Remove").clicked() {
                    remove = Some(index);
                }
            });
            if entry.url.trim_start().starts_with("turn") {
                ui.horizontal(|ui| {
                    let label = ui.label("User");
                    ui.add(egui::TextEdit::singleline(&mut entry.username).desired_width(100.0))
                        .labelled_by(label.id);
                    let label = ui.label("Password");
                    ui.add(
                        egui::TextEdit::singleline(&mut entry.credential)
                            .password(true)
                            .desired_width(100.0),
                    )
                    .labelled_by(label.id);
                });
            }
        });
    }
    if let Some(index) = remove {
        draft.ice_servers.remove(index);
    }
    if ui.button("Add server").clicked() {
        draft.ice_servers.push(IceEntry::default());
    }
    ui.checkbox(
        &mut draft.relay_only,
        "Relay only (hide my address; needs TURN)",
    );
    if draft.problem() == Some(SettingsProblem::RelayWithoutTurn) {
        let problem = SettingsProblem::RelayWithoutTurn.here();
        ui.label(RichText::new(problem).color(ui.visuals().warn_fg_color));
    }
}
