//! Device work the UI must never wait for, each on its own named thread:
//! - `device-watch` lists cameras, microphones and speakers now and then, so the settings
//!   notice devices coming and going;
//! - `device-preview` opens the chosen camera and microphone while the settings are open
//!   outside a call, for the live preview and the input level meter.
//!
//! Results come back through latest-value slots plus a wake callback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use confab_call::{Wake, open_video};
use confab_media::audio::{
    AudioSource, FRAME_SAMPLES, InputControl, MicrophoneSource, list_devices,
};
use confab_media::slot::LatestSlot;
use confab_media::video::{FrameSlot, list_cameras};

use super::settings::Settings;
use super::ui::DeviceLists;

/// How often the device lists are read while someone looks at them.
const REFRESH: Duration = Duration::from_secs(2);

/// Lists devices on the `device-watch` thread: once at start, then every [`REFRESH`]
/// while `active` is set. Publishes only when something changed.
pub struct DeviceWatcher {
    pub lists: Arc<LatestSlot<DeviceLists>>,
    active: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl DeviceWatcher {
    pub fn start(wake: Wake) -> DeviceWatcher {
        let lists = Arc::new(LatestSlot::new());
        let active = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_lists, thread_active, thread_stop) =
            (lists.clone(), active.clone(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("device-watch".into())
            .spawn(move || {
                let mut last = None;
                loop {
                    let now = read_lists();
                    if last.as_ref() != Some(&now) {
                        thread_lists.publish(now.clone());
                        wake();
                        last = Some(now);
                    }
                    // Sleep in short steps so that stopping is quick.
                    let mut waited = Duration::ZERO;
                    while waited < REFRESH || !thread_active.load(Ordering::Relaxed) {
                        if thread_stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                        waited += Duration::from_millis(100);
                    }
                }
            });
        if let Err(err) = spawned {
            lists.publish(DeviceLists {
                problems: vec![format!("Cannot list devices: {err}")],
                ..DeviceLists::default()
            });
        }
        DeviceWatcher {
            lists,
            active,
            stop,
        }
    }

    /// Refresh regularly (the settings are open) or not.
    pub fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Relaxed);
    }
}

impl Drop for DeviceWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn read_lists() -> DeviceLists {
    let mut lists = DeviceLists::default();
    match list_cameras() {
        Ok(cameras) => lists.cameras = cameras.into_iter().map(|c| c.name).collect(),
        Err(err) => lists.problems.push(format!("Cameras: {err}")),
    }
    match list_devices() {
        Ok(audio) => {
            lists.microphones = audio.inputs;
            lists.speakers = audio.outputs;
        }
        Err(err) => lists.problems.push(format!("Audio devices: {err}")),
    }
    if lists.cameras.is_empty() {
        lists
            .problems
            .push("No camera found: the test pattern works without one.".into());
    }
    lists
}

/// What a preview shows: a change restarts it.
#[derive(Debug, Clone, PartialEq)]
struct PreviewKey {
    camera: super::settings::CameraChoice,
    size: (u32, u32),
    microphone: Option<String>,
    audio: bool,
}

impl PreviewKey {
    fn of(settings: &Settings) -> PreviewKey {
        PreviewKey {
            camera: settings.camera.clone(),
            size: (settings.width, settings.height),
            microphone: settings.microphone.clone(),
            audio: settings.audio_enabled,
        }
    }
}

/// The camera and microphone opened for the settings window.
pub struct Preview {
    key: PreviewKey,
    pub frames: Arc<FrameSlot>,
    pub level: Arc<InputControl>,
    pub problems: Arc<LatestSlot<String>>,
    stop: Arc<AtomicBool>,
}

impl Preview {
    /// Opens the devices `settings` name on the `device-preview` thread.
    pub fn start(settings: &Settings, wake: Wake) -> Preview {
        let key = PreviewKey::of(settings);
        let frames = Arc::new(FrameSlot::new());
        let level = Arc::new(InputControl::new());
        let problems = Arc::new(LatestSlot::new());
        let stop = Arc::new(AtomicBool::new(false));
        let input = settings.camera.video_input();
        let format = settings.video_format();
        let microphone = settings.audio_enabled.then(|| settings.microphone.clone());
        let worker = (
            frames.clone(),
            level.clone(),
            problems.clone(),
            stop.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("device-preview".into())
            .spawn(move || {
                let (frames, level, problems, stop) = worker;
                let report = |text: String| {
                    problems.publish(text);
                    wake();
                };
                // Held until the thread ends: dropping it releases the camera.
                let _capture = match open_video(&input, format) {
                    Ok(Some(capture)) => {
                        capture.attach(frames, Some(wake.clone()));
                        Some(capture)
                    }
                    Ok(None) => None,
                    Err(err) => {
                        report(format!("Camera: {err}"));
                        None
                    }
                };
                let mut mic = match microphone.map(|name| MicrophoneSource::open(name.as_deref())) {
                    Some(Ok(mic)) => Some(mic),
                    Some(Err(err)) => {
                        report(format!("Microphone: {err}"));
                        None
                    }
                    None => None,
                };
                let mut frame = vec![0.0f32; FRAME_SAMPLES];
                while !stop.load(Ordering::Relaxed) {
                    match &mut mic {
                        // Paced by the device: one 20 ms frame per read.
                        Some(source) => match source.read(&mut frame) {
                            Ok(()) => level.process(&mut frame),
                            Err(err) => {
                                report(format!("Microphone: {err}"));
                                mic = None;
                            }
                        },
                        None => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            });
        if let Err(err) = spawned {
            problems.publish(format!("Cannot start the preview: {err}"));
        }
        Preview {
            key,
            frames,
            level,
            problems,
            stop,
        }
    }

    /// Whether this preview shows what `settings` choose.
    pub fn matches(&self, settings: &Settings) -> bool {
        self.key == PreviewKey::of(settings)
    }
}

impl Drop for Preview {
    /// Asks the thread to stop without waiting for it (it ends within a frame and then
    /// releases the devices): the UI thread never joins.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
