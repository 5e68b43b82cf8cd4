//! Sharing a screen, as the driver performs it: the capture (a `video-capture` thread on
//! the chosen monitor), the call's `screen-encode` sender, and each link's route as the
//! core decides it ([`ScreenRoute`]): on the link's screen track next to the camera, or on
//! its camera track instead of the camera.

use confab_call_core::{Command as Core, Input, LinkId, ScreenRoute};
use confab_media::video::{H264EncoderConfig, ScreenSource, VideoCapture, VideoContent};
use tracing::{debug, info, warn};

use super::Driver;
use crate::Problem;
use crate::media::{self, VideoKind};

/// A shared screen is sent at up to this many frames a second (fewer while it is still).
pub const SCREEN_FPS: u32 = 15;

impl Driver {
    /// Starts capturing the chosen screen (closing the one shared). Opening waits for the
    /// display: not on the runtime's threads.
    pub(super) async fn open_screen(&mut self) {
        self.close_screen().await;
        let selector = self.screen_choice.clone();
        let opened = tokio::task::spawn_blocking(move || {
            VideoCapture::start(move || ScreenSource::open(&selector, SCREEN_FPS))
        })
        .await;
        let capture = match opened {
            Ok(Ok(capture)) => capture,
            Ok(Err(err)) => return self.screen_failed(err.to_string()),
            Err(err) => return self.screen_failed(format!("cannot share the screen: {err}")),
        };
        info!("sharing {}", capture.name());
        if let Err(err) = self.start_screen_sender() {
            return self.screen_failed(format!("cannot share the screen: {err}"));
        }
        if let Some(sender) = &self.streams.screen {
            sender.set_source(Some(capture.subscribe()));
        }
        self.screen = Some(capture);
    }

    /// Stops capturing. Closing joins the capture thread: not on the runtime's threads.
    pub(super) async fn close_screen(&mut self) {
        if let Some(sender) = &self.streams.screen {
            sender.set_source(None);
        }
        if let Some(capture) = self.screen.take() {
            let _ = tokio::task::spawn_blocking(move || drop(capture)).await;
        }
    }

    /// The screen cannot be shared (any more): the user is told, the core stops sharing
    /// (and tells the peers); the call goes on.
    pub(super) fn screen_failed(&mut self, reason: String) {
        warn!("screen sharing stopped: {reason}");
        self.problem(Problem::Screen(reason));
        self.feed(Input::Command(Core::SetSharing(false)));
    }

    /// Whether the capture stopped by itself (the display or monitor went away).
    pub(super) fn check_screen(&mut self) {
        let error = self
            .screen
            .as_ref()
            .and_then(|capture| capture.take_error());
        if let Some(err) = error {
            self.screen_failed(err.to_string());
        }
    }

    fn start_screen_sender(&mut self) -> Result<(), crate::CallError> {
        if self.streams.screen.is_none() {
            let config = H264EncoderConfig {
                bitrate_bps: crate::interceptors::START_BITRATE_BPS as u32,
                fps: SCREEN_FPS,
                keyframe_interval: None,
                content: VideoContent::Screen,
            };
            let sender = media::VideoSender::start(config, VideoKind::Screen, &self.problems)?;
            self.streams.screen = Some(sender);
        }
        Ok(())
    }

    /// Sends the screen where the core says on link `id`.
    pub(super) async fn route_screen(&mut self, id: LinkId, route: ScreenRoute) {
        let Some(link) = self.links.get(&id) else {
            return;
        };
        let Some(session) = &link.session else {
            return;
        };
        let tracks = match session.sending_tracks().await {
            Ok(tracks) => tracks,
            Err(err) => return debug!("{id}: no tracks for the screen: {err}"),
        };
        if route != ScreenRoute::Off
            && let Err(err) = self.start_screen_sender()
        {
            return self.problem(Problem::Sending(err.to_string()));
        }
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        let (counters, controls) = (link.counters.clone(), link.controls.clone());
        // A peer that said it takes a second track but negotiated none gets the screen
        // instead of the camera.
        let route = match (route, &tracks.screen) {
            (ScreenRoute::SecondTrack, None) => ScreenRoute::InPlaceOfCamera,
            (route, _) => route,
        };
        let previous = std::mem::replace(&mut link.screen_route, route);
        let (Some(camera), Some(screen)) = (&mut self.streams.video, &mut self.streams.screen)
        else {
            return;
        };
        screen.links().remove_link(id);
        match (route, tracks.screen) {
            (ScreenRoute::SecondTrack, Some(track)) => {
                let controls = (counters.clone(), controls.clone());
                screen.links().add_link_on(id, track, controls, true);
            }
            (ScreenRoute::InPlaceOfCamera | ScreenRoute::SecondTrack, _) => {
                camera.links().remove_link(id);
                let controls = (counters.clone(), controls.clone());
                screen
                    .links()
                    .add_link_on(id, tracks.video.clone(), controls, false);
            }
            (ScreenRoute::Off, _) => {}
        }
        let camera_back =
            previous == ScreenRoute::InPlaceOfCamera && route != ScreenRoute::InPlaceOfCamera;
        if camera_back {
            camera
                .links()
                .add_link(id, tracks.video, counters, controls);
        }
        // Next to a screen, the camera makes do with what the screen leaves.
        let beside = self
            .links
            .values()
            .any(|link| link.screen_route == ScreenRoute::SecondTrack);
        camera.set_share(match beside {
            true => 1.0 - media::SCREEN_SHARE,
            false => 1.0,
        });
    }
}
