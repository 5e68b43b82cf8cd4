//! A WebSocket proxy between a peer and the signaling server that keeps what the peer
//! sends: exactly what the server and the other side learn about it.

use std::sync::{Arc, Mutex};

use confab_protocol::ClientMessage;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::Server;

/// A WebSocket proxy between one peer and the signaling server; it keeps every text
/// message the peer sends.
pub struct SignalingTap {
    pub url: String,
    sent: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SignalingTap {
    pub async fn start(server: &Server) -> SignalingTap {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        let sent = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(proxy(listener, server.url(), Arc::clone(&sent)));
        SignalingTap { url, sent, task }
    }

    /// What the peer has sent so far.
    pub fn sent(&self) -> Vec<ClientMessage> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|text| serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: sent {text}")))
            .collect()
    }
}

impl Drop for SignalingTap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Relays the peer's connections (one at a time: a reconnect comes after the old one
/// closed) to `upstream`.
async fn proxy(listener: tokio::net::TcpListener, upstream: String, sent: Arc<Mutex<Vec<String>>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let Ok(client) = tokio_tungstenite::accept_async(stream).await else {
            continue;
        };
        let Ok((server, _)) = tokio_tungstenite::connect_async(&upstream).await else {
            continue;
        };
        let (mut to_client, mut from_client) = client.split();
        let (mut to_server, mut from_server) = server.split();
        let up = async {
            while let Some(Ok(message)) = from_client.next().await {
                if let Message::Text(text) = &message {
                    sent.lock().unwrap().push(text.as_str().to_owned());
                }
                if to_server.send(message).await.is_err() {
                    break;
                }
            }
            let _ = to_server.close().await;
        };
        let down = async {
            while let Some(Ok(message)) = from_server.next().await {
                if to_client.send(message).await.is_err() {
                    break;
                }
            }
            let _ = to_client.close().await;
        };
        tokio::join!(up, down);
    }
}
