//! Echo cancellation, noise suppression and gain control in a simulated room, through real
//! calls and a real sound server.
//!
//! The room, in one private PulseAudio: Bob's speaker is a null sink; a loopback carries
//! what it plays into a second null sink, the room, 40 ms later and 18 dB quieter; the
//! room's monitor is Bob's microphone. Bob's own voice (and noise) is played into the room
//! by `paplay`. Alice talks from a WAV file and records what Bob sends her: what she hears.
//! The speech is made at test time by espeak-ng, each clip exactly one loop long, so every
//! window measured holds the same words.
//!
//! One test in this binary on purpose: it points the process at its private sound server
//! through `PULSE_SERVER` before any audio code runs. It prints its measurements (the
//! numbers in docs/performance.md): `cargo test --test echo_room -- --nocapture`.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};

use confab_call::{AudioInput, AudioOutput, CallStats, Command, EngineEvent, VideoInput};
use confab_media::audio::{ProcessingSettings, SAMPLE_RATE, analysis};
use support::pulse::PulseServer;
use support::{Peer, PeerSetup, Server, connect, read_wav, temp_path};

/// Every clip loops (or repeats) with this period, in seconds.
const PERIOD: f64 = 4.0;

/// Alice's words, looping, and Bob's, each padded or cut to one period.
const FAR_WORDS: &str = "Alice here. The road over the pass is closed, so we take the train.";
const NEAR_WORDS: &str = "Bob answers: the chains are in the car, we could still drive.";

/// Runs a sound tool that `scripts/install-deps.sh` installs.
fn run(program: &str, args: &[&std::ffi::OsStr]) {
    let status = Process::new(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): run scripts/install-deps.sh"));
    assert!(status.success(), "{program} {args:?} failed");
}

/// `words` spoken by espeak-ng, as 48 kHz mono, then through sox's `effects`.
fn speech(name: &str, voice: &str, words: &str, effects: &[&str]) -> PathBuf {
    let raw = temp_path(&format!("raw-{name}"));
    run(
        "espeak-ng",
        &[
            "-v".as_ref(),
            voice.as_ref(),
            "-w".as_ref(),
            raw.as_os_str(),
            words.as_ref(),
        ],
    );
    let clip = edit(&raw, &format!("48k-{name}"), &["rate", "48000"]);
    let _ = std::fs::remove_file(raw);
    let out = edit(&clip, name, effects);
    let _ = std::fs::remove_file(clip);
    out
}

/// A new 48 kHz mono 16-bit file `name` from `input` through sox's `effects`.
fn edit(input: &Path, name: &str, effects: &[&str]) -> PathBuf {
    let out = temp_path(name);
    let mut args = vec![
        input.as_os_str(),
        "-c".as_ref(),
        "1".as_ref(),
        "-b".as_ref(),
        "16".as_ref(),
        out.as_os_str(),
    ];
    args.extend(effects.iter().map(|e| std::ffi::OsStr::new(*e)));
    run("sox", &args);
    out
}

/// Steady pink noise, 25 s.
fn pink_noise() -> PathBuf {
    let out = temp_path("noise.wav");
    let args = ["-n", "-r", "48000", "-c", "1", "-b", "16"].map(std::ffi::OsStr::new);
    let mut args = args.to_vec();
    args.push(out.as_os_str());
    args.extend(["synth", "25", "pinknoise", "vol", "0.1"].map(std::ffi::OsStr::new));
    run("sox", &args);
    out
}

/// The room (see the file's comment), in the server `start` just made.
fn build_room(pulse: &PulseServer) {
    for args in [
        &[
            "load-module",
            "module-null-sink",
            "sink_name=speaker",
            "rate=48000",
            "channels=2",
        ][..],
        &[
            "load-module",
            "module-null-sink",
            "sink_name=room",
            "rate=48000",
            "channels=2",
        ],
        &[
            "load-module",
            "module-loopback",
            "source=speaker.monitor",
            "sink=room",
            "latency_msec=40",
        ],
        &[
            "load-module",
            "module-remap-source",
            "source_name=mic",
            "master=room.monitor",
        ],
    ] {
        pulse
            .pactl(args)
            .unwrap_or_else(|reason| panic!("{reason}"));
    }
    // 50% is about -18 dB (volumes are cubic): only the loopback, so Bob's own voice enters
    // the room at full level.
    let inputs = Process::new("pactl")
        .args(["list", "short", "sink-inputs"])
        .output()
        .expect("pactl");
    let listing = String::from_utf8_lossy(&inputs.stdout);
    let loopback = listing
        .lines()
        .find(|line| line.contains("loopback"))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("no loopback among the sink inputs: {listing}"));
    pulse
        .pactl(&["set-sink-input-volume", loopback, "50%"])
        .unwrap_or_else(|reason| panic!("{reason}"));
}

/// Plays a file into the room (Bob talking, or noise) until dropped.
struct RoomSound(Child);

impl RoomSound {
    fn play(file: &Path) -> RoomSound {
        let child = Process::new("paplay")
            .args(["--device=room"])
            .arg(file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run paplay ({e}): run scripts/install-deps.sh"));
        RoomSound(child)
    }
}

impl Drop for RoomSound {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fails unless `level` is within `db` of `reference` (both dBFS).
fn assert_within(level: f32, reference: f32, db: f32, what: &str) {
    let change = level - reference;
    assert!(change.abs() <= db, "{what} by {change:.1} dB");
}

/// Level in dBFS of `samples` between `from` and `to` seconds.
fn level(samples: &[f32], from: f64, to: f64) -> f32 {
    let at = |s: f64| ((s * f64::from(SAMPLE_RATE)) as usize).min(samples.len());
    let window = &samples[at(from)..at(to)];
    assert!(
        window.len() as f64 >= (to - from) * f64::from(SAMPLE_RATE) * 0.9,
        "the recording is only {:.1} s long",
        samples.len() as f64 / f64::from(SAMPLE_RATE)
    );
    analysis::level(window).rms_dbfs()
}

/// One call: Alice (talking from `far`, or silent) calls Bob in the room; `during` runs
/// once connected, with both, and returns when the call should end. Returns what Alice
/// heard.
async fn call<F>(
    server: &Server,
    far: Option<&Path>,
    processing: ProcessingSettings,
    during: F,
) -> Vec<f32>
where
    F: AsyncFnOnce(&mut Peer, &mut Peer),
{
    let heard = temp_path("alice-hears.wav");
    let mut alice = Peer::join(
        server,
        "Alice",
        PeerSetup {
            video: VideoInput::None,
            audio: far.map_or(AudioInput::None, |f| AudioInput::File(f.to_owned())),
            record_audio: Some(heard.clone()),
            ..PeerSetup::quiet()
        },
    )
    .await;
    let mut bob = Peer::join(
        server,
        "Bob",
        PeerSetup {
            video: VideoInput::None,
            audio: AudioInput::Microphone(Some("mic".into())),
            audio_output: AudioOutput::Speaker(Some("speaker".into())),
            audio_processing: processing,
            ..PeerSetup::quiet()
        },
    )
    .await;
    connect(&mut alice, &mut bob).await;
    during(&mut alice, &mut bob).await;
    alice.send(Command::HangUp);
    alice.ended().await;
    bob.ended().await;
    alice.shutdown().await;
    bob.shutdown().await;
    let samples = read_wav(&heard);
    let _ = std::fs::remove_file(&heard);
    samples
}

/// Waits until `peer` has been connected `secs` seconds (by its own stats); returns the
/// stats of that second.
async fn until(peer: &mut Peer, secs: f64) -> CallStats {
    peer.wait_for(|e| match e {
        EngineEvent::Stats(stats) if stats.connected_secs.is_some_and(|s| s >= secs) => {
            Some(stats.clone())
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_far_end_does_not_hear_itself_and_the_near_end_is_kept() {
    let pulse = PulseServer::start().unwrap_or_else(|reason| panic!("{reason}"));
    build_room(&pulse);
    let period = PERIOD.to_string();
    let far = speech(
        "far.wav",
        "en",
        FAR_WORDS,
        &["pad", "0", "4", "trim", "0", &period],
    );
    let one_near = speech(
        "near.wav",
        "en+m3",
        NEAR_WORDS,
        &["pad", "0", "4", "trim", "0", &period],
    );
    // Bob's words, again and again; and once, after 5 s of silence, for the noise scene.
    let near = edit(&one_near, "near-talking.wav", &["repeat", "4"]);
    let late_near = edit(&one_near, "near-late.wav", &["pad", "7", "10"]);
    let quiet_near = edit(&near, "near-quiet.wav", &["vol", "0.1"]);
    let noise = pink_noise();
    let server = Server::start().await;
    let all_on = ProcessingSettings::default();

    // 1. Alice talks, Bob is silent: her echo comes back only if the canceller is off.
    // Switched off mid-call (as from Settings), the echo returns and the doctor notices.
    let mut during_on = None;
    let mut doctor = None;
    let heard = call(&server, Some(&far), all_on, async |_alice, bob| {
        during_on = Some(until(bob, 9.0).await);
        bob.send(Command::SetAudioProcessing(ProcessingSettings {
            echo_cancellation: false,
            ..all_on
        }));
        doctor = Some(
            bob.wait_for(|e| match e {
                EngineEvent::Stats(stats) if stats.peer_hears_echo => stats.connected_secs,
                _ => None,
            })
            .await,
        );
        until(bob, 15.0).await;
    })
    .await;
    let (echo_on, echo_off) = (level(&heard, 3.0, 7.0), level(&heard, 10.0, 14.0));
    let during_on = during_on.unwrap();
    let echo = during_on
        .echo
        .expect("the canceller's numbers in Bob's stats");
    eprintln!(
        "far end only: Alice hears her echo at {echo_on:.1} dBFS with processing, \
         {echo_off:.1} dBFS once the canceller is off ({:.1} dB less); the canceller's ERLE \
         {:?} dB, residual echo likelihood {:?}, delay {:?} ms (told {} ms); the doctor spoke \
         at {:?} s",
        echo_off - echo_on,
        echo.erle_db,
        echo.residual_echo_likelihood,
        echo.delay_ms,
        echo.reported_delay_ms,
        doctor,
    );
    assert!(
        echo_off > -50.0,
        "no echo in the room at all ({echo_off:.1} dBFS)?"
    );
    assert!(
        echo_off - echo_on >= 25.0,
        "only {:.1} dB of echo removed",
        echo_off - echo_on
    );
    assert!(
        !during_on.peer_hears_echo,
        "the doctor warned while the canceller worked"
    );

    // 2. Bob talks, Alice is silent: his voice reaches her as loud with processing as without.
    let near_only = async |processing| {
        call(&server, None, processing, async |_alice, bob| {
            let _voice = RoomSound::play(&near);
            until(bob, 10.0).await;
        })
        .await
    };
    let near_on = level(&near_only(all_on).await, 4.0, 8.0);
    let near_off = level(&near_only(ProcessingSettings::OFF).await, 4.0, 8.0);
    eprintln!(
        "near end only: Alice hears Bob at {near_on:.1} dBFS with processing, {near_off:.1} without"
    );
    assert!(
        near_off > -40.0,
        "Bob's voice never reached the microphone ({near_off:.1} dBFS)"
    );
    assert_within(near_on, near_off, 3.0, "processing changed Bob's voice");

    // 3. Both talk: Bob stays audible.
    let heard = call(&server, Some(&far), all_on, async |_alice, bob| {
        let _voice = RoomSound::play(&near);
        until(bob, 10.0).await;
    })
    .await;
    let double_talk = level(&heard, 4.0, 8.0);
    eprintln!(
        "double talk: Alice hears Bob at {double_talk:.1} dBFS (alone, unprocessed: {near_off:.1})"
    );
    assert_within(double_talk, near_off, 6.0, "in double talk Bob changed");

    // 4. A steady noise in Bob's room, and Bob saying something from 7 s: the noise goes,
    // his words stay. Processing switched off at 12 s brings the noise back.
    let heard = call(&server, None, all_on, async |_alice, bob| {
        let _noise = RoomSound::play(&noise);
        let _voice = RoomSound::play(&late_near);
        until(bob, 12.0).await;
        bob.send(Command::SetAudioProcessing(ProcessingSettings::OFF));
        until(bob, 16.0).await;
    })
    .await;
    let (noise_on, words_on, noise_off) = (
        level(&heard, 2.5, 4.5),
        level(&heard, 6.0, 9.0),
        level(&heard, 12.0, 14.5),
    );
    eprintln!(
        "noise: Alice hears Bob's room noise at {noise_on:.1} dBFS with processing, \
         {noise_off:.1} without ({:.1} dB less); his words over it at {words_on:.1} dBFS",
        noise_off - noise_on
    );
    assert!(
        noise_off > -50.0,
        "no noise in the room at all ({noise_off:.1} dBFS)?"
    );
    assert!(
        noise_off - noise_on >= 15.0,
        "only {:.1} dB of noise removed",
        noise_off - noise_on
    );
    assert!(
        words_on - noise_on >= 15.0,
        "Bob's words are lost in the noise: {words_on:.1} vs {noise_on:.1} dBFS"
    );
    assert_within(words_on, near_off, 6.0, "Bob's words changed");

    // 5. Bob far from his microphone (20 dB quieter): gain control brings him up at the
    // rate it allows itself (6 dB a second); switched off mid-call, he is quiet again.
    let heard = call(&server, None, all_on, async |_alice, bob| {
        let _voice = RoomSound::play(&quiet_near);
        until(bob, 10.0).await;
        bob.send(Command::SetAudioProcessing(ProcessingSettings {
            gain_control: false,
            ..all_on
        }));
        until(bob, 16.0).await;
    })
    .await;
    let (raised, left) = (level(&heard, 5.0, 9.0), level(&heard, 11.0, 15.0));
    eprintln!(
        "quiet talker: Alice hears Bob at {raised:.1} dBFS with gain control, {left:.1} without"
    );
    assert!(
        raised - left >= 6.0,
        "gain control raised Bob by only {:.1} dB",
        raised - left
    );

    server.shutdown().await;
    for file in [far, one_near, near, late_near, quiet_near, noise] {
        let _ = std::fs::remove_file(file);
    }
}
