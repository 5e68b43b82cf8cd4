//! Screen capture against a real X server (Xvfb): the monitors listed, the picture as
//! drawn, scaling of large screens, the pace of still and moving screens, and the errors
//! when the display is missing or goes away.
//!
//! The tests take turns (one lock): the pace test counts frames against the clock, and
//! an 8K capture beside it on two cores would slow it.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/xvfb.rs"]
mod xvfb;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use confab_media::video::{
    I420Frame, MAX_SCREEN_SIZE, ScreenSelector, ScreenSource, VideoError, VideoSource,
    list_screens, psnr_y,
};
use x11rb::connection::Connection;
use x11rb::protocol::randr::{ConnectionExt as _, MonitorInfo};
use x11rb::protocol::xproto::ConnectionExt as _;
use x11rb::wrapper::ConnectionExt as _;
use xvfb::{Picture, Xvfb, test_picture};

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn open(xvfb: &Xvfb, monitor: usize, max_fps: u32) -> ScreenSource {
    ScreenSource::open(
        &ScreenSelector {
            display: Some(xvfb.display.clone()),
            monitor,
        },
        max_fps,
    )
    .expect("the screen opens")
}

fn i420(picture: &Picture) -> I420Frame {
    I420Frame::from_rgba(picture.width, picture.height, &picture.rgba()).unwrap()
}

/// `frame` with the luma of `reference` pasted over a square of `half` pixels around
/// (x, y): what the frame would be without the cursor there.
fn without_square(
    frame: &I420Frame,
    reference: &I420Frame,
    x: u32,
    y: u32,
    half: u32,
) -> I420Frame {
    let mut out = frame.clone();
    let width = frame.width() as usize;
    let (luma, _, _) = out.planes_mut_slices();
    for row in y.saturating_sub(half)..(y + half).min(frame.height()) {
        for column in x.saturating_sub(half)..(x + half).min(frame.width()) {
            let i = row as usize * width + column as usize;
            luma[i] = reference.y()[i];
        }
    }
    out
}

/// The largest luma difference in the square of `half` pixels around (x, y).
fn largest_difference(a: &I420Frame, b: &I420Frame, x: u32, y: u32, half: u32) -> u8 {
    let width = a.width() as usize;
    let mut largest = 0;
    for row in y - half..y + half {
        for column in x - half..x + half {
            let i = row as usize * width + column as usize;
            largest = largest.max(a.y()[i].abs_diff(b.y()[i]));
        }
    }
    largest
}

#[test]
fn a_virtual_display_lists_one_screen_of_its_size() {
    let _turn = one_at_a_time();
    let xvfb = Xvfb::start(1280, 720);
    let screens = list_screens(Some(&xvfb.display)).unwrap();
    assert_eq!(screens.len(), 1, "{screens:?}");
    let screen = &screens[0];
    assert_eq!((screen.index, screen.width, screen.height), (0, 1280, 720));
    assert!(!screen.name.is_empty());
}

#[test]
fn a_captured_frame_is_the_picture_on_the_screen_with_the_cursor_drawn_in() {
    let _turn = one_at_a_time();
    let xvfb = Xvfb::start(1280, 720);
    let picture = test_picture(1280, 720);
    xvfb.draw(&picture);
    // The pointer over the text (Xvfb's cursor is a 16x16 "X", hot spot in its middle).
    let (x, y) = (1000, 600);
    xvfb.move_pointer(x as i16, y as i16);
    let mut source = open(&xvfb, 0, 15);
    assert!(source.name().contains("1280x720"), "{}", source.name());
    assert_eq!(
        (
            source.format().width,
            source.format().height,
            source.format().fps
        ),
        (1280, 720, 15)
    );

    let frame = source.next_frame().unwrap();
    assert_eq!((frame.width(), frame.height()), (1280, 720));
    assert!(frame.captured_at.elapsed() < Duration::from_secs(5));
    let expected = i420(&picture);
    let psnr = psnr_y(&without_square(&frame, &expected, x, y, 20), &expected);
    assert!(psnr >= 40.0, "PSNR {psnr:.1} dB away from the cursor");
    // The cursor is there, where the pointer is.
    assert!(
        largest_difference(&frame, &expected, x, y, 10) > 100,
        "no cursor drawn at the pointer"
    );
    // Moved away, it is gone from there: the next frame comes at once (the picture
    // changed) and matches everywhere but around the new place.
    xvfb.move_pointer(100, 600);
    let frame = source.next_frame().unwrap();
    assert_eq!(largest_difference(&frame, &expected, x, y, 10), 0);
    let psnr = psnr_y(&without_square(&frame, &expected, 100, 600, 20), &expected);
    assert!(psnr >= 40.0, "PSNR {psnr:.1} dB after the pointer moved");
}

#[test]
fn an_8k_screen_is_sent_at_1080p() {
    let _turn = one_at_a_time();
    let xvfb = Xvfb::start(7680, 4320);
    // Red on the left half, blue on the right; the pointer in the red.
    xvfb.fill(0, 0, 3840, 4320, [255, 0, 0]);
    xvfb.fill(3840, 0, 3840, 4320, [0, 0, 255]);
    xvfb.move_pointer(100, 100);
    let mut source = open(&xvfb, 0, 15);
    assert_eq!(
        (source.format().width, source.format().height),
        MAX_SCREEN_SIZE
    );
    // Unoptimised (a test build), scaling 8K takes seconds: fast_image_resize's generic
    // code is compiled into this crate at its opt-level.
    let frame = source.next_frame().unwrap();
    assert_eq!((frame.width(), frame.height()), (1920, 1080));
    let red = i420(&Picture::filled(2, 2, [255, 0, 0])).y()[0];
    let blue = i420(&Picture::filled(2, 2, [0, 0, 255])).y()[0];
    let luma = |x: usize, y: usize| frame.y()[y * 1920 + x];
    for y in [10, 540, 1070] {
        for x in [40, 480, 950] {
            assert!(
                luma(x, y).abs_diff(red) <= 2,
                "({x}, {y}) {} not red",
                luma(x, y)
            );
        }
        for x in [970, 1440, 1910] {
            assert!(
                luma(x, y).abs_diff(blue) <= 2,
                "({x}, {y}) {} not blue",
                luma(x, y)
            );
        }
    }
}

/// Frames `source` returns in the second after its first, and the longest wait for one.
fn frames_in_a_second(source: &mut ScreenSource) -> (usize, Duration) {
    source.next_frame().unwrap();
    let start = Instant::now();
    let (mut count, mut longest) = (0, Duration::ZERO);
    loop {
        let asked = Instant::now();
        source.next_frame().unwrap();
        longest = longest.max(asked.elapsed());
        if start.elapsed() > Duration::from_secs(1) {
            return (count, longest);
        }
        count += 1;
    }
}

#[test]
fn a_still_screen_comes_five_times_a_second_and_a_moving_one_up_to_the_maximum() {
    let _turn = one_at_a_time();
    let xvfb = Xvfb::start(640, 480);
    xvfb.draw(&test_picture(640, 480));
    let mut source = open(&xvfb, 0, 15);

    let (still, longest) = frames_in_a_second(&mut source);
    assert!((3..=7).contains(&still), "{still} frames of a still screen");
    assert!(
        longest < Duration::from_millis(600),
        "next_frame took {longest:?}"
    );

    // Something on the screen changes every 30 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let painter = {
        let stop = stop.clone();
        let conn = xvfb.connect();
        std::thread::spawn(move || {
            let mut n = 0u8;
            while !stop.load(Ordering::Relaxed) {
                n = n.wrapping_add(37);
                xvfb::fill_on(&conn, 200, 200, 64, 64, [n, 255 - n, 128]);
                std::thread::sleep(Duration::from_millis(30));
            }
        })
    };
    let (moving, _) = frames_in_a_second(&mut source);
    stop.store(true, Ordering::Relaxed);
    painter.join().unwrap();
    assert!(
        (10..=16).contains(&moving),
        "{moving} frames of a moving screen at 15 fps at most"
    );
}

#[test]
fn the_x_server_going_away_ends_capture_with_screen_lost() {
    let _turn = one_at_a_time();
    let mut xvfb = Xvfb::start(320, 240);
    let mut source = open(&xvfb, 0, 15);
    source.next_frame().unwrap();
    let (result_tx, result_rx) = mpsc::channel();
    let (killed_tx, killed_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        killed_rx.recv().unwrap();
        let result = loop {
            match source.next_frame() {
                Ok(_) => continue,
                Err(err) => break err,
            }
        };
        let _ = result_tx.send(result);
    });
    xvfb.kill();
    killed_tx.send(()).unwrap();
    let err = result_rx
        .recv_timeout(Duration::from_secs(2))
        .expect("next_frame returns an error within 2 s");
    assert!(matches!(err, VideoError::ScreenLost(_)), "{err:?}");
    assert!(err.to_string().contains("went away"), "{err}");
}

#[test]
fn a_missing_display_is_unavailable_and_a_missing_monitor_not_found() {
    let _turn = one_at_a_time();
    let missing = ScreenSelector {
        display: Some(":9999".to_owned()),
        monitor: 0,
    };
    let err = list_screens(Some(":9999")).unwrap_err();
    assert!(matches!(err, VideoError::ScreenUnavailable(_)), "{err:?}");
    let err = ScreenSource::open(&missing, 15)
        .err()
        .expect("no display :9999");
    assert!(matches!(err, VideoError::ScreenUnavailable(_)), "{err:?}");
    assert!(err.to_string().contains(":9999"), "{err}");
    // A number whose TCP port would overflow: said, not a panic.
    let err = list_screens(Some(":65000")).unwrap_err();
    assert!(matches!(err, VideoError::ScreenUnavailable(_)), "{err:?}");

    let xvfb = Xvfb::start(320, 240);
    let selector = ScreenSelector {
        display: Some(xvfb.display.clone()),
        monitor: 1,
    };
    let err = ScreenSource::open(&selector, 15)
        .err()
        .expect("one screen only");
    assert!(matches!(err, VideoError::ScreenNotFound(1)), "{err:?}");
    assert_eq!(err.to_string(), "screen 2 not found");
}

#[test]
fn a_monitor_is_captured_from_its_place_and_its_removal_ends_capture() {
    let _turn = one_at_a_time();
    let xvfb = Xvfb::start(1280, 720);
    let picture = test_picture(1280, 720);
    xvfb.draw(&picture);
    xvfb.move_pointer(100, 100);
    // Two monitors side by side on the one screen (RandR 1.5 SetMonitor, as
    // `xrandr --setmonitor` makes them).
    let conn = xvfb.connect();
    let root = conn.setup().roots[0].root;
    let atom = |name: &str| {
        conn.intern_atom(false, name.as_bytes())
            .unwrap()
            .reply()
            .unwrap()
            .atom
    };
    for (name, x) in [("LEFT", 0), ("RIGHT", 640)] {
        let monitor = MonitorInfo {
            name: atom(name),
            primary: false,
            automatic: false,
            x,
            y: 0,
            width: 640,
            height: 720,
            width_in_millimeters: 170,
            height_in_millimeters: 190,
            outputs: Vec::new(),
        };
        conn.randr_set_monitor(root, monitor).unwrap();
    }
    conn.sync().unwrap();
    let screens = list_screens(Some(&xvfb.display)).unwrap();
    let right = screens
        .iter()
        .find(|s| s.name == "RIGHT")
        .unwrap_or_else(|| panic!("no RIGHT in {screens:?}"));
    assert_eq!((right.width, right.height), (640, 720));

    let mut source = open(&xvfb, right.index, 15);
    assert!(source.name().contains("RIGHT"), "{}", source.name());
    let frame = source.next_frame().unwrap();
    assert_eq!((frame.width(), frame.height()), (640, 720));
    let mut right_half = Picture::filled(640, 720, [0, 0, 0]);
    for y in 0..720 {
        for x in 0..640 {
            right_half.set(x, y, picture.pixel(x + 640, y));
        }
    }
    let psnr = psnr_y(&frame, &i420(&right_half));
    assert!(psnr >= 40.0, "PSNR {psnr:.1} dB");

    conn.randr_delete_monitor(root, atom("RIGHT")).unwrap();
    conn.sync().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let err = loop {
        match source.next_frame() {
            Ok(_) => assert!(
                Instant::now() < deadline,
                "still capturing a removed monitor"
            ),
            Err(err) => break err,
        }
    };
    assert!(matches!(err, VideoError::ScreenLost(_)), "{err:?}");
}
