//! The call view: the peer's video scaled to fit, the mirrored self-view
//! picture-in-picture, name and duration, speaking indicators, the controls and the stats
//! overlay. Outside a call: what to do next.

use std::collections::BTreeMap;
use std::time::Instant;

use confab_call::{CallState, CallStats, Command};
use confab_protocol::PeerId;
use egui::{Align2, Color32, Pos2, Rect, RichText, Vec2, pos2, vec2};

use super::{CAMERA, FULLSCREEN, HANG_UP, MUTE, STATS, UiAction, UiState, with_shortcut};
use crate::app::model::{Model, format_duration};
use crate::app::verified::Trust;

/// A texture and its picture size in pixels.
#[derive(Debug, Clone, Copy)]
pub struct Picture {
    pub texture: egui::TextureId,
    pub size: [usize; 2],
}

/// The media side of the call view, read from the engine each frame.
#[derive(Debug, Clone, Default)]
pub struct CallMedia {
    /// The peer's picture in a call of two.
    pub remote: Option<Picture>,
    /// Every member's picture in a group call.
    pub remotes: BTreeMap<PeerId, Picture>,
    /// The screens shared with us, by who shares them.
    pub screens: BTreeMap<PeerId, Picture>,
    pub local: Option<Picture>,
    pub muted: bool,
    pub camera_on: bool,
    pub self_view: bool,
    pub me_speaking: bool,
    pub peer_speaking: bool,
}

const CONTROLS_HEIGHT: f32 = 44.0;
/// Below this width the controls take two rows (they wrap; Hang up comes first). One row
/// of them is about 700 px wide.
const ONE_ROW_WIDTH: f32 = 720.0;

/// The height of the control bar for a call area this wide.
pub(super) fn controls_height(width: f32) -> f32 {
    if width < ONE_ROW_WIDTH {
        2.0 * CONTROLS_HEIGHT - 8.0
    } else {
        CONTROLS_HEIGHT
    }
}
const SPEAKING: Color32 = Color32::from_rgb(60, 190, 90);

pub fn call_ui(
    ui: &mut egui::Ui,
    model: &Model,
    media: &CallMedia,
    state: &mut UiState,
    now: Instant,
    actions: &mut Vec<UiAction>,
) {
    if model.sharing {
        super::share::sharing_banner_ui(ui, actions);
    }
    let (peer, peer_name, connected, reconnecting) = match &model.call {
        CallState::Connecting { peer, peer_name } => (peer, peer_name.as_str(), false, false),
        CallState::Connected {
            peer,
            peer_name,
            reconnecting,
        } => (peer, peer_name.as_str(), true, *reconnecting),
        CallState::Group { members } => {
            return super::grid::group_ui(ui, model, members, media, state, now, actions);
        }
        _ => return,
    };
    let full = ui.available_rect_before_wrap();
    let bar = controls_height(full.width());
    let video_rect = Rect::from_min_max(full.min, pos2(full.max.x, full.max.y - bar));
    ui.painter()
        .rect_filled(video_rect, 4.0, Color32::from_gray(16));

    let switches = model.peer_state;
    let screen = media
        .screens
        .get(peer)
        .copied()
        .filter(|_| switches.sharing);
    // With the peer's camera off, its last picture would stay frozen: show why instead.
    let camera = media.remote.filter(|_| !switches.camera_off);
    match screen {
        Some(screen) => {
            // Their screen big, their camera small beside it.
            super::share::shared_screen_ui(ui, peer_name, Some(screen), video_rect);
            if let Some(camera) = camera {
                peer_inset_ui(ui, peer_name, camera, video_rect);
            }
        }
        None => {
            let why = if switches.camera_off {
                format!("{peer_name}'s camera is off")
            } else if connected {
                format!("Waiting for {peer_name}'s video…")
            } else {
                format!("Connecting to {peer_name}…")
            };
            peer_video_ui(ui, peer_name, camera, video_rect, &why);
        }
    }

    // Name, duration and whether the peer is speaking, over the video's top-left corner.
    let mut title = peer_name.to_owned();
    let trust = model.identity_of(peer).map(|(_, trust)| trust);
    let warn = ui.visuals().warn_fg_color;
    let badge = trust.and_then(|trust| super::trust_badge(trust, warn));
    if let Some((badge, _)) = badge {
        title.push_str(&format!(" · {badge}"));
    }
    if switches.muted {
        title.push_str(" · 🔇 muted");
    }
    if let Some(duration) = model.call_duration(now) {
        title.push_str(&format!("  ·  {}", format_duration(duration)));
    }
    let (title, title_color) = if media.peer_speaking {
        (format!("🔊 {title} (speaking)"), SPEAKING)
    } else {
        (title, Color32::WHITE)
    };
    overlay_text(
        ui,
        "call-title",
        video_rect.left_top() + vec2(12.0, 10.0),
        Align2::LEFT_TOP,
        (&title, egui::FontId::proportional(16.0), title_color),
        title.clone(),
    );

    // A verified peer with another identity: said for as long as the call lasts.
    if trust == Some(Trust::Changed) {
        let text = format!(
            "⚠ {peer_name}'s identity is not the one you verified: press Verify and compare \
             safety codes"
        );
        overlay_text(
            ui,
            "identity-changed",
            video_rect.left_top() + vec2(12.0, 36.0),
            Align2::LEFT_TOP,
            (&text, egui::FontId::proportional(15.0), warn),
            text.clone(),
        );
    }

    // The connection is down and being restored: the picture is frozen, say why.
    if reconnecting {
        let text = "Reconnecting…".to_owned();
        overlay_text(
            ui,
            "reconnecting",
            video_rect.center(),
            Align2::CENTER_CENTER,
            (&text, egui::FontId::proportional(22.0), Color32::WHITE),
            text.clone(),
        );
    }

    if state.show_stats
        && let Some(stats) = &model.stats
    {
        stats_overlay(ui, stats, video_rect);
    }
    // The echo doctor's advice, over the bottom of the video while it holds.
    if let Some(advice) = model.stats.as_ref().and_then(|s| echo_advice(peer_name, s)) {
        overlay_text(
            ui,
            "echo-advice",
            video_rect.center_bottom() - vec2(0.0, 16.0),
            Align2::CENTER_BOTTOM,
            (
                &advice,
                egui::FontId::proportional(15.0),
                ui.visuals().warn_fg_color,
            ),
            advice.clone(),
        );
    }
    if media.self_view {
        self_view_ui(ui, media, video_rect);
    }
    verify_button(ui, video_rect.right_top(), state);
    if screen.is_some() {
        // Left of Verify.
        let corner = video_rect.right_top() + vec2(-96.0, 8.0);
        super::share::fullscreen_button(ui, corner, state, actions);
    }

    let controls = Rect::from_min_max(pos2(full.min.x, video_rect.max.y), full.max);
    controls_bar(ui, controls, media, state, actions);
    ui.allocate_rect(full, egui::Sense::hover());
}

/// The peer's camera filling `area` (fitted), or `why` there is none.
fn peer_video_ui(
    ui: &mut egui::Ui,
    peer_name: &str,
    camera: Option<Picture>,
    area: Rect,
    why: &str,
) {
    match camera {
        Some(picture) => picture_ui(ui, picture, area, format!("Video of {peer_name}")),
        None => note_ui(ui, area, why, "no-video"),
    }
}

/// `picture` as large as `area` allows with its own shape, centred, named `label` (for
/// screen readers and the UI tests).
pub(super) fn picture_ui(ui: &mut egui::Ui, picture: Picture, area: Rect, label: String) {
    let shown = fit(picture.size, area);
    let image = egui::Image::new((picture.texture, shown.size())).sense(egui::Sense::hover());
    ui.put(shown, image)
        .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
}

/// A word in the middle of `area` where a picture would be (`id_salt` tells it apart).
pub(super) fn note_ui(ui: &mut egui::Ui, area: Rect, text: &str, id_salt: &str) {
    let shown = ui.painter().text(
        area.center(),
        Align2::CENTER_CENTER,
        text,
        egui::FontId::proportional(18.0),
        Color32::from_gray(200),
    );
    ui.interact(shown, ui.scope_id().with(id_salt), egui::Sense::hover())
        .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, text));
}

/// The peer's camera small in the bottom-left corner of `area`, while their shared screen
/// fills it (the self-view has the bottom-right corner).
fn peer_inset_ui(ui: &mut egui::Ui, peer_name: &str, camera: Picture, area: Rect) {
    let width = (area.width() / 5.0).clamp(120.0, 280.0);
    let [w, h] = camera.size;
    let size = vec2(width, width * h as f32 / w.max(1) as f32);
    let rect = Rect::from_min_size(area.left_bottom() + vec2(16.0, -16.0 - size.y), size);
    ui.painter().rect_stroke(
        rect,
        2.0,
        egui::Stroke::new(2.0, Color32::from_gray(90)),
        egui::StrokeKind::Outside,
    );
    picture_ui(ui, camera, rect, format!("Video of {peer_name}"));
}

/// The control bar in `rect`, under an id of its own (see [`overlay_button`]): numbered
/// after the pictures above it, every button's id changed when the first frame arrived.
pub(super) fn controls_bar(
    ui: &mut egui::Ui,
    rect: Rect,
    media: &CallMedia,
    state: &mut UiState,
    actions: &mut Vec<UiAction>,
) {
    let builder = egui::UiBuilder::new()
        .scope_id(egui::Id::unique("call-controls"))
        .max_rect(rect);
    ui.scope_builder(builder, |ui| {
        ui.add_space(6.0);
        ui.horizontal_wrapped(|ui| controls_ui(ui, media, state, actions));
    });
}

/// The call's buttons, Hang up first so that it stays in reach however narrow the window.
fn controls_ui(
    ui: &mut egui::Ui,
    media: &CallMedia,
    state: &mut UiState,
    actions: &mut Vec<UiAction>,
) {
    let ctx = ui.ctx().clone();
    let hang_up = egui::Button::new(RichText::new("Hang up").color(Color32::WHITE))
        .fill(Color32::from_rgb(200, 50, 45));
    if ui
        .add(hang_up)
        .on_hover_text(with_shortcut(&ctx, "End the call", &HANG_UP))
        .clicked()
    {
        actions.push(UiAction::Engine(Command::HangUp));
    }
    let (mute_label, mute_hint) = if media.muted {
        ("🔇 Unmute", "Let the other side hear you")
    } else {
        ("🎤 Mute", "Stop sending your microphone")
    };
    let mute = ui
        .button(mute_label)
        .on_hover_text(with_shortcut(&ctx, mute_hint, &MUTE));
    if mute.clicked() {
        actions.push(UiAction::SetMuted(!media.muted));
    }
    if media.me_speaking && !media.muted {
        ui.label(RichText::new("speaking").small().color(SPEAKING));
    } else if media.me_speaking {
        ui.label(
            RichText::new("you are muted")
                .small()
                .color(ui.visuals().warn_fg_color),
        );
    }
    let (camera_label, camera_hint) = if media.camera_on {
        ("📷 Camera off", "Stop sending video and release the camera")
    } else {
        ("📷 Camera on", "Send video again")
    };
    if ui
        .button(camera_label)
        .on_hover_text(with_shortcut(&ctx, camera_hint, &CAMERA))
        .clicked()
    {
        actions.push(UiAction::SetCamera(!media.camera_on));
    }
    if ui
        .button("🖥 Share screen")
        .on_hover_text("Show a screen of yours to the call: choose which first")
        .clicked()
    {
        state.share_open = true;
        state.share_choice = None;
    }
    ui.separator();
    let fullscreen_label = if state.fullscreen {
        "Leave fullscreen"
    } else {
        "Fullscreen"
    };
    if ui
        .button(fullscreen_label)
        .on_hover_text(with_shortcut(&ctx, "Video fills the screen", &FULLSCREEN))
        .clicked()
    {
        actions.push(UiAction::SetFullscreen(!state.fullscreen));
    }
    // On/off switches are check boxes: their state shows by a mark, not only by colour.
    let mut self_view = media.self_view;
    if ui
        .checkbox(&mut self_view, "Self-view")
        .on_hover_text("Show or hide your own picture")
        .changed()
    {
        actions.push(UiAction::SetSelfView(self_view));
    }
    ui.checkbox(&mut state.show_stats, "Stats")
        .on_hover_text(with_shortcut(
            &ctx,
            "Resolution, frame rate, bitrate, round trip, loss",
            &STATS,
        ));
    ui.separator();
    if ui
        .button("➕ Add person")
        .on_hover_text("Invite someone online into this call")
        .clicked()
    {
        state.invite_open = true;
    }
}

/// The Verify button, its top-right corner at `corner` (over the video's top-right corner).
pub(super) fn verify_button(ui: &mut egui::Ui, corner: Pos2, state: &mut UiState) {
    let rect = Rect::from_min_size(corner + vec2(-88.0, 8.0), vec2(80.0, 24.0));
    if overlay_button(ui, "verify", rect, "🔒 Verify")
        .on_hover_text("Compare safety codes: check that nobody is in the middle")
        .clicked()
    {
        state.verify_open = true;
    }
}

/// A button at a fixed place over the video, with an id of its own. `ui.put` would number
/// it after the widgets drawn before it, and those come and go (the picture appears when
/// the first frame arrives): a click on the frame its number changed was lost.
pub(super) fn overlay_button(
    ui: &mut egui::Ui,
    name: &str,
    rect: Rect,
    text: &str,
) -> egui::Response {
    let builder = egui::UiBuilder::new()
        .scope_id(egui::Id::unique(("overlay-button", name)))
        .max_rect(rect)
        .layout(egui::Layout::centered_and_justified(
            egui::Direction::TopDown,
        ));
    ui.scope_builder(builder, |ui| ui.add(egui::Button::new(text)))
        .inner
}

/// The mirrored self-view in the bottom-right corner of the video (hidden from the
/// controls).
pub(super) fn self_view_ui(ui: &mut egui::Ui, media: &CallMedia, video_rect: Rect) {
    let width = (video_rect.width() / 4.0).clamp(120.0, 320.0);
    let size = match media.local {
        Some(picture) if picture.size[0] > 0 => vec2(
            width,
            width * picture.size[1] as f32 / picture.size[0] as f32,
        ),
        _ => vec2(width, width * 0.75),
    };
    let corner = Rect::from_min_size(
        video_rect.right_bottom() - size - vec2(16.0, 16.0),
        size + vec2(4.0, 4.0),
    );
    ui.scope_builder(egui::UiBuilder::new().max_rect(corner), |ui| {
        let frame = egui::Frame::new()
            .stroke(egui::Stroke::new(
                2.0,
                if media.me_speaking && !media.muted {
                    SPEAKING
                } else {
                    Color32::from_gray(90)
                },
            ))
            .fill(Color32::from_gray(30));
        frame.show(ui, |ui| match media.local {
            Some(picture) if media.camera_on => {
                // Mirrored, like a mirror: what people expect of their own picture.
                let image = egui::Image::new((picture.texture, size))
                    .uv(Rect::from_min_max(pos2(1.0, 0.0), pos2(0.0, 1.0)));
                ui.add(image).widget_info(|| {
                    egui::WidgetInfo::labeled(egui::Role::Image, true, "Your video")
                });
            }
            _ => {
                let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
                ui.painter().text(
                    rect.center(),
                    Align2::CENTER_CENTER,
                    if media.camera_on {
                        "No camera"
                    } else {
                        "Camera off"
                    },
                    egui::FontId::proportional(14.0),
                    Color32::from_gray(200),
                );
            }
        });
    });
}

fn stats_overlay(ui: &mut egui::Ui, stats: &CallStats, video_rect: Rect) {
    let lines = stats_lines(stats);
    overlay_text(
        ui,
        "call-stats",
        video_rect.right_top() + vec2(-16.0, 10.0),
        Align2::RIGHT_TOP,
        (
            &lines.join("\n"),
            egui::FontId::monospace(12.0),
            Color32::from_gray(230),
        ),
        format!("Call stats: {}", lines.join(", ")),
    );
}

/// One link's numbers, a line each: what the stats overlay shows (in a group call, on
/// each member's tile).
pub(super) fn stats_lines(stats: &CallStats) -> Vec<String> {
    let mut lines = Vec::new();
    for (label, flow) in [
        ("Sending", &stats.video_out),
        ("Receiving", &stats.video_in),
    ] {
        if let Some(flow) = flow {
            lines.push(format!(
                "{label} {}x{} @ {:.0} fps",
                flow.width, flow.height, flow.fps
            ));
        }
    }
    lines.push(format!(
        "Bitrate out {} / in {}",
        kbps(stats.bitrate_out_bps),
        kbps(stats.bitrate_in_bps)
    ));
    lines.push(match stats.rtt_ms {
        Some(rtt) => format!("Round trip {rtt:.0} ms"),
        None => "Round trip unknown".into(),
    });
    lines.push(format!("Loss {:.1}%", stats.packet_loss_percent));
    lines.push(format!(
        "Path {} → {}",
        stats.local_candidate.as_deref().unwrap_or("?"),
        stats.remote_candidate.as_deref().unwrap_or("?")
    ));
    lines.extend(echo_line(stats));
    lines
}

/// What the echo doctor tells the user, while it thinks `peer` hears an echo.
fn echo_advice(peer: &str, stats: &CallStats) -> Option<String> {
    stats
        .peer_hears_echo
        .then(|| format!("{peer} may be hearing an echo: use headphones or turn the speaker down"))
}

/// The echo canceller's numbers, for the stats overlay, while it cleans a microphone.
fn echo_line(stats: &CallStats) -> Option<String> {
    let echo = stats.echo?;
    let db = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v:.0} dB"));
    let likelihood = echo
        .residual_echo_likelihood
        .map_or("?".into(), |l| format!("{:.0}%", l * 100.0));
    let delay = echo.delay_ms.map_or("?".into(), |d| format!("{d} ms"));
    Some(format!(
        "Echo removed {} · left {likelihood} · delay {delay}",
        db(echo.erle_db)
    ))
}

/// Text painted over the video on a dark backdrop, placed by `align` at `anchor`. Painted
/// text is no widget, so it gets an accessible `label` (for screen readers and tests).
pub(super) fn overlay_text(
    ui: &mut egui::Ui,
    id_salt: &str,
    anchor: Pos2,
    align: Align2,
    (text, font, color): (&str, egui::FontId, Color32),
    label: String,
) {
    let galley = ui.painter().layout_no_wrap(text.to_owned(), font, color);
    let at = align.anchor_size(anchor, galley.size());
    let backdrop = at.expand(6.0);
    ui.painter()
        .rect_filled(backdrop, 4.0, Color32::from_black_alpha(160));
    ui.painter().galley(at.min, galley, color);
    ui.interact(backdrop, ui.scope_id().with(id_salt), egui::Sense::hover())
        .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &label));
}

fn kbps(bps: u64) -> String {
    format!("{:.0} kbit/s", bps as f64 / 1000.0)
}

/// The largest rectangle of the picture's aspect ratio that fits in `area`, centred.
pub fn fit(size: [usize; 2], area: Rect) -> Rect {
    let [w, h] = size;
    if w == 0 || h == 0 {
        return area;
    }
    let scale = (area.width() / w as f32).min(area.height() / h as f32);
    Rect::from_center_size(area.center(), Vec2::new(w as f32, h as f32) * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_doctor_speaks_in_words_and_the_overlay_shows_its_numbers() {
        let mut stats = CallStats::default();
        assert_eq!(echo_advice("Bob", &stats), None);
        assert_eq!(echo_line(&stats), None, "no microphone cleaned, no numbers");
        stats.peer_hears_echo = true;
        stats.echo = Some(confab_call::EchoReport {
            erle_db: Some(31.6),
            residual_echo_likelihood: Some(0.62),
            delay_ms: Some(96),
            reported_delay_ms: 90,
            drift_ppm: Some(12.0),
        });
        assert_eq!(
            echo_advice("Bob", &stats).as_deref(),
            Some("Bob may be hearing an echo: use headphones or turn the speaker down")
        );
        assert_eq!(
            echo_line(&stats).as_deref(),
            Some("Echo removed 32 dB · left 62% · delay 96 ms")
        );
    }

    #[test]
    fn fit_keeps_the_aspect_ratio_and_centres() {
        let area = Rect::from_min_size(Pos2::ZERO, vec2(800.0, 400.0));
        let shown = fit([640, 480], area);
        assert!((shown.size() - vec2(400.0 * 4.0 / 3.0, 400.0)).length() < 0.01);
        assert_eq!(shown.center(), area.center());
        let tall = fit(
            [480, 640],
            Rect::from_min_size(Pos2::ZERO, vec2(300.0, 1000.0)),
        );
        assert_eq!(tall.size(), vec2(300.0, 400.0));
    }
}
