//! Recent calls: who, when, how long, missed or not, and each call's chat. Kept in the
//! profile (eframe storage, next to the settings) until the user clears it. Pure data: the
//! model says when a call finished ([`FinishedCall`]); the app stamps it with the wall clock.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The eframe storage key the history lives under.
pub const STORAGE_KEY: &str = "confab-history";

/// Calls kept; the oldest go first.
const MAX_CALLS: usize = 100;

/// A call as the model saw it end, before it has a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedCall {
    /// The other party, or every member of a group call.
    pub with: Vec<String>,
    pub incoming: bool,
    /// How long it was connected; `None` if it never was.
    pub connected_for: Option<Duration>,
    /// Someone called us and we never answered (they gave up, or we were busy).
    pub missed: bool,
    /// How it ended, in words.
    pub outcome: String,
    /// How long ago it started, when it ended (to date it).
    pub age: Duration,
    pub chat: Vec<SavedLine>,
}

/// One chat message of a past call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedLine {
    /// `None` for our own messages.
    pub from: Option<String>,
    pub text: String,
    /// Sender's clock, ms since the Unix epoch.
    pub sent_at_ms: u64,
}

/// One call in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastCall {
    pub with: Vec<String>,
    pub incoming: bool,
    /// When it started, ms since the Unix epoch.
    pub started_ms: u64,
    /// Seconds connected; `None` if it never connected.
    pub duration_secs: Option<u64>,
    pub missed: bool,
    pub outcome: String,
    pub chat: Vec<SavedLine>,
}

impl PastCall {
    /// "Bob", "Bob, Carol and Dave".
    pub fn names(&self) -> String {
        match self.with.as_slice() {
            [] => "Nobody".into(),
            [one] => one.clone(),
            [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        }
    }
}

/// Newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    pub calls: Vec<PastCall>,
}

impl History {
    /// Adds a call that finished now (`now_ms`, ms since the Unix epoch).
    pub fn add(&mut self, call: FinishedCall, now_ms: u64) {
        let age_ms = u64::try_from(call.age.as_millis()).unwrap_or(u64::MAX);
        self.calls.insert(
            0,
            PastCall {
                with: call.with,
                incoming: call.incoming,
                started_ms: now_ms.saturating_sub(age_ms),
                duration_secs: call.connected_for.map(|d| d.as_secs()),
                missed: call.missed,
                outcome: call.outcome,
                chat: call.chat,
            },
        );
        self.calls.truncate(MAX_CALLS);
    }

    pub fn clear(&mut self) {
        self.calls.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(name: &str, missed: bool) -> FinishedCall {
        FinishedCall {
            with: vec![name.into()],
            incoming: missed,
            connected_for: (!missed).then_some(Duration::from_secs(75)),
            missed,
            outcome: "ended".into(),
            age: Duration::from_secs(80),
            chat: vec![SavedLine {
                from: None,
                text: "hi".into(),
                sent_at_ms: 1,
            }],
        }
    }

    #[test]
    fn newest_first_dated_from_the_start_and_capped() {
        let mut history = History::default();
        history.add(finished("Bob", false), 1_000_000);
        history.add(finished("Carol", true), 2_000_000);
        assert_eq!(history.calls[0].names(), "Carol");
        assert!(history.calls[0].missed);
        assert_eq!(history.calls[1].started_ms, 1_000_000 - 80_000);
        assert_eq!(history.calls[1].duration_secs, Some(75));
        for _ in 0..MAX_CALLS {
            history.add(finished("Dave", false), 3_000_000);
        }
        assert_eq!(history.calls.len(), MAX_CALLS);
        history.clear();
        assert!(history.calls.is_empty());
    }

    #[test]
    fn survives_a_round_trip_and_reads_older_files() {
        let mut history = History::default();
        history.add(finished("Bob", false), 1_000_000);
        let text = serde_json::to_string(&history).expect("serialises");
        let back: History = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, history);
        let empty: History = serde_json::from_str("{}").expect("no calls yet");
        assert!(empty.calls.is_empty());
    }

    #[test]
    fn group_names_read_as_a_list() {
        let mut call = finished("Bob", false);
        call.with = vec!["Bob".into(), "Carol".into(), "Dave".into()];
        let mut history = History::default();
        history.add(call, 100_000);
        assert_eq!(history.calls[0].names(), "Bob, Carol and Dave");
    }
}
