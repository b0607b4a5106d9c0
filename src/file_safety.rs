//! Permissions that expose a credential: a file holding one (client secret, client key,
//! personal token, SCA key, refresh token seed, Redis password, the token store) that
//! group or others may read or write, and a token store folder that group or others may
//! write without the sticky bit (whoever can write there can replace or delete the
//! store). `run` logs each at start and `check` lists each, naming the file and the
//! command that fixes it. Neither refuses: a sidecar that will not start over a mode
//! stops payments, while the fix is one `chmod` away and now in the log.
//!
//! Two layouts are not flagged, because their group is how wisegate reads the file:
//! a file another user owns that only its group may read (`root:wisegate 0640`), and a
//! Kubernetes Secret mounted for the pod's `fsGroup` (root-owned, 0440). A Kubernetes
//! Secret that others may read (0644, the default without `defaultMode`) is flagged, with
//! `defaultMode: 0400` as the fix since `chmod` cannot change a mounted Secret.

use crate::config::{Config, SecretSource, TokenStoreConfig};
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Group and others may read, write or search.
const GROUP_BITS: u32 = 0o070;
const OTHER_BITS: u32 = 0o007;
const STICKY: u32 = 0o1000;

/// A file or folder whose permissions expose a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exposure {
    /// A credential file that group or others may read or write.
    File {
        what: &'static str,
        file: PathBuf,
        /// The permission bits (`st_mode & 0o7777`).
        mode: u32,
        /// The bits flagged (group and others, or others only).
        open: u32,
        fix: Fix,
    },
    /// The token store's folder: group or others may write it, no sticky bit.
    StoreFolder { folder: PathBuf, mode: u32 },
}

/// How an exposed file is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// wisegate's user owns it: `chmod 600`.
    Chmod,
    /// Another user owns it.
    ChmodAsOwner { uid: u32 },
    /// A Kubernetes Secret volume: `defaultMode`.
    KubernetesVolume,
}

impl fmt::Display for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exposure::File {
                what,
                file,
                mode,
                open,
                fix,
            } => {
                let file = file.display();
                write!(f, "{what} {file} is {} (mode {mode:04o}): ", access(*open))?;
                match fix {
                    Fix::Chmod => write!(f, "run `chmod 600 {file}`"),
                    Fix::ChmodAsOwner { uid } => write!(
                        f,
                        "run `chmod 600 {file}` as its owner (uid {uid}), or `chmod 640 {file}` if wisegate reads it through its group"
                    ),
                    Fix::KubernetesVolume => write!(
                        f,
                        "it is on a Kubernetes Secret volume, 0644 unless the volume sets `defaultMode: 0400` (the wisegate chart does): set that (`chmod 600 {file}` cannot change a mounted Secret)"
                    ),
                }
            }
            Exposure::StoreFolder { folder, mode } => {
                let folder = folder.display();
                write!(
                    f,
                    "the token store's folder {folder} is {} without the sticky bit (mode {mode:04o}): whoever can write there can replace or delete the tokens; run `chmod 700 {folder}`, or point oauth.token_store at a subfolder (wisegate creates it with mode 0700)",
                    access(mode & 0o022)
                )
            }
        }
    }
}

/// "readable by group and others", "writable by others", ...
fn access(bits: u32) -> String {
    let mut how = Vec::new();
    if bits & 0o044 != 0 {
        how.push("readable");
    }
    if bits & 0o022 != 0 {
        how.push("writable");
    }
    if how.is_empty() {
        how.push("searchable");
    }
    let who = match (bits & GROUP_BITS != 0, bits & OTHER_BITS != 0) {
        (true, true) => "group and others",
        (true, false) => "group",
        _ => "others",
    };
    format!("{} by {who}", how.join(" and "))
}

/// The credential files `config` names, with what each holds.
pub fn credential_files(config: &Config) -> Vec<(&'static str, PathBuf)> {
    let mut files = vec![("the client key", config.mtls.key_file.clone())];
    if let SecretSource::File(file) = &config.oauth.client_secret {
        files.push(("the client secret", file.clone()));
    }
    for account in config.accounts() {
        if let Some(personal) = account.personal_token {
            files.push(("the personal token", personal.token_file));
            files.extend(
                personal
                    .sca_key_file
                    .map(|key| ("the SCA signing key", key)),
            );
        }
        if let Some(seed) = account.refresh_token_file {
            files.push(("the refresh token seed", seed));
        }
        match account.token_store {
            TokenStoreConfig::File(store) => files.push(("the token store", store)),
            TokenStoreConfig::Redis(redis) => {
                files.extend(redis.password_file.map(|p| ("the Redis password", p)));
                files.extend(
                    (redis.sentinel_password_file).map(|p| ("the Redis Sentinel password", p)),
                );
            }
        }
    }
    files.dedup();
    files
}

/// Every exposed credential file and, for a file store, its folder. Files that do not
/// exist (yet) are left to the checks that need them.
pub fn exposures(config: &Config) -> Vec<Exposure> {
    let mut found: Vec<Exposure> = credential_files(config)
        .into_iter()
        .filter_map(|(what, file)| file_exposure(what, &file))
        .collect();
    for account in config.accounts() {
        if let Some(store) = account.token_store.file() {
            found.extend(store_folder_exposure(store));
        }
    }
    found
}

/// Logs each exposure (`run`, at start): a warning for a file, an error for the store's
/// folder (the tokens can be replaced).
pub fn warn(config: &Config) {
    for exposure in exposures(config) {
        match exposure {
            Exposure::File { .. } => tracing::warn!("{exposure}"),
            Exposure::StoreFolder { .. } => tracing::error!("{exposure}"),
        }
    }
}

/// Whether `file`'s permissions expose it (see the module doc for what is not flagged).
pub fn file_exposure(what: &'static str, file: &Path) -> Option<Exposure> {
    let metadata = std::fs::metadata(file).ok()?;
    let mode = metadata.mode() & 0o7777;
    let ours = metadata.uid() == rustix::process::geteuid().as_raw();
    // Another owner's group is how wisegate reads the file; its own never needs to.
    let open = if ours {
        mode & (GROUP_BITS | OTHER_BITS)
    } else {
        mode & OTHER_BITS
    };
    if open == 0 {
        return None;
    }
    let fix = if in_kubernetes_volume(file) {
        Fix::KubernetesVolume
    } else if ours {
        Fix::Chmod
    } else {
        Fix::ChmodAsOwner {
            uid: metadata.uid(),
        }
    };
    Some(Exposure::File {
        what,
        file: file.to_owned(),
        mode,
        open,
        fix,
    })
}

/// Whether the folder of the token store `store` lets group or others replace it.
pub fn store_folder_exposure(store: &Path) -> Option<Exposure> {
    let folder = match store.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let mode = std::fs::metadata(folder).ok()?.mode() & 0o7777;
    let writable = mode & 0o022 != 0;
    (writable && mode & STICKY == 0).then(|| Exposure::StoreFolder {
        folder: folder.to_owned(),
        mode,
    })
}

/// Kubernetes mounts Secret and ConfigMap volumes as a folder whose files are links
/// through a `..data` link (swapped atomically on update).
fn in_kubernetes_volume(file: &Path) -> bool {
    file.parent()
        .and_then(|folder| std::fs::symlink_metadata(folder.join("..data")).ok())
        .is_some_and(|data| data.file_type().is_symlink())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn an_own_file_is_flagged_for_group_or_others_with_the_chmod_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client_secret");
        std::fs::write(&file, "s3cr3t").unwrap();
        chmod(&file, 0o600);
        assert_eq!(file_exposure("the client secret", &file), None);
        for (mode, access) in [
            (0o644, "readable by group and others"),
            (0o640, "readable by group"),
            (0o602, "writable by others"),
        ] {
            chmod(&file, mode);
            let message = file_exposure("the client secret", &file)
                .unwrap()
                .to_string();
            assert!(message.contains(access), "{message}");
            assert!(
                message.contains(&format!("chmod 600 {}", file.display())),
                "{message}"
            );
            assert!(!message.contains("s3cr3t"), "{message}");
        }
    }

    #[test]
    fn a_kubernetes_secret_volume_is_told_to_set_default_mode() {
        let dir = tempfile::tempdir().unwrap();
        // The layout kubelet makes: file -> ..data/file, ..data -> ..<timestamp>.
        let real = dir.path().join("..2026_12_01");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("tls.key"), "key").unwrap();
        std::os::unix::fs::symlink("..2026_12_01", dir.path().join("..data")).unwrap();
        let key = dir.path().join("tls.key");
        std::os::unix::fs::symlink("..data/tls.key", &key).unwrap();
        chmod(&real.join("tls.key"), 0o644);
        let message = file_exposure("the client key", &key).unwrap().to_string();
        assert!(message.contains("defaultMode: 0400"), "{message}");
        chmod(&real.join("tls.key"), 0o400);
        assert_eq!(file_exposure("the client key", &key), None);
    }

    #[test]
    fn a_store_folder_others_can_write_is_flagged_unless_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("tokens.json");
        assert_eq!(store_folder_exposure(&store), None, "tempdir is 0700");
        chmod(dir.path(), 0o777);
        let message = store_folder_exposure(&store).unwrap().to_string();
        assert!(
            message.contains("writable by group and others without the sticky bit"),
            "{message}"
        );
        assert!(
            message.contains(&format!("chmod 700 {}", dir.path().display())),
            "{message}"
        );
        chmod(dir.path(), 0o1777);
        assert_eq!(store_folder_exposure(&store), None, "sticky, like /tmp");
        chmod(dir.path(), 0o700);
    }
}
