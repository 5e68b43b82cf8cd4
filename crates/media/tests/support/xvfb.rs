//! A virtual X display for tests: Xvfb on a display number it picks itself, killed on
//! drop, and pictures drawn on its root window.
//!
//! Self-contained (std and x11rb only): the media crate's tests use it, and so can the
//! app's, with `#[path = "../crates/media/tests/support/xvfb.rs"] mod xvfb;`.

// Test support: it may panic, and not every test uses every function.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, Gcontext, ImageFormat, Rectangle};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// A running Xvfb. Dropping it kills it.
pub struct Xvfb {
    child: Option<Child>,
    /// The display's name, ":N".
    pub display: String,
    pub width: u32,
    pub height: u32,
}

impl Xvfb {
    /// Starts Xvfb with one `width` x `height` screen of 24-bit colour and waits until it
    /// accepts connections (it prints its display number then).
    pub fn start(width: u32, height: u32) -> Xvfb {
        let mut child = Command::new("Xvfb")
            // -noreset: the server would reset (and lose the picture) when its last client
            // disconnects.
            .args([
                "-displayfd",
                "1",
                "-nolisten",
                "tcp",
                "-noreset",
                "-screen",
                "0",
            ])
            .arg(format!("{width}x{height}x24"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts (scripts/install-deps.sh installs it)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("Xvfb prints its display number");
        let number: u32 = match line.trim().parse() {
            Ok(number) => number,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("Xvfb did not start (it printed {line:?})");
            }
        };
        Xvfb {
            child: Some(child),
            display: format!(":{number}"),
            width,
            height,
        }
    }

    /// A new connection to the display.
    pub fn connect(&self) -> RustConnection {
        x11rb::connect(Some(&self.display))
            .expect("connects to Xvfb")
            .0
    }

    /// The X server's process id (to measure its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server now (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Draws `picture` on the root window at (0, 0).
    pub fn draw(&self, picture: &Picture) {
        let conn = self.connect();
        draw_on(&conn, picture, 0, 0);
    }

    /// Fills a rectangle of the root window with one colour.
    pub fn fill(&self, x: i16, y: i16, width: u16, height: u16, rgb: [u8; 3]) {
        let conn = self.connect();
        fill_on(&conn, x, y, width, height, rgb);
    }

    /// Moves the mouse pointer to (x, y) on the root window.
    pub fn move_pointer(&self, x: i16, y: i16) {
        let conn = self.connect();
        move_pointer_on(&conn, x, y);
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Fills a rectangle of the root window of `conn`'s first screen with one colour, drawn
/// by the server (cheap at any size), and waits until it is done.
pub fn fill_on(conn: &RustConnection, x: i16, y: i16, width: u16, height: u16, rgb: [u8; 3]) {
    let root = conn.setup().roots[0].root;
    let gc: Gcontext = conn.generate_id().expect("id");
    let pixel = u32::from_be_bytes([0, rgb[0], rgb[1], rgb[2]]);
    conn.create_gc(gc, root, &CreateGCAux::new().foreground(pixel))
        .expect("gc");
    let rectangle = Rectangle {
        x,
        y,
        width,
        height,
    };
    conn.poly_fill_rectangle(root, gc, &[rectangle])
        .expect("fill");
    conn.free_gc(gc).expect("free gc");
    conn.sync().expect("sync");
}

/// Moves the mouse pointer to (x, y) on the root window of `conn`'s first screen.
pub fn move_pointer_on(conn: &RustConnection, x: i16, y: i16) {
    let root = conn.setup().roots[0].root;
    conn.warp_pointer(x11rb::NONE, root, 0, 0, 0, 0, x, y)
        .expect("warp pointer");
    conn.sync().expect("sync");
}

/// Draws `picture` on the root window of `conn`'s first screen with its top-left corner
/// at (x, y), in PutImage requests under the server's maximum request size, and waits until
/// the server has done it.
pub fn draw_on(conn: &RustConnection, picture: &Picture, x: i16, y: i16) {
    let screen = &conn.setup().roots[0];
    let (root, depth) = (screen.root, screen.root_depth);
    let gc: Gcontext = conn.generate_id().expect("id");
    conn.create_gc(gc, root, &Default::default()).expect("gc");
    let row_bytes = picture.width as usize * 4;
    // Room for the request's header; at most 4 MiB a request.
    let max_bytes = conn.maximum_request_bytes().min(4 << 20) - 64;
    let rows_per_request = (max_bytes / row_bytes).max(1);
    let bgrx = picture.bgrx();
    for (band, rows) in bgrx.chunks(rows_per_request * row_bytes).enumerate() {
        let top = y + (band * rows_per_request) as i16;
        let height = (rows.len() / row_bytes) as u16;
        conn.put_image(
            ImageFormat::Z_PIXMAP,
            root,
            gc,
            picture.width as u16,
            height,
            x,
            top,
            0,
            depth,
            rows,
        )
        .expect("put image");
    }
    conn.free_gc(gc).expect("free gc");
    conn.sync().expect("sync");
}

/// An RGB picture, 3 bytes a pixel, rows tightly packed.
#[derive(Clone, PartialEq, Eq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Picture {
    pub fn filled(width: u32, height: u32, rgb: [u8; 3]) -> Picture {
        Picture {
            width,
            height,
            rgb: rgb.repeat(width as usize * height as usize),
        }
    }

    /// RGBA, opaque.
    pub fn rgba(&self) -> Vec<u8> {
        self.rgb
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect()
    }

    /// What a 24-bit X server holds: blue, green, red, padding.
    pub fn bgrx(&self) -> Vec<u8> {
        self.rgb
            .chunks_exact(3)
            .flat_map(|p| [p[2], p[1], p[0], 0])
            .collect()
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    pub fn set(&mut self, x: u32, y: u32, rgb: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = (y as usize * self.width as usize + x as usize) * 3;
            self.rgb[i..i + 3].copy_from_slice(&rgb);
        }
    }

    pub fn fill_rect(&mut self, x: u32, y: u32, width: u32, height: u32, rgb: [u8; 3]) {
        for row in y..(y + height).min(self.height) {
            for column in x..(x + width).min(self.width) {
                self.set(column, row, rgb);
            }
        }
    }

    /// Draws a line of `count` made-up glyphs (5x7 cells of 1-pixel strokes, scaled by
    /// `scale`), `seed` choosing them, in `ink`, from (x, y): text as a screen shows it.
    pub fn text(&mut self, x: u32, y: u32, count: u32, scale: u32, seed: u32, ink: [u8; 3]) {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        for glyph in 0..count {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            // Every fifth glyph is a space.
            if glyph % 5 == 4 {
                continue;
            }
            let left = x + glyph * 6 * scale;
            for row in 0..7 {
                for column in 0..5 {
                    // A stem on the left most of the time, and a few pixels chosen by
                    // the glyph's bits: thin strokes with sharp edges.
                    let bit = (state >> ((row * 5 + column) % 32)) & 1 == 1;
                    let stem = column == 0 && (state & 0x8000_0000 != 0);
                    let bar = row == 3 && (state & 0x4000_0000 != 0);
                    if bit || stem || bar {
                        self.fill_rect(left + column * scale, y + row * scale, scale, scale, ink);
                    }
                }
            }
        }
    }
}

/// The test picture: colour bars across the top third, then a white page of small dark
/// text (1-pixel strokes) with 1-pixel grid lines, and a block of larger text on colour.
pub fn test_picture(width: u32, height: u32) -> Picture {
    const BARS: [[u8; 3]; 8] = [
        [235, 235, 235],
        [235, 235, 16],
        [16, 235, 235],
        [16, 235, 16],
        [235, 16, 235],
        [235, 16, 16],
        [16, 16, 235],
        [16, 16, 16],
    ];
    let mut picture = Picture::filled(width, height, [250, 250, 250]);
    let bars_height = height / 3;
    for (i, colour) in BARS.iter().enumerate() {
        let left = width * i as u32 / 8;
        let right = width * (i as u32 + 1) / 8;
        picture.fill_rect(left, 0, right - left, bars_height, *colour);
    }
    // Grid lines every 64 pixels, 1 pixel wide.
    for y in (bars_height..height).step_by(64) {
        picture.fill_rect(0, y, width, 1, [120, 120, 120]);
    }
    for x in (0..width).step_by(64) {
        picture.fill_rect(x, bars_height, 1, height - bars_height, [120, 120, 120]);
    }
    // Lines of small text, 10 pixels apart.
    let columns = width.saturating_sub(16) / 6;
    for (line, y) in (bars_height + 8..height.saturating_sub(8))
        .step_by(10)
        .enumerate()
    {
        picture.text(8, y, columns * 2 / 3, 1, line as u32, [20, 20, 30]);
    }
    // A box of larger text on blue at the right.
    let box_left = width * 3 / 4;
    picture.fill_rect(
        box_left,
        bars_height + 20,
        width / 5,
        height / 4,
        [30, 60, 160],
    );
    for line in 0..4 {
        picture.text(
            box_left + 6,
            bars_height + 28 + line * 20,
            (width / 5).saturating_sub(12) / 12,
            2,
            100 + line,
            [255, 255, 255],
        );
    }
    picture
}
