//! Which files a reload watches, and whether a file event concerns them: folders are
//! watched, not files (editors save by rename, Kubernetes swaps a `..data` symlink).

use crate::config::Config;
use notify::Watcher;
use std::path::{Path, PathBuf};

/// The files whose change triggers a reload, as (folder, file name) pairs.
pub(super) fn watched_files(config: &Config) -> Vec<(PathBuf, std::ffi::OsString)> {
    let mut files = vec![
        config.file.clone(),
        config.mtls.cert_file.clone(),
        config.mtls.key_file.clone(),
    ];
    files.extend(config.upstream.ca_file.clone());
    for account in config.accounts() {
        if let Some(personal) = account.personal_token {
            files.push(personal.token_file);
            files.extend(personal.sca_key_file);
        }
    }
    files
        .into_iter()
        .filter_map(|file| {
            let folder = match file.parent() {
                Some(folder) if !folder.as_os_str().is_empty() => folder.to_owned(),
                _ => PathBuf::from("."),
            };
            Some((folder, file.file_name()?.to_owned()))
        })
        .collect()
}

/// Whether a file event concerns one of `files` (or a Kubernetes `..data` swap).
pub(super) fn relevant(event: &notify::Event, files: &[(PathBuf, std::ffi::OsString)]) -> bool {
    // Reading the files (as a reload does) is no change.
    if matches!(event.kind, notify::EventKind::Access(_)) {
        return false;
    }
    event.paths.iter().any(|path| {
        let name = path.file_name().unwrap_or_default();
        name.to_string_lossy().starts_with("..") || files.iter().any(|(_, watched)| watched == name)
    })
}

/// Watches the folders of `files` that are not watched yet and stops watching the
/// others; `watched` is the folders watched so far.
pub(super) fn rewatch(
    watcher: &mut notify::RecommendedWatcher,
    watched: &mut Vec<PathBuf>,
    files: &[(PathBuf, std::ffi::OsString)],
) {
    let mut wanted: Vec<PathBuf> = files.iter().map(|(folder, _)| folder.clone()).collect();
    wanted.sort();
    wanted.dedup();
    for folder in watched.iter().filter(|f| !wanted.contains(f)) {
        let _ = watcher.unwatch(folder);
    }
    for folder in wanted.iter().filter(|f| !watched.contains(f)) {
        match watcher.watch(Path::new(folder), notify::RecursiveMode::NonRecursive) {
            Ok(()) => tracing::debug!(folder = %folder.display(), "watching for changes"),
            Err(error) => {
                tracing::error!(folder = %folder.display(), "cannot watch for changes: {error}")
            }
        }
    }
    *watched = wanted;
}
