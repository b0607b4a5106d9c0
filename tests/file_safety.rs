//! Files that would hand credentials to someone else: a link planted where the token
//! store writes its temporary file is not followed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use wisegate::secret::{AccessToken, RefreshToken};
use wisegate::token::{FileStore, TokenSet};

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn tokens(access: &str) -> TokenSet {
    let now = SystemTime::now();
    TokenSet {
        access_token: AccessToken::new(access),
        expires_at: now + Duration::from_secs(3600),
        refresh_token: Some(RefreshToken::new("refresh-secret")),
        refresh_token_expires_at: None,
        profile_id: None,
        obtained_at: now,
    }
}

/// The attack: in a folder others can write, links at the temporary file's name (it
/// was `.tokens.json.<pid>.tmp`) and at the store itself, pointing into a folder of the
/// attacker's. Neither is followed; the attacker's files stay as they were.
#[test]
fn a_link_planted_at_the_temporary_path_is_not_followed() {
    let shared = tempfile::tempdir().unwrap();
    let attacker = tempfile::tempdir().unwrap();
    chmod(shared.path(), 0o1777);
    let store_path = shared.path().join("tokens.json");
    let stolen = attacker.path().join("stolen");
    std::fs::write(&stolen, "attacker's file\n").unwrap();
    let not_yet = attacker.path().join("created-by-wisegate");
    let planted = shared
        .path()
        .join(format!(".tokens.json.{}.tmp", std::process::id()));
    std::os::unix::fs::symlink(&stolen, &planted).unwrap();

    let store = FileStore::new(&store_path);
    store.save(&tokens("access-secret-1")).unwrap();
    // A dangling link at the store's own name: replaced, not followed.
    std::fs::remove_file(&store_path).unwrap();
    std::os::unix::fs::symlink(&not_yet, &store_path).unwrap();
    store.save(&tokens("access-secret-2")).unwrap();

    assert_eq!(
        std::fs::read_to_string(&stolen).unwrap(),
        "attacker's file\n",
        "the link's target received nothing"
    );
    assert!(!not_yet.exists(), "no file was created through a link");
    let metadata = std::fs::symlink_metadata(&store_path).unwrap();
    assert!(metadata.file_type().is_file(), "the store is a file");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        store.load().unwrap().unwrap().access_token.expose(),
        "access-secret-2"
    );
    assert!(
        std::fs::symlink_metadata(&planted).is_ok_and(|m| m.file_type().is_symlink()),
        "the planted link is left alone"
    );
    let leftovers: Vec<PathBuf> = std::fs::read_dir(shared.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| *path != planted && *path != store_path)
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary file left: {leftovers:?}"
    );
}
