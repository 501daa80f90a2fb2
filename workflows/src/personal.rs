//! A marker for personal data.
//!
//! Every field that identifies or describes a survivor is wrapped in [`Personal`]. Today it only
//! keeps the value out of `Debug` output (and so out of logs); the per-person encryption issue
//! will encrypt exactly these fields with the person's key, and erasure will shred that key.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Personal data about a survivor. Serialises as the bare value; prints as `[personal]`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Personal<T>(pub T);

impl<T> Personal<T> {
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Personal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[personal]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_never_shows_in_debug_output() {
        let name = Personal("Amina Example".to_owned());
        assert_eq!(format!("{name:?}"), "[personal]");
        assert_eq!(
            serde_json::to_string(&name).expect("serialises"),
            "\"Amina Example\""
        );
    }
}
