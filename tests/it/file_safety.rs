//! Files that would hand credentials to someone else: a link planted where the token
//! store writes its temporary file is not followed, and credential files (or the store's
//! folder) that others may read or write are named, with the command that fixes each,
//! by `check` and at the start of `run`.

use crate::common;

use common::{authorize_with_code, Harness};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, BufReader};
use wisegate::config::Config;
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

/// A setup whose every credential file others may read, and whose token store folder
/// others may write; returns the config file and the files.
async fn too_open_setup() -> (common::Setup, Vec<(&'static str, PathBuf)>) {
    let setup = Harness::builder().setup().await;
    authorize_with_code(&Config::load(&setup.config_path).unwrap(), &setup.wise).await;
    let dir = setup.dir.path();
    std::fs::write(dir.join("refresh_token"), "seed-refresh-secret\n").unwrap();
    let text = std::fs::read_to_string(&setup.config_path)
        .unwrap()
        .replace(
            "[oauth]\n",
            "[oauth]\nrefresh_token_file = \"refresh_token\"\n",
        );
    std::fs::write(&setup.config_path, text).unwrap();
    let files = vec![
        ("the client key", dir.join("client.key")),
        ("the client secret", dir.join("client_secret")),
        ("the personal token", dir.join("personal_token")),
        ("the refresh token seed", dir.join("refresh_token")),
        ("the token store", dir.join("state/tokens.json")),
    ];
    for (_, file) in &files {
        chmod(file, 0o644);
    }
    chmod(&dir.join("state"), 0o777);
    (setup, files)
}

async fn check(config: &Path) -> (Option<i32>, String) {
    common::wisegate_output(&["check".as_ref(), "--config".as_ref(), config.as_os_str()]).await
}

fn expected(what: &str, file: &Path) -> String {
    format!(
        "{what} {} is readable by group and others (mode 0644): run `chmod 600 {}`",
        file.display(),
        file.display()
    )
}

fn folder_expected(folder: &Path) -> String {
    format!(
        "the token store's folder {} is writable by group and others without the sticky bit (mode 0777)",
        folder.display()
    )
}

#[tokio::test]
async fn check_names_each_too_open_file_and_the_chmod_to_run() {
    let (setup, files) = too_open_setup().await;
    let (code, text) = check(&setup.config_path).await;
    for (what, file) in &files {
        assert!(
            text.contains(&format!("warn  {}", expected(what, file))),
            "{what}: {text}"
        );
    }
    let folder = setup.dir.path().join("state");
    assert!(
        text.contains(&format!("warn  {}", folder_expected(&folder))),
        "{text}"
    );
    let client_secret = setup.wise.config().client_secret.clone();
    assert!(
        !text.contains(&client_secret) && !text.contains("seed-refresh-secret"),
        "{text}"
    );
    // Warnings, not failures: `run` serves with these too (and says so).
    assert_eq!(code, Some(0), "{text}");

    for (_, file) in &files {
        chmod(file, 0o600);
    }
    chmod(&folder, 0o700);
    let (code, text) = check(&setup.config_path).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        !text.contains("chmod"),
        "nothing left to flag once fixed: {text}"
    );
}

#[tokio::test]
async fn run_warns_at_start_naming_each_too_open_file() {
    let (setup, files) = too_open_setup().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wisegate"))
        .args(["run", "--config"])
        .arg(&setup.config_path)
        .env("WISEGATE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let serving = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            log.push_str(&line);
            log.push('\n');
            if line.contains("wisegate is serving") {
                return true;
            }
        }
        false
    })
    .await;
    child.kill().await.unwrap();
    assert_eq!(serving, Ok(true), "wisegate starts anyway: {log}");
    for (what, file) in &files {
        let warning = log
            .lines()
            .find(|line| line.contains(&expected(what, file)))
            .unwrap_or_else(|| panic!("{what}: {log}"));
        assert!(warning.contains("WARN"), "{warning}");
    }
    let folder = setup.dir.path().join("state");
    let warning = log
        .lines()
        .find(|line| line.contains(&folder_expected(&folder)))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(warning.contains("ERROR"), "{warning}");
}
