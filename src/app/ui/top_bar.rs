//! The top bar: server connection, my name, the server address (and where others find it
//! when this Confab hosts it), and the buttons that open the chat and the settings.

use std::time::Instant;

use confab_call::ServerStatus;
use egui::{Color32, RichText};

use super::{FOCUS_CHAT, UiAction, UiState};
use crate::app::model::{Hosting, Model};
use crate::app::settings::Settings;

pub fn top_bar_ui(
    ui: &mut egui::Ui,
    model: &Model,
    settings: &Settings,
    state: &mut UiState,
    now: Instant,
    actions: &mut Vec<UiAction>,
) {
    ui.horizontal(|ui| {
        ui.heading("Confab");
        ui.separator();
        let red = Color32::from_rgb(220, 70, 60);
        let (dot, text) = match (&model.settings_problem, &model.connection) {
            (Some(_), _) | (None, ServerStatus::Refused { .. }) => (red, "Refused".to_owned()),
            (None, ServerStatus::Connecting { .. }) => {
                (Color32::from_rgb(230, 180, 40), "Connecting…".to_owned())
            }
            (None, ServerStatus::Online { .. }) => {
                (Color32::from_rgb(60, 190, 90), "Online".to_owned())
            }
            (None, ServerStatus::Offline { .. }) => {
                let secs = model.retry_at.map_or(0.0, |at| {
                    at.saturating_duration_since(now).as_secs_f32().ceil()
                });
                (red, format!("Offline, retrying in {secs:.0} s"))
            }
        };
        let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
        ui.painter().circle_filled(rect.center(), 5.0, dot);
        // Why, and what to do about it, is said in the main area.
        ui.label(format!("{text} as {}", settings.name.trim()));
        ui.label(RichText::new(settings.server_url.trim()).weak())
            .on_hover_text("Signaling server");
        // Lasting, while it is true; the addresses are in the main area.
        if let Hosting::Yes { port, .. } = &model.hosting {
            ui.label(RichText::new("📡 Hosting").strong())
                .on_hover_text(format!(
                    "This computer hosts the signaling server (port {port}) for others"
                ));
        }

        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui
                .selectable_label(state.settings_open, "⚙ Settings")
                .on_hover_text("Name, server, camera, microphone and speaker")
                .clicked()
            {
                state.settings_open = !state.settings_open;
            }
            let chat_label = match (model.chat_open, model.unread) {
                (false, unread) if unread > 0 => format!("💬 Chat ({unread} new)"),
                _ => "💬 Chat".to_owned(),
            };
            let hint = format!(
                "Show or hide the chat ({}: open it and write a message)",
                ui.ctx().format_shortcut(&FOCUS_CHAT)
            );
            if ui
                .selectable_label(model.chat_open, chat_label)
                .on_hover_text(hint)
                .clicked()
            {
                actions.push(UiAction::SetChatOpen(!model.chat_open));
            }
        });
    });
}
