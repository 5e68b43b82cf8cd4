//! Identifiers: peer ids (assigned by the server) and call ids (chosen by the caller).
//!
//! Both are short ASCII strings. Validation happens during deserialization, so a message
//! holding a malformed id fails to parse with a message that says which rule it broke.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest peer or call id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    #[error("id is empty")]
    Empty,
    #[error("id is longer than {MAX_ID_LEN} characters")]
    TooLong,
    #[error("id may only contain ASCII letters, digits, '-', '_' and '.'")]
    BadCharacter,
}

fn validate(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `s` against the id rules.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate(&s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A connected peer, as assigned by the server in `welcome`. Unguessable: knowing a
    /// peer's id is what lets a client address it, so the server never derives ids from
    /// names or counters.
    PeerId
);

id_type!(
    /// One call between two peers, chosen at random by the caller (a UUID fits).
    CallId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rules() {
        assert!(CallId::new("7f9c2ba4-e88f-4d1a-9a5b-0c1d2e3f4a5b").is_ok());
        assert!(CallId::new("a.b_c-D9").is_ok());
        assert_eq!(CallId::new(""), Err(IdError::Empty));
        assert_eq!(CallId::new("x".repeat(65)), Err(IdError::TooLong));
        assert!(CallId::new("x".repeat(64)).is_ok());
        assert_eq!(CallId::new("a b"), Err(IdError::BadCharacter));
        assert_eq!(PeerId::new("é"), Err(IdError::BadCharacter));
        assert_eq!(PeerId::new("a\nb"), Err(IdError::BadCharacter));
    }

    #[test]
    fn bad_id_fails_deserialization_with_the_rule() {
        let err = serde_json::from_str::<CallId>(r#""has space""#).unwrap_err();
        assert!(err.to_string().contains("ASCII letters"), "{err}");
    }
}
