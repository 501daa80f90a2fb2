//! Identifiers. Uuid-based ids name streams; step keys are short names unique within a plan.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::text::TextError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub const STREAM_PREFIX: &'static str = $prefix;

            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// The name of this entity's stream in the log, e.g. `plan-<uuid>`.
            pub fn stream_id(&self) -> String {
                format!("{}-{}", $prefix, self.0)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A return plan.
    PlanId,
    "plan"
);
uuid_id!(
    /// A survivor; their personal data lives only in the `person-<id>` stream.
    PersonId,
    "person"
);
uuid_id!(
    /// A responsible party: social worker, supervisor, liaison, partner contact or admin.
    PartyId,
    "party"
);
uuid_id!(
    /// An organisation: an NGO or agency that runs plans, a government office, or a partner in
    /// a country of origin. Plans, persons and parties belong to one by this id, never by name.
    OrganisationId,
    "organisation"
);

/// A step's name within its plan, e.g. `passport` or `follow_up_2`: lowercase letters, digits,
/// `_` and `-`, 1 to 64 characters, so it is safe in URLs, logs and timer ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StepKey(String);

impl StepKey {
    pub fn parse(s: &str) -> Result<Self, TextError> {
        let valid = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(TextError::InvalidStepKey(s.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StepKey {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<StepKey> for String {
    fn from(k: StepKey) -> Self {
        k.0
    }
}

impl fmt::Display for StepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
