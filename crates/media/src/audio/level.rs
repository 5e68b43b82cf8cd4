//! Mute and the input level meter, shared between the audio thread and the UI.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

pub use super::analysis::Level;

/// What the UI controls and sees of the microphone: a mute switch, and the level of the
/// last frame (measured before muting, so the UI can say "you are muted" to someone
/// talking). Lock-free: the audio thread never waits for the UI.
#[derive(Debug, Default)]
pub struct InputControl {
    muted: AtomicBool,
    rms_bits: AtomicU32,
    peak_bits: AtomicU32,
}

/// RMS above which someone counts as speaking (about -40 dBFS).
const SPEAKING_RMS: f32 = 0.01;

impl InputControl {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_muted(&self, muted: bool) {
        self.muted.store(muted, Ordering::Relaxed);
    }

    pub fn is_muted(&self) -> bool {
        self.muted.load(Ordering::Relaxed)
    }

    /// Measures `frame`, then silences it if muted.
    pub fn process(&self, frame: &mut [f32]) {
        let level = super::analysis::level(frame);
        self.rms_bits.store(level.rms.to_bits(), Ordering::Relaxed);
        self.peak_bits
            .store(level.peak.to_bits(), Ordering::Relaxed);
        if self.is_muted() {
            frame.fill(0.0);
        }
    }

    /// The level of the last processed frame.
    pub fn level(&self) -> Level {
        Level {
            rms: f32::from_bits(self.rms_bits.load(Ordering::Relaxed)),
            peak: f32::from_bits(self.peak_bits.load(Ordering::Relaxed)),
        }
    }

    /// For a speaking indicator.
    pub fn is_speaking(&self) -> bool {
        self.level().rms > SPEAKING_RMS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mute_silences_but_still_meters() {
        let control = InputControl::new();
        let mut frame = [0.5f32; 960];
        control.process(&mut frame);
        assert!(control.is_speaking() && frame[0] == 0.5);
        control.set_muted(true);
        control.process(&mut frame);
        assert!(frame.iter().all(|&s| s == 0.0));
        assert!(
            (control.level().peak - 0.5).abs() < 1e-6,
            "level measured before muting"
        );
        control.process(&mut frame);
        assert!(!control.is_speaking(), "now the input itself is silent");
    }
}
