//! "Add person": the people online who can be invited into the call, in a small window.

use confab_call::{CallState, Command};
use confab_protocol::MAX_CALL_MEMBERS;

use super::{UiAction, UiState};
use crate::app::model::Model;

/// The first protocol version with group calls.
const GROUPS_VERSION: u32 = 2;

pub fn invite_ui(
    ctx: &egui::Context,
    model: &Model,
    state: &mut UiState,
    actions: &mut Vec<UiAction>,
) {
    if !state.invite_open {
        return;
    }
    let in_call: Vec<_> = match &model.call {
        CallState::Group { members } => members.iter().map(|m| m.peer.clone()).collect(),
        CallState::Connected { peer, .. } => vec![peer.clone()],
        _ => {
            state.invite_open = false;
            return;
        }
    };
    let full = in_call.len() + 1 >= MAX_CALL_MEMBERS;
    let mut open = true;
    egui::Window::new("Add person")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            if full {
                ui.label(format!("A call has at most {MAX_CALL_MEMBERS} people."));
                return;
            }
            let candidates: Vec<_> = model
                .roster
                .iter()
                .filter(|p| !in_call.contains(&p.id))
                .collect();
            if candidates.is_empty() {
                ui.label("Nobody else is online.");
            }
            for peer in candidates {
                let (enabled, hint) = if peer.protocol < GROUPS_VERSION {
                    (
                        false,
                        format!("{}'s app cannot join group calls", peer.name),
                    )
                } else if peer.busy {
                    (false, format!("{} is in another call", peer.name))
                } else {
                    (
                        true,
                        format!("Ring {} and ask them into this call", peer.name),
                    )
                };
                let button = ui
                    .add_enabled(enabled, egui::Button::new(format!("Invite {}", peer.name)))
                    .on_hover_text(&hint)
                    .on_disabled_hover_text(&hint);
                if button.clicked() {
                    actions.push(UiAction::Engine(Command::Invite {
                        peer: peer.id.clone(),
                    }));
                    state.invite_open = false;
                }
            }
        });
    if !open {
        state.invite_open = false;
    }
}
