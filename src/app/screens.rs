//! The screens a user can share, for the picker: the `screen-preview` thread lists the
//! monitors and captures each about once a second while the picker is open, scaled down to
//! a thumbnail, and publishes them through a latest-value slot plus the wake callback.
//! Capturing waits for the X display, so none of it runs on the UI thread; nothing is
//! captured before the picker opens, and dropping the [`ScreenPreview`] stops the thread by
//! flag (never by join).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use confab_call::Wake;
use confab_media::slot::LatestSlot;
use confab_media::video::{
    I420Frame, ScreenInfo, ScreenSelector, ScreenSource, VideoError, VideoSource, list_screens,
};

use super::ui::{ScreenChoice, ScreenChoices};
use super::video::VideoTexture;

/// How often the thumbnails are captured again.
const REFRESH: Duration = Duration::from_secs(1);
/// The stop flag is looked at this often while the thread waits.
const STEP: Duration = Duration::from_millis(100);
/// Thumbnails are halved until they are at most this wide (twice what the picker shows,
/// for sharp pictures on high-density screens).
const THUMBNAIL_MAX_WIDTH: u32 = 480;

/// One monitor and its picture.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    pub info: ScreenInfo,
    /// The picture: size in pixels and opaque RGBA; or why there is none.
    pub picture: Result<([usize; 2], Vec<u8>), String>,
}

/// What the thread found: the monitors, or why screens cannot be shared here.
pub type Screens = Result<Vec<Thumbnail>, String>;

/// The `screen-preview` thread, while the picker is open.
pub struct ScreenPreview {
    pub screens: Arc<LatestSlot<Screens>>,
    stop: Arc<AtomicBool>,
}

impl ScreenPreview {
    /// Starts capturing the monitors of `display` (`None`: `$DISPLAY`).
    pub fn start(display: Option<String>, wake: Wake) -> ScreenPreview {
        let screens = Arc::new(LatestSlot::new());
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_screens, thread_stop) = (screens.clone(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("screen-preview".into())
            .spawn(move || {
                let mut sources = Sources::new(display);
                while !thread_stop.load(Ordering::Relaxed) {
                    // A panic in the capture code ends the thread, not the app, and the
                    // picker says it rather than looking for screens forever.
                    let captured = catch_unwind(AssertUnwindSafe(|| sources.capture()));
                    let failed = captured.is_err();
                    thread_screens.publish(captured.unwrap_or_else(|panic| {
                        Err(format!(
                            "the screen capture failed ({})",
                            panic_message(&panic)
                        ))
                    }));
                    wake();
                    if failed || !sleep_unless_stopped(REFRESH, &thread_stop) {
                        return;
                    }
                }
            });
        if let Err(err) = spawned {
            screens.publish(Err(format!("Cannot look at the screens: {err}")));
        }
        ScreenPreview { screens, stop }
    }
}

impl Drop for ScreenPreview {
    /// Asks the thread to stop without waiting for it: it ends within [`STEP`] of its
    /// current capture and then closes its display connections.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What a panic said, if it said it in words.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

/// Sleeps `total` in short steps; false if asked to stop meanwhile.
fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) -> bool {
    let mut waited = Duration::ZERO;
    while waited < total {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(STEP);
        waited += STEP;
    }
    !stop.load(Ordering::Relaxed)
}

/// The monitors' captures, kept open from one round to the next (each is a connection
/// to the display); opened anew when the monitors change.
struct Sources {
    display: Option<String>,
    open: Vec<(ScreenInfo, Result<ScreenSource, String>)>,
}

impl Sources {
    fn new(display: Option<String>) -> Sources {
        Sources {
            display,
            open: Vec::new(),
        }
    }

    /// Lists the monitors and takes a thumbnail of each.
    fn capture(&mut self) -> Screens {
        let screens = list_screens(self.display.as_deref()).map_err(|err| err.to_string())?;
        let known: Vec<&ScreenInfo> = self.open.iter().map(|(info, _)| info).collect();
        if known.len() != screens.len() || known.iter().zip(&screens).any(|(a, b)| *a != b) {
            self.open = screens.into_iter().map(|info| self.opened(info)).collect();
        }
        Ok(self
            .open
            .iter_mut()
            .map(|(info, source)| Thumbnail {
                info: info.clone(),
                picture: match source {
                    Ok(source) => thumbnail(source).map_err(|err| err.to_string()),
                    Err(reason) => Err(reason.clone()),
                },
            })
            .collect())
    }

    fn opened(&self, info: ScreenInfo) -> (ScreenInfo, Result<ScreenSource, String>) {
        let selector = ScreenSelector {
            display: self.display.clone(),
            monitor: info.index,
        };
        // One frame a second is all a thumbnail needs.
        let source = ScreenSource::open(&selector, 1).map_err(|err| err.to_string());
        (info, source)
    }
}

/// The monitor's picture now, halved until it is thumbnail-sized, as RGBA.
fn thumbnail(source: &mut ScreenSource) -> Result<([usize; 2], Vec<u8>), VideoError> {
    let mut frame = source.next_frame()?;
    let mut half = I420Frame::black(2, 2)?;
    while frame.width() > THUMBNAIL_MAX_WIDTH {
        frame.halve_into(&mut half)?;
        std::mem::swap(&mut frame, &mut half);
    }
    let mut rgba = Vec::new();
    frame.write_rgba(&mut rgba)?;
    Ok(([frame.width() as usize, frame.height() as usize], rgba))
}

/// The picker's side in the app: the thread while the picker is open, and the monitors it
/// found with their thumbnails as textures.
#[derive(Default)]
pub struct ScreenPicker {
    preview: Option<ScreenPreview>,
    found: ScreenChoices,
    textures: Vec<VideoTexture>,
}

impl ScreenPicker {
    /// Runs the thread while `open` (stopping it otherwise) and takes what it captured.
    pub fn update(&mut self, ctx: &egui::Context, open: bool, display: Option<&str>, wake: &Wake) {
        if !open {
            if self.preview.is_some() {
                *self = ScreenPicker::default();
            }
            return;
        }
        let preview = self
            .preview
            .get_or_insert_with(|| ScreenPreview::start(display.map(str::to_owned), wake.clone()));
        match preview.screens.take() {
            Some(Ok(thumbnails)) => self.show(ctx, thumbnails),
            Some(Err(reason)) => {
                self.textures.clear();
                self.found = ScreenChoices::Unavailable(reason);
            }
            None => {}
        }
    }

    fn show(&mut self, ctx: &egui::Context, thumbnails: Vec<Thumbnail>) {
        self.textures
            .resize_with(thumbnails.len(), || VideoTexture::new("screen-thumbnail"));
        let choices = thumbnails
            .into_iter()
            .zip(&mut self.textures)
            .map(|(thumbnail, texture)| {
                let problem = match &thumbnail.picture {
                    Ok((size, rgba)) => (!texture.show_rgba(ctx, *size, rgba))
                        .then(|| "the picture came out wrong".to_owned()),
                    Err(reason) => {
                        texture.clear();
                        Some(reason.clone())
                    }
                };
                ScreenChoice {
                    info: thumbnail.info,
                    picture: texture.picture(),
                    problem,
                }
            })
            .collect();
        self.found = ScreenChoices::Found(choices);
    }

    /// What the picker shows now.
    pub fn choices(&self) -> &ScreenChoices {
        &self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the thread publishes first, within a few seconds.
    fn first_news(display: &str) -> Screens {
        let preview = ScreenPreview::start(Some(display.into()), Arc::new(|| {}));
        let news = preview.screens.wait_take(Duration::from_secs(5));
        news.expect("the thread says something")
    }

    #[test]
    fn a_display_that_cannot_be_reached_is_said_not_waited_for() {
        // Nothing runs there; and one so high its port number overflows in x11rb, which
        // panics in a debug build: said all the same.
        for display in [":5999", ":65000"] {
            let reason = first_news(display).expect_err("no screens there");
            assert!(
                reason.contains(display) || reason.contains("failed"),
                "{reason}"
            );
        }
    }
}
