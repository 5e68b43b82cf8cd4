//! Opus for voice: 48 kHz mono, 20 ms frames, VoIP tuning, in-band forward error
//! correction, and a decoder that conceals lost packets or rebuilds them from the FEC data
//! in the packet after.

use opus::{Application, Bitrate, Channels, Decoder, Encoder};

use super::{AudioError, FRAME_SAMPLES, SAMPLE_RATE};

/// Largest Opus packet (RFC 6716 limits a frame to 1275 bytes).
const MAX_PACKET: usize = 1500;

fn codec_error(err: opus::Error) -> AudioError {
    AudioError::Codec(err.to_string())
}

/// The loss a new encoder's FEC is set for, until the caller knows better.
pub const DEFAULT_EXPECTED_LOSS_PERCENT: u8 = 10;

pub struct OpusEncoder {
    encoder: Encoder,
    packet: [u8; MAX_PACKET],
}

impl OpusEncoder {
    /// An encoder at `bitrate_bps` (6,000-510,000), expecting some packet loss so it puts
    /// FEC data in every packet.
    pub fn new(bitrate_bps: u32) -> Result<OpusEncoder, AudioError> {
        let mut encoder =
            Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip).map_err(codec_error)?;
        encoder.set_inband_fec(true).map_err(codec_error)?;
        let mut this = OpusEncoder {
            encoder,
            packet: [0; MAX_PACKET],
        };
        this.set_bitrate(bitrate_bps)?;
        this.set_expected_loss_percent(DEFAULT_EXPECTED_LOSS_PERCENT)?;
        Ok(this)
    }

    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), AudioError> {
        let bps = i32::try_from(bitrate_bps.clamp(6_000, 510_000)).unwrap_or(510_000);
        self.encoder
            .set_bitrate(Bitrate::Bits(bps))
            .map_err(codec_error)
    }

    /// How much loss to protect against with FEC (the receiver's reports say).
    pub fn set_expected_loss_percent(&mut self, percent: u8) -> Result<(), AudioError> {
        self.encoder
            .set_packet_loss_perc(i32::from(percent.min(100)))
            .map_err(codec_error)
    }

    /// Encodes one 20 ms frame.
    pub fn encode(&mut self, frame: &[f32]) -> Result<Vec<u8>, AudioError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(AudioError::Codec(format!(
                "a frame is {FRAME_SAMPLES} samples, not {}",
                frame.len()
            )));
        }
        let len = self
            .encoder
            .encode_float(frame, &mut self.packet)
            .map_err(codec_error)?;
        Ok(self.packet.get(..len).unwrap_or_default().to_vec())
    }
}

pub struct OpusDecoder {
    decoder: Decoder,
}

impl OpusDecoder {
    pub fn new() -> Result<OpusDecoder, AudioError> {
        Ok(OpusDecoder {
            decoder: Decoder::new(SAMPLE_RATE, Channels::Mono).map_err(codec_error)?,
        })
    }

    /// Decodes a packet into one 20 ms frame. A corrupt packet is an error; `frame` is
    /// then filled by concealment, so playback stays continuous.
    pub fn decode(&mut self, packet: &[u8], frame: &mut [f32]) -> Result<(), AudioError> {
        self.run(packet, frame, false)
    }

    /// Rebuilds a lost frame from the FEC data in the packet that followed it.
    pub fn decode_fec(&mut self, next_packet: &[u8], frame: &mut [f32]) -> Result<(), AudioError> {
        self.run(next_packet, frame, true)
    }

    /// Invents a plausible frame for a lost packet (packet-loss concealment).
    pub fn conceal(&mut self, frame: &mut [f32]) -> Result<(), AudioError> {
        self.run(&[], frame, false)
    }

    fn run(&mut self, packet: &[u8], frame: &mut [f32], fec: bool) -> Result<(), AudioError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(AudioError::Codec(format!(
                "a frame is {FRAME_SAMPLES} samples, not {}",
                frame.len()
            )));
        }
        match self.decoder.decode_float(packet, frame, fec) {
            Ok(n) if n == FRAME_SAMPLES => Ok(()),
            Ok(n) => {
                // A packet of another duration: keep what fits, never a short frame.
                let n = n.min(FRAME_SAMPLES);
                if let Some(rest) = frame.get_mut(n..) {
                    rest.fill(0.0);
                }
                Err(AudioError::Codec(format!(
                    "packet held {n} samples, not one 20 ms frame"
                )))
            }
            Err(err) => {
                frame.fill(0.0);
                let _ = self.decoder.decode_float(&[], frame, false);
                Err(codec_error(err))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{AudioSource, ToneSource, analysis};

    fn encode_tone(hz: f32, frames: usize) -> Vec<Vec<u8>> {
        let mut tone = ToneSource::new(hz).unwrap();
        let mut encoder = OpusEncoder::new(32_000).unwrap();
        let mut frame = [0.0; FRAME_SAMPLES];
        (0..frames)
            .map(|_| {
                tone.read(&mut frame).unwrap();
                encoder.encode(&frame).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_level() {
        let packets = encode_tone(440.0, 100);
        let mut decoder = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        let mut frame = [0.0; FRAME_SAMPLES];
        for packet in &packets {
            assert!(packet.len() < 200, "{} bytes at 32 kbit/s", packet.len());
            decoder.decode(packet, &mut frame).unwrap();
            out.extend_from_slice(&frame);
        }
        let steady = &out[out.len() / 4..];
        let hz = analysis::dominant_frequency(steady, SAMPLE_RATE);
        assert!((hz - 440.0).abs() <= 4.4, "{hz} Hz");
        let rms = analysis::level(steady).rms;
        assert!((rms - 0.3536).abs() < 0.35 * 0.1, "rms {rms}");
    }

    /// With 10% of packets lost, FEC and concealment leave no gap of silence longer than a
    /// frame, and the tone is still the tone.
    #[test]
    fn ten_percent_loss_stays_continuous() {
        let packets = encode_tone(440.0, 250);
        let mut decoder = OpusDecoder::new().unwrap();
        let lost = |i: usize| i % 10 == 7;
        let (mut out, mut frame) = (Vec::new(), [0.0; FRAME_SAMPLES]);
        let mut recovered_by_fec = 0;
        for i in 0..packets.len() {
            if lost(i) {
                match packets.get(i + 1).filter(|_| !lost(i + 1)) {
                    Some(next) => {
                        decoder.decode_fec(next, &mut frame).unwrap();
                        recovered_by_fec += 1;
                    }
                    None => decoder.conceal(&mut frame).unwrap(),
                }
            } else {
                decoder.decode(&packets[i], &mut frame).unwrap();
            }
            out.extend_from_slice(&frame);
        }
        assert_eq!(recovered_by_fec, 25);
        let steady = &out[FRAME_SAMPLES * 10..];
        let silence = analysis::longest_silence(steady, 0.01);
        assert!(silence < FRAME_SAMPLES, "{silence} silent samples in a row");
        let hz = analysis::dominant_frequency(steady, SAMPLE_RATE);
        assert!((hz - 440.0).abs() <= 4.4, "{hz} Hz");
    }

    #[test]
    fn garbage_is_an_error_and_output_stays_a_frame() {
        let mut decoder = OpusDecoder::new().unwrap();
        let mut frame = [1.0; FRAME_SAMPLES];
        // A TOC byte claiming a code-3 packet with an impossible frame count.
        assert!(decoder.decode(&[0xff, 0xff, 0xff], &mut frame).is_err());
        assert!(frame.iter().all(|s| s.is_finite() && s.abs() <= 1.0));
        let mut short = [0.0; 10];
        assert!(decoder.decode(&[0x08], &mut short).is_err());
        let mut encoder = OpusEncoder::new(32_000).unwrap();
        assert!(encoder.encode(&[0.0; 100]).is_err());
    }
}
