//! One encoder's output to every link of the call (one encode, N-1 sends): a writer task
//! per link, fed through a short queue. With one link the encoder waits for it, as a
//! stalled network should slow a call of two; with several, a link that cannot keep up
//! misses packets instead of holding up the others (video then sends it a keyframe).

use std::collections::HashMap;
use std::sync::Arc;

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
}

/// The writer tasks of the links an encoder feeds, owned on the async side.
#[derive(Default)]
pub(crate) struct Writers(HashMap<LinkId, tokio::task::JoinHandle<()>>);

impl Writers {
    /// Starts writing `link`'s share onto `track`; the returned outlet goes to the encoder.
    pub fn start(
        &mut self,
        link: LinkId,
        track: Arc<TrackLocalStaticSample>,
        payload_type: u8,
        (counters, controls): (Arc<Counters>, Arc<Controls>),
        queue_len: usize,
    ) -> Outlet {
        let (queue, samples) = mpsc::channel(queue_len);
        let writer = tokio::spawn(write_samples(track, payload_type, samples));
        if let Some(old) = self.0.insert(link, writer) {
            old.abort();
        }
        Outlet {
            link,
            queue,
            counters,
            controls,
            missed: false,
        }
    }

    pub fn stop(&mut self, link: LinkId) {
        if let Some(writer) = self.0.remove(&link) {
            writer.abort();
        }
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        // Aborting a writer drops its queue, which unblocks an encoder waiting on it.
        for writer in self.0.values() {
            writer.abort();
        }
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
