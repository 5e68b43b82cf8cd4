//! The signaling server over real sockets on 127.0.0.1: protocol v1 end to end.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::{Client, PATIENCE, TestServer, answer, hangup, http, offer};
use confab_signaling::{Config, Limits};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// Sets up an answered call between two fresh clients and consumes the busy updates.
async fn call_between(server: &TestServer) -> (Client, Client) {
    let [mut alice, mut bob] = Client::join_all(server, ["Alice", "Bob"]).await;
    alice.send(offer(&bob.id, "call-1")).await;
    bob.recv_type("offer").await;
    bob.send(answer(&alice.id, "call-1")).await;
    alice.recv_type("answer").await;
    // Each hears that the other is busy now.
    assert_eq!(alice.recv_type("peer_updated").await["peer"]["id"], bob.id);
    assert_eq!(bob.recv_type("peer_updated").await["peer"]["id"], alice.id);
    (alice, bob)
}

#[tokio::test]
async fn join_peer_list_and_leave() {
    let server = TestServer::default().await;
    let (mut alice, welcome) = Client::join(&server, "Alice").await;
    assert_eq!(welcome["peers"], json!([]));
    assert_eq!(welcome["server_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        alice.id.len(),
        32,
        "ids are 128-bit random hex: {}",
        alice.id
    );

    let (bob, welcome) = Client::join(&server, "Bob").await;
    assert_eq!(
        welcome["peers"],
        json!([{"id": alice.id, "name": "Alice", "busy": false}])
    );
    let joined = alice.recv_type("peer_joined").await;
    assert_eq!(
        joined["peer"],
        json!({"id": bob.id, "name": "Bob", "busy": false})
    );
    assert_ne!(alice.id, bob.id);

    let bob_id = bob.id.clone();
    bob.close().await;
    assert_eq!(alice.recv_type("peer_left").await["id"], bob_id);
    server.shutdown([alice]).await;
}

#[tokio::test]
async fn welcome_lists_the_configured_ice_servers() {
    let turn = confab_protocol::IceServer {
        urls: vec!["turn:127.0.0.1:3478".into()],
        username: Some("user".into()),
        credential: Some("secret".into()),
    };
    let server = TestServer::start(Config {
        ice_servers: vec![turn],
        ..Config::default()
    })
    .await;
    let (alice, welcome) = Client::join(&server, "Alice").await;
    assert_eq!(
        welcome["ice_servers"],
        json!([{"urls":["turn:127.0.0.1:3478"],"username":"user","credential":"secret"}])
    );
    server.shutdown([alice]).await;
}

#[tokio::test]
async fn every_message_type_is_forwarded_with_the_sender_stamped() {
    let server = TestServer::default().await;
    let [mut alice, mut bob, mut carol] =
        Client::join_all(&server, ["Alice", "Bob", "Carol"]).await;

    alice.send(offer(&bob.id, "call-1")).await;
    let msg = bob.recv().await;
    assert_eq!(
        msg,
        json!({"type":"offer","from":alice.id,"from_name":"Alice","call_id":"call-1",
               "sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"})
    );

    let candidate = json!({"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host",
                           "sdp_mid":"0","sdp_m_line_index":0,"username_fragment":"uf"});
    alice
        .send(json!({"type":"candidate","to":bob.id,"call_id":"call-1","candidate":candidate}))
        .await;
    assert_eq!(
        bob.recv().await,
        json!({"type":"candidate","from":alice.id,"call_id":"call-1","candidate":candidate})
    );
    alice
        .send(json!({"type":"candidate","to":bob.id,"call_id":"call-1","candidate":null}))
        .await;
    assert_eq!(bob.recv().await["candidate"], Value::Null);

    bob.send(answer(&alice.id, "call-1")).await;
    assert_eq!(
        alice.recv().await,
        json!({"type":"answer","from":bob.id,"call_id":"call-1","sdp":"v=0 answer"})
    );
    assert_eq!(
        alice.recv().await,
        json!({"type":"peer_updated","peer":{"id":bob.id,"name":"Bob","busy":true}})
    );
    // Both are busy now, and everyone hears of it.
    let mut busy = Vec::new();
    for _ in 0..2 {
        let update = carol.recv_type("peer_updated").await;
        assert_eq!(update["peer"]["busy"], true);
        busy.push(update["peer"]["name"].as_str().unwrap().to_owned());
    }
    busy.sort();
    assert_eq!(busy, ["Alice", "Bob"]);

    bob.send(hangup(&alice.id, "call-1", "ended")).await;
    // The hangup reaches Alice before the roster news it caused.
    assert_eq!(
        alice.recv().await,
        json!({"type":"hangup","from":bob.id,"call_id":"call-1","reason":"ended"})
    );
    assert_eq!(alice.recv_type("peer_updated").await["peer"]["busy"], false);
    for _ in 0..2 {
        assert_eq!(carol.recv_type("peer_updated").await["peer"]["busy"], false);
    }
    server.shutdown([alice, bob, carol]).await;
}

#[tokio::test]
async fn a_spoofed_from_is_ignored() {
    let server = TestServer::default().await;
    let [alice, mut bob, mut mallory] =
        Client::join_all(&server, ["Alice", "Bob", "Mallory"]).await;
    let spoofed = json!({"type":"offer","from":alice.id,"from_name":"Alice","to":bob.id,
                         "call_id":"c","sdp":"x"});
    mallory.send(spoofed).await;
    let msg = bob.recv_type("offer").await;
    assert_eq!(msg["from"], mallory.id);
    assert_eq!(msg["from_name"], "Mallory");
    server.shutdown([alice, bob, mallory]).await;
}

#[tokio::test]
async fn unknown_peer_and_unknown_call_are_refused() {
    let server = TestServer::default().await;
    let [mut alice, mut bob] = Client::join_all(&server, ["Alice", "Bob"]).await;

    alice
        .send(offer("0123456789abcdef0123456789abcdef", "c1"))
        .await;
    let err = alice.recv_error("unknown_peer").await;
    assert_eq!(err["call_id"], "c1");

    for msg in [
        answer(&bob.id, "c1"),
        json!({"type":"candidate","to":bob.id,"call_id":"c1","candidate":null}),
        hangup(&bob.id, "c1", "ended"),
    ] {
        alice.send(msg).await;
        alice.recv_error("unknown_call").await;
    }
    // Nothing reached Bob: his next message is the one we send now.
    alice.send(offer(&bob.id, "c2")).await;
    assert_eq!(bob.recv_type("offer").await["call_id"], "c2");
    server.shutdown([alice, bob]).await;
}

#[tokio::test]
async fn a_third_party_cannot_answer_or_end_someone_elses_call() {
    let server = TestServer::default().await;
    let [mut alice, mut bob, mut mallory] =
        Client::join_all(&server, ["Alice", "Bob", "Mallory"]).await;
    alice.send(offer(&bob.id, "c1")).await;
    bob.recv_type("offer").await;

    mallory.send(answer(&alice.id, "c1")).await;
    mallory.recv_error("unknown_call").await;
    mallory.send(hangup(&bob.id, "c1", "ended")).await;
    mallory.recv_error("unknown_call").await;
    mallory
        .send(json!({"type":"candidate","to":alice.id,"call_id":"c1","candidate":null}))
        .await;
    mallory.recv_error("unknown_call").await;

    // The real answer still works, and was the first thing Alice heard.
    bob.send(answer(&alice.id, "c1")).await;
    assert_eq!(alice.recv_type("answer").await["from"], bob.id);
    server.shutdown([alice, bob, mallory]).await;
}

#[tokio::test]
async fn messages_before_hello_are_refused() {
    let server = TestServer::default().await;
    let mut client = Client::connect(&server).await;
    client
        .send(offer("0123456789abcdef0123456789abcdef", "c1"))
        .await;
    client.recv_error("not_logged_in").await;
    client
        .send(json!({"type":"hello","protocol":1,"name":"Late"}))
        .await;
    client.recv_type("welcome").await;
    server.shutdown([client]).await;
}

#[tokio::test]
async fn bad_hellos() {
    let server = TestServer::default().await;
    let mut nameless = Client::connect(&server).await;
    nameless.send(json!({"type":"hello","protocol":1})).await;
    let err = nameless.recv_error("bad_message").await;
    assert!(err["message"].as_str().unwrap().contains("name"), "{err}");

    let mut future = Client::connect(&server).await;
    future
        .send(json!({"type":"hello","protocol":3,"name":"Future"}))
        .await;
    future.recv_error("protocol_mismatch").await;
    future.expect_close_code(CloseCode::Protocol).await;

    let (mut alice, _) = Client::join(&server, "Alice").await;
    alice
        .send(json!({"type":"hello","protocol":1,"name":"Again"}))
        .await;
    alice.recv_error("bad_message").await;
    server.shutdown([nameless, alice]).await;
}

#[tokio::test]
async fn name_rules() {
    let server = TestServer::default().await;
    let (alice, _) = Client::join(&server, "Alice").await;
    let mut client = Client::connect(&server).await;
    for (name, code) in [
        ("", "name_invalid"),
        ("   ", "name_invalid"),
        ("bad\nname", "name_invalid"),
        (&"x".repeat(65), "name_invalid"),
        ("ALICE", "name_taken"),
        (" alice ", "name_taken"),
        ("Ａｌｉｃｅ", "name_taken"),
    ] {
        client
            .send(json!({"type":"hello","protocol":1,"name":name}))
            .await;
        client.recv_error(code).await;
    }
    // Refused names leave the connection open for another try; the name is trimmed.
    client
        .send(json!({"type":"hello","protocol":1,"name":"  Alicia "}))
        .await;
    let welcome = client.recv_type("welcome").await;
    assert_eq!(welcome["peers"][0]["name"], "Alice");
    server.shutdown([alice, client]).await;
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let server = TestServer::default().await;
    let [mut alice, mut bob] = Client::join_all(&server, ["Alice", "Bob"]).await;
    // Just under the limit is fine.
    let sdp = "a".repeat(60 * 1024);
    alice
        .send(json!({"type":"offer","to":bob.id,"call_id":"c1","sdp":sdp}))
        .await;
    assert_eq!(
        bob.recv_type("offer").await["sdp"].as_str().unwrap().len(),
        sdp.len()
    );

    let sdp = "a".repeat(65 * 1024);
    alice
        .send(json!({"type":"offer","to":bob.id,"call_id":"c2","sdp":sdp}))
        .await;
    alice.recv_error("too_large").await;
    alice.expect_close_code(CloseCode::Size).await;
    // The ringing call c1 ends with the connection, then Alice leaves the roster.
    assert_eq!(bob.recv_type("hangup").await["reason"], "failed");
    assert_eq!(bob.recv_type("peer_left").await["id"], alice.id);
    server.shutdown([bob]).await;
}

#[tokio::test]
async fn rate_limit_refuses_then_disconnects_a_flood() {
    let server = TestServer::with_limits(Limits {
        rate_per_sec: 1,
        rate_burst: 5,
        abuse_after: 10,
        ..Limits::default()
    })
    .await;
    let (mut alice, _) = Client::join(&server, "Alice").await;
    let (mut bob, _) = Client::join(&server, "Bob").await;
    // hello took one token; four more offers fit in the burst.
    for i in 0..4 {
        alice.send(offer(&bob.id, &format!("c{i}"))).await;
    }
    alice.send(offer(&bob.id, "c-over")).await;
    alice.recv_type("peer_joined").await;
    alice.recv_error("rate_limited").await;
    for i in 0..4 {
        assert_eq!(bob.recv_type("offer").await["call_id"], format!("c{i}"));
    }
    // Keep flooding: after ten refusals in a row the server hangs up.
    for i in 0..20 {
        if alice
            .ws
            .send(Message::text(offer(&bob.id, &format!("f{i}")).to_string()))
            .await
            .is_err()
        {
            break;
        }
    }
    alice.expect_close_code(CloseCode::Policy).await;
    let mut ended = Vec::new();
    for _ in 0..4 {
        let msg = bob.recv_type("hangup").await;
        assert_eq!(msg["reason"], "failed");
        ended.push(msg["call_id"].as_str().unwrap().to_owned());
    }
    ended.sort();
    assert_eq!(ended, ["c0", "c1", "c2", "c3"]);
    assert_eq!(bob.recv_type("peer_left").await["id"], alice.id);
    server.shutdown([bob]).await;
}

#[tokio::test]
async fn token_is_required_when_configured() {
    let server = TestServer::start(Config {
        token: Some("open sesame".into()),
        ..Config::default()
    })
    .await;
    for token in [None, Some("open sesam"), Some("open sesame!")] {
        let mut client = Client::connect(&server).await;
        let mut hello = json!({"type":"hello","protocol":1,"name":"Eve"});
        if let Some(token) = token {
            hello["token"] = json!(token);
        }
        client.send(hello).await;
        client.recv_error("unauthorized").await;
        client.expect_close_code(CloseCode::Policy).await;
    }
    let mut client = Client::connect(&server).await;
    client
        .send(json!({"type":"hello","protocol":1,"name":"Alice","token":"open sesame"}))
        .await;
    client.recv_type("welcome").await;
    server.shutdown([client]).await;
}

#[tokio::test]
async fn silent_connection_is_closed_after_the_hello_timeout() {
    let server = TestServer::with_limits(Limits {
        hello_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let started = tokio::time::Instant::now();
    let mut client = Client::connect(&server).await;
    client.expect_close_code(CloseCode::Policy).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    server.shutdown([]).await;
}

#[tokio::test]
async fn server_pings_and_drops_a_client_that_never_answers() {
    let server = TestServer::with_limits(Limits {
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    // A responsive client: it keeps reading (tungstenite answers pings while reading) and
    // reports what it saw until the silent client below has come and gone.
    let (mut alive, _) = Client::join(&server, "Alive").await;
    let watcher = tokio::spawn(async move {
        let mut pings = 0;
        let mut events = Vec::new();
        while events.len() < 2 {
            let msg = tokio::time::timeout(PATIENCE, futures_util::StreamExt::next(&mut alive.ws))
                .await
                .expect("the responsive client heard nothing")
                .expect("the responsive client was disconnected")
                .unwrap();
            match msg {
                Message::Ping(_) => pings += 1,
                Message::Text(text) => {
                    let msg: Value = serde_json::from_str(&text).unwrap();
                    events.push(msg["type"].as_str().unwrap().to_owned());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        (pings, events)
    });

    // A raw socket that completes the handshake and says hello, then never answers.
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    raw.write_all(&masked_text_frame(
        br#"{"type":"hello","protocol":1,"name":"Mute"}"#,
    ))
    .await
    .unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(PATIENCE, raw.read_to_end(&mut received))
        .await
        .expect("the server kept a silent client")
        .unwrap();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.contains("\"welcome\""));
    // A close frame (0x88) with code 1001, going away.
    let close = received.windows(4).any(|w| w == [0x88, w[1], 0x03, 0xE9]);
    assert!(close, "no close frame with 1001 in {received:?}");

    let (pings, events) = watcher.await.unwrap();
    assert_eq!(events, ["peer_joined", "peer_left"]);
    assert!(pings >= 3, "only {pings} pings in over 500 ms");
    server.shutdown([]).await;
}

fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[tokio::test]
async fn disconnecting_mid_call_hangs_up_the_other_side() {
    let server = TestServer::default().await;
    // A clean close ends the call with `ended`.
    let (alice, mut bob) = call_between(&server).await;
    let alice_id = alice.id.clone();
    alice.close().await;
    let msg = bob.recv_type("hangup").await;
    assert_eq!(
        msg,
        json!({"type":"hangup","from":alice_id,"call_id":"call-1","reason":"ended"})
    );
    assert_eq!(bob.recv_type("peer_left").await["id"], alice_id);
    bob.close().await;

    // A vanished connection (no close frame) ends it with `failed`.
    let (alice, mut bob) = call_between(&server).await;
    let alice_id = alice.id.clone();
    drop(alice);
    let msg = bob.recv_type("hangup").await;
    assert_eq!(msg["reason"], "failed");
    assert_eq!(msg["from"], alice_id);
    server.shutdown([bob]).await;
}

#[tokio::test]
async fn unanswered_call_times_out_for_both_sides() {
    let server = TestServer::with_limits(Limits {
        ring_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let [mut alice, mut bob] = Client::join_all(&server, ["Alice", "Bob"]).await;
    alice.send(offer(&bob.id, "c1")).await;
    bob.recv_type("offer").await;
    let to_alice = alice.recv_type("hangup").await;
    assert_eq!(
        to_alice,
        json!({"type":"hangup","from":bob.id,"call_id":"c1","reason":"timeout"})
    );
    let to_bob = bob.recv_type("hangup").await;
    assert_eq!(
        to_bob,
        json!({"type":"hangup","from":alice.id,"call_id":"c1","reason":"timeout"})
    );
    // The call is gone.
    bob.send(answer(&alice.id, "c1")).await;
    bob.recv_error("unknown_call").await;
    server.shutdown([alice, bob]).await;
}

#[tokio::test]
async fn graceful_shutdown_sends_close_frames() {
    let server = TestServer::default().await;
    let (alice, _) = Client::join(&server, "Alice").await;
    let lurker = Client::connect(&server).await;
    // Each must receive a close frame with 1001 (going away) for the shutdown to pass.
    server.shutdown([alice, lurker]).await;
}

#[tokio::test]
async fn bad_input_gets_an_error_and_nobody_else_notices() {
    let server = TestServer::default().await;
    let [mut alice, mut bob] = Client::join_all(&server, ["Alice", "Bob"]).await;
    let deep = format!(
        r#"{{"type":"offer","to":"{}","call_id":"c","sdp":"x","n":{}{}}}"#,
        bob.id,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let inputs = [
        "not json".to_owned(),
        "{".to_owned(),
        "[]".to_owned(),
        "null".to_owned(),
        r#"{"type":"dance"}"#.to_owned(),
        r#"{"type":"offer","to":"x"}"#.to_owned(),
        format!(
            r#"{{"type":"offer","to":"{}","to":"x","call_id":"c","sdp":"x"}}"#,
            bob.id
        ),
        format!(
            r#"{{"type":"offer","to":"{}","call_id":"bad id!","sdp":"x"}}"#,
            bob.id
        ),
        deep,
    ];
    for input in &inputs {
        alice.send_text(input).await;
        alice.recv_error("bad_message").await;
    }
    alice.ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    let err = alice.recv_error("bad_message").await;
    assert!(err["message"].as_str().unwrap().contains("binary"));

    // Bob saw none of it: his next message is a real offer.
    alice.send(offer(&bob.id, "c-ok")).await;
    assert_eq!(bob.recv_type("offer").await["call_id"], "c-ok");

    // Invalid UTF-8 in a text frame breaks the WebSocket contract: error, then close 1007.
    let frame = Frame::message(
        Bytes::from_static(&[0x7b, 0xff, 0xfe, 0x7d]),
        OpCode::Data(Data::Text),
        true,
    );
    alice.ws.send(Message::Frame(frame)).await.unwrap();
    alice.recv_error("bad_message").await;
    alice.expect_close_code(CloseCode::Invalid).await;
    assert_eq!(bob.recv_type("hangup").await["call_id"], "c-ok");
    assert_eq!(bob.recv_type("peer_left").await["id"], alice.id);
    server.shutdown([bob]).await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_told_server_full() {
    let server = TestServer::with_limits(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let (alice, _) = Client::join(&server, "Alice").await;
    let (bob, _) = Client::join(&server, "Bob").await;
    let mut carol = Client::connect(&server).await;
    carol.recv_error("server_full").await;
    carol.expect_close_code(CloseCode::Again).await;
    // A freed slot can be used again.
    bob.close().await;
    let mut dave = Client::connect(&server).await;
    let welcome = loop {
        dave.send(json!({"type":"hello","protocol":1,"name":"Dave"}))
            .await;
        let msg = dave.recv().await;
        if msg["type"] == "welcome" {
            break msg;
        }
        // Bob's slot is released when his session task ends, just after his close.
        assert_eq!(msg["code"], "server_full");
        dave.expect_close_code(CloseCode::Again).await;
        dave = Client::connect(&server).await;
    };
    assert_eq!(welcome["peers"].as_array().unwrap().len(), 1);
    server.shutdown([alice, dave]).await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped() {
    let server = TestServer::with_limits(Limits {
        max_queued_bytes: 256 * 1024,
        rate_per_sec: 100_000,
        rate_burst: 100_000,
        ..Limits::default()
    })
    .await;
    let (mut observer, _) = Client::join(&server, "Observer").await;
    let (sleeper, _) = Client::join(&server, "Sleeper").await;
    let (mut sender, _) = Client::join(&server, "Sender").await;
    observer.recv_type("peer_joined").await;
    observer.recv_type("peer_joined").await;
    // Offers of 60 KiB each: the socket buffers fill, then the queue, then the server
    // gives up on the sleeper. It never holds more than 256 KiB for it.
    let sdp = "v".repeat(60 * 1024);
    let flood = async {
        for i in 0.. {
            let msg =
                json!({"type":"offer","to":sleeper.id,"call_id":format!("c{}", i % 8),"sdp":sdp});
            if sender
                .ws
                .send(Message::text(msg.to_string()))
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let left = async {
        loop {
            let msg = observer.recv().await;
            if msg["type"] == "peer_left" {
                return msg;
            }
        }
    };
    let msg = tokio::select! {
        msg = left => msg,
        () = flood => panic!("sender was cut off"),
    };
    assert_eq!(msg["id"], sleeper.id);
    drop(sleeper);
    server.shutdown([observer, sender]).await;
}

#[tokio::test]
async fn health_check_and_http_routing() {
    let server = TestServer::default().await;
    for (request, status) in [
        ("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200"),
        ("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404"),
        ("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 426"),
        (
            "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 405",
        ),
        ("garbage\r\n\r\n", "HTTP/1.1 400"),
    ] {
        let response = http(server.addr, request).await;
        assert!(response.starts_with(status), "{request:?} -> {response}");
        if status.ends_with("200") {
            assert!(response.ends_with("ok\n"));
        }
    }
    server.shutdown([]).await;
}

/// The browser client's files come from the same port, each with its type, a strict
/// Content-Security-Policy and no caching; other methods are refused.
#[tokio::test]
async fn the_web_client_is_served_with_a_strict_policy() {
    let server = TestServer::default().await;
    let fetch = |request: String| async move { http(server.addr, &request).await };
    let get = |path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8787\r\nConnection: close\r\n\r\n")
    };
    for (path, content_type, body) in [
        ("/", "text/html", "<script type=\"module\" src=\"/app.js\">"),
        (
            "/index.html",
            "text/html",
            "<label for=\"name\">Your name</label>",
        ),
        ("/app.js", "text/javascript", "type: 'hello'"),
        ("/link.js", "text/javascript", "createDataChannel('chat'"),
        ("/media.js", "text/javascript", "getUserMedia"),
        ("/chat.js", "text/javascript", "aria-label"),
        ("/safety.js", "text/javascript", "confab-safety-code-v1"),
        ("/style.css", "text/css", ".tiles"),
        ("/icon.svg", "image/svg+xml", "<svg"),
    ] {
        let response = fetch(get(path)).await;
        let lower = response.to_ascii_lowercase();
        assert!(response.starts_with("HTTP/1.1 200"), "{path}: {response}");
        assert!(
            lower.contains(&format!("content-type: {content_type}")),
            "{path}"
        );
        assert!(response.contains(body), "{path}");
        assert!(lower.contains("cache-control: no-store"), "{path}");
        assert!(lower.contains("x-content-type-options: nosniff"), "{path}");
        assert!(lower.contains("referrer-policy: no-referrer"), "{path}");
        assert!(lower.contains("x-frame-options: deny"), "{path}");
        assert!(
            lower.contains("permissions-policy: camera=(self), microphone=(self)"),
            "{path}"
        );
        assert!(
            lower.contains(
                "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self';"
            ),
            "{path}: {response}"
        );
        assert!(
            lower.contains("connect-src 'self' ws://127.0.0.1:8787 wss://127.0.0.1:8787;"),
            "{path}"
        );
    }
    // No inline script anywhere in the page (the policy would block it): no script element
    // without a source, no event handler attribute (` onclick=`...).
    let page = fetch(get("/")).await;
    assert!(!page.contains("<script>"), "{page}");
    let handler = page.split(" on").skip(1).find(|rest| {
        let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        name_len > 0 && rest[name_len..].starts_with('=')
    });
    assert_eq!(handler, None, "an inline event handler");

    let head = fetch("HEAD /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
    let post = fetch("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".into()).await;
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    server.shutdown([]).await;
}

/// Version 2 over real sockets: an answered call of two becomes a group of three, a
/// version-1 client cannot be invited but still calls, and a member who leaves is announced.
#[tokio::test]
async fn a_group_call_of_three_next_to_a_version_one_client() {
    let server = TestServer::default().await;
    let (mut old, _) = Client::join(&server, "Old").await;
    let (mut alice, _) = Client::join_speaking(&server, "Alice", 2).await;
    let (mut bob, _) = Client::join_speaking(&server, "Bob", 2).await;
    let (mut carol, welcome) = Client::join_speaking(&server, "Carol", 2).await;
    // The roster says who speaks what; version 1 has no `protocol` field.
    let peers = welcome["peers"].as_array().unwrap();
    let field = |name: &str| peers.iter().find(|p| p["name"] == name).unwrap()["protocol"].clone();
    assert_eq!(field("Alice"), 2);
    assert_eq!(field("Old"), Value::Null);
    for (client, joins) in [(&mut old, 3), (&mut alice, 2), (&mut bob, 1)] {
        for _ in 0..joins {
            client.recv_type("peer_joined").await;
        }
    }

    alice.send(offer(&bob.id, "g")).await;
    bob.recv_past_roster("offer").await;
    bob.send(answer(&alice.id, "g")).await;
    alice.recv_past_roster("answer").await;

    alice
        .send(json!({"type":"invite","to":old.id,"call_id":"g"}))
        .await;
    let err = alice.recv_past_roster("error").await;
    assert_eq!(err["code"], "not_supported");
    assert!(err["message"].as_str().unwrap().contains("Old"), "{err}");

    alice
        .send(json!({"type":"invite","to":carol.id,"call_id":"g"}))
        .await;
    let invite = carol.recv_past_roster("invite").await;
    assert_eq!(invite["from_name"], "Alice");
    assert_eq!(invite["members"].as_array().unwrap().len(), 2);
    carol.send(json!({"type":"join","call_id":"g"})).await;
    let members = carol.recv_past_roster("members").await;
    assert_eq!(members["members"].as_array().unwrap().len(), 2);
    for member in [&mut alice, &mut bob] {
        let joined = member.recv_past_roster("member_joined").await;
        assert_eq!(joined["peer"]["id"], carol.id);
        member.send(offer(&carol.id, "g")).await;
        let offer = carol.recv_past_roster("offer").await;
        assert_eq!(offer["from"], member.id);
        carol.send(answer(&member.id, "g")).await;
        member.recv_past_roster("answer").await;
    }

    // The version-1 client calls Alice as ever (she answers busy: she is in a call).
    old.send(offer(&alice.id, "o")).await;
    let ring = alice.recv_past_roster("offer").await;
    assert_eq!(ring["from_name"], "Old");
    alice.send(hangup(&old.id, "o", "busy")).await;
    let busy = old.recv_past_roster("hangup").await;
    assert_eq!(busy["reason"], "busy");

    // Carol's connection goes: Alice and Bob hear she left.
    let carol_id = carol.id.clone();
    carol.close().await;
    for member in [&mut alice, &mut bob] {
        let left = member.recv_past_roster("member_left").await;
        assert_eq!(left["id"], carol_id);
        assert_eq!(left["reason"], "ended");
    }
    server.shutdown([old, alice, bob]).await;
}

#[test]
fn the_manual_page_describes_the_flags_and_their_variables() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_confab-signaling"))
        .arg("--manpage")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH confab-signaling 1"), "{page}");
    // roff escapes the hyphen. The systemd unit of `make deb` is configured through
    // these variables, so the page names them.
    for flag in [
        "\\-\\-listen",
        "\\-\\-token",
        "\\-\\-tls\\-cert",
        "CONFAB_LISTEN",
        "CONFAB_TOKEN",
    ] {
        assert!(page.contains(flag), "{flag} missing from:\n{page}");
    }
    assert!(
        !page.contains("manpage"),
        "the hidden flag is listed:\n{page}"
    );
}
