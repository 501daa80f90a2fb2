//! Envelope encryption of survivors' data: a data key per person, kept only wrapped by the
//! server's master key, and each personal value sealed under its person's key, bound to its
//! place (stream, event, field) so that it cannot be moved to another record.
//!
//! AES-256-GCM (RustCrypto), a random 96-bit nonce per seal. Erasing a person destroys their
//! wrapped key: every value sealed under it is unreadable for good. A key check value, kept
//! beside the data, says at start-up whether the master key is the one the data was sealed
//! under, before anything is served.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use homeward_workflows::personal::FIRST_SEALED_PREFIX;
use sha2::Sha256;
use thiserror::Error;
use uuid::Uuid;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const ID_LEN: usize = 16;
/// Sealed values' base64 (without padding: it adds nothing).
const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// Sealed values start with this, so that a reader tells them from plain text.
pub use homeward_workflows::personal::SEALED_PREFIX;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("a master key is 32 bytes, base64-encoded (44 characters): generate one with `openssl rand -base64 32`")]
    MalformedMasterKey,
    #[error("this data key cannot be unwrapped with this master key (another key, or the wrapped key was altered)")]
    Unwrap,
    #[error("this value cannot be opened: it was altered, moved from another place, or sealed under another key")]
    Open,
    #[error("this value is not sealed")]
    NotSealed,
    #[error("this value was sealed for another person")]
    OtherPerson,
}

/// The server's master key: it wraps every person's data key and nothing else.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([secret])")
    }
}

impl MasterKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self(Aes256Gcm::generate_key(&mut OsRng).into())
    }

    /// The key from its base64 form (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::MalformedMasterKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::MalformedMasterKey)?;
        Ok(Self(bytes))
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// What is kept beside the data to recognise this key: an HMAC of a fixed label, which
    /// tells nothing of the key.
    pub fn check_value(&self) -> Vec<u8> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(b"homeward master key check v1");
        mac.finalize().into_bytes().to_vec()
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0))
    }

    /// A new data key for `person`, and its wrapped form (the only form that is stored).
    pub fn new_data_key(&self, person: Uuid) -> (DataKey, Vec<u8>) {
        let key = DataKey {
            person,
            key: Aes256Gcm::generate_key(&mut OsRng).into(),
        };
        let wrapped = self.wrap(person, &key);
        (key, wrapped)
    }

    /// `key` wrapped for `person`: it unwraps only for that person, under this master key.
    pub fn wrap(&self, person: Uuid, key: &DataKey) -> Vec<u8> {
        seal_bytes(&self.cipher(), wrap_place(person), &key.key)
    }

    pub fn unwrap(&self, person: Uuid, wrapped: &[u8]) -> Result<DataKey, KeyError> {
        let bytes = open_bytes(&self.cipher(), wrap_place(person), wrapped)
            .map_err(|_| KeyError::Unwrap)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Unwrap)?;
        Ok(DataKey { person, key })
    }
}

fn wrap_place(person: Uuid) -> String {
    format!("data key of person-{person}")
}

/// One person's data key, in memory only.
#[derive(Clone)]
pub struct DataKey {
    person: Uuid,
    key: [u8; 32],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([secret])")
    }
}

/// Where a sealed value belongs: it opens only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    pub stream: &'a str,
    pub event: Uuid,
    pub field: &'a str,
}

impl Place<'_> {
    fn bytes(&self) -> Vec<u8> {
        format!("{}\u{0}{}\u{0}{}", self.stream, self.event, self.field).into_bytes()
    }
}

impl DataKey {
    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key))
    }

    /// `plain` sealed for `place`, as text that says whose key and which event it was sealed
    /// in: [`SEALED_PREFIX`] and, in base64, the person's id, the event's id, the nonce and the
    /// ciphertext.
    pub fn seal(&self, place: Place<'_>, plain: &str) -> String {
        let mut framed = Vec::with_capacity(2 * ID_LEN + NONCE_LEN + plain.len() + TAG_LEN);
        framed.extend_from_slice(self.person.as_bytes());
        framed.extend_from_slice(place.event.as_bytes());
        framed.extend(seal_bytes(&self.cipher(), place.bytes(), plain.as_bytes()));
        let mut sealed = String::with_capacity(SEALED_PREFIX.len() + framed.len() * 4 / 3 + 4);
        sealed.push_str(SEALED_PREFIX);
        BASE64.encode_string(&framed, &mut sealed);
        sealed
    }

    /// The value sealed in `stream`'s `field`; an error when it was altered, moved or sealed
    /// under another key.
    pub fn open(&self, stream: &str, field: &str, sealed: &str) -> Result<String, KeyError> {
        let (person, event, body) = parse_sealed(sealed)?;
        if person != self.person {
            return Err(KeyError::OtherPerson);
        }
        let place = Place {
            stream,
            event,
            field,
        };
        let plain = open_bytes(&self.cipher(), place.bytes(), &body)?;
        String::from_utf8(plain).map_err(|_| KeyError::Open)
    }
}

/// Whose key a sealed value needs.
pub fn sealed_for(sealed: &str) -> Result<Uuid, KeyError> {
    if let Some(rest) = sealed.strip_prefix(SEALED_PREFIX) {
        // The person's id is in the first 16 bytes: the first 24 characters of base64 hold 18.
        let head = rest.get(..24).ok_or(KeyError::Open)?;
        let bytes = BASE64.decode(head).map_err(|_| KeyError::Open)?;
        return Uuid::from_slice(&bytes[..ID_LEN]).map_err(|_| KeyError::Open);
    }
    parse_sealed(sealed).map(|(person, _, _)| person)
}

/// The person, the event and the nonce with the ciphertext of a sealed value, in either
/// stored form: the compact one sealed now, and the first,
/// `hwenc1:<person>:<event>:<base64 of nonce and ciphertext>`.
fn parse_sealed(sealed: &str) -> Result<(Uuid, Uuid, Vec<u8>), KeyError> {
    if let Some(rest) = sealed.strip_prefix(SEALED_PREFIX) {
        let mut ids = BASE64.decode(rest).map_err(|_| KeyError::Open)?;
        if ids.len() < 2 * ID_LEN + NONCE_LEN + TAG_LEN {
            return Err(KeyError::Open);
        }
        let body = ids.split_off(2 * ID_LEN);
        let (person, event) = ids.split_at(ID_LEN);
        let id = |bytes: &[u8]| Uuid::from_slice(bytes).map_err(|_| KeyError::Open);
        return Ok((id(person)?, id(event)?, body));
    }
    let rest = sealed
        .strip_prefix(FIRST_SEALED_PREFIX)
        .ok_or(KeyError::NotSealed)?;
    let mut parts = rest.splitn(3, ':');
    let mut id = || {
        parts
            .next()
            .and_then(|p| Uuid::parse_str(p).ok())
            .ok_or(KeyError::Open)
    };
    let person = id()?;
    let event = id()?;
    let body = parts.next().ok_or(KeyError::Open)?;
    let body = BASE64.decode(body).map_err(|_| KeyError::Open)?;
    Ok((person, event, body))
}

fn seal_bytes(cipher: &Aes256Gcm, aad: impl AsRef<[u8]>, plain: &[u8]) -> Vec<u8> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let mut out = nonce.to_vec();
    out.extend(
        cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: aad.as_ref(),
                },
            )
            .expect("AES-GCM seals any message shorter than 64 GiB"),
    );
    out
}

fn open_bytes(
    cipher: &Aes256Gcm,
    aad: impl AsRef<[u8]>,
    sealed: &[u8],
) -> Result<Vec<u8>, KeyError> {
    if sealed.len() < NONCE_LEN {
        return Err(KeyError::Open);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: aad.as_ref(),
            },
        )
        .map_err(|_| KeyError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(field: &str) -> Place<'_> {
        Place {
            stream: "person-1",
            event: Uuid::from_u128(1),
            field,
        }
    }

    /// `sealed` claiming another person or event.
    fn reframed(sealed: &str, person: Uuid, event: Uuid) -> String {
        let mut bytes = BASE64
            .decode(sealed.strip_prefix(SEALED_PREFIX).unwrap())
            .unwrap();
        bytes[..ID_LEN].copy_from_slice(person.as_bytes());
        bytes[ID_LEN..2 * ID_LEN].copy_from_slice(event.as_bytes());
        format!("{SEALED_PREFIX}{}", BASE64.encode(bytes))
    }

    #[test]
    fn values_sealed_in_the_first_form_still_open() {
        let person = Uuid::new_v4();
        let (key, _) = MasterKey::generate().new_data_key(person);
        let body = seal_bytes(&key.cipher(), place("note").bytes(), b"Needs a quiet room");
        let first = format!(
            "hwenc1:{person}:{}:{}",
            Uuid::from_u128(1),
            BASE64.encode(body)
        );
        assert_eq!(sealed_for(&first), Ok(person));
        assert_eq!(
            key.open("person-1", "note", &first).unwrap(),
            "Needs a quiet room"
        );
        assert_eq!(key.open("person-1", "phone", &first), Err(KeyError::Open));
        // The form sealed now is shorter: the ids as bytes, not as text.
        let now = key.seal(place("note"), "Needs a quiet room");
        assert!(now.len() + 30 <= first.len(), "{first} / {now}");
    }

    #[test]
    fn a_value_opens_where_it_was_sealed_and_nowhere_else() {
        let master = MasterKey::generate();
        let person = Uuid::new_v4();
        let (key, _) = master.new_data_key(person);
        let sealed = key.seal(place("full_name"), "Amina Example");
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("Amina"));
        assert_eq!(sealed_for(&sealed), Ok(person));
        assert_eq!(
            key.open("person-1", "full_name", &sealed).unwrap(),
            "Amina Example"
        );
        // Moved to another field, event or stream: refused.
        assert_eq!(
            key.open("person-1", "address", &sealed),
            Err(KeyError::Open)
        );
        assert_eq!(
            key.open("person-2", "full_name", &sealed),
            Err(KeyError::Open)
        );
        let other_event = reframed(&sealed, person, Uuid::from_u128(2));
        assert_eq!(
            key.open("person-1", "full_name", &other_event),
            Err(KeyError::Open)
        );
        // Another person's key: refused, whatever the value claims.
        let (other, _) = master.new_data_key(Uuid::new_v4());
        assert_eq!(
            other.open("person-1", "full_name", &sealed),
            Err(KeyError::OtherPerson)
        );
        let claimed = reframed(&sealed, other.person, Uuid::from_u128(1));
        assert_eq!(
            other.open("person-1", "full_name", &claimed),
            Err(KeyError::Open)
        );
        // Two seals of the same value differ (a fresh nonce each).
        assert_ne!(key.seal(place("full_name"), "Amina Example"), sealed);
    }

    #[test]
    fn an_altered_value_is_a_clear_error_never_garbage() {
        let (key, _) = MasterKey::generate().new_data_key(Uuid::new_v4());
        let sealed = key.seal(place("note"), "Needs a quiet room");
        let mut bytes: Vec<char> = sealed.chars().collect();
        let at = bytes.len() - 3;
        bytes[at] = if bytes[at] == 'A' { 'B' } else { 'A' };
        let altered: String = bytes.into_iter().collect();
        assert_eq!(key.open("person-1", "note", &altered), Err(KeyError::Open));
        for cut in ["hwenc1:", "hwenc2:", "hwenc2:AAAA", &sealed[..60]] {
            assert_eq!(
                key.open("person-1", "note", cut),
                Err(KeyError::Open),
                "{cut}"
            );
        }
        assert_eq!(sealed_for("hwenc2:AAAA"), Err(KeyError::Open));
        assert_eq!(
            key.open("person-1", "note", "plain"),
            Err(KeyError::NotSealed)
        );
    }

    #[test]
    fn a_data_key_unwraps_only_for_its_person_under_its_master_key() {
        let master = MasterKey::generate();
        let person = Uuid::new_v4();
        let (key, wrapped) = master.new_data_key(person);
        let unwrapped = master.unwrap(person, &wrapped).unwrap();
        let sealed = key.seal(place("phone"), "+234 800");
        assert_eq!(
            unwrapped.open("person-1", "phone", &sealed).unwrap(),
            "+234 800"
        );
        assert_eq!(
            master.unwrap(Uuid::new_v4(), &wrapped).err(),
            Some(KeyError::Unwrap)
        );
        assert_eq!(
            MasterKey::generate().unwrap(person, &wrapped).err(),
            Some(KeyError::Unwrap)
        );
        // Rotation: the same data key wrapped under a new master key.
        let next = MasterKey::generate();
        let rewrapped = next.wrap(person, &unwrapped);
        let again = next.unwrap(person, &rewrapped).unwrap();
        assert_eq!(
            again.open("person-1", "phone", &sealed).unwrap(),
            "+234 800"
        );
    }

    #[test]
    fn a_master_key_is_recognised_by_its_check_value_and_read_from_base64() {
        let master = MasterKey::generate();
        let same = MasterKey::from_base64(&format!(" {}\n", master.to_base64())).unwrap();
        assert_eq!(master.check_value(), same.check_value());
        assert_ne!(master.check_value(), MasterKey::generate().check_value());
        assert_eq!(
            MasterKey::from_base64("c2hvcnQ=").err(),
            Some(KeyError::MalformedMasterKey)
        );
        assert_eq!(
            MasterKey::from_base64("not base64!").err(),
            Some(KeyError::MalformedMasterKey)
        );
        assert!(!format!("{master:?}").contains(&master.to_base64()));
    }
}
