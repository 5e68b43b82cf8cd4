//! Screen sharing's cost and quality: a desktop-like picture (text, a window whose text
//! scrolls every frame) on Xvfb, captured with `ScreenSource` at 15 fps and encoded with
//! `H264Encoder` at 1.5 Mbit/s, for 10 s at a time. Prints the capture-and-encode thread's
//! CPU time per second of wall time (from /proc/thread-self/stat), Xvfb's own CPU time,
//! frames a second, the bitrate reached, and the PSNR of the decoded frames against the
//! captured ones.
//!
//! Run: `cargo bench -p confab-media --bench screen` (numbers in docs/performance.md,
//! "Screen sharing"). Xvfb must be installed (scripts/install-deps.sh).

// A benchmark: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/support/xvfb.rs"]
mod xvfb;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use confab_media::video::{
    H264Decoder, H264Encoder, H264EncoderConfig, I420Frame, ScreenSelector, ScreenSource,
    VideoContent, VideoSource, psnr_y,
};
use xvfb::{Picture, Xvfb};

const FPS: u32 = 15;
const BITRATE_BPS: u32 = 1_500_000;
const RUN: Duration = Duration::from_secs(10);

/// CPU seconds (user + system) from a /proc stat file.
fn cpu_seconds(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).expect("stat");
    // The fields after the command name in parentheses: utime and stime are the 12th and
    // 13th of them (fields 14 and 15 of the file).
    let rest = &stat[stat.rfind(')').expect("stat format") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A desktop: a dark background, a browser-like window of text on the left, a terminal
/// on the right whose text scrolls (drawn by [`Scroller`]), a task bar at the bottom.
fn desktop(width: u32, height: u32) -> Picture {
    let mut picture = Picture::filled(width, height, [40, 44, 52]);
    // Task bar.
    picture.fill_rect(0, height - 32, width, 32, [24, 24, 28]);
    picture.text(8, height - 24, 30, 2, 7, [220, 220, 220]);
    // A document window: title bar, white page, lines of text.
    let (left, top, w, h) = (20, 20, width * 11 / 20, height - 80);
    picture.fill_rect(left, top, w, 28, [60, 90, 160]);
    picture.text(left + 8, top + 6, 24, 2, 3, [255, 255, 255]);
    picture.fill_rect(left, top + 28, w, h - 28, [252, 252, 252]);
    for (line, y) in (top + 40..top + h - 12).step_by(12).enumerate() {
        let words = if line % 7 == 6 { 20 } else { (w - 24) / 6 - 2 };
        picture.text(left + 12, y, words, 1, line as u32, [30, 30, 30]);
    }
    // A picture in the page: colour bars.
    for i in 0..6u32 {
        let colour = [(i * 50) as u8, (255 - i * 40) as u8, (i * 97 % 256) as u8];
        picture.fill_rect(left + 40 + i * 60, top + h / 2, 60, 90, colour);
    }
    picture
}

/// The terminal window: its lines of text move up one line every frame.
struct Scroller {
    x: i16,
    y: i16,
    width: u32,
    height: u32,
    line: u32,
}

impl Scroller {
    fn frame(&mut self) -> Picture {
        self.line += 1;
        let mut picture = Picture::filled(self.width, self.height, [16, 16, 16]);
        for (row, y) in (4..self.height - 12).step_by(12).enumerate() {
            let n = self.line + row as u32;
            let words = 10 + (n * 7919) % ((self.width - 16) / 6 - 10);
            picture.text(6, y, words, 1, n, [180, 230, 180]);
        }
        picture
    }
}

struct Measured {
    frames: usize,
    wall_secs: f64,
    cpu_secs: f64,
    capture_ms: f64,
    encode_ms: f64,
    bytes: usize,
    psnr_mean: f64,
    psnr_min: f64,
    xvfb_cpu_secs: f64,
}

/// Captures and encodes for [`RUN`]; after each frame, `tick` (if any) is told to change
/// the screen for the next one.
fn run(xvfb: &Xvfb, content: VideoContent, tick: Option<mpsc::Sender<()>>) -> Measured {
    let xvfb_stat = format!("/proc/{}/stat", xvfb.pid().unwrap());
    let display = xvfb.display.clone();
    let xvfb_before = cpu_seconds(&xvfb_stat);
    // The capture and encode on a thread of their own, whose CPU time is measured alone.
    let capture = std::thread::Builder::new().name("capture".into());
    let (captured, encoded, measured) = capture
        .spawn(move || {
            let selector = ScreenSelector {
                display: Some(display),
                monitor: 0,
            };
            let mut source = ScreenSource::open(&selector, FPS).expect("screen");
            let mut encoder = H264Encoder::new(H264EncoderConfig {
                bitrate_bps: BITRATE_BPS,
                fps: FPS,
                keyframe_interval: None,
                content,
            })
            .expect("encoder");
            let (mut captured, mut encoded) = (Vec::new(), Vec::new());
            let (mut capture_secs, mut encode_secs) = (0.0, 0.0);
            let cpu_before = cpu_seconds("/proc/thread-self/stat");
            let start = Instant::now();
            while start.elapsed() < RUN {
                let asked = Instant::now();
                let frame = source.next_frame().expect("frame");
                if let Some(tick) = &tick {
                    tick.send(()).expect("painter");
                }
                let got = Instant::now();
                // Reading the screen, not the wait for the next frame.
                capture_secs += (got - asked.max(frame.captured_at)).as_secs_f64();
                let access_unit = encoder.encode(&frame).expect("encode");
                encode_secs += got.elapsed().as_secs_f64();
                encoded.push(access_unit.data);
                captured.push(frame);
            }
            let wall = start.elapsed().as_secs_f64();
            let cpu = cpu_seconds("/proc/thread-self/stat") - cpu_before;
            (captured, encoded, (wall, cpu, capture_secs, encode_secs))
        })
        .expect("capture thread")
        .join()
        .expect("capture thread");
    let xvfb_cpu_secs = cpu_seconds(&xvfb_stat) - xvfb_before;
    let (wall_secs, cpu_secs, capture_secs, encode_secs) = measured;

    let mut decoder = H264Decoder::new().expect("decoder");
    let mut decoded = I420Frame::black(2, 2).unwrap();
    let mut psnrs = Vec::new();
    for (frame, access_unit) in captured.iter().zip(&encoded) {
        if let Some(picture) = decoder.decode(access_unit).expect("decodes") {
            picture.copy_to(&mut decoded);
            psnrs.push(psnr_y(&decoded, frame).min(99.0));
        }
    }
    let frames = captured.len();
    Measured {
        frames,
        wall_secs,
        cpu_secs,
        capture_ms: capture_secs * 1000.0 / frames as f64,
        encode_ms: encode_secs * 1000.0 / frames as f64,
        bytes: encoded.iter().map(Vec::len).sum(),
        psnr_mean: psnrs.iter().sum::<f64>() / psnrs.len() as f64,
        psnr_min: psnrs.iter().copied().fold(f64::INFINITY, f64::min),
        xvfb_cpu_secs,
    }
}

fn report(what: &str, m: &Measured) {
    println!(
        "{what}: {:.3} core (capture {:.1} ms + encode {:.1} ms a frame), {:.1} fps, \
         {:.0} kbit/s, PSNR mean {:.1} dB min {:.1} dB; Xvfb {:.3} core",
        m.cpu_secs / m.wall_secs,
        m.capture_ms,
        m.encode_ms,
        m.frames as f64 / m.wall_secs,
        m.bytes as f64 * 8.0 / m.wall_secs / 1000.0,
        m.psnr_mean,
        m.psnr_min,
        m.xvfb_cpu_secs / m.wall_secs,
    );
}

/// Starts a `width` x `height` desktop whose terminal scrolls a line a frame (when
/// `moving`), and measures each content kind on it.
fn scenario(width: u32, height: u32, moving: bool, contents: &[VideoContent]) {
    let xvfb = Xvfb::start(width, height);
    xvfb.draw(&desktop(width, height));
    // The pointer over the document, as when reading it.
    xvfb.move_pointer(300, 300);
    for &content in contents {
        // The terminal scrolls one line after each frame captured: every frame has moved
        // the same, whatever the timing. Drawn by a thread of its own (not measured), from
        // pictures made beforehand.
        let (tick, ticks) = mpsc::channel();
        let painter = moving.then(|| {
            let conn = xvfb.connect();
            let mut scroller = Scroller {
                x: (width * 12 / 20) as i16,
                y: 60,
                width: width * 7 / 20,
                height: height / 2,
                line: 0,
            };
            let steps: Vec<Picture> = (0..160).map(|_| scroller.frame()).collect();
            std::thread::spawn(move || {
                for step in steps.iter().cycle() {
                    if ticks.recv().is_err() {
                        return;
                    }
                    xvfb::draw_on(&conn, step, scroller.x, scroller.y);
                }
            })
        });
        let measured = run(&xvfb, content, moving.then_some(tick));
        let state = if moving { "scrolling" } else { "still" };
        report(&format!("{width}x{height} {state}, {content:?}"), &measured);
        if let Some(painter) = painter {
            painter.join().unwrap();
        }
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this too: keep that short.
    if !std::env::args().any(|a| a == "--bench") {
        println!("screen bench: run with cargo bench");
        return;
    }
    println!(
        "screen sharing at {FPS} fps, {} kbit/s, {} s a run",
        BITRATE_BPS / 1000,
        RUN.as_secs()
    );
    scenario(
        1920,
        1080,
        true,
        &[VideoContent::Screen, VideoContent::Camera],
    );
    scenario(
        1920,
        1080,
        false,
        &[VideoContent::Screen, VideoContent::Camera],
    );
    if std::env::var_os("QUICK").is_none() {
        scenario(2560, 1600, true, &[VideoContent::Screen]);
    }
}
