//! Ringing dialogs (incoming: Accept / Decline; outgoing: Cancel) and the notices in the
//! bottom-right corner.

use std::time::Instant;

use confab_call::{CallState, Command};
use egui::{Align2, Color32, RichText};

use super::{UiAction, trust_badge};
use crate::app::model::{Model, Severity};
use crate::app::verified::Trust;

pub fn dialogs_ui(ctx: &egui::Context, model: &Model, actions: &mut Vec<UiAction>) {
    match &model.call {
        CallState::Incoming { peer, peer_name } => {
            egui::Modal::new(egui::Id::unique("incoming-call")).show(ctx, |ui| {
                ui.set_width(320.0);
                ui.heading(format!("{peer_name} is calling"));
                ui.label("Video call");
                let warn = ui.visuals().warn_fg_color;
                match model.identity_of(peer).map(|(_, trust)| trust) {
                    Some(Trust::Changed) => {
                        ui.label(
                            RichText::new(format!(
                                "⚠ This is not the identity you verified for {peer_name}: it may \
                                 be someone else. Compare safety codes before you trust the call."
                            ))
                            .color(warn),
                        );
                    }
                    trust => {
                        if let Some((badge, color)) = trust.and_then(|t| trust_badge(t, warn)) {
                            ui.label(RichText::new(badge).color(color));
                        }
                    }
                }
                ui.add_space(12.0);
                ui.horizontal(|ui| {
                    let accept = egui::Button::new(RichText::new("Accept").color(Color32::WHITE))
                        .fill(Color32::from_rgb(45, 150, 75));
                    if ui.add(accept).on_hover_text("Answer with video").clicked() {
                        actions.push(UiAction::Engine(Command::Accept));
                    }
                    let decline = egui::Button::new(RichText::new("Decline").color(Color32::WHITE))
                        .fill(Color32::from_rgb(200, 50, 45));
                    if ui.add(decline).on_hover_text("Say no").clicked() {
                        actions.push(UiAction::Engine(Command::Decline));
                    }
                });
            });
        }
        CallState::Invited {
            peer_name, others, ..
        } => {
            egui::Modal::new(egui::Id::unique("invitation")).show(ctx, |ui| {
                ui.set_width(320.0);
                ui.heading(format!("{peer_name} invites you"));
                ui.label(format!("Group call with {}", others.join(", ")));
                ui.add_space(12.0);
                ui.horizontal(|ui| {
                    let join = egui::Button::new(RichText::new("Join").color(Color32::WHITE))
                        .fill(Color32::from_rgb(45, 150, 75));
                    if ui
                        .add(join)
                        .on_hover_text("Join the call with video")
                        .clicked()
                    {
                        actions.push(UiAction::Engine(Command::Accept));
                    }
                    let decline = egui::Button::new(RichText::new("Decline").color(Color32::WHITE))
                        .fill(Color32::from_rgb(200, 50, 45));
                    if ui.add(decline).on_hover_text("Say no").clicked() {
                        actions.push(UiAction::Engine(Command::Decline));
                    }
                });
            });
        }
        CallState::Outgoing { peer_name, .. } => {
            egui::Modal::new(egui::Id::unique("outgoing-call")).show(ctx, |ui| {
                ui.set_width(320.0);
                ui.heading(format!("Calling {peer_name}…"));
                ui.label("Waiting for an answer");
                ui.add_space(12.0);
                if ui.button("Cancel").on_hover_text("Stop calling").clicked() {
                    actions.push(UiAction::Engine(Command::HangUp));
                }
            });
        }
        _ => {}
    }
}

/// First run: who are you? Nothing connects until there is a name.
pub fn welcome_ui(ctx: &egui::Context, name: &mut String, actions: &mut Vec<UiAction>) {
    egui::Modal::new(egui::Id::unique("welcome")).show(ctx, |ui| {
        ui.set_width(360.0);
        ui.heading("Welcome to Confab");
        ui.label("Others see you by this name (you can change it later in Settings).");
        ui.add_space(8.0);
        let label = ui.label("Your name");
        let field = ui.text_edit_singleline(name).labelled_by(label.id);
        if !field.has_focus() && !field.lost_focus() && name.is_empty() {
            field.request_focus();
        }
        let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.add_space(8.0);
        let usable = !name.trim().is_empty();
        if !usable {
            ui.label(RichText::new("Choose a name.").color(ui.visuals().warn_fg_color));
        }
        let go = ui
            .add_enabled(usable, egui::Button::new("Continue"))
            .clicked();
        if usable && (go || enter) {
            actions.push(UiAction::ChooseName(name.trim().to_owned()));
        }
    });
}

/// The notices, at the top middle of `main` (the call or home area): clear of the
/// bars, the side panes and the call controls, whose buttons they must never cover.
pub fn toasts_ui(ctx: &egui::Context, model: &Model, now: Instant, main: egui::Rect) {
    if model.toasts.is_empty() {
        return;
    }
    egui::Area::new(egui::Id::unique("toasts"))
        .pivot(Align2::CENTER_TOP)
        // Below the call's title line.
        .fixed_pos(egui::pos2(main.center().x, main.top() + 44.0))
        .order(egui::Order::Foreground)
        .interactable(false)
        .show(ctx, |ui| {
            ui.set_max_width(360.0_f32.min(main.width() - 16.0));
            for toast in model.toasts.iter().filter(|t| t.until > now) {
                let (fill, text) = match toast.severity {
                    Severity::Info => (Color32::from_rgb(40, 60, 90), Color32::WHITE),
                    Severity::Error => (Color32::from_rgb(120, 35, 35), Color32::WHITE),
                };
                egui::Frame::new()
                    .fill(fill)
                    .corner_radius(6.0)
                    .inner_margin(egui::Margin::symmetric(10, 6))
                    .show(ui, |ui| {
                        ui.add(egui::Label::new(RichText::new(&toast.text).color(text)).wrap());
                    });
                ui.add_space(6.0);
            }
        });
}
