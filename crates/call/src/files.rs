//! Files, performed: hashing, sending on a transfer channel with back-pressure, and
//! receiving into a `.part` file that becomes the saved file only once the SHA-256 matches.
//! What to do is the call core's decision (`confab_call_core::files`); file I/O runs on
//! tokio's blocking pool, never on its workers.
//!
//! Memory stays bounded whatever the file's size: the sender reads one chunk ahead and
//! stops while more than [`SEND_HIGH_WATER`] bytes are unacknowledged by SCTP (which also
//! keeps the file from filling the path's queue ahead of the call's media); the receiver
//! writes each chunk before it takes the next, so a slow disk closes SCTP's receive window
//! rather than filling memory.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use confab_call_core::{FileId, FileReport};
use confab_protocol::file::{MAX_CHUNK_BYTES, numbered_name};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info};
use webrtc::data_channel::{DataChannel, DataChannelEvent};

use crate::peer::{PeerEvent, PeerEvents};

/// Bytes per message on a transfer channel.
const CHUNK_BYTES: usize = MAX_CHUNK_BYTES;

/// The sender waits while SCTP holds more than this unacknowledged... About one
/// bandwidth-delay product of a 100 Mbit/s, 50 ms path: enough to fill it (8.9 MB/s in
/// `benches/files.rs`), not so much that the call's media queues behind the file (with
/// 4 MiB, video latency went from 30 to 70 ms there; with 768 KiB, to 50 ms).
const SEND_HIGH_WATER: usize = 768 << 10;
/// ...until it is down to this. The channel's buffered-amount-low event says when the bytes
/// SCTP has not yet sent fall below this...
const SEND_LOW_WATER: u32 = 512 << 10;
/// ...but the bytes it sent and the peer has not yet acknowledged count too, and their
/// going is no event: the sender looks again this often. (With 20 ms, loopback transfers
/// ran at 25-27 MB/s instead of 33-35, in the test build.)
const SEND_RECHECK: Duration = Duration::from_millis(2);

/// How often the receiver reports what it has written.
const REPORT_EVERY: Duration = Duration::from_millis(100);

/// Where received files go, and how large they may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettings {
    pub download_dir: PathBuf,
    /// Larger files are neither offered nor accepted.
    pub max_size: u64,
}

impl Default for FileSettings {
    fn default() -> FileSettings {
        FileSettings {
            download_dir: std::env::temp_dir(),
            max_size: confab_call_core::files::DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// The SHA-256 of a file as 64 lowercase hex digits (blocking: run it off the runtime).
pub fn sha256_of(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        context.update(buffer.get(..read).unwrap_or_default());
    }
    Ok(hex(context.finish().as_ref()))
}

/// The SHA-256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes off the runtime.
pub async fn hash(path: PathBuf) -> Result<String, String> {
    let name = path.display().to_string();
    match tokio::task::spawn_blocking(move || sha256_of(&path)).await {
        Ok(Ok(hash)) => Ok(hash),
        Ok(Err(err)) => Err(format!("cannot read {name}: {err}")),
        Err(err) => Err(format!("cannot read {name}: {err}")),
    }
}

/// A file being received: written to `NAME.part`, renamed to the first free name among
/// `NAME`, `NAME (1)`... once it is whole. Deleted if dropped before that.
struct Partial {
    dir: PathBuf,
    /// The safe name asked for, and the number it had when the partial file was made.
    name: String,
    number: u32,
    part: PathBuf,
    done: bool,
}

impl Partial {
    /// Creates the folder if need be and a `.part` file no one else has (blocking).
    fn create(dir: &Path, name: &str) -> io::Result<(Partial, File)> {
        std::fs::create_dir_all(dir)?;
        for number in 0..1000 {
            let candidate = candidate(name, number);
            if dir.join(&candidate).exists() {
                continue;
            }
            let part = dir.join(format!("{candidate}.part"));
            match OpenOptions::new().write(true).create_new(true).open(&part) {
                Ok(file) => {
                    let partial = Partial {
                        dir: dir.to_path_buf(),
                        name: name.to_string(),
                        number,
                        part,
                        done: false,
                    };
                    return Ok((partial, file));
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(err),
            }
        }
        Err(io::Error::other(format!(
            "{name} and 999 numbered names are taken"
        )))
    }

    /// The file is whole: its final name (blocking).
    fn keep(mut self) -> io::Result<PathBuf> {
        for number in self.number..self.number + 1000 {
            let path = self.dir.join(candidate(&self.name, number));
            if path.exists() {
                continue;
            }
            std::fs::rename(&self.part, &path)?;
            self.done = true;
            return Ok(path);
        }
        Err(io::Error::other("no free name for the file"))
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.done {
            // An unlink: quick, and the file must not outlive a failed transfer.
            if let Err(err) = std::fs::remove_file(&self.part) {
                debug!("could not delete {}: {err}", self.part.display());
            }
        }
    }
}

fn candidate(name: &str, number: u32) -> String {
    match number {
        0 => name.to_string(),
        n => numbered_name(name, n),
    }
}

/// What a receiving transfer writes into, moved to the blocking pool for each chunk.
struct Sink {
    writer: BufWriter<File>,
    partial: Partial,
    digest: ring::digest::Context,
    written: u64,
}

impl Sink {
    fn write(mut self, chunk: &[u8]) -> (Sink, io::Result<()>) {
        let result = self.writer.write_all(chunk);
        if result.is_ok() {
            self.digest.update(chunk);
            self.written += chunk.len() as u64;
        }
        (self, result)
    }

    /// Flushes, checks the hash and gives the file its name (blocking).
    fn finish(self, sha256: &str) -> Result<PathBuf, String> {
        let Sink {
            writer,
            partial,
            digest,
            ..
        } = self;
        let file = writer
            .into_inner()
            .map_err(|err| disk_error(&err.into_error()))?;
        file.sync_data().map_err(|err| disk_error(&err))?;
        drop(file);
        if hex(digest.finish().as_ref()) != sha256 {
            return Err("the file arrived damaged: its SHA-256 does not match".into());
        }
        partial.keep().map_err(|err| disk_error(&err))
    }
}

fn disk_error(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::StorageFull => "the disk is full".into(),
        _ => format!("cannot write the file: {err}"),
    }
}

/// Lets go of a sink that will not be finished: its partial file is deleted, off the
/// runtime (what its writer still buffers is flushed first).
async fn discard(sink: Sink) {
    let _ = tokio::task::spawn_blocking(move || drop(sink)).await;
}

/// A file accepted, waiting for the sender to open its channel.
pub(crate) struct Expected {
    file: FileId,
    size: u64,
    sha256: String,
    sink: Sink,
}

/// A link's transfers in progress.
#[derive(Default)]
pub(crate) struct Transfers {
    /// Accepted files by their id on the wire, until their channel opens.
    expected: HashMap<String, Expected>,
    running: HashMap<FileId, (watch::Sender<Option<Ending>>, JoinHandle<()>)>,
}

impl Transfers {
    /// Makes the `.part` file for an accepted transfer (off the runtime); `Err` says why not.
    pub(crate) async fn expect(
        &mut self,
        dir: PathBuf,
        (file, id): (FileId, String),
        name: String,
        size: u64,
        sha256: String,
    ) -> Result<(), String> {
        let created = tokio::task::spawn_blocking(move || Partial::create(&dir, &name)).await;
        let (partial, handle) = match created {
            Ok(Ok(created)) => created,
            Ok(Err(err)) => return Err(disk_error(&err)),
            Err(err) => return Err(err.to_string()),
        };
        info!("{file}: receiving into {}", partial.part.display());
        let sink = Sink {
            writer: BufWriter::with_capacity(1 << 20, handle),
            partial,
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            written: 0,
        };
        let expected = Expected {
            file,
            size,
            sha256,
            sink,
        };
        self.expected.insert(id, expected);
        Ok(())
    }

    /// The peer opened a transfer channel: received into its file if we accepted it.
    pub(crate) fn channel(&mut self, id: &str, channel: Arc<dyn DataChannel>, events: PeerEvents) {
        let Some(expected) = self.expected.remove(id) else {
            debug!("a transfer channel for {id}, which we did not accept: closed");
            return let_go(channel, true);
        };
        let file = expected.file;
        debug!("{file}: the sender opened its channel");
        let (stop, stopped) = watch::channel(None);
        let task = tokio::spawn(receive(channel, expected, events, stopped));
        self.running.insert(file, (stop, task));
    }

    /// Sends `size` bytes of `path` on `channel` (opened by us for this transfer).
    pub(crate) fn send(
        &mut self,
        file: FileId,
        channel: Arc<dyn DataChannel>,
        (path, size): (PathBuf, u64),
        events: PeerEvents,
    ) {
        let (stop, stopped) = watch::channel(None);
        let task = tokio::spawn(send(file, channel, (path, size), events, stopped));
        self.running.insert(file, (stop, task));
    }

    /// Stops one transfer and waits for it to let go (its partial file deleted). `close`:
    /// we ended it and close its channel; else the peer, which closes it.
    pub(crate) async fn stop(&mut self, file: FileId, close: bool) {
        if let Some(id) = self
            .expected
            .iter()
            .find(|(_, e)| e.file == file)
            .map(|(id, _)| id.clone())
            && let Some(expected) = self.expected.remove(&id)
        {
            discard(expected.sink).await;
        }
        if let Some((stop, task)) = self.running.remove(&file) {
            let ending = if close {
                Ending::WeClose
            } else {
                Ending::PeerCloses
            };
            let _ = stop.send(Some(ending));
            let _ = task.await;
        }
    }

    /// Stops everything (the link closes).
    pub(crate) async fn stop_all(&mut self) {
        let files: Vec<FileId> = (self.expected.values().map(|e| e.file))
            .chain(self.running.keys().copied())
            .collect();
        for file in files {
            self.stop(file, true).await;
        }
    }
}

/// Who closes the channel of a transfer stopped from outside its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    WeClose,
    PeerCloses,
}

/// Until the transfer is stopped; how. (A handle gone counts as ours to close.)
async fn stopped(stop: &mut watch::Receiver<Option<Ending>>) -> Ending {
    match stop.wait_for(Option::is_some).await {
        Ok(ending) => ending.unwrap_or(Ending::WeClose),
        Err(_) => Ending::WeClose,
    }
}

fn report(events: &PeerEvents, report: FileReport) {
    events.send(PeerEvent::File(report));
}

async fn receive(
    channel: Arc<dyn DataChannel>,
    expected: Expected,
    events: PeerEvents,
    mut stop: watch::Receiver<Option<Ending>>,
) {
    let Expected {
        file,
        size,
        sha256,
        sink,
    } = expected;
    let result = receive_into(&channel, sink, (file, size, &sha256), &events, &mut stop).await;
    // Whether we close the channel, and why the transfer failed.
    let (close, reason) = match result {
        Ok(Received::Saved(path)) => {
            info!("{file}: saved as {}", path.display());
            report(&events, FileReport::Saved { file, path });
            // The sender closes the channel once it has our word.
            (false, None)
        }
        // Stopped: the core knows.
        Ok(Received::Stopped(ending)) => (ending == Ending::WeClose, None),
        Err(Stopped::Failed(reason)) => (true, Some(reason)),
        Err(Stopped::Closed) => {
            // A sender that cancels closes the channel, and its word may come just after.
            let verdict = tokio::time::timeout(VERDICT_WAIT, stopped(&mut stop)).await;
            let reason = "the sender stopped before the end of the file".to_string();
            (false, verdict.is_err().then_some(reason))
        }
    };
    if let Some(reason) = reason {
        info!("{file}: receiving failed: {reason}");
        report(&events, FileReport::Failed { file, reason });
    }
    let_go(channel, close);
}

/// How receiving ended, when nothing went wrong.
enum Received {
    Saved(PathBuf),
    Stopped(Ending),
}

/// Writes what arrives until `size` bytes, then checks and keeps the file. The partial file
/// is deleted on every way out but success.
async fn receive_into(
    channel: &Arc<dyn DataChannel>,
    mut sink: Sink,
    (file, size, sha256): (FileId, u64, &str),
    events: &PeerEvents,
    stop: &mut watch::Receiver<Option<Ending>>,
) -> Result<Received, Stopped> {
    let mut reported = tokio::time::Instant::now();
    while sink.written < size {
        let event = tokio::select! {
            ending = stopped(stop) => {
                discard(sink).await;
                return Ok(Received::Stopped(ending));
            }
            event = channel.poll() => event,
        };
        let message = match event {
            Some(DataChannelEvent::OnMessage(message)) => message,
            Some(DataChannelEvent::OnClose) | None => {
                discard(sink).await;
                return Err(Stopped::Closed);
            }
            Some(_) => continue,
        };
        let too_many = sink.written + message.data.len() as u64 > size;
        if message.is_string || too_many {
            discard(sink).await;
            return Err(Stopped::Failed(if too_many {
                "the sender sent more bytes than it announced".into()
            } else {
                "the sender sent text on the transfer channel".into()
            }));
        }
        let data = message.data.freeze();
        let written = tokio::task::spawn_blocking(move || sink.write(&data)).await;
        let (back, result) = written.map_err(|err| Stopped::Failed(err.to_string()))?;
        sink = back;
        if let Err(err) = result {
            discard(sink).await;
            return Err(Stopped::Failed(disk_error(&err)));
        }
        if reported.elapsed() >= REPORT_EVERY && sink.written < size {
            reported = tokio::time::Instant::now();
            let bytes = sink.written;
            report(events, FileReport::Written { file, bytes });
        }
    }
    let sha256 = sha256.to_string();
    match tokio::task::spawn_blocking(move || sink.finish(&sha256)).await {
        Ok(Ok(path)) => Ok(Received::Saved(path)),
        Ok(Err(reason)) => Err(Stopped::Failed(reason)),
        Err(err) => Err(Stopped::Failed(err.to_string())),
    }
}

/// How long a sender whose channel closed waits for the receiver's word (`file_done` or
/// `file_cancel` on the chat channel, which may come just after) before it calls the
/// transfer failed.
const VERDICT_WAIT: Duration = Duration::from_secs(5);

async fn send(
    file: FileId,
    channel: Arc<dyn DataChannel>,
    (path, size): (PathBuf, u64),
    events: PeerEvents,
    mut stop: watch::Receiver<Option<Ending>>,
) {
    let outcome = tokio::select! {
        ending = stopped(&mut stop) => Err(ending),
        result = send_all(&channel, &path, size) => Ok(result),
    };
    // Whether we close the channel, and why the transfer failed if the peer's word (which
    // stops us) does not come in time.
    let (close, reason) = match outcome {
        Err(ending) => (ending == Ending::WeClose, None),
        Ok(Ok(())) => {
            debug!("{file}: all {size} bytes handed to SCTP");
            // The receiver's word ends it (the core stops us); a channel that closes first
            // gets a moment for that word to arrive.
            tokio::select! {
                ending = stopped(&mut stop) => (ending == Ending::WeClose, None),
                () = until_closed(&channel) => {
                    (false, Some("the receiver closed the transfer without confirming it"))
                }
            }
        }
        Ok(Err(Stopped::Closed)) => (false, Some("the receiver closed the transfer")),
        Ok(Err(Stopped::Failed(reason))) => {
            info!("{file}: sending failed: {reason}");
            report(&events, FileReport::Failed { file, reason });
            (true, None)
        }
    };
    if let Some(reason) = reason {
        let verdict = tokio::time::timeout(VERDICT_WAIT, stopped(&mut stop)).await;
        if verdict.is_err() {
            info!("{file}: {reason}");
            let reason = reason.to_string();
            report(&events, FileReport::Failed { file, reason });
        }
    }
    let_go(channel, close);
}

/// How long a channel we are done with is read, for its close to complete.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Lets go of a transfer channel in the background: closes it (when `close`), then reads
/// what is still on its way until it is closed both ways. webrtc-rs completes a stream's
/// reset only once its data has been read, and gives the next channel the same stream id: a
/// channel dropped unread left the next transfer hanging on it.
fn let_go(channel: Arc<dyn DataChannel>, close: bool) {
    tokio::spawn(async move {
        if close {
            let _ = channel.close().await;
        }
        if tokio::time::timeout(CLOSE_WAIT, until_closed(&channel))
            .await
            .is_err()
        {
            debug!("a transfer channel did not close within {CLOSE_WAIT:?}");
        }
    });
}

/// Why a transfer stopped early, on either side.
enum Stopped {
    /// The channel closed: the other side (or the connection) ended it.
    Closed,
    Failed(String),
}

async fn until_closed(channel: &Arc<dyn DataChannel>) {
    while let Some(event) = channel.poll().await {
        if matches!(event, DataChannelEvent::OnClose) {
            return;
        }
    }
}

/// Waits for the channel to open, then sends the file chunk by chunk, never more than
/// [`SEND_HIGH_WATER`] ahead of SCTP's acknowledgements.
async fn send_all(channel: &Arc<dyn DataChannel>, path: &Path, size: u64) -> Result<(), Stopped> {
    loop {
        match channel.poll().await {
            Some(DataChannelEvent::OnOpen) => break,
            Some(DataChannelEvent::OnClose) | None => return Err(Stopped::Closed),
            Some(_) => {}
        }
    }
    channel
        .set_buffered_amount_low_threshold(SEND_LOW_WATER)
        .await
        .map_err(|_| Stopped::Closed)?;
    let name = path.display().to_string();
    let open = path.to_path_buf();
    let failed = |reason: String| Stopped::Failed(reason);
    let mut source = tokio::task::spawn_blocking(move || File::open(open))
        .await
        .map_err(|err| failed(err.to_string()))?
        .map_err(|err| failed(format!("cannot read {name}: {err}")))?;
    let mut sent = 0u64;
    while sent < size {
        while channel
            .outstanding_bytes()
            .await
            .map_err(|_| Stopped::Closed)?
            > SEND_HIGH_WATER
        {
            let wake = tokio::time::timeout(SEND_RECHECK, channel.poll()).await;
            if let Ok(Some(DataChannelEvent::OnClose) | None) = wake {
                return Err(Stopped::Closed);
            }
        }
        let want = (size - sent).min(CHUNK_BYTES as u64) as usize;
        let (back, chunk, result) = tokio::task::spawn_blocking(move || {
            let mut chunk = BytesMut::zeroed(want);
            let result = source.read_exact(&mut chunk);
            (source, chunk, result)
        })
        .await
        .map_err(|err| failed(err.to_string()))?;
        source = back;
        result.map_err(|err| match err.kind() {
            io::ErrorKind::UnexpectedEof => failed(format!("{name} got shorter while it was sent")),
            _ => failed(format!("cannot read {name}: {err}")),
        })?;
        channel.send(chunk).await.map_err(|_| Stopped::Closed)?;
        sent += want as u64;
    }
    Ok(())
}
