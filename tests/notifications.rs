//! A call that rings while the window is in the background is announced on the desktop:
//! a real notification server (dunst, on its own D-Bus session bus and virtual display)
//! shows "Bob is calling" with Accept and Decline, choosing Accept there answers the call,
//! the window asks for attention, and the notification goes once the call is answered. A
//! call nobody answered leaves a "Missed call" notification.
//!
//! dunst offers a notification's actions through a menu program (its `dmenu` setting);
//! here that program is a one-line script that picks "Accept", standing in for the user's
//! click. One test in this binary: it points the session bus at the test's own.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;
#[path = "../crates/media/tests/support/xvfb.rs"]
mod xvfb;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use confab_call::Command;
use egui::ViewportCommand;
use support::PATIENCE;
use support::app::{Scene, shows, until};

/// A desktop of its own: a virtual display, a session bus and dunst on both.
struct Desktop {
    children: Vec<Child>,
    /// Dropped (killed) after the children, which draw on it.
    _xvfb: xvfb::Xvfb,
    bus: String,
    display: String,
    dir: PathBuf,
}

impl Desktop {
    fn start() -> Desktop {
        let dir = std::env::temp_dir().join(format!("confab-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("work dir");
        let xvfb = xvfb::Xvfb::start(640, 480);
        let (dbus, bus) = first_line(Process::new("dbus-daemon").args([
            "--session",
            "--nofork",
            "--print-address=1",
        ]));
        let menu = dir.join("pick-accept.sh");
        std::fs::write(&menu, "#!/bin/sh\ngrep -m1 Accept\n").expect("menu script");
        make_executable(&menu);
        let config = dir.join("dunstrc");
        std::fs::write(
            &config,
            format!("[global]\n    dmenu = {}\n", menu.display()),
        )
        .expect("dunst config");
        let mut desktop = Desktop {
            children: vec![dbus],
            bus,
            display: xvfb.display.clone(),
            _xvfb: xvfb,
            dir,
        };
        let dunst = desktop
            .command("dunst")
            .arg("-config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dunst runs (scripts/install-deps.sh installs it)");
        desktop.children.push(dunst);
        desktop.until("dunst answers on the bus", |d| d.displayed().is_some());
        desktop
    }

    fn command(&self, program: &str) -> Process {
        let mut command = Process::new(program);
        command
            .env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus);
        command
    }

    /// Runs `dunstctl <what>`, which must succeed.
    fn ctl(&self, what: &str) {
        let status = self.command("dunstctl").arg(what).status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "dunstctl {what}: {status:?}"
        );
    }

    /// How many notifications are on screen; `None` while dunst does not answer.
    fn displayed(&self) -> Option<u32> {
        let out = self
            .command("dunstctl")
            .args(["count", "displayed"])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    /// Summaries of the notifications dunst has shown and closed, newest first.
    fn history(&self) -> String {
        let out = self
            .command("dunstctl")
            .arg("history")
            .output()
            .expect("dunstctl history");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn until(&self, what: &str, mut done: impl FnMut(&Desktop) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `command` and reads the first line it prints (what dbus-daemon says once it is
/// ready: the bus address).
fn first_line(command: &mut Process) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts (scripts/install-deps.sh installs it)");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    (child, line.trim().to_owned())
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn a_call_in_the_background_rings_on_the_desktop_and_is_answered_there() {
    let desktop = Desktop::start();
    // SAFETY: the only test in this binary, before any thread that reads the environment
    // (the app's runtime, D-Bus) starts.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &desktop.bus)
    };

    let mut scene = Scene::start();
    // The window is in the background.
    scene
        .harness
        .input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .focused = Some(false);
    let alice = scene.rt.block_on(scene.bob.sees("Alice"));
    scene.bob.send(Command::Call { peer: alice });
    let mut asked_for_attention = false;
    until(&mut scene.harness, "the call rings", |h| {
        let commands = &h.output().viewport_output[&egui::ViewportId::ROOT].commands;
        asked_for_attention |= commands.iter().any(|c| {
            matches!(
                c,
                ViewportCommand::RequestUserAttention(egui::UserAttentionType::Critical)
            )
        });
        shows(h, "Bob is calling")
    });
    assert!(asked_for_attention, "the window asks for attention");
    desktop.until("the notification", |d| d.displayed() == Some(1));

    // The user picks Accept in the notification (dunst's menu, our script).
    desktop.ctl("context");
    until(&mut scene.harness, "in the call", |h| {
        h.state().model().in_call()
    });
    scene.rt.block_on(scene.bob.connected());
    desktop.until("the notification gone", |d| d.displayed() == Some(0));

    // Bob hangs up; he calls again and gives up before anyone answers: a missed call.
    scene.bob.send(Command::HangUp);
    until(&mut scene.harness, "the end", |h| shows(h, "Bob hung up"));
    scene.bob_calls();
    desktop.until("ringing again", |d| d.displayed() == Some(1));
    scene.bob.send(Command::HangUp);
    until(&mut scene.harness, "the missed call in the app", |h| {
        shows(h, "Missed call from Bob")
    });
    // The ringing one withdrawn, the missed call said instead.
    desktop.until("one notification: the missed call", |d| {
        d.displayed() == Some(1) && !d.history().contains("Missed call")
    });
    desktop.ctl("close-all");
    desktop.until("the missed call in the history", |d| {
        d.history().contains("Missed call from Bob")
    });
    scene.finish();
    drop(desktop);
}
