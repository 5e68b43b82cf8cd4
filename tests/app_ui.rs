//! The desktop app's main flows, driven through its real UI code with egui_kittest: a real
//! signaling server on port 0, the app's own engine, and other peers as engines with test
//! media, all over loopback. Snapshots of the main screens live in `tests/snapshots/`
//! (`UPDATE_SNAPSHOTS=1` rewrites them); parts that change from run to run (video, clocks,
//! the random port) are masked.

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

use std::collections::HashMap;
use std::time::Duration;

use confab::app::settings::{CameraChoice, STORAGE_KEY, Settings};
use confab::app::ui::ScreenChoices;
use confab::app::ui::share::screen_label;
use confab::app::{ConfabApp, Launch};
use confab_call::{CallState, ChatEvent, Command};
use confab_media::video::ScreenSelector;
use confab_netsim::{LinkConditions, SimulatedLink};
use confab_protocol::HangupReason;
use egui::{Key, Modifiers, vec2};
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::{Harness, SnapshotOptions};
use support::app::{
    Scene, chat_ready, click, close, online, open_app, open_app_sized, runtime, settings, shows,
    shows_part, type_into, until,
};
use support::{Peer, PeerSetup, Server};
use xvfb::Xvfb;

/// Hides what differs between runs before a snapshot.
fn mask_labels(harness: &mut Harness<'_, ConfabApp>, parts: &[&str]) {
    let rects: Vec<_> = parts
        .iter()
        .flat_map(|part| {
            harness
                .query_all_by_label_contains(part)
                .map(|n| n.rect())
                .collect::<Vec<_>>()
        })
        .collect();
    for rect in rects {
        harness.mask(rect);
    }
}

fn snapshot(harness: &mut Harness<'_, ConfabApp>, name: &str, masks: &[&str]) {
    harness.run_steps(2);
    mask_labels(harness, masks);
    // The browser invitation names the test server's port.
    mask_labels(harness, &["http://127.0.0.1:"]);
    harness.snapshot_options(name, &SnapshotOptions::new().max_failed_pixels(8));
}

#[test]
fn joining_lists_peers_with_a_filter_and_busy_badges() {
    let rt = runtime();
    let server = rt.block_on(Server::start());
    let mut harness = open_app(&rt, settings(&server.url()), Launch::default());
    until(&mut harness, "online", |h| shows_part(h, "Online as Alice"));
    assert!(shows(&harness, "Nobody else is online yet."));
    // Someone without Confab is invited with the server's web address, copied in a click.
    let link = confab::app::ui::home::browser_link(&server.url()).expect("a ws:// URL");
    assert!(shows(&harness, &link), "the invitation shows {link}");
    click(&mut harness, &format!("Copy {link}"));
    let copied = format!("Copied {link}");
    let toasts = &harness.state().model().toasts;
    assert!(toasts.iter().any(|t| t.text == copied), "{toasts:?}");

    let mut bob = rt.block_on(Peer::join(&server, "Bob", PeerSetup::quiet()));
    let mut carol = rt.block_on(Peer::join(&server, "Carol", PeerSetup::quiet()));
    online(&mut harness, "Bob");
    online(&mut harness, "Carol");
    snapshot(&mut harness, "peer_list", &[&server.url()]);

    // Bob and Carol in a call with each other: both show as busy and cannot be called.
    rt.block_on(support::connect(&mut bob, &mut carol));
    until(&mut harness, "busy badges", |h| {
        h.query_all_by_label("busy").count() == 2
    });
    let bob_button = harness.get_by_label("📞 Call Bob");
    assert!(
        bob_button.accesskit_node().is_disabled(),
        "busy peers cannot be called"
    );

    type_into(&mut harness, "Filter", "car");
    assert!(!shows(&harness, "📞 Call Bob"), "filtered out");
    assert!(shows(&harness, "📞 Call Carol"));
    type_into(&mut harness, "Filter", "zz");
    assert!(shows(&harness, "Nobody matches \"carzz\"."));

    close(harness);
    rt.block_on(async {
        bob.shutdown().await;
        carol.shutdown().await;
        server.shutdown().await;
    });
}

#[test]
fn calling_shows_who_is_called_and_the_outcome() {
    let mut scene = Scene::start();
    let Scene {
        rt, bob, harness, ..
    } = &mut scene;
    online(harness, "Bob");

    // Cancelled by us.
    click(harness, "📞 Call Bob");
    until(harness, "the outgoing dialog", |h| shows(h, "Calling Bob…"));
    assert_eq!(rt.block_on(bob.incoming()), "Alice");
    click(harness, "Cancel");
    let end = rt.block_on(bob.ended());
    assert_eq!(end.reason, HangupReason::Cancelled);
    until(harness, "the cancel notice", |h| {
        shows(h, "You cancelled the call to Bob")
    });

    // Declined by Bob: the reason is shown.
    online(harness, "Bob");
    click(harness, "📞 Call Bob");
    rt.block_on(bob.incoming());
    bob.send(Command::Decline);
    until(harness, "the decline notice", |h| {
        shows(h, "Bob declined the call")
    });
    assert!(!shows(harness, "Calling Bob…"), "the dialog closed");

    scene.finish();
}

#[test]
fn an_incoming_call_accepted_shows_video_and_chat_goes_both_ways() {
    let mut scene = Scene::start();
    scene.bob_calls();
    let url = scene.server.url();
    let Scene {
        rt, bob, harness, ..
    } = &mut scene;
    snapshot(harness, "incoming_call", &[&url]);
    click(harness, "Accept");
    rt.block_on(bob.connected());
    until(harness, "Bob's video", |h| shows(h, "Video of Bob"));
    until(harness, "the self-view", |h| shows(h, "Your video"));

    // Chat: Enter sends, the tick turns to delivered on the ack; Bob's reply shows.
    until(harness, "the chat box", chat_ready);
    type_into(harness, "Message", "hello Bob");
    harness.key_press(Key::Enter);
    harness.run_steps(2);
    let got = rt.block_on(bob.chat(|c| matches!(c, ChatEvent::Received { .. })));
    assert!(matches!(got, ChatEvent::Received { text, .. } if text == "hello Bob"));
    until(harness, "the delivered tick", |h| {
        shows_part(h, "✔✔ delivered")
    });
    bob.send(Command::SendChat("hi Alice".into()));
    until(harness, "Bob's message", |h| shows(h, "hi Alice"));
    assert_eq!(harness.state().model().chat.len(), 2);

    let masks = [
        "Video of Bob",
        "Your video",
        "Bob  ·",
        "You ·",
        "Bob ·",
        &url,
    ];
    snapshot(harness, "in_call", &masks);

    // Shift+Enter starts a new line instead of sending.
    type_into(harness, "Message", "two");
    harness.key_press_modifiers(Modifiers::SHIFT, Key::Enter);
    harness.run_steps(2);
    harness.get_by_label("Message").type_text("lines");
    harness.run_steps(1);
    assert_eq!(harness.state().model().chat.len(), 2, "Shift+Enter sent it");
    harness.key_press(Key::Enter);
    harness.run_steps(2);
    let got = rt.block_on(bob.chat(|c| matches!(c, ChatEvent::Received { .. })));
    assert!(
        matches!(&got, ChatEvent::Received { text, .. } if text == "two\nlines"),
        "{got:?}"
    );
    until(harness, "the two-line message", |h| {
        h.state().model().chat.len() == 3
    });

    // With the pane closed, a new message shows as a count on the Chat button.
    click(harness, "Hide");
    bob.send(Command::SendChat("are you there?".into()));
    until(harness, "the unread count", |h| shows(h, "💬 Chat (1 new)"));
    click(harness, "💬 Chat (1 new)");
    until(harness, "the message", |h| shows(h, "are you there?"));
    assert_eq!(harness.state().model().unread, 0);

    // Ctrl+Shift+S shows the stats overlay; F11 goes fullscreen without the side panes.
    harness.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::S);
    until(harness, "the stats overlay", |h| {
        shows_part(h, "Call stats: Sending 640x480") && shows_part(h, "Receiving 640x480")
    });
    harness.key_press(Key::F11);
    until(harness, "fullscreen", |h| shows(h, "Leave fullscreen"));
    assert!(
        !shows(harness, "People") && !shows(harness, "Chat"),
        "side panes hidden"
    );
    click(harness, "Leave fullscreen");
    until(harness, "the side panes", |h| shows(h, "People"));
    // F1 lists the shortcuts.
    harness.key_press(Key::F1);
    until(harness, "the shortcuts", |h| {
        shows(h, "Keyboard shortcuts") && shows(h, "Open the chat and write a message")
    });
    harness.key_press(Key::F1);
    until(harness, "the list closed", |h| {
        !shows(h, "Keyboard shortcuts")
    });
    // Esc leaves fullscreen too.
    harness.key_press(Key::F11);
    until(harness, "fullscreen again", |h| {
        shows(h, "Leave fullscreen")
    });
    harness.key_press(Key::Escape);
    until(harness, "Esc leaves it", |h| shows(h, "People"));

    // Bob mutes and turns his camera off: the app says so instead of a frozen picture.
    bob.send(Command::SetMuted(true));
    bob.send(Command::SetCamera(false));
    until(harness, "Bob's switches shown", |h| {
        shows(h, "Bob's camera is off")
            && shows_part(h, "Bob · 🔇 muted")
            && !shows(h, "Video of Bob")
    });
    bob.send(Command::SetMuted(false));
    bob.send(Command::SetCamera(true));
    until(harness, "Bob's video back", |h| {
        shows(h, "Video of Bob") && !shows_part(h, "🔇 muted")
    });

    // Ctrl+D mutes (the engine's switch, the button's label), Ctrl+Shift+H hangs up.
    harness.key_press_modifiers(Modifiers::COMMAND, Key::D);
    until(harness, "the Unmute button", |h| shows(h, "🔇 Unmute"));
    // The command reaches the engine's task a moment later.
    until(harness, "the engine mutes the microphone", |h| {
        h.state().engine().is_some_and(|e| e.input.is_muted())
    });
    harness.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::H);
    harness.run_steps(2);
    let end = rt.block_on(bob.ended());
    assert_eq!((end.reason, end.by_peer), (HangupReason::Ended, true));
    until(harness, "the call view closes", |h| {
        matches!(h.state().model().call, CallState::Ended(_)) && !shows(h, "Video of Bob")
    });

    scene.finish();
}

/// A group call in the app: Bob calls, Alice accepts and adds Carol from the list; the
/// grid shows a tile per member with their video and name; Carol leaves, Bob stays.
#[test]
fn adding_a_person_makes_a_group_call_with_a_tile_each() {
    let mut scene = Scene::start();
    // Carol sends no sound: Bob's tone makes him the speaker, every run.
    let carol_setup = PeerSetup {
        audio: confab_call::AudioInput::None,
        ..PeerSetup::quiet()
    };
    let mut carol = scene
        .rt
        .block_on(Peer::join(&scene.server, "Carol", carol_setup));
    scene.in_a_call();
    let url = scene.server.url();
    let Scene { rt, harness, .. } = &mut scene;
    until(harness, "Bob's video", |h| shows(h, "Video of Bob"));

    click(harness, "➕ Add person");
    until(harness, "the list of people", |h| shows(h, "Invite Carol"));
    click(harness, "Invite Carol");
    until(harness, "Carol ringing", |h| {
        shows_part(h, "Calling Carol…")
    });
    rt.block_on(carol.state(|s| matches!(s, CallState::Invited { .. })));
    carol.send(Command::Accept);
    until(harness, "a tile for each, Bob's marked speaking", |h| {
        shows(h, "Video of Bob")
            && shows(h, "Video of Carol")
            && shows_part(h, "3 people")
            && shows(h, "🔊 Bob (speaking)")
    });
    let masks = [
        "Video of Bob",
        "Video of Carol",
        "Your video",
        "3 people",
        &url,
    ];
    snapshot(harness, "group_call", &masks);

    // Speaker view: the speaker big, the others in a row below.
    click(harness, "Speaker view");
    let bob_tile = harness.get_by_label("Video of Bob").rect();
    let carol_tile = harness.get_by_label("Video of Carol").rect();
    assert!(
        bob_tile.area() > 4.0 * carol_tile.area(),
        "{bob_tile:?} {carol_tile:?}"
    );
    click(harness, "Grid view");

    // The stats overlay: each member's numbers on their tile.
    harness.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::S);
    until(harness, "each member's stats", |h| {
        shows_part(h, "Stats for Bob: Sending") && shows_part(h, "Stats for Carol: Sending")
    });
    harness.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::S);

    // Carol shares a screen: it takes the big area, everyone's tiles go in a strip below it.
    let display = test_display();
    carol.send(Command::ShareScreen(ScreenSelector {
        display: Some(display.display.clone()),
        monitor: 0,
    }));
    until(harness, "Carol's screen", |h| {
        shows(h, "Carol's screen") && shows(h, "⛶ Watch fullscreen")
    });
    assert!(shows_part(harness, "Carol · 🖥 sharing"));
    let screen = harness.get_by_label("Carol's screen").rect();
    for tile in ["Video of Bob", "Video of Carol"] {
        let tile = harness.get_by_label(tile).rect();
        assert!(tile.top() >= screen.bottom(), "{tile:?} below {screen:?}");
        assert!(screen.area() > 4.0 * tile.area(), "{screen:?} {tile:?}");
    }
    carol.send(Command::StopSharing);
    until(harness, "the grid again", |h| {
        !shows(h, "Carol's screen") && shows(h, "Video of Carol")
    });
    drop(display);

    // Carol leaves: her tile goes, the call with Bob goes on.
    carol.send(Command::HangUp);
    until(harness, "Carol's tile gone", |h| {
        !shows(h, "Video of Carol") && shows_part(h, "2 people") && shows(h, "Video of Bob")
    });
    // Its notice covers no control.
    until(harness, "the notice", |h| shows(h, "Carol left the call"));
    let notice = harness.get_by_label("Carol left the call").rect();
    for role in [
        egui::accesskit::Role::Button,
        egui::accesskit::Role::CheckBox,
    ] {
        for control in harness.query_all_by_role(role) {
            assert!(
                !notice.intersects(control.rect()),
                "the notice covers {:?}",
                control.accesskit_node().label()
            );
        }
    }
    rt.block_on(carol.shutdown());
    scene.finish();
}

/// On small windows the call comes first: in a call with the chat open, at 800x500 and at
/// the smallest size the window allows, every control is within the window (Hang up
/// first) and the video keeps a usable size.
#[test]
fn a_small_window_keeps_the_call_and_its_controls_in_reach() {
    for size in [vec2(800.0, 500.0), vec2(720.0, 480.0)] {
        let rt = runtime();
        let server = rt.block_on(Server::start());
        let mut bob = rt.block_on(Peer::join(&server, "Bob", PeerSetup::quiet()));
        let chat_open = Settings {
            chat_open: true,
            ..settings(&server.url())
        };
        let mut harness = open_app_sized(&rt, chat_open, Launch::default(), size);
        until(&mut harness, "online", |h| shows_part(h, "Online as Alice"));
        let alice = rt.block_on(bob.sees("Alice"));
        bob.send(Command::Call { peer: alice });
        until(&mut harness, "ringing", |h| shows(h, "Bob is calling"));
        click(&mut harness, "Accept");
        until(&mut harness, "Bob's video", |h| shows(h, "Video of Bob"));
        let window = egui::Rect::from_min_size(egui::Pos2::ZERO, size);
        for control in [
            "Hang up",
            "🎤 Mute",
            "📷 Camera off",
            "Fullscreen",
            "Self-view",
            "Stats",
            "➕ Add person",
        ] {
            let rect = harness.get_by_label(control).rect();
            assert!(
                window.contains_rect(rect),
                "{size:?}: {control} at {rect:?}"
            );
        }
        // Switches show their state by a mark, not only by colour.
        let self_view = harness.get_by_role_and_label(egui::accesskit::Role::CheckBox, "Self-view");
        assert_eq!(
            self_view.accesskit_node().toggled(),
            Some(egui::accesskit::Toggled::True)
        );
        let video = harness.get_by_label("Video of Bob").rect();
        assert!(video.height() > 150.0, "{size:?}: the video is {video:?}");
        assert!(
            !shows(&harness, "People"),
            "{size:?}: the people list gives way"
        );
        close(harness);
        rt.block_on(async {
            bob.shutdown().await;
            server.shutdown().await;
        });
    }
}

/// A camera that cannot be opened is one calm notice with the way out, not an error on
/// every call: "Use test pattern" sends the test card at once.
#[test]
fn a_missing_camera_offers_the_test_pattern() {
    let mut scene = Scene::start_with(
        CameraChoice::Camera(Some("confab test: no such camera".into())),
        Launch::default(),
    );
    scene.in_a_call();
    let harness = &mut scene.harness;
    until(harness, "the notice", |h| {
        shows_part(h, "The camera cannot be used")
    });
    assert!(
        !harness
            .state()
            .model()
            .toasts
            .iter()
            .any(|t| t.text.contains("camera")),
        "the notice, not an error toast"
    );
    click(harness, "Use test pattern");
    until(harness, "the test pattern as the self-view", |h| {
        shows(h, "Your video") && !shows_part(h, "The camera cannot be used")
    });
    assert_eq!(harness.state().settings().camera, CameraChoice::TestPattern);
    scene.finish();
}

/// Chat shows what a peer sends as text: no link previews, no images, nothing fetched,
/// so a message cannot make the app reveal its address to a server the sender picked.
#[test]
fn chat_names_addresses_but_the_app_never_fetches_them() {
    let trap = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    trap.set_nonblocking(true).expect("nonblocking");
    let at = trap.local_addr().expect("addr");
    let mut scene = Scene::start();
    scene.in_a_call();
    let Scene {
        rt, bob, harness, ..
    } = &mut scene;
    rt.block_on(bob.chat(|c| matches!(c, ChatEvent::Open)));

    let messages = [
        format!("look http://{at}/preview.png"),
        format!("![cat](http://{at}/cat.jpg)"),
        format!("<img src=\"http://{at}/pixel.gif\">"),
        format!("www.example.invalid and https://{at}/favicon.ico"),
    ];
    for text in &messages {
        bob.send(Command::SendChat(text.clone()));
        until(harness, "the message, as sent", |h| shows(h, text));
    }
    // Give a would-be fetcher every chance: keep drawing the chat a while longer.
    for _ in 0..30 {
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    match trap.accept() {
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("something connected to the address a message named: {other:?}"),
    }
    assert!(
        harness
            .query_all(egui_kittest::kittest::By::new().role(egui::accesskit::Role::Link))
            .next()
            .is_none(),
        "chat text became a link"
    );
    scene.finish();
}

#[test]
fn an_incoming_call_declined_tells_the_caller() {
    let mut scene = Scene::start();
    scene.bob_calls();
    let Scene {
        rt, bob, harness, ..
    } = &mut scene;
    click(harness, "Decline");
    let end = rt.block_on(bob.ended());
    assert_eq!((end.reason, end.by_peer), (HangupReason::Declined, true));
    until(harness, "the dialog closes", |h| {
        !shows(h, "Bob is calling")
    });
    assert!(shows(harness, "You declined Bob's call"));

    scene.finish();
}

/// eframe's storage, in memory.
#[derive(Default)]
struct MemoryStorage(HashMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.into(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn settings_choose_devices_show_a_preview_and_persist() {
    let rt = runtime();
    let server = rt.block_on(Server::start());
    let start = Settings {
        camera: CameraChoice::Camera(None),
        ..settings(&server.url())
    };
    let mut harness = open_app(&rt, start, Launch::default());
    until(&mut harness, "online", |h| shows_part(h, "Online as Alice"));
    click(&mut harness, "⚙ Settings");
    until(&mut harness, "the settings window", |h| {
        shows(h, "Display name")
    });

    // There is no camera here: the preview says so in words.
    until(&mut harness, "the no-camera message", |h| {
        shows_part(h, "Camera: ")
    });
    until(&mut harness, "the device lists", |h| {
        shows_part(h, "No camera found")
    });

    // Pick the test pattern: it applies at once and the preview shows it.
    harness
        .get_by_role_and_label(egui::accesskit::Role::ComboBox, "Camera")
        .click();
    harness.run_steps(2);
    click(&mut harness, "Test pattern");
    until(&mut harness, "the preview", |h| shows(h, "Camera preview"));
    assert_eq!(harness.state().settings().camera, CameraChoice::TestPattern);

    // And the resolution.
    harness
        .get_by_role_and_label(egui::accesskit::Role::ComboBox, "Resolution")
        .click();
    harness.run_steps(2);
    click(&mut harness, "1280x720");
    harness.run_steps(2);
    assert_eq!(
        (
            harness.state().settings().width,
            harness.state().settings().height
        ),
        (1280, 720)
    );
    until(&mut harness, "the preview at the new size", |h| {
        shows(h, "Camera preview")
    });

    // Noise suppression off: it applies at once, the other stages stay on.
    harness.get_by_label("Noise suppression").click_accesskit();
    harness.run_steps(2);
    let processing = harness.state().settings().audio_processing();
    assert!(!processing.noise_suppression);
    assert!(processing.echo_cancellation && processing.gain_control);
    snapshot(
        &mut harness,
        "settings",
        &["Camera preview", "Server URL", &server.url()],
    );

    // Saved and read back as eframe does across restarts.
    let mut storage = MemoryStorage::default();
    eframe::App::save(harness.state_mut(), &mut storage);
    let restored: Settings = eframe::get_value(&storage, STORAGE_KEY).expect("saved settings");
    assert_eq!(&restored, harness.state().settings());

    close(harness);
    rt.block_on(server.shutdown());
}

/// Settings typed and then closed with the window's close button are kept: the app logs
/// in again with them (relay-only is a privacy setting: it must never be lost silently).
#[test]
fn settings_closed_with_the_window_button_are_kept_and_applied() {
    let rt = runtime();
    let server = rt.block_on(Server::start());
    let with_turn = Settings {
        ice_servers: vec![confab::app::settings::IceEntry {
            url: "turn:127.0.0.1:3478".into(),
            username: "u".into(),
            credential: "p".into(),
        }],
        ..settings(&server.url())
    };
    let mut harness = open_app(&rt, with_turn, Launch::default());
    until(&mut harness, "online", |h| shows_part(h, "Online as Alice"));
    click(&mut harness, "⚙ Settings");
    let name = harness.get_by_label("Display name");
    name.focus();
    harness.run_steps(1);
    harness.get_by_label("Display name").type_text("cia");
    harness.run_steps(1);
    harness
        .get_by_label("Relay only (hide my address; needs TURN)")
        .click_accesskit();
    harness.run_steps(2);
    click(&mut harness, "Close window");
    until(&mut harness, "online under the new name", |h| {
        shows_part(h, "Online as Alicecia")
    });
    let applied = harness.state().settings();
    assert_eq!(applied.name, "Alicecia");
    assert!(applied.relay_only, "relay-only was lost");
    close(harness);
    rt.block_on(server.shutdown());
}

#[test]
fn an_unreachable_server_is_reported_and_retry_connects() {
    let rt = runtime();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], support::unused_port()));
    let url = format!("ws://{addr}/ws");
    let launch = Launch {
        no_bundled_server: true,
        ..Launch::default()
    };
    let mut harness = open_app(&rt, settings(&url), launch);
    until(&mut harness, "offline", |h| {
        shows_part(h, "Offline, retrying in")
    });
    // Why, in words and in the main area (not "os error 111" in a tooltip).
    assert!(shows(&harness, "Not connected"));
    assert!(shows_part(
        &harness,
        &format!("nothing answers at {url}: is the server running?")
    ));
    assert!(!shows_part(&harness, "os error"));
    assert!(shows(&harness, "Retry now"));
    assert!(
        harness.state().model().toasts.is_empty(),
        "a retrying connection is shown in the bar, not as a pile of notices"
    );

    // The server comes up on that address; "Retry now" connects without waiting.
    let server = rt.block_on(async { Server::start_at(addr).await });
    click(&mut harness, "Retry now");
    until(&mut harness, "online", |h| shows_part(h, "Online as Alice"));

    close(harness);
    rt.block_on(server.shutdown());
}

/// Two apps on one machine share the bundled server of the first; when it quits, the
/// other takes over hosting by itself (no Retry now), and people find it there again.
#[test]
fn when_the_hosting_app_quits_another_takes_over_the_server() {
    let rt = runtime();
    let port = support::unused_port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let hosts = Settings {
        host_port: Some(port),
        ..settings(&url)
    };
    let mut host = open_app(&rt, hosts, Launch::default());
    until(&mut host, "the first app hosts", |h| {
        shows_part(h, "Online as Alice") && shows(h, "📡 Hosting")
    });
    let bob = Settings {
        name: "Bob".into(),
        ..settings(&url)
    };
    let mut other = open_app(&rt, bob, Launch::default());
    until(&mut other, "the second app online", |h| {
        shows_part(h, "Online as Bob")
    });
    assert!(!shows(&other, "📡 Hosting"), "one server only");

    close(host);
    until(&mut other, "the second app hosting and online again", |h| {
        shows_part(h, "hosts it now") && shows_part(h, "Online as Bob") && shows(h, "📡 Hosting")
    });
    let mut carol = rt.block_on(Peer::join_url(&url, "Carol", PeerSetup::quiet()));
    rt.block_on(carol.sees("Bob"));
    close(other);
    rt.block_on(carol.shutdown());
}

/// A local port nobody answers on (a typo, say) is not opened silently: Confab offers to
/// host the server there, and once asked, hosts it and says where others find it.
#[test]
fn a_local_port_nobody_answers_is_offered_then_hosted_with_its_addresses() {
    let rt = runtime();
    let port = support::unused_port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let mut harness = open_app(&rt, settings(&url), Launch::default());
    let offer = format!("Host the server here (port {port})");
    until(&mut harness, "the offer to host", |h| shows(h, &offer));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing was started unasked"
    );
    assert!(!shows(&harness, "📡 Hosting"));

    click(&mut harness, &offer);
    until(&mut harness, "online, hosting", |h| {
        shows_part(h, "Online as Alice") && shows(h, "📡 Hosting")
    });
    assert_eq!(harness.state().settings().host_port, Some(port));
    assert!(shows(&harness, "📡 This computer hosts the server"));
    // Every address shown is this machine's, on that port, with a copy button.
    let expected = confab::app::local_server::lan_urls(port);
    for url in &expected {
        assert!(shows(&harness, url), "{url} shown");
    }
    if let Some(first) = expected.first() {
        click(&mut harness, &format!("Copy {first}"));
        let copied = format!("Copied {first}");
        let toasts = &harness.state().model().toasts;
        assert!(toasts.iter().any(|t| t.text == copied), "{toasts:?}");
    }

    // Another peer finds Alice there.
    let mut bob = rt.block_on(Peer::join_url(&url, "Bob", PeerSetup::quiet()));
    rt.block_on(bob.sees("Alice"));
    online(&mut harness, "Bob");

    close(harness);
    rt.block_on(bob.shutdown());
}

/// First run: a name is asked for before anything connects (no crowd of "Guest"s).
#[test]
fn the_first_run_asks_for_a_name_before_connecting() {
    let rt = runtime();
    let server = rt.block_on(Server::start());
    let launch = Launch {
        first_run: true,
        ..Launch::default()
    };
    let mut harness = open_app(&rt, settings(&server.url()), launch);
    until(&mut harness, "the welcome", |h| {
        shows(h, "Welcome to Confab")
    });
    let suggested = confab::app::settings::suggested_name();
    assert_eq!(
        harness.get_by_label("Your name").value().as_deref(),
        Some(suggested.as_str()),
        "the system's name for this user is suggested"
    );
    assert!(!shows_part(&harness, "Online as"), "nothing connects yet");

    harness.get_by_label("Your name").focus();
    harness.run_steps(1);
    harness.key_press_modifiers(Modifiers::COMMAND, Key::A);
    harness.get_by_label("Your name").type_text("Dana");
    harness.run_steps(2);
    click(&mut harness, "Continue");
    until(&mut harness, "online as Dana", |h| {
        shows_part(h, "Online as Dana")
    });
    assert!(!shows(&harness, "Welcome to Confab"));
    assert_eq!(harness.state().settings().name, "Dana");
    let mut bob = rt.block_on(Peer::join(&server, "Bob", PeerSetup::quiet()));
    rt.block_on(bob.sees("Dana"));

    close(harness);
    rt.block_on(async {
        bob.shutdown().await;
        server.shutdown().await;
    });
}

/// A name already taken is said in place, with a field to pick another.
#[test]
fn a_taken_name_is_renamed_in_place() {
    let rt = runtime();
    let server = rt.block_on(Server::start());
    let other_alice = rt.block_on(Peer::join(&server, "Alice", PeerSetup::quiet()));
    let mut harness = open_app(&rt, settings(&server.url()), Launch::default());
    until(&mut harness, "refused", |h| {
        shows_part(h, "already has that name")
    });
    assert!(shows(&harness, "Not connected"));
    assert!(
        harness.state().model().toasts.is_empty(),
        "said in place, not in a notice"
    );
    type_into(&mut harness, "Another name", " B");
    click(&mut harness, "Use this name");
    until(&mut harness, "online as Alice B", |h| {
        shows_part(h, "Online as Alice B")
    });
    assert_eq!(harness.state().settings().name, "Alice B");

    close(harness);
    rt.block_on(async {
        other_alice.shutdown().await;
        server.shutdown().await;
    });
}

/// A setting that keeps Confab offline is said in the main area (with the way to
/// Settings), and in Settings next to its field, without "in Settings".
#[test]
fn a_settings_problem_is_said_in_place() {
    let rt = runtime();
    let blank = Settings {
        name: "  ".into(),
        ..settings("ws://127.0.0.1:9/ws")
    };
    let mut harness = open_app(&rt, blank, Launch::default());
    until(&mut harness, "the problem", |h| {
        shows(h, "Choose a display name in Settings.")
    });
    click(&mut harness, "Open Settings");
    until(&mut harness, "the settings", |h| shows(h, "Display name"));
    assert!(shows(&harness, "Choose a display name."));
    close(harness);
}

/// After a call: how it ended and how long it lasted, "Call again", and the call with its
/// chat in the history (kept across restarts); a call nobody answered is "missed".
#[test]
fn finished_calls_go_to_the_history_with_their_chat() {
    let mut scene = Scene::start();
    scene.in_a_call();
    let harness = &mut scene.harness;
    // The pictures first: text typed while they arrive and the layout changes was lost
    // (on a loaded machine, one run in three).
    until(harness, "Bob's video", |h| shows(h, "Video of Bob"));
    until(harness, "the self-view", |h| shows(h, "Your video"));
    until(harness, "the chat box", chat_ready);
    type_into(harness, "Message", "see you");
    harness.key_press(Key::Enter);
    // Frames keep running while Bob gets it and acknowledges it.
    until(harness, "the message delivered", |h| {
        h.state().model().chat.iter().any(|line| {
            line.text == "see you" && line.delivery == Some(confab::app::model::Delivery::Delivered)
        })
    });
    scene
        .rt
        .block_on(scene.bob.chat(|e| matches!(e, ChatEvent::Received { .. })));
    scene.bob.send(Command::HangUp);
    let harness = &mut scene.harness;
    until(harness, "the end of the call", |h| shows(h, "Bob hung up"));
    assert!(shows_part(harness, "The call lasted 00:0"));
    assert!(shows(harness, "Recent calls"));
    assert!(shows(harness, "From Bob"));
    assert!(shows(harness, "Chat (1 messages)"));
    let past = &harness.state().history().calls;
    assert_eq!(past.len(), 1);
    assert_eq!(past[0].chat[0].text, "see you");

    // Bob calls and gives up before Alice answers: a missed call.
    scene.bob_calls();
    scene.bob.send(Command::HangUp);
    let harness = &mut scene.harness;
    until(harness, "the missed call", |h| {
        shows(h, "Missed call from Bob")
    });

    // Call again: it calls Bob.
    click(harness, "📞 Call Bob again");
    until(harness, "calling Bob", |h| shows(h, "Calling Bob…"));
    click(harness, "Cancel");
    until(harness, "the cancelled call in the history", |h| {
        h.state().history().calls.len() == 3
    });
    assert_eq!(
        harness.state().history().calls[0].outcome,
        "You cancelled the call to Bob"
    );

    // Kept across restarts, and cleared on request.
    let mut storage = MemoryStorage::default();
    eframe::App::save(harness.state_mut(), &mut storage);
    let saved: confab::app::history::History =
        eframe::get_value(&storage, confab::app::history::STORAGE_KEY).expect("saved history");
    assert_eq!(&saved, harness.state().history());
    click(harness, "Clear history");
    assert!(harness.state().history().calls.is_empty());
    assert!(!shows(harness, "Recent calls"));
    scene.finish();
}

/// When the connection drops (everything Bob sends is lost), the call says "Reconnecting…"
/// over the frozen picture; when it comes back, the picture moves again and the words go.
#[test]
fn a_dropped_connection_says_reconnecting_until_it_is_back() {
    let link = SimulatedLink::new(LinkConditions::default(), 7);
    let bob = PeerSetup {
        link: Some(link.clone()),
        ..PeerSetup::quiet()
    };
    let mut scene = Scene::start_with_bob(CameraChoice::TestPattern, Launch::default(), bob);
    scene.in_a_call();
    let harness = &mut scene.harness;
    until(harness, "Bob's video", |h| shows(h, "Video of Bob"));
    assert!(!shows(harness, "Reconnecting…"));
    link.set(LinkConditions {
        down: true,
        ..LinkConditions::default()
    });
    until(harness, "the call reconnecting", |h| {
        shows(h, "Reconnecting…")
    });
    link.set(LinkConditions::default());
    until(harness, "the call back", |h| !shows(h, "Reconnecting…"));
    assert!(matches!(
        harness.state().model().call,
        CallState::Connected { .. }
    ));
    scene.finish();
}

/// `confab demo` on a machine without a camera sends the test pattern by itself.
#[test]
fn the_demo_falls_back_to_the_test_pattern() {
    let launch = Launch {
        demo: true,
        ..Launch::default()
    };
    let mut scene = Scene::start_with(
        CameraChoice::Camera(Some("confab test: no such camera".into())),
        launch,
    );
    scene.bob_calls();
    let harness = &mut scene.harness;
    click(harness, "Accept");
    until(harness, "the test pattern as the self-view", |h| {
        shows(h, "Your video")
    });
    assert_eq!(harness.state().settings().camera, CameraChoice::TestPattern);
    assert!(!shows_part(harness, "The camera cannot be used"));
    assert!(shows_part(harness, "the demo sends the test pattern"));
    scene.finish();
}

/// A file dropped on the window, as the windowing integration hands it to egui.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn files_dropped_on_the_window_are_sent_and_offers_are_accepted_in_the_chat() {
    let dir = support::temp_path("app-files");
    let _ = std::fs::remove_dir_all(&dir);
    let (alice_dir, bob_dir) = (dir.join("alice"), dir.join("bob"));
    std::fs::create_dir_all(&dir).unwrap();
    let bob = PeerSetup {
        files: confab_call::FileSettings {
            download_dir: bob_dir.clone(),
            max_size: 1 << 30,
        },
        ..PeerSetup::quiet()
    };
    let alice_folder = alice_dir.clone();
    let mut scene = Scene::start_custom(Launch::default(), bob, move |alice| {
        alice.download_dir = Some(alice_folder);
    });
    scene.in_a_call();
    let Scene {
        rt, bob, harness, ..
    } = &mut scene;
    until(harness, "the chat", chat_ready);

    // Alice drops a file on the window: Bob is offered it and takes it.
    let report = dir.join("report.pdf");
    std::fs::write(&report, vec![42u8; 2_300_000]).unwrap();
    harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(report.clone())));
    harness.run_steps(2);
    let offered = rt.block_on(bob.wait_for(|e| match e {
        confab_call::EngineEvent::File(t) if t.state == confab_call::TransferState::Offered => {
            Some(t.clone())
        }
        _ => None,
    }));
    assert_eq!(
        (offered.name.as_str(), offered.size),
        ("report.pdf", 2_300_000)
    );
    until(harness, "waiting for Bob", |h| {
        shows(h, "Waiting for Bob to accept…")
    });
    bob.send(Command::AcceptFile(offered.file));
    until(harness, "sent", |h| shows(h, "✔ Sent"));
    assert_eq!(
        std::fs::read(bob_dir.join("report.pdf")).unwrap().len(),
        2_300_000
    );

    // Bob sends one: Alice sees who and what, and saves it with Accept.
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "twelve bytes").unwrap();
    bob.send(Command::SendFile(notes));
    until(harness, "the offer", |h| {
        shows(h, "Bob wants to send notes.txt (12 bytes)")
    });
    assert!(!alice_dir.exists(), "nothing is written before Accept");
    click(harness, "Accept");
    until(harness, "saved", |h| shows(h, "✔ Saved as notes.txt"));
    assert!(shows(harness, "Show in folder"));
    assert_eq!(
        std::fs::read_to_string(alice_dir.join("notes.txt")).unwrap(),
        "twelve bytes"
    );
    scene.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bob's safety code, once his engine's handshake is done.
fn bobs_code(scene: &mut Scene) -> confab_protocol::safety::SafetyCode {
    scene.rt.block_on(scene.bob.wait_for(|e| match e {
        confab_call::EngineEvent::Identity(identity) => identity.safety_code.clone(),
        _ => None,
    }))
}

#[test]
fn the_safety_code_is_compared_marked_verified_and_a_changed_identity_warned() {
    let mut scene = Scene::start();
    scene.bob_calls();
    assert!(
        !shows_part(&scene.harness, "Verified"),
        "nobody is verified yet"
    );
    click(&mut scene.harness, "Accept");
    scene.rt.block_on(scene.bob.connected());
    let code = bobs_code(&mut scene);
    let groups: Vec<&str> = code.groups().collect();
    let rows: Vec<String> = groups.chunks(4).map(|row| row.join(" ")).collect();

    // The Verify window shows the code Bob's side derived, in three rows.
    let harness = &mut scene.harness;
    until(harness, "the call", |h| shows(h, "🔒 Verify"));
    until(harness, "the handshake's identity", |h| {
        let identities = &h.state().model().identities;
        identities.iter().any(|i| i.safety_code.is_some())
    });
    click(harness, "🔒 Verify");
    until(harness, "the code", |h| shows(h, &rows[0]));
    // A new window takes a frame or two to find its size and place.
    harness.run_steps(4);
    assert!(shows(harness, "Safety code with Bob"));
    assert!(rows.iter().all(|row| shows(harness, row)));
    click(harness, "Mark Bob as verified");
    until(harness, "verified", |h| shows(h, "✔ You verified Bob."));
    assert!(
        shows_part(harness, "Bob · ✔ Verified"),
        "the mark by his name"
    );
    scene.bob.send(Command::HangUp);
    until(&mut scene.harness, "the end", |h| {
        shows_part(h, "Bob hung up")
    });

    // Bob comes back with another identity (a new computer, or someone pretending): the call
    // rings with a warning, and the call says it for as long as it lasts.
    let Scene {
        rt,
        server,
        bob,
        mut harness,
    } = scene;
    rt.block_on(bob.shutdown());
    until(&mut harness, "Bob gone", |h| !shows(h, "📞 Call Bob"));
    let bob = rt.block_on(Peer::join(&server, "Bob", PeerSetup::quiet()));
    let mut scene = Scene {
        rt,
        server,
        bob,
        harness,
    };
    scene.bob_calls();
    let harness = &mut scene.harness;
    until(harness, "the claimed identity", |h| {
        shows_part(h, "This is not the identity you verified for Bob")
    });
    click(harness, "Accept");
    until(harness, "the warning in the call", |h| {
        shows_part(
            h,
            "Bob's identity is not the one you verified: press Verify",
        )
    });
    assert!(shows_part(harness, "Bob · ⚠ Identity changed"));
    // Once the handshake proves the new identity, a notice says it too.
    until(harness, "the notice", |h| {
        let toasts = &h.state().model().toasts;
        toasts
            .iter()
            .any(|t| t.text.contains("Someone may be in the middle"))
    });
    scene.finish();
}

/// The widget id each of these buttons has now.
fn button_ids(harness: &Harness<'_, ConfabApp>, labels: &[&str]) -> Vec<String> {
    labels
        .iter()
        .map(|label| format!("{:?}", harness.get_by_label(label).accesskit_node().id()))
        .collect()
}

/// A click goes to the widget that had its place in the frame before: a button whose id
/// changes on the frame the peer's picture appears loses a click made then (it did, now and
/// then, in the safety-code test).
#[test]
fn the_call_buttons_keep_their_ids_when_the_picture_appears() {
    let bob = PeerSetup {
        video: confab_call::VideoInput::None,
        ..PeerSetup::default()
    };
    let mut scene = Scene::start_with_bob(CameraChoice::TestPattern, Launch::default(), bob);
    scene.in_a_call();
    let buttons = ["Hang up", "🎤 Mute", "🖥 Share screen", "🔒 Verify"];
    until(&mut scene.harness, "the call", |h| {
        shows(h, "Waiting for Bob's video…") && buttons.iter().all(|b| shows(h, b))
    });
    let before = button_ids(&scene.harness, &buttons);
    scene
        .bob
        .send(Command::SetVideoInput(confab_call::VideoInput::TestPattern));
    until(&mut scene.harness, "Bob's picture", |h| {
        shows(h, "Video of Bob")
    });
    assert_eq!(button_ids(&scene.harness, &buttons), before);
    scene.finish();
}

/// The size of the test displays' screen: small, so that the screen's encoder leaves room
/// on two cores for the other tests running alongside.
const SCREEN: (u32, u32) = (640, 400);

/// A display of the test's own with the test picture on it (and the pointer in a corner).
fn test_display() -> Xvfb {
    let display = Xvfb::start(SCREEN.0, SCREEN.1);
    display.draw(&xvfb::test_picture(SCREEN.0, SCREEN.1));
    display.move_pointer(SCREEN.0 as i16 - 1, SCREEN.1 as i16 - 1);
    display
}

/// Whether a thread of this process has this name (the picker's capture thread).
fn a_thread_named(name: &str) -> bool {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
    })
}

/// Waits until `peer` hears that the other side shares its screen (`on`) or stopped.
fn peer_shares(rt: &tokio::runtime::Runtime, peer: &mut Peer, on: bool) {
    rt.block_on(peer.wait_for(|e| {
        matches!(e, confab_call::EngineEvent::PeerState { sharing, .. } if *sharing == on)
            .then_some(())
    }));
}

/// The next picture of the shared screen `peer` receives.
fn next_screen(peer: &Peer) -> std::sync::Arc<confab_call::RemoteVideoFrame> {
    let deadline = std::time::Instant::now() + support::PATIENCE;
    loop {
        if let Some(frame) = peer
            .engine
            .remote_screen
            .wait_take(Duration::from_millis(200))
        {
            return frame;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no shared screen came"
        );
    }
}

/// Sharing a screen from the app (issue 17): nothing is captured before the picker opens;
/// Share screen lists the test display's screen with a live thumbnail, its name and size;
/// Share sends it once one is chosen (Bob receives it at the screen's size), the banner and
/// the window's title say so, and Stop sharing ends it on both sides.
#[test]
fn a_screen_chosen_in_the_picker_is_shared_until_stop() {
    let display = test_display();
    let launch = Launch {
        screen_display: Some(display.display.clone()),
        ..Launch::default()
    };
    // Bob converts what he receives, to show the screen's size.
    let mut scene = Scene::start_with_bob(CameraChoice::TestPattern, launch, PeerSetup::default());
    scene.in_a_call();
    let Scene {
        rt, bob, harness, ..
    } = &mut scene;
    until(harness, "Bob's video", |h| shows(h, "Video of Bob"));
    assert!(
        !a_thread_named("screen-preview"),
        "nothing is captured before the picker opens"
    );

    click(harness, "🖥 Share screen");
    until(harness, "the screen with its thumbnail", |h| {
        matches!(h.state().screen_choices(), ScreenChoices::Found(screens)
            if screens.len() == 1 && screens[0].picture.is_some())
    });
    let ScreenChoices::Found(screens) = harness.state().screen_choices() else {
        unreachable!()
    };
    let thumbnail = screens[0].picture.expect("a thumbnail");
    assert_eq!(
        thumbnail.size,
        [SCREEN.0 as usize / 2, SCREEN.1 as usize / 2],
        "scaled down"
    );
    let label = screen_label(&screens[0].info);
    assert!(
        label.contains(&format!("{}x{}", SCREEN.0, SCREEN.1)),
        "{label}"
    );
    assert!(a_thread_named("screen-preview"));
    // The thumbnail is live: the screen turns red, and its picture follows within seconds.
    display.fill(0, 0, SCREEN.0 as u16, SCREEN.1 as u16, [220, 30, 30]);
    let button = harness.get_by_label(&label).rect();
    let spot = (button.left() + 40.0, button.center().y);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        harness.step();
        let shown = harness.render().expect("a picture of the window");
        let [red, green, blue, _] = shown.get_pixel(spot.0 as u32, spot.1 as u32).0;
        if red > 150 && green < 90 && blue < 90 {
            break;
        }
        let late = std::time::Instant::now() > deadline;
        assert!(!late, "the thumbnail shows {red},{green},{blue}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let share = harness.get_by_role_and_label(egui::accesskit::Role::Button, "Share");
    assert!(
        share.accesskit_node().is_disabled(),
        "nothing is shared before a screen is chosen"
    );
    click(harness, &label);
    click(harness, "Share");
    until(harness, "the banner", |h| {
        shows(h, "🖥 You are sharing your screen") && shows(h, "Stop sharing")
    });
    assert!(!shows(harness, "Share your screen"), "the picker closed");
    until(harness, "the picker's capture stopped", |_| {
        !a_thread_named("screen-preview")
    });
    assert_eq!(
        harness.state().model().window_title(),
        "Sharing your screen · In a call with Bob · Confab"
    );
    peer_shares(rt, bob, true);
    let frame = next_screen(bob);
    assert_eq!((frame.width, frame.height), SCREEN, "Bob gets the screen");

    // The banner's button stops it, on both sides; the call goes on.
    click(harness, "Stop sharing");
    until(harness, "the banner gone", |h| {
        !shows(h, "🖥 You are sharing your screen") && !h.state().model().sharing
    });
    peer_shares(rt, bob, false);
    assert_eq!(
        harness.state().model().window_title(),
        "In a call with Bob · Confab"
    );
    assert!(shows(harness, "Video of Bob"));
    scene.finish();
    drop(display);
}

/// A peer's shared screen (issue 17): shown big, fitted with its own shape and named, with
/// the peer's camera small beside it and a switch to watch it fullscreen; when the peer
/// stops, its camera fills the view again.
#[test]
fn a_peers_shared_screen_is_shown_big_with_their_camera_beside_it() {
    let display = test_display();
    let mut scene = Scene::start();
    scene.in_a_call();
    let Scene { bob, harness, .. } = &mut scene;
    until(harness, "Bob's video", |h| shows(h, "Video of Bob"));
    bob.send(Command::ShareScreen(ScreenSelector {
        display: Some(display.display.clone()),
        monitor: 0,
    }));
    until(harness, "Bob's screen, his camera beside it", |h| {
        shows(h, "Bob's screen") && shows(h, "Video of Bob") && shows(h, "⛶ Watch fullscreen")
    });
    let screen = harness.get_by_label("Bob's screen").rect();
    let camera = harness.get_by_label("Video of Bob").rect();
    assert!(screen.area() > 6.0 * camera.area(), "{screen:?} {camera:?}");
    let shape = screen.width() / screen.height();
    let expected = SCREEN.0 as f32 / SCREEN.1 as f32;
    assert!((shape - expected).abs() < 0.02, "letterboxed: {screen:?}");

    click(harness, "⛶ Watch fullscreen");
    until(harness, "fullscreen", |h| {
        shows(h, "⛶ Leave fullscreen") && !shows(h, "People")
    });
    let fullscreen = harness.get_by_label("Bob's screen").rect();
    assert!(fullscreen.area() > screen.area(), "the screen grew");
    click(harness, "⛶ Leave fullscreen");
    until(harness, "the side panes", |h| shows(h, "People"));

    bob.send(Command::StopSharing);
    until(harness, "Bob's camera big again", |h| {
        !shows(h, "Bob's screen") && !shows(h, "⛶ Watch fullscreen") && shows(h, "Video of Bob")
    });
    let camera = harness.get_by_label("Video of Bob").rect();
    assert!(camera.area() > screen.area() / 2.0, "{camera:?}");
    scene.finish();
    drop(display);
}

/// Where no screen can be shared, the picker says why instead of showing thumbnails.
#[test]
fn the_picker_says_why_when_no_screen_can_be_shared() {
    let launch = Launch {
        // No X server runs there.
        screen_display: Some(":5999".into()),
        ..Launch::default()
    };
    let mut scene = Scene::start_with(CameraChoice::TestPattern, launch);
    scene.in_a_call();
    let harness = &mut scene.harness;
    until(harness, "the call", |h| shows(h, "🖥 Share screen"));
    click(harness, "🖥 Share screen");
    until(harness, "the reason", |h| {
        shows_part(
            h,
            "Screen sharing is not available: cannot connect to the X display :5999",
        )
    });
    let share = harness.get_by_role_and_label(egui::accesskit::Role::Button, "Share");
    assert!(share.accesskit_node().is_disabled());
    click(harness, "Cancel");
    until(harness, "the picker closed", |h| {
        !shows(h, "Share your screen")
    });
    scene.finish();
}
