//! The token file: where the OAuth lineage (refresh token, current access token) lives
//! between runs when one process owns it. A JSON file written atomically (temp file,
//! fsync, rename, fsync of the folder) with mode 0600, so a crash leaves either the old
//! tokens or the new ones. The temporary file is never a file or link someone else
//! planted (see `write_atomically`). (Several replicas share a lineage through
//! [`super::redis_store`] instead.) The file holds one JSON encoding of a [`TokenSet`]
//! (times in seconds); Redis holds its own (in milliseconds, for short-lived tokens):
//! two wire formats that stores already hold, so they stay two.

use super::error::StoreError;
use super::lineage::TokenSet;
use crate::secret::{AccessToken, RefreshToken};
use crate::timestamps::{from_unix_seconds, unix_seconds};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The on-disk shape; versioned so it can evolve.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredTokens {
    version: u32,
    access_token: String,
    access_token_expires_at: u64,
    refresh_token: Option<String>,
    refresh_token_expires_at: Option<u64>,
    profile_id: Option<String>,
    obtained_at: u64,
}

/// A token store in one file.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> FileStore {
        FileStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored tokens; `None` when the file does not exist yet.
    pub fn load(&self) -> Result<Option<TokenSet>, StoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(StoreError::Read {
                    file: self.path.clone(),
                    message: error.to_string(),
                })
            }
        };
        // serde_json's messages quote no input values, so no token can leak through them.
        let stored: StoredTokens =
            serde_json::from_str(&text).map_err(|error| StoreError::Corrupt {
                file: self.path.clone(),
                message: format!(
                    "line {} column {}: {:?}",
                    error.line(),
                    error.column(),
                    error.classify()
                ),
            })?;
        if stored.version != 1 || stored.access_token.is_empty() {
            return Err(StoreError::Corrupt {
                file: self.path.clone(),
                message: format!(
                    "unsupported version {} or empty access token",
                    stored.version
                ),
            });
        }
        Ok(Some(TokenSet {
            access_token: AccessToken::new(stored.access_token),
            expires_at: from_unix_seconds(stored.access_token_expires_at),
            refresh_token: stored.refresh_token.map(RefreshToken::new),
            refresh_token_expires_at: stored.refresh_token_expires_at.map(from_unix_seconds),
            profile_id: stored.profile_id,
            obtained_at: from_unix_seconds(stored.obtained_at),
        }))
    }

    /// Writes `tokens` atomically with mode 0600, creating the folder (0700) if needed.
    pub fn save(&self, tokens: &TokenSet) -> Result<(), StoreError> {
        let stored = StoredTokens {
            version: 1,
            access_token: tokens.access_token.expose().to_owned(),
            access_token_expires_at: unix_seconds(tokens.expires_at),
            refresh_token: tokens.refresh_token.as_ref().map(|t| t.expose().to_owned()),
            refresh_token_expires_at: tokens.refresh_token_expires_at.map(unix_seconds),
            profile_id: tokens.profile_id.clone(),
            obtained_at: unix_seconds(tokens.obtained_at),
        };
        let text = serde_json::to_vec_pretty(&stored).map_err(|error| self.write_error(&error))?;
        write_atomically(&self.path, &text).map_err(|error| self.write_error(&error))
    }

    fn write_error(&self, error: &dyn std::fmt::Display) -> StoreError {
        StoreError::Write {
            file: self.path.clone(),
            message: error.to_string(),
        }
    }
}

/// temp file in the same folder, fsync, rename over `path`, fsync the folder.
///
/// The temporary file gets a name nobody can guess and is created exclusively
/// (`O_CREAT|O_EXCL`, plus `O_NOFOLLOW`) with mode 0600: in a folder others can write, a
/// file or link planted at a predictable name would otherwise receive the tokens (a
/// link is followed by a plain create, and then renamed over the store).
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&folder)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = folder.join(format!(".{file_name}.{:032x}.tmp", rand::random::<u128>()));
    let mut file = create_private(&temp)?;
    // Only what this call created is removed on failure, never a file found there.
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(&folder)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// A new file only this user may read, never one (or a link) found at `path`.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> TokenSet {
        TokenSet {
            access_token: AccessToken::new("access-1"),
            expires_at: from_unix_seconds(2_000_000_000),
            refresh_token: Some(RefreshToken::new("refresh-1")),
            refresh_token_expires_at: Some(from_unix_seconds(2_100_000_000)),
            profile_id: Some("12345".into()),
            obtained_at: from_unix_seconds(1_900_000_000),
        }
    }

    #[test]
    fn round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state/tokens.json"));
        assert_eq!(store.load().unwrap(), None);
        store.save(&sample()).unwrap();
        assert_eq!(store.load().unwrap(), Some(sample()));
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_temporary_file_is_never_one_found_in_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "untouched").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        for planted in [&link, &dangling, &target] {
            let error = create_private(planted).unwrap_err();
            assert_eq!(
                error.kind(),
                std::io::ErrorKind::AlreadyExists,
                "{planted:?}"
            );
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        assert!(!dir.path().join("nowhere").exists());
        let fresh = dir.path().join("fresh");
        create_private(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn corrupt_store_names_the_file_and_leaks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, "{\"version\":1,\"access_token\":\"leaky-secret\",").unwrap();
        let error = FileStore::new(&path).load().unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("wisegate authorize"), "{error}");
        assert!(!error.contains("leaky-secret"), "{error}");
    }
}
