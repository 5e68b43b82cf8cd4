//! A synthetic test pattern that carries its frame number and capture time in its pixels.
//!
//! The pattern has moving content (a scrolling colour gradient and a bouncing box) so the
//! encoder has real work, and a data band across the top: 40 cells per row, each a solid
//! square of black or white luma standing for one bit of the frame number (32 bits), the
//! capture time in microseconds since the Unix epoch (64 bits) and a CRC-16 of both. Cells
//! are at least 8x8 pixels and flat, so they survive H.264 compression; a receiver reads
//! them back from the decoded image alone ([`read_stamp`]) to detect drops and freezes and
//! to measure latency.

// Pixel arithmetic: `TestPattern::new` checks the size, and every index here derives from
// it (or, in `read_stamp_from_luma`, from the dimensions it checks the plane against).
#![allow(clippy::indexing_slicing, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use super::{I420Frame, VideoError, VideoFormat, VideoSource};
use crate::pacer::Pacer;

const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_SDLC);
const CELLS_PER_ROW: u32 = 40;
const BITS: usize = 32 + 64 + 16;
const LUMA_ZERO: u8 = 16;
const LUMA_ONE: u8 = 235;
/// The background gradient's luma repeats every this many pixels along a diagonal.
const GRADIENT_PERIOD: usize = 192;

/// What a test pattern frame says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternStamp {
    pub frame_number: u32,
    /// Wall-clock capture time, microseconds since the Unix epoch.
    pub capture_time_us: u64,
}

impl PatternStamp {
    fn bits(self) -> [bool; BITS] {
        let mut payload = [0u8; 12];
        payload[..4].copy_from_slice(&self.frame_number.to_be_bytes());
        payload[4..].copy_from_slice(&self.capture_time_us.to_be_bytes());
        let crc = CRC.checksum(&payload);
        let mut bytes = [0u8; 14];
        bytes[..12].copy_from_slice(&payload);
        bytes[12..].copy_from_slice(&crc.to_be_bytes());
        std::array::from_fn(|i| bytes[i / 8] & (0x80 >> (i % 8)) != 0)
    }

    fn from_bits(bits: &[bool; BITS]) -> Option<PatternStamp> {
        let mut bytes = [0u8; 14];
        for (i, _) in bits.iter().enumerate().filter(|(_, bit)| **bit) {
            bytes[i / 8] |= 0x80 >> (i % 8);
        }
        let crc = u16::from_be_bytes([bytes[12], bytes[13]]);
        if CRC.checksum(&bytes[..12]) != crc {
            return None;
        }
        Some(PatternStamp {
            frame_number: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            capture_time_us: u64::from_be_bytes(bytes[4..12].try_into().ok()?),
        })
    }
}

/// Cell size in pixels for a picture `width` wide: 40 cells across, at least 8 pixels,
/// a multiple of 8 so cells sit on the codec's block grid.
fn cell_size(width: u32) -> u32 {
    ((width / CELLS_PER_ROW) / 8 * 8).max(8)
}

fn band_rows(width: u32) -> u32 {
    let per_row = (width / cell_size(width)).max(1) as usize;
    BITS.div_ceil(per_row) as u32
}

/// The smallest picture that holds a full data band (40 cells of 8 pixels) and some
/// moving content below it.
const MIN_WIDTH: u32 = 320;
const MIN_HEIGHT: u32 = 96;

/// The test pattern as a [`VideoSource`], paced at its frame rate.
pub struct TestPattern {
    format: VideoFormat,
    frame_number: u32,
    pacer: Pacer,
}

impl TestPattern {
    pub fn new(format: VideoFormat) -> Result<TestPattern, VideoError> {
        let (w, h) = (format.width, format.height);
        if w < MIN_WIDTH || h < MIN_HEIGHT || band_rows(w) * cell_size(w) * 2 > h {
            return Err(VideoError::BadSize {
                width: w,
                height: h,
            });
        }
        I420Frame::black(w, h)?;
        Ok(TestPattern {
            format,
            frame_number: 0,
            pacer: Pacer::new(format.fps),
        })
    }

    /// Draws frame `stamp.frame_number` carrying `stamp`. Pure: the same stamp always gives
    /// the same picture.
    pub fn render(&self, stamp: PatternStamp) -> I420Frame {
        let (w, h) = (self.format.width, self.format.height);
        // new() checked the size.
        let mut frame = I420Frame::black(w, h).expect("size checked in TestPattern::new");
        let n = stamp.frame_number;
        let cell = cell_size(w);
        let band = band_rows(w) * cell;
        let (y_plane, u_plane, v_plane) = frame.planes_mut_slices();
        let (wu, hu) = (w as usize, h as usize);

        // Scrolling diagonal gradient: luma 32 + (x + y + shift) % 192, chroma U varying
        // across and V down. Built from rows that are copied or filled whole rather than
        // pixel by pixel: in unoptimised test builds the per-pixel loops took a third of a
        // test call's CPU.
        let shift = (n as usize).wrapping_mul(4);
        let ramp: Vec<u8> = (0..wu + GRADIENT_PERIOD)
            .map(|i| 32 + (i % GRADIENT_PERIOD) as u8)
            .collect();
        for (y, row) in y_plane.chunks_exact_mut(wu).enumerate() {
            let start = (y + shift) % GRADIENT_PERIOD;
            row.copy_from_slice(&ramp[start..start + wu]);
        }
        let (cw, ch) = (wu / 2, hu / 2);
        let u_row: Vec<u8> = (0..cw)
            .map(|x| 64 + ((x * 128 / cw + n as usize) % 128) as u8)
            .collect();
        let chroma_rows = u_plane
            .chunks_exact_mut(cw)
            .zip(v_plane.chunks_exact_mut(cw));
        for (y, (u, v)) in chroma_rows.enumerate() {
            u.copy_from_slice(&u_row);
            v.fill(64 + ((y * 128 / ch + 2 * n as usize) % 128) as u8);
        }

        // A box bouncing below the band.
        let size = (h / 6).max(8) as usize & !1;
        let span_x = wu.saturating_sub(size).max(1);
        let span_y = (hu - band as usize).saturating_sub(size).max(1);
        let bx = bounce(n as usize * 6, span_x) & !1;
        let by = band as usize + (bounce(n as usize * 4, span_y) & !1);
        for y in by..(by + size).min(hu) {
            y_plane[y * wu + bx..(y * wu + bx + size).min((y + 1) * wu)].fill(235);
        }

        // The data band: flat cells, neutral chroma.
        let per_row = (w / cell) as usize;
        let bits = stamp.bits();
        for cell_y in 0..band_rows(w) as usize {
            for cell_x in 0..per_row {
                let i = cell_y * per_row + cell_x;
                // Unused cells after the data alternate, so the band stays busy and flat.
                let bit = bits.get(i).copied().unwrap_or(i.is_multiple_of(2));
                let luma = if bit { LUMA_ONE } else { LUMA_ZERO };
                let (x0, y0, c) = (
                    cell_x * cell as usize,
                    cell_y * cell as usize,
                    cell as usize,
                );
                for y in y0..y0 + c {
                    y_plane[y * wu + x0..y * wu + x0 + c].fill(luma);
                }
                for y in y0 / 2..(y0 + c) / 2 {
                    u_plane[y * cw + x0 / 2..y * cw + (x0 + c) / 2].fill(128);
                    v_plane[y * cw + x0 / 2..y * cw + (x0 + c) / 2].fill(128);
                }
            }
        }
        frame
    }
}

/// Position `t` bouncing between 0 and `span`.
fn bounce(t: usize, span: usize) -> usize {
    let period = 2 * span;
    let p = t % period;
    if p < span { p } else { period - p }
}

/// Reads the stamp of a test pattern frame (decoded or not). `None` when the frame does not
/// carry a readable stamp (not a test pattern, or too damaged).
pub fn read_stamp(frame: &I420Frame) -> Option<PatternStamp> {
    read_stamp_from_luma(
        frame.y(),
        frame.width() as usize,
        frame.width(),
        frame.height(),
    )
}

/// [`read_stamp`] from a picture's luma plane alone, `width` x `height` pixels in rows
/// `stride` bytes apart (a decoder's picture, read where it lies). `None` also when the
/// plane is too short for that size.
pub fn read_stamp_from_luma(
    y_plane: &[u8],
    stride: usize,
    width: u32,
    height: u32,
) -> Option<PatternStamp> {
    let (rows, row_len) = (height as usize, width as usize);
    if rows == 0 || stride < row_len || y_plane.len() < (rows - 1) * stride + row_len {
        return None;
    }
    // A pattern sent smaller than it was made (a slow path) has cells smaller than any
    // pattern is made with: still 40 to a row, down to 4 pixels.
    let cell = if width >= MIN_WIDTH {
        cell_size(width)
    } else {
        width / CELLS_PER_ROW
    };
    if cell < 4 || height < band_rows(width) * cell {
        return None;
    }
    let cell = cell as usize;
    let per_row = row_len / cell;
    let bits: [bool; BITS] = std::array::from_fn(|i| {
        let (x0, y0) = ((i % per_row) * cell, (i / per_row) * cell);
        // Average the middle half of the cell: edges blur under compression.
        let (from, to) = (cell / 4, cell - cell / 4);
        let mut sum = 0u32;
        for y in y0 + from..y0 + to {
            sum += y_plane[y * stride + x0 + from..y * stride + x0 + to]
                .iter()
                .map(|&p| u32::from(p))
                .sum::<u32>();
        }
        let count = ((to - from) * (to - from)) as u32;
        sum / count > u32::from(LUMA_ZERO + LUMA_ONE) / 2
    });
    PatternStamp::from_bits(&bits)
}

/// How faithfully a received frame shows the pattern it says it is: the luma PSNR in dB
/// against that frame rendered at the received size. `None` for a size no pattern is made
/// at. (A pattern that was sent smaller than it was made differs in layout, not only in
/// detail, and scores low.)
pub fn pattern_psnr(frame: &I420Frame, stamp: PatternStamp) -> Option<f64> {
    let pattern = TestPattern::new(VideoFormat {
        width: frame.width(),
        height: frame.height(),
        fps: 1,
    })
    .ok()?;
    Some(super::psnr_y(&pattern.render(stamp), frame))
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl VideoSource for TestPattern {
    fn name(&self) -> String {
        "test pattern".to_owned()
    }

    fn format(&self) -> VideoFormat {
        self.format
    }

    fn next_frame(&mut self) -> Result<I420Frame, VideoError> {
        self.pacer.wait();
        let stamp = PatternStamp {
            frame_number: self.frame_number,
            capture_time_us: now_us(),
        };
        self.frame_number = self.frame_number.wrapping_add(1);
        Ok(self.render(stamp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(width: u32, height: u32) -> VideoFormat {
        VideoFormat {
            width,
            height,
            fps: 30,
        }
    }

    #[test]
    fn stamp_reads_back_from_the_raw_frame_at_several_sizes() {
        for (w, h) in [(320, 96), (320, 240), (640, 480), (1280, 720), (1920, 1080)] {
            let pattern = TestPattern::new(format(w, h)).unwrap();
            let stamp = PatternStamp {
                frame_number: 0xDEAD_BEEF,
                capture_time_us: 1_790_000_000_123_456,
            };
            assert_eq!(read_stamp(&pattern.render(stamp)), Some(stamp), "{w}x{h}");
        }
    }

    #[test]
    fn below_the_band_every_pixel_is_the_gradient_or_the_box() {
        let (w, h) = (640, 480);
        let pattern = TestPattern::new(format(w as u32, h as u32)).unwrap();
        let band = (band_rows(w as u32) * cell_size(w as u32)) as usize;
        let box_side = h / 6;
        for n in [0, 1, 47, 1000, u32::MAX] {
            let frame = pattern.render(PatternStamp {
                frame_number: n,
                capture_time_us: 7,
            });
            let n = n as usize;
            let mut box_pixels = 0;
            for y in band..h {
                for x in 0..w {
                    let luma = frame.y()[y * w + x];
                    if luma == 235 {
                        box_pixels += 1; // The gradient stays within 32..=223.
                    } else {
                        assert_eq!(luma, 32 + ((x + y + n * 4) % 192) as u8, "({x}, {y})");
                    }
                }
            }
            assert_eq!(box_pixels, box_side * box_side, "frame {n}");
            let (cw, ch) = (w / 2, h / 2);
            for y in band / 2..ch {
                for x in 0..cw {
                    let (u, v) = (frame.u()[y * cw + x], frame.v()[y * cw + x]);
                    assert_eq!(u, 64 + ((x * 128 / cw + n) % 128) as u8, "U ({x}, {y})");
                    assert_eq!(v, 64 + ((y * 128 / ch + 2 * n) % 128) as u8, "V ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn stamp_reads_from_a_strided_plane_and_not_from_a_short_one() {
        let pattern = TestPattern::new(format(640, 480)).unwrap();
        let stamp = PatternStamp {
            frame_number: 12,
            capture_time_us: 1_790_000_000_000_000,
        };
        let frame = pattern.render(stamp);
        // The same rows, 64 bytes of padding after each.
        let stride = 640 + 64;
        let mut padded = vec![0u8; stride * 480];
        for (row, src) in padded
            .chunks_exact_mut(stride)
            .zip(frame.y().chunks_exact(640))
        {
            row[..640].copy_from_slice(src);
        }
        assert_eq!(read_stamp_from_luma(&padded, stride, 640, 480), Some(stamp));
        // A plane shorter than its size says, or rows overlapping, read nothing.
        assert_eq!(
            read_stamp_from_luma(&padded[..stride * 100], stride, 640, 480),
            None
        );
        assert_eq!(read_stamp_from_luma(&padded, 320, 640, 480), None);
        assert_eq!(read_stamp_from_luma(&[], 0, 0, 0), None);
    }

    #[test]
    fn a_frame_scores_against_the_pattern_it_carries() {
        let pattern = TestPattern::new(format(640, 480)).unwrap();
        let stamp = |frame_number| PatternStamp {
            frame_number,
            capture_time_us: 1_790_000_000_000_000,
        };
        let frame = pattern.render(stamp(7));
        assert_eq!(pattern_psnr(&frame, stamp(7)), Some(f64::INFINITY));
        // Another frame's picture (the box and gradient moved) scores far lower.
        let moved = pattern.render(stamp(40));
        let score = pattern_psnr(&moved, stamp(7)).unwrap();
        assert!(score < 20.0, "{score}");
        // No pattern is made this small.
        let tiny = I420Frame::black(64, 48).unwrap();
        assert_eq!(pattern_psnr(&tiny, stamp(7)), None);
    }

    #[test]
    fn frames_move_and_damage_is_detected() {
        let pattern = TestPattern::new(format(320, 240)).unwrap();
        let stamp = |n| PatternStamp {
            frame_number: n,
            capture_time_us: 5,
        };
        let (a, b) = (pattern.render(stamp(1)), pattern.render(stamp(2)));
        let below_band = 100 * 320;
        assert_ne!(
            a.y()[below_band..],
            b.y()[below_band..],
            "content must move"
        );

        // Flip one data cell: the CRC catches it.
        let mut damaged = a.clone();
        let (y, _, _) = damaged.planes_mut_slices();
        for row in 0..8 {
            for px in &mut y[row * 320..row * 320 + 8] {
                *px = if *px > 128 { 16 } else { 235 };
            }
        }
        assert_eq!(read_stamp(&damaged), None);
        assert_eq!(read_stamp(&I420Frame::black(320, 240).unwrap()), None);
    }

    #[test]
    fn too_small_or_odd_sizes_are_refused() {
        assert!(TestPattern::new(format(160, 120)).is_err());
        assert!(TestPattern::new(format(641, 480)).is_err());
    }

    #[test]
    fn source_numbers_frames_and_paces_them() {
        let mut pattern = TestPattern::new(VideoFormat {
            width: 320,
            height: 240,
            fps: 50,
        })
        .unwrap();
        let started = std::time::Instant::now();
        let stamps: Vec<_> = (0..5)
            .map(|_| read_stamp(&pattern.next_frame().unwrap()).unwrap())
            .collect();
        assert_eq!(
            stamps.iter().map(|s| s.frame_number).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        // Four intervals of 20 ms between five frames.
        assert!(started.elapsed() >= std::time::Duration::from_millis(80));
        assert!(
            stamps
                .windows(2)
                .all(|w| w[1].capture_time_us > w[0].capture_time_us)
        );
    }
}
