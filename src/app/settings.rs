//! What the user chooses and keeps across restarts (eframe storage), and how it becomes the
//! engine's configuration. Runtime handles (the engine, devices, textures) live elsewhere.

use std::path::PathBuf;

use confab_call::{
    AudioInput, AudioOutput, DEFAULT_MAX_FILE_SIZE, EngineConfig, FileSettings, Identity,
    NetworkConfig, SignalingConfig, Timeouts, VideoInput,
};
use confab_media::audio::ProcessingSettings;
use confab_media::video::{CameraSelector, VideoFormat};
use confab_protocol::IceServer;
use serde::{Deserialize, Serialize};

/// The eframe storage key the settings live under.
pub const STORAGE_KEY: &str = "confab-settings";

/// The server `make run` starts, and where a fresh install looks first.
pub const DEFAULT_SERVER_URL: &str = "ws://127.0.0.1:8787/ws";

/// A public STUN server, so calls across NATs work out of the box; users may remove it.
pub const DEFAULT_STUN: &str = "stun:stun.l.google.com:19302";

/// Video sizes offered in the settings.
pub const RESOLUTIONS: [(u32, u32); 4] = [(320, 240), (640, 480), (960, 540), (1280, 720)];

/// Where our video comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CameraChoice {
    /// A camera by name; `None` for the system's first camera.
    Camera(Option<String>),
    /// The moving test card: for demos and machines without a camera.
    TestPattern,
    /// Send no video.
    Off,
}

impl CameraChoice {
    pub fn label(&self) -> String {
        match self {
            CameraChoice::Camera(None) => "Default camera".into(),
            CameraChoice::Camera(Some(name)) => name.clone(),
            CameraChoice::TestPattern => "Test pattern".into(),
            CameraChoice::Off => "No video".into(),
        }
    }

    pub fn video_input(&self) -> VideoInput {
        match self {
            CameraChoice::Camera(None) => VideoInput::Camera(CameraSelector::Default),
            CameraChoice::Camera(Some(name)) => {
                VideoInput::Camera(CameraSelector::Name(name.clone()))
            }
            CameraChoice::TestPattern => VideoInput::TestPattern,
            CameraChoice::Off => VideoInput::None,
        }
    }
}

/// One STUN or TURN server the user entered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceEntry {
    /// `stun:host:port` or `turn:host:port?transport=udp`.
    pub url: String,
    pub username: String,
    pub credential: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub name: String,
    pub server_url: String,
    /// Empty when the server needs none.
    pub token: String,
    pub camera: CameraChoice,
    pub width: u32,
    pub height: u32,
    /// Microphone by name; `None` for the default one.
    pub microphone: Option<String>,
    /// Speaker by name; `None` for the default one.
    pub speaker: Option<String>,
    /// Audio on: send the microphone and play the peer.
    pub audio_enabled: bool,
    /// Cancel the echo of the peer's voice from our speaker in our microphone.
    pub echo_cancellation: bool,
    /// Take steady background noise (fans, hum) out of the microphone.
    pub noise_suppression: bool,
    /// Keep our voice at a steady level, near or far from the microphone.
    pub gain_control: bool,
    pub ice_servers: Vec<IceEntry>,
    /// Only TURN relays: the peer never learns our address.
    pub relay_only: bool,
    /// Show the picture-in-picture self-view.
    pub self_view: bool,
    /// The chat pane is open.
    pub chat_open: bool,
    /// A port on this machine the user chose to host the bundled server on (besides
    /// the default one, which needs no choosing).
    pub host_port: Option<u16>,
    /// Where received files are saved; `None`: the Downloads folder (XDG user dir).
    pub download_dir: Option<PathBuf>,
    /// Largest file sent or accepted, in MiB.
    pub max_file_mib: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            name: default_name(),
            server_url: DEFAULT_SERVER_URL.into(),
            token: String::new(),
            camera: CameraChoice::Camera(None),
            width: 640,
            height: 480,
            microphone: None,
            speaker: None,
            audio_enabled: true,
            echo_cancellation: true,
            noise_suppression: true,
            gain_control: true,
            ice_servers: vec![IceEntry {
                url: DEFAULT_STUN.into(),
                ..IceEntry::default()
            }],
            relay_only: false,
            self_view: true,
            chat_open: true,
            host_port: None,
            download_dir: None,
            max_file_mib: DEFAULT_MAX_FILE_SIZE >> 20,
        }
    }
}

/// The name to suggest on first run: the user's full name from the system, else the
/// login name, else a neutral one.
pub fn suggested_name() -> String {
    match whoami::realname() {
        Ok(name) if !name.trim().is_empty() && name.trim() != "root" => name.trim().to_owned(),
        _ => default_name(),
    }
}

/// The login name, else a neutral one; the user changes it in the settings.
fn default_name() -> String {
    let user = std::env::var("USER").unwrap_or_default();
    let user = user.trim();
    if user.is_empty() || user == "root" {
        "Guest".into()
    } else {
        user.into()
    }
}

impl Settings {
    pub fn video_format(&self) -> VideoFormat {
        VideoFormat {
            width: self.width,
            height: self.height,
            fps: 30,
        }
    }

    pub fn audio_input(&self) -> AudioInput {
        if self.audio_enabled {
            AudioInput::Microphone(self.microphone.clone())
        } else {
            AudioInput::None
        }
    }

    pub fn audio_output(&self) -> AudioOutput {
        if self.audio_enabled {
            AudioOutput::Speaker(self.speaker.clone())
        } else {
            AudioOutput::None
        }
    }

    pub fn audio_processing(&self) -> ProcessingSettings {
        ProcessingSettings {
            echo_cancellation: self.echo_cancellation,
            noise_suppression: self.noise_suppression,
            gain_control: self.gain_control,
        }
    }

    /// Changing these means logging in again.
    pub fn signaling(&self) -> SignalingConfig {
        SignalingConfig {
            url: self.server_url.trim().to_owned(),
            name: self.name.trim().to_owned(),
            token: Some(self.token.trim().to_owned()).filter(|t| !t.is_empty()),
        }
    }

    pub fn network(&self) -> NetworkConfig {
        let ice_servers = self
            .ice_servers
            .iter()
            .filter(|entry| !entry.url.trim().is_empty())
            .map(|entry| IceServer {
                urls: vec![entry.url.trim().to_owned()],
                username: Some(entry.username.clone()).filter(|u| !u.is_empty()),
                credential: Some(entry.credential.clone()).filter(|c| !c.is_empty()),
            })
            .collect();
        NetworkConfig {
            ice_servers,
            relay_only: self.relay_only,
            ..NetworkConfig::default()
        }
    }

    pub fn engine_config(&self, identity: Identity) -> EngineConfig {
        EngineConfig {
            signaling: self.signaling(),
            network: self.network(),
            video_input: self.camera.video_input(),
            video_format: self.video_format(),
            audio_input: self.audio_input(),
            audio_output: self.audio_output(),
            audio_processing: self.audio_processing(),
            record_video: None,
            render_video: true,
            timeouts: Timeouts::default(),
            files: self.files(),
            identity,
        }
    }

    /// Where received files go and how large they may be.
    pub fn files(&self) -> FileSettings {
        let download_dir = self.download_dir.clone().unwrap_or_else(|| {
            dirs::download_dir()
                .or_else(|| dirs::home_dir().map(|home| home.join("Downloads")))
                .unwrap_or_else(std::env::temp_dir)
        });
        FileSettings {
            download_dir,
            max_size: self.max_file_mib.saturating_mul(1 << 20),
        }
    }

    /// Whether going from `self` to `other` means logging in again (the engine takes
    /// identity and network settings at start; devices change by command).
    pub fn needs_reconnect(&self, other: &Settings) -> bool {
        let key = |s: &Settings| (s.signaling(), s.ice_servers.clone(), s.relay_only);
        key(self) != key(other)
    }

    /// What is wrong with these settings, before the server says so.
    pub fn problem(&self) -> Option<SettingsProblem> {
        if self.name.trim().is_empty() {
            return Some(SettingsProblem::NoName);
        }
        let url = self.server_url.trim();
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Some(SettingsProblem::ServerUrl);
        }
        if self.relay_only && !self.ice_servers.iter().any(|e| e.url.starts_with("turn")) {
            return Some(SettingsProblem::RelayWithoutTurn);
        }
        None
    }
}

/// A setting that keeps Confab from connecting. The settings window shows it next to its
/// field ([`SettingsProblem::here`]); elsewhere it says where to fix it (`Display`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsProblem {
    NoName,
    ServerUrl,
    RelayWithoutTurn,
}

impl SettingsProblem {
    /// In words, next to the field it is about.
    pub fn here(self) -> &'static str {
        match self {
            SettingsProblem::NoName => "Choose a display name.",
            SettingsProblem::ServerUrl => "The server URL must start with ws:// or wss://.",
            SettingsProblem::RelayWithoutTurn => "Relay-only needs a TURN server (turn:...).",
        }
    }
}

impl std::fmt::Display for SettingsProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fix = match self {
            SettingsProblem::NoName => "Choose a display name in Settings.",
            SettingsProblem::ServerUrl => {
                "The server URL in Settings must start with ws:// or wss://."
            }
            SettingsProblem::RelayWithoutTurn => {
                "Relay-only needs a TURN server (turn:...): add one in Settings."
            }
        };
        f.write_str(fix)
    }
}

/// Makes the settings file readable by this user only: its folder 0700 (so whatever file
/// eframe writes there is out of others' reach), and the file itself 0600 if it exists.
#[cfg(unix)]
pub fn keep_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    if path.exists() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Elsewhere the user's profile folder is already private.
#[cfg(not(unix))]
pub fn keep_private(_path: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_settings_file_and_its_folder_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("confab-private-{}", std::process::id()));
        let path = dir.join("profile").join("settings.ron");
        keep_private(&path).expect("a new folder");
        std::fs::write(&path, "()").expect("writable by us");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        keep_private(&path).expect("an existing file");
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
        };
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("a folder")), 0o700);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn old_or_partial_settings_load_with_defaults() {
        let loaded: Settings = serde_json::from_str(r#"{"name":"Ada"}"#).expect("valid JSON");
        assert_eq!(loaded.name, "Ada");
        assert_eq!(loaded.server_url, DEFAULT_SERVER_URL);
        assert!(loaded.audio_enabled);
        // Settings saved before audio processing existed: every stage on.
        assert_eq!(loaded.audio_processing(), ProcessingSettings::default());
        let one_off: Settings =
            serde_json::from_str(r#"{"noise_suppression":false}"#).expect("valid JSON");
        let processing = one_off.audio_processing();
        assert!(processing.echo_cancellation && processing.gain_control);
        assert!(!processing.noise_suppression);
        let identity = Identity::generate().expect("an identity");
        assert_eq!(one_off.engine_config(identity).audio_processing, processing);
    }

    #[test]
    fn audio_off_means_no_devices() {
        let settings = Settings {
            audio_enabled: false,
            ..Settings::default()
        };
        assert_eq!(settings.audio_input(), AudioInput::None);
        assert_eq!(settings.audio_output(), AudioOutput::None);
    }

    #[test]
    fn ice_entries_become_servers_and_blank_ones_are_skipped() {
        let settings = Settings {
            ice_servers: vec![
                IceEntry {
                    url: " turn:relay.example:3478 ".into(),
                    username: "u".into(),
                    credential: "p".into(),
                },
                IceEntry::default(),
            ],
            ..Settings::default()
        };
        let network = settings.network();
        assert_eq!(network.ice_servers.len(), 1);
        assert_eq!(network.ice_servers[0].urls, ["turn:relay.example:3478"]);
        assert_eq!(network.ice_servers[0].username.as_deref(), Some("u"));
    }

    #[test]
    fn problems_are_named_where_they_are_fixed() {
        let blank = Settings {
            name: " ".into(),
            ..Settings::default()
        };
        assert_eq!(blank.problem(), Some(SettingsProblem::NoName));
        let http = Settings {
            server_url: "http://x".into(),
            ..Settings::default()
        };
        let problem = http.problem().expect("http is not a WebSocket URL");
        assert!(problem.here().contains("ws://") && !problem.here().contains("Settings"));
        assert!(problem.to_string().contains("in Settings"), "{problem}");
        let relay = Settings {
            relay_only: true,
            ..Settings::default()
        };
        assert_eq!(relay.problem(), Some(SettingsProblem::RelayWithoutTurn));
        assert_eq!(Settings::default().problem(), None);
    }
}
