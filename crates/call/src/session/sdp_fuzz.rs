//! Remote SDP from a hostile peer, fuzzed with proptest. Mutations of a real offer go
//! through the callee's whole accept path ([`Session::start`] as callee: our H.264 profile
//! pick, webrtc-rs's parser, the answer), and mutations of a real answer through the
//! caller's [`Session::apply_answer`]. Each must come back with an answer or an error: no
//! panic (not even in a webrtc-rs task), no hang, and the connection is closed after.
//!
//! Bounded for CI (256 cases each, under a second); `PROPTEST_CASES=100000 cargo test
//! -p confab-call sdp_fuzz` searches longer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use proptest::prelude::*;
use tokio::sync::mpsc;

use super::Session;
use crate::peer::NetworkConfig;
use confab_call_core::machine::Role;

/// How long one hostile description may take before it counts as a hang.
const PATIENCE: Duration = Duration::from_secs(5);

/// Panics anywhere in the process (webrtc-rs tasks included) since the hook went in.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default_hook(info);
        }));
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn network() -> NetworkConfig {
    NetworkConfig {
        udp_addrs: vec!["127.0.0.1:0".into()],
        ..NetworkConfig::default()
    }
}

async fn start(role: Role, offer: Option<String>) -> Result<(Session, String), crate::CallError> {
    let (to, _) = mpsc::unbounded_channel();
    let events = crate::peer::PeerEvents {
        link: confab_call_core::LinkId::first(),
        to,
    };
    static IDENTITY: OnceLock<crate::Identity> = OnceLock::new();
    let identity = IDENTITY.get_or_init(|| crate::Identity::generate().expect("an identity"));
    let meters = (Arc::default(), Arc::default());
    Session::start(role, &network(), identity, offer, events, meters).await
}

/// A real offer and the answer to it.
fn real_sdp() -> &'static (String, String) {
    static SDP: OnceLock<(String, String)> = OnceLock::new();
    SDP.get_or_init(|| {
        runtime().block_on(async {
            let (caller, offer) = start(Role::Caller, None).await.expect("an offer");
            let (callee, answer) = start(Role::Callee, Some(offer.clone()))
                .await
                .expect("an answer");
            caller.close(false).await;
            callee.close(false).await;
            (offer, answer)
        })
    })
}

/// One change to a description's lines.
#[derive(Debug, Clone)]
enum Mutation {
    Drop(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Replace(usize, String),
    Insert(usize, String),
    /// Every number in the line becomes this one.
    Renumber(usize, u64),
    FlipByte(usize, u8),
    Truncate(usize),
}

/// A line a hostile peer might write: the attributes the parsers care about, with
/// arbitrary values, or anything at all.
fn hostile_line() -> impl Strategy<Value = String> {
    let junk = "[ -~]{0,40}";
    prop_oneof![
        "\\PC{0,120}",
        (any::<u32>(), junk).prop_map(|(n, j)| format!("a=rtpmap:{n} {j}")),
        (0u8..=255, junk).prop_map(|(n, j)| format!("a=fmtp:{n} profile-level-id={j}")),
        (any::<u32>(), junk).prop_map(|(port, j)| format!("m=video {port} {j}")),
        junk.prop_map(|j| format!("m=application 9 UDP/DTLS/SCTP {j}")),
        (any::<u64>(), junk).prop_map(|(n, j)| format!("a=ssrc:{n} {j}")),
        (any::<u32>(), junk).prop_map(|(n, j)| format!("a=ssrc-group:FID {n} {j}")),
        junk.prop_map(|j| format!("a=candidate:{j}")),
        junk.prop_map(|j| format!("a=fingerprint:sha-256 {j}")),
        junk.prop_map(|j| format!("a=setup:{j}")),
        junk.prop_map(|j| format!("a=ice-ufrag:{j}")),
        junk.prop_map(|j| format!("a=mid:{j}")),
        junk.prop_map(|j| format!("a=group:BUNDLE {j}")),
        (any::<u32>(), junk).prop_map(|(n, j)| format!("a=extmap:{n} {j}")),
        any::<u64>().prop_map(|n| format!("a=sctp-port:{n}")),
        any::<u64>().prop_map(|n| format!("a=max-message-size:{n}")),
        junk.prop_map(|j| format!("c=IN IP4 {j}")),
        Just("a=sendonly".to_string()),
        Just("a=inactive".to_string()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let line = 0usize..64;
    prop_oneof![
        line.clone().prop_map(Mutation::Drop),
        line.clone().prop_map(Mutation::Duplicate),
        (line.clone(), line.clone()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (line.clone(), hostile_line()).prop_map(|(at, l)| Mutation::Replace(at, l)),
        (line.clone(), hostile_line()).prop_map(|(at, l)| Mutation::Insert(at, l)),
        (line.clone(), any::<u64>()).prop_map(|(at, n)| Mutation::Renumber(at, n)),
        (0usize..4096, any::<u8>()).prop_map(|(at, b)| Mutation::FlipByte(at, b)),
        (0usize..4096).prop_map(Mutation::Truncate),
    ]
}

fn mutate(sdp: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = sdp.lines().map(str::to_owned).collect();
    for mutation in mutations {
        let n = lines.len().max(1);
        match mutation {
            Mutation::Drop(at) if !lines.is_empty() => {
                lines.remove(at % n);
            }
            Mutation::Duplicate(at) if !lines.is_empty() => {
                let line = lines[at % n].clone();
                lines.insert(at % n, line);
            }
            Mutation::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            Mutation::Replace(at, line) if !lines.is_empty() => lines[at % n] = line.clone(),
            Mutation::Insert(at, line) => lines.insert(at % (lines.len() + 1), line.clone()),
            Mutation::Renumber(at, number) if !lines.is_empty() => {
                let line = &mut lines[at % n];
                let mut out = String::new();
                let mut in_number = false;
                for c in line.chars() {
                    if c.is_ascii_digit() {
                        if !in_number {
                            out.push_str(&number.to_string());
                        }
                        in_number = true;
                    } else {
                        in_number = false;
                        out.push(c);
                    }
                }
                *line = out;
            }
            Mutation::FlipByte(at, byte) => {
                let mut bytes = lines.join("\r\n").into_bytes();
                if !bytes.is_empty() {
                    let len = bytes.len();
                    bytes[at % len] = *byte;
                }
                lines = String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_owned)
                    .collect();
            }
            Mutation::Truncate(at) => {
                let text = lines.join("\r\n");
                let cut = (at % (text.len() + 1)..=text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(text.len());
                lines = text[..cut].lines().map(str::to_owned).collect();
            }
            _ => {}
        }
    }
    let mut sdp = lines.join("\r\n");
    sdp.push_str("\r\n");
    sdp
}

/// Runs `attempt` against the hostile description; fails on a hang or a panic.
fn survives<F>(what: &str, attempt: F) -> Result<(), TestCaseError>
where
    F: Future<Output = ()>,
{
    let before = PANICS.load(Ordering::SeqCst);
    let finished = runtime().block_on(async { tokio::time::timeout(PATIENCE, attempt).await });
    prop_assert!(finished.is_ok(), "{what} hung for {PATIENCE:?}");
    prop_assert_eq!(PANICS.load(Ordering::SeqCst), before, "{} panicked", what);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_hostile_offer_is_answered_or_refused(
        mutations in prop::collection::vec(mutation(), 1..8)
    ) {
        let offer = mutate(&real_sdp().0, &mutations);
        survives("accepting the offer", async {
            if let Ok((session, _answer)) = start(Role::Callee, Some(offer)).await {
                session.close(false).await;
            }
        })?;
    }

    #[test]
    fn a_hostile_answer_is_applied_or_refused(
        mutations in prop::collection::vec(mutation(), 1..8)
    ) {
        let answer = mutate(&real_sdp().1, &mutations);
        survives("applying the answer", async {
            let Ok((mut session, _offer)) = start(Role::Caller, None).await else {
                panic!("a caller session must start");
            };
            let _ = session.apply_answer(answer).await;
            session.close(false).await;
        })?;
    }
}

#[test]
fn the_unmutated_descriptions_work() {
    // The fuzzing starts from descriptions that are accepted as they are.
    let (offer, answer) = real_sdp();
    assert_eq!(mutate(offer, &[]).trim_end(), offer.trim_end());
    runtime().block_on(async {
        let (callee, _) = start(Role::Callee, Some(offer.clone()))
            .await
            .expect("accepted");
        callee.close(false).await;
        let (mut caller, _) = start(Role::Caller, None).await.expect("caller");
        // Another session's answer: its ICE and DTLS details are simply not ours to check.
        caller
            .apply_answer(answer.clone())
            .await
            .expect("an answer applies");
        caller.close(false).await;
    });
}
