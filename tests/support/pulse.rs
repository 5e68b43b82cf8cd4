//! A private PulseAudio server for tests: a null sink `vsink` whose monitor is remapped into
//! a virtual microphone `vmic`, so what a speaker plays can be recorded back. Shared by the
//! media crate's sound test and the app's device-loss test (included there by `#[path]`).
//!
//! `start` points this process at the server through `PULSE_SERVER`, so a test binary that
//! uses it must hold only that one test, and call `start` before any audio code runs.

#![allow(dead_code)] // Each test binary uses a different part of this.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PulseServer {
    child: Child,
    dir: PathBuf,
}

impl PulseServer {
    /// Starts the server, or says why it cannot.
    pub fn start() -> Result<PulseServer, String> {
        let dir = std::env::temp_dir().join(format!("confab-pulse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let socket = dir.join("native");
        let child = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--disable-shm=yes",
            ])
            .arg("-L")
            .arg(format!(
                "module-native-protocol-unix auth-anonymous=1 socket={}",
                socket.display()
            ))
            .args([
                "-L",
                "module-null-sink sink_name=vsink rate=48000 channels=2",
            ])
            .args([
                "-L",
                "module-remap-source source_name=vmic master=vsink.monitor",
            ])
            .env("XDG_RUNTIME_DIR", &dir)
            .env("HOME", &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run pulseaudio ({e}); run scripts/install-deps.sh"))?;
        let server = PulseServer { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if Instant::now() > deadline {
                return Err("pulseaudio did not create its socket within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: the only test in its binary, and no audio code has run yet: no other
        // thread reads the environment while it changes.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("PULSE_SERVER", format!("unix:{}", socket.display()))
        };
        server.pactl(&["set-default-sink", "vsink"])?;
        server.pactl(&["set-default-source", "vmic"])?;
        Ok(server)
    }

    /// Runs `pactl` against this server.
    pub fn pactl(&self, args: &[&str]) -> Result<(), String> {
        let status = Command::new("pactl")
            .args(args)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("pactl: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("pactl {} failed", args.join(" ")))
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PulseServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
