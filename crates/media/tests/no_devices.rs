//! On a machine without any sound hardware or sound server (these build machines), listing
//! devices is an empty list, not an error, and opening one is a clear "no device" error.
//! One test in this binary: it points PulseAudio at a server that does not exist.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use confab_media::audio::{AudioError, MicrophoneSource, SpeakerSink, list_devices};

#[test]
fn no_sound_hardware_means_empty_lists_and_clear_errors() {
    // SAFETY: the only test in this binary, before any audio code: no other thread reads
    // the environment while it changes.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PULSE_SERVER", "unix:/nonexistent/confab/pulse")
    };
    let cards = std::fs::read_to_string("/proc/asound/cards").unwrap_or_default();
    let devices = list_devices().expect("listing never fails for lack of devices");
    if !(cards.is_empty() || cards.contains("no soundcards")) {
        eprintln!("SKIPPED the empty-list check: this machine has sound cards: {devices:?}");
        return;
    }
    assert!(
        devices.inputs.is_empty() && devices.outputs.is_empty(),
        "{devices:?}"
    );
    let mic = MicrophoneSource::open(None)
        .err()
        .expect("no microphone to open");
    assert!(matches!(mic, AudioError::NoDevice("microphone")), "{mic}");
    assert_eq!(mic.to_string(), "no microphone found");
    let speaker = SpeakerSink::open(None).err().expect("no speaker to open");
    assert!(
        matches!(speaker, AudioError::NoDevice("speaker")),
        "{speaker}"
    );
}
