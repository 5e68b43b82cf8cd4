//! This peer's long-term identity: the DTLS certificate it presents in every call, kept in
//! the profile so the safety code ([`confab_protocol::safety`]) stays the same across calls
//! and restarts.
//!
//! The file is PEM: the PKCS#8 private key (`PRIVATE KEY`) and the self-signed ECDSA P-256
//! certificate (`CERTIFICATE`), readable by this user only (0600). It is made once, written
//! to a temporary file and linked into place, so two Confabs starting at once on one
//! profile end up with the same identity. A file that cannot be read back whole (damaged,
//! edited, a key that does not match its certificate) is an error naming the file; it is
//! never replaced silently.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use confab_protocol::safety::Fingerprint;
use rtc::crypto::{SignatureScheme, default_provider};
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};

const KEY_TAG: &str = "PRIVATE KEY";
const CERTIFICATE_TAG: &str = "CERTIFICATE";

/// Largest identity file read: a P-256 key and certificate are under 1 KiB.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// A DTLS certificate and its fingerprint.
#[derive(Clone)]
pub struct Identity {
    certificate: RTCCertificate,
    fingerprint: Fingerprint,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot make a new identity: {0}")]
    Generate(String),
    #[error("cannot read the identity file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot save the identity file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the identity file {path} is damaged ({reason}); move it away to start with a new \
         identity (people who verified you will be warned that it changed)"
    )]
    Damaged { path: PathBuf, reason: String },
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.fingerprint.to_hex())
    }
}

impl PartialEq for Identity {
    fn eq(&self, other: &Identity) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl Identity {
    /// A new identity (ECDSA P-256, self-signed, valid until 4096 as rcgen's default).
    pub fn generate() -> Result<Identity, IdentityError> {
        let failed = |err: &dyn std::fmt::Display| IdentityError::Generate(err.to_string());
        let provider = default_provider().map_err(|e| failed(&e))?;
        let params = CertificateParams::new(vec!["confab".to_owned()]).map_err(|e| failed(&e))?;
        let certificate =
            RTCCertificate::generate(provider.crypto(), SignatureScheme::EcdsaP256Sha256, params)
                .map_err(|e| failed(&e))?;
        Identity::of(certificate).ok_or_else(|| failed(&"no certificate was made"))
    }

    fn of(certificate: RTCCertificate) -> Option<Identity> {
        let der = certificate.dtls_certificate.certificate.first()?;
        let fingerprint = Fingerprint::of_certificate(der.as_ref());
        Some(Identity {
            certificate,
            fingerprint,
        })
    }

    /// The identity saved at `path`, made and saved there first if there is none.
    pub fn load_or_create(path: &Path) -> Result<Identity, IdentityError> {
        match Identity::load(path) {
            Err(IdentityError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            loaded => return loaded,
        }
        let identity = Identity::generate()?;
        match identity.save_new(path) {
            Ok(()) => Ok(identity),
            // Another Confab on this profile made one first: use that.
            Err(IdentityError::Write { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                Identity::load(path)
            }
            Err(err) => Err(err),
        }
    }

    /// The identity saved at `path`.
    pub fn load(path: &Path) -> Result<Identity, IdentityError> {
        let read = |source| IdentityError::Read {
            path: path.to_owned(),
            source,
        };
        let damaged = |reason: String| IdentityError::Damaged {
            path: path.to_owned(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(read)?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_FILE_BYTES + 1),
            &mut bytes,
        )
        .map_err(read)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(damaged("too large".into()));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| damaged("not text".into()))?;
        let (key, certificate) = parse_pem(text).map_err(damaged)?;
        let certificate = certificate_of(&key, certificate).map_err(damaged)?;
        Identity::of(certificate).ok_or_else(|| damaged("no certificate".into()))
    }

    /// Writes this identity to `path` (0600, its folder made if need be), failing with
    /// `AlreadyExists` if a file is there.
    fn save_new(&self, path: &Path) -> Result<(), IdentityError> {
        let write = |source| IdentityError::Write {
            path: path.to_owned(),
            source,
        };
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(write)?;
        // tempfile makes the file 0600 before anything is written to it.
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(write)?;
        std::io::Write::write_all(&mut file, self.to_pem()?.as_bytes()).map_err(write)?;
        file.as_file().sync_all().map_err(write)?;
        file.persist_noclobber(path)
            .map_err(|err| write(err.error))?;
        Ok(())
    }

    fn to_pem(&self) -> Result<String, IdentityError> {
        let failed = |err: &dyn std::fmt::Display| IdentityError::Generate(err.to_string());
        let key = self
            .certificate
            .dtls_certificate
            .private_key
            .signing_key
            .to_pkcs8_der()
            .map_err(|e| failed(&e))?
            .ok_or_else(|| failed(&"the key cannot be exported"))?;
        let mut blocks = vec![pem::Pem::new(KEY_TAG, key.as_ref().to_vec())];
        for certificate in &self.certificate.dtls_certificate.certificate {
            blocks.push(pem::Pem::new(
                CERTIFICATE_TAG,
                certificate.as_ref().to_vec(),
            ));
        }
        Ok(pem::encode_many(&blocks))
    }

    /// The SHA-256 of the certificate: what the peer sees in the DTLS handshake.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// For the peer connection's configuration.
    pub(crate) fn certificate(&self) -> RTCCertificate {
        self.certificate.clone()
    }
}

/// The key (PKCS#8 DER) and the certificate (DER) of an identity file: one of each.
fn parse_pem(text: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    let blocks = pem::parse_many(text).map_err(|err| err.to_string())?;
    let only = |tag: &str| {
        let mut found = blocks.iter().filter(|block| block.tag() == tag);
        match (found.next(), found.next()) {
            (Some(block), None) => Ok(block.contents().to_vec()),
            (None, _) => Err(format!("no {tag}")),
            (Some(_), Some(_)) => Err(format!("more than one {tag}")),
        }
    };
    Ok((only(KEY_TAG)?, only(CERTIFICATE_TAG)?))
}

/// The certificate for `key`, checked: a valid P-256 key whose public half is the
/// certificate's.
fn certificate_of(key: &[u8], certificate: Vec<u8>) -> Result<RTCCertificate, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(&certificate)
        .map_err(|err| format!("the certificate does not parse: {err}"))?;
    let public_key = parsed.public_key();
    let not_after = u64::try_from(parsed.validity().not_after.timestamp())
        .map_err(|_| "the certificate expired before 1970".to_owned())?;
    let expires = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(not_after))
        .ok_or_else(|| "the certificate's expiry is out of range".to_owned())?;
    let provider = default_provider().map_err(|err| err.to_string())?;
    let signing_key = provider
        .crypto()
        .import_signing_key(SignatureScheme::EcdsaP256Sha256, key)
        .map_err(|err| format!("the private key does not load: {err}"))?;
    let ours = signing_key.public_key();
    let matches = match ours.encoding {
        rtc::crypto::PublicKeyEncoding::SubjectPublicKeyInfoDer => ours.bytes == public_key.raw,
        _ => ours.bytes == &*public_key.subject_public_key.data,
    };
    if !matches {
        return Err("the private key is not the certificate's".into());
    }
    Ok(RTCCertificate::from_signing_key(
        vec![certificate.into()],
        signing_key,
        expires,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(test: &str) -> PathBuf {
        std::env::temp_dir()
            .join(format!("confab-identity-{test}-{}", std::process::id()))
            .join("identity.pem")
    }

    #[test]
    fn an_identity_is_made_once_and_kept() -> Result<(), IdentityError> {
        let path = temp_path("kept");
        let _ = std::fs::remove_file(&path);
        let made = Identity::load_or_create(&path)?;
        assert_eq!(Identity::load_or_create(&path)?, made);
        assert_eq!(Identity::load(&path)?.fingerprint(), made.fingerprint());
        assert_ne!(Identity::generate()?, made);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode.ok(), Some(0o600));
        }
        let _ = std::fs::remove_dir_all(path.parent().unwrap_or(&path));
        Ok(())
    }

    #[test]
    fn a_damaged_file_is_an_error_and_is_kept() -> Result<(), IdentityError> {
        let path = temp_path("damaged");
        let _ = std::fs::remove_file(&path);
        let good = Identity::load_or_create(&path)?;
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let other = Identity::generate()?.to_pem()?;
        let other_certificate = &other[other.find("-----BEGIN CERTIFICATE").unwrap_or(0)..];
        let key_only = &text[..text.find("-----BEGIN CERTIFICATE").unwrap_or(0)];
        let cases = [
            ("".to_owned(), "no PRIVATE KEY"),
            ("hello".to_owned(), "no PRIVATE KEY"),
            (text.replacen('A', "B", 3), ""),
            (text.replace("PRIVATE KEY", "EC KEY"), "no PRIVATE KEY"),
            (key_only.to_owned(), "no CERTIFICATE"),
            (
                format!("{key_only}{other_certificate}"),
                "not the certificate's",
            ),
            (
                format!("{text}{other_certificate}"),
                "more than one CERTIFICATE",
            ),
            ("\u{0}\u{ff}".repeat(40_000), "too large"),
        ];
        let cases = cases
            .into_iter()
            .map(|(content, reason)| (content.into_bytes(), reason))
            .chain([(vec![0xff; 100], "not text")]);
        for (case, (content, reason)) in cases.enumerate() {
            std::fs::write(&path, &content).unwrap_or_default();
            match Identity::load_or_create(&path) {
                Err(err @ IdentityError::Damaged { .. }) => {
                    assert!(err.to_string().contains(reason), "case {case}: {err}");
                    assert!(err.to_string().contains("identity.pem"));
                }
                other => panic!("case {case}: {other:?}"),
            }
            let kept = std::fs::read(&path).unwrap_or_default();
            assert!(
                kept == content,
                "case {case}: the damaged file is left for the user"
            );
        }
        std::fs::write(&path, &text).unwrap_or_default();
        assert_eq!(Identity::load(&path)?, good);
        let _ = std::fs::remove_dir_all(path.parent().unwrap_or(&path));
        Ok(())
    }
}
