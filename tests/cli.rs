//! The `confab` binary end to end: help, flag errors, and `confab server` serving real
//! clients, then shutting down gracefully on SIGTERM.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const PATIENCE: Duration = Duration::from_secs(10);

fn confab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_confab"))
}

#[test]
fn help_lists_the_server() {
    let out = confab().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("server"), "{text}");
    let out = confab().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_lists_every_command() {
    let out = confab().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for command in [
        "demo",
        "devices",
        "server",
        "headless",
        "--profile",
        "--name",
    ] {
        assert!(text.contains(command), "{command} missing from:\n{text}");
    }
}

/// The commands a manual page and completions must know, and a flag of the window's.
const COMMANDS: [&str; 5] = ["demo", "devices", "server", "headless", "completions"];

#[test]
fn the_manual_page_names_every_command() {
    let out = confab().arg("manpage").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.contains(".TH confab 1"),
        "not a roff page for confab(1):\n{page}"
    );
    // roff escapes the hyphen: each command is listed as confab-COMMAND(1).
    for command in COMMANDS {
        let entry = format!("confab\\-{command}(1)");
        assert!(page.contains(&entry), "{entry} missing from:\n{page}");
    }
    assert!(page.contains("\\-\\-profile"), "{page}");
    assert!(
        !page.contains("manpage"),
        "the hidden command is listed:\n{page}"
    );

    // For packaging, every command's page in a folder; `confab server`'s has its flags.
    let dir = std::env::temp_dir().join(format!("confab-man-{}", std::process::id()));
    let out = confab()
        .args(["manpage", "--out-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let mut expected: Vec<String> = COMMANDS
        .iter()
        .map(|command| format!("confab-{command}.1"))
        .chain(["confab.1".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(pages, expected);
    let server = std::fs::read_to_string(dir.join("confab-server.1")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(server.contains("\\-\\-listen"), "{server}");
}

#[test]
fn completions_know_every_command() {
    let out = confab().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("complete -F _confab"), "{script}");
    for word in COMMANDS.iter().chain(&["--profile", "--listen"]) {
        assert!(script.contains(word), "{word} missing from:\n{script}");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = confab().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("headless"), "{shell}:\n{script}");
    }
    let out = confab().args(["completions", "tcsh"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("possible values"),
        "{out:?}"
    );
}

#[test]
fn devices_lists_what_there_is_and_says_none_for_the_rest() {
    // What the command prints is what the media crate finds here, camera or none (a
    // machine without one says "(none)" and still succeeds).
    let out = confab().arg("devices").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let cameras = text.find("Cameras:").expect("a camera section");
    let microphones = text.find("Microphones:").expect("a microphone section");
    let speakers = text.find("Speakers:").expect("a speaker section");
    assert!(cameras < microphones && microphones < speakers, "{text}");
    let section = |from: usize, to: usize| text[from..to].lines().skip(1).collect::<Vec<_>>();
    let found = confab_media::video::list_cameras().unwrap_or_default();
    let camera_lines = section(cameras, microphones);
    if found.is_empty() {
        assert_eq!(
            camera_lines.first().map(|l| l.trim()),
            Some("(none)"),
            "{text}"
        );
    }
    for camera in &found {
        let line = format!("#{} {}", camera.index, camera.name);
        assert!(
            camera_lines.iter().any(|l| l.trim() == line),
            "{line} missing: {text}"
        );
    }
    let audio = confab_media::audio::list_devices().unwrap();
    for (names, lines) in [
        (&audio.inputs, section(microphones, speakers)),
        (&audio.outputs, section(speakers, text.len())),
    ] {
        let shown: Vec<&str> = lines.iter().map(|l| l.trim()).collect();
        if names.is_empty() {
            assert_eq!(shown, ["(none)"], "{text}");
        } else {
            assert_eq!(shown, names.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
}

#[test]
fn the_window_without_a_display_is_a_clear_error() {
    let out = confab()
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("no display"), "{text}");
    assert!(
        text.contains("confab server"),
        "says what to run instead: {text}"
    );
}

#[test]
fn bad_flags_are_clear_errors() {
    for (args, expected) in [
        (
            &["server", "--ice-server", "http://example.org"][..],
            "not a stun:",
        ),
        (
            &["server", "--ice-server", "turn:turn.example.org"][..],
            "--turn-username",
        ),
        (
            &[
                "server",
                "--tls-cert",
                "/nonexistent/cert.pem",
                "--tls-key",
                "/nonexistent/key.pem",
            ][..],
            "/nonexistent/cert.pem",
        ),
        (&["server", "--listen", "256.0.0.1:1"][..], "cannot listen"),
        (
            &[
                "headless",
                "--name",
                "A",
                "--answer",
                "--audio-processing",
                "maybe",
            ][..],
            "possible values: on, off",
        ),
    ] {
        let out = confab().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// `confab server` on a free port; its log lines arrive on a channel.
struct Server {
    /// Taken by a test that waits for the process itself.
    child: Option<Child>,
    addr: String,
    log: mpsc::Receiver<String>,
}

impl Server {
    fn start() -> Server {
        let mut child = confab()
            .args(["server", "--listen", "127.0.0.1:0"])
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let addr = loop {
            let line = log
                .recv_timeout(PATIENCE)
                .expect("the server never said where it listens");
            if let Some((_, rest)) = line.split_once("listening on ws://") {
                break rest.trim_end_matches("/ws").to_owned();
            }
        };
        Server {
            child: Some(child),
            addr,
            log,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn server_serves_and_shuts_down_gracefully_on_sigterm() {
    let mut server = Server::start();

    let mut http = TcpStream::connect(&server.addr).unwrap();
    http.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with("ok\n"),
        "{response}"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = format!("ws://{}/ws", server.addr);
    let mut ws = runtime.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws.send(Message::text(
            r#"{"type":"hello","protocol":1,"name":"Alice"}"#,
        ))
        .await
        .unwrap();
        let Some(Ok(Message::Text(welcome))) = ws.next().await else {
            panic!("no welcome");
        };
        assert!(welcome.contains(r#""type":"welcome""#), "{welcome}");
        ws
    });

    let status = Command::new("kill")
        .args(["-TERM", &server.child.as_ref().unwrap().id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    // The client is told the server is going away...
    let close = runtime.block_on(async {
        loop {
            match tokio::time::timeout(PATIENCE, ws.next())
                .await
                .expect("no close frame")
            {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("connection ended without a close frame: {other:?}"),
            }
        }
    });
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Away));
    drop(ws);

    // ...and the process exits cleanly, having said so.
    let mut child = server.child.take().unwrap();
    let pid = child.id();
    let (tx, exited) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let Ok(status) = exited.recv_timeout(PATIENCE) else {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("the server did not exit after SIGTERM");
    };
    let status = status.unwrap();
    assert!(status.success(), "{status}");
    // The process has exited, so its stderr is closed: the reader thread
    // forwards what is left and hangs up, which ends this loop.
    let mut log = Vec::new();
    loop {
        match server.log.recv_timeout(PATIENCE) {
            Ok(line) => log.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("stderr stayed open: {log:#?}"),
        }
    }
    assert!(
        log.iter().any(|l| l.contains("SIGTERM received")),
        "{log:#?}"
    );
    assert!(log.iter().any(|l| l.contains("shut down")), "{log:#?}");
}
