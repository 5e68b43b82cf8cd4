//! One encoder's output to every link of the call (one encode, N-1 sends): a writer task
//! per link, fed through a short queue. With one link the encoder waits for it, as a
//! stalled network should slow a call of two; with several, a link that cannot keep up
//! misses packets instead of holding up the others (video then sends it a keyframe).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use confab_call_core::LinkId;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

use super::{Counters, Encoded, write_samples};
use crate::control::Controls;

/// Where a link's share of the encoder's output goes.
pub(crate) struct Outlet {
    pub link: LinkId,
    queue: mpsc::Sender<Encoded>,
    pub counters: Arc<Counters>,
    pub controls: Arc<Controls>,
    /// The link missed a packet since the last keyframe.
    pub missed: bool,
    /// The outlet writes on the link's screen track (keyframe requests for it come
    /// through `controls.screen`), not its camera's.
    pub screen_track: bool,
}

impl Outlet {
    /// Where the peer's keyframe requests for this outlet's track arrive.
    pub fn keyframe_control(&self) -> &crate::control::EncoderControl {
        match self.screen_track {
            true => &self.controls.screen,
            false => &self.controls.encoder,
        }
    }
}

/// What an encoder thread is told about the links it feeds.
pub(crate) trait LinkCommands: Send + 'static {
    fn add(outlet: Outlet) -> Self;
    fn remove(link: LinkId) -> Self;
}

/// The async side of an encoder thread: its command channel and a writer task per link.
pub(crate) struct Feeds<C> {
    commands: Option<std_mpsc::Sender<C>>,
    writers: HashMap<LinkId, tokio::task::JoinHandle<()>>,
    queue_len: usize,
}

impl<C: LinkCommands> Feeds<C> {
    /// The feeds and the receiving end of their commands, for the thread.
    pub fn new(queue_len: usize) -> (Feeds<C>, std_mpsc::Receiver<C>) {
        let (commands, receiver) = std_mpsc::channel();
        let feeds = Feeds {
            commands: Some(commands),
            writers: HashMap::new(),
            queue_len,
        };
        (feeds, receiver)
    }

    pub fn command(&self, command: C) {
        if let Some(commands) = &self.commands {
            let _ = commands.send(command);
        }
    }

    /// Sends to `link` too, on `track` with the negotiated `payload_type`.
    pub fn add_link(
        &mut self,
        link: LinkId,
        track: (Arc<TrackLocalStaticSample>, u8),
        counters: Arc<Counters>,
        controls: Arc<Controls>,
    ) {
        self.add_link_on(link, track, (counters, controls), false);
    }

    /// [`Feeds::add_link`], saying whether `track` is the link's screen track.
    pub fn add_link_on(
        &mut self,
        link: LinkId,
        (track, payload_type): (Arc<TrackLocalStaticSample>, u8),
        (counters, controls): (Arc<Counters>, Arc<Controls>),
        screen_track: bool,
    ) {
        let (queue, samples) = mpsc::channel(self.queue_len);
        let writer = tokio::spawn(write_samples(track, payload_type, samples));
        if let Some(old) = self.writers.insert(link, writer) {
            old.abort();
        }
        self.command(C::add(Outlet {
            link,
            queue,
            counters,
            controls,
            missed: false,
            screen_track,
        }));
    }

    pub fn remove_link(&mut self, link: LinkId) {
        self.command(C::remove(link));
        if let Some(writer) = self.writers.remove(&link) {
            writer.abort();
        }
    }
}

impl<C> Feeds<C> {
    /// Ends the thread's loop: the command channel closes, and aborting the writers drops
    /// their queues, which unblocks a thread waiting on one. Then join the thread.
    pub fn close(&mut self) {
        self.commands.take();
        for (_, writer) in self.writers.drain() {
            writer.abort();
        }
    }
}

impl<C> Drop for Feeds<C> {
    fn drop(&mut self) {
        self.close();
    }
}

/// Hands `packet` to every outlet. Outlets whose writer is gone are dropped; one that
/// misses the packet is marked. `count` updates each link's counters for what it got.
pub(crate) fn deliver(outlets: &mut Vec<Outlet>, packet: &Encoded, count: impl Fn(&Counters)) {
    if let [only] = &mut outlets[..] {
        count(&only.counters);
        if only.queue.blocking_send(packet.clone()).is_err() {
            outlets.clear();
        }
        return;
    }
    outlets.retain_mut(|outlet| match outlet.queue.try_send(packet.clone()) {
        Ok(()) => {
            count(&outlet.counters);
            true
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            outlet.missed = true;
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
}
