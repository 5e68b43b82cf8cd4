//! `confab headless`: a peer without a window, for bots, recording and tests.
//!
//! It logs in, then either calls someone (`--call NAME`) or answers whoever calls
//! (`--answer`), sends and receives media from the configured sources, and ends after the
//! call (or `--calls N` calls). Exit status 0 means every call connected and ended cleanly;
//! anything else prints a one-line reason on stderr and exits non-zero.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use confab_call::{
    AudioInput, AudioOutput, CallState, ChatEvent, Command, Direction, Engine, EngineConfig,
    EngineEvent, FileSettings, Identity, NetworkConfig, PeerIdentity, ServerStatus,
    SignalingConfig, Transfer, TransferState, VideoInput,
};
use confab_media::audio::ProcessingSettings;
use confab_media::video::{CameraSelector, ScreenSelector, VideoFormat};
use confab_protocol::safety::SafetyCode;
use confab_protocol::{HangupReason, IceServer};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::profile::Profile;
use crate::script::Script;

/// How long `--call` waits for the peer to come online.
const PEER_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Args)]
pub struct HeadlessArgs {
    /// Signaling server URL.
    #[arg(long, default_value = "ws://127.0.0.1:8787/ws")]
    server: String,
    /// Display name.
    #[arg(long)]
    name: String,
    /// Token, if the server requires one.
    #[arg(long, env = "CONFAB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Call this peer (by display name). Repeat it for a group call: the first is called,
    /// the others are invited once that call is connected.
    #[arg(long, value_name = "PEER_NAME", conflicts_with = "answer")]
    call: Vec<String>,
    /// Accept every incoming call and every invitation into a group call.
    #[arg(long)]
    answer: bool,
    /// Calls to take part in before exiting; 0 for no limit (a bot).
    #[arg(long, default_value_t = 1)]
    calls: u32,
    /// test-pattern, camera[:INDEX], a .y4m file, none, or screen[:INDEX] (share that
    /// monitor of $DISPLAY in every call, instead of a camera; `confab devices` lists them).
    #[arg(long, default_value = "test-pattern")]
    video: String,
    /// Video size, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x480")]
    size: String,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// tone[:HZ], mic[:NAME], a .wav file, or none.
    #[arg(long, default_value = "tone:440")]
    audio: String,
    /// Play received audio on this speaker (by name; empty for the default).
    #[arg(long, value_name = "NAME")]
    speaker: Option<String>,
    /// Clean a microphone's audio: echo cancellation, noise suppression, gain control.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    audio_processing: Switch,
    /// Write received video here (H.264, Annex B), as decoded frames arrive.
    #[arg(long, value_name = "FILE.h264")]
    record_video: Option<PathBuf>,
    /// Write received audio here (decoded, 48 kHz mono WAV).
    #[arg(long, value_name = "FILE.wav")]
    record_audio: Option<PathBuf>,
    /// Send this chat message once the chat opens (repeatable).
    #[arg(long, value_name = "TEXT")]
    chat: Vec<String>,
    /// Reply "echo: TEXT" to every chat message.
    #[arg(long)]
    echo_chat: bool,
    /// Hang up after this many seconds connected.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Write the final call statistics here, as JSON.
    #[arg(long, value_name = "FILE.json")]
    stats: Option<PathBuf>,
    /// A STUN or TURN server, in addition to the signaling server's (repeatable).
    #[arg(long = "ice-server", value_name = "URL")]
    ice_servers: Vec<String>,
    #[arg(long)]
    turn_username: Option<String>,
    #[arg(long)]
    turn_credential: Option<String>,
    /// Use only TURN relays (hides our address from the peer).
    #[arg(long)]
    relay_only: bool,
    /// Local address to send media from (repeatable), e.g. 127.0.0.1:0.
    #[arg(long = "bind", value_name = "ADDR")]
    bind: Vec<String>,
    /// Ceiling for the video bitrate, bits per second.
    #[arg(long, default_value_t = 2_500_000)]
    max_bitrate: u32,
    /// Send this file once the call is connected (repeatable). Without --duration the call
    /// ends when every file is through.
    #[arg(long, value_name = "PATH")]
    send_file: Vec<PathBuf>,
    /// Accept every file offered and save it in this folder (without it, files are
    /// declined).
    #[arg(long, value_name = "DIR")]
    accept_files: Option<PathBuf>,
    /// Largest file sent or accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = confab_call::DEFAULT_MAX_FILE_SIZE)]
    max_file_size: u64,
    /// Keep the identity in this profile, as the app's --profile does (without it, the
    /// default profile's, the one the app uses).
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// The safety code the call must have (60 digits, spaces allowed): a call whose code
    /// differs is hung up and counts as failed.
    #[arg(long, value_name = "CODE")]
    expect_safety_code: Option<SafetyCode>,
}

/// A stage that is on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

/// The monitor `--video screen[:INDEX]` shares, if that is what it says.
fn shared_screen(spec: &str) -> anyhow::Result<Option<ScreenSelector>> {
    let monitor = match spec.strip_prefix("screen") {
        Some("") => 0,
        Some(index) => match index.strip_prefix(':').map(str::parse) {
            Some(Ok(index)) => index,
            _ => bail!("--video {spec}: use screen or screen:INDEX (a number)"),
        },
        None => return Ok(None),
    };
    Ok(Some(ScreenSelector {
        display: None,
        monitor,
    }))
}

fn video_input(spec: &str) -> anyhow::Result<VideoInput> {
    Ok(match spec {
        "none" => VideoInput::None,
        // Shared once each call connects: no camera.
        _ if spec.starts_with("screen") => VideoInput::None,
        "test-pattern" => VideoInput::TestPattern,
        "camera" => VideoInput::Camera(CameraSelector::Default),
        _ if spec.starts_with("camera:") => {
            let which = &spec["camera:".len()..];
            VideoInput::Camera(match which.parse() {
                Ok(index) => CameraSelector::Index(index),
                Err(_) => CameraSelector::Name(which.to_owned()),
            })
        }
        _ if spec.ends_with(".y4m") => VideoInput::File(PathBuf::from(spec)),
        _ => bail!(
            "--video {spec}: use test-pattern, camera[:INDEX], FILE.y4m, screen[:INDEX] or none"
        ),
    })
}

fn audio_input(spec: &str) -> anyhow::Result<AudioInput> {
    Ok(match spec {
        "none" => AudioInput::None,
        "tone" => AudioInput::Tone(440.0),
        "mic" => AudioInput::Microphone(None),
        _ if spec.starts_with("tone:") => {
            let hz = spec["tone:".len()..]
                .parse()
                .with_context(|| format!("--audio {spec}: not a frequency"))?;
            AudioInput::Tone(hz)
        }
        _ if spec.starts_with("mic:") => {
            AudioInput::Microphone(Some(spec["mic:".len()..].to_owned()))
        }
        _ if spec.ends_with(".wav") => AudioInput::File(PathBuf::from(spec)),
        _ => bail!("--audio {spec}: use tone[:HZ], mic[:NAME], FILE.wav or none"),
    })
}

fn video_size(spec: &str) -> anyhow::Result<(u32, u32)> {
    let (w, h) = spec
        .split_once('x')
        .with_context(|| format!("--size {spec}: use WIDTHxHEIGHT"))?;
    Ok((w.parse()?, h.parse()?))
}

impl HeadlessArgs {
    fn engine_config(&self, identity: Identity) -> anyhow::Result<EngineConfig> {
        let (width, height) = video_size(&self.size)?;
        shared_screen(&self.video)?;
        let mut network = NetworkConfig {
            relay_only: self.relay_only,
            max_bitrate_bps: self.max_bitrate,
            ..NetworkConfig::default()
        };
        if !self.bind.is_empty() {
            network.udp_addrs = self.bind.clone();
        }
        if !self.ice_servers.is_empty() {
            network.ice_servers.push(IceServer {
                urls: self.ice_servers.clone(),
                username: self.turn_username.clone(),
                credential: self.turn_credential.clone(),
            });
        }
        let audio_output = match (&self.record_audio, &self.speaker) {
            (Some(path), _) => AudioOutput::File(path.clone()),
            (None, Some(name)) => {
                AudioOutput::Speaker(Some(name.clone()).filter(|n| !n.is_empty()))
            }
            (None, None) => AudioOutput::None,
        };
        Ok(EngineConfig {
            signaling: SignalingConfig {
                url: self.server.clone(),
                name: self.name.clone(),
                token: self.token.clone(),
            },
            network,
            video_input: video_input(&self.video)?,
            video_format: VideoFormat {
                width,
                height,
                fps: self.fps,
            },
            audio_input: audio_input(&self.audio)?,
            audio_output,
            audio_processing: match self.audio_processing {
                Switch::On => ProcessingSettings::default(),
                Switch::Off => ProcessingSettings::OFF,
            },
            record_video: self.record_video.clone(),
            render_video: false,
            timeouts: Default::default(),
            files: FileSettings {
                download_dir: self.accept_files.clone().unwrap_or_else(std::env::temp_dir),
                max_size: self.max_file_size,
            },
            identity,
        })
    }
}

/// The demo's "Echo bot": answers every call with the test pattern and a tone, echoes
/// chat, and runs until the process ends.
pub async fn echo_bot(server: String) {
    #[derive(clap::Parser)]
    struct Bot {
        #[command(flatten)]
        args: HeadlessArgs,
    }
    let argv = [
        "echo-bot",
        "--name",
        ECHO_BOT_NAME,
        "--answer",
        "--echo-chat",
        "--calls",
        "0",
        // Its own identity, not the user's.
        "--profile",
        "echo-bot",
    ];
    let parsed =
        <Bot as clap::Parser>::try_parse_from(argv.into_iter().chain(["--server", &server]));
    let outcome = match parsed {
        Ok(bot) => run(bot.args).await,
        Err(err) => Err(err.into()),
    };
    if let Err(err) = outcome {
        tracing::warn!("the echo bot stopped: {err:#}");
    }
}

/// The demo peer's display name.
pub const ECHO_BOT_NAME: &str = "Echo bot";

/// Runs a headless peer to the end; `Err` carries the one-line reason.
pub async fn run(args: HeadlessArgs) -> anyhow::Result<()> {
    if args.call.is_empty() && !args.answer {
        bail!("say --call PEER_NAME or --answer");
    }
    // File work, off the runtime (the demo's echo bot runs on the app's).
    let profile = Profile::new(args.profile.as_deref());
    let identity = tokio::task::spawn_blocking(move || profile.identity()).await??;
    let config = args.engine_config(identity)?;
    let (engine, mut events) = Engine::start(config, None);
    let outcome = drive(&args, &engine, &mut events).await;
    engine.shutdown().await;
    outcome
}

async fn drive(
    args: &HeadlessArgs,
    engine: &Engine,
    events: &mut UnboundedReceiver<EngineEvent>,
) -> anyhow::Result<()> {
    // What happened to each call so far, and the links of the call in progress.
    let mut calls: Vec<Vec<confab_call::CallSummary>> = Vec::new();
    let mut links: Vec<confab_call::CallSummary> = Vec::new();
    let mut last_end: Option<confab_call::CallEnd> = None;
    let mut script = Script::new(args.call.clone(), args.chat.clone());
    let peer_deadline = tokio::time::Instant::now() + PEER_WAIT;
    let mut hang_up_at: Option<tokio::time::Instant> = None;
    let mut files = FileWork::default();
    let mut wrong_code: Option<String> = None;
    // Our chat messages not yet confirmed by the peer, by id.
    let mut undelivered: HashMap<String, String> = HashMap::new();
    loop {
        let event = tokio::select! {
            event = events.recv() => event.context("the engine stopped")?,
            () = sleep_until(hang_up_at) => {
                engine.send(Command::HangUp);
                hang_up_at = None;
                continue;
            }
            () = tokio::time::sleep_until(peer_deadline), if script.waiting_to_call().is_some() => {
                bail!("{} is not online", script.waiting_to_call().unwrap_or_default());
            }
        };
        for command in script.on_event(&event) {
            engine.send(command);
        }
        match event {
            EngineEvent::Server(ServerStatus::Refused { message, .. }) => {
                bail!("the server refused us: {message}")
            }
            EngineEvent::Server(ServerStatus::Offline { reason, .. }) => {
                tracing::info!("signaling offline: {reason}");
            }
            EngineEvent::Call(
                CallState::Incoming { peer_name, .. } | CallState::Invited { peer_name, .. },
            ) if args.answer => {
                tracing::info!("answering {peer_name}");
                engine.send(Command::Accept);
            }
            EngineEvent::Call(CallState::Connected { .. } | CallState::Group { .. }) => {
                if let Some(secs) = args.duration
                    && hang_up_at.is_none()
                {
                    hang_up_at = Some(tokio::time::Instant::now() + Duration::from_secs_f64(secs));
                }
                if !files.offered {
                    files.offered = true;
                    for path in &args.send_file {
                        engine.send(Command::SendFile(path.clone()));
                    }
                    if let Some(screen) = shared_screen(&args.video)? {
                        engine.send(Command::ShareScreen(screen));
                    }
                }
            }
            EngineEvent::Call(CallState::Ended(end)) => {
                hang_up_at = None;
                last_end = Some(end);
                files.offered = false;
                // A call's unconfirmed messages stay unconfirmed: a bot keeps nothing of them.
                undelivered.clear();
            }
            EngineEvent::File(transfer) => {
                if let Some(command) = files.on_transfer(&transfer, args.accept_files.is_some()) {
                    engine.send(command);
                }
                if args.duration.is_none() && files.all_sent(args.send_file.len()) {
                    engine.send(Command::HangUp);
                }
            }
            EngineEvent::Problem(confab_call::Problem::Call(
                problem @ confab_call::CallProblem::CannotSendFile(_),
            )) => {
                eprintln!("problem: {problem}");
                files.failed.push(problem.to_string());
                files.ended += 1;
                if args.duration.is_none() && files.all_sent(args.send_file.len()) {
                    engine.send(Command::HangUp);
                }
            }
            EngineEvent::Chat(ChatEvent::Received { text, .. }) => {
                println!("chat: {text}");
                if args.echo_chat {
                    engine.send(Command::SendChat(format!("echo: {text}")));
                }
            }
            EngineEvent::Chat(ChatEvent::Sent { id, text, .. }) => {
                undelivered.insert(id, text);
            }
            EngineEvent::Chat(ChatEvent::Delivered { id }) => {
                if let Some(text) = undelivered.remove(&id) {
                    println!("chat delivered: {text}");
                }
            }
            EngineEvent::Chat(ChatEvent::Failed { reason, .. }) => {
                eprintln!("chat not sent: {reason}")
            }
            EngineEvent::Problem(problem) => eprintln!("problem: {problem}"),
            EngineEvent::Identity(PeerIdentity {
                peer_name,
                safety_code: Some(code),
                ..
            }) => {
                println!("safety code with {peer_name}: {code}");
                if let Some(expected) = &args.expect_safety_code
                    && *expected != code
                {
                    let reason = format!(
                        "the safety code with {peer_name} is {code}, not {expected}: someone \
                         may be in the middle"
                    );
                    eprintln!("{reason}");
                    wrong_code = Some(reason);
                    engine.send(Command::HangUp);
                }
            }
            EngineEvent::Stats(stats) => tracing::debug!(?stats, "call stats"),
            EngineEvent::Summary(summary) => links.push(summary),
            EngineEvent::CallFinished => {
                let call = std::mem::take(&mut links);
                let end = last_end.take();
                // Every link connected (members who left early included) and the call
                // ended normally.
                let clean = !call.is_empty()
                    && call.iter().all(|s| s.connect_ms.is_some())
                    && end
                        .as_ref()
                        .is_some_and(|e| e.reason == HangupReason::Ended);
                let reason = end.map(|e| e.describe());
                calls.push(call);
                if let Some(path) = &args.stats {
                    write_stats(path, &calls)?;
                }
                if let Some(reason) = wrong_code.take() {
                    bail!("{reason}");
                }
                if let Some(reason) = files.failed.first() {
                    bail!("a file transfer failed: {reason}");
                }
                if !clean {
                    if args.calls == 0 {
                        // A bot outlives a call that went wrong.
                        eprintln!("call did not end cleanly: {}", reason.unwrap_or_default());
                        continue;
                    }
                    bail!(
                        "{}",
                        reason.unwrap_or_else(|| "the call never started".into())
                    );
                }
                if args.calls != 0 && calls.len() >= args.calls as usize {
                    return Ok(());
                }
            }
            _ => {}
        }
    }
}

/// The files of a headless peer: what it sends, what it accepts, what failed.
#[derive(Default)]
struct FileWork {
    /// `--send-file` was done for this call.
    offered: bool,
    /// Our transfers seen, and how many of them are over.
    sending: Vec<confab_call::FileId>,
    ended: usize,
    failed: Vec<String>,
}

impl FileWork {
    /// Reports a transfer's news; the command it calls for (accept or decline an offer).
    fn on_transfer(&mut self, transfer: &Transfer, accept: bool) -> Option<Command> {
        let name = &transfer.name;
        if transfer.direction == Direction::Sending && !self.sending.contains(&transfer.file) {
            self.sending.push(transfer.file);
        }
        match &transfer.state {
            TransferState::Offered if transfer.direction == Direction::Receiving => {
                println!("file offered: {name} ({} bytes)", transfer.size);
                return Some(match accept {
                    true => Command::AcceptFile(transfer.file),
                    false => Command::DeclineFile(transfer.file),
                });
            }
            TransferState::Done { saved_to } => match saved_to {
                Some(path) => println!("file saved: {}", path.display()),
                None => println!("file sent: {name}"),
            },
            TransferState::Declined { by_us: false } => self.fail(format!("{name}: declined")),
            TransferState::Cancelled {
                by_us: false,
                reason,
            } => {
                self.fail(format!("{name}: cancelled by the peer ({reason})"));
            }
            TransferState::Failed { reason } => self.fail(format!("{name}: {reason}")),
            _ => {}
        }
        if transfer.state.is_over() && transfer.direction == Direction::Sending {
            self.ended += 1;
        }
        None
    }

    fn fail(&mut self, reason: String) {
        eprintln!("file failed: {reason}");
        self.failed.push(reason);
    }

    /// Every file asked for has gone out or failed.
    fn all_sent(&self, asked: usize) -> bool {
        asked > 0 && self.ended >= asked && self.ended >= self.sending.len()
    }
}

/// A call in the `--stats` file: its first link's totals at the top level (a call of two
/// has just that one), and one entry per link, so per member in a group call.
#[derive(serde::Serialize)]
struct CallReport<'a> {
    #[serde(flatten)]
    first: &'a confab_call::CallSummary,
    participants: Vec<Participant<'a>>,
}

#[derive(serde::Serialize)]
struct Participant<'a> {
    name: Option<&'a str>,
    connect_ms: Option<f64>,
    first_frame_ms: Option<f64>,
    connected_secs: Option<f64>,
    video_bytes_sent: u64,
    video_frames_decoded: u64,
    audio_packets_received: u64,
    latency_p50_ms: Option<f64>,
    latency_p95_ms: Option<f64>,
    safety_code: Option<&'a SafetyCode>,
}

fn call_report(links: &[confab_call::CallSummary]) -> Option<CallReport<'_>> {
    Some(CallReport {
        first: links.first()?,
        participants: links
            .iter()
            .map(|s| Participant {
                name: s.peer_name.as_deref(),
                connect_ms: s.connect_ms,
                first_frame_ms: s.first_frame_ms,
                connected_secs: s.connected_secs,
                video_bytes_sent: s.video_bytes_sent,
                video_frames_decoded: s.video_frames_decoded,
                audio_packets_received: s.audio_packets_received,
                latency_p50_ms: s.latency_p50_ms,
                latency_p95_ms: s.latency_p95_ms,
                safety_code: s.safety_code.as_ref(),
            })
            .collect(),
    })
}

fn write_stats(path: &Path, calls: &[Vec<confab_call::CallSummary>]) -> anyhow::Result<()> {
    let reports: Vec<CallReport<'_>> = calls.iter().filter_map(|c| call_report(c)).collect();
    let json = match &reports[..] {
        [single] => serde_json::to_string_pretty(single)?,
        many => serde_json::to_string_pretty(many)?,
    };
    std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
