//! The ringtone, the caller's ringback and the test sound, played on a named `sound` thread so that opening a
//! speaker or waiting for it never touches the UI thread. The UI sends requests; failures
//! come back as text for a notice.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::Duration;

use confab_call::Wake;
use confab_media::audio::{AudioSink, FRAME_SAMPLES, SAMPLE_RATE, SpeakerSink};
use confab_media::slot::LatestSlot;

/// The ringtone: 48 kHz mono 16-bit WAV, played in a loop while a call rings.
const RINGTONE_WAV: &[u8] = include_bytes!("../../assets/ringtone.wav");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sound {
    /// Loops until stopped: someone calls us.
    Ringtone,
    /// Loops until stopped: we call someone and it rings there.
    Ringback,
    /// A short chime, once.
    Chime,
}

impl Sound {
    /// Plays until stopped (rather than once).
    pub fn loops(self) -> bool {
        matches!(self, Sound::Ringtone | Sound::Ringback)
    }
}

enum Request {
    Play {
        sound: Sound,
        speaker: Option<String>,
    },
    Stop,
}

pub struct SoundPlayer {
    requests: Sender<Request>,
    /// Why the last sound could not be played.
    pub problems: Arc<LatestSlot<String>>,
    playing: Option<Sound>,
}

impl SoundPlayer {
    /// Starts the `sound` thread; `wake` is called when a problem is published.
    pub fn start(wake: Wake) -> SoundPlayer {
        let (requests, rx) = mpsc::channel();
        let problems = Arc::new(LatestSlot::new());
        let thread_problems = problems.clone();
        let spawned = std::thread::Builder::new()
            .name("sound".into())
            .spawn(move || run(&rx, &thread_problems, &*wake));
        if let Err(err) = spawned {
            problems.publish(format!(
                "Sounds are off: cannot start the sound thread: {err}"
            ));
        }
        SoundPlayer {
            requests,
            problems,
            playing: None,
        }
    }

    /// Plays `sound` on `speaker` (`None`: the default one), replacing what plays now.
    pub fn play(&mut self, sound: Sound, speaker: Option<String>) {
        self.playing = Some(sound);
        let _ = self.requests.send(Request::Play { sound, speaker });
    }

    pub fn stop(&mut self) {
        if self.playing.take().is_some() {
            let _ = self.requests.send(Request::Stop);
        }
    }

    pub fn playing(&self) -> Option<Sound> {
        self.playing
    }
}

fn run(
    requests: &Receiver<Request>,
    problems: &LatestSlot<String>,
    wake: &(dyn Fn() + Send + Sync),
) {
    let ringtone = decode_wav(RINGTONE_WAV);
    let ringback = ringback();
    let chime = chime();
    let mut next = None;
    loop {
        let request = match next.take() {
            Some(request) => request,
            None => match requests.recv() {
                Ok(request) => request,
                Err(_) => return,
            },
        };
        let Request::Play { sound, speaker } = request else {
            continue;
        };
        let samples = match (sound, &ringtone) {
            (Sound::Ringtone, Ok(samples)) => samples,
            (Sound::Ringtone, Err(err)) => {
                problems.publish(format!("Cannot play the ringtone: {err}"));
                wake();
                continue;
            }
            (Sound::Ringback, _) => &ringback,
            (Sound::Chime, _) => &chime,
        };
        let mut sink = match SpeakerSink::open(speaker.as_deref()) {
            Ok(sink) => sink,
            Err(err) => {
                problems.publish(format!("Cannot play sounds: {err}"));
                wake();
                continue;
            }
        };
        next = play(&mut sink, samples, sound.loops(), requests, problems, wake);
    }
}

/// Plays until done, stopped or replaced; returns a replacing request.
fn play(
    sink: &mut SpeakerSink,
    samples: &[f32],
    looped: bool,
    requests: &Receiver<Request>,
    problems: &LatestSlot<String>,
    wake: &(dyn Fn() + Send + Sync),
) -> Option<Request> {
    let mut frame = vec![0.0f32; FRAME_SAMPLES];
    loop {
        for chunk in samples.chunks(FRAME_SAMPLES) {
            match requests.try_recv() {
                Ok(Request::Stop) | Err(TryRecvError::Disconnected) => return None,
                Ok(request) => return Some(request),
                Err(TryRecvError::Empty) => {}
            }
            // Chunks are at most a frame long; the last one is padded with silence.
            let (head, tail) = frame.split_at_mut(chunk.len().min(FRAME_SAMPLES));
            head.copy_from_slice(chunk);
            tail.fill(0.0);
            // The sink paces us: it returns once the device has room.
            if let Err(err) = sink.write(&frame) {
                problems.publish(format!("The speaker stopped: {err}"));
                wake();
                return None;
            }
        }
        if !looped {
            // Let the tail play out unless something else is asked for.
            return match requests.recv_timeout(Duration::from_millis(300)) {
                Ok(Request::Stop)
                | Err(RecvTimeoutError::Disconnected | RecvTimeoutError::Timeout) => None,
                Ok(request) => Some(request),
            };
        }
    }
}

/// 16-bit mono WAV at 48 kHz, as samples.
fn decode_wav(bytes: &[u8]) -> Result<Vec<f32>, String> {
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(|err| err.to_string())?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE || spec.channels != 1 || spec.bits_per_sample != 16 {
        return Err(format!(
            "the ringtone must be 48 kHz mono 16-bit, not {} Hz x{} {}-bit",
            spec.sample_rate, spec.channels, spec.bits_per_sample
        ));
    }
    reader
        .into_samples::<i16>()
        .map(|s| {
            s.map(|s| f32::from(s) / 32768.0)
                .map_err(|err| err.to_string())
        })
        .collect()
}

/// The tone a caller hears while it rings at the other end: 425 Hz (the European
/// ringback tone), one second on and three off, soft.
fn ringback() -> Vec<f32> {
    let rate = SAMPLE_RATE as f32;
    let on = SAMPLE_RATE as usize;
    let tone = (0..on).map(|i| {
        let t = i as f32 / rate;
        // 20 ms fades, so the tone never clicks.
        let envelope = (t / 0.02).min((1.0 - t) / 0.02).min(1.0);
        0.12 * envelope * (2.0 * std::f32::consts::PI * 425.0 * t).sin()
    });
    tone.chain(std::iter::repeat_n(0.0, 3 * on)).collect()
}

/// Two soft notes, 0.5 s: the test sound.
fn chime() -> Vec<f32> {
    let rate = SAMPLE_RATE as f32;
    let note = |hz: f32, len: usize| {
        (0..len).map(move |i| {
            let t = i as f32 / rate;
            0.3 * (-t * 6.0).exp() * (2.0 * std::f32::consts::PI * hz * t).sin()
        })
    };
    let len = SAMPLE_RATE as usize / 4;
    note(659.3, len).chain(note(880.0, len)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_ringtone_decodes_and_rings() {
        let samples = decode_wav(RINGTONE_WAV).expect("ringtone");
        let secs = samples.len() as f32 / SAMPLE_RATE as f32;
        assert!((1.0..=6.0).contains(&secs), "{secs} s");
        let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.1, "audible: peak {peak}");
    }

    #[test]
    fn the_ringback_rings_a_second_in_four() {
        let samples = ringback();
        assert_eq!(samples.len(), 4 * SAMPLE_RATE as usize);
        let (on, off) = samples.split_at(SAMPLE_RATE as usize);
        let peak = on.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((0.05..0.2).contains(&peak), "soft but audible: {peak}");
        assert!(off.iter().all(|s| *s == 0.0));
        assert!(on[0].abs() < 0.01, "fades in");
        assert!(Sound::Ringback.loops() && !Sound::Chime.loops());
    }

    #[test]
    fn a_wrong_format_is_refused_in_words() {
        let mut wav = Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(&mut wav, spec).expect("writer");
        writer.write_sample(0i16).expect("sample");
        writer.write_sample(0i16).expect("sample");
        writer.finalize().expect("finalize");
        let err = decode_wav(wav.get_ref()).expect_err("44.1 kHz stereo");
        assert!(err.contains("44100 Hz x2"), "{err}");
        assert!(decode_wav(b"not a wav").is_err());
    }
}
