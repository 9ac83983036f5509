//! Webhook secrets at rest: sealed with AES-256-GCM under the deployment's data key
//! (docs/architecture.md §Secrets at rest).
//!
//! A sealed secret is the text `enc1.<data key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`, with a
//! random 96-bit nonce per sealing. Its associated data names its place (tenant, webhook, which
//! of the two secrets) and its key, so a sealed secret copied to another webhook, or from the
//! previous secret to the current one, does not open. Pure: the data key comes from the keyring
//! (`service::secrets`), which unwraps it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use uuid::Uuid;

/// The start of every sealed secret; the version of the format.
pub const SEALED_PREFIX: &str = "enc1.";
/// AES-256: a data key, and crm-local's main key, are this many bytes.
pub const KEY_BYTES: usize = 32;

/// An AES-256-GCM key. Its bytes never leave it (ring keeps them), and its `Debug` shows none.
pub struct CipherKey(LessSafeKey);

impl CipherKey {
    /// `None` unless `bytes` is 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Option<CipherKey> {
        UnboundKey::new(&AES_256_GCM, bytes)
            .ok()
            .map(|key| CipherKey(LessSafeKey::new(key)))
    }

    /// `nonce ‖ ciphertext ‖ tag` of `plain`, bound to `aad`, under a fresh random nonce.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut sealed = Vec::with_capacity(NONCE_LEN + plain.len() + AES_256_GCM.tag_len());
        sealed.extend_from_slice(&nonce);
        let mut in_out = plain.to_vec();
        // Fails only for inputs over 64 GiB.
        if self
            .0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut in_out,
            )
            .is_err()
        {
            return Vec::new();
        }
        sealed.extend_from_slice(&in_out);
        sealed
    }

    /// The plain bytes of what `seal` made with this key and `aad`; `None` for anything else:
    /// another key, other associated data, a changed byte, a short input.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .ok()?;
        Some(plain.to_vec())
    }
}

impl std::fmt::Debug for CipherKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CipherKey(..)")
    }
}

/// One data key of the deployment's keyring, unwrapped: its id (named in each secret it seals)
/// and its cipher.
#[derive(Debug)]
pub struct DataKey {
    pub id: u32,
    cipher: CipherKey,
}

impl DataKey {
    pub fn new(id: u32, cipher: CipherKey) -> DataKey {
        DataKey { id, cipher }
    }
}

/// A data key as the store keeps it: wrapped by the deployment's main key (KMS on AWS, crm-local's
/// main key), never in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedDataKey {
    pub id: u32,
    pub wrapped: Vec<u8>,
    /// Which main key wrapped it (`KeyWrapper::kind`), so that a process given another one says
    /// so instead of failing to unwrap.
    pub wrapped_by: String,
    pub created_at: DateTime<Utc>,
}

/// A webhook secret as a webhook holds it and the store keeps it.
#[derive(Clone, PartialEq, Eq)]
pub enum StoredSecret {
    /// `enc1.…`: how every write stores a secret.
    Sealed(String),
    /// `whsec_…` in the clear: a secret just made and not sealed yet, or one written before
    /// secrets were sealed, read as it is until the migration seals it.
    Plain(String),
}

impl StoredSecret {
    /// The stored text, read back: sealed if it has the sealed form's prefix.
    pub fn from_stored(text: String) -> StoredSecret {
        if text.starts_with(SEALED_PREFIX) {
            StoredSecret::Sealed(text)
        } else {
            StoredSecret::Plain(text)
        }
    }

    /// What the store writes.
    pub fn as_stored(&self) -> &str {
        match self {
            StoredSecret::Sealed(text) | StoredSecret::Plain(text) => text,
        }
    }

    pub fn is_sealed(&self) -> bool {
        matches!(self, StoredSecret::Sealed(_))
    }
}

/// A plain secret shows in no log line.
impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredSecret::Sealed(text) => f.debug_tuple("Sealed").field(text).finish(),
            StoredSecret::Plain(_) => f.write_str("Plain(..)"),
        }
    }
}

/// Which of a webhook's two secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSlot {
    Current,
    /// The rotated-out secret, during its overlap.
    Previous,
}

impl SecretSlot {
    fn as_str(self) -> &'static str {
        match self {
            SecretSlot::Current => "current",
            SecretSlot::Previous => "previous",
        }
    }
}

/// Where a secret is kept: what its sealing is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretPlace {
    pub tenant_id: Uuid,
    pub webhook_id: Uuid,
    pub slot: SecretSlot,
}

impl SecretPlace {
    fn associated_data(&self, key_id: u32) -> Vec<u8> {
        format!(
            "{SEALED_PREFIX}{key_id}|tenant={}|webhook={}|secret={}",
            self.tenant_id,
            self.webhook_id,
            self.slot.as_str()
        )
        .into_bytes()
    }
}

/// Why a sealed secret did not open. Never the caller's fault: the store holds something this
/// process cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the stored secret is not in the sealed form `enc1.<key id>.<data>`")]
    Malformed,
    #[error("the stored secret was sealed with data key {sealed_with}, not {given}")]
    OtherKey { sealed_with: u32, given: u32 },
    #[error("the stored secret does not open with its data key here (altered, or moved from another place)")]
    Unopenable,
}

/// `plain` sealed under `key` for `place`.
pub fn seal(key: &DataKey, place: &SecretPlace, plain: &str) -> String {
    let sealed = key
        .cipher
        .seal(&place.associated_data(key.id), plain.as_bytes());
    format!(
        "{SEALED_PREFIX}{}.{}",
        key.id,
        URL_SAFE_NO_PAD.encode(sealed)
    )
}

/// The id of the data key that sealed `sealed`.
pub fn sealing_key_id(sealed: &str) -> Result<u32, OpenError> {
    parse(sealed).map(|(id, _)| id)
}

fn parse(sealed: &str) -> Result<(u32, Vec<u8>), OpenError> {
    let rest = sealed
        .strip_prefix(SEALED_PREFIX)
        .ok_or(OpenError::Malformed)?;
    let (id, data) = rest.split_once('.').ok_or(OpenError::Malformed)?;
    let id = id.parse().map_err(|_| OpenError::Malformed)?;
    let data = URL_SAFE_NO_PAD
        .decode(data)
        .map_err(|_| OpenError::Malformed)?;
    Ok((id, data))
}

/// The plain secret `sealed` holds, if `key` sealed it for `place`.
pub fn open(key: &DataKey, place: &SecretPlace, sealed: &str) -> Result<String, OpenError> {
    let (id, data) = parse(sealed)?;
    if id != key.id {
        return Err(OpenError::OtherKey {
            sealed_with: id,
            given: key.id,
        });
    }
    let plain = key
        .cipher
        .open(&place.associated_data(id), &data)
        .ok_or(OpenError::Unopenable)?;
    String::from_utf8(plain).map_err(|_| OpenError::Unopenable)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn key(id: u32, byte: u8) -> DataKey {
        DataKey::new(id, CipherKey::from_bytes(&[byte; KEY_BYTES]).unwrap())
    }

    fn place(slot: SecretSlot) -> SecretPlace {
        SecretPlace {
            tenant_id: Uuid::from_u128(1),
            webhook_id: Uuid::from_u128(2),
            slot,
        }
    }

    #[test]
    fn a_sealed_secret_opens_to_itself_and_shows_nothing_of_it() {
        let key = key(1, 7);
        let sealed = seal(&key, &place(SecretSlot::Current), SECRET);
        assert!(sealed.starts_with("enc1.1."), "{sealed}");
        assert!(!sealed.contains("whsec_") && !sealed.contains(&SECRET[6..]));
        assert_eq!(sealing_key_id(&sealed), Ok(1));
        assert_eq!(
            open(&key, &place(SecretSlot::Current), &sealed).as_deref(),
            Ok(SECRET)
        );
    }

    #[test]
    fn each_sealing_takes_a_new_nonce() {
        let key = key(1, 7);
        let a = seal(&key, &place(SecretSlot::Current), SECRET);
        let b = seal(&key, &place(SecretSlot::Current), SECRET);
        assert_ne!(a, b);
    }

    #[test]
    fn a_changed_byte_anywhere_does_not_open() {
        let key = key(1, 7);
        let at = place(SecretSlot::Current);
        let sealed = seal(&key, &at, SECRET);
        let (_, data) = parse(&sealed).unwrap();
        for index in 0..data.len() {
            let mut altered = data.clone();
            altered[index] ^= 0x01;
            let text = format!("enc1.1.{}", URL_SAFE_NO_PAD.encode(&altered));
            assert_eq!(
                open(&key, &at, &text),
                Err(OpenError::Unopenable),
                "{index}"
            );
        }
        let mut shortened = data.clone();
        shortened.pop();
        let text = format!("enc1.1.{}", URL_SAFE_NO_PAD.encode(&shortened));
        assert_eq!(open(&key, &at, &text), Err(OpenError::Unopenable));
    }

    #[test]
    fn a_secret_moved_to_another_place_does_not_open() {
        let key = key(1, 7);
        let sealed = seal(&key, &place(SecretSlot::Current), SECRET);
        let others = [
            place(SecretSlot::Previous),
            SecretPlace {
                webhook_id: Uuid::from_u128(3),
                ..place(SecretSlot::Current)
            },
            SecretPlace {
                tenant_id: Uuid::from_u128(4),
                ..place(SecretSlot::Current)
            },
        ];
        for other in others {
            assert_eq!(
                open(&key, &other, &sealed),
                Err(OpenError::Unopenable),
                "{other:?}"
            );
        }
    }

    #[test]
    fn another_key_does_not_open_it() {
        let sealed = seal(&key(1, 7), &place(SecretSlot::Current), SECRET);
        assert_eq!(
            open(&key(1, 8), &place(SecretSlot::Current), &sealed),
            Err(OpenError::Unopenable)
        );
        assert_eq!(
            open(&key(2, 7), &place(SecretSlot::Current), &sealed),
            Err(OpenError::OtherKey {
                sealed_with: 1,
                given: 2
            })
        );
        // The id in the text is bound too: renamed, it names a key that did not seal it.
        let renamed = sealed.replacen("enc1.1.", "enc1.2.", 1);
        assert_eq!(
            open(&key(2, 7), &place(SecretSlot::Current), &renamed),
            Err(OpenError::Unopenable)
        );
    }

    #[test]
    fn malformed_texts_are_errors_not_panics() {
        let key = key(1, 7);
        let at = place(SecretSlot::Current);
        for text in [
            "",
            SECRET,
            "enc1.",
            "enc1.1",
            "enc1.x.AAAA",
            "enc1.1.!!!",
            "enc1.-1.AAAA",
            "enc1.99999999999.AAAA",
            "enc1.1.",
            "enc1.1.AAAA",
        ] {
            assert!(open(&key, &at, text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_stored_text_is_sealed_only_in_the_sealed_form() {
        let sealed = seal(&key(1, 7), &place(SecretSlot::Current), SECRET);
        assert!(StoredSecret::from_stored(sealed.clone()).is_sealed());
        assert!(!StoredSecret::from_stored(SECRET.to_owned()).is_sealed());
        assert_eq!(
            StoredSecret::from_stored(sealed.clone()).as_stored(),
            sealed
        );
        assert_eq!(
            format!("{:?}", StoredSecret::Plain(SECRET.to_owned())),
            "Plain(..)"
        );
    }

    #[test]
    fn a_cipher_key_is_32_bytes() {
        assert!(CipherKey::from_bytes(&[0; 31]).is_none());
        assert!(CipherKey::from_bytes(&[0; 33]).is_none());
        assert!(CipherKey::from_bytes(&[0; 32]).is_some());
        assert_eq!(
            format!("{:?}", key(1, 7)),
            "DataKey { id: 1, cipher: CipherKey(..) }"
        );
    }
}
