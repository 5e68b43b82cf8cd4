//! Files in a call, between call cores in memory and in fake time: offers and answers go
//! over the fake chat, the driver's part (hashing, sending, writing) is played by the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(clippy::disallowed_methods)]

mod world;

use std::path::PathBuf;
use std::time::Duration;

use confab_call_core::files::MAX_WAITING_OFFERS;
use confab_call_core::{
    Command, Direction, Event, FileId, FileReport, Input, LinkAction, LinkEvent, Problem, Transfer,
    TransferState,
};
use confab_protocol::chat::ChatMessage;
use world::*;

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn transfers(w: &World, peer: usize) -> Vec<Transfer> {
    w.peers[peer]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::File(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

fn last(w: &World, peer: usize) -> Transfer {
    transfers(w, peer).pop().expect("a transfer")
}

fn send(w: &mut World, name: &str, size: u64) {
    let command = Command::SendFile {
        path: PathBuf::from(format!("/home/alice/{name}")),
        name: name.into(),
        size,
        mime: None,
    };
    w.command(ALICE, command);
}

/// Alice sends, the file is hashed, Bob sees the offer.
fn offered(w: &mut World, name: &str, size: u64) -> (FileId, FileId) {
    send(w, name, size);
    let (files, path) = w.peers[ALICE].hash_requests.pop().expect("a hash request");
    assert_eq!(path, PathBuf::from(format!("/home/alice/{name}")));
    let sha256 = Ok(HASH.to_string());
    w.input(ALICE, Input::FileHashed { files, sha256 });
    let theirs = last(w, BOB);
    assert_eq!(theirs.state, TransferState::Offered);
    assert_eq!(theirs.direction, Direction::Receiving);
    (last(w, ALICE).file, theirs.file)
}

fn file_actions(w: &World, peer: usize) -> Vec<LinkAction> {
    w.peers[peer].link().file_actions.clone()
}

fn report(w: &mut World, peer: usize, report: FileReport) {
    let link = *w.peers[peer].links.keys().next().unwrap();
    w.input(peer, Input::Link(link, LinkEvent::File(report)));
}

#[test]
fn a_file_is_offered_accepted_sent_with_acknowledged_progress_and_saved() {
    let mut w = World::in_a_call();
    send(&mut w, "report.pdf", 2_300_000);
    let preparing = last(&w, ALICE);
    assert_eq!(preparing.state, TransferState::Preparing);
    assert_eq!(preparing.peer_name, "Bob");
    assert!(
        transfers(&w, BOB).is_empty(),
        "nothing goes out before the hash"
    );

    let (mine, theirs) = offered(&mut w, "report.pdf", 2_300_000);
    let offer = last(&w, BOB);
    assert_eq!((offer.name.as_str(), offer.size), ("report.pdf", 2_300_000));
    assert_eq!(offer.peer_name, "Alice");
    assert_eq!(last(&w, ALICE).state, TransferState::Offered);
    assert!(
        file_actions(&w, BOB).is_empty(),
        "nothing is written before Accept"
    );

    w.command(BOB, Command::AcceptFile(theirs));
    let [
        LinkAction::ReceiveFile {
            name, size, sha256, ..
        },
    ] = &file_actions(&w, BOB)[..]
    else {
        panic!("{:?}", file_actions(&w, BOB));
    };
    assert_eq!(
        (name.as_str(), *size, sha256.as_str()),
        ("report.pdf", 2_300_000, HASH)
    );
    let [
        LinkAction::SendFile {
            file, path, size, ..
        },
    ] = &file_actions(&w, ALICE)[..]
    else {
        panic!("{:?}", file_actions(&w, ALICE));
    };
    assert_eq!((*file, *size), (mine, 2_300_000));
    assert_eq!(path, &PathBuf::from("/home/alice/report.pdf"));
    assert_eq!(last(&w, ALICE).state, TransferState::Transferring);

    // Bob's driver writes; what he wrote is what Alice is shown, with a speed.
    for second in 1..=2 {
        w.advance(Duration::from_millis(500));
        let bytes = 500_000 * second;
        report(
            &mut w,
            BOB,
            FileReport::Written {
                file: theirs,
                bytes,
            },
        );
    }
    let progress = last(&w, ALICE);
    assert_eq!(progress.bytes, 1_000_000);
    let rate = progress.bytes_per_second.expect("a speed");
    assert!((900_000.0..1_100_000.0).contains(&rate), "{rate}");
    let left = progress.time_left().unwrap().as_secs_f64();
    assert!((1.1..1.5).contains(&left), "{left}");

    let saved = PathBuf::from("/downloads/report.pdf");
    report(
        &mut w,
        BOB,
        FileReport::Saved {
            file: theirs,
            path: saved.clone(),
        },
    );
    assert_eq!(
        last(&w, BOB).state,
        TransferState::Done {
            saved_to: Some(saved)
        }
    );
    let done = last(&w, ALICE);
    assert_eq!(done.state, TransferState::Done { saved_to: None });
    assert_eq!(done.bytes, done.size);
    assert_eq!(
        file_actions(&w, ALICE).last(),
        Some(&LinkAction::StopFile {
            file: mine,
            close: true
        })
    );
}

#[test]
fn declining_writes_nothing_and_tells_the_sender() {
    let mut w = World::in_a_call();
    let (_, theirs) = offered(&mut w, "a.txt", 10);
    w.command(BOB, Command::DeclineFile(theirs));
    assert_eq!(last(&w, BOB).state, TransferState::Declined { by_us: true });
    assert_eq!(
        last(&w, ALICE).state,
        TransferState::Declined { by_us: false }
    );
    assert!(file_actions(&w, BOB).is_empty());
    assert!(file_actions(&w, ALICE).is_empty());
}

#[test]
fn either_side_cancels_and_both_stop() {
    for canceller in [ALICE, BOB] {
        let mut w = World::in_a_call();
        let (mine, theirs) = offered(&mut w, "big.iso", 1 << 30);
        w.command(BOB, Command::AcceptFile(theirs));
        let file = if canceller == ALICE { mine } else { theirs };
        w.command(canceller, Command::CancelFile(file));
        let other = 1 - canceller;
        let reason = "cancelled".to_string();
        assert_eq!(
            last(&w, canceller).state,
            TransferState::Cancelled {
                by_us: true,
                reason: reason.clone()
            }
        );
        assert_eq!(
            last(&w, other).state,
            TransferState::Cancelled {
                by_us: false,
                reason
            }
        );
        // Both stop; only the side that cancelled closes the channel.
        for (peer, file) in [(ALICE, mine), (BOB, theirs)] {
            let close = peer == canceller;
            assert_eq!(
                file_actions(&w, peer).last(),
                Some(&LinkAction::StopFile { file, close })
            );
        }
    }
}

#[test]
fn a_failed_receive_cancels_the_send_with_its_reason() {
    let mut w = World::in_a_call();
    let (mine, theirs) = offered(&mut w, "a.bin", 1000);
    w.command(BOB, Command::AcceptFile(theirs));
    let reason = "the file arrived damaged: its SHA-256 does not match".to_string();
    report(
        &mut w,
        BOB,
        FileReport::Failed {
            file: theirs,
            reason: reason.clone(),
        },
    );
    assert_eq!(
        last(&w, BOB).state,
        TransferState::Failed {
            reason: reason.clone()
        }
    );
    assert_eq!(
        last(&w, ALICE).state,
        TransferState::Cancelled {
            by_us: false,
            reason
        }
    );
    assert_eq!(
        file_actions(&w, ALICE).last(),
        Some(&LinkAction::StopFile {
            file: mine,
            close: false
        })
    );
}

#[test]
fn the_size_limit_holds_on_both_sides() {
    let mut w = World::in_a_call();
    w.command(ALICE, Command::SetMaxFileSize(1000));
    send(&mut w, "big.bin", 1001);
    let problem = w.peers[ALICE].events.iter().find_map(|e| match e {
        Event::Problem(Problem::CannotSendFile(reason)) => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(
        problem.as_deref(),
        Some("big.bin is 1.0 kB, more than the 1.0 kB limit")
    );
    assert!(w.peers[ALICE].hash_requests.is_empty());

    w.command(BOB, Command::SetMaxFileSize(100));
    send(&mut w, "mid.bin", 500);
    let (files, _) = w.peers[ALICE].hash_requests.pop().unwrap();
    w.input(
        ALICE,
        Input::FileHashed {
            files,
            sha256: Ok(HASH.into()),
        },
    );
    let refused = last(&w, BOB);
    assert!(
        matches!(&refused.state, TransferState::Failed { reason } if reason.contains("limit")),
        "{refused:?}"
    );
    let TransferState::Cancelled {
        by_us: false,
        reason,
    } = last(&w, ALICE).state
    else {
        panic!("{:?}", last(&w, ALICE));
    };
    assert_eq!(reason, "larger than the receiver's limit of 100 bytes");
}

#[test]
fn a_flood_of_offers_is_bounded_and_hostile_names_are_made_safe() {
    let mut w = World::in_a_call();
    let link = *w.peers[BOB].links.keys().next().unwrap();
    for n in 0..100 {
        let offer = ChatMessage::FileOffer {
            id: format!("flood-{n}"),
            name: format!("../../../etc/cron.d/evil{n}"),
            size: 1,
            sha256: HASH.into(),
            mime: None,
        };
        let bytes = offer.to_json().into_bytes();
        w.input(BOB, Input::Link(link, LinkEvent::ChatMessage(bytes)));
    }
    let shown = transfers(&w, BOB);
    assert_eq!(shown.len(), MAX_WAITING_OFFERS);
    assert_eq!(shown[0].name, "evil0");
    assert!(shown.iter().all(|t| !t.name.contains('/')));
    // Answers, progress and confirmations for transfers Bob never had change nothing.
    for message in [
        ChatMessage::FileAnswer {
            id: "nope".into(),
            accept: true,
        },
        ChatMessage::FileProgress {
            id: "flood-0".into(),
            received: 1,
        },
        ChatMessage::FileDone {
            id: "flood-0".into(),
        },
    ] {
        let bytes = message.to_json().into_bytes();
        w.input(BOB, Input::Link(link, LinkEvent::ChatMessage(bytes)));
    }
    assert_eq!(transfers(&w, BOB).len(), MAX_WAITING_OFFERS);
    assert!(file_actions(&w, BOB).is_empty());
}

#[test]
fn hanging_up_fails_what_is_under_way() {
    let mut w = World::in_a_call();
    let (_, theirs) = offered(&mut w, "a.bin", 1000);
    w.command(BOB, Command::AcceptFile(theirs));
    w.command(ALICE, Command::HangUp);
    for peer in [ALICE, BOB] {
        let reason = "the call ended".to_string();
        assert_eq!(last(&w, peer).state, TransferState::Failed { reason });
    }
    send(&mut w, "late.txt", 1);
    assert!(w.peers[ALICE].events.iter().any(|e| matches!(
        e,
        Event::Problem(Problem::CannotSendFile(reason)) if reason.contains("not in a call")
    )));
}
