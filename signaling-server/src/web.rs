//! The browser client: a small web app embedded in the binary (`signaling-server/web/`),
//! served at `/` on the signaling server's port. It speaks `docs/protocol.md` over `/ws`
//! like any outside client; nothing here knows about it beyond its files.
//!
//! Every answer carries a strict Content-Security-Policy (no inline script, nothing from
//! another origin), and nothing is cached: the page is tiny and always fresh.

use http_body_util::Full;
use hyper::Response;
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};

/// One file of the web client.
pub(crate) struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

/// One file of `web/`, served at `path`.
macro_rules! asset {
    ($path:literal, $file:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../web/", $file)),
        }
    };
}

/// The web client's files, by the path they are served at.
pub(crate) const ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/app.js", "app.js", JS),
    asset!("/link.js", "link.js", JS),
    asset!("/media.js", "media.js", JS),
    asset!("/chat.js", "chat.js", JS),
    asset!("/safety.js", "safety.js", JS),
    asset!("/style.css", "style.css", "text/css; charset=utf-8"),
    asset!("/icon.svg", "icon.svg", "image/svg+xml"),
];

/// The file served at `path`, if any.
pub(crate) fn asset(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|asset| asset.path == path)
}

/// The answer for `asset`: its bytes, with the headers that keep the page to itself.
/// `host` is the request's `Host` header, which the policy names so that the page may
/// open its WebSocket (`ws:`/`wss:` on the same host; not every browser counts those as
/// `'self'`).
pub(crate) fn response(asset: &Asset, host: Option<&str>, head: bool) -> Response<Full<Bytes>> {
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from_static(asset.body)
    };
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(asset.body.len()));
    security_headers(headers, host);
    response
}

/// The headers every page answer carries.
fn security_headers(headers: &mut HeaderMap, host: Option<&str>) {
    let connect = match host.filter(|host| is_plain_host(host)) {
        Some(host) => format!("connect-src 'self' ws://{host} wss://{host}"),
        None => "connect-src 'self'".to_owned(),
    };
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         media-src 'self' blob: mediastream:; {connect}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    let fixed = [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(self), microphone=(self), display-capture=()",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// A `Host` header that is only a host name or address and a port: nothing that could
/// add a directive to the policy.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use hyper::body::Body as _;

    use super::*;

    #[test]
    fn the_policy_names_only_a_plain_host() {
        let page = asset("/").expect("the page");
        let policy = |host| {
            let response = response(page, host, false);
            response.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .expect("ASCII")
                .to_owned()
        };
        assert!(
            policy(Some("127.0.0.1:8787"))
                .contains("connect-src 'self' ws://127.0.0.1:8787 wss://127.0.0.1:8787;")
        );
        assert!(policy(Some("[::1]:8787")).contains("ws://[::1]:8787"));
        let hostile = policy(Some("x; script-src *"));
        assert!(hostile.contains("connect-src 'self';"), "{hostile}");
        assert!(!hostile.contains("script-src *"), "{hostile}");
    }

    #[test]
    fn every_asset_is_found_at_its_path_and_head_has_no_body() {
        for each in ASSETS {
            let found = asset(each.path).expect("served");
            assert_eq!(found.path, each.path);
            assert!(!found.body.is_empty());
            let head = response(found, None, true);
            assert_eq!(head.body().size_hint().exact(), Some(0));
            assert_eq!(
                head.headers()[header::CONTENT_LENGTH],
                HeaderValue::from(found.body.len())
            );
        }
        assert_eq!(asset("/index.html").map(|a| a.path), Some("/"));
        assert!(asset("/../Cargo.toml").is_none());
    }
}
