//! Measuring audio: level (RMS and peak) and the frequency of a tone.

/// The level of some audio, linear (1.0 is full scale).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Level {
    pub rms: f32,
    pub peak: f32,
}

impl Level {
    /// RMS in dB relative to full scale; -100 for silence.
    pub fn rms_dbfs(&self) -> f32 {
        to_dbfs(self.rms)
    }

    pub fn peak_dbfs(&self) -> f32 {
        to_dbfs(self.peak)
    }
}

fn to_dbfs(linear: f32) -> f32 {
    if linear <= 1e-5 {
        -100.0
    } else {
        20.0 * linear.log10()
    }
}

pub fn level(samples: &[f32]) -> Level {
    if samples.is_empty() {
        return Level::default();
    }
    let sum_sq: f32 = samples.iter().map(|s| s * s).sum();
    Level {
        rms: (sum_sq / samples.len() as f32).sqrt(),
        peak: samples.iter().fold(0.0f32, |m, s| m.max(s.abs())),
    }
}

/// The frequency of the dominant tone in `samples`, from the spacing of its rising zero
/// crossings (interpolated between samples). Accurate to a fraction of a percent for a
/// clean tone; 0 when there is no tone.
pub fn dominant_frequency(samples: &[f32], sample_rate: u32) -> f32 {
    let mean = samples.iter().sum::<f32>() / samples.len().max(1) as f32;
    let mut crossings = Vec::new();
    for (i, pair) in samples.windows(2).enumerate() {
        let &[a, b] = pair else { continue };
        let (a, b) = (a - mean, b - mean);
        if a < 0.0 && b >= 0.0 {
            crossings.push(i as f32 + a / (a - b));
        }
    }
    match (crossings.first(), crossings.last()) {
        (Some(first), Some(last)) if crossings.len() >= 2 && last > first => {
            (crossings.len() - 1) as f32 * sample_rate as f32 / (last - first)
        }
        _ => 0.0,
    }
}

/// The longest run of silent samples (|s| < `threshold`), in samples.
pub fn longest_silence(samples: &[f32], threshold: f32) -> usize {
    let (mut longest, mut current) = (0, 0);
    for s in samples {
        if s.abs() < threshold {
            current += 1;
            longest = longest.max(current);
        } else {
            current = 0;
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_tone() {
        let tone: Vec<f32> = (0..48_000)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 48_000.0).sin())
            .collect();
        assert!((dominant_frequency(&tone, 48_000) - 440.0).abs() < 0.1);
        let l = level(&tone);
        assert!((l.rms - 0.3536).abs() < 0.001 && (l.peak - 0.5).abs() < 0.001);
        assert!((l.rms_dbfs() + 9.03).abs() < 0.05);
        assert_eq!(dominant_frequency(&[0.0; 1000], 48_000), 0.0);
        assert_eq!(level(&[0.0; 10]).rms_dbfs(), -100.0);
        assert_eq!(longest_silence(&[1.0, 0.0, 0.0, 1.0, 0.0], 0.01), 2);
    }
}
