//! The token file: where the OAuth lineage (refresh token, current access token) lives
//! between runs when one process owns it. A JSON file written atomically (temp file,
//! fsync, rename, fsync of the folder) with mode 0600, so a crash leaves either the old
//! tokens or the new ones. The temporary file is never a file or link someone else
//! planted (see `write_atomically`). (Several replicas share a lineage through
//! [`super::redis_store`] instead.)
//!
//! The file holds the encoding Redis holds ([`StoredTokens`], times in milliseconds).
//! Files written by earlier releases, whose times are in seconds
//! ([`TokensInSeconds`]), are still read; the next save writes the current encoding,
//! which those releases cannot read (see docs/operations.md on downgrading).

use super::error::StoreError;
use super::lineage::TokenSet;
use super::stored_tokens::StoredTokens;
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file as releases before the shared encoding wrote it: version 1, times in whole
/// seconds. Read only.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensInSeconds {
    version: u32,
    access_token: String,
    access_token_expires_at: u64,
    refresh_token: Option<String>,
    refresh_token_expires_at: Option<u64>,
    profile_id: Option<String>,
    obtained_at: u64,
}

impl TokensInSeconds {
    /// The field only this shape has, to tell which one a file is meant to be.
    const MARK: &'static str = "\"access_token_expires_at\"";

    fn into_stored(self) -> StoredTokens {
        let millis = |seconds: u64| seconds.saturating_mul(1000);
        StoredTokens {
            version: self.version,
            access_token: self.access_token,
            access_token_expires_at_ms: millis(self.access_token_expires_at),
            refresh_token: self.refresh_token,
            refresh_token_expires_at_ms: self.refresh_token_expires_at.map(millis),
            profile_id: self.profile_id,
            obtained_at_ms: millis(self.obtained_at),
        }
    }
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
        let corrupt = |message: String| StoreError::Corrupt {
            file: self.path.clone(),
            message,
        };
        let stored = parse(&text).map_err(|error| {
            // serde_json's messages quote no input values, so no token can leak through them.
            corrupt(format!(
                "line {} column {}: {:?}",
                error.line(),
                error.column(),
                error.classify()
            ))
        })?;
        stored.into_tokens().map(Some).map_err(corrupt)
    }

    /// Writes `tokens` atomically with mode 0600, creating the folder (0700) if needed.
    pub fn save(&self, tokens: &TokenSet) -> Result<(), StoreError> {
        let stored = StoredTokens::new(tokens);
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

/// The file's tokens, in the current encoding or, when the file names the time field
/// in seconds, in that one (so that an error is that of the shape the file is meant to be).
fn parse(text: &str) -> Result<StoredTokens, serde_json::Error> {
    if text.contains(TokensInSeconds::MARK) {
        return serde_json::from_str::<TokensInSeconds>(text).map(TokensInSeconds::into_stored);
    }
    serde_json::from_str(text)
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
    use crate::secret::{AccessToken, RefreshToken};
    use crate::timestamps::{from_unix_millis, from_unix_seconds};
    use std::os::unix::fs::PermissionsExt;

    /// A token file as the release before the shared encoding wrote it (by its own
    /// `FileStore::save`).
    const FILE_IN_SECONDS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/token_store_v1_seconds.json"
    );

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

    #[test]
    fn a_file_in_seconds_from_an_earlier_release_is_read_with_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::copy(FILE_IN_SECONDS, &path).unwrap();
        let store = FileStore::new(&path);
        let expected = TokenSet {
            access_token: AccessToken::new("fixture-access-token"),
            expires_at: from_unix_seconds(2_000_000_000),
            refresh_token: Some(RefreshToken::new("fixture-refresh-token")),
            refresh_token_expires_at: Some(from_unix_seconds(2_100_000_000)),
            profile_id: Some("12345".into()),
            obtained_at: from_unix_seconds(1_999_990_000),
        };
        assert_eq!(store.load().unwrap(), Some(expected.clone()));
        // The next save writes the current encoding, with the same tokens.
        store.save(&expected).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"access_token_expires_at_ms\": 2000000000000"),
            "{text}"
        );
        assert_eq!(store.load().unwrap(), Some(expected));
    }

    #[test]
    fn the_file_holds_the_encoding_redis_holds_to_the_millisecond() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("tokens.json"));
        let tokens = TokenSet {
            expires_at: from_unix_millis(2_000_000_000_123),
            refresh_token_expires_at: None,
            obtained_at: from_unix_millis(1_999_999_998_456),
            ..sample()
        };
        store.save(&tokens).unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(store.path()).unwrap()).unwrap();
        let shared = serde_json::to_value(StoredTokens::new(&tokens)).unwrap();
        assert_eq!(written, shared);
        assert_eq!(written["version"], 1);
        assert_eq!(store.load().unwrap(), Some(tokens));
    }

    #[test]
    fn a_corrupt_file_in_seconds_names_the_file_its_line_and_leaks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let text = std::fs::read_to_string(FILE_IN_SECONDS)
            .unwrap()
            .replace("2000000000", "\"leaky-secret\"");
        std::fs::write(&path, text).unwrap();
        let error = FileStore::new(&path).load().unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("line 4 column"), "{error}");
        assert!(!error.contains("leaky-secret"), "{error}");
        assert!(!error.contains("fixture-access-token"), "{error}");
    }
}
