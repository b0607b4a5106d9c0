//! `wisegate check [--online]` on good and broken setups, through the binary.

mod common;

use common::{authorize_with_code, setup};
use fake_wise::FakeWiseConfig;
use wisegate::config::Config;

async fn check(config: &std::path::Path, online: bool) -> (Option<i32>, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wisegate"));
    command.args(["check", "--config"]).arg(config);
    if online {
        command.arg("--online");
    }
    let output = command.output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[tokio::test]
async fn a_good_setup_passes_offline_and_online() {
    let setup = setup(FakeWiseConfig::default()).await;
    authorize_with_code(&Config::load(&setup.config_path).unwrap(), &setup.wise).await;
    let (code, text) = check(&setup.config_path, false).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("client certificate") && text.contains("match, valid until"),
        "{text}"
    );
    assert!(text.contains("All checks passed."), "{text}");
    assert_eq!(
        setup.wise.token_calls().refresh_token,
        0,
        "offline means offline"
    );

    let (code, text) = check(&setup.config_path, true).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("token refresh over mTLS works"), "{text}");
    assert!(
        text.contains("answered 200 with our certificate and token"),
        "{text}"
    );
    assert_eq!(setup.wise.token_calls().refresh_token, 1);
    let playground = setup
        .wise
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query == "/v1/authenticated/playground")
        .count();
    assert_eq!(playground, 1);
}

#[tokio::test]
async fn a_broken_setup_fails_naming_each_file() {
    let setup = setup(FakeWiseConfig::default()).await;
    let dir = setup.dir.path();
    std::fs::write(
        dir.join("client.key"),
        setup.client_ca.client_cert("Other").key_pem,
    )
    .unwrap();
    std::fs::remove_file(dir.join("personal_token")).unwrap();
    let (code, text) = check(&setup.config_path, false).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAIL  the private key in") && text.contains("client.key"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  cannot read the personal token from")
            && text.contains("personal_token"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  token store") && text.contains("run `wisegate authorize` once"),
        "{text}"
    );
    assert!(text.contains("3 check(s) failed"), "{text}");
}

#[tokio::test]
async fn an_invalid_config_exits_64() {
    let setup = setup(FakeWiseConfig::default()).await;
    std::fs::write(&setup.config_path, "environment = \"moon\"\n").unwrap();
    let (code, text) = check(&setup.config_path, false).await;
    assert_eq!(code, Some(64), "{text}");
    assert!(text.contains(":1: environment"), "{text}");
}
