//! crm-local's main key (`KeyWrapper`): the data keys are wrapped with it (AES-256-GCM), as KMS
//! wraps them on AWS. It comes from `CRM_MASTER_KEY` (32 bytes, base64 or hex), or else from
//! `master.key` in the data directory, made there once with mode 0600. docs/architecture.md
//! §Secrets at rest.

use std::io::Write as _;
use std::path::Path;

use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::RngCore;

use crate::domain::sealed_secret::{CipherKey, KEY_BYTES};
use crate::error::{Error, Result};
use crate::ports::{KeyWrapper, NewDataKey};

pub const MAIN_KEY_VAR: &str = "CRM_MASTER_KEY";
/// The main key's file in the data directory, when `CRM_MASTER_KEY` is not set.
pub const MAIN_KEY_FILE: &str = "master.key";
/// What a wrapped data key is bound to, so that nothing else sealed with the main key passes
/// for one.
const WRAPPED_DATA_KEY: &[u8] = b"crm-webhooks data key";

/// 32 bytes; its `Debug` shows none of them.
#[derive(Clone, PartialEq, Eq)]
pub struct MainKey([u8; KEY_BYTES]);

impl std::fmt::Debug for MainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MainKey(..)")
    }
}

impl MainKey {
    /// A new random key: for a process whose secrets live no longer than it (a bench, a test).
    pub fn random() -> MainKey {
        let mut bytes = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        MainKey(bytes)
    }

    /// 32 bytes written in base64 (standard or URL-safe, padded or not) or in hex; `None` for
    /// anything else.
    pub fn parse(text: &str) -> Option<MainKey> {
        let text = text.trim();
        let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .filter(|bytes| bytes.len() == KEY_BYTES)
            .or_else(|| hex::decode(text).ok());
        decoded
            .and_then(|bytes| <[u8; KEY_BYTES]>::try_from(bytes).ok())
            .map(MainKey)
    }

    /// The key in `path`, made there (0600, base64) if there is none. A file that others may
    /// read, or that does not hold a key, is refused: the process does not start.
    pub fn from_file(path: &Path) -> Result<MainKey> {
        let refused = |why: String| Error::internal(format!("{}: {why}", path.display()));
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path).map_err(refused)?;
                MainKey::parse(&text).ok_or_else(|| {
                    refused("does not hold a main key (32 bytes, base64 or hex)".to_owned())
                })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                make_key_file(path).map_err(|error| refused(error.to_string()))
            }
            Err(error) => Err(refused(error.to_string())),
        }
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|error| error.to_string())?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "others may read the main key (mode {:o}); run `chmod 600 {}`",
            mode & 0o777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> std::result::Result<(), String> {
    Ok(())
}

/// A new random key, written to a file made for it alone (0600). Two processes starting at
/// once: the second finds the file made and reads it.
fn make_key_file(path: &Path) -> std::io::Result<MainKey> {
    let mut bytes = [0u8; KEY_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            writeln!(file, "{}", STANDARD.encode(bytes))?;
            file.sync_all()?;
            Ok(MainKey(bytes))
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path)?;
            MainKey::parse(&text).ok_or_else(|| {
                std::io::Error::other("made by another process, and holds no main key")
            })
        }
        Err(error) => Err(error),
    }
}

/// Wraps data keys with crm-local's main key.
pub struct MainKeyWrapper(CipherKey);

impl MainKeyWrapper {
    pub fn new(key: &MainKey) -> Result<MainKeyWrapper> {
        CipherKey::from_bytes(&key.0)
            .map(MainKeyWrapper)
            .ok_or_else(|| Error::internal("the main key is not an AES-256 key"))
    }
}

#[async_trait]
impl KeyWrapper for MainKeyWrapper {
    fn kind(&self) -> &'static str {
        "main-key"
    }

    async fn generate_data_key(&self) -> Result<NewDataKey> {
        let mut plain = vec![0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut plain);
        let wrapped = self.0.seal(WRAPPED_DATA_KEY, &plain);
        Ok(NewDataKey { plain, wrapped })
    }

    async fn unwrap_data_key(&self, wrapped: &[u8]) -> Result<Vec<u8>> {
        self.0.open(WRAPPED_DATA_KEY, wrapped).ok_or_else(|| {
            Error::internal(format!(
                "the data key does not unwrap with this main key: is {MAIN_KEY_VAR} (or \
                 {MAIN_KEY_FILE}) the one the store's secrets were sealed under?"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_main_key_is_32_bytes_in_base64_or_hex() {
        let bytes = [7u8; KEY_BYTES];
        for text in [
            STANDARD.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
            hex::encode(bytes),
            format!("  {}\n", STANDARD.encode(bytes)),
        ] {
            assert_eq!(MainKey::parse(&text), Some(MainKey(bytes)), "{text}");
        }
        for text in [
            String::new(),
            "secret".to_owned(),
            STANDARD.encode([7u8; 31]),
            STANDARD.encode([7u8; 33]),
            hex::encode([7u8; 16]),
            format!("{}zz", hex::encode([7u8; 31])),
        ] {
            assert_eq!(MainKey::parse(&text), None, "{text}");
        }
        assert_eq!(format!("{:?}", MainKey(bytes)), "MainKey(..)");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_is_made_once_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join(MAIN_KEY_FILE);
        let made = MainKey::from_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            MainKey::from_file(&path).unwrap(),
            made,
            "read, not made again"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MAIN_KEY_FILE);
        MainKey::from_file(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = MainKey::from_file(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "not a key").unwrap();
        let error = MainKey::from_file(&path).unwrap_err().to_string();
        assert!(error.contains("does not hold a main key"), "{error}");
    }

    #[tokio::test]
    async fn a_data_key_unwraps_only_with_its_main_key() {
        let wrapper = MainKeyWrapper::new(&MainKey([1; KEY_BYTES])).unwrap();
        let new = wrapper.generate_data_key().await.unwrap();
        assert_eq!(new.plain.len(), KEY_BYTES);
        assert!(!new
            .wrapped
            .windows(KEY_BYTES)
            .any(|window| window == new.plain));
        assert_eq!(
            wrapper.unwrap_data_key(&new.wrapped).await.unwrap(),
            new.plain
        );
        let other = MainKeyWrapper::new(&MainKey([2; KEY_BYTES])).unwrap();
        let error = other.unwrap_data_key(&new.wrapped).await.unwrap_err();
        assert!(error.to_string().contains(MAIN_KEY_VAR), "{error}");
        let mut altered = new.wrapped.clone();
        altered[20] ^= 1;
        assert!(wrapper.unwrap_data_key(&altered).await.is_err());
    }
}
