//! The Verify window: each peer's safety code, to compare out of band, with what is known
//! of their identity and the button that remembers it; and the mark shown by their name.

use egui::{Color32, RichText};

use super::{UiAction, UiState};
use crate::app::model::Model;
use crate::app::verified::Trust;

/// Groups of five digits per row of the code.
const GROUPS_PER_ROW: usize = 4;

const VERIFIED: Color32 = Color32::from_rgb(60, 190, 90);

/// The mark beside a peer's name: verified, or a warning that their identity changed.
pub fn trust_badge(trust: Trust, warn: Color32) -> Option<(&'static str, Color32)> {
    match trust {
        Trust::Unverified => None,
        Trust::Verified => Some(("✔ Verified", VERIFIED)),
        Trust::Changed => Some(("⚠ Identity changed", warn)),
    }
}

pub fn verify_ui(
    ctx: &egui::Context,
    model: &Model,
    state: &mut UiState,
    actions: &mut Vec<UiAction>,
) {
    if !state.verify_open {
        return;
    }
    egui::Window::new("Verify")
        .open(&mut state.verify_open)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .default_width(380.0)
        .show(ctx, |ui| {
            let proven: Vec<_> = model
                .identities
                .iter()
                .filter(|identity| identity.safety_code.is_some())
                .collect();
            if proven.is_empty() {
                ui.label("The safety code appears once the call is connected.");
                return;
            }
            ui.label(
                "Compare the code with the one the other person sees: read it aloud to each \
                 other, or side by side. If they match, nobody is in between and the call is \
                 private.",
            );
            for identity in proven {
                let Some(code) = &identity.safety_code else {
                    continue;
                };
                let name = &identity.peer_name;
                ui.separator();
                ui.heading(format!("Safety code with {name}"));
                let groups: Vec<&str> = code.groups().collect();
                for row in groups.chunks(GROUPS_PER_ROW) {
                    ui.label(RichText::new(row.join(" ")).monospace().size(20.0));
                }
                ui.add_space(6.0);
                let warn = ui.visuals().warn_fg_color;
                match model.trust(identity) {
                    Trust::Verified => {
                        ui.label(RichText::new(format!("✔ You verified {name}.")).color(VERIFIED));
                        if ui
                            .button("Forget verification")
                            .on_hover_text(format!("Treat {name} as not verified"))
                            .clicked()
                        {
                            actions.push(UiAction::ForgetVerified(name.clone()));
                        }
                    }
                    trust => {
                        if trust == Trust::Changed {
                            ui.label(
                                RichText::new(format!(
                                    "⚠ {name} had another identity when you verified them: a new \
                                 computer or profile, or someone in the middle. Compare the \
                                 codes again."
                                ))
                                .color(warn),
                            );
                        }
                        if ui
                            .button(format!("Mark {name} as verified"))
                            .on_hover_text("Only if the codes are the same on both sides")
                            .clicked()
                        {
                            actions.push(UiAction::MarkVerified {
                                name: name.clone(),
                                identity: identity.fingerprint,
                            });
                        }
                    }
                }
            }
        });
}
