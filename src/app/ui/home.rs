//! The main area outside a call: why Confab is not online (in words, with the way out),
//! where others find a server hosted here, the link that invites someone with a browser,
//! how the last call went, and recent calls.

use confab_call::{CallState, Command, ServerStatus};
use confab_protocol::ErrorCode;
use egui::{Color32, RichText};

use super::{UiAction, UiState};
use crate::app::history::{History, PastCall};
use crate::app::local_server::local_port;
use crate::app::model::{Hosting, Model, format_duration};
use crate::app::settings::Settings;

/// What the home area shows besides the model.
pub struct HomeView<'a> {
    pub settings: &'a Settings,
    pub history: &'a History,
}

pub fn home_ui(
    ui: &mut egui::Ui,
    model: &Model,
    view: &HomeView<'_>,
    state: &mut UiState,
    actions: &mut Vec<UiAction>,
) {
    egui::ScrollArea::vertical().show(ui, |ui| {
        ui.vertical_centered(|ui| {
            ui.set_max_width(560.0);
            ui.add_space((ui.available_height() / 4.0).max(24.0));
            if let Some(problem) = model.connection_problem() {
                trouble_ui(ui, model, &problem, view.settings, state, actions);
                ui.add_space(16.0);
            }
            if let Some(problem) = &model.identity_problem {
                ui.label(
                    RichText::new(format!(
                        "⚠ {problem}. Until then, calls use an identity made for this run: \
                         the people who verified you will see a warning."
                    ))
                    .color(ui.visuals().warn_fg_color),
                );
                ui.add_space(16.0);
            }
            if let Hosting::Yes { urls, .. } = &model.hosting {
                hosting_ui(ui, urls, actions);
                ui.add_space(16.0);
            }
            if let CallState::Ended(end) = &model.call {
                ui.label(RichText::new(end.describe()).size(18.0));
                if let Some(last) = view.history.calls.first() {
                    if let Some(secs) = last.duration_secs {
                        ui.label(format!(
                            "The call lasted {}",
                            format_duration(std::time::Duration::from_secs(secs))
                        ));
                    }
                    call_again_button(ui, model, last, true, actions);
                }
                ui.add_space(16.0);
            }
            if model.is_online() {
                ui.label(
                    RichText::new("Pick someone on the left to call.")
                        .size(16.0)
                        .weak(),
                );
                ui.add_space(16.0);
                browser_invite_ui(ui, model, view.settings, actions);
            }
        });
        ui.add_space(24.0);
        history_ui(ui, model, view.history, actions);
    });
}

/// What helps when Confab is not online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Remedy {
    /// A setting (or the token) is wrong.
    Settings,
    /// Our name is taken: choose another right here.
    Rename,
    /// The server may come back (or be hosted here).
    Retry,
}

fn remedy(model: &Model) -> Remedy {
    if model.settings_problem.is_some() {
        return Remedy::Settings;
    }
    match &model.connection {
        ServerStatus::Refused {
            code: ErrorCode::NameTaken,
            ..
        } => Remedy::Rename,
        ServerStatus::Refused {
            code: ErrorCode::Unauthorized,
            ..
        } => Remedy::Settings,
        _ => Remedy::Retry,
    }
}

/// Not online: what happened, in words, and the one thing that helps.
fn trouble_ui(
    ui: &mut egui::Ui,
    model: &Model,
    problem: &str,
    settings: &Settings,
    state: &mut UiState,
    actions: &mut Vec<UiAction>,
) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.heading("Not connected");
        ui.label(problem);
        ui.add_space(8.0);
        match remedy(model) {
            Remedy::Settings => open_settings_button(ui, state),
            Remedy::Rename => rename_ui(ui, settings, state, actions),
            Remedy::Retry => {
                ui.horizontal(|ui| {
                    if let Hosting::Offered { port } = model.hosting
                        && ui
                            .button(format!("Host the server here (port {port})"))
                            .on_hover_text(
                                "Start Confab's signaling server on this computer, \
                                 for you and others on your network",
                            )
                            .clicked()
                    {
                        actions.push(UiAction::HostServer(port));
                    }
                    if ui
                        .button("Retry now")
                        .on_hover_text("Connect to the server again")
                        .clicked()
                    {
                        actions.push(UiAction::Reconnect);
                    }
                    open_settings_button(ui, state);
                });
            }
        }
    });
}

fn open_settings_button(ui: &mut egui::Ui, state: &mut UiState) {
    if ui.button("Open Settings").clicked() {
        state.settings_open = true;
    }
}

/// Our name is taken: another one, typed in place.
fn rename_ui(
    ui: &mut egui::Ui,
    settings: &Settings,
    state: &mut UiState,
    actions: &mut Vec<UiAction>,
) {
    let name = state.rename.get_or_insert_with(|| settings.name.clone());
    let chosen = ui
        .horizontal(|ui| {
            let label = ui.label("Another name");
            ui.text_edit_singleline(name).labelled_by(label.id);
            let usable = !name.trim().is_empty() && name.trim() != settings.name.trim();
            let button = egui::Button::new("Use this name");
            (ui.add_enabled(usable, button).clicked()).then(|| name.trim().to_owned())
        })
        .inner;
    if let Some(name) = chosen {
        actions.push(UiAction::ChooseName(name));
        state.rename = None;
    }
}

/// Where others find the server this Confab hosts, each address with a copy button.
fn hosting_ui(ui: &mut egui::Ui, urls: &[String], actions: &mut Vec<UiAction>) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.label(RichText::new("📡 This computer hosts the server").strong());
        if urls.is_empty() {
            ui.label("Only Confabs on this computer can reach it: no network is connected.");
            return;
        }
        ui.label("Others on your network set this as their server URL:");
        for url in urls {
            copyable_ui(ui, url, "Copy the address", actions);
        }
    });
}

/// `text` in monospace with a copy button, named "Copy TEXT" for screen readers (and the
/// tests).
fn copyable_ui(ui: &mut egui::Ui, text: &str, hover: &str, actions: &mut Vec<UiAction>) {
    ui.horizontal(|ui| {
        ui.monospace(text);
        let copy = ui.small_button("📋 Copy").on_hover_text(hover);
        copy.widget_info(|| {
            egui::WidgetInfo::labeled(egui::Role::Button, true, format!("Copy {text}"))
        });
        if copy.clicked() {
            actions.push(UiAction::Copy(text.to_owned()));
        }
    });
}

/// The web client's address on the signaling server at `url`: `ws://host:port/ws` gives
/// `http://host:port/`, `wss://` gives `https://`. Someone without Confab opens it, types a
/// name and calls.
pub fn browser_link(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = match url.strip_prefix("ws://") {
        Some(rest) => ("http", rest),
        None => ("https", url.strip_prefix("wss://")?),
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}/"))
}

/// "Invite someone with a browser": the server's web client, with a copy button; when this
/// Confab hosts the server, also at its addresses on the network.
fn browser_invite_ui(
    ui: &mut egui::Ui,
    model: &Model,
    settings: &Settings,
    actions: &mut Vec<UiAction>,
) {
    // The server's address, and where this Confab hosts it, its network addresses.
    let mut servers = vec![settings.server_url.as_str()];
    if let Hosting::Yes { urls, .. } = &model.hosting {
        servers.extend(urls.iter().map(String::as_str));
    }
    let mut links: Vec<String> = Vec::new();
    // A browser elsewhere gets a camera on an http page only where it is its own computer.
    let mut camera_needs_https = false;
    for server in servers {
        if let Some(link) = browser_link(server)
            && !links.contains(&link)
        {
            camera_needs_https |= link.starts_with("http://") && local_port(server).is_none();
            links.push(link);
        }
    }
    if links.is_empty() {
        return;
    }
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.label(RichText::new("🌐 Invite someone with a browser:").strong());
        for link in &links {
            copyable_ui(ui, link, "Copy the link", actions);
        }
        ui.label(RichText::new("They open it, type a name and call you: no app needed.").weak());
        if camera_needs_https {
            ui.label(
                RichText::new(
                    "Browsers use a camera only on https pages or on their own computer: for \
                     others, give the server a certificate (confab server --tls-cert --tls-key).",
                )
                .weak(),
            );
        }
    });
}

/// "Call Bob again" (`big`, after the call) or "Call" (in the list), for a call of two:
/// enabled while Bob is online and free.
fn call_again_button(
    ui: &mut egui::Ui,
    model: &Model,
    call: &PastCall,
    big: bool,
    actions: &mut Vec<UiAction>,
) {
    let [name] = call.with.as_slice() else {
        return;
    };
    let text = if big {
        format!("📞 Call {name} again")
    } else {
        "📞 Call".to_owned()
    };
    let peer = model.roster.iter().find(|peer| &peer.name == name);
    let can_call = peer.is_some_and(|p| !p.busy) && !model.busy();
    let button = ui
        .add_enabled(can_call, egui::Button::new(text))
        .on_hover_text(format!("Video call {name}"))
        .on_disabled_hover_text(format!("{name} is not online or is busy"));
    if button.clicked()
        && let Some(peer) = peer
    {
        actions.push(UiAction::Engine(Command::Call {
            peer: peer.id.clone(),
        }));
    }
}

/// Recent calls, newest first, each with its chat.
fn history_ui(ui: &mut egui::Ui, model: &Model, history: &History, actions: &mut Vec<UiAction>) {
    if history.calls.is_empty() {
        return;
    }
    ui.horizontal(|ui| {
        ui.heading("Recent calls");
        if ui
            .small_button("Clear history")
            .on_hover_text("Forget every past call and its chat")
            .clicked()
        {
            actions.push(UiAction::ClearHistory);
        }
    });
    let today = chrono::Local::now().date_naive();
    let missed = Color32::from_rgb(220, 70, 60);
    for (index, call) in history.calls.iter().enumerate() {
        let (icon, what) = match (call.missed, call.incoming) {
            (true, _) => (
                "↙",
                RichText::new(format!("Missed call from {}", call.names())).color(missed),
            ),
            (false, true) => ("↙", RichText::new(format!("From {}", call.names()))),
            (false, false) => ("↗", RichText::new(format!("To {}", call.names()))),
        };
        ui.horizontal(|ui| {
            ui.label(icon);
            ui.label(what.strong());
            ui.label(RichText::new(when(call.started_ms, today)).weak());
            match call.duration_secs {
                Some(secs) => {
                    ui.label(format_duration(std::time::Duration::from_secs(secs)));
                }
                None if !call.missed => {
                    ui.label(RichText::new("not connected").weak());
                }
                None => {}
            }
            // Just after a call, the last one has its own, bigger button above.
            let shown_above = index == 0 && matches!(model.call, CallState::Ended(_));
            if !shown_above {
                call_again_button(ui, model, call, false, actions);
            }
        });
        if !call.chat.is_empty() {
            egui::CollapsingHeader::new(format!("Chat ({} messages)", call.chat.len()))
                .id_salt(("past-chat", index))
                .show(ui, |ui| {
                    for line in &call.chat {
                        let who = line.from.as_deref().unwrap_or("You");
                        ui.label(format!("{who}: {}", line.text));
                    }
                });
        }
    }
}

/// "14:02" today, else "3 Nov 14:02".
fn when(ms: u64, today: chrono::NaiveDate) -> String {
    match super::local_time(ms) {
        Some(time) if time.date_naive() == today => time.format("%H:%M").to_string(),
        Some(time) => time.format("%-d %b %H:%M").to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::browser_link;

    #[test]
    fn the_browser_link_is_the_servers_web_address() {
        assert_eq!(
            browser_link("ws://127.0.0.1:8787/ws").as_deref(),
            Some("http://127.0.0.1:8787/")
        );
        assert_eq!(
            browser_link(" wss://chat.example.org/ws?x=1 ").as_deref(),
            Some("https://chat.example.org/")
        );
        assert_eq!(
            browser_link("ws://[::1]:9000").as_deref(),
            Some("http://[::1]:9000/")
        );
        assert_eq!(browser_link("http://x/ws"), None);
        assert_eq!(browser_link("ws:///ws"), None);
    }
}
