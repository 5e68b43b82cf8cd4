//! Files sent in a call: the limits of the `file_*` chat messages, the transfer's data
//! channel, and how a name from the peer becomes a safe local file name.
//!
//! The sender offers on the chat channel (`file_offer`), the receiver answers
//! (`file_answer`); after an acceptance the sender opens one ordered, reliable data channel
//! labelled `file:<id>` and sends the file's bytes on it as binary messages of at most
//! [`MAX_CHUNK_BYTES`], in order, nothing else. The receiver reports progress
//! (`file_progress`), and `file_done` once every byte arrived and the SHA-256 matched.
//! Either side may `file_cancel` at any point. `docs/protocol.md` has the examples.

/// The transfer channel's label: this prefix and the offer's id.
pub const FILE_CHANNEL_PREFIX: &str = "file:";

/// Largest binary message on a transfer channel: what every WebRTC stack accepts
/// (`a=max-message-size` is 64 KiB or more in browsers and webrtc-rs).
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;

/// Longest file name in an offer, in bytes, before it is made safe.
pub const MAX_NAME_BYTES: usize = 1024;

/// Longest MIME type in an offer, in bytes.
pub const MAX_MIME_BYTES: usize = 255;

/// Longest `reason` of a `file_cancel`, in bytes.
pub const MAX_REASON_BYTES: usize = 500;

/// Longest name written to disk, in bytes (most file systems allow 255; room is left
/// for " (99)" and a `.part` suffix).
pub const MAX_SAFE_NAME_BYTES: usize = 200;

/// The label of the data channel that carries transfer `id`.
pub fn channel_label(id: &str) -> String {
    format!("{FILE_CHANNEL_PREFIX}{id}")
}

/// The transfer id in a data channel's label, if it is a transfer channel.
pub fn transfer_of_label(label: &str) -> Option<&str> {
    label.strip_prefix(FILE_CHANNEL_PREFIX)
}

/// Checks the parts of an offer the id check does not cover.
pub(crate) fn check_offer(name: &str, sha256: &str, mime: Option<&str>) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err("bad file name length".into());
    }
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("sha256 must be 64 lowercase hex digits".into());
    }
    if let Some(mime) = mime
        && (mime.len() > MAX_MIME_BYTES || !mime.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err("bad MIME type".into());
    }
    Ok(())
}

/// A name from the peer made safe to create in a folder: its last path component only (no
/// `/`, `\`, `..` or drive), no control characters or characters Windows refuses, no
/// leading dots (hidden files) or trailing dots and spaces, not a reserved device name,
/// at most [`MAX_SAFE_NAME_BYTES`] with its extension kept. Never empty.
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    let mut safe = if trimmed.is_empty() {
        "file".to_string()
    } else {
        trimmed.to_string()
    };
    let stem = safe
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes().get(3).is_some_and(u8::is_ascii_digit));
    if reserved {
        safe.insert(0, '_');
    }
    shorten(&safe, MAX_SAFE_NAME_BYTES)
}

/// `name` cut to at most `max` bytes on a character boundary, its extension kept when it
/// is short.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if name.len() - dot <= 16 && dot > 0 => name.split_at(dot),
        _ => (name, ""),
    };
    let mut end = max - ext.len();
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ext}", stem.get(..end).unwrap_or_default())
}

/// The `n`th alternative to a name already taken: `report (1).pdf`, `report (2).pdf`...
pub fn numbered_name(safe: &str, n: u32) -> String {
    match safe.rfind('.') {
        Some(dot) if dot > 0 => {
            let (stem, ext) = safe.split_at(dot);
            format!("{stem} ({n}){ext}")
        }
        _ => format!("{safe} ({n})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_become_a_plain_name_in_the_folder() {
        let cases = [
            ("report.pdf", "report.pdf"),
            ("../../etc/passwd", "passwd"),
            ("/etc/shadow", "shadow"),
            ("..\\..\\Windows\\system32\\evil.dll", "evil.dll"),
            ("C:\\autoexec.bat", "autoexec.bat"),
            ("C:evil", "C_evil"),
            ("..", "file"),
            (".", "file"),
            ("../", "file"),
            ("", "file"),
            ("   ", "file"),
            (".bashrc", "bashrc"),
            ("a\u{0}b\nc\u{7f}d\u{1b}[31m", "a_b_c_d_[31m"),
            ("con", "_con"),
            ("NUL.txt", "_NUL.txt"),
            ("com1.log", "_com1.log"),
            ("LPT9", "_LPT9"),
            ("company.txt", "company.txt"),
            ("what?*.txt", "what__.txt"),
            ("name. . ", "name"),
            ("résumé 📄.pdf", "résumé 📄.pdf"),
        ];
        for (hostile, safe) in cases {
            assert_eq!(safe_file_name(hostile), safe, "{hostile:?}");
        }
    }

    #[test]
    fn overlong_names_keep_their_extension_and_whole_characters() {
        let safe = safe_file_name(&format!("{}.pdf", "é".repeat(300)));
        assert!(safe.len() <= MAX_SAFE_NAME_BYTES, "{}", safe.len());
        assert!(safe.ends_with("é.pdf"), "{safe}");
        let no_ext = safe_file_name(&"x".repeat(5000));
        assert_eq!(no_ext.len(), MAX_SAFE_NAME_BYTES);
    }

    #[test]
    fn taken_names_are_numbered_before_the_extension() {
        assert_eq!(numbered_name("report.pdf", 2), "report (2).pdf");
        assert_eq!(numbered_name("README", 1), "README (1)");
        assert_eq!(numbered_name("archive.tar.gz", 1), "archive.tar (1).gz");
    }

    #[test]
    fn labels_carry_the_transfer_id() {
        assert_eq!(channel_label("abc"), "file:abc");
        assert_eq!(transfer_of_label("file:abc"), Some("abc"));
        assert_eq!(transfer_of_label("chat"), None);
    }

    #[test]
    fn offers_are_checked() {
        let hash = "0".repeat(64);
        assert!(check_offer("a.txt", &hash, Some("text/plain")).is_ok());
        assert!(check_offer("", &hash, None).is_err());
        assert!(check_offer(&"a".repeat(MAX_NAME_BYTES + 1), &hash, None).is_err());
        assert!(check_offer("a", &"A".repeat(64), None).is_err());
        assert!(check_offer("a", "00", None).is_err());
        assert!(check_offer("a", &hash, Some("text/plain\n")).is_err());
    }
}
