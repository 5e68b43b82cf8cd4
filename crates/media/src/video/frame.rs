//! Video frames in I420 (planar YUV 4:2:0, BT.601 limited range) and conversions to and
//! from the formats around them: RGBA for display, YUYV and NV12 from cameras.

// Plane arithmetic: a frame's planes are sized from its dimensions when it is made
// (`I420Frame::new` refuses anything else), and the indices here derive from the same.
#![allow(clippy::indexing_slicing)]

use std::time::Instant;

use yuvutils_rs::{
    BufferStoreMut, YuvConversionMode, YuvPackedImage, YuvPlanarImage, YuvPlanarImageMut, YuvRange,
    YuvStandardMatrix,
};

use super::VideoError;

const RANGE: YuvRange = YuvRange::Limited;
const MATRIX: YuvStandardMatrix = YuvStandardMatrix::Bt601;

/// One picture: Y plane (width x height) then U and V planes (each width/2 x height/2),
/// tightly packed. Width and height are even.
#[derive(Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: u32,
    height: u32,
    data: Vec<u8>,
    /// When the picture was taken, on this machine's monotonic clock.
    pub captured_at: Instant,
}

impl std::fmt::Debug for I420Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "I420Frame({}x{})", self.width, self.height)
    }
}

/// Bytes of an I420 picture of this size.
pub fn i420_len(width: u32, height: u32) -> usize {
    let (w, h) = (width as usize, height as usize);
    w * h + 2 * (w / 2) * (h / 2)
}

/// Each `dst` pixel (rows `dst_w` wide) is the rounded mean of the 2x2 block of `src`
/// (rows `src_w` wide) at twice its position.
fn halve_plane(src: &[u8], src_w: usize, dst: &mut [u8], dst_w: usize) {
    for (dst_row, src_rows) in dst.chunks_exact_mut(dst_w).zip(src.chunks_exact(2 * src_w)) {
        let (top, bottom) = src_rows.split_at(src_w);
        let pairs = top.chunks_exact(2).zip(bottom.chunks_exact(2));
        for (pixel, (above, below)) in dst_row.iter_mut().zip(pairs) {
            let sum: u16 = above.iter().chain(below).map(|&p| u16::from(p)).sum();
            *pixel = ((sum + 2) / 4) as u8;
        }
    }
}

pub(crate) fn check_size(width: u32, height: u32) -> Result<(), VideoError> {
    if width == 0
        || height == 0
        || !width.is_multiple_of(2)
        || !height.is_multiple_of(2)
        || width > 7680
        || height > 4320
    {
        return Err(VideoError::BadSize { width, height });
    }
    Ok(())
}

impl I420Frame {
    /// A black frame.
    pub fn black(width: u32, height: u32) -> Result<I420Frame, VideoError> {
        check_size(width, height)?;
        let luma = width as usize * height as usize;
        let mut data = vec![128u8; i420_len(width, height)];
        data[..luma].fill(16);
        Ok(I420Frame {
            width,
            height,
            data,
            captured_at: Instant::now(),
        })
    }

    /// Wraps I420 bytes (Y, U, V planes, tightly packed).
    pub fn from_bytes(width: u32, height: u32, data: Vec<u8>) -> Result<I420Frame, VideoError> {
        check_size(width, height)?;
        let expected = i420_len(width, height);
        if data.len() != expected {
            return Err(VideoError::BadFrame(format!(
                "{width}x{height} I420 needs {expected} bytes, got {}",
                data.len()
            )));
        }
        Ok(I420Frame {
            width,
            height,
            data,
            captured_at: Instant::now(),
        })
    }

    /// Converts packed YUYV 4:2:2 (the usual raw webcam format).
    pub fn from_yuyv(width: u32, height: u32, yuyv: &[u8]) -> Result<I420Frame, VideoError> {
        let mut frame = I420Frame::black(width, height)?;
        let packed = YuvPackedImage {
            yuy: yuyv,
            yuy_stride: width * 2,
            width,
            height,
        };
        let mut planar = frame.planes_mut();
        yuvutils_rs::yuyv422_to_yuv420(&mut planar, &packed).map_err(convert_error)?;
        Ok(frame)
    }

    /// Converts NV12 (Y plane, then interleaved UV at half resolution).
    pub fn from_nv12(width: u32, height: u32, nv12: &[u8]) -> Result<I420Frame, VideoError> {
        let mut frame = I420Frame::black(width, height)?;
        if nv12.len() < frame.data.len() {
            return Err(VideoError::BadFrame(format!(
                "{width}x{height} NV12 needs {} bytes, got {}",
                frame.data.len(),
                nv12.len()
            )));
        }
        let luma = width as usize * height as usize;
        let (y, rest) = frame.data.split_at_mut(luma);
        y.copy_from_slice(&nv12[..luma]);
        let (u, v) = rest.split_at_mut(rest.len() / 2);
        for (i, uv) in nv12[luma..luma + 2 * u.len()].chunks_exact(2).enumerate() {
            u[i] = uv[0];
            v[i] = uv[1];
        }
        Ok(frame)
    }

    /// Converts RGBA (4 bytes a pixel, rows tightly packed).
    pub fn from_rgba(width: u32, height: u32, rgba: &[u8]) -> Result<I420Frame, VideoError> {
        let mut frame = I420Frame::black(width, height)?;
        let mut planar = frame.planes_mut();
        yuvutils_rs::rgba_to_yuv420(
            &mut planar,
            rgba,
            width * 4,
            RANGE,
            MATRIX,
            YuvConversionMode::Balanced,
        )
        .map_err(convert_error)?;
        Ok(frame)
    }

    /// Converts BGRX (4 bytes a pixel: blue, green, red, then a byte that is ignored; what
    /// a 24-bit X display holds), `stride` bytes a row, into this frame at its own size,
    /// reusing its buffer. `bgrx` may be wider or taller than the frame: the frame takes
    /// its top-left corner.
    pub fn set_from_bgrx(&mut self, bgrx: &[u8], stride: u32) -> Result<(), VideoError> {
        let rows = (self.height as usize).saturating_sub(1) * stride as usize;
        let needed = rows + self.width as usize * 4;
        if stride < self.width * 4 || bgrx.len() < needed {
            return Err(VideoError::BadFrame(format!(
                "{}x{} BGRX with {stride} bytes a row needs {needed} bytes, got {}",
                self.width,
                self.height,
                bgrx.len()
            )));
        }
        let mut planar = self.planes_mut();
        yuvutils_rs::bgra_to_yuv420(
            &mut planar,
            bgrx,
            stride,
            RANGE,
            MATRIX,
            YuvConversionMode::Balanced,
        )
        .map_err(convert_error)
    }

    /// Writes this frame as RGBA into `rgba`, resizing it as needed (its allocation is
    /// reused from frame to frame). Opaque: alpha is 255.
    pub fn write_rgba(&self, rgba: &mut Vec<u8>) -> Result<(), VideoError> {
        rgba.resize(self.width as usize * self.height as usize * 4, 0);
        let planar = self.planes();
        yuvutils_rs::yuv420_to_rgba(&planar, rgba, self.width * 4, RANGE, MATRIX)
            .map_err(convert_error)
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn y(&self) -> &[u8] {
        &self.data[..self.luma_len()]
    }

    pub fn u(&self) -> &[u8] {
        let start = self.luma_len();
        &self.data[start..start + self.chroma_len()]
    }

    pub fn v(&self) -> &[u8] {
        let start = self.luma_len() + self.chroma_len();
        &self.data[start..]
    }

    /// This picture at half the width and height (each rounded down to even), into
    /// `out`, whose buffer is reused: each output pixel the mean of four. For sending a
    /// smaller picture when the path is slow.
    pub fn halve_into(&self, out: &mut I420Frame) -> Result<(), VideoError> {
        let (width, height) = ((self.width / 2) & !1, (self.height / 2) & !1);
        check_size(width, height)?;
        out.width = width;
        out.height = height;
        out.data.resize(i420_len(width, height), 0);
        out.captured_at = self.captured_at;
        let (in_w, in_cw) = (self.width as usize, self.width as usize / 2);
        let (out_w, out_cw) = (width as usize, width as usize / 2);
        let (y, u, v) = out.planes_mut_slices();
        halve_plane(self.y(), in_w, y, out_w);
        halve_plane(self.u(), in_cw, u, out_cw);
        halve_plane(self.v(), in_cw, v, out_cw);
        Ok(())
    }

    /// The three planes, mutable.
    pub fn planes_mut_slices(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let (luma, chroma) = (self.luma_len(), self.chroma_len());
        let (y, rest) = self.data.split_at_mut(luma);
        let (u, v) = rest.split_at_mut(chroma);
        (y, u, v)
    }

    fn luma_len(&self) -> usize {
        self.width as usize * self.height as usize
    }

    fn chroma_len(&self) -> usize {
        (self.width as usize / 2) * (self.height as usize / 2)
    }

    fn planes(&self) -> YuvPlanarImage<'_, u8> {
        YuvPlanarImage {
            y_plane: self.y(),
            y_stride: self.width,
            u_plane: self.u(),
            u_stride: self.width / 2,
            v_plane: self.v(),
            v_stride: self.width / 2,
            width: self.width,
            height: self.height,
        }
    }

    fn planes_mut(&mut self) -> YuvPlanarImageMut<'_, u8> {
        let (width, height) = (self.width, self.height);
        let (y, u, v) = self.planes_mut_slices();
        YuvPlanarImageMut {
            y_plane: BufferStoreMut::Borrowed(y),
            y_stride: width,
            u_plane: BufferStoreMut::Borrowed(u),
            u_stride: width / 2,
            v_plane: BufferStoreMut::Borrowed(v),
            v_stride: width / 2,
            width,
            height,
        }
    }
}

impl openh264::formats::YUVSource for I420Frame {
    fn dimensions(&self) -> (usize, usize) {
        (self.width as usize, self.height as usize)
    }

    fn strides(&self) -> (usize, usize, usize) {
        let w = self.width as usize;
        (w, w / 2, w / 2)
    }

    fn y(&self) -> &[u8] {
        I420Frame::y(self)
    }

    fn u(&self) -> &[u8] {
        I420Frame::u(self)
    }

    fn v(&self) -> &[u8] {
        I420Frame::v(self)
    }
}

fn convert_error(err: yuvutils_rs::YuvError) -> VideoError {
    VideoError::BadFrame(format!("pixel format conversion failed: {err}"))
}

/// Peak signal-to-noise ratio of the luma planes of two same-sized frames, in dB.
pub fn psnr_y(a: &I420Frame, b: &I420Frame) -> f64 {
    let mse = a
        .y()
        .iter()
        .zip(b.y())
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum::<f64>()
        / a.y().len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_averages_blocks_and_keeps_the_test_pattern_readable() {
        let mut frame = I420Frame::black(6, 4).unwrap();
        {
            let (y, u, _) = frame.planes_mut_slices();
            y.copy_from_slice(&[
                0, 10, 100, 100, 7, 7, //
                20, 30, 100, 101, 7, 7, //
                1, 1, 1, 1, 1, 1, //
                1, 1, 1, 1, 1, 1,
            ]);
            u.copy_from_slice(&[40, 60, 80, 50, 70, 90]);
        }
        let mut half = I420Frame::black(2, 2).unwrap();
        frame.halve_into(&mut half).unwrap();
        // 6x4 -> 3x2 would be odd: 2x2.
        assert_eq!((half.width(), half.height()), (2, 2));
        assert_eq!(half.y(), &[15, 100, 1, 1]);
        assert_eq!(half.u(), &[55]);
        assert_eq!(half.captured_at, frame.captured_at);

        // A VGA test pattern, halved, still carries its stamp.
        use crate::video::{TestPattern, VideoFormat, VideoSource, read_stamp};
        let format = VideoFormat {
            width: 640,
            height: 480,
            fps: 30,
        };
        let mut pattern = TestPattern::new(format).unwrap();
        let vga = pattern.next_frame().unwrap();
        vga.halve_into(&mut half).unwrap();
        assert_eq!((half.width(), half.height()), (320, 240));
        assert_eq!(read_stamp(&half), read_stamp(&vga));
        assert!(read_stamp(&half).is_some());
        // And halved again, at 160x120.
        let mut quarter = I420Frame::black(2, 2).unwrap();
        half.halve_into(&mut quarter).unwrap();
        assert_eq!((quarter.width(), quarter.height()), (160, 120));
        assert_eq!(read_stamp(&quarter), read_stamp(&vga));
    }

    #[test]
    fn sizes_are_checked() {
        assert!(I420Frame::black(640, 480).is_ok());
        assert!(matches!(
            I420Frame::black(641, 480),
            Err(VideoError::BadSize { .. })
        ));
        assert!(matches!(
            I420Frame::black(0, 480),
            Err(VideoError::BadSize { .. })
        ));
        assert!(I420Frame::from_bytes(4, 4, vec![0; 23]).is_err());
        assert!(I420Frame::from_bytes(4, 4, vec![0; 24]).is_ok());
        assert!(I420Frame::from_nv12(4, 4, &[0; 10]).is_err());
    }

    #[test]
    fn rgba_round_trip_keeps_colours() {
        let (w, h) = (64, 32);
        let mut rgba = Vec::new();
        for y in 0..h {
            for x in 0..w {
                rgba.extend_from_slice(&[(x * 4) as u8, (y * 8) as u8, 200, 255]);
            }
        }
        let frame = I420Frame::from_rgba(w, h, &rgba).unwrap();
        let mut back = Vec::new();
        frame.write_rgba(&mut back).unwrap();
        assert_eq!(back.len(), rgba.len());
        // Chroma is subsampled, so allow small differences.
        let max_diff = rgba
            .iter()
            .zip(&back)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(max_diff <= 12, "max channel difference {max_diff}");
    }

    #[test]
    fn yuyv_and_nv12_convert_to_the_same_picture() {
        let (w, h) = (8u32, 4u32);
        // Y ramps, U = 90, V = 160 everywhere.
        let luma: Vec<u8> = (0..w * h).map(|i| 16 + i as u8 * 3).collect();
        let mut yuyv = Vec::new();
        for pair in luma.chunks(2) {
            yuyv.extend_from_slice(&[pair[0], 90, pair[1], 160]);
        }
        let mut nv12 = luma.clone();
        for _ in 0..(w / 2) * (h / 2) {
            nv12.extend_from_slice(&[90, 160]);
        }
        let a = I420Frame::from_yuyv(w, h, &yuyv).unwrap();
        let b = I420Frame::from_nv12(w, h, &nv12).unwrap();
        assert_eq!(a.y(), luma.as_slice());
        assert_eq!(a.y(), b.y());
        assert!(a.u().iter().all(|&u| u == 90) && b.u().iter().all(|&u| u == 90));
        assert!(a.v().iter().all(|&v| v == 160) && b.v().iter().all(|&v| v == 160));
    }

    #[test]
    fn bgrx_converts_like_rgba_and_may_be_cropped_from_a_wider_picture() {
        let (w, h) = (64u32, 32u32);
        let mut rgba = Vec::new();
        for y in 0..h {
            for x in 0..w {
                rgba.extend_from_slice(&[(x * 4) as u8, (y * 8) as u8, 200, 255]);
            }
        }
        let expected = I420Frame::from_rgba(w, h, &rgba).unwrap();
        // The same picture as BGRX, two pixels wider (ignored) and a row taller.
        let stride = (w + 2) * 4;
        let mut bgrx = vec![0xAB; (stride * (h + 1)) as usize];
        for (row, out) in rgba
            .chunks_exact(w as usize * 4)
            .zip(bgrx.chunks_exact_mut(stride as usize))
        {
            for (px, o) in row.chunks_exact(4).zip(out.chunks_exact_mut(4)) {
                o.copy_from_slice(&[px[2], px[1], px[0], 0]);
            }
        }
        let mut frame = I420Frame::black(w, h).unwrap();
        frame.set_from_bgrx(&bgrx, stride).unwrap();
        assert_eq!(frame.data(), expected.data());
        assert!(frame.set_from_bgrx(&bgrx[..100], stride).is_err());
        assert!(frame.set_from_bgrx(&bgrx, w * 4 - 4).is_err());
    }

    #[test]
    fn psnr_of_identical_frames_is_infinite() {
        let a = I420Frame::black(16, 16).unwrap();
        assert_eq!(psnr_y(&a, &a), f64::INFINITY);
        let mut b = a.clone();
        b.planes_mut_slices().0[0] = 255;
        assert!(psnr_y(&a, &b).is_finite());
    }
}
