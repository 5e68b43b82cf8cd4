//! cpal against a real sound server: PulseAudio with a null sink, whose monitor is remapped
//! into a virtual microphone, so what the speaker plays can be recorded back.
//!
//! One test in this binary on purpose: it points the process at its private server through
//! `PULSE_SERVER` before any audio code runs.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use confab_media::audio::{
    AudioError, AudioSink, AudioSource, FRAME_SAMPLES, MicrophoneSource, SAMPLE_RATE, SpeakerSink,
    ToneSource, analysis, list_devices,
};

#[path = "../../../tests/support/pulse.rs"]
mod pulse;

use pulse::PulseServer;

#[test]
fn play_a_tone_and_record_it_back_through_a_real_sound_server() {
    let mut server = PulseServer::start().unwrap_or_else(|reason| panic!("{reason}"));

    let devices = list_devices().unwrap();
    assert!(
        !devices.outputs.is_empty() && !devices.inputs.is_empty(),
        "{devices:?}"
    );
    assert!(
        !devices.inputs.iter().any(|d| d.starts_with("Monitor of")),
        "monitors are not microphones: {devices:?}"
    );
    assert!(matches!(
        MicrophoneSource::open(Some("no such microphone")),
        Err(AudioError::DeviceNotFound(_))
    ));

    let mut mic = MicrophoneSource::open(Some("vmic")).unwrap();
    let mut speaker = SpeakerSink::open(Some("vsink")).unwrap();
    assert!(mic.is_live() && speaker.is_live());

    // Play 4 s of 440 Hz; the speaker's write keeps the device's pace.
    let player = std::thread::spawn(move || {
        let mut tone = ToneSource::new(440.0).unwrap();
        let mut frame = [0.0; FRAME_SAMPLES];
        let started = Instant::now();
        for _ in 0..200 {
            tone.read(&mut frame).unwrap();
            speaker.write(&frame).unwrap();
        }
        (started.elapsed(), speaker)
    });
    let mut recorded = Vec::new();
    let mut frame = [0.0; FRAME_SAMPLES];
    for _ in 0..175 {
        mic.read(&mut frame).unwrap();
        recorded.extend_from_slice(&frame);
    }
    let (elapsed, speaker) = player.join().unwrap();
    assert!(
        elapsed >= Duration::from_millis(3500),
        "the speaker must play in real time, not swallow 4 s in {elapsed:?}"
    );

    // Capture starts late through the server: judge the last second.
    let tail = &recorded[recorded.len() - SAMPLE_RATE as usize..];
    let hz = analysis::dominant_frequency(tail, SAMPLE_RATE);
    assert!((hz - 440.0).abs() <= 4.4, "recorded {hz} Hz");
    let level = analysis::level(tail);
    assert!(
        level.rms_dbfs() > -20.0,
        "recorded at {:.1} dBFS",
        level.rms_dbfs()
    );
    drop(speaker);

    // The server goes away mid-stream: an error, not a panic or a hang.
    server.stop();
    let started = Instant::now();
    let result = loop {
        match mic.read(&mut frame) {
            Ok(()) if started.elapsed() < Duration::from_secs(15) => continue,
            other => break other,
        }
    };
    let err = result.expect_err("reading from a vanished server must fail");
    assert!(
        matches!(err, AudioError::DeviceLost(_) | AudioError::Backend(_)),
        "{err}"
    );
}
