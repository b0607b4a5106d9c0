//! Secret newtypes: credentials that must never reach a log line, an error message or
//! `Debug` output. Their `Debug` and `Display` print `[redacted]`; the value is reachable
//! only through `expose()`, which makes every use greppable.

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret file that cannot be used: unreadable, or empty. Names the file, never its
/// content.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {what} from {file}: {message}")]
pub struct SecretFileError {
    pub what: &'static str,
    pub file: PathBuf,
    pub message: String,
}

/// Reads a secret file (wrap the text in its secret type), refusing an empty one.
pub fn read_file(what: &'static str, file: &Path) -> Result<String, SecretFileError> {
    let error = |message: String| SecretFileError {
        what,
        file: file.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| error(format!("{e}; check the path and that wisegate may read it")))?;
    if text.trim().is_empty() {
        return Err(error(format!("the file is empty: write {what} into it")));
    }
    Ok(text)
}

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value, trimming the surrounding white space that files and
            /// environment variables tend to carry.
            pub fn new(value: impl Into<String>) -> Self {
                let value = value.into();
                let trimmed = value.trim();
                if trimmed.len() == value.len() {
                    Self(value)
                } else {
                    Self(trimmed.to_owned())
                }
            }

            /// The secret itself: only for the wire or the token store.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
    };
}

secret_type!(
    /// An OAuth access token (user or client-credentials). Never assume its size or
    /// shape: Wise is moving these from UUIDs to JWTs.
    AccessToken
);
secret_type!(
    /// An OAuth refresh token: the lineage of the user's grant.
    RefreshToken
);
secret_type!(
    /// The OAuth client secret.
    ClientSecret
);
secret_type!(
    /// Wise's personal API token, the legacy credential.
    PersonalToken
);
secret_type!(
    /// A one-time OAuth authorization code.
    AuthorizationCode
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let token = AccessToken::new("  s3cr3t-value\n");
        assert_eq!(token.expose(), "s3cr3t-value");
        assert_eq!(format!("{token}"), "[redacted]");
        assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
        let secret = ClientSecret::new("abc");
        assert!(!format!("{secret:?} {secret}").contains("abc"));
    }

    #[test]
    fn a_secret_file_that_cannot_be_used_is_named_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("redis_password");
        let missing = read_file("the Redis password", &file)
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("cannot read the Redis password from"),
            "{missing}"
        );
        assert!(missing.contains("redis_password"), "{missing}");
        assert!(missing.contains("check the path"), "{missing}");
        std::fs::write(&file, " \n").unwrap();
        let empty = read_file("the Redis password", &file)
            .unwrap_err()
            .to_string();
        assert!(
            empty.contains("write the Redis password into it"),
            "{empty}"
        );
        std::fs::write(&file, "pw-value\n").unwrap();
        assert_eq!(
            read_file("the Redis password", &file).unwrap(),
            "pw-value\n"
        );
    }
}
