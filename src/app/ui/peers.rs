//! The peer list: who is online, who is busy, a call button each, and a filter.

use confab_call::Command;
use egui::RichText;

use super::{UiAction, UiState};
use crate::app::model::Model;

pub fn peers_ui(
    ui: &mut egui::Ui,
    model: &Model,
    state: &mut UiState,
    actions: &mut Vec<UiAction>,
) {
    ui.heading("People");
    ui.add(
        egui::TextEdit::singleline(&mut state.filter)
            .hint_text("Filter by name")
            .desired_width(f32::INFINITY),
    )
    .labelled_by(ui.label("Filter").id);
    ui.separator();

    if !model.is_online() {
        ui.label(RichText::new("Not connected to the server.").weak());
        ui.label(RichText::new("People appear here once Confab is online.").weak());
        return;
    }
    if model.roster.is_empty() {
        ui.label("Nobody else is online yet.");
        ui.label(
            RichText::new(
                "They appear here when they start Confab with the same server address \
                 (shown at the top).",
            )
            .weak(),
        );
        return;
    }
    let filter = state.filter.trim().to_lowercase();
    let mut shown = 0;
    egui::ScrollArea::vertical().show(ui, |ui| {
        for peer in &model.roster {
            if !filter.is_empty() && !peer.name.to_lowercase().contains(&filter) {
                continue;
            }
            shown += 1;
            ui.horizontal(|ui| {
                ui.label(RichText::new(&peer.name).strong());
                if peer.busy {
                    ui.label(
                        RichText::new("busy")
                            .small()
                            .color(ui.visuals().warn_fg_color),
                    )
                    .on_hover_text("In another call");
                }
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let can_call = !model.busy() && !peer.busy;
                    let button = ui
                        .add_enabled(
                            can_call,
                            egui::Button::new(format!("📞 Call {}", peer.name)),
                        )
                        .on_hover_text(format!("Video call {}", peer.name))
                        .on_disabled_hover_text(if peer.busy {
                            format!("{} is in another call", peer.name)
                        } else {
                            "You are already in a call".to_owned()
                        });
                    if button.clicked() {
                        actions.push(UiAction::Engine(Command::Call {
                            peer: peer.id.clone(),
                        }));
                    }
                });
            });
        }
    });
    if shown == 0 {
        ui.label(RichText::new(format!("Nobody matches \"{}\".", state.filter.trim())).weak());
    }
}
