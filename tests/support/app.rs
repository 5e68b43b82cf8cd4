//! The desktop app driven through its real UI code with egui_kittest, for the app tests:
//! open it, run frames until something shows, click and type, and a scene of Alice's app
//! with Bob's engine on a real server.

use std::time::{Duration, Instant};

use confab::app::settings::{CameraChoice, Settings};
use confab::app::{ConfabApp, Launch};
use confab_call::Command;
use egui::vec2;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use tokio::runtime::Runtime;

use super::{PATIENCE, Peer, PeerSetup, Server};

/// The window size the snapshots are taken at.
pub const WINDOW: egui::Vec2 = vec2(1200.0, 760.0);

pub fn runtime() -> Runtime {
    super::log_to_test_output();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Alice's settings: this server, the test pattern, no sound devices, no STUN.
pub fn settings(url: &str) -> Settings {
    Settings {
        name: "Alice".into(),
        server_url: url.into(),
        camera: CameraChoice::TestPattern,
        audio_enabled: false,
        ice_servers: Vec::new(),
        ..Settings::default()
    }
}

pub fn open_app(
    runtime: &Runtime,
    settings: Settings,
    launch: Launch,
) -> Harness<'static, ConfabApp> {
    open_app_sized(runtime, settings, launch, WINDOW)
}

pub fn open_app_sized(
    runtime: &Runtime,
    settings: Settings,
    launch: Launch,
    size: egui::Vec2,
) -> Harness<'static, ConfabApp> {
    let handle = runtime.handle().clone();
    Harness::builder()
        .with_size(size)
        .build_eframe(move |cc| ConfabApp::new(&cc.egui_ctx, handle, settings, launch))
}

/// Runs frames until `done` holds; fails the test after [`PATIENCE`]. The short pause
/// between frames only keeps the loop from spinning while the engine works.
pub fn until(
    harness: &mut Harness<'_, ConfabApp>,
    what: &str,
    mut done: impl FnMut(&Harness<'_, ConfabApp>) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        harness.step();
        if done(harness) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn shows(harness: &Harness<'_, ConfabApp>, label: &str) -> bool {
    harness.query_all_by_label(label).next().is_some()
}

pub fn shows_part(harness: &Harness<'_, ConfabApp>, label: &str) -> bool {
    harness.query_all_by_label_contains(label).next().is_some()
}

/// Clicks the widget labelled `label` and runs the frames that deliver the click.
pub fn click(harness: &mut Harness<'_, ConfabApp>, label: &str) {
    harness.get_by_label(label).click();
    harness.run_steps(2);
}

/// Focuses the text box labelled `label` and types `text` into it.
pub fn type_into(harness: &mut Harness<'_, ConfabApp>, label: &str, text: &str) {
    harness.get_by_label(label).focus();
    harness.run_steps(1);
    harness.get_by_label(label).type_text(text);
    harness.run_steps(2);
    let typed = harness.get_by_label(label).value().unwrap_or_default();
    assert!(
        typed.ends_with(text),
        "typed {text:?} into {label:?}, which holds {typed:?}"
    );
}

/// The chat box takes messages (the call's chat has connected).
pub fn chat_ready(harness: &Harness<'_, ConfabApp>) -> bool {
    harness
        .query_by_label("Message")
        .is_some_and(|n| !n.accesskit_node().is_disabled())
}

pub fn online(harness: &mut Harness<'_, ConfabApp>, peer: &str) {
    let button = format!("📞 Call {peer}");
    until(harness, &format!("{peer} in the list"), |h| {
        shows(h, &button)
    });
}

pub fn close(mut harness: Harness<'_, ConfabApp>) {
    harness.state_mut().shutdown(Duration::from_secs(2));
}

/// Alice's app and Bob's engine, both online on a real server.
pub struct Scene {
    pub rt: Runtime,
    pub server: Server,
    pub bob: Peer,
    pub harness: Harness<'static, ConfabApp>,
}

impl Scene {
    pub fn start() -> Scene {
        Scene::start_with(CameraChoice::TestPattern, Launch::default())
    }

    /// Like [`Scene::start`], with Alice's camera choice and launch options.
    pub fn start_with(camera: CameraChoice, launch: Launch) -> Scene {
        Scene::start_with_bob(camera, launch, PeerSetup::quiet())
    }

    /// Like [`Scene::start_with`], with Bob set up as given.
    pub fn start_with_bob(camera: CameraChoice, launch: Launch, bob: PeerSetup) -> Scene {
        Scene::start_custom(launch, bob, |alice| alice.camera = camera)
    }

    /// Alice's settings as `adjust` makes them, Bob set up as given.
    pub fn start_custom(
        launch: Launch,
        bob: PeerSetup,
        adjust: impl FnOnce(&mut Settings),
    ) -> Scene {
        let rt = runtime();
        let server = rt.block_on(Server::start());
        let bob = rt.block_on(Peer::join(&server, "Bob", bob));
        let mut alice = settings(&server.url());
        adjust(&mut alice);
        let mut harness = open_app(&rt, alice, launch);
        until(&mut harness, "online", |h| shows_part(h, "Online as Alice"));
        Scene {
            rt,
            server,
            bob,
            harness,
        }
    }

    /// Bob calls Alice; returns once the app rings.
    pub fn bob_calls(&mut self) {
        let alice = self.rt.block_on(self.bob.sees("Alice"));
        self.bob.send(Command::Call { peer: alice });
        until(&mut self.harness, "the incoming dialog", |h| {
            shows(h, "Bob is calling")
        });
    }

    /// Bob calls, Alice accepts, and both are connected.
    pub fn in_a_call(&mut self) {
        self.bob_calls();
        click(&mut self.harness, "Accept");
        self.rt.block_on(self.bob.connected());
    }

    pub fn finish(self) {
        close(self.harness);
        self.rt.block_on(async {
            self.bob.shutdown().await;
            self.server.shutdown().await;
        });
    }
}
