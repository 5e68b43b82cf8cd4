//! The people this user has verified: each name with the identity (certificate
//! fingerprint) it had when the safety codes were compared. Kept with the settings
//! (eframe storage). Pure data: the model asks it how far to trust a peer's identity.

use std::collections::BTreeMap;

use confab_protocol::safety::Fingerprint;
use serde::{Deserialize, Serialize};

/// The key the verified identities are saved under.
pub const STORAGE_KEY: &str = "verified";

/// What is known of a peer's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Never verified under this name.
    Unverified,
    /// The identity this name had when the user verified it.
    Verified,
    /// This name was verified with another identity: a new computer or profile, or someone
    /// in the middle.
    Changed,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    peers: BTreeMap<String, Fingerprint>,
}

impl Verified {
    pub fn trust(&self, name: &str, identity: &Fingerprint) -> Trust {
        match self.peers.get(name) {
            None => Trust::Unverified,
            Some(verified) if verified == identity => Trust::Verified,
            Some(_) => Trust::Changed,
        }
    }

    /// The user compared the codes: this is `name`'s identity (replacing an older one).
    pub fn mark(&mut self, name: String, identity: Fingerprint) {
        self.peers.insert(name, identity);
    }

    pub fn forget(&mut self, name: &str) {
        self.peers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_name_with_another_identity_has_changed() {
        let (first, second) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        let mut verified = Verified::default();
        assert_eq!(verified.trust("Bob", &first), Trust::Unverified);
        verified.mark("Bob".into(), first);
        assert_eq!(verified.trust("Bob", &first), Trust::Verified);
        assert_eq!(verified.trust("Bob", &second), Trust::Changed);
        assert_eq!(verified.trust("Carol", &first), Trust::Unverified);
        // Saved and read back as the app does.
        let saved = serde_json::to_string(&verified).unwrap();
        assert_eq!(serde_json::from_str::<Verified>(&saved).unwrap(), verified);
        verified.mark("Bob".into(), second);
        assert_eq!(verified.trust("Bob", &second), Trust::Verified);
        verified.forget("Bob");
        assert_eq!(verified.trust("Bob", &second), Trust::Unverified);
    }
}
