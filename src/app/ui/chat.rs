//! The chat pane: bubbles with sender and time, delivery ticks, the message box (Enter
//! sends, Shift+Enter starts a new line) and the length limit. Text is shown as plain
//! text: nothing a message names is ever fetched or opened.

use confab_call::{Command, Direction, Transfer, TransferState, human_bytes};
use confab_protocol::chat::MAX_CHAT_CHARS;
use egui::{Align, Color32, Key, Layout, Modifiers, RichText};

use super::{UiAction, UiState};
use crate::app::model::{ChatLine, Delivery, Model};

const CHAT_INPUT_ID: &str = "chat-input";

pub fn chat_ui(ui: &mut egui::Ui, model: &Model, state: &mut UiState, actions: &mut Vec<UiAction>) {
    ui.horizontal(|ui| {
        ui.heading("Chat");
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if ui
                .button("Hide")
                .on_hover_text("Close the chat pane")
                .clicked()
            {
                actions.push(UiAction::SetChatOpen(false));
            }
        });
    });
    ui.separator();

    let can_send = model.in_call();
    let input_height = 96.0;
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .stick_to_bottom(true)
        .max_height((ui.available_height() - input_height).max(40.0))
        .show(ui, |ui| {
            if model.chat.is_empty() {
                ui.label(
                    RichText::new(if can_send {
                        "No messages yet. Say hello!"
                    } else {
                        "Messages appear here during a call."
                    })
                    .weak(),
                );
            }
            for line in &model.chat {
                match line.transfer.and_then(|file| model.transfer(file)) {
                    Some(transfer) => transfer_ui(ui, transfer, actions),
                    None => bubble_ui(ui, line),
                }
            }
        });
    ui.separator();

    let id = egui::Id::unique(CHAT_INPUT_ID);
    let focused = ui.memory(|m| m.has_focus(id));
    // Enter sends; Shift+Enter falls through to the text box as a new line. (egui matches
    // Modifiers::NONE "logically", with or without Shift: Shift is checked here.)
    let send_by_enter = focused
        && ui.input_mut(|i| !i.modifiers.shift && i.consume_key(Modifiers::NONE, Key::Enter));
    let input = egui::TextEdit::multiline(&mut state.draft)
        .id(id)
        .hint_text(if can_send {
            "Message (Enter sends, Shift+Enter new line)"
        } else {
            "Chat opens when a call connects"
        })
        .char_limit(MAX_CHAT_CHARS)
        .desired_rows(2)
        .desired_width(f32::INFINITY);
    let response = ui.add_enabled(can_send, input);
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::TextInput, can_send, "Message"));
    if state.focus_chat {
        response.request_focus();
        state.focus_chat = false;
    }
    ui.horizontal(|ui| {
        let count = state.draft.chars().count();
        let counter = RichText::new(format!("{count} / {MAX_CHAT_CHARS}")).small();
        ui.label(if count >= MAX_CHAT_CHARS {
            counter.color(ui.visuals().warn_fg_color)
        } else {
            counter.weak()
        });
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            let ready = can_send && !state.draft.trim().is_empty();
            let clicked = ui.add_enabled(ready, egui::Button::new("Send")).clicked();
            let attach = ui
                .add_enabled(can_send, egui::Button::new("📎"))
                .on_hover_text("Send a file (or drop files on the window)");
            attach.widget_info(|| {
                egui::WidgetInfo::labeled(egui::Role::Button, can_send, "Send a file")
            });
            if attach.clicked() {
                actions.push(UiAction::PickFiles);
            }
            if ready && (clicked || send_by_enter) {
                let text = std::mem::take(&mut state.draft);
                actions.push(UiAction::Engine(Command::SendChat(
                    text.trim_end().to_owned(),
                )));
                response.request_focus();
            }
        });
    });
}

fn bubble_ui(ui: &mut egui::Ui, line: &ChatLine) {
    let mine = line.from.is_none();
    let layout = if mine {
        Layout::top_down(Align::Max)
    } else {
        Layout::top_down(Align::Min)
    };
    ui.with_layout(layout, |ui| {
        let fill = if mine {
            Color32::from_rgb(40, 80, 130)
        } else {
            ui.visuals().faint_bg_color
        };
        egui::Frame::new()
            .fill(fill)
            .corner_radius(8.0)
            .inner_margin(egui::Margin::symmetric(8, 5))
            .show(ui, |ui| {
                ui.set_max_width(ui.available_width() * 0.85);
                let who = line.from.as_deref().unwrap_or("You");
                let mut meta = format!("{who} · {}", clock_time(line.sent_at_ms));
                match line.delivery {
                    Some(Delivery::Sent) => meta.push_str(" · ✔ sent"),
                    Some(Delivery::Delivered) => meta.push_str(" · ✔✔ delivered"),
                    Some(Delivery::DeliveredTo { delivered, of }) => {
                        meta.push_str(&format!(" · ✔ delivered to {delivered} of {of}"));
                    }
                    Some(Delivery::NotSent) => meta.push_str(" · ✖ not sent"),
                    None => {}
                }
                // Readable on either bubble: light on ours (blue), mid-grey on theirs.
                let meta_color = if mine {
                    Color32::from_rgb(205, 220, 240)
                } else {
                    ui.visuals().text_color().gamma_multiply(0.8)
                };
                ui.label(RichText::new(meta).small().color(meta_color));
                let text = RichText::new(&line.text);
                ui.add(
                    egui::Label::new(if mine {
                        text.color(Color32::WHITE)
                    } else {
                        text
                    })
                    .wrap(),
                );
            });
    });
    ui.add_space(4.0);
}

/// A file sent or offered: what it is, where it stands, and what can be done with it.
fn transfer_ui(ui: &mut egui::Ui, transfer: &Transfer, actions: &mut Vec<UiAction>) {
    let incoming = transfer.direction == Direction::Receiving;
    let layout = if incoming {
        Layout::top_down(Align::Min)
    } else {
        Layout::top_down(Align::Max)
    };
    ui.with_layout(layout, |ui| {
        egui::Frame::new()
            .fill(ui.visuals().faint_bg_color)
            .stroke(ui.visuals().widgets.noninteractive.bg_stroke)
            .corner_radius(8.0)
            .inner_margin(egui::Margin::symmetric(8, 6))
            .show(ui, |ui| {
                ui.set_max_width(ui.available_width() * 0.85);
                let (who, name) = (&transfer.peer_name, &transfer.name);
                let size = human_bytes(transfer.size);
                let title = if incoming {
                    format!("{who} wants to send {name} ({size})")
                } else {
                    format!("📎 {name} ({size}) to {who}")
                };
                ui.add(egui::Label::new(RichText::new(title).strong()).wrap());
                transfer_state_ui(ui, transfer, actions);
            });
    });
    ui.add_space(4.0);
}

fn transfer_state_ui(ui: &mut egui::Ui, transfer: &Transfer, actions: &mut Vec<UiAction>) {
    let file = transfer.file;
    let incoming = transfer.direction == Direction::Receiving;
    let cancel = |ui: &mut egui::Ui, actions: &mut Vec<UiAction>| {
        if ui.button("Cancel").clicked() {
            actions.push(UiAction::Engine(Command::CancelFile(file)));
        }
    };
    match &transfer.state {
        TransferState::Preparing => {
            ui.horizontal(|ui| {
                ui.label(RichText::new("Preparing…").weak());
                cancel(ui, actions);
            });
        }
        TransferState::Offered if incoming => {
            ui.horizontal(|ui| {
                if ui.button("Accept").clicked() {
                    actions.push(UiAction::Engine(Command::AcceptFile(file)));
                }
                if ui.button("Decline").clicked() {
                    actions.push(UiAction::Engine(Command::DeclineFile(file)));
                }
            });
        }
        TransferState::Offered => {
            ui.horizontal(|ui| {
                let waiting = format!("Waiting for {} to accept…", transfer.peer_name);
                ui.label(RichText::new(waiting).weak());
                cancel(ui, actions);
            });
        }
        TransferState::Transferring => {
            let done = transfer.bytes as f32 / transfer.size.max(1) as f32;
            let mut text = format!("{:.0}%", done * 100.0);
            if let Some(rate) = transfer.bytes_per_second {
                text.push_str(&format!(" · {}/s", human_bytes(rate as u64)));
            }
            if let Some(left) = transfer.time_left() {
                text.push_str(&format!(" · {} left", duration_words(left.as_secs())));
            }
            ui.add(egui::ProgressBar::new(done).text(text).desired_width(220.0));
            cancel(ui, actions);
        }
        TransferState::Done { saved_to } => match saved_to {
            Some(path) => {
                let saved = path.file_name().map(|n| n.to_string_lossy().into_owned());
                ui.label(format!("✔ Saved as {}", saved.unwrap_or_default()));
                if ui.button("Show in folder").clicked() {
                    actions.push(UiAction::ShowInFolder(path.clone()));
                }
            }
            None => {
                ui.label("✔ Sent");
            }
        },
        TransferState::Declined { by_us } => {
            let text = if *by_us { "You declined" } else { "Declined" };
            ui.label(RichText::new(text).weak());
        }
        TransferState::Cancelled { by_us: true, .. } => {
            ui.label(RichText::new("You cancelled").weak());
        }
        TransferState::Cancelled {
            by_us: false,
            reason,
        } => {
            let who = &transfer.peer_name;
            let text = format!("{who} stopped the transfer: {reason}");
            ui.label(RichText::new(text).color(ui.visuals().warn_fg_color));
        }
        TransferState::Failed { reason } => {
            let text = format!("✖ Failed: {reason}");
            ui.label(RichText::new(text).color(ui.visuals().error_fg_color));
        }
    }
}

/// "8 s", "3 min", "2 h".
fn duration_words(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs.div_ceil(60)),
        _ => format!("{} h", secs.div_ceil(3600)),
    }
}

/// The local wall-clock time of a message, `HH:MM`.
fn clock_time(ms: u64) -> String {
    super::local_time(ms).map_or_else(|| "--:--".into(), |time| time.format("%H:%M").to_string())
}
