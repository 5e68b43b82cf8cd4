//! The group call view: one tile per other member in a grid that fits (1-5 others, the
//! self-view as the corner picture), each with the member's picture (or their initial on a
//! calm tile), their name and what is happening with them; the controls below. A member's
//! shared screen takes the big area, with everyone's tiles in a strip below it.

use std::time::Instant;

use confab_call::{Member, MemberStatus};
use confab_protocol::PeerId;
use egui::{Align2, Color32, Rect, pos2, vec2};

use super::call::{
    CallMedia, controls_bar, controls_height, overlay_button, overlay_text, picture_ui,
    self_view_ui, stats_lines, verify_button,
};
use super::{UiAction, UiState, trust_badge};
use crate::app::model::{Model, format_duration};
use crate::app::verified::Trust;

const GAP: f32 = 6.0;
const SPEAKING: Color32 = Color32::from_rgb(60, 190, 90);

/// Columns and rows for `n` tiles: as square as it gets, wider than tall.
pub fn grid_shape(n: usize) -> (usize, usize) {
    let n = n.max(1);
    let columns = (1..=n).find(|c| c * c >= n).unwrap_or(n);
    (columns, n.div_ceil(columns))
}

/// What a tile says under the name, if anything.
pub fn status_text(member: &Member) -> Option<String> {
    let name = &member.name;
    match member.status {
        MemberStatus::Invited => Some(format!("Calling {name}…")),
        MemberStatus::Joining => Some(format!("Connecting to {name}…")),
        MemberStatus::Connected => None,
        MemberStatus::Reconnecting => Some(format!("{name} is reconnecting…")),
        MemberStatus::Unreachable => Some(format!("Can't reach {name}")),
    }
}

pub fn group_ui(
    ui: &mut egui::Ui,
    model: &Model,
    members: &[Member],
    media: &CallMedia,
    state: &mut UiState,
    now: Instant,
    actions: &mut Vec<UiAction>,
) {
    let full = ui.available_rect_before_wrap();
    let bar = controls_height(full.width());
    let area = Rect::from_min_max(full.min, pos2(full.max.x, full.max.y - bar));
    ui.painter().rect_filled(area, 4.0, Color32::from_gray(16));
    let speaking = model.active_speaker.as_ref();
    // A member's shared screen takes the big area, everyone's tiles go in a strip below.
    let sharer = members
        .iter()
        .find(|m| m.sharing && m.status == MemberStatus::Connected);
    let (screen_area, tiles) = match sharer {
        Some(_) => {
            let (main, strip) = strip_layout(members.len(), area);
            (Some(main), strip)
        }
        None => (None, layout(members, speaking, state.speaker_view, area)),
    };
    if let (Some(sharer), Some(main)) = (sharer, screen_area) {
        let picture = media.screens.get(&sharer.peer).copied();
        super::share::shared_screen_ui(ui, &sharer.name, picture, main);
    }
    for (member, rect) in members.iter().zip(tiles) {
        let highlight = speaking == Some(&member.peer);
        let trust = model.identity_of(&member.peer).map(|(_, trust)| trust);
        tile_ui(ui, (member, trust), media, rect, highlight);
        if state.show_stats
            && let Some(stats) = model.member_stats.get(&member.name)
        {
            let lines = stats_lines(stats);
            overlay_text(
                ui,
                &format!("stats-{}", member.peer),
                rect.left_top() + vec2(10.0, 10.0),
                Align2::LEFT_TOP,
                (
                    &lines.join("\n"),
                    egui::FontId::monospace(11.0),
                    Color32::from_gray(230),
                ),
                format!("Stats for {}: {}", member.name, lines.join(", ")),
            );
        }
    }

    let mut title = format!("{} people", members.len() + 1);
    if let Some(duration) = model.call_duration(now) {
        title.push_str(&format!("  ·  {}", format_duration(duration)));
    }
    overlay_text(
        ui,
        "group-title",
        area.center_top() + vec2(0.0, 10.0),
        Align2::CENTER_TOP,
        (&title, egui::FontId::proportional(14.0), Color32::WHITE),
        title.clone(),
    );
    // The layout switch, over the grid's top-right corner.
    let switch = Rect::from_min_size(area.right_top() + vec2(-124.0, 8.0), vec2(116.0, 24.0));
    let label = if state.speaker_view {
        "Grid view"
    } else {
        "Speaker view"
    };
    if overlay_button(ui, "layout", switch, label)
        .on_hover_text("Whoever speaks big and the others small, or everyone the same size")
        .clicked()
    {
        state.speaker_view = !state.speaker_view;
    }
    // Verify, left of the switch; the shared screen's fullscreen switch left of Verify.
    verify_button(ui, switch.left_top() - vec2(0.0, 8.0), state);
    if screen_area.is_some() {
        let corner = switch.left_top() - vec2(96.0, 0.0);
        super::share::fullscreen_button(ui, corner, state, actions);
    }
    if media.self_view {
        // Over the shared screen's corner rather than over a member's tile in the strip.
        self_view_ui(ui, media, screen_area.unwrap_or(area));
    }
    let controls = Rect::from_min_max(pos2(full.min.x, area.max.y), full.max);
    controls_bar(ui, controls, media, state, actions);
    ui.allocate_rect(full, egui::Sense::hover());
}

/// Where each member's tile goes: a grid that fits, or in speaker view the speaker (or
/// the first member, before anyone spoke) big and the others in a row below.
pub fn layout(
    members: &[Member],
    speaking: Option<&PeerId>,
    speaker_view: bool,
    area: Rect,
) -> Vec<Rect> {
    let n = members.len();
    if speaker_view && n > 1 {
        let big = members
            .iter()
            .position(|m| Some(&m.peer) == speaking)
            .unwrap_or(0);
        let (main, strip) = strip_layout(n - 1, area);
        let mut small = strip.into_iter();
        return (0..n)
            .map(|i| {
                if i == big {
                    main
                } else {
                    small.next().unwrap_or(main)
                }
            })
            .collect();
    }
    let (columns, rows) = grid_shape(n);
    let size = vec2(
        (area.width() - GAP * (columns as f32 + 1.0)) / columns as f32,
        (area.height() - GAP * (rows as f32 + 1.0)) / rows as f32,
    );
    (0..n)
        .map(|i| {
            let (column, row) = (i % columns, i / columns);
            let min = area.min
                + vec2(
                    GAP + column as f32 * (size.x + GAP),
                    GAP + row as f32 * (size.y + GAP),
                );
            Rect::from_min_size(min, size)
        })
        .collect()
}

/// One big area and `n` tiles in a strip below it (a shared screen and every member, or
/// in speaker view the speaker and the others). Returns the big area and the tiles.
pub fn strip_layout(n: usize, area: Rect) -> (Rect, Vec<Rect>) {
    let strip = (area.height() / 4.0).max(60.0);
    let main = Rect::from_min_max(area.min, pos2(area.max.x, area.max.y - strip)).shrink(GAP);
    let count = n.max(1) as f32;
    let width = (area.width() - GAP * (count + 1.0)) / count;
    let tiles = (0..n)
        .map(|i| {
            let min = pos2(
                area.min.x + GAP + i as f32 * (width + GAP),
                area.max.y - strip,
            );
            Rect::from_min_size(min, vec2(width, strip - GAP))
        })
        .collect();
    (main, tiles)
}

fn tile_ui(
    ui: &mut egui::Ui,
    (member, trust): (&Member, Option<Trust>),
    media: &CallMedia,
    tile: Rect,
    speaking: bool,
) {
    let name = &member.name;
    ui.painter().rect_filled(tile, 6.0, Color32::from_gray(34));
    if speaking {
        ui.painter().rect_stroke(
            tile,
            6.0,
            egui::Stroke::new(3.0, SPEAKING),
            egui::StrokeKind::Outside,
        );
    }
    // A member whose camera is off shows the calm tile, not their last frame frozen.
    let picture = media
        .remotes
        .get(&member.peer)
        .filter(|_| member.status == MemberStatus::Connected && !member.camera_off);
    match picture {
        Some(picture) => picture_ui(ui, *picture, tile, format!("Video of {name}")),
        None => {
            // A calm tile: the member's initial.
            let initial: String = name.chars().take(1).flat_map(char::to_uppercase).collect();
            let radius = (tile.height().min(tile.width()) / 5.0).clamp(16.0, 64.0);
            ui.painter()
                .circle_filled(tile.center(), radius, Color32::from_rgb(70, 90, 140));
            ui.painter().text(
                tile.center(),
                Align2::CENTER_CENTER,
                initial,
                egui::FontId::proportional(radius),
                Color32::WHITE,
            );
        }
    }
    let mut label = match status_text(member) {
        Some(status) => format!("{name} · {status}"),
        None if speaking => format!("🔊 {name} (speaking)"),
        None => name.clone(),
    };
    if member.muted {
        label.push_str(" · 🔇 muted");
    }
    if member.camera_off {
        label.push_str(" · camera off");
    }
    if member.sharing {
        label.push_str(" · 🖥 sharing");
    }
    let warn = ui.visuals().warn_fg_color;
    if let Some((badge, _)) = trust.and_then(|trust| trust_badge(trust, warn)) {
        label.push_str(&format!(" · {badge}"));
    }
    let color = match (member.status, trust) {
        (MemberStatus::Unreachable, _) | (_, Some(Trust::Changed)) => warn,
        _ => Color32::WHITE,
    };
    overlay_text(
        ui,
        &format!("tile-{}", member.peer),
        tile.left_bottom() + vec2(10.0, -10.0),
        Align2::LEFT_BOTTOM,
        (&label, egui::FontId::proportional(14.0), color),
        label.clone(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_fits_one_to_six() {
        let shapes: Vec<(usize, usize)> = (1..=6).map(grid_shape).collect();
        assert_eq!(shapes, [(1, 1), (2, 1), (2, 2), (2, 2), (3, 2), (3, 2)]);
    }

    #[test]
    fn speaker_view_makes_the_speaker_big() {
        let member = |name: &str| Member {
            peer: PeerId::new(name).expect("valid id"),
            name: name.into(),
            status: MemberStatus::Connected,
            muted: false,
            camera_off: false,
            sharing: false,
        };
        let members = [member("b"), member("c"), member("d")];
        let area = Rect::from_min_size(pos2(0.0, 0.0), vec2(800.0, 600.0));
        let grid = layout(&members, None, false, area);
        assert!(grid.iter().all(|r| (r.area() - grid[0].area()).abs() < 1.0));
        let c = members[1].peer.clone();
        let view = layout(&members, Some(&c), true, area);
        assert!(view[1].area() > 4.0 * view[0].area(), "{view:?}");
        assert_eq!(view[0].area(), view[2].area());
        assert!(view.iter().all(|r| area.expand(1.0).contains_rect(*r)));
    }

    #[test]
    fn a_shared_screen_takes_the_big_area_and_the_tiles_a_strip_below() {
        let area = Rect::from_min_size(pos2(0.0, 0.0), vec2(800.0, 600.0));
        let (main, tiles) = strip_layout(3, area);
        assert_eq!(tiles.len(), 3);
        assert!(main.area() > 6.0 * tiles[0].area(), "{main:?} {tiles:?}");
        for (i, tile) in tiles.iter().enumerate() {
            assert!(area.contains_rect(*tile), "{tile:?}");
            assert!(tile.top() >= main.bottom(), "below the screen: {tile:?}");
            if let Some(next) = tiles.get(i + 1) {
                assert!(!tile.intersects(*next), "side by side: {tile:?} {next:?}");
            }
        }
    }
}
