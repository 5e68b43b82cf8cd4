//! Safety codes: how two people check that nobody sits between them.
//!
//! Each peer has a long-term identity, the DTLS certificate it presents in every call. Its
//! [`Fingerprint`] is the SHA-256 of the certificate (DER), the value an SDP
//! `a=fingerprint:sha-256` line carries. In a call, each side takes its own fingerprint and
//! the one the peer presented in the DTLS handshake, and derives the same
//! [`SafetyCode`] from the two: 60 digits, compared out of band (read aloud, or side by
//! side). A man in the middle terminates DTLS on each side with certificates of its own, so
//! the two sides see different fingerprints and get different codes; to match them it would
//! have to find a certificate whose 30 digits equal a victim's, about 2^100 tries of
//! 5,200 SHA-512 rounds each.
//!
//! The derivation (docs/protocol.md, "Safety codes", has a worked example):
//! for each fingerprint `F` (32 bytes), `H = SHA-512("confab-safety-code-v1" || F)`, then
//! 5,199 times `H = SHA-512(H || F)`; the first 30 bytes of `H`, as six 5-byte big-endian
//! numbers each taken modulo 100,000 and written as 5 digits, are that identity's 30
//! digits. The code is the two 30-digit strings in ascending order, joined.

use sha2::{Digest, Sha512};

/// What starts the first round of every identity's digest.
const DOMAIN: &[u8] = b"confab-safety-code-v1";

/// SHA-512 rounds per identity (Signal's count): slows a search for a look-alike.
const ROUNDS: usize = 5200;

/// Digits per identity, and in the whole code.
const DIGITS_PER_IDENTITY: usize = 30;
pub const CODE_DIGITS: usize = 2 * DIGITS_PER_IDENTITY;

/// A certificate's SHA-256, as DTLS fingerprints are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 fingerprint (32 bytes in hex, colons optional): {0:?}")]
pub struct BadFingerprint(String);

impl Fingerprint {
    /// The SHA-256 of a DER certificate.
    pub fn of_certificate(der: &[u8]) -> Fingerprint {
        Fingerprint(sha2::Sha256::digest(der).into())
    }

    /// The `sha-256` fingerprint of an SDP (the first, session or media level), if any.
    pub fn from_sdp(sdp: &str) -> Option<Fingerprint> {
        sdp.lines().find_map(|line| {
            let value = line.trim().strip_prefix("a=fingerprint:")?;
            let (algorithm, hex) = value.split_once(' ')?;
            if !algorithm.eq_ignore_ascii_case("sha-256") {
                return None;
            }
            hex.trim().parse().ok()
        })
    }

    /// Lowercase hex, no separators: how Confab stores it.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// This identity's 30 digits.
    fn digits(&self) -> String {
        let mut hash = Sha512::new_with_prefix(DOMAIN)
            .chain_update(self.0)
            .finalize();
        for _ in 1..ROUNDS {
            hash = Sha512::new_with_prefix(hash)
                .chain_update(self.0)
                .finalize();
        }
        hash.chunks_exact(5)
            .take(DIGITS_PER_IDENTITY / 5)
            .map(|chunk| {
                let number = chunk.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b));
                format!("{:05}", number % 100_000)
            })
            .collect()
    }
}

/// The SDP form: uppercase hex pairs joined by colons.
impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// Hex, with or without colons, either case.
impl std::str::FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(text: &str) -> Result<Fingerprint, BadFingerprint> {
        let bad = || BadFingerprint(text.chars().take(100).collect());
        let hex: Vec<u8> = text.bytes().filter(|&b| b != b':').collect();
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(bytes))
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The code two sides of a call compare: 60 digits, shown as 12 groups of 5.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SafetyCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a safety code is {CODE_DIGITS} digits (spaces allowed)")]
pub struct BadSafetyCode;

impl SafetyCode {
    /// The code of a call between these two identities (in either order: both sides get
    /// the same code).
    pub fn derive(ours: &Fingerprint, theirs: &Fingerprint) -> SafetyCode {
        let mut halves = [ours.digits(), theirs.digits()];
        halves.sort();
        SafetyCode(halves.concat())
    }

    /// The 60 digits, no spaces.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// The 12 groups of 5 digits.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        (0..CODE_DIGITS / 5).filter_map(|i| self.0.get(i * 5..i * 5 + 5))
    }
}

/// Groups of five separated by spaces.
impl std::fmt::Display for SafetyCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups: Vec<&str> = self.groups().collect();
        f.write_str(&groups.join(" "))
    }
}

impl std::fmt::Debug for SafetyCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SafetyCode({self})")
    }
}

/// 60 digits; spaces (and nothing else) may separate them.
impl std::str::FromStr for SafetyCode {
    type Err = BadSafetyCode;

    fn from_str(text: &str) -> Result<SafetyCode, BadSafetyCode> {
        let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != CODE_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadSafetyCode);
        }
        Ok(SafetyCode(digits))
    }
}

impl serde::Serialize for SafetyCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(byte: u8) -> Fingerprint {
        Fingerprint([byte; 32])
    }

    #[test]
    fn both_sides_derive_the_same_code() {
        let (a, b) = (fingerprint(1), fingerprint(2));
        let code = SafetyCode::derive(&a, &b);
        assert_eq!(code, SafetyCode::derive(&b, &a));
        assert_eq!(code.digits().len(), CODE_DIGITS);
        assert_eq!(code.groups().count(), 12);
        assert_ne!(code, SafetyCode::derive(&a, &fingerprint(3)));
        // What a man in the middle causes: each side sees another certificate.
        let (m1, m2) = (fingerprint(7), fingerprint(8));
        assert_ne!(SafetyCode::derive(&a, &m1), SafetyCode::derive(&b, &m2));
    }

    #[test]
    fn codes_print_and_parse() {
        let code = SafetyCode::derive(&fingerprint(1), &fingerprint(2));
        let printed = code.to_string();
        assert_eq!(printed.len(), CODE_DIGITS + 11);
        assert_eq!(printed.parse::<SafetyCode>(), Ok(code.clone()));
        assert_eq!(code.digits().parse::<SafetyCode>(), Ok(code));
        assert_eq!("123".parse::<SafetyCode>(), Err(BadSafetyCode));
        assert_eq!("x".repeat(60).parse::<SafetyCode>(), Err(BadSafetyCode));
    }

    #[test]
    fn fingerprints_parse_in_sdp_form_and_ours() {
        let fp = Fingerprint(std::array::from_fn(|i| i as u8 * 7));
        assert_eq!(fp.to_string().parse::<Fingerprint>(), Ok(fp));
        assert_eq!(fp.to_hex().parse::<Fingerprint>(), Ok(fp));
        assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
        assert!("ab:cd".parse::<Fingerprint>().is_err());
        assert!("é".repeat(32).parse::<Fingerprint>().is_err());
        let sdp = format!("v=0\r\na=group:BUNDLE 0\r\na=fingerprint:sha-256 {fp}\r\n");
        assert_eq!(Fingerprint::from_sdp(&sdp), Some(fp));
        assert_eq!(Fingerprint::from_sdp("a=fingerprint:sha-1 AB:CD\r\n"), None);
        let json = serde_json::to_string(&fp).unwrap_or_default();
        assert_eq!(serde_json::from_str::<Fingerprint>(&json).ok(), Some(fp));
    }
}
