//! `wisegate check [--online]` on good and broken setups, through the binary.

use crate::common;

use common::{authorize_with_code, Harness};
use wisegate::config::Config;

async fn check(config: &std::path::Path, online: bool) -> (Option<i32>, String) {
    let mut args = vec!["check".as_ref(), "--config".as_ref(), config.as_os_str()];
    if online {
        args.push("--online".as_ref());
    }
    common::wisegate_output(&args).await
}

#[tokio::test]
async fn a_good_setup_passes_offline_and_online() {
    let setup = Harness::builder().setup().await;
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

    let before = setup.wise.current_access_token();
    let (code, text) = check(&setup.config_path, true).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("accepted the client's credentials and certificate"),
        "{text}"
    );
    assert!(
        text.contains("answered 200 with our certificate and the stored user token"),
        "{text}"
    );
    let calls = setup.wise.token_calls();
    assert_eq!(calls.refresh_token, 0, "check --online spends no refresh");
    assert_eq!(calls.client_credentials, 1, "the token endpoint was tested");
    assert_eq!(
        setup.wise.current_access_token(),
        before,
        "the user's token still works"
    );
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
    let setup = Harness::builder().setup().await;
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
    let setup = Harness::builder().setup().await;
    std::fs::write(&setup.config_path, "environment = \"moon\"\n").unwrap();
    let (code, text) = check(&setup.config_path, false).await;
    assert_eq!(code, Some(64), "{text}");
    assert!(text.contains(":1: environment"), "{text}");
}

/// Before `authorize`: the client certificate is still tested on the mTLS host (the
/// token endpoint and Wise's test call), the legacy host is no failure, and no log line
/// lands in the checklist.
#[tokio::test]
async fn online_before_authorize_tests_the_certificate_on_the_mtls_host() {
    let setup = Harness::builder().setup().await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_wisegate"))
        .args(["check", "--online", "--config"])
        .arg(&setup.config_path)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains("answered 200 with our certificate and a client-credentials token"),
        "{stdout}"
    );
    let mtls_calls: Vec<_> = setup
        .wise
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query == "/v1/authenticated/playground")
        .collect();
    assert_eq!(mtls_calls.len(), 1, "{stdout}");
    assert!(
        mtls_calls[0].client_cert_der.is_some(),
        "our certificate was presented"
    );
    let failures: Vec<&str> = stdout.lines().filter(|l| l.contains("FAIL")).collect();
    assert_eq!(failures.len(), 1, "only the empty store fails: {stdout}");
    assert!(failures[0].contains("does not exist yet"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("  ok") && l.contains("legacy host")),
        "{stdout}"
    );
    assert!(
        !stderr.contains("INFO") && !stderr.contains("WARN"),
        "a log line: {stderr}"
    );
    assert_eq!(setup.wise.token_calls().refresh_token, 0);
}
