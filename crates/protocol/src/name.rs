//! Display names: the rules a name must follow and the key that decides uniqueness.
//!
//! A name is trimmed, then must be 1-64 characters with no control characters. Two names are
//! the same person for uniqueness purposes when they match after Unicode NFKC normalisation
//! and lower-casing, so "Alice", "ALICE" and "Ａｌｉｃｅ" (full-width) cannot coexist.

use unicode_normalization::UnicodeNormalization;

/// Longest display name, in characters (Unicode scalar values) after trimming.
pub const MAX_NAME_CHARS: usize = 64;

/// Why a display name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is longer than {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("name contains control characters")]
    ControlCharacter,
}

/// Checks a requested name and returns it trimmed, as it will be shown to others.
pub fn validate(requested: &str) -> Result<&str, NameError> {
    let name = requested.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    Ok(name)
}

/// The key two names are compared by: NFKC-normalised and lower-cased.
pub fn uniqueness_key(name: &str) -> String {
    name.nfkc().collect::<String>().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_table() {
        let cases: &[(&str, Result<&str, NameError>)] = &[
            ("Alice", Ok("Alice")),
            ("  Bob \t", Ok("Bob")),
            ("Zoë 🎥", Ok("Zoë 🎥")),
            ("", Err(NameError::Empty)),
            ("   ", Err(NameError::Empty)),
            ("a\u{7}b", Err(NameError::ControlCharacter)),
            ("a\nb", Err(NameError::ControlCharacter)),
            ("a\u{9b}b", Err(NameError::ControlCharacter)),
        ];
        for (input, expected) in cases {
            assert_eq!(&validate(input), expected, "input {input:?}");
        }
        let longest = "é".repeat(MAX_NAME_CHARS);
        assert_eq!(validate(&longest), Ok(longest.as_str()));
        assert_eq!(validate(&"é".repeat(65)), Err(NameError::TooLong));
    }

    #[test]
    fn uniqueness_ignores_case_and_compatibility_forms() {
        assert_eq!(uniqueness_key("Alice"), uniqueness_key("ALICE"));
        assert_eq!(uniqueness_key("Alice"), uniqueness_key("Ａｌｉｃｅ"));
        // "ﬁ" (U+FB01 ligature) is "fi" under NFKC.
        assert_eq!(uniqueness_key("ﬁona"), uniqueness_key("Fiona"));
        assert_ne!(uniqueness_key("Alice"), uniqueness_key("Alicia"));
    }
}
