//! wss:// with a certificate generated for the test.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use common::TestServer;
use confab_signaling::Config;
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, connect_async_tls_with_config};

#[tokio::test]
async fn clients_connect_over_tls() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der: CertificateDer<'static> = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));

    // The server reads PEM files, as the --tls-cert/--tls-key flags do.
    let dir = std::env::temp_dir().join(format!("confab-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let tls = confab_signaling::tls::server_config_from_pem(&cert_path, &key_path).unwrap();
    drop(key);
    let server = TestServer::start(Config {
        tls: Some(tls),
        ..Config::default()
    })
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let url = format!("wss://localhost:{}/ws", server.addr.port());
    let (mut ws, _) = connect_async_tls_with_config(
        url,
        None,
        false,
        Some(Connector::Rustls(Arc::new(client_config))),
    )
    .await
    .unwrap();
    ws.send(Message::text(
        r#"{"type":"hello","protocol":1,"name":"Secure"}"#,
    ))
    .await
    .unwrap();
    let Some(Ok(Message::Text(text))) = ws.next().await else {
        panic!("no welcome over TLS");
    };
    assert!(text.contains(r#""type":"welcome""#), "{text}");

    // A plain-text client cannot talk to the TLS port.
    let plain = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)).await;
    assert!(plain.is_err());
    drop(ws);
    server.shutdown([]).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_or_bad_pem_files_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("confab-badtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let missing = dir.join("missing.pem");
    let err = confab_signaling::tls::server_config_from_pem(&missing, &missing).unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
    let err = confab_signaling::tls::server_config_from_pem(&empty, &empty).unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
