//! Video: frames, the sources that produce them (camera, shared screen, test pattern, Y4M
//! file), the capture thread, and H.264.

mod camera;
mod capture;
mod frame;
mod h264;
mod pattern;
mod screen;
mod y4m_file;

use std::path::PathBuf;

pub use camera::{
    CameraInfo, CameraMode, CameraSelector, CameraSource, PixelFormat, choose_mode, decode_mjpeg,
    list_cameras,
};
pub use capture::{FrameSlot, VideoCapture};
pub use frame::{I420Frame, i420_len, psnr_y};
pub use h264::{
    CodecError, DecodedFrame, EncodedFrame, H264Decoder, H264Encoder, H264EncoderConfig,
    VideoContent, contains_idr, nal_types,
};
pub use pattern::{PatternStamp, TestPattern, pattern_psnr, read_stamp, read_stamp_from_luma};
pub use screen::{MAX_SCREEN_SIZE, ScreenInfo, ScreenSelector, ScreenSource, list_screens};
pub use y4m_file::Y4mSource;

/// Size and rate of a video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoFormat {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl std::fmt::Display for VideoFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}@{}", self.width, self.height, self.fps)
    }
}

/// Something that produces video frames at its own pace: a camera, a test pattern, a file.
///
/// Not `Send`: cameras are tied to the thread that opened them, so [`VideoCapture`] opens
/// its source on its own thread.
pub trait VideoSource {
    /// What this is, for people: "Integrated Camera", "test pattern".
    fn name(&self) -> String;

    fn format(&self) -> VideoFormat;

    /// Blocks until the next frame is due (at most about one frame interval) and returns
    /// it.
    fn next_frame(&mut self) -> Result<I420Frame, VideoError>;
}

/// What can go wrong with a video source, in words a user understands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VideoError {
    #[error("no camera found")]
    NoCamera,
    #[error("camera {0:?} not found")]
    CameraNotFound(String),
    #[error("camera {0} is in use by another program")]
    CameraBusy(String),
    #[error("camera {camera} cannot deliver {requested}: {reason}")]
    UnsupportedFormat {
        camera: String,
        requested: String,
        reason: String,
    },
    #[error("camera {0} was disconnected")]
    CameraLost(String),
    #[error("camera error: {0}")]
    Camera(String),
    #[error("unsupported picture size {width}x{height} (width and height must be even)")]
    BadSize { width: u32, height: u32 },
    #[error("bad video frame: {0}")]
    BadFrame(String),
    #[error("cannot read {path}: {reason}")]
    File { path: PathBuf, reason: String },
    /// No screen can be shared here: no X display, or a Wayland session.
    #[error("screen sharing is not available: {0}")]
    ScreenUnavailable(String),
    /// The display has no monitor with this index (counted from 0; said from 1).
    #[error("screen {} not found", .0 + 1)]
    ScreenNotFound(usize),
    /// The display or the monitor went away while it was being shared.
    #[error("screen sharing stopped: {0}")]
    ScreenLost(String),
    #[error("screen capture error: {0}")]
    Screen(String),
}
