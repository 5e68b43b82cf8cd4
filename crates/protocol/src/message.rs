//! Every signaling message, client to server and server to client.

use serde::{Deserialize, Serialize};

use crate::{CallId, PeerId};

/// A message a client sends to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Must be the first message on a connection.
    Hello {
        protocol: u32,
        name: String,
        /// Only when the server requires one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Take over this client's earlier session, if the server still has it: the same
        /// id, its calls kept (after a lost connection, e.g. when the network changed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Resume>,
    },
    /// Starts a call, or renegotiates one already active between the two peers.
    Offer {
        to: PeerId,
        call_id: CallId,
        sdp: String,
    },
    Answer {
        to: PeerId,
        call_id: CallId,
        sdp: String,
    },
    /// A trickled ICE candidate; `None` (JSON `null`) means end of candidates.
    Candidate {
        to: PeerId,
        call_id: CallId,
        candidate: Option<IceCandidate>,
    },
    Hangup {
        to: PeerId,
        call_id: CallId,
        reason: HangupReason,
    },
    /// Version 2: asks `to` into the group call `call_id`, which the sender is in (an
    /// answered call of two becomes a group call this way).
    Invite { to: PeerId, call_id: CallId },
    /// Version 2: accepts an invitation; the members already in the call then offer to the
    /// sender.
    Join { call_id: CallId },
    /// Version 2: leaves a group call; the others carry on.
    Leave { call_id: CallId },
}

/// A message the server sends to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to a successful `hello`.
    Welcome {
        id: PeerId,
        /// Everyone else online, excluding the receiver.
        peers: Vec<PeerInfo>,
        ice_servers: Vec<IceServer>,
        server_version: String,
        /// What a `hello` on a new connection gives in `resume` to take this session over.
        /// Absent from servers that cannot.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_secret: Option<String>,
    },
    PeerJoined {
        peer: PeerInfo,
    },
    PeerLeft {
        id: PeerId,
    },
    /// A peer's `busy` flag changed.
    PeerUpdated {
        peer: PeerInfo,
    },
    Offer {
        from: PeerId,
        from_name: String,
        call_id: CallId,
        sdp: String,
    },
    Answer {
        from: PeerId,
        call_id: CallId,
        sdp: String,
    },
    Candidate {
        from: PeerId,
        call_id: CallId,
        candidate: Option<IceCandidate>,
    },
    Hangup {
        from: PeerId,
        call_id: CallId,
        reason: HangupReason,
    },
    /// Version 2: `from` asks the receiver into a group call with `members` (everyone in
    /// it, `from` included).
    Invite {
        from: PeerId,
        from_name: String,
        call_id: CallId,
        members: Vec<PeerInfo>,
    },
    /// Version 2, to a member who just joined: the others in the call, each of whom now
    /// sends it an offer.
    Members {
        call_id: CallId,
        members: Vec<PeerInfo>,
    },
    /// Version 2, to the members already in the call: `peer` joined; send it an offer.
    MemberJoined {
        call_id: CallId,
        peer: PeerInfo,
    },
    /// Version 2: `id` left the call (`ended`), or its connection to the server was lost
    /// (`failed`).
    MemberLeft {
        call_id: CallId,
        id: PeerId,
        reason: HangupReason,
    },
    Error {
        code: ErrorCode,
        message: String,
        /// The call the refused message was about, when it named one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
    },
    /// A message type from a newer server; clients ignore it.
    #[serde(other)]
    Unknown,
}

/// A session to take over: the id and secret its last `welcome` gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    pub id: PeerId,
    pub secret: String,
}

/// A peer as listed in the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub id: PeerId,
    pub name: String,
    /// In an answered call.
    pub busy: bool,
    /// The protocol version the peer speaks; absent for version 1. Only peers of version 2
    /// or later can be invited into group calls.
    #[serde(default = "version_one", skip_serializing_if = "is_version_one")]
    pub protocol: u32,
}

fn version_one() -> u32 {
    1
}

fn is_version_one(version: &u32) -> bool {
    *version == 1
}

/// A STUN or TURN server, in the shape of the W3C `RTCIceServer` dictionary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// An ICE candidate, the `RTCIceCandidateInit` dictionary in snake_case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// The `candidate:...` attribute line.
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(default)]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupReason {
    /// The callee refused.
    Declined,
    /// The callee is in another call.
    Busy,
    /// The caller gave up before an answer.
    Cancelled,
    /// A connected call was hung up normally.
    Ended,
    /// Nobody answered in time.
    Timeout,
    /// The connection failed or a peer vanished.
    Failed,
}

/// What went wrong, in an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not valid JSON, an unknown `type`, a missing or malformed field, or a binary frame.
    BadMessage,
    /// The message exceeds the server's size limit; the connection is closed.
    TooLarge,
    /// Too many messages; this one was dropped.
    RateLimited,
    /// A message other than `hello` before a successful `hello`.
    NotLoggedIn,
    /// Missing or wrong token.
    Unauthorized,
    /// The client speaks another protocol version.
    ProtocolMismatch,
    NameInvalid,
    NameTaken,
    /// No connected peer has that id.
    UnknownPeer,
    /// No such call between the sender and that peer.
    UnknownCall,
    /// The server is at its connection limit.
    ServerFull,
    /// Version 2: the call already has the most members it may have (six, with the
    /// invitations still ringing).
    CallFull,
    /// Version 2: the peer invited speaks an older protocol, without group calls.
    NotSupported,
}

/// Why a frame could not be read as a message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(#[from] serde_json::Error);

/// Parses one client message (one WebSocket text frame).
///
/// Malformed JSON, an unknown `type`, missing fields, duplicate keys, malformed ids and
/// nesting deeper than serde_json's recursion limit are all errors, never panics.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ParseError> {
    Ok(serde_json::from_str(text)?)
}

/// Parses one server message. Unknown `type`s parse as [`ServerMessage::Unknown`].
pub fn parse_server_message(text: &str) -> Result<ServerMessage, ParseError> {
    Ok(serde_json::from_str(text)?)
}

impl ServerMessage {
    /// The JSON text of this message.
    #[allow(
        clippy::expect_used,
        reason = "plain structs with string keys always serialize"
    )]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

impl ClientMessage {
    /// The JSON text of this message.
    #[allow(
        clippy::expect_used,
        reason = "plain structs with string keys always serialize"
    )]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialize")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn peer(s: &str) -> PeerId {
        PeerId::new(s).unwrap()
    }

    fn call(s: &str) -> CallId {
        CallId::new(s).unwrap()
    }

    /// Each client message parses from the JSON in docs/protocol.md and prints back the same.
    #[test]
    fn client_messages_round_trip() {
        let cases = [
            (
                json!({"type":"hello","protocol":1,"name":"Alice","token":"s3cret"}),
                ClientMessage::Hello {
                    protocol: 1,
                    name: "Alice".into(),
                    token: Some("s3cret".into()),
                    resume: None,
                },
            ),
            (
                json!({"type":"hello","protocol":1,"name":"Alice"}),
                ClientMessage::Hello {
                    protocol: 1,
                    name: "Alice".into(),
                    token: None,
                    resume: None,
                },
            ),
            (
                json!({"type":"offer","to":"p2","call_id":"c1","sdp":"v=0"}),
                ClientMessage::Offer {
                    to: peer("p2"),
                    call_id: call("c1"),
                    sdp: "v=0".into(),
                },
            ),
            (
                json!({"type":"answer","to":"p1","call_id":"c1","sdp":"v=0"}),
                ClientMessage::Answer {
                    to: peer("p1"),
                    call_id: call("c1"),
                    sdp: "v=0".into(),
                },
            ),
            (
                json!({"type":"candidate","to":"p2","call_id":"c1","candidate":{
                    "candidate":"candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host",
                    "sdp_mid":"0","sdp_m_line_index":0,"username_fragment":"abcd"}}),
                ClientMessage::Candidate {
                    to: peer("p2"),
                    call_id: call("c1"),
                    candidate: Some(IceCandidate {
                        candidate: "candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host".into(),
                        sdp_mid: Some("0".into()),
                        sdp_m_line_index: Some(0),
                        username_fragment: Some("abcd".into()),
                    }),
                },
            ),
            (
                json!({"type":"candidate","to":"p2","call_id":"c1","candidate":null}),
                ClientMessage::Candidate {
                    to: peer("p2"),
                    call_id: call("c1"),
                    candidate: None,
                },
            ),
            (
                json!({"type":"hangup","to":"p2","call_id":"c1","reason":"declined"}),
                ClientMessage::Hangup {
                    to: peer("p2"),
                    call_id: call("c1"),
                    reason: HangupReason::Declined,
                },
            ),
        ];
        for (value, expected) in cases {
            let parsed = parse_client_message(&value.to_string()).unwrap();
            assert_eq!(parsed, expected);
            let back: Value = serde_json::from_str(&parsed.to_json()).unwrap();
            assert_eq!(back, value);
        }
    }

    #[test]
    fn server_messages_serialize_as_documented() {
        let cases = [
            (
                ServerMessage::Welcome {
                    id: peer("p1"),
                    peers: vec![PeerInfo {
                        id: peer("p2"),
                        name: "Bob".into(),
                        busy: false,
                        protocol: 1,
                    }],
                    ice_servers: vec![IceServer {
                        urls: vec!["turn:turn.example.org:3478".into()],
                        username: Some("u".into()),
                        credential: Some("p".into()),
                    }],
                    server_version: "0.1.0".into(),
                    resume_secret: None,
                },
                json!({"type":"welcome","id":"p1","peers":[{"id":"p2","name":"Bob","busy":false}],
                    "ice_servers":[{"urls":["turn:turn.example.org:3478"],"username":"u","credential":"p"}],
                    "server_version":"0.1.0"}),
            ),
            (
                ServerMessage::PeerLeft { id: peer("p2") },
                json!({"type":"peer_left","id":"p2"}),
            ),
            (
                ServerMessage::Offer {
                    from: peer("p1"),
                    from_name: "Alice".into(),
                    call_id: call("c1"),
                    sdp: "v=0".into(),
                },
                json!({"type":"offer","from":"p1","from_name":"Alice","call_id":"c1","sdp":"v=0"}),
            ),
            (
                ServerMessage::Candidate {
                    from: peer("p1"),
                    call_id: call("c1"),
                    candidate: None,
                },
                json!({"type":"candidate","from":"p1","call_id":"c1","candidate":null}),
            ),
            (
                ServerMessage::Error {
                    code: ErrorCode::NameTaken,
                    message: "taken".into(),
                    call_id: None,
                },
                json!({"type":"error","code":"name_taken","message":"taken"}),
            ),
        ];
        for (msg, expected) in cases {
            let value: Value = serde_json::from_str(&msg.to_json()).unwrap();
            assert_eq!(value, expected);
            assert_eq!(parse_server_message(&msg.to_json()).unwrap(), msg);
        }
    }

    #[test]
    fn unknown_server_message_type_is_tolerated() {
        let msg = parse_server_message(r#"{"type":"from_the_future","x":1}"#).unwrap();
        assert_eq!(msg, ServerMessage::Unknown);
    }

    #[test]
    fn spoofed_from_in_client_message_is_ignored_by_the_parser() {
        let msg = parse_client_message(
            r#"{"type":"offer","from":"victim","to":"p2","call_id":"c1","sdp":"v=0"}"#,
        )
        .unwrap();
        assert!(!msg.to_json().contains("victim"));
    }

    #[test]
    fn bad_input_is_an_error() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let deep_field = format!(
            r#"{{"type":"hello","protocol":1,"name":"a","extra":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let cases = [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"type":"dance"}"#,
            r#"{"type":"hello","name":"Alice"}"#,
            r#"{"type":"hello","protocol":"1","name":"Alice"}"#,
            r#"{"type":"hello","protocol":1,"name":"Alice","name":"Mallory"}"#,
            r#"{"type":"hello","type":"offer","protocol":1,"name":"Alice"}"#,
            r#"{"type":"offer","to":"p2","call_id":"has space","sdp":"v=0"}"#,
            r#"{"type":"hangup","to":"p2","call_id":"c1","reason":"bored"}"#,
            r#"{"type":"candidate","to":"p2","call_id":"c1","candidate":{"sdp_mid":"0"}}"#,
            &deep,
            &deep_field,
        ];
        for text in cases {
            assert!(parse_client_message(text).is_err(), "accepted {text:.80}");
        }
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]

            #[test]
            fn parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let text = String::from_utf8_lossy(&bytes);
                let _ = parse_client_message(&text);
                let _ = parse_server_message(&text);
            }

            #[test]
            fn parser_never_panics_on_json_like_text(
                text in r#"\{("(type|to|from|call_id|sdp|name|protocol|candidate|reason)":("hello"|"offer"|"answer"|"candidate"|"hangup"|null|1|-1|1e400|\[|\{|"x"|"declined"),?){0,8}\}?"#
            ) {
                let _ = parse_client_message(&text);
                let _ = parse_server_message(&text);
            }
        }
    }
}
