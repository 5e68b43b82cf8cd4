//! H.264 on OpenH264: an encoder tuned for real-time calls and a decoder that refuses
//! damaged input and waits for the next keyframe.
//!
//! The encoder produces Constrained Baseline (what every WebRTC implementation decodes),
//! in Annex B form (start codes), one access unit per frame, ready for RTP packetization
//! mode 1. Rate control targets a bitrate that can change while running; frame skipping is
//! off (a skipped frame would look like a freeze); keyframes come on demand (for PLI/FIR).
//! A shared screen is encoded in OpenH264's screen-content mode ([`VideoContent::Screen`]).

use std::ffi::c_void;

use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::rbsp::{BitReader, decode_nal};
use openh264::OpenH264API;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSource;

use super::I420Frame;

/// What went wrong in the codec.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("H.264 encoder: {0}")]
    Encoder(String),
    #[error("corrupt or truncated H.264 data: {0}")]
    Corrupt(String),
    /// Frames that depend on a picture the decoder does not have; ask the sender for a
    /// keyframe.
    #[error("waiting for a keyframe")]
    NeedKeyframe,
}

/// What the pictures are, which the encoder tunes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoContent {
    /// A camera: natural pictures, motion everywhere.
    #[default]
    Camera,
    /// A shared screen: text and flat areas, mostly still (OpenH264's
    /// `SCREEN_CONTENT_REAL_TIME`).
    Screen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264EncoderConfig {
    pub bitrate_bps: u32,
    pub fps: u32,
    /// A keyframe every this many frames; `None` for keyframes only on request (the
    /// receiver asks with PLI after loss).
    pub keyframe_interval: Option<u32>,
    pub content: VideoContent,
}

impl Default for H264EncoderConfig {
    fn default() -> Self {
        H264EncoderConfig {
            bitrate_bps: 1_000_000,
            fps: 30,
            keyframe_interval: None,
            content: VideoContent::Camera,
        }
    }
}

/// One encoded frame: a whole access unit in Annex B form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    pub data: Vec<u8>,
    /// An IDR picture (with SPS and PPS before it): decodable on its own.
    pub keyframe: bool,
}

pub struct H264Encoder {
    encoder: Encoder,
    config: H264EncoderConfig,
    /// OpenH264 applies options only once it has seen the first frame's size.
    started: bool,
}

fn encoder_error(err: openh264::Error) -> CodecError {
    CodecError::Encoder(err.to_string())
}

fn build_encoder(config: H264EncoderConfig) -> Result<Encoder, CodecError> {
    let usage = match config.content {
        VideoContent::Camera => UsageType::CameraVideoRealTime,
        VideoContent::Screen => UsageType::ScreenContentRealTime,
    };
    let settings = EncoderConfig::new()
        .usage_type(usage)
        .profile(Profile::Baseline)
        .rate_control_mode(RateControlMode::Bitrate)
        .bitrate(BitRate::from_bps(config.bitrate_bps))
        .max_frame_rate(FrameRate::from_hz(config.fps as f32))
        .skip_frames(false)
        .complexity(Complexity::Low)
        .intra_frame_period(IntraFramePeriod::from_num_frames(
            config.keyframe_interval.unwrap_or(0),
        ))
        // One thread: the call engine runs encode, decode and audio side by side.
        .num_threads(1);
    let mut encoder =
        Encoder::with_api_config(OpenH264API::from_source(), settings).map_err(encoder_error)?;
    // OpenH264 logs a warning to stderr when it initialises without frame skipping (which
    // we want off). It initialises on the first frame; quiet it before that.
    let mut quiet = openh264_sys2::WELS_LOG_QUIET;
    // SAFETY: the trace level option takes a pointer to an int, valid for the call.
    #[allow(unsafe_code)]
    unsafe {
        encoder.raw_api().set_option(
            openh264_sys2::ENCODER_OPTION_TRACE_LEVEL,
            (&raw mut quiet).cast::<c_void>(),
        );
    }
    Ok(encoder)
}

impl H264Encoder {
    pub fn new(config: H264EncoderConfig) -> Result<H264Encoder, CodecError> {
        Ok(H264Encoder {
            encoder: build_encoder(config)?,
            config,
            started: false,
        })
    }

    pub fn config(&self) -> H264EncoderConfig {
        self.config
    }

    /// Encodes one frame. The picture size may change between calls: the encoder then
    /// restarts at the new size with a keyframe.
    pub fn encode(&mut self, frame: &I420Frame) -> Result<EncodedFrame, CodecError> {
        let bitstream = self.encoder.encode(frame).map_err(encoder_error)?;
        self.started = true;
        let keyframe = matches!(bitstream.frame_type(), FrameType::IDR);
        Ok(EncodedFrame {
            data: bitstream.to_vec(),
            keyframe,
        })
    }

    /// Makes the next frame an IDR keyframe (the answer to PLI or FIR).
    pub fn request_keyframe(&mut self) {
        self.encoder.force_intra_frame();
    }

    /// Changes the target bitrate, effective from the next frame.
    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), CodecError> {
        let previous = self.config.bitrate_bps;
        self.config.bitrate_bps = bitrate_bps;
        if !self.started {
            self.encoder = build_encoder(self.config)?;
            return Ok(());
        }
        let bitrate = i32::try_from(bitrate_bps)
            .map_err(|_| CodecError::Encoder("bitrate out of range".into()))?;
        // OpenH264 checks the layer's target against its ceiling at every step: raise the
        // ceiling before the target, lower it after.
        use openh264_sys2::{ENCODER_OPTION_BITRATE as TARGET, ENCODER_OPTION_MAX_BITRATE as MAX};
        use openh264_sys2::{SPATIAL_LAYER_0 as LAYER, SPATIAL_LAYER_ALL as ALL};
        let steps = if bitrate_bps >= previous {
            [(MAX, LAYER), (MAX, ALL), (TARGET, ALL)]
        } else {
            [(TARGET, ALL), (MAX, LAYER), (MAX, ALL)]
        };
        for (option, layer) in steps {
            let mut info = openh264_sys2::SBitrateInfo {
                iLayer: layer,
                iBitrate: bitrate,
            };
            // SAFETY: the encoder is initialised (it has encoded a frame), and both options
            // take a pointer to an SBitrateInfo that lives for the duration of the call.
            #[allow(unsafe_code)]
            let status = unsafe {
                self.encoder
                    .raw_api()
                    .set_option(option, (&raw mut info).cast::<c_void>())
            };
            if status != 0 {
                return Err(CodecError::Encoder(format!(
                    "setting the bitrate to {bitrate_bps} failed ({status})"
                )));
            }
        }
        Ok(())
    }

    /// Changes the frame rate the rate control plans for.
    pub fn set_fps(&mut self, fps: u32) -> Result<(), CodecError> {
        self.config.fps = fps.max(1);
        if !self.started {
            self.encoder = build_encoder(self.config)?;
            return Ok(());
        }
        let mut rate = self.config.fps as f32;
        // SAFETY: as in set_bitrate; the option takes a pointer to a float.
        #[allow(unsafe_code)]
        let status = unsafe {
            self.encoder.raw_api().set_option(
                openh264_sys2::ENCODER_OPTION_FRAME_RATE,
                (&raw mut rate).cast::<c_void>(),
            )
        };
        if status != 0 {
            return Err(CodecError::Encoder(format!(
                "setting the frame rate failed ({status})"
            )));
        }
        Ok(())
    }
}

/// NAL unit types in an Annex B access unit, in order.
pub fn nal_types(access_unit: &[u8]) -> Vec<u8> {
    nal_units(access_unit)
        .filter_map(|nal| Some(nal.first()? & 0x1f))
        .collect()
}

/// The NAL units of an Annex B access unit, each from its header byte on.
fn nal_units(access_unit: &[u8]) -> impl Iterator<Item = &[u8]> {
    openh264::nal_units(access_unit).filter_map(|nal| {
        // Each unit starts with its 00 00 01 start code (a 4-byte code leaves its first
        // zero on the previous unit).
        let start = nal.windows(3).position(|w| w == [0, 0, 1])? + 3;
        nal.get(start..).filter(|unit| !unit.is_empty())
    })
}

/// The most memory a stream's sequence parameters may ask the decoder to hold for its
/// pictures: (reference frames + 1) x the picture in I420. 1080p with 16 references or 4K
/// with 4 fits; OpenH264 itself takes about 1.7 times this.
const MAX_PICTURE_BUFFER_BYTES: u64 = 64 << 20;

/// Refuses a sequence parameter set (NAL type 7) whose pictures the decoder must not
/// allocate for: a 3 KB fake keyframe claiming 4096x2304 with 16 reference frames made
/// OpenH264 allocate about 410 MB.
fn check_sps(nal: &[u8]) -> Result<(), CodecError> {
    let corrupt = |what: String| CodecError::Corrupt(format!("sequence parameter set: {what}"));
    let rbsp = decode_nal(nal).map_err(|err| corrupt(err.to_string()))?;
    let sps = SeqParameterSet::from_bits(BitReader::new(&rbsp[..]))
        .map_err(|err| corrupt(format!("{err:?}")))?;
    let (width, height) = sps
        .pixel_dimensions()
        .map_err(|err| corrupt(format!("{err:?}")))?;
    super::frame::check_size(width, height).map_err(|err| corrupt(err.to_string()))?;
    let pictures = u64::from(sps.max_num_ref_frames) + 1;
    let bytes = pictures * u64::from(width) * u64::from(height) * 3 / 2;
    if bytes > MAX_PICTURE_BUFFER_BYTES {
        return Err(corrupt(format!(
            "{width}x{height} with {} reference frames needs {} MiB",
            sps.max_num_ref_frames,
            bytes >> 20
        )));
    }
    Ok(())
}

/// Whether an access unit holds an IDR picture (NAL type 5).
pub fn contains_idr(access_unit: &[u8]) -> bool {
    nal_types(access_unit).contains(&5)
}

/// A decoded picture, borrowed from the decoder until the next call.
pub struct DecodedFrame<'a> {
    yuv: DecodedYUV<'a>,
}

impl DecodedFrame<'_> {
    pub fn width(&self) -> u32 {
        self.yuv.dimensions().0 as u32
    }

    pub fn height(&self) -> u32 {
        self.yuv.dimensions().1 as u32
    }

    /// Writes RGBA for display into `rgba`, reusing its allocation. Opaque: alpha is 255.
    pub fn write_rgba(&self, rgba: &mut Vec<u8>) {
        rgba.resize(self.yuv.rgba8_len(), 0);
        self.yuv.write_rgba8(rgba);
    }

    /// What a test pattern in this picture says about itself, read in place.
    pub fn stamp(&self) -> Option<super::PatternStamp> {
        let (stride_y, _, _) = self.yuv.strides();
        super::read_stamp_from_luma(self.yuv.y(), stride_y, self.width(), self.height())
    }

    /// Copies the picture into `frame`, reusing its allocation when the size matches.
    #[allow(
        clippy::expect_used,
        reason = "the decoder only returns valid I420 sizes"
    )]
    pub fn copy_to(&self, frame: &mut I420Frame) {
        let (w, h) = (self.width(), self.height());
        if frame.width() != w || frame.height() != h {
            // `decode` only returns pictures of valid I420Frame sizes.
            *frame = I420Frame::black(w, h).expect("decoded pictures have valid sizes");
        }
        let (stride_y, stride_u, stride_v) = self.yuv.strides();
        let (y, u, v) = frame.planes_mut_slices();
        copy_plane(self.yuv.y(), stride_y, y, w as usize);
        copy_plane(self.yuv.u(), stride_u, u, w as usize / 2);
        copy_plane(self.yuv.v(), stride_v, v, w as usize / 2);
        frame.captured_at = std::time::Instant::now();
    }

    #[allow(
        clippy::expect_used,
        reason = "the decoder only returns valid I420 sizes"
    )]
    pub fn to_frame(&self) -> I420Frame {
        let mut frame = I420Frame::black(self.width(), self.height())
            .expect("decoded pictures have valid sizes");
        self.copy_to(&mut frame);
        frame
    }
}

#[allow(
    clippy::indexing_slicing,
    reason = "the decoder's strides cover its planes"
)]
fn copy_plane(src: &[u8], src_stride: usize, dst: &mut [u8], width: usize) {
    for (row, out) in dst.chunks_exact_mut(width).enumerate() {
        out.copy_from_slice(&src[row * src_stride..row * src_stride + width]);
    }
}

pub struct H264Decoder {
    decoder: Decoder,
    /// Set at start and after any error: P-frames are refused until an IDR arrives.
    need_keyframe: bool,
}

impl H264Decoder {
    pub fn new() -> Result<H264Decoder, CodecError> {
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(|err| CodecError::Corrupt(format!("cannot create decoder: {err}")))?;
        Ok(H264Decoder {
            decoder,
            need_keyframe: true,
        })
    }

    /// Decodes one access unit (Annex B). `Ok(None)` means no picture yet (parameter sets
    /// only). After an error every frame up to the next keyframe is refused with
    /// [`CodecError::NeedKeyframe`].
    pub fn decode(&mut self, access_unit: &[u8]) -> Result<Option<DecodedFrame<'_>>, CodecError> {
        let types = nal_types(access_unit);
        if types.is_empty() {
            self.need_keyframe = true;
            return Err(CodecError::Corrupt("no NAL units".into()));
        }
        if self.need_keyframe {
            if !types.contains(&5) {
                return Err(CodecError::NeedKeyframe);
            }
            self.need_keyframe = false;
        }
        if let Err(err) = nal_units(access_unit)
            .filter(|nal| nal.first().is_some_and(|byte| byte & 0x1f == 7))
            .try_for_each(check_sps)
        {
            self.need_keyframe = true;
            return Err(err);
        }
        match self.decoder.decode(access_unit) {
            Ok(Some(yuv)) => {
                // The sender chose the size: refuse what an I420Frame cannot hold (odd or
                // giant), so every DecodedFrame converts without failing.
                let (w, h) = yuv.dimensions();
                if let Err(err) = super::frame::check_size(w as u32, h as u32) {
                    self.need_keyframe = true;
                    return Err(CodecError::Corrupt(err.to_string()));
                }
                Ok(Some(DecodedFrame { yuv }))
            }
            Ok(None) => Ok(None),
            Err(err) => {
                self.need_keyframe = true;
                Err(CodecError::Corrupt(err.to_string()))
            }
        }
    }

    /// Whether the decoder is waiting for a keyframe (the caller should send PLI).
    pub fn needs_keyframe(&self) -> bool {
        self.need_keyframe
    }

    /// Something before the next frame was lost in transit: refuse frames until the next
    /// keyframe rather than show pictures built on missing references.
    pub fn expect_keyframe(&mut self) {
        self.need_keyframe = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::{PatternStamp, TestPattern, VideoFormat, psnr_y, read_stamp};

    fn pattern(width: u32, height: u32) -> TestPattern {
        TestPattern::new(VideoFormat {
            width,
            height,
            fps: 30,
        })
        .unwrap()
    }

    fn stamp(n: u32) -> PatternStamp {
        PatternStamp {
            frame_number: n,
            capture_time_us: 1_790_000_000_000_000 + u64::from(n) * 33_333,
        }
    }

    #[test]
    fn round_trip_at_vga_keeps_quality_and_stamps() {
        let pattern = pattern(640, 480);
        let mut encoder = H264Encoder::new(H264EncoderConfig {
            bitrate_bps: 2_000_000,
            ..Default::default()
        })
        .unwrap();
        let mut decoder = H264Decoder::new().unwrap();
        let mut worst_psnr = f64::INFINITY;
        for n in 0..60 {
            let original = pattern.render(stamp(n));
            let encoded = encoder.encode(&original).unwrap();
            assert_eq!(encoded.keyframe, n == 0, "frame {n}");
            let picture = decoder
                .decode(&encoded.data)
                .unwrap()
                .expect("one picture per frame");
            // Read in place, from the decoder's padded rows, as from a copy.
            assert_eq!(picture.stamp(), Some(stamp(n)), "frame {n}");
            let decoded = picture.to_frame();
            assert_eq!((decoded.width(), decoded.height()), (640, 480));
            assert_eq!(read_stamp(&decoded), Some(stamp(n)), "frame {n}");
            // Rate control needs a few frames to settle.
            if n >= 10 {
                worst_psnr = worst_psnr.min(psnr_y(&original, &decoded));
            }
        }
        assert!(worst_psnr >= 35.0, "PSNR {worst_psnr:.1} dB");
    }

    #[test]
    fn a_screen_in_screen_content_mode_round_trips_and_a_still_one_costs_little() {
        let pattern = pattern(640, 480);
        let mut encoder = H264Encoder::new(H264EncoderConfig {
            bitrate_bps: 1_500_000,
            fps: 15,
            content: VideoContent::Screen,
            ..Default::default()
        })
        .unwrap();
        let mut decoder = H264Decoder::new().unwrap();
        let original = pattern.render(stamp(0));
        let mut still_bytes = Vec::new();
        for n in 0..20 {
            let encoded = encoder.encode(&original).unwrap();
            assert_eq!(encoded.keyframe, n == 0, "frame {n}");
            let decoded = decoder
                .decode(&encoded.data)
                .unwrap()
                .expect("one picture per frame")
                .to_frame();
            assert_eq!((decoded.width(), decoded.height()), (640, 480));
            if n >= 10 {
                assert!(psnr_y(&original, &decoded) >= 35.0, "frame {n}");
                still_bytes.push(encoded.data.len());
            }
        }
        // Once settled, the same picture again is a few hundred bytes, not a new frame.
        let most = still_bytes.iter().max().copied().unwrap_or_default();
        assert!(most < 2_000, "still frames of {still_bytes:?} bytes");
    }

    /// SPS NAL units (baseline, level 5.2) for 4096x2304: with 16 reference frames, and
    /// with 1. Written with the bit writer of tests/hostile_peer.rs.
    const SPS_4K_16_REFS: [u8; 11] = [
        0x67, 0x42, 0xc0, 0x34, 0xd8, 0x44, 0x01, 0x00, 0x01, 0x21, 0x90,
    ];
    const SPS_4K_1_REF: [u8; 10] = [0x67, 0x42, 0xc0, 0x34, 0xda, 0x00, 0x40, 0x00, 0x48, 0x64];

    #[test]
    fn parameter_sets_that_would_take_too_much_memory_are_refused() {
        let err = check_sps(&SPS_4K_16_REFS).unwrap_err().to_string();
        assert!(err.contains("4096x2304 with 16 reference frames"), "{err}");
        check_sps(&SPS_4K_1_REF).unwrap();
        assert!(check_sps(&[0x67, 0x42]).is_err(), "truncated");

        // In a "keyframe", before OpenH264 sees it; the decoder then waits for a real one.
        let mut decoder = H264Decoder::new().unwrap();
        let mut fake = vec![0, 0, 0, 1];
        fake.extend_from_slice(&SPS_4K_16_REFS);
        fake.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x80]);
        assert!(matches!(decoder.decode(&fake), Err(CodecError::Corrupt(_))));
        assert!(decoder.needs_keyframe());
    }

    #[test]
    fn stream_is_constrained_baseline_annex_b() {
        let mut encoder = H264Encoder::new(H264EncoderConfig::default()).unwrap();
        let encoded = encoder.encode(&pattern(320, 240).render(stamp(0))).unwrap();
        assert_eq!(nal_types(&encoded.data)[..2], [7, 8], "SPS and PPS first");
        assert!(contains_idr(&encoded.data));
        let sps_at = encoded
            .data
            .windows(4)
            .position(|w| w == [0, 0, 1, 0x67])
            .unwrap()
            + 4;
        let (profile_idc, constraints) = (encoded.data[sps_at], encoded.data[sps_at + 1]);
        assert_eq!(profile_idc, 66, "Baseline");
        assert_ne!(
            constraints & 0x40,
            0,
            "constraint_set1_flag: Constrained Baseline"
        );
    }

    #[test]
    fn keyframe_on_demand_is_an_idr() {
        let pattern = pattern(320, 240);
        let mut encoder = H264Encoder::new(H264EncoderConfig::default()).unwrap();
        for n in 0..5 {
            let frame = encoder.encode(&pattern.render(stamp(n))).unwrap();
            assert_eq!(frame.keyframe, n == 0);
            assert_eq!(contains_idr(&frame.data), n == 0);
        }
        encoder.request_keyframe();
        let frame = encoder.encode(&pattern.render(stamp(5))).unwrap();
        assert!(frame.keyframe && contains_idr(&frame.data));
        let next = encoder.encode(&pattern.render(stamp(6))).unwrap();
        assert!(!next.keyframe && !contains_idr(&next.data));
    }

    #[test]
    fn a_bitrate_change_changes_the_output_size() {
        let pattern = pattern(640, 480);
        let mut encoder = H264Encoder::new(H264EncoderConfig {
            bitrate_bps: 2_500_000,
            ..Default::default()
        })
        .unwrap();
        let bytes_at = |encoder: &mut H264Encoder, from: u32| -> usize {
            (from..from + 60)
                .map(|n| {
                    encoder
                        .encode(&pattern.render(stamp(n)))
                        .unwrap()
                        .data
                        .len()
                })
                .skip(15)
                .sum()
        };
        let high = bytes_at(&mut encoder, 0);
        encoder.set_bitrate(250_000).unwrap();
        let low = bytes_at(&mut encoder, 60);
        assert!(
            low * 3 < high,
            "2.5 Mbit/s: {high} bytes, 250 kbit/s: {low} bytes"
        );
        // And back up, past the rate it started with.
        encoder.set_bitrate(4_000_000).unwrap();
        let higher = bytes_at(&mut encoder, 120);
        assert!(
            higher > high,
            "4 Mbit/s: {higher} bytes, 2.5 Mbit/s: {high} bytes"
        );
    }

    #[test]
    fn resolution_change_restarts_with_a_keyframe() {
        let mut encoder = H264Encoder::new(H264EncoderConfig::default()).unwrap();
        let mut decoder = H264Decoder::new().unwrap();
        for (n, (w, h)) in [(640, 480), (640, 480), (320, 240), (320, 240)]
            .into_iter()
            .enumerate()
        {
            let encoded = encoder
                .encode(&pattern(w, h).render(stamp(n as u32)))
                .unwrap();
            assert_eq!(encoded.keyframe, n % 2 == 0, "frame {n}");
            let decoded = decoder.decode(&encoded.data).unwrap().unwrap();
            assert_eq!((decoded.width(), decoded.height()), (w, h));
        }
    }

    #[test]
    fn corrupt_input_is_an_error_and_decoding_resumes_at_the_next_keyframe() {
        let pattern = pattern(320, 240);
        let mut encoder = H264Encoder::new(H264EncoderConfig::default()).unwrap();
        let frames: Vec<EncodedFrame> = (0..6)
            .map(|n| encoder.encode(&pattern.render(stamp(n))).unwrap())
            .collect();
        encoder.request_keyframe();
        let keyframe = encoder.encode(&pattern.render(stamp(6))).unwrap();

        let mut decoder = H264Decoder::new().unwrap();
        // A P-frame first: nothing to predict from.
        assert!(matches!(
            decoder.decode(&frames[1].data),
            Err(CodecError::NeedKeyframe)
        ));
        assert!(decoder.decode(&frames[0].data).unwrap().is_some());
        // Garbage and truncation.
        assert!(matches!(
            decoder.decode(b"hello"),
            Err(CodecError::Corrupt(_))
        ));
        assert!(decoder.needs_keyframe());
        assert!(matches!(
            decoder.decode(&frames[2].data),
            Err(CodecError::NeedKeyframe)
        ));
        let truncated = &keyframe.data[..keyframe.data.len() / 3];
        assert!(decoder.decode(truncated).is_err());
        // The next whole keyframe brings it back.
        let picture = decoder.decode(&keyframe.data).unwrap().unwrap().to_frame();
        assert_eq!(read_stamp(&picture), Some(stamp(6)));
        assert!(!decoder.needs_keyframe());
    }

    #[test]
    fn rgba_output_reuses_the_buffer() {
        let mut encoder = H264Encoder::new(H264EncoderConfig::default()).unwrap();
        let mut decoder = H264Decoder::new().unwrap();
        let encoded = encoder.encode(&pattern(320, 240).render(stamp(0))).unwrap();
        let mut rgba = Vec::with_capacity(320 * 240 * 4);
        let capacity_before = rgba.capacity();
        decoder
            .decode(&encoded.data)
            .unwrap()
            .unwrap()
            .write_rgba(&mut rgba);
        assert_eq!(rgba.len(), 320 * 240 * 4);
        assert_eq!(rgba.capacity(), capacity_before);
        assert!(rgba.chunks(4).all(|px| px[3] == 255));
    }
}
