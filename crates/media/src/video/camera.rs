//! Cameras, through nokhwa (V4L2 on Linux, AVFoundation, Media Foundation).
//!
//! Listing gives human-readable names and the modes each camera offers. Opening picks the
//! mode closest to the requested size and rate, preferring raw YUYV or NV12 over MJPEG (no
//! decoding cost, no compression artefacts) when both can deliver the rate. Every frame
//! comes out as I420.

use nokhwa::Camera;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};

use super::{I420Frame, VideoError, VideoFormat, VideoSource};

/// A camera as listed for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    /// What [`CameraSelector::Index`] takes.
    pub index: u32,
    pub name: String,
    pub description: String,
    /// Modes the camera offers; empty when it could not be asked (in use, say).
    pub modes: Vec<CameraMode>,
}

/// One way a camera can deliver frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraMode {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub pixels: PixelFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    Yuyv,
    Nv12,
    Mjpeg,
    /// Formats Confab does not convert (grey, raw RGB).
    Other,
}

impl PixelFormat {
    fn from_nokhwa(format: FrameFormat) -> PixelFormat {
        match format {
            FrameFormat::YUYV => PixelFormat::Yuyv,
            FrameFormat::NV12 => PixelFormat::Nv12,
            FrameFormat::MJPEG => PixelFormat::Mjpeg,
            _ => PixelFormat::Other,
        }
    }

    fn to_nokhwa(self) -> Option<FrameFormat> {
        match self {
            PixelFormat::Yuyv => Some(FrameFormat::YUYV),
            PixelFormat::Nv12 => Some(FrameFormat::NV12),
            PixelFormat::Mjpeg => Some(FrameFormat::MJPEG),
            PixelFormat::Other => None,
        }
    }
}

impl CameraMode {
    fn from_nokhwa(format: &CameraFormat) -> CameraMode {
        CameraMode {
            width: format.width(),
            height: format.height(),
            fps: format.frame_rate(),
            pixels: PixelFormat::from_nokhwa(format.format()),
        }
    }
}

/// Which camera to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraSelector {
    /// The first one.
    Default,
    Index(u32),
    /// By name, case-insensitively; a unique part of the name is enough.
    Name(String),
}

/// Formats nokhwa may hand us; anything else cannot be converted to I420.
const CONVERTIBLE: &[FrameFormat] = &[FrameFormat::YUYV, FrameFormat::NV12, FrameFormat::MJPEG];

/// The cameras on this machine. No camera is an empty list, not an error.
pub fn list_cameras() -> Result<Vec<CameraInfo>, VideoError> {
    let found = match nokhwa::query(ApiBackend::Auto) {
        Ok(found) => found,
        // Without a video subsystem at all (no /dev/video*, no V4L2), there are no cameras.
        Err(err) if is_absent(&err.to_string()) => return Ok(Vec::new()),
        Err(err) => return Err(VideoError::Camera(err.to_string())),
    };
    let mut cameras = Vec::new();
    for info in found {
        let CameraIndex::Index(index) = *info.index() else {
            continue;
        };
        let modes = Camera::new(
            CameraIndex::Index(index),
            RequestedFormat::with_formats(RequestedFormatType::None, CONVERTIBLE),
        )
        .and_then(|mut camera| camera.compatible_camera_formats())
        .map(|formats| formats.iter().map(CameraMode::from_nokhwa).collect())
        .unwrap_or_default();
        cameras.push(CameraInfo {
            index,
            name: info.human_name(),
            description: info.description().to_owned(),
            modes,
        });
    }
    Ok(cameras)
}

/// Picks the mode closest to `wanted`: nearest size first, then one that reaches the
/// frame rate, then raw pixels over MJPEG, then the rate nearest above.
pub fn choose_mode(modes: &[CameraMode], wanted: VideoFormat) -> Option<CameraMode> {
    modes
        .iter()
        .filter(|m| m.pixels != PixelFormat::Other && m.width % 2 == 0 && m.height % 2 == 0)
        .min_by_key(|m| {
            let size_distance = m.width.abs_diff(wanted.width) + m.height.abs_diff(wanted.height);
            let fps_shortfall = wanted.fps.saturating_sub(m.fps);
            let compressed = m.pixels == PixelFormat::Mjpeg;
            let fps_excess = m.fps.saturating_sub(wanted.fps);
            (size_distance, fps_shortfall, compressed, fps_excess)
        })
        .copied()
}

/// An open camera, streaming.
pub struct CameraSource {
    camera: Camera,
    name: String,
    mode: CameraMode,
}

impl CameraSource {
    /// Opens a camera at the mode closest to `wanted`. Call this on the thread that will
    /// read it (see [`super::VideoCapture::start`]).
    pub fn open(
        selector: &CameraSelector,
        wanted: VideoFormat,
    ) -> Result<CameraSource, VideoError> {
        let cameras = list_cameras()?;
        let info = match selector {
            _ if cameras.is_empty() => return Err(VideoError::NoCamera),
            CameraSelector::Default => cameras.first().ok_or(VideoError::NoCamera)?,
            CameraSelector::Index(i) => cameras
                .iter()
                .find(|c| c.index == *i)
                .ok_or_else(|| VideoError::CameraNotFound(format!("#{i}")))?,
            CameraSelector::Name(name) => {
                let wanted_name = name.to_lowercase();
                cameras
                    .iter()
                    .find(|c| c.name.to_lowercase() == wanted_name)
                    .or_else(|| {
                        cameras
                            .iter()
                            .find(|c| c.name.to_lowercase().contains(&wanted_name))
                    })
                    .ok_or_else(|| VideoError::CameraNotFound(name.clone()))?
            }
        };
        let name = info.name.clone();
        let mode =
            choose_mode(&info.modes, wanted).ok_or_else(|| VideoError::UnsupportedFormat {
                camera: name.clone(),
                requested: wanted.to_string(),
                reason: "it offers no YUYV, NV12 or MJPEG mode".into(),
            })?;
        let format = CameraFormat::new_from(
            mode.width,
            mode.height,
            mode.pixels.to_nokhwa().unwrap_or(FrameFormat::MJPEG),
            mode.fps,
        );
        let requested =
            RequestedFormat::with_formats(RequestedFormatType::Exact(format), CONVERTIBLE);
        let mut camera = Camera::new(CameraIndex::Index(info.index), requested)
            .map_err(|err| open_error(&name, &err.to_string()))?;
        camera
            .open_stream()
            .map_err(|err| open_error(&name, &err.to_string()))?;
        Ok(CameraSource { camera, name, mode })
    }

    pub fn mode(&self) -> CameraMode {
        self.mode
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        // Stop streaming now so the camera's light goes off with the source.
        let _ = self.camera.stop_stream();
    }
}

impl VideoSource for CameraSource {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn format(&self) -> VideoFormat {
        VideoFormat {
            width: self.mode.width,
            height: self.mode.height,
            fps: self.mode.fps,
        }
    }

    fn next_frame(&mut self) -> Result<I420Frame, VideoError> {
        let buffer = self.camera.frame().map_err(|err| {
            let text = err.to_string();
            if is_absent(&text) {
                VideoError::CameraLost(self.name.clone())
            } else {
                VideoError::Camera(text)
            }
        })?;
        let resolution = buffer.resolution();
        let (w, h) = (resolution.width(), resolution.height());
        let bytes = buffer.buffer();
        match buffer.source_frame_format() {
            FrameFormat::YUYV => I420Frame::from_yuyv(w, h, bytes),
            FrameFormat::NV12 => I420Frame::from_nv12(w, h, bytes),
            FrameFormat::MJPEG => decode_mjpeg(bytes),
            other => Err(VideoError::BadFrame(format!(
                "camera delivered {other}, which Confab cannot convert"
            ))),
        }
    }
}

/// Decodes one MJPEG frame (a JPEG picture) to I420.
pub fn decode_mjpeg(jpeg: &[u8]) -> Result<I420Frame, VideoError> {
    use zune_jpeg::JpegDecoder;
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;

    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGBA);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
    let rgba = decoder
        .decode()
        .map_err(|err| VideoError::BadFrame(format!("corrupt MJPEG frame: {err}")))?;
    let (w, h) = decoder
        .dimensions()
        .ok_or_else(|| VideoError::BadFrame("MJPEG frame without dimensions".into()))?;
    let (w, h) = (w as u32, h as u32);
    if w % 2 != 0 || h % 2 != 0 {
        return Err(VideoError::BadSize {
            width: w,
            height: h,
        });
    }
    I420Frame::from_rgba(w, h, &rgba)
}

/// Whether an error says the device (or the whole video subsystem) does not exist.
fn is_absent(text: &str) -> bool {
    let text = text.to_lowercase();
    text.contains("no such file") || text.contains("no such device") || text.contains("not found")
}

fn open_error(camera: &str, text: &str) -> VideoError {
    let lower = text.to_lowercase();
    if lower.contains("busy") || lower.contains("in use") {
        VideoError::CameraBusy(camera.to_owned())
    } else if is_absent(text) {
        VideoError::CameraLost(camera.to_owned())
    } else {
        VideoError::Camera(format!("{camera}: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(width: u32, height: u32, fps: u32, pixels: PixelFormat) -> CameraMode {
        CameraMode {
            width,
            height,
            fps,
            pixels,
        }
    }

    const HD30: VideoFormat = VideoFormat {
        width: 1280,
        height: 720,
        fps: 30,
    };

    #[test]
    fn raw_is_preferred_when_it_keeps_the_rate() {
        let modes = [
            mode(1280, 720, 30, PixelFormat::Mjpeg),
            mode(1280, 720, 30, PixelFormat::Yuyv),
            mode(640, 480, 30, PixelFormat::Nv12),
        ];
        assert_eq!(choose_mode(&modes, HD30), Some(modes[1]));
    }

    #[test]
    fn mjpeg_wins_when_raw_cannot_reach_the_rate() {
        // The common webcam case: YUYV at 720p only manages 10 fps over USB 2.
        let modes = [
            mode(1280, 720, 10, PixelFormat::Yuyv),
            mode(1280, 720, 30, PixelFormat::Mjpeg),
        ];
        assert_eq!(choose_mode(&modes, HD30), Some(modes[1]));
    }

    #[test]
    fn nearest_size_then_lowest_sufficient_rate() {
        let modes = [
            mode(1920, 1080, 30, PixelFormat::Yuyv),
            mode(640, 480, 60, PixelFormat::Yuyv),
            mode(640, 480, 30, PixelFormat::Yuyv),
            mode(320, 240, 30, PixelFormat::Other),
        ];
        let vga = VideoFormat {
            width: 640,
            height: 480,
            fps: 30,
        };
        assert_eq!(choose_mode(&modes, vga), Some(modes[2]));
        assert_eq!(choose_mode(&modes[3..], vga), None);
    }

    /// These machines have no camera at all (no V4L2 devices): listing says so without an
    /// error, and opening is a clear "no camera" error, never a panic.
    #[test]
    fn no_camera_is_a_clear_error() {
        let cameras = list_cameras().unwrap();
        if !cameras.is_empty() {
            eprintln!("skipping: this machine has cameras: {cameras:?}");
            return;
        }
        for selector in [
            CameraSelector::Default,
            CameraSelector::Index(0),
            CameraSelector::Name("FaceTime".into()),
        ] {
            let err = CameraSource::open(&selector, HD30).err().unwrap();
            assert!(matches!(err, VideoError::NoCamera), "{err}");
            assert_eq!(err.to_string(), "no camera found");
        }
    }

    #[test]
    fn corrupt_mjpeg_is_an_error() {
        assert!(matches!(
            decode_mjpeg(b"\xff\xd8 not really"),
            Err(VideoError::BadFrame(_))
        ));
        assert!(decode_mjpeg(&[]).is_err());
    }
}
