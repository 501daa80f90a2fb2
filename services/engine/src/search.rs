//! Finding a survivor without searchable plaintext: a keyed blind index.
//!
//! Each part of her name, folded (accents dropped, case ignored), and her date of birth are
//! kept only as HMAC-SHA-256 terms under the search key, bound to her organisation. The search
//! key is not the master key: whoever holds the index and the master key's backups learns
//! nothing from the terms without it. A search computes the same terms from what the social
//! worker typed and asks for the persons who have every one, so the parts of a name can come
//! in any order. Only whole parts match: "Ade" does not find "Adebayo". Erasure deletes her
//! terms with her key.

use base64::Engine as _;
use chrono::NaiveDate;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization as _;
use uuid::Uuid;

/// Bytes of a term kept: 128 bits leave no collision to fear among an organisation's persons.
const TERM_BYTES: usize = 16;
/// The most name parts a search or a name contributes: more is not a name.
pub const MAX_NAME_PARTS: usize = 12;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SearchError {
    #[error("the search key is not 32 bytes in base64 (make one with `openssl rand -base64 32`)")]
    MalformedKey,
    #[error("give a name (at least one letter or digit) or a date of birth to search by")]
    NothingToSearch,
    #[error("a name to search by has at most {MAX_NAME_PARTS} parts")]
    TooManyParts,
}

/// The key of the blind index: 32 bytes, kept apart from the master key.
#[derive(Clone)]
pub struct SearchKey([u8; 32]);

impl std::fmt::Debug for SearchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchKey([secret])")
    }
}

impl SearchKey {
    pub fn generate() -> Self {
        use aes_gcm::aead::{KeyInit as _, OsRng};
        Self(aes_gcm::Aes256Gcm::generate_key(&mut OsRng).into())
    }

    pub fn from_base64(text: &str) -> Result<Self, SearchError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| SearchError::MalformedKey)?;
        Ok(Self(
            bytes.try_into().map_err(|_| SearchError::MalformedKey)?,
        ))
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// What the database keeps to recognise this key: a start with another key would make
    /// terms that find nobody.
    pub fn check_value(&self) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(b"homeward search key check v1");
        mac.finalize().into_bytes().to_vec()
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length")
    }
}

/// The parts of a name as the index compares them: decomposed, combining marks dropped,
/// lower case, split at anything that is not a letter or a digit (so "N'Diaye-Ólafsdóttir"
/// is `n`, `diaye` and `olafsdottir`), each once.
pub fn name_parts(name: &str) -> Vec<String> {
    let folded: String = name
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    let mut parts: Vec<String> = Vec::new();
    for part in folded.split(|c: char| !c.is_alphanumeric()) {
        if !part.is_empty() && !parts.iter().any(|p| p == part) {
            parts.push(part.to_owned());
        }
    }
    parts
}

#[derive(Debug, Clone)]
pub struct BlindIndex {
    key: SearchKey,
}

impl BlindIndex {
    pub fn new(key: SearchKey) -> Self {
        Self { key }
    }

    fn term(&self, organisation: Uuid, kind: &str, value: &str) -> Vec<u8> {
        let mut mac = self.key.mac();
        mac.update(b"homeward search v1\0");
        mac.update(organisation.as_bytes());
        mac.update(kind.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        mac.finalize().into_bytes()[..TERM_BYTES].to_vec()
    }

    /// Every term a person with this name and date of birth is found by; at least one (a name
    /// without letters or digits, and no date, gives a term no search asks for).
    pub fn terms(
        &self,
        organisation: Uuid,
        full_name: &str,
        date_of_birth: Option<NaiveDate>,
    ) -> Vec<Vec<u8>> {
        let terms = self.asked(organisation, full_name, date_of_birth);
        if terms.is_empty() {
            return vec![self.term(organisation, "unsearchable", "")];
        }
        terms
    }

    fn asked(
        &self,
        organisation: Uuid,
        full_name: &str,
        date_of_birth: Option<NaiveDate>,
    ) -> Vec<Vec<u8>> {
        let mut terms: Vec<Vec<u8>> = name_parts(full_name)
            .iter()
            .take(MAX_NAME_PARTS)
            .map(|part| self.term(organisation, "name", part))
            .collect();
        if let Some(date) = date_of_birth {
            terms.push(self.term(organisation, "born", &date.to_string()));
        }
        terms
    }

    /// The terms a search for `name` (any of her name's parts, in any order) and `born` asks
    /// for: the persons found have all of them.
    pub fn query(
        &self,
        organisation: Uuid,
        name: &str,
        born: Option<NaiveDate>,
    ) -> Result<Vec<Vec<u8>>, SearchError> {
        if name_parts(name).len() > MAX_NAME_PARTS {
            return Err(SearchError::TooManyParts);
        }
        let terms = self.asked(organisation, name, born);
        if terms.is_empty() {
            return Err(SearchError::NothingToSearch);
        }
        Ok(terms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_folded_to_their_parts() {
        assert_eq!(
            name_parts("  Ólafsdóttir, N'DIAYE-Çelik  Ólafsdóttir"),
            ["olafsdottir", "n", "diaye", "celik"]
        );
        assert_eq!(name_parts("Ngozi Ádébáyọ̀"), ["ngozi", "adebayo"]);
        assert!(name_parts(" - ' ").is_empty());
    }

    #[test]
    fn terms_depend_on_the_key_and_the_organisation_not_on_order_or_accents() {
        let index = BlindIndex::new(SearchKey::generate());
        let org = Uuid::new_v4();
        let born = NaiveDate::from_ymd_opt(1999, 4, 12);
        let stored = index.terms(org, "Ngozi Adébáyọ̀", born);
        assert_eq!(stored.len(), 3);
        let asked = index.query(org, "ADEBAYO ngozi", born).unwrap();
        assert!(asked.iter().all(|t| stored.contains(t)));
        assert!(index
            .query(org, "adebayo", None)
            .unwrap()
            .iter()
            .all(|t| stored.contains(t)));
        let elsewhere = index.query(Uuid::new_v4(), "adebayo", None).unwrap();
        assert!(!stored.contains(&elsewhere[0]));
        let other_key = BlindIndex::new(SearchKey::generate());
        assert!(!stored.contains(&other_key.query(org, "adebayo", None).unwrap()[0]));
        // Nothing of the name shows in a term.
        assert!(stored.iter().all(|t| t.len() == TERM_BYTES));
        assert_eq!(
            index.query(org, " ,. ", None),
            Err(SearchError::NothingToSearch)
        );
        assert_eq!(index.query(org, "", born).unwrap().len(), 1);
        // A name without a part still gets a term, which no search asks for.
        let unsearchable = index.terms(org, "…", None);
        assert_eq!(unsearchable.len(), 1);
        assert!(!stored.contains(&unsearchable[0]));
    }
}
