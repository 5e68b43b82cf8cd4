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

/// The web client's files, by the path they are served at.
pub(crate) const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../web/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/app.js"),
    },
    Asset {
        path: "/link.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/link.js"),
    },
    Asset {
        path: "/media.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/media.js"),
    },
    Asset {
        path: "/chat.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/chat.js"),
    },
    Asset {
        path: "/safety.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/safety.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/style.css"),
    },
    Asset {
        path: "/icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../web/icon.svg"),
    },
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
