//! Watch who is online on a Confab signaling server.
//!
//! ```text
//! cargo run --example roster -- ws://127.0.0.1:8787/ws Watcher [TOKEN]
//! ```
//!
//! Logs in under the given name and prints the roster, then every join, leave and busy
//! change until Ctrl-C. A minimal client of `docs/protocol.md`.

// An example: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use anyhow::{Context, bail};
use confab_protocol::{ClientMessage, PROTOCOL_VERSION, ServerMessage, parse_server_message};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8787/ws".into());
    let name = args.next().unwrap_or_else(|| "Watcher".into());
    let token = args.next();

    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        name,
        token,
        resume: None,
    };
    ws.send(Message::text(hello.to_json())).await?;

    while let Some(frame) = ws.next().await {
        let Message::Text(text) = frame? else {
            continue;
        };
        match parse_server_message(&text)? {
            ServerMessage::Welcome {
                id,
                peers,
                server_version,
                ..
            } => {
                println!(
                    "connected as {id} (server {server_version}); {} online:",
                    peers.len()
                );
                for peer in peers {
                    println!(
                        "  {} {}{}",
                        peer.id,
                        peer.name,
                        if peer.busy { " (busy)" } else { "" }
                    );
                }
            }
            ServerMessage::PeerJoined { peer } => println!("+ {} {}", peer.id, peer.name),
            ServerMessage::PeerLeft { id } => println!("- {id}"),
            ServerMessage::PeerUpdated { peer } => {
                let state = if peer.busy { "is in a call" } else { "is free" };
                println!("* {} {state}", peer.name);
            }
            ServerMessage::Error { code, message, .. } => {
                bail!("server refused: {code:?}: {message}")
            }
            other => println!("{other:?}"),
        }
    }
    println!("the server closed the connection");
    Ok(())
}
