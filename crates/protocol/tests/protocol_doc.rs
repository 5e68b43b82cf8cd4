//! Every JSON example in docs/protocol.md is a real message: it parses, and prints back as
//! exactly the same JSON, so the document and the implementation cannot drift apart.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use confab_protocol::chat::ChatMessage;
use confab_protocol::{ClientMessage, ServerMessage};
use serde_json::Value;

fn json_examples() -> Vec<String> {
    let doc = include_str!("../../../docs/protocol.md");
    let mut examples = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```json") => current = Some(String::new()),
            (Some(_), "```") => examples.extend(current.take()),
            (Some(text), line) => text.push_str(line),
            (None, _) => {}
        }
    }
    examples
}

#[test]
fn every_example_is_a_message_that_round_trips() {
    let examples = json_examples();
    assert!(
        examples.len() >= 18,
        "found only {} examples",
        examples.len()
    );
    let (mut client, mut server, mut chat) = (0, 0, 0);
    let mut types = std::collections::BTreeSet::new();
    for text in examples {
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        types.insert(value["type"].as_str().unwrap_or_default().to_owned());
        let printed = if let Ok(msg) = serde_json::from_str::<ClientMessage>(&text) {
            client += 1;
            msg.to_json()
        } else if let Ok(msg) = serde_json::from_str::<ServerMessage>(&text)
            && msg != ServerMessage::Unknown
        {
            server += 1;
            msg.to_json()
        } else {
            let msg = ChatMessage::parse(text.as_bytes())
                .unwrap_or_else(|e| panic!("not a known message ({e}): {text}"));
            chat += 1;
            msg.to_json()
        };
        let back: Value = serde_json::from_str(&printed).unwrap();
        assert_eq!(back, value, "prints differently than documented");
    }
    assert!(
        client >= 9 && server >= 13 && chat >= 4,
        "client {client}, server {server}, chat {chat}"
    );
    // Every message of version 2's group calls has its example.
    for kind in [
        "invite",
        "join",
        "leave",
        "members",
        "member_joined",
        "member_left",
        "file_offer",
        "file_answer",
        "file_progress",
        "file_done",
        "file_cancel",
    ] {
        assert!(types.contains(kind), "no example of {kind}");
    }
}

/// The worked example of "Safety codes": each identity's digits and the code.
#[test]
fn the_safety_code_example_is_what_the_derivation_gives() {
    use confab_protocol::safety::{Fingerprint, SafetyCode};
    let doc = include_str!("../../../docs/protocol.md");
    let block = doc
        .split("```safety-code\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the worked example");
    let values = |key: &str| -> Vec<String> {
        block
            .lines()
            .filter_map(|line| line.strip_prefix(key))
            .map(|value| value.trim().to_owned())
            .collect()
    };
    let fingerprints: Vec<Fingerprint> = values("fingerprint:")
        .iter()
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(fingerprints.len(), 2);
    let digits = values("digits:");
    let code: SafetyCode = values("code:")[0].parse().unwrap();
    assert_eq!(SafetyCode::derive(&fingerprints[0], &fingerprints[1]), code);
    assert_eq!(SafetyCode::derive(&fingerprints[1], &fingerprints[0]), code);
    assert_eq!(
        code.to_string(),
        values("code:")[0],
        "printed as documented"
    );
    // Each identity's 30 digits are one half of the code.
    assert!(
        digits
            .iter()
            .all(|d| d.len() == 30 && code.digits().contains(d.as_str()))
    );
}
