//! Without a sound server (PulseAudio is pointed at one that does not exist), listing
//! devices never fails, a device asked for by a name nobody has is a clear "not found", and
//! the default device opens, or is "none found" exactly when the list is empty (as on these
//! build machines). One test in this binary: it changes the environment.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use confab_media::audio::{AudioError, MicrophoneSource, SpeakerSink, list_devices};

#[test]
fn listing_never_fails_and_missing_devices_are_clear_errors() {
    // SAFETY: the only test in this binary, before any audio code: no other thread reads
    // the environment while it changes.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PULSE_SERVER", "unix:/nonexistent/confab/pulse")
    };
    let devices = list_devices().expect("listing never fails for lack of devices");

    // A name no device has: "not found", with the name, on any machine.
    let missing = "confab test: no such device";
    let mic = MicrophoneSource::open(Some(missing))
        .err()
        .expect("no microphone has that name");
    assert!(
        matches!(&mic, AudioError::DeviceNotFound(name) if name == missing),
        "{mic}"
    );
    assert_eq!(
        mic.to_string(),
        format!("audio device {missing:?} not found")
    );
    let speaker = SpeakerSink::open(Some(missing))
        .err()
        .expect("no speaker has that name");
    assert!(
        matches!(&speaker, AudioError::DeviceNotFound(name) if name == missing),
        "{speaker}"
    );

    // The default device: "none found" exactly when the list is empty (these build
    // machines); a machine that lists one never says it has none.
    match MicrophoneSource::open(None) {
        Ok(_) => assert!(!devices.inputs.is_empty(), "opened an unlisted microphone"),
        Err(err) if devices.inputs.is_empty() => {
            assert!(matches!(err, AudioError::NoDevice("microphone")), "{err}");
            assert_eq!(err.to_string(), "no microphone found");
        }
        Err(err) => assert!(!matches!(err, AudioError::NoDevice(_)), "{err}"),
    }
    match SpeakerSink::open(None) {
        Ok(_) => assert!(!devices.outputs.is_empty(), "opened an unlisted speaker"),
        Err(err) if devices.outputs.is_empty() => {
            assert!(matches!(err, AudioError::NoDevice("speaker")), "{err}");
        }
        Err(err) => assert!(!matches!(err, AudioError::NoDevice(_)), "{err}"),
    }
}
