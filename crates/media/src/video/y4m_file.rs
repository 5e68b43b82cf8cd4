//! A Y4M (YUV4MPEG2) file as a video source, looping at the file's frame rate.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::{I420Frame, VideoError, VideoFormat, VideoSource};
use crate::pacer::Pacer;

/// Largest frame a file may declare; refuses absurd headers before allocating.
const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

pub struct Y4mSource {
    path: PathBuf,
    decoder: y4m::Decoder<BufReader<File>>,
    format: VideoFormat,
    pacer: Pacer,
}

impl Y4mSource {
    /// Opens a file of 8-bit 4:2:0 video with even dimensions.
    pub fn open(path: impl AsRef<Path>) -> Result<Y4mSource, VideoError> {
        let path = path.as_ref().to_owned();
        let decoder = open_decoder(&path)?;
        let width = u32::try_from(decoder.get_width()).unwrap_or(u32::MAX);
        let height = u32::try_from(decoder.get_height()).unwrap_or(u32::MAX);
        I420Frame::black(width, height)?;
        let rate = decoder.get_framerate();
        let fps = if rate.den == 0 {
            0
        } else {
            (rate.num as f64 / rate.den as f64).round() as u32
        };
        if !(1..=240).contains(&fps) {
            return Err(bad(
                &path,
                format!("unsupported frame rate {}/{}", rate.num, rate.den),
            ));
        }
        use y4m::Colorspace::*;
        match decoder.get_colorspace() {
            C420 | C420jpeg | C420paldv | C420mpeg2 => {}
            other => {
                return Err(bad(
                    &path,
                    format!("unsupported colour format {other:?}; use 8-bit 4:2:0"),
                ));
            }
        }
        Ok(Y4mSource {
            path,
            decoder,
            format: VideoFormat { width, height, fps },
            pacer: Pacer::new(fps),
        })
    }

    /// The next frame without waiting, starting over at the end of the file.
    pub fn read_frame(&mut self) -> Result<I420Frame, VideoError> {
        let mut rewound = false;
        loop {
            match self.decoder.read_frame() {
                Ok(frame) => {
                    let mut data =
                        Vec::with_capacity(super::i420_len(self.format.width, self.format.height));
                    data.extend_from_slice(frame.get_y_plane());
                    data.extend_from_slice(frame.get_u_plane());
                    data.extend_from_slice(frame.get_v_plane());
                    return I420Frame::from_bytes(self.format.width, self.format.height, data);
                }
                Err(y4m::Error::EOF) if !rewound => {
                    self.decoder = open_decoder(&self.path)?;
                    rewound = true;
                }
                Err(y4m::Error::EOF) => {
                    return Err(bad(&self.path, "the file holds no frames".into()));
                }
                Err(err) => return Err(bad(&self.path, err.to_string())),
            }
        }
    }
}

fn open_decoder(path: &Path) -> Result<y4m::Decoder<BufReader<File>>, VideoError> {
    let file = File::open(path).map_err(|err| bad(path, err.to_string()))?;
    let limits = y4m::Limits {
        bytes: MAX_FRAME_BYTES,
    };
    y4m::Decoder::new_with_limits(BufReader::new(file), limits)
        .map_err(|err| bad(path, format!("not a Y4M file ({err})")))
}

fn bad(path: &Path, reason: String) -> VideoError {
    VideoError::File {
        path: path.to_owned(),
        reason,
    }
}

impl VideoSource for Y4mSource {
    fn name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    fn format(&self) -> VideoFormat {
        self.format
    }

    fn next_frame(&mut self) -> Result<I420Frame, VideoError> {
        self.pacer.wait();
        self.read_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::{PatternStamp, TestPattern, read_stamp};

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("confab-{}-{name}", std::process::id()))
    }

    /// Writes `frames` test pattern frames as a Y4M file.
    fn write_pattern_file(path: &Path, frames: u32) {
        let format = VideoFormat {
            width: 320,
            height: 240,
            fps: 25,
        };
        let pattern = TestPattern::new(format).unwrap();
        let file = File::create(path).unwrap();
        let mut encoder = y4m::encode(320, 240, y4m::Ratio::new(25, 1))
            .with_colorspace(y4m::Colorspace::C420jpeg)
            .write_header(file)
            .unwrap();
        for n in 0..frames {
            let f = pattern.render(PatternStamp {
                frame_number: n,
                capture_time_us: 0,
            });
            encoder
                .write_frame(&y4m::Frame::new([f.y(), f.u(), f.v()], None))
                .unwrap();
        }
    }

    #[test]
    fn reads_frames_and_loops() {
        let path = temp_path("loop.y4m");
        write_pattern_file(&path, 3);
        let mut source = Y4mSource::open(&path).unwrap();
        assert_eq!(
            source.format(),
            VideoFormat {
                width: 320,
                height: 240,
                fps: 25
            }
        );
        let numbers: Vec<u32> = (0..7)
            .map(|_| {
                read_stamp(&source.read_frame().unwrap())
                    .unwrap()
                    .frame_number
            })
            .collect();
        assert_eq!(numbers, [0, 1, 2, 0, 1, 2, 0]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let missing = Y4mSource::open("/nonexistent/clip.y4m").err().unwrap();
        assert!(
            missing.to_string().contains("/nonexistent/clip.y4m"),
            "{missing}"
        );

        let path = temp_path("garbage.y4m");
        std::fs::write(&path, b"this is not video").unwrap();
        let garbage = Y4mSource::open(&path).err().unwrap();
        assert!(garbage.to_string().contains("not a Y4M file"), "{garbage}");

        // A valid header with a truncated frame.
        std::fs::write(&path, b"YUV4MPEG2 W320 H240 F25:1 C420jpeg\nFRAME\nshort").unwrap();
        let mut source = Y4mSource::open(&path).unwrap();
        assert!(matches!(source.read_frame(), Err(VideoError::File { .. })));

        // A header with no frames at all.
        std::fs::write(&path, b"YUV4MPEG2 W320 H240 F25:1 C420jpeg\n").unwrap();
        let mut source = Y4mSource::open(&path).unwrap();
        let empty = source.read_frame().unwrap_err();
        assert!(empty.to_string().contains("no frames"), "{empty}");

        // Absurd dimensions are refused before any allocation.
        std::fs::write(&path, b"YUV4MPEG2 W99999 H99999 F25:1 C420jpeg\n").unwrap();
        assert!(Y4mSource::open(&path).is_err());
        std::fs::remove_file(path).unwrap();
    }
}
