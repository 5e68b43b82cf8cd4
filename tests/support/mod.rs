//! A real signaling server on 127.0.0.1:0 and call engines with synthetic media, for the
//! end-to-end tests.

#![allow(dead_code)] // Each test binary uses a different part of this.

pub mod app;
pub mod nats;
pub mod pulse;
pub mod rogue;
pub mod tap;
pub mod usage;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use confab_call::{
    AudioInput, AudioOutput, CallEnd, CallState, CallSummary, ChatEvent, Command, Engine,
    EngineConfig, EngineEvent, FileSettings, Identity, NetworkConfig, ServerStatus,
    SignalingConfig, Timeouts, VideoInput,
};
use confab_media::audio::ProcessingSettings;
use confab_media::video::VideoFormat;
use confab_netsim::SimulatedLink;
use confab_protocol::{IceServer, PeerId, PeerInfo};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// How long any single expected event may take. The slowest is a vanished peer: about 4 s
/// until ICE reports the connection down, then the 10 s grace before the call fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub const VGA: VideoFormat = VideoFormat {
    width: 640,
    height: 480,
    fps: 30,
};

/// A port nothing listens on that the kernel will not hand out meanwhile. A port from
/// binding port 0 may go to a parallel test's server or outgoing connection before the
/// app binds it (this failed in CI once), so it comes from below the ephemeral range.
pub fn unused_port() -> u16 {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    // Spread parallel runs of this binary over the range below it.
    let first = 20000 + (std::process::id() % 5000) as u16;
    (first..ephemeral_start)
        .chain(10000..first)
        .find(|&port| std::net::TcpListener::bind(("0.0.0.0", port)).is_ok())
        .expect("a free port below the ephemeral range")
}

pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start() -> Server {
        Server::start_at(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// A server on a chosen address: a restarted one, or one that comes up late.
    pub async fn start_at(addr: SocketAddr) -> Server {
        Server::start_with(addr, Default::default()).await
    }

    /// A server with `config` (one of a cluster, say).
    pub async fn start_with(addr: SocketAddr, config: confab_signaling::Config) -> Server {
        let listener = TcpListener::bind(addr).await.expect("bind the server");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(confab_signaling::run(listener, config, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// What a test peer sends and where it puts what it receives.
#[derive(Clone)]
pub struct PeerSetup {
    pub video: VideoInput,
    pub format: VideoFormat,
    pub audio: AudioInput,
    pub record_audio: Option<PathBuf>,
    /// Where received audio plays when it is not recorded (a speaker).
    pub audio_output: AudioOutput,
    pub audio_processing: ProcessingSettings,
    pub render_video: bool,
    pub timeouts: Timeouts,
    /// Everything this peer sends goes through this simulated link.
    pub link: Option<SimulatedLink>,
    /// STUN/TURN servers of the user's own (a test TURN server, say).
    pub ice_servers: Vec<IceServer>,
    /// Only TURN relay candidates.
    pub relay_only: bool,
    /// Local addresses to gather on: loopback unless a test says otherwise.
    pub udp_addrs: Vec<String>,
    /// Where accepted files go (a temporary folder unless a test says otherwise).
    pub files: FileSettings,
}

impl Default for PeerSetup {
    fn default() -> Self {
        PeerSetup {
            video: VideoInput::TestPattern,
            format: VGA,
            audio: AudioInput::Tone(440.0),
            record_audio: None,
            audio_output: AudioOutput::None,
            audio_processing: ProcessingSettings::default(),
            render_video: true,
            timeouts: Timeouts::default(),
            link: None,
            ice_servers: Vec::new(),
            relay_only: false,
            udp_addrs: vec!["127.0.0.1:0".into()],
            files: FileSettings::default(),
        }
    }
}

impl PeerSetup {
    /// Sends media but does not convert received frames for display.
    pub fn quiet() -> PeerSetup {
        PeerSetup {
            render_video: false,
            ..PeerSetup::default()
        }
    }
}

/// Alice and Bob, both online with `setup`.
pub async fn alice_and_bob(server: &Server, setup: PeerSetup) -> (Peer, Peer) {
    let alice = Peer::join(server, "Alice", setup.clone()).await;
    let bob = Peer::join(server, "Bob", setup).await;
    (alice, bob)
}

pub struct Peer {
    pub name: String,
    pub engine: Engine,
    pub events: mpsc::UnboundedReceiver<EngineEvent>,
    pub id: PeerId,
    /// The newest roster seen.
    pub roster: Vec<PeerInfo>,
}

impl Peer {
    /// Starts an engine and waits until it is online.
    pub async fn join(server: &Server, name: &str, setup: PeerSetup) -> Peer {
        Peer::join_url(&server.url(), name, setup).await
    }

    /// Like [`Peer::join`], for a server the test did not start.
    pub async fn join_url(url: &str, name: &str, setup: PeerSetup) -> Peer {
        let config = EngineConfig {
            signaling: SignalingConfig {
                url: url.into(),
                name: name.into(),
                token: None,
            },
            network: NetworkConfig {
                udp_addrs: setup.udp_addrs,
                socket_runtime: setup.link.map(|link| link.runtime()),
                ice_servers: setup.ice_servers,
                relay_only: setup.relay_only,
                ..NetworkConfig::default()
            },
            video_input: setup.video,
            video_format: setup.format,
            audio_input: setup.audio,
            audio_output: setup
                .record_audio
                .map_or(setup.audio_output, AudioOutput::File),
            audio_processing: setup.audio_processing,
            record_video: None,
            render_video: setup.render_video,
            timeouts: setup.timeouts,
            files: setup.files,
            identity: Identity::generate().expect("an identity"),
        };
        let (engine, events) = Engine::start(config, None);
        let mut peer = Peer {
            name: name.into(),
            engine,
            events,
            id: PeerId::new("pending").unwrap(),
            roster: Vec::new(),
        };
        peer.id = peer
            .wait_for(|e| match e {
                EngineEvent::Server(ServerStatus::Online { my_id }) => Some(my_id.clone()),
                _ => None,
            })
            .await;
        peer
    }

    /// The first event `pick` accepts; fails the test after [`PATIENCE`].
    pub async fn wait_for<T>(&mut self, mut pick: impl FnMut(&EngineEvent) -> Option<T>) -> T {
        let name = self.name.clone();
        tokio::time::timeout(PATIENCE, async {
            loop {
                let event = self.events.recv().await.expect("the engine stopped");
                if let EngineEvent::Roster(peers) = &event {
                    self.roster = peers.clone();
                }
                if let Some(value) = pick(&event) {
                    return value;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: the expected event did not come"))
    }

    /// Waits until `name` is in the roster; returns its id.
    pub async fn sees(&mut self, name: &str) -> PeerId {
        if let Some(peer) = self.roster.iter().find(|p| p.name == name) {
            return peer.id.clone();
        }
        self.wait_for(|e| match e {
            EngineEvent::Roster(peers) => {
                peers.iter().find(|p| p.name == name).map(|p| p.id.clone())
            }
            _ => None,
        })
        .await
    }

    pub async fn state(&mut self, mut pick: impl FnMut(&CallState) -> bool) -> CallState {
        self.wait_for(|e| match e {
            EngineEvent::Call(state) if pick(state) => Some(state.clone()),
            _ => None,
        })
        .await
    }

    pub async fn incoming(&mut self) -> String {
        match self
            .state(|s| matches!(s, CallState::Incoming { .. }))
            .await
        {
            CallState::Incoming { peer_name, .. } => peer_name,
            _ => unreachable!(),
        }
    }

    pub async fn connected(&mut self) {
        self.state(|s| matches!(s, CallState::Connected { .. }))
            .await;
    }

    pub async fn ended(&mut self) -> CallEnd {
        match self.state(|s| matches!(s, CallState::Ended(_))).await {
            CallState::Ended(end) => end,
            _ => unreachable!(),
        }
    }

    /// The totals the engine reports once a call has ended.
    pub async fn summary(&mut self) -> CallSummary {
        self.wait_for(|e| match e {
            EngineEvent::Summary(summary) => Some(summary.clone()),
            _ => None,
        })
        .await
    }

    pub async fn chat(&mut self, mut pick: impl FnMut(&ChatEvent) -> bool) -> ChatEvent {
        self.wait_for(|e| match e {
            EngineEvent::Chat(chat) if pick(chat) => Some(chat.clone()),
            _ => None,
        })
        .await
    }

    /// Takes pictures from the peer until `count` have come or [`PATIENCE`] has passed.
    /// Returns how many came (`count` unless the time ran out).
    pub fn pictures(&self, count: usize) -> usize {
        tokio::task::block_in_place(|| {
            let deadline = std::time::Instant::now() + PATIENCE;
            let mut frames = 0;
            while frames < count && std::time::Instant::now() < deadline {
                frames += usize::from(
                    self.engine
                        .remote_video
                        .wait_take(Duration::from_millis(200))
                        .is_some(),
                );
            }
            frames
        })
    }

    pub fn send(&self, command: Command) {
        assert!(
            self.engine.send(command),
            "{}: the engine stopped",
            self.name
        );
    }

    pub async fn shutdown(self) {
        self.engine.shutdown().await;
    }
}

/// Alice calls Bob, Bob accepts; returns once both are connected.
pub async fn connect(alice: &mut Peer, bob: &mut Peer) {
    call_and_accept(alice, bob).await;
    bob.connected().await;
}

/// Alice calls Bob, Bob accepts, and Alice's side is connected (the chat channel may not
/// be open yet).
pub async fn call_and_accept(alice: &mut Peer, bob: &mut Peer) {
    let bob_id = alice.sees(&bob.name).await;
    alice.send(Command::Call { peer: bob_id });
    assert_eq!(bob.incoming().await, alice.name);
    bob.send(Command::Accept);
    alice.connected().await;
}

/// RUST_LOG=confab_call=debug shows the engines' side of a failing test.
pub fn log_to_test_output() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Waits (off the runtime) for a child process to end; its status and output.
pub async fn finish(child: std::process::Child) -> std::process::Output {
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
}

pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("confab-{}-{name}", std::process::id()))
}

/// The longest stretch of a recorded tone that is silent (10 ms windows below a tenth of
/// the tone's typical level), in the part of the recording from `skip` to `skip + length`.
/// Playout writes the file in real time from the moment the call connects.
pub fn longest_audio_gap(path: &std::path::Path, skip: Duration, length: Duration) -> Duration {
    let samples = read_wav(path);
    let window = confab_media::audio::SAMPLE_RATE as usize / 100;
    let levels: Vec<f32> = samples
        .chunks_exact(window)
        .map(|w| (w.iter().map(|s| s * s).sum::<f32>() / window as f32).sqrt())
        .collect();
    let first = (skip.as_millis() / 10) as usize;
    let last = ((skip + length).as_millis() / 10) as usize;
    assert!(
        levels.len() >= last,
        "{}: {} ms recorded, {} ms expected",
        path.display(),
        levels.len() * 10,
        last * 10
    );
    let levels = &levels[first..last];
    let mut sorted = levels.to_vec();
    sorted.sort_by(f32::total_cmp);
    let typical = sorted[sorted.len() * 3 / 4];
    assert!(typical > 0.01, "{}: no tone was heard", path.display());
    let silent_run = levels
        .split(|l| *l >= typical / 10.0)
        .map(<[f32]>::len)
        .max()
        .unwrap_or(0);
    Duration::from_millis(silent_run as u64 * 10)
}

/// `size` bytes that differ everywhere (so a chunk out of place shows in the hash).
pub fn random_file(path: &Path, size: usize) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for byte in block.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        let n = left.min(block.len());
        std::io::Write::write_all(&mut file, &block[..n]).unwrap();
        left -= n;
    }
    std::io::Write::flush(&mut file).unwrap();
}

/// A recorded 16-bit WAV file as samples in -1..1.
pub fn read_wav(path: &std::path::Path) -> Vec<f32> {
    hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}

/// The dominant frequency in the middle of a recorded WAV file (away from start-up and
/// hang-up); fails the test if the recording is shorter than a second.
pub fn heard_frequency(path: &std::path::Path) -> f32 {
    use confab_media::audio::{SAMPLE_RATE, analysis};
    let samples = read_wav(path);
    assert!(
        samples.len() > SAMPLE_RATE as usize,
        "{}: {} samples",
        path.display(),
        samples.len()
    );
    let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
    analysis::dominant_frequency(middle, SAMPLE_RATE)
}
