//! Screen sharing inside [`CallCore`]: whether we share, and where the screen goes on each
//! link. A peer that says (in its `state`) that it takes a screen gets it as a second
//! video track, next to the camera; any other (one that says its switches without
//! `screen`, or nothing at all within [`SWITCHES_WAIT`] of media starting) gets it in place
//! of the camera. Nothing is routed before the link's media started.

use std::time::{Duration, Instant};

use tracing::debug;

use super::{CallCore, Event, LinkAction, LinkId, Output};

/// How long a peer has, once media started, to say its switches (it does when the chat
/// opens, a round trip or two later) before it counts as one that takes one picture.
pub const SWITCHES_WAIT: Duration = Duration::from_secs(1);

/// Where the shared screen goes on one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScreenRoute {
    /// Nowhere: not shared, or the link is not ready for it.
    #[default]
    Off,
    /// On the link's screen track; the camera keeps its own.
    SecondTrack,
    /// On the link's camera track, instead of the camera (a peer that cannot take two).
    InPlaceOfCamera,
}

impl CallCore {
    /// The user's Share or Stop.
    pub(super) fn set_sharing(&mut self, on: bool) {
        if !on {
            return self.stop_sharing();
        }
        if self.links.is_empty() {
            debug!("not in a call: nothing to share the screen with");
            return;
        }
        if !self.sharing {
            self.sharing = true;
            self.sharing_changed();
        }
        // Again while sharing: another screen was chosen; the driver reopens. (After the
        // news: a screen that cannot open is reported after it, and stops it.)
        self.outputs.push_back(Output::OpenScreen);
    }

    /// Stops sharing, if we do (the user's Stop, the capture ended, the call ended).
    pub(super) fn stop_sharing(&mut self) {
        if !self.sharing {
            return;
        }
        self.sharing = false;
        self.outputs.push_back(Output::CloseScreen);
        self.sharing_changed();
    }

    fn sharing_changed(&mut self) {
        self.event(Event::Sharing(self.sharing));
        self.tell_state();
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for id in links {
            self.route_screen(id);
        }
    }

    /// The peer at the other end of `id` said its switches, with or without `screen`.
    pub(super) fn peer_takes_screen(&mut self, id: LinkId, takes: bool) {
        if let Some(link) = self.links.get_mut(&id) {
            link.takes_screen = Some(takes);
        }
        self.route_screen(id);
    }

    /// When a peer that has not said its switches runs out of time to, while we share.
    pub(super) fn screen_deadline(&self) -> Option<Instant> {
        if !self.sharing {
            return None;
        }
        self.links
            .values()
            .filter(|link| link.takes_screen.is_none() && !link.switches_overdue)
            .filter_map(|link| link.media_since)
            .map(|since| since + SWITCHES_WAIT)
            .min()
    }

    pub(super) fn screen_tick(&mut self, now: Instant) {
        let overdue: Vec<LinkId> = self
            .links
            .iter_mut()
            .filter(|(_, link)| link.takes_screen.is_none() && !link.switches_overdue)
            .filter(|(_, link)| {
                link.media_since
                    .is_some_and(|since| now >= since + SWITCHES_WAIT)
            })
            .map(|(id, link)| {
                link.switches_overdue = true;
                *id
            })
            .collect();
        for id in overdue {
            self.route_screen(id);
        }
    }

    /// Tells the driver where the screen goes on `id`, if that changed.
    pub(super) fn route_screen(&mut self, id: LinkId) {
        let sharing = self.sharing;
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        let route = match (sharing && link.media_started, link.takes_screen) {
            (false, _) => ScreenRoute::Off,
            (true, Some(true)) => ScreenRoute::SecondTrack,
            (true, Some(false)) => ScreenRoute::InPlaceOfCamera,
            (true, None) if link.switches_overdue => ScreenRoute::InPlaceOfCamera,
            (true, None) => ScreenRoute::Off,
        };
        if route == link.screen_route {
            return;
        }
        let camera_told = !self.camera_wanted && link.chat.is_open();
        let as_camera = [route, link.screen_route].contains(&ScreenRoute::InPlaceOfCamera);
        link.screen_route = route;
        self.outputs
            .push_back(Output::Link(id, LinkAction::Screen(route)));
        if camera_told && as_camera {
            // Its camera picture is the screen now, or no longer: say so (state_message).
            self.tell_state_to(id);
        }
    }
}
