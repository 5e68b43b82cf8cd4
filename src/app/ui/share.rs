//! Screen sharing on screen: the picker (each monitor with its live thumbnail, name and
//! size; Share), the banner while we share (with Stop), and a peer's shared screen fitted
//! in the call's big area with the fullscreen switch.

use confab_media::video::ScreenInfo;
use egui::{Align2, Color32, Pos2, Rect, RichText, vec2};

use super::call::{Picture, note_ui, overlay_button, picture_ui};
use super::{FULLSCREEN, UiAction, UiState, with_shortcut};

/// The banner's height, above the call's pictures while we share.
pub const BANNER_HEIGHT: f32 = 36.0;
/// How wide the picker shows a thumbnail.
const THUMBNAIL_WIDTH: f32 = 240.0;
/// How wide the fullscreen switch over a shared screen is.
const FULLSCREEN_WIDTH: f32 = 152.0;
const BANNER_FILL: Color32 = Color32::from_rgb(170, 60, 30);

/// A monitor in the picker.
#[derive(Debug, Clone)]
pub struct ScreenChoice {
    pub info: ScreenInfo,
    /// The thumbnail, once captured.
    pub picture: Option<Picture>,
    /// Why it has no thumbnail.
    pub problem: Option<String>,
}

/// What the picker shows.
#[derive(Debug, Clone, Default)]
pub enum ScreenChoices {
    /// The first capture has not come back yet.
    #[default]
    Looking,
    Found(Vec<ScreenChoice>),
    /// Screens cannot be shared here, and why.
    Unavailable(String),
}

/// "Screen 1: DP-1 · 1920x1080 · primary": how the picker names a monitor (a display
/// without monitors, or Xvfb's, calls its one "screen": that goes without saying).
pub fn screen_label(info: &ScreenInfo) -> String {
    let number = info.index + 1;
    let name = match info.name.trim() {
        "" => String::new(),
        name if name.eq_ignore_ascii_case("screen") => String::new(),
        name => format!(": {name}"),
    };
    let primary = if info.primary { " · primary" } else { "" };
    let (width, height) = (info.width, info.height);
    format!("Screen {number}{name} · {width}x{height}{primary}")
}

/// The picker window, while `state.share_open`: choose a monitor, then Share.
pub fn share_picker_ui(
    ctx: &egui::Context,
    choices: &ScreenChoices,
    state: &mut UiState,
    actions: &mut Vec<UiAction>,
) {
    if !state.share_open {
        return;
    }
    let mut open = true;
    egui::Window::new("Share your screen")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .anchor(Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            ui.label("Choose what the others see. Nothing is sent until you press Share.");
            ui.add_space(6.0);
            match choices {
                ScreenChoices::Looking => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Looking for screens…");
                    });
                }
                ScreenChoices::Unavailable(reason) => {
                    // The capture's own words ("screen sharing is not available: ...").
                    let text = capitalized(reason);
                    ui.label(RichText::new(text).color(ui.visuals().warn_fg_color));
                }
                ScreenChoices::Found(screens) => screen_list_ui(ui, screens, state),
            }
            ui.add_space(6.0);
            picker_buttons_ui(ui, choices, state, actions);
        });
    if !open {
        state.share_open = false;
    }
}

/// `text` with its first letter in upper case, to stand as a sentence.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// The monitors, each a button with its thumbnail; the chosen one is marked.
fn screen_list_ui(ui: &mut egui::Ui, screens: &[ScreenChoice], state: &mut UiState) {
    ui.horizontal_wrapped(|ui| {
        for screen in screens {
            let label = screen_label(&screen.info);
            let selected = state.share_choice == Some(screen.info.index);
            let button = match screen.picture {
                Some(picture) => {
                    let [w, h] = picture.size;
                    let height = THUMBNAIL_WIDTH * h as f32 / w.max(1) as f32;
                    let image = egui::Image::new((picture.texture, vec2(THUMBNAIL_WIDTH, height)));
                    egui::Button::image_and_text(image, label)
                }
                None => egui::Button::new(label),
            };
            let hint = match &screen.problem {
                Some(problem) => format!("No picture of this screen: {problem}"),
                None => "Share this screen".to_owned(),
            };
            let button = button
                .selected(selected)
                .wrap_mode(egui::TextWrapMode::Extend);
            if ui.add(button).on_hover_text(hint).clicked() {
                state.share_choice = Some(screen.info.index);
            }
        }
    });
}

/// Share (once a screen is chosen) and Cancel.
fn picker_buttons_ui(
    ui: &mut egui::Ui,
    choices: &ScreenChoices,
    state: &mut UiState,
    actions: &mut Vec<UiAction>,
) {
    let chosen = match choices {
        ScreenChoices::Found(screens) => state
            .share_choice
            .filter(|index| screens.iter().any(|s| s.info.index == *index)),
        ScreenChoices::Looking | ScreenChoices::Unavailable(_) => None,
    };
    ui.horizontal(|ui| {
        let share = ui
            .add_enabled(chosen.is_some(), egui::Button::new("Share"))
            .on_hover_text("Show the chosen screen to everyone in the call")
            .on_disabled_hover_text("Choose a screen first");
        if let (true, Some(monitor)) = (share.clicked(), chosen) {
            actions.push(UiAction::ShareScreen { monitor });
            state.share_open = false;
        }
        if ui.button("Cancel").clicked() {
            state.share_open = false;
        }
    });
}

/// The banner across the top of the call while we share, with its Stop button in a `Ui`
/// of its own (see `overlay_button`); the call's pictures go below it.
pub fn sharing_banner_ui(ui: &mut egui::Ui, actions: &mut Vec<UiAction>) {
    let full = ui.available_rect_before_wrap();
    let rect = Rect::from_min_size(full.min, vec2(full.width(), BANNER_HEIGHT));
    ui.painter().rect_filled(rect, 4.0, BANNER_FILL);
    let builder = egui::UiBuilder::new()
        .scope_id(egui::Id::unique("sharing-banner"))
        .max_rect(rect.shrink2(vec2(12.0, 0.0)))
        .layout(egui::Layout::left_to_right(egui::Align::Center));
    ui.scope_builder(builder, |ui| {
        ui.label(RichText::new("🖥 You are sharing your screen").color(Color32::WHITE));
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let stop = egui::Button::new(RichText::new("Stop sharing").color(Color32::WHITE))
                .fill(Color32::from_rgb(110, 30, 20));
            if ui
                .add(stop)
                .on_hover_text("Stop showing your screen to the call")
                .clicked()
            {
                actions.push(UiAction::StopSharing);
            }
        });
    });
    ui.advance_cursor_after_rect(rect);
}

/// Someone's shared screen, as large as `area` allows with its own shape (letterboxed), or
/// a word while its first picture is on the way.
pub fn shared_screen_ui(ui: &mut egui::Ui, name: &str, picture: Option<Picture>, area: Rect) {
    match picture {
        Some(picture) => picture_ui(ui, picture, area, format!("{name}'s screen")),
        None => {
            let text = format!("{name} is sharing a screen…");
            note_ui(ui, area, &text, "screen-waiting");
        }
    }
}

/// The switch for watching a shared screen fullscreen, its top-right corner at `corner`.
pub fn fullscreen_button(
    ui: &mut egui::Ui,
    corner: Pos2,
    state: &UiState,
    actions: &mut Vec<UiAction>,
) {
    let rect = Rect::from_min_size(
        corner + vec2(-FULLSCREEN_WIDTH, 0.0),
        vec2(FULLSCREEN_WIDTH, 24.0),
    );
    let text = if state.fullscreen {
        "⛶ Leave fullscreen"
    } else {
        "⛶ Watch fullscreen"
    };
    let hint = with_shortcut(ui.ctx(), "The shared screen fills the display", &FULLSCREEN);
    if overlay_button(ui, "screen-fullscreen", rect, text)
        .on_hover_text(hint)
        .clicked()
    {
        actions.push(UiAction::SetFullscreen(!state.fullscreen));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitors_are_named_by_number_name_size_and_whether_primary() {
        let info = |name: &str, primary| ScreenInfo {
            index: 1,
            name: name.into(),
            width: 2560,
            height: 1440,
            primary,
        };
        assert_eq!(
            screen_label(&info("DP-1", true)),
            "Screen 2: DP-1 · 2560x1440 · primary"
        );
        assert_eq!(screen_label(&info("screen", false)), "Screen 2 · 2560x1440");
        assert_eq!(
            capitalized("screen sharing is not available"),
            "Screen sharing is not available"
        );
        assert_eq!(capitalized(""), "");
    }
}
