//! Personal data about a survivor, as the domain holds it.
//!
//! Every field that identifies or describes a survivor is a [`Personal`] (the list is
//! [`crate::classification::FIELDS`]). A command carries the plain value; the engine seals it
//! under the person's own key before it is stored, and from then on the domain holds only the
//! sealed text: states, caches and read models never see the plain value again. Only the edge
//! that shows a value to someone entitled to it opens it (and, once the person is erased, can
//! no longer). `Debug` never prints the value, so it stays out of logs either way.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Values are sealed as text starting with this (see the engine's `keys` module).
pub const SEALED_PREFIX: &str = "hwenc2:";

/// Values sealed in the first stored form start with this; they are still read.
pub const FIRST_SEALED_PREFIX: &str = "hwenc1:";

/// Whether `text` has the shape of a sealed value (not whether it opens).
pub fn looks_sealed(text: &str) -> bool {
    text.starts_with(SEALED_PREFIX) || text.starts_with(FIRST_SEALED_PREFIX)
}

/// A survivor's personal datum: the plain value a command brings, or the sealed text it is
/// stored as.
#[derive(Clone, PartialEq, Eq)]
pub enum Personal<T> {
    Plain(T),
    /// The stored form: [`SEALED_PREFIX`], then the person, the event it was sealed in and the
    /// ciphertext.
    Sealed(String),
}

impl<T> Personal<T> {
    pub fn new(value: T) -> Self {
        Self::Plain(value)
    }

    /// The plain value, when this is one (a command's input, or data stored before sealing).
    pub fn plain(&self) -> Option<&T> {
        match self {
            Self::Plain(v) => Some(v),
            Self::Sealed(_) => None,
        }
    }

    pub fn is_sealed(&self) -> bool {
        matches!(self, Self::Sealed(_))
    }
}

impl Personal<String> {
    /// The text to store in a read model's column: the sealed form as it is (a plain value only
    /// for data stored before sealing).
    pub fn stored(&self) -> &str {
        match self {
            Self::Plain(v) | Self::Sealed(v) => v,
        }
    }
}

impl<T> From<T> for Personal<T> {
    fn from(value: T) -> Self {
        Self::Plain(value)
    }
}

impl<T> fmt::Debug for Personal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("[personal]"),
            Self::Sealed(_) => f.write_str("[sealed]"),
        }
    }
}

impl<T: Serialize> Serialize for Personal<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Plain(v) => v.serialize(serializer),
            Self::Sealed(text) => serializer.serialize_str(text),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Personal<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        match value {
            serde_json::Value::String(text) if looks_sealed(&text) => Ok(Self::Sealed(text)),
            other => serde_json::from_value(other)
                .map(Self::Plain)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_never_shows_in_debug_output() {
        let name = Personal::new("Amina Example".to_owned());
        assert_eq!(format!("{name:?}"), "[personal]");
        assert_eq!(
            serde_json::to_string(&name).expect("serialises"),
            "\"Amina Example\""
        );
    }

    #[test]
    fn a_sealed_value_reads_back_sealed_whatever_the_plain_type() {
        for sealed in ["\"hwenc2:abc\"", "\"hwenc1:abc\""] {
            let date: Personal<chrono::NaiveDate> = serde_json::from_str(sealed).unwrap();
            assert!(date.is_sealed());
            assert_eq!(serde_json::to_string(&date).unwrap(), sealed);
        }
        let plain: Personal<chrono::NaiveDate> = serde_json::from_str("\"2001-02-03\"").unwrap();
        assert_eq!(plain.plain().unwrap().to_string(), "2001-02-03");
        assert!(serde_json::from_str::<Personal<chrono::NaiveDate>>("\"soon\"").is_err());
    }
}
