//! Files sent in a call: which transfers there are, what each waits for, the limits, and
//! what the user is told (progress, speed). The driver hashes, reads, sends and writes;
//! every decision is here.
//!
//! Sending: the file is hashed first ([`FileOut::Hash`]), then offered on the chat
//! channel; on the peer's acceptance the driver sends it ([`LinkAction::SendFile`]), and the
//! progress shown is what the receiver acknowledged. Receiving: an offer waits for the
//! user; on acceptance the driver receives ([`LinkAction::ReceiveFile`]) and reports what it
//! wrote, which is acknowledged to the sender. Nothing is written before the user accepts.
//!
//! A peer may be hostile: offers above the size limit are refused, at most
//! [`MAX_WAITING_OFFERS`] wait for the user per link (more are refused), and messages for
//! transfers that do not exist, or go the wrong way, are ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use confab_protocol::chat::ChatMessage;
use confab_protocol::file::safe_file_name;
use tracing::debug;

use crate::call::{LinkAction, LinkId};

/// How many offers from one peer wait for the user before more are refused.
pub const MAX_WAITING_OFFERS: usize = 8;

/// The size limit when the user has not set one: 4 GiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 4 << 30;

/// A transfer, as the application refers to it (ids on the wire are the sender's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(u64);

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file {}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sending,
    Receiving,
}

/// Where a transfer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferState {
    /// Ours: the file is read for its SHA-256 before it is offered.
    Preparing,
    /// Ours: offered, the peer has not answered. Theirs: waiting for the user to accept.
    Offered,
    Transferring,
    /// Every byte arrived and the SHA-256 matched; the receiver saved it here.
    Done {
        saved_to: Option<PathBuf>,
    },
    Declined {
        by_us: bool,
    },
    Cancelled {
        by_us: bool,
        reason: String,
    },
    Failed {
        reason: String,
    },
}

impl TransferState {
    pub fn is_over(&self) -> bool {
        !matches!(
            self,
            TransferState::Preparing | TransferState::Offered | TransferState::Transferring
        )
    }
}

/// What the user sees of a transfer; sent whenever it changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub file: FileId,
    pub direction: Direction,
    /// Who it goes to or comes from.
    pub peer_name: String,
    /// The name offered (made safe, when receiving).
    pub name: String,
    pub size: u64,
    /// Bytes the receiver has written (acknowledged, when sending).
    pub bytes: u64,
    /// Recent speed, once known.
    pub bytes_per_second: Option<f64>,
    pub state: TransferState,
}

impl Transfer {
    /// At the recent speed.
    pub fn time_left(&self) -> Option<Duration> {
        let rate = self.bytes_per_second.filter(|r| *r > 0.0)?;
        let left = self.size.saturating_sub(self.bytes) as f64 / rate;
        Duration::try_from_secs_f64(left).ok()
    }
}

/// What the driver reports about a transfer it performs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileReport {
    /// Receiving: this many bytes are written.
    Written { file: FileId, bytes: u64 },
    /// Receiving: every byte arrived, the SHA-256 matched, the file is saved there.
    Saved { file: FileId, path: PathBuf },
    /// Reading, sending or writing failed (the receiver deleted what it wrote).
    Failed { file: FileId, reason: String },
}

/// What the file decisions lead to (the call core routes chat through the link's book).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FileOut {
    Chat(LinkId, ChatMessage),
    Link(LinkId, LinkAction),
    /// Hash this file for these transfers (one per link it goes to).
    Hash {
        files: Vec<FileId>,
        path: PathBuf,
    },
    Event(Transfer),
}

struct Entry {
    link: LinkId,
    /// The id on the wire (the sender's).
    id: String,
    /// Ours: the file to read.
    path: Option<PathBuf>,
    sha256: String,
    mime: Option<String>,
    view: Transfer,
    /// The last speed sample: when, and how many bytes.
    sample: Option<(Instant, u64)>,
}

/// Every transfer of the call.
pub(crate) struct Files {
    max_size: u64,
    next: u64,
    entries: BTreeMap<FileId, Entry>,
    out: Vec<FileOut>,
}

/// Speed samples closer than this are merged (the rate of a few chunks is noise).
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

impl Files {
    pub(crate) fn new() -> Files {
        Files {
            max_size: DEFAULT_MAX_FILE_SIZE,
            next: 0,
            entries: BTreeMap::new(),
            out: Vec::new(),
        }
    }

    pub(crate) fn set_max_size(&mut self, bytes: u64) {
        self.max_size = bytes;
    }

    pub(crate) fn take_outputs(&mut self) -> Vec<FileOut> {
        std::mem::take(&mut self.out)
    }

    /// The user sends `path` to every link of the call (`to`: each link with its peer's
    /// name and the transfer's id on the wire). `Err` says why not.
    pub(crate) fn send(
        &mut self,
        to: &[(LinkId, String, String)],
        path: PathBuf,
        name: String,
        size: u64,
        mime: Option<String>,
    ) -> Result<(), String> {
        if to.is_empty() {
            return Err(format!("{name} cannot be sent: not in a call"));
        }
        if size > self.max_size {
            return Err(format!(
                "{name} is {}, more than the {} limit",
                human_bytes(size),
                human_bytes(self.max_size)
            ));
        }
        let mut files = Vec::new();
        for (link, peer_name, id) in to {
            let file = self.new_id();
            let view = Transfer {
                file,
                direction: Direction::Sending,
                peer_name: peer_name.clone(),
                name: name.clone(),
                size,
                bytes: 0,
                bytes_per_second: None,
                state: TransferState::Preparing,
            };
            self.out.push(FileOut::Event(view.clone()));
            let entry = Entry {
                link: *link,
                id: id.clone(),
                path: Some(path.clone()),
                sha256: String::new(),
                mime: mime.clone(),
                view,
                sample: None,
            };
            self.entries.insert(file, entry);
            files.push(file);
        }
        self.out.push(FileOut::Hash { files, path });
        Ok(())
    }

    /// The file of these transfers is hashed (or could not be read): offer it.
    pub(crate) fn hashed(&mut self, files: &[FileId], sha256: Result<String, String>) {
        for file in files {
            let Some(entry) = self.entries.get_mut(file) else {
                continue; // Cancelled meanwhile.
            };
            if entry.view.state != TransferState::Preparing {
                continue;
            }
            match &sha256 {
                Ok(hash) => {
                    entry.sha256.clone_from(hash);
                    let offer = ChatMessage::FileOffer {
                        id: entry.id.clone(),
                        name: entry.view.name.clone(),
                        size: entry.view.size,
                        sha256: hash.clone(),
                        mime: entry.mime.clone(),
                    };
                    self.out.push(FileOut::Chat(entry.link, offer));
                    self.set_state(*file, TransferState::Offered);
                }
                Err(reason) => self.end(
                    *file,
                    TransferState::Failed {
                        reason: reason.clone(),
                    },
                ),
            }
        }
    }

    /// A `file_*` message from the peer on `link` (checked for form already).
    pub(crate) fn receive(
        &mut self,
        link: LinkId,
        peer_name: String,
        message: ChatMessage,
        now: Instant,
    ) {
        match message {
            ChatMessage::FileOffer {
                id,
                name,
                size,
                sha256,
                mime,
            } => self.offered(link, peer_name, id, (name, size, sha256, mime)),
            ChatMessage::FileAnswer { id, accept } => {
                let Some(file) = self.find(link, &id, Direction::Sending) else {
                    return;
                };
                if !self.is(file, &TransferState::Offered) {
                    return;
                }
                if !accept {
                    return self.end(file, TransferState::Declined { by_us: false });
                }
                let Some(entry) = self.entries.get_mut(&file) else {
                    return;
                };
                entry.sample = Some((now, 0));
                let send = LinkAction::SendFile {
                    file,
                    id,
                    path: entry.path.clone().unwrap_or_default(),
                    size: entry.view.size,
                };
                self.out.push(FileOut::Link(link, send));
                self.set_state(file, TransferState::Transferring);
            }
            ChatMessage::FileProgress { id, received } => {
                if let Some(file) = self.find(link, &id, Direction::Sending) {
                    self.progress(file, received, now);
                }
            }
            ChatMessage::FileDone { id } => {
                let Some(file) = self.find(link, &id, Direction::Sending) else {
                    return;
                };
                if self.is(file, &TransferState::Transferring) {
                    if let Some(entry) = self.entries.get_mut(&file) {
                        entry.view.bytes = entry.view.size;
                    }
                    let stop = LinkAction::StopFile { file, close: true };
                    self.out.push(FileOut::Link(link, stop));
                    self.end(file, TransferState::Done { saved_to: None });
                }
            }
            ChatMessage::FileCancel { id, reason } => {
                let found = self
                    .find(link, &id, Direction::Sending)
                    .or_else(|| self.find(link, &id, Direction::Receiving));
                if let Some(file) = found {
                    if self.is(file, &TransferState::Transferring) {
                        // The peer ended it: it closes the channel.
                        let stop = LinkAction::StopFile { file, close: false };
                        self.out.push(FileOut::Link(link, stop));
                    }
                    let by_us = false;
                    self.end(file, TransferState::Cancelled { by_us, reason });
                }
            }
            other => debug!("not a file message: {other:?}"),
        }
    }

    fn offered(
        &mut self,
        link: LinkId,
        peer_name: String,
        id: String,
        (name, size, sha256, mime): (String, u64, String, Option<String>),
    ) {
        let known = self.entries.values().any(|e| e.link == link && e.id == id);
        if known {
            return debug!("a second offer of {id}: ignored");
        }
        let waiting = self
            .entries
            .values()
            .filter(|e| e.link == link && e.view.state == TransferState::Offered)
            .filter(|e| e.view.direction == Direction::Receiving)
            .count();
        if waiting >= MAX_WAITING_OFFERS {
            debug!("{link}: {waiting} offers wait already; refusing {id}");
            let reason = "too many files are waiting to be accepted".to_string();
            return self
                .out
                .push(FileOut::Chat(link, ChatMessage::FileCancel { id, reason }));
        }
        let file = self.new_id();
        let mut view = Transfer {
            file,
            direction: Direction::Receiving,
            peer_name,
            name: safe_file_name(&name),
            size,
            bytes: 0,
            bytes_per_second: None,
            state: TransferState::Offered,
        };
        if size > self.max_size {
            let limit = human_bytes(self.max_size);
            let reason = format!("larger than the receiver's limit of {limit}");
            self.out.push(FileOut::Chat(
                link,
                ChatMessage::FileCancel {
                    id: id.clone(),
                    reason,
                },
            ));
            view.state = TransferState::Failed {
                reason: format!("refused: more than your limit of {limit}"),
            };
            return self.out.push(FileOut::Event(view));
        }
        self.out.push(FileOut::Event(view.clone()));
        let entry = Entry {
            link,
            id,
            path: None,
            sha256,
            mime,
            view,
            sample: None,
        };
        self.entries.insert(file, entry);
    }

    /// The user accepts an offer: the driver receives it.
    pub(crate) fn accept(&mut self, file: FileId, now: Instant) {
        let Some(entry) = self.entries.get_mut(&file) else {
            return;
        };
        if entry.view.direction != Direction::Receiving
            || entry.view.state != TransferState::Offered
        {
            return;
        }
        entry.sample = Some((now, 0));
        let link = entry.link;
        let receive = LinkAction::ReceiveFile {
            file,
            id: entry.id.clone(),
            name: entry.view.name.clone(),
            size: entry.view.size,
            sha256: entry.sha256.clone(),
        };
        let answer = ChatMessage::FileAnswer {
            id: entry.id.clone(),
            accept: true,
        };
        // The driver expects the channel before the sender can open it.
        self.out.push(FileOut::Link(link, receive));
        self.out.push(FileOut::Chat(link, answer));
        self.set_state(file, TransferState::Transferring);
    }

    pub(crate) fn decline(&mut self, file: FileId) {
        let Some(entry) = self.entries.get(&file) else {
            return;
        };
        if entry.view.direction != Direction::Receiving
            || entry.view.state != TransferState::Offered
        {
            return;
        }
        let answer = ChatMessage::FileAnswer {
            id: entry.id.clone(),
            accept: false,
        };
        self.out.push(FileOut::Chat(entry.link, answer));
        self.end(file, TransferState::Declined { by_us: true });
    }

    /// The user cancels a transfer, whichever way it goes and wherever it stands.
    pub(crate) fn cancel(&mut self, file: FileId) {
        let Some(entry) = self.entries.get(&file) else {
            return;
        };
        let reason = "cancelled".to_string();
        match entry.view.state {
            TransferState::Preparing => {}
            TransferState::Offered if entry.view.direction == Direction::Receiving => {
                return self.decline(file);
            }
            TransferState::Offered => self.tell_cancel(file, false, &reason),
            TransferState::Transferring => self.tell_cancel(file, true, &reason),
            _ => return,
        }
        let by_us = true;
        self.end(file, TransferState::Cancelled { by_us, reason });
    }

    /// Tells the peer the transfer is off (and the driver to stop it, if it runs).
    fn tell_cancel(&mut self, file: FileId, running: bool, reason: &str) {
        let Some(entry) = self.entries.get(&file) else {
            return;
        };
        let (link, id) = (entry.link, entry.id.clone());
        if running {
            let stop = LinkAction::StopFile { file, close: true };
            self.out.push(FileOut::Link(link, stop));
        }
        let reason = reason.to_string();
        self.out
            .push(FileOut::Chat(link, ChatMessage::FileCancel { id, reason }));
    }

    /// What the driver reports.
    pub(crate) fn report(&mut self, report: FileReport, now: Instant) {
        match report {
            FileReport::Written { file, bytes } => {
                let Some(entry) = self.entries.get(&file) else {
                    return;
                };
                if entry.view.direction != Direction::Receiving {
                    return;
                }
                let progress = ChatMessage::FileProgress {
                    id: entry.id.clone(),
                    received: bytes,
                };
                self.out.push(FileOut::Chat(entry.link, progress));
                self.progress(file, bytes, now);
            }
            FileReport::Saved { file, path } => {
                let Some(entry) = self.entries.get_mut(&file) else {
                    return;
                };
                entry.view.bytes = entry.view.size;
                let done = ChatMessage::FileDone {
                    id: entry.id.clone(),
                };
                self.out.push(FileOut::Chat(entry.link, done));
                let saved_to = Some(path);
                self.end(file, TransferState::Done { saved_to });
            }
            FileReport::Failed { file, reason } => {
                self.tell_cancel(file, true, &reason);
                self.end(file, TransferState::Failed { reason });
            }
        }
    }

    /// The link closed (the call ended, the member left): what was under way fails.
    pub(crate) fn link_closed(&mut self, link: LinkId) {
        let files: Vec<FileId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.link == link)
            .map(|(file, _)| *file)
            .collect();
        for file in files {
            let reason = "the call ended".to_string();
            self.end(file, TransferState::Failed { reason });
        }
    }

    fn progress(&mut self, file: FileId, bytes: u64, now: Instant) {
        let Some(entry) = self.entries.get_mut(&file) else {
            return;
        };
        if entry.view.state != TransferState::Transferring
            || bytes > entry.view.size
            || bytes < entry.view.bytes
        {
            return;
        }
        entry.view.bytes = bytes;
        match entry.sample {
            Some((at, before)) if now.duration_since(at) >= SAMPLE_EVERY => {
                let rate = (bytes - before) as f64 / now.duration_since(at).as_secs_f64();
                let smoothed = match entry.view.bytes_per_second {
                    Some(old) => 0.7 * old + 0.3 * rate,
                    None => rate,
                };
                entry.view.bytes_per_second = Some(smoothed);
                entry.sample = Some((now, bytes));
            }
            Some(_) => {}
            None => entry.sample = Some((now, bytes)),
        }
        self.out.push(FileOut::Event(entry.view.clone()));
    }

    fn find(&self, link: LinkId, id: &str, direction: Direction) -> Option<FileId> {
        self.entries
            .iter()
            .find(|(_, e)| e.link == link && e.id == id && e.view.direction == direction)
            .map(|(file, _)| *file)
    }

    fn is(&self, file: FileId, state: &TransferState) -> bool {
        self.entries
            .get(&file)
            .is_some_and(|e| e.view.state == *state)
    }

    fn set_state(&mut self, file: FileId, state: TransferState) {
        if let Some(entry) = self.entries.get_mut(&file) {
            entry.view.state = state;
            self.out.push(FileOut::Event(entry.view.clone()));
        }
    }

    /// The transfer is over: the user is told, and it is forgotten.
    fn end(&mut self, file: FileId, state: TransferState) {
        if let Some(mut entry) = self.entries.remove(&file) {
            entry.view.state = state;
            self.out.push(FileOut::Event(entry.view));
        }
    }

    fn new_id(&mut self) -> FileId {
        self.next += 1;
        FileId(self.next)
    }
}

/// Bytes as people read them: "2.3 MB", "4 GiB" for the exact powers the limit uses.
pub fn human_bytes(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        return format!("{} GiB", bytes / GIB);
    }
    let units = ["bytes", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    let name = units.get(unit).copied().unwrap_or("TB");
    match unit {
        0 => format!("{bytes} bytes"),
        _ if value < 10.0 => format!("{value:.1} {name}"),
        _ => format!("{value:.0} {name}"),
    }
}
