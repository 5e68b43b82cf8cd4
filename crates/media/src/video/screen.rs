//! Screen capture for screen sharing: one monitor of an X display, with the mouse cursor
//! drawn in, scaled down to at most [`MAX_SCREEN_SIZE`], as I420 frames.
//!
//! How: x11rb (the X11 protocol in pure Rust, no libxcb) asks RandR 1.5 for the monitors
//! (`GetMonitors`), reads the monitor's rectangle of the root window with `GetImage`
//! (ZPixmap) and the cursor with XFixes `GetCursorImage`. MIT-SHM would save copying the
//! picture through the socket, but needs shared memory mapped into this process, which
//! takes `unsafe` (forbidden here); at 1080p and 15 fps the socket carries about
//! 120 MB/s, and reading, comparing and converting take about 0.08 of a core
//! (docs/performance.md, "Screen sharing").
//!
//! Pacing: the screen is read up to `max_fps` times a second and compared with the previous
//! reading (a memcmp of buffers kept from frame to frame). A changed picture (or a moved
//! cursor) is converted and returned at once; an unchanged one is returned again every
//! [`STILL_INTERVAL`] (5 fps), so a still screen costs less to convert, encode and send, and
//! `next_frame` never waits much longer than that.
//!
//! Wayland: only through xdg-desktop-portal and PipeWire, which this build does not
//! include; a Wayland session without an X display, or with Xwayland (whose root window
//! shows only X11 windows), is refused with a message that says so.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::errors::{ConnectionError, ReplyError};
use x11rb::protocol::xproto::{ImageFormat, ImageOrder, Window};
use x11rb::protocol::{randr, xfixes, xproto};
use x11rb::rust_connection::RustConnection;

use super::{I420Frame, VideoError, VideoFormat, VideoSource};

/// The largest picture a shared screen is sent at; larger screens are scaled down to fit,
/// keeping the aspect ratio, even width and height.
pub const MAX_SCREEN_SIZE: (u32, u32) = (1920, 1080);

/// An unchanged screen is sent again this often (5 fps): a receiver that joined or lost a
/// frame gets the picture soon, and the encoder's still frames cost almost nothing.
const STILL_INTERVAL: Duration = Duration::from_millis(200);

/// The picture is read in bands of rows of at most this many bytes. x11rb allocates every
/// reply anew; replies of this size come back from the allocator's free lists (glibc maps
/// anything above its threshold, at most 32 MiB, and unmaps it on free), where one reply
/// for an 8K screen (132 MB) would be mapped and page-faulted in every frame.
const BAND_BYTES: usize = 4 << 20;

/// Bands asked for ahead of the one being read, so the server works while we copy.
const BANDS_IN_FLIGHT: usize = 2;

/// Which screen to share: a monitor of an X display.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScreenSelector {
    /// The X display (":1"); None = the DISPLAY environment variable.
    pub display: Option<String>,
    /// Index into list_screens() (0 = the first monitor RandR lists).
    pub monitor: usize,
}

/// A monitor that can be shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenInfo {
    pub index: usize,
    /// RandR's name for the monitor ("DP-1"), or "screen" for the whole root window.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub primary: bool,
}

/// The monitors of a display (RandR 1.5 GetMonitors; if RandR is missing, the root window
/// as one screen).
pub fn list_screens(display: Option<&str>) -> Result<Vec<ScreenInfo>, VideoError> {
    let display = Display::connect(display)?;
    let monitors = display.monitors()?;
    Ok(monitors
        .iter()
        .enumerate()
        .map(|(index, m)| ScreenInfo {
            index,
            name: m.name.clone(),
            width: u32::from(m.width),
            height: u32::from(m.height),
            primary: m.primary,
        })
        .collect())
}

/// A monitor's place on the root window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Monitor {
    /// RandR's name atom; `None` for the root window itself (no RandR).
    atom: Option<xproto::Atom>,
    name: String,
    primary: bool,
    x: i16,
    y: i16,
    width: u16,
    height: u16,
}

impl Monitor {
    fn same_place(&self, other: &Monitor) -> bool {
        (self.x, self.y, self.width, self.height) == (other.x, other.y, other.width, other.height)
    }
}

/// A connection to an X display, checked to be one we can read.
struct Display {
    conn: RustConnection,
    name: String,
    root: Window,
    root_width: u16,
    root_height: u16,
    depth: u8,
    randr: bool,
    xfixes: bool,
}

fn unavailable(reason: String, wayland: bool) -> VideoError {
    if wayland {
        VideoError::ScreenUnavailable(format!(
            "{reason}; Wayland screen capture needs xdg-desktop-portal and PipeWire, which this \
             build does not include"
        ))
    } else {
        VideoError::ScreenUnavailable(reason)
    }
}

/// Why there is no display to connect to, given DISPLAY and WAYLAND_DISPLAY.
fn no_display(wayland: bool) -> VideoError {
    if wayland {
        unavailable(
            "this is a Wayland session without an X display".into(),
            true,
        )
    } else {
        unavailable("no X display (DISPLAY is not set)".into(), false)
    }
}

fn env_set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The display's end: the server went away (killed, crashed, logged out).
fn lost(display: &str, err: &ConnectionError) -> VideoError {
    VideoError::ScreenLost(format!("the X display {display} went away ({err})"))
}

fn reply_error(display: &str, what: &str, err: ReplyError) -> VideoError {
    match err {
        ReplyError::ConnectionError(err) => lost(display, &err),
        ReplyError::X11Error(err) => VideoError::Screen(format!(
            "the X display {display} refused {what} ({:?})",
            err.error_kind
        )),
    }
}

/// x11rb counts the display's TCP port as 6000 + its number without checking: a number
/// above 59535 would overflow (a debug build panics). No such display exists.
fn check_display_number(name: &str) -> Result<(), VideoError> {
    match x11rb_protocol::parse_display::parse_display(Some(name)) {
        Ok(parsed) if parsed.display > u16::MAX - 6000 => Err(VideoError::ScreenUnavailable(
            format!("there is no X display {name}"),
        )),
        _ => Ok(()),
    }
}

impl Display {
    fn connect(display: Option<&str>) -> Result<Display, VideoError> {
        let wayland = env_set("WAYLAND_DISPLAY").is_some();
        let Some(name) = display.map(str::to_owned).or_else(|| env_set("DISPLAY")) else {
            return Err(no_display(wayland));
        };
        check_display_number(&name)?;
        let (conn, screen_num) = x11rb::connect(Some(&name)).map_err(|err| {
            unavailable(
                format!("cannot connect to the X display {name} ({err})"),
                wayland,
            )
        })?;
        if conn
            .extension_information("XWAYLAND")
            .ok()
            .flatten()
            .is_some()
        {
            return Err(unavailable(
                format!("the X display {name} is Xwayland, which shows only X11 windows"),
                true,
            ));
        }
        let setup = conn.setup();
        let screen = setup.roots.get(screen_num).ok_or_else(|| {
            VideoError::ScreenUnavailable(format!(
                "the X display {name} has no screen {screen_num}"
            ))
        })?;
        check_pixel_format(setup, screen)?;
        let (root, root_width, root_height, depth) = (
            screen.root,
            screen.width_in_pixels,
            screen.height_in_pixels,
            screen.root_depth,
        );
        let randr = has_randr_1_5(&conn).map_err(|err| reply_error(&name, "RandR", err))?;
        let xfixes = has_xfixes(&conn).map_err(|err| reply_error(&name, "XFixes", err))?;
        Ok(Display {
            conn,
            name,
            root,
            root_width,
            root_height,
            depth,
            randr,
            xfixes,
        })
    }

    /// The root window as one monitor.
    fn whole_root(&self) -> Monitor {
        Monitor {
            atom: None,
            name: "screen".to_owned(),
            primary: true,
            x: 0,
            y: 0,
            width: self.root_width,
            height: self.root_height,
        }
    }

    /// RandR's monitors (active ones), in its order, with names; or the root window.
    fn monitors(&self) -> Result<Vec<Monitor>, VideoError> {
        if !self.randr {
            return Ok(vec![self.whole_root()]);
        }
        let reply = randr::get_monitors(&self.conn, self.root, true)
            .map_err(|err| lost(&self.name, &err))?
            .reply()
            .map_err(|err| reply_error(&self.name, "the list of monitors", err))?;
        let names = reply
            .monitors
            .iter()
            .map(|m| xproto::get_atom_name(&self.conn, m.name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| lost(&self.name, &err))?;
        let mut monitors = Vec::with_capacity(names.len());
        for (m, cookie) in reply.monitors.iter().zip(names) {
            let name = cookie
                .reply()
                .map_err(|err| reply_error(&self.name, "a monitor's name", err))?;
            monitors.push(Monitor {
                atom: Some(m.name),
                name: String::from_utf8_lossy(&name.name).into_owned(),
                primary: m.primary,
                x: m.x,
                y: m.y,
                width: m.width,
                height: m.height,
            });
        }
        if monitors.is_empty() {
            // No output is on (a headless server): the root window is still there.
            monitors.push(self.whole_root());
        }
        Ok(monitors)
    }
}

fn has_randr_1_5(conn: &RustConnection) -> Result<bool, ReplyError> {
    if conn
        .extension_information(randr::X11_EXTENSION_NAME)?
        .is_none()
    {
        return Ok(false);
    }
    let version = randr::query_version(conn, 1, 5)?.reply()?;
    Ok((version.major_version, version.minor_version) >= (1, 5))
}

fn has_xfixes(conn: &RustConnection) -> Result<bool, ReplyError> {
    if conn
        .extension_information(xfixes::X11_EXTENSION_NAME)?
        .is_none()
    {
        return Ok(false);
    }
    // The version must be asked before any other XFixes request; GetCursorImage is 1.0.
    let version = xfixes::query_version(conn, 5, 0)?.reply()?;
    Ok(version.major_version >= 1)
}

/// Checks that the root window's pixels are 32-bit BGRX in memory: 24-bit colour (depth 24
/// or 32) stored in 32 bits, least significant byte first, red in the high byte. What
/// Xorg, Xvfb and Xwayland use on every little-endian machine.
fn check_pixel_format(setup: &xproto::Setup, screen: &xproto::Screen) -> Result<(), VideoError> {
    let depth = screen.root_depth;
    let bits_per_pixel = setup
        .pixmap_formats
        .iter()
        .find(|f| f.depth == depth)
        .map(|f| f.bits_per_pixel);
    let visual = screen
        .allowed_depths
        .iter()
        .flat_map(|d| &d.visuals)
        .find(|v| v.visual_id == screen.root_visual);
    let masks = visual.map(|v| (v.red_mask, v.green_mask, v.blue_mask));
    let lsb_first = setup.image_byte_order == ImageOrder::LSB_FIRST;
    if matches!(depth, 24 | 32)
        && bits_per_pixel == Some(32)
        && lsb_first
        && masks == Some((0xff_0000, 0xff00, 0xff))
    {
        return Ok(());
    }
    Err(VideoError::Screen(format!(
        "the display's pixels are {depth}-bit colour in {} bits ({} byte first, colour masks \
         {masks:x?}); screen sharing reads only 24-bit colour in 32 bits, least significant \
         byte first",
        bits_per_pixel.map_or_else(|| "?".to_owned(), |b| b.to_string()),
        if lsb_first { "least" } else { "most" },
    )))
}

/// The size a `width` x `height` screen is sent at: itself (rounded down to even) if it
/// fits in [`MAX_SCREEN_SIZE`], else scaled down to fit, keeping its aspect ratio.
fn output_size(width: u32, height: u32) -> Option<(u32, u32)> {
    let (max_w, max_h) = MAX_SCREEN_SIZE;
    let (w, h) = if width <= max_w && height <= max_h {
        (width, height)
    } else if u64::from(width) * u64::from(max_h) >= u64::from(height) * u64::from(max_w) {
        // Wider than 16:9: the width decides.
        let h = u64::from(height) * u64::from(max_w) / u64::from(width);
        (max_w, u32::try_from(h).ok()?)
    } else {
        let w = u64::from(width) * u64::from(max_h) / u64::from(height);
        (u32::try_from(w).ok()?, max_h)
    };
    let (w, h) = (w & !1, h & !1);
    (w > 0 && h > 0).then_some((w, h))
}

/// The cursor as XFixes gives it: premultiplied ARGB, placed on the monitor.
struct Cursor {
    /// Top-left corner relative to the monitor (may be outside it).
    left: i32,
    top: i32,
    width: usize,
    height: usize,
    pixels: Vec<u32>,
    serial: u32,
}

impl Cursor {
    /// The part of the cursor on a `width` x `height` monitor: columns and rows, in
    /// monitor coordinates; `None` if none of it is.
    fn visible(&self, width: usize, height: usize) -> Option<(usize, usize, usize, usize)> {
        let clamp = |v: i64, max: usize| v.clamp(0, max as i64) as usize;
        let (left, top) = (i64::from(self.left), i64::from(self.top));
        let x0 = clamp(left, width);
        let x1 = clamp(left + self.width as i64, width);
        let y0 = clamp(top, height);
        let y1 = clamp(top + self.height as i64, height);
        (x0 < x1 && y0 < y1 && self.pixels.len() >= self.width * self.height)
            .then_some((x0, x1, y0, y1))
    }

    /// What makes the cursor look different in the picture.
    fn key(&self, width: usize, height: usize) -> Option<(u32, i32, i32)> {
        self.visible(width, height)
            .map(|_| (self.serial, self.left, self.top))
    }
}

/// Draws the cursor into `raw` (rows of `width` BGRX pixels), first copying the pixels it
/// covers into `under` so that [`restore_under_cursor`] can put them back.
fn draw_cursor(raw: &mut [u8], width: usize, height: usize, cursor: &Cursor, under: &mut Vec<u8>) {
    under.clear();
    let Some((x0, x1, y0, y1)) = cursor.visible(width, height) else {
        return;
    };
    // In range: `visible` clipped the rectangle to both the monitor and the cursor.
    let cursor_x = (x0 as i64 - i64::from(cursor.left)) as usize;
    for y in y0..y1 {
        let cursor_y = (y as i64 - i64::from(cursor.top)) as usize;
        let start = cursor_y * cursor.width + cursor_x;
        let Some(source) = cursor.pixels.get(start..start + (x1 - x0)) else {
            return;
        };
        let Some(row) = raw.get_mut((y * width + x0) * 4..(y * width + x1) * 4) else {
            return;
        };
        under.extend_from_slice(row);
        for (pixel, &argb) in row.chunks_exact_mut(4).zip(source) {
            let [blue, green, red, alpha] = argb.to_le_bytes();
            let keep = 255 - u16::from(alpha);
            for (channel, add) in pixel.iter_mut().zip([blue, green, red]) {
                let below = (u16::from(*channel) * keep + 127) / 255;
                *channel = (below + u16::from(add)).min(255) as u8;
            }
        }
    }
}

/// Puts back what [`draw_cursor`] covered, so the next reading compares with the screen.
fn restore_under_cursor(
    raw: &mut [u8],
    width: usize,
    height: usize,
    cursor: &Cursor,
    under: &[u8],
) {
    let Some((x0, x1, y0, y1)) = cursor.visible(width, height) else {
        return;
    };
    let saved = under.chunks_exact((x1 - x0) * 4);
    for (y, saved) in (y0..y1).zip(saved) {
        if let Some(row) = raw.get_mut((y * width + x0) * 4..(y * width + x1) * 4) {
            row.copy_from_slice(saved);
        }
    }
}

/// What went wrong reading the picture.
enum ReadError {
    Lost(ConnectionError),
    /// The server refused (the monitor moved off the screen between two requests).
    Refused(String),
    Format(String),
}

impl From<ConnectionError> for ReadError {
    fn from(err: ConnectionError) -> ReadError {
        ReadError::Lost(err)
    }
}

/// Reads the monitor's rectangle of the root window into `raw` (rows of BGRX pixels,
/// `monitor.width` wide), band by band. Returns whether anything changed since the last
/// reading, which `raw` holds.
fn read_picture(display: &Display, monitor: &Monitor, raw: &mut [u8]) -> Result<bool, ReadError> {
    let row_bytes = usize::from(monitor.width) * 4;
    let rows_per_band = (BAND_BYTES / row_bytes.max(1)).clamp(1, usize::from(u16::MAX));
    let mut bands = raw.chunks_mut(rows_per_band * row_bytes);
    let mut starts = (0..usize::from(monitor.height)).step_by(rows_per_band);
    let mut pending = VecDeque::with_capacity(BANDS_IN_FLIGHT);
    let mut changed = false;
    loop {
        while pending.len() < BANDS_IN_FLIGHT {
            let Some(start) = starts.next() else { break };
            let rows = rows_per_band.min(usize::from(monitor.height) - start);
            let y = i32::from(monitor.y) + start as i32;
            let (y, rows) = match (i16::try_from(y), u16::try_from(rows)) {
                (Ok(y), Ok(rows)) => (y, rows),
                _ => return Err(ReadError::Format("the monitor is off the screen".into())),
            };
            let cookie = xproto::get_image(
                &display.conn,
                ImageFormat::Z_PIXMAP,
                display.root,
                monitor.x,
                y,
                monitor.width,
                rows,
                !0,
            )?;
            pending.push_back(cookie);
        }
        let Some(cookie) = pending.pop_front() else {
            return Ok(changed);
        };
        let Some(band) = bands.next() else {
            return Err(ReadError::Format("more bands than rows".into()));
        };
        let reply = match cookie.raw_reply() {
            Ok(reply) => reply,
            Err(ReplyError::ConnectionError(err)) => return Err(ReadError::Lost(err)),
            Err(ReplyError::X11Error(err)) => {
                return Err(ReadError::Refused(format!("{:?}", err.error_kind)));
            }
        };
        // A GetImage reply: 32 bytes of header (the depth in byte 1), then the pixels.
        let depth = reply.get(1).copied();
        let pixels = reply.get(32..32 + band.len());
        match pixels {
            Some(pixels) if depth == Some(display.depth) => {
                if band != pixels {
                    band.copy_from_slice(pixels);
                    changed = true;
                }
            }
            _ => {
                return Err(ReadError::Format(format!(
                    "a {}-byte picture of depth {depth:?} where {} bytes of depth {} were due",
                    reply.len().saturating_sub(32),
                    band.len(),
                    display.depth
                )));
            }
        }
    }
}

/// A monitor of an X display as a video source.
pub struct ScreenSource {
    display: Display,
    index: usize,
    monitor: Monitor,
    max_fps: u32,
    frame_interval: Duration,
    still_interval: Duration,
    /// When to read the screen next (`None`: at once).
    next_read: Option<Instant>,
    /// When the last frame was returned, on the reading schedule.
    last_sent: Option<Instant>,
    /// The monitor's pixels as last read (BGRX, no cursor), compared with the next reading.
    raw: Vec<u8>,
    /// Whether `raw` holds a reading (not after a start or a change of size).
    raw_valid: bool,
    /// The cursor as last read, and what it looked like in the last picture made.
    cursor: Option<Cursor>,
    drawn_cursor: Option<(u32, i32, i32)>,
    /// The pixels under the cursor while it is drawn into `raw`.
    under_cursor: Vec<u8>,
    /// Readings the server refused in a row.
    refusals: u32,
    /// `raw` scaled to the output size (empty when no scaling is needed).
    scaled: Vec<u8>,
    resizer: Resizer,
    /// The last picture made, at the output size; returned again while nothing changes.
    picture: I420Frame,
}

impl ScreenSource {
    /// Connects to the display and finds the monitor. `max_fps` is the most frames a
    /// second `next_frame` returns (the call uses 15).
    pub fn open(selector: &ScreenSelector, max_fps: u32) -> Result<ScreenSource, VideoError> {
        let display = Display::connect(selector.display.as_deref())?;
        let monitor = display
            .monitors()?
            .into_iter()
            .nth(selector.monitor)
            .ok_or(VideoError::ScreenNotFound(selector.monitor))?;
        let max_fps = max_fps.max(1);
        // Rounded up, so that three frames at 15 fps span the full 200 ms of a still frame
        // (1 s / 15 rounded down is 66,666,666 ns: three of those fall just short).
        let frame_interval = Duration::from_nanos(1_000_000_000u64.div_ceil(u64::from(max_fps)));
        let mut source = ScreenSource {
            display,
            index: selector.monitor,
            monitor: monitor.clone(),
            max_fps,
            frame_interval,
            // At most max_fps, even for a still screen.
            still_interval: STILL_INTERVAL.max(frame_interval),
            next_read: None,
            last_sent: None,
            raw: Vec::new(),
            raw_valid: false,
            cursor: None,
            drawn_cursor: None,
            under_cursor: Vec::new(),
            refusals: 0,
            scaled: Vec::new(),
            resizer: Resizer::new(),
            picture: I420Frame::black(2, 2)?,
        };
        source.place(monitor)?;
        Ok(source)
    }

    /// Sizes the buffers for the monitor where it is now (at the start and when it
    /// changes size: the only allocations of the picture's size).
    fn place(&mut self, monitor: Monitor) -> Result<(), VideoError> {
        if monitor.width == 0 || monitor.height == 0 {
            return Err(VideoError::ScreenLost(format!(
                "{} was switched off",
                self.describe()
            )));
        }
        let (width, height) = (u32::from(monitor.width), u32::from(monitor.height));
        let (out_w, out_h) = output_size(width, height).ok_or_else(|| {
            VideoError::Screen(format!("a {width}x{height} screen is too small to share"))
        })?;
        self.raw = vec![0; width as usize * height as usize * 4];
        self.raw_valid = false;
        let scaling = (out_w, out_h) != (width & !1, height & !1);
        self.scaled = if scaling {
            vec![0; out_w as usize * out_h as usize * 4]
        } else {
            Vec::new()
        };
        self.picture = I420Frame::black(out_w, out_h)?;
        self.monitor = monitor;
        Ok(())
    }

    fn describe(&self) -> String {
        let number = self.index + 1;
        if self.monitor.atom.is_some() {
            format!("screen {number} ({})", self.monitor.name)
        } else {
            format!("screen {number}")
        }
    }

    /// Sleeps until the next reading is due; returns when it was due (now if late).
    fn wait(&mut self) -> Instant {
        let now = Instant::now();
        let due = self.next_read.unwrap_or(now);
        if due > now {
            std::thread::sleep(due - now);
        }
        due.max(now)
    }

    /// Reads the cursor (if XFixes is there) and the picture, after checking with RandR
    /// that the monitor is still there and where. Returns whether the picture would look
    /// different from the last one made.
    fn read(&mut self) -> Result<bool, VideoError> {
        let (places, cursor) = {
            let display = &self.display;
            let (conn, name) = (&display.conn, &display.name);
            // Both questions at once, one round trip.
            let places = match self.monitor.atom {
                Some(_) => Some(
                    randr::get_monitors(conn, display.root, true)
                        .map_err(|err| lost(name, &err))?,
                ),
                None => None,
            };
            let cursor = match display.xfixes {
                true => Some(xfixes::get_cursor_image(conn).map_err(|err| lost(name, &err))?),
                false => None,
            };
            let places = places
                .map(|cookie| cookie.reply())
                .transpose()
                .map_err(|err| reply_error(name, "the list of monitors", err))?;
            let cursor = cursor
                .map(|cookie| cookie.reply())
                .transpose()
                .map_err(|err| reply_error(name, "the cursor", err))?;
            (places, cursor)
        };
        if let Some(places) = places {
            self.follow_monitor(&places.monitors)?;
        }
        self.cursor = cursor.map(|reply| Cursor {
            left: i32::from(reply.x) - i32::from(reply.xhot) - i32::from(self.monitor.x),
            top: i32::from(reply.y) - i32::from(reply.yhot) - i32::from(self.monitor.y),
            width: usize::from(reply.width),
            height: usize::from(reply.height),
            pixels: reply.cursor_image,
            serial: reply.cursor_serial,
        });
        let name = &self.display.name;
        let changed = match read_picture(&self.display, &self.monitor, &mut self.raw) {
            Ok(changed) => changed,
            Err(ReadError::Lost(err)) => return Err(lost(name, &err)),
            Err(ReadError::Refused(kind)) => {
                // The screen may have shrunk under the monitor between the two requests:
                // the next reading finds it where it is now. Twice in a row is not that.
                self.refusals += 1;
                if self.refusals > 1 {
                    return Err(VideoError::Screen(format!(
                        "the X display {name} refused the picture of {} ({kind})",
                        self.describe()
                    )));
                }
                self.raw_valid = false;
                return Ok(false);
            }
            Err(ReadError::Format(what)) => {
                return Err(VideoError::Screen(format!(
                    "unexpected picture from the X display {name}: {what}"
                )));
            }
        };
        self.refusals = 0;
        let was_valid = std::mem::replace(&mut self.raw_valid, true);
        let (width, height) = self.size();
        let cursor = self.cursor.as_ref().and_then(|c| c.key(width, height));
        Ok(changed || !was_valid || cursor != self.drawn_cursor)
    }

    /// Follows the monitor to where RandR says it is now; an error if it is gone.
    fn follow_monitor(&mut self, places: &[randr::MonitorInfo]) -> Result<(), VideoError> {
        let Some(place) = places.iter().find(|m| Some(m.name) == self.monitor.atom) else {
            return Err(VideoError::ScreenLost(format!(
                "{} was disconnected",
                self.describe()
            )));
        };
        let monitor = Monitor {
            atom: Some(place.name),
            name: self.monitor.name.clone(),
            primary: place.primary,
            x: place.x,
            y: place.y,
            width: place.width,
            height: place.height,
        };
        if !monitor.same_place(&self.monitor) {
            self.place(monitor)?;
        }
        Ok(())
    }

    fn size(&self) -> (usize, usize) {
        (
            usize::from(self.monitor.width),
            usize::from(self.monitor.height),
        )
    }

    /// Makes `picture` from `raw` and the cursor: draw the cursor, scale, convert, and
    /// take the cursor out again.
    fn make_picture(&mut self) -> Result<(), VideoError> {
        let (width, height) = self.size();
        if let Some(cursor) = &self.cursor {
            draw_cursor(&mut self.raw, width, height, cursor, &mut self.under_cursor);
        }
        let made = self.scale_and_convert();
        if let Some(cursor) = &self.cursor {
            restore_under_cursor(&mut self.raw, width, height, cursor, &self.under_cursor);
        }
        self.drawn_cursor = self.cursor.as_ref().and_then(|c| c.key(width, height));
        made
    }

    fn scale_and_convert(&mut self) -> Result<(), VideoError> {
        let (width, height) = (
            u32::from(self.monitor.width),
            u32::from(self.monitor.height),
        );
        if self.scaled.is_empty() {
            // Fits: converted as it is (the last column or row dropped if odd).
            return self.picture.set_from_bgrx(&self.raw, width * 4);
        }
        let (out_w, out_h) = (self.picture.width(), self.picture.height());
        let scale_error = |err: String| VideoError::Screen(format!("scaling failed: {err}"));
        let source = ImageRef::new(width, height, &self.raw, PixelType::U8x4)
            .map_err(|err| scale_error(err.to_string()))?;
        let mut target = Image::from_slice_u8(out_w, out_h, &mut self.scaled, PixelType::U8x4)
            .map_err(|err| scale_error(err.to_string()))?;
        // Hamming: as cheap as bilinear, and sharper when scaling down (text stays
        // readable). The fourth byte is padding, not alpha.
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Hamming))
            .use_alpha(false);
        self.resizer
            .resize(&source, &mut target, &options)
            .map_err(|err| scale_error(err.to_string()))?;
        self.picture.set_from_bgrx(&self.scaled, out_w * 4)
    }
}

impl VideoSource for ScreenSource {
    fn name(&self) -> String {
        let size = format!("{}x{}", self.monitor.width, self.monitor.height);
        let number = self.index + 1;
        if self.monitor.atom.is_some() {
            format!("Screen {number}: {} ({size})", self.monitor.name)
        } else {
            format!("Screen {number} ({size})")
        }
    }

    fn format(&self) -> VideoFormat {
        VideoFormat {
            width: self.picture.width(),
            height: self.picture.height(),
            fps: self.max_fps,
        }
    }

    /// Reads the screen until it changed (or 200 ms passed since the last frame), at most
    /// `max_fps` times a second, and returns the picture.
    fn next_frame(&mut self) -> Result<I420Frame, VideoError> {
        loop {
            let due = self.wait();
            let taken = Instant::now();
            let changed = self.read()?;
            let still_due = self
                .last_sent
                .is_none_or(|last| due >= last + self.still_interval);
            if changed {
                self.make_picture()?;
            }
            if changed || (still_due && self.last_sent.is_some()) {
                self.picture.captured_at = taken;
                self.last_sent = Some(due);
                self.next_read = Some(due + self.frame_interval);
                return Ok(self.picture.clone());
            }
            let next = due + self.frame_interval;
            self.next_read = Some(match self.last_sent {
                Some(last) => next.min(last + self.still_interval),
                None => next,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_screens_are_scaled_to_fit_keeping_their_shape() {
        for (screen, sent) in [
            ((1280, 720), Some((1280, 720))),
            ((1920, 1080), Some((1920, 1080))),
            ((1366, 768), Some((1366, 768))),
            ((1365, 767), Some((1364, 766))),
            ((7680, 4320), Some((1920, 1080))),
            ((3840, 2160), Some((1920, 1080))),
            ((2560, 1600), Some((1728, 1080))),
            ((2560, 1440), Some((1920, 1080))),
            ((3440, 1440), Some((1920, 802))),
            ((1080, 1920), Some((606, 1080))),
            ((1, 1), None),
            ((7680, 3), None),
        ] {
            assert_eq!(output_size(screen.0, screen.1), sent, "{screen:?}");
        }
    }

    #[test]
    fn without_an_x_display_the_error_says_why() {
        let plain = no_display(false).to_string();
        assert!(plain.contains("DISPLAY is not set"), "{plain}");
        let wayland = no_display(true).to_string();
        assert!(
            wayland.contains(
                "Wayland screen capture needs xdg-desktop-portal and PipeWire, which this \
                 build does not include"
            ),
            "{wayland}"
        );
        assert!(matches!(no_display(true), VideoError::ScreenUnavailable(_)));
    }

    #[test]
    fn the_cursor_is_blended_where_it_overlaps_and_taken_out_again() {
        // A 4x3 grey monitor; a 2x2 cursor hanging off its right edge at (3, 1).
        let (width, height) = (4, 3);
        let mut raw = vec![100u8; width * height * 4];
        let original = raw.clone();
        let cursor = Cursor {
            left: 3,
            top: 1,
            width: 2,
            height: 2,
            // Opaque white, half-transparent black (premultiplied: colour 0), then two
            // pixels off the monitor.
            pixels: vec![0xffff_ffff, 0x8000_0000, 0xff00_00ff, 0xff00_00ff],
            serial: 7,
        };
        let mut under = Vec::new();
        draw_cursor(&mut raw, width, height, &cursor, &mut under);
        let pixel = |raw: &[u8], x: usize, y: usize| {
            raw[(y * width + x) * 4..(y * width + x) * 4 + 3].to_vec()
        };
        assert_eq!(pixel(&raw, 3, 1), [255, 255, 255]);
        assert_eq!(pixel(&raw, 3, 2), [255, 0, 0], "opaque blue (BGRX)");
        assert_eq!(pixel(&raw, 2, 1), [100, 100, 100]);
        assert_eq!(cursor.key(width, height), Some((7, 3, 1)));
        restore_under_cursor(&mut raw, width, height, &cursor, &under);
        assert_eq!(raw, original);

        // Half-transparent black over grey halves it.
        let half = Cursor {
            left: 0,
            top: 0,
            width: 1,
            height: 1,
            pixels: vec![0x8000_0000],
            serial: 1,
        };
        draw_cursor(&mut raw, width, height, &half, &mut under);
        assert_eq!(pixel(&raw, 0, 0), [50, 50, 50]);

        // Off the monitor: nothing drawn, no key.
        let away = Cursor { left: -5, ..half };
        assert_eq!(away.key(width, height), None);
    }
}
