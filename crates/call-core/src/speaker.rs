//! Who is speaking in a group call: from each member's audio level, frame by frame, the
//! active speaker (the grid's highlight, the big tile in speaker view).
//!
//! Levels are averaged over a window of frames; the loudest member above a speech level
//! takes over only when someone else has not been speaking for a while, or is quieter, so
//! the highlight does not hop on every breath. Silence for long enough clears it.

use std::collections::BTreeMap;

use crate::LinkId;

/// Frames (20 ms) per decision: 200 ms.
const WINDOW_FRAMES: u32 = 10;
/// Mean RMS (of full scale) from which a window counts as speech: about -40 dBFS.
pub const SPEECH_RMS: f32 = 0.01;
/// Quiet windows before the active speaker is cleared: one second.
const QUIET_WINDOWS: u32 = 5;
/// How much louder than the active speaker someone must be to take over (about 6 dB), so
/// that two people talking at once do not swap the highlight back and forth.
const TAKE_OVER: f32 = 2.0;

#[derive(Debug, Default)]
pub struct SpeakerDetector {
    /// Per link: the sum of its frames' RMS in this window.
    sums: BTreeMap<LinkId, f32>,
    frames: u32,
    active: Option<LinkId>,
    quiet: u32,
}

impl SpeakerDetector {
    pub fn new() -> SpeakerDetector {
        SpeakerDetector::default()
    }

    /// One 20 ms frame of `link`'s audio, as its RMS (0 to 1).
    pub fn frame(&mut self, link: LinkId, rms: f32) {
        *self.sums.entry(link).or_insert(0.0) += rms;
    }

    /// Ends a frame period (every link's frame was given). Returns the new active speaker
    /// when it changes (`Some(None)`: nobody is speaking any more).
    pub fn tick(&mut self) -> Option<Option<LinkId>> {
        self.frames += 1;
        if self.frames < WINDOW_FRAMES {
            return None;
        }
        let frames = self.frames as f32;
        self.frames = 0;
        let mean = |link: &LinkId| self.sums.get(link).map_or(0.0, |sum| sum / frames);
        let current = self.active.as_ref().map_or(0.0, mean);
        let loudest = self
            .sums
            .keys()
            .map(|link| (*link, mean(link)))
            .filter(|(_, level)| *level >= SPEECH_RMS)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        self.sums.values_mut().for_each(|sum| *sum = 0.0);
        let next = match loudest {
            // The active speaker keeps going, and nobody is clearly louder.
            Some((_, level)) if current >= SPEECH_RMS && level < current * TAKE_OVER => {
                self.quiet = 0;
                self.active
            }
            Some((link, _)) => {
                self.quiet = 0;
                Some(link)
            }
            None => {
                self.quiet += 1;
                if self.quiet < QUIET_WINDOWS {
                    self.active
                } else {
                    None
                }
            }
        };
        (next != self.active).then(|| {
            self.active = next;
            next
        })
    }

    /// A link is gone: it speaks no more.
    pub fn remove(&mut self, link: LinkId) -> Option<Option<LinkId>> {
        self.sums.remove(&link);
        (self.active == Some(link)).then(|| {
            self.active = None;
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        detector: &mut SpeakerDetector,
        frames: u32,
        levels: &[(LinkId, f32)],
    ) -> Vec<Option<LinkId>> {
        let mut changes = Vec::new();
        for _ in 0..frames {
            for (link, rms) in levels {
                detector.frame(*link, *rms);
            }
            changes.extend(detector.tick());
        }
        changes
    }

    #[test]
    fn the_loudest_talker_is_active_and_silence_clears_it() {
        let (a, b) = (LinkId::first(), LinkId::first().next());
        let mut d = SpeakerDetector::new();
        assert!(
            run(&mut d, 20, &[(a, 0.001), (b, 0.002)]).is_empty(),
            "nobody speaks"
        );
        assert_eq!(run(&mut d, 10, &[(a, 0.1), (b, 0.02)]), [Some(a)]);
        assert!(
            run(&mut d, 30, &[(a, 0.1), (b, 0.02)]).is_empty(),
            "no flicker"
        );
        // Both at once, b a little louder: a keeps the highlight; clearly louder, b takes it.
        assert!(run(&mut d, 30, &[(a, 0.1), (b, 0.15)]).is_empty());
        assert_eq!(run(&mut d, 10, &[(a, 0.05), (b, 0.15)]), [Some(b)]);
        assert_eq!(run(&mut d, 10, &[(a, 0.05), (b, 0.0)]), [Some(a)]);
        assert_eq!(run(&mut d, 10, &[(a, 0.0), (b, 0.05)]), [Some(b)]);
        // A pause shorter than a second keeps the highlight; a longer one clears it.
        assert!(run(&mut d, 40, &[(a, 0.0), (b, 0.0)]).is_empty());
        assert_eq!(run(&mut d, 20, &[(a, 0.0), (b, 0.0)]), [None]);
        assert_eq!(run(&mut d, 10, &[(a, 0.2)]), [Some(a)]);
        assert_eq!(d.remove(a), Some(None));
        assert_eq!(d.remove(b), None);
    }
}
