//! The `fake-wise` binary: `fake-wise --dir DIR` serves the double from a kept folder
//! (its PKI and secrets made on the first start, reused after) and writes a ready
//! `DIR/wisegate.toml`, so that wisegate's real steps can be rehearsed locally;
//! `fake-wise sign-csr` plays Wise's Developer Hub for a CSR from `wisegate csr`.
//! `--help` ([`cli::args::USAGE`]) says all of it.

mod cli;

use std::path::Path;
use std::process::ExitCode;

use cli::args::{Command, TokenShapes, USAGE};
use cli::wisegate_toml::Outcome;
use cli::{folder, wisegate_toml};
use fake_wise::{FakeUser, FakeWise, FakeWiseConfig, ListenPorts};

async fn serve(
    dir: &Path,
    ports: ListenPorts,
    tokens: TokenShapes,
    extra_users: Vec<(String, String)>,
) -> Result<(), String> {
    folder::private_dir(dir)?;
    folder::private_dir(&dir.join("tls"))?;
    let pki = folder::pki(dir)?;
    let mut config = FakeWiseConfig {
        ports,
        user_token_shape: tokens.user,
        app_token_shape: tokens.app,
        ..FakeWiseConfig::default()
    };
    config.client_secret = folder::secret(dir, "client_secret", &config.client_secret)?;
    config.personal_token = folder::secret(dir, "personal_token", &config.personal_token)?;
    if !extra_users.is_empty() {
        let mut users = config.resolved_users();
        users.extend(
            extra_users
                .into_iter()
                .map(|(name, personal_token)| FakeUser {
                    personal_token,
                    ..FakeUser::new(&name)
                }),
        );
        config.users = users;
    }
    let fake = FakeWise::start(config, &pki.server, &pki.ca.cert_pem())
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1 (ports {ports:?}): {e}"))?;
    let pki_note = if pki.made { "made" } else { "reused" };
    println!("mtls_url      {}", fake.mtls_url());
    println!("legacy_url    {}", fake.legacy_url());
    println!("authorize_url {}", fake.authorize_url());
    println!("client_id     {}", fake.config().client_id);
    println!("redirect_uri  {}", fake.config().redirect_uri);
    for user in fake.users() {
        println!("user          {} (profile {})", user.name, user.profile_id);
    }
    println!("files in      {} (test CA {pki_note})", dir.display());
    let config_file = dir.join("wisegate.toml");
    match wisegate_toml::write_if_absent(dir, &fake)? {
        Outcome::Written(keys) => println!(
            "wrote {} with {}",
            config_file.display(),
            keys.join(", ")
        ),
        Outcome::Kept(true) => println!("kept {}", config_file.display()),
        Outcome::Kept(false) => println!(
            "kept {}, which names other ports: restart with the ports it names, or remove it to have it written again",
            config_file.display()
        ),
    }
    let ListenPorts {
        mtls,
        legacy,
        authorize,
    } = fake.ports();
    println!(
        "same ports    --mtls-port {mtls} --legacy-port {legacy} --authorize-port {authorize}"
    );
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
    fake.shutdown().await;
    Ok(())
}

fn sign_csr(dir: &Path, csr: &Path, out: &Path) -> Result<(), String> {
    let ca = folder::load_ca(dir)?.ok_or_else(|| {
        format!(
            "{} holds no test CA (ca.key): start `fake-wise --dir {}` once first",
            dir.display(),
            dir.display()
        )
    })?;
    let csr_pem = std::fs::read_to_string(csr)
        .map_err(|e| format!("cannot read the CSR {}: {e}", csr.display()))?;
    let client_id = FakeWiseConfig::default().client_id;
    let cert = ca.sign_csr(&csr_pem, &client_id).map_err(|error| {
        format!(
            "{} is not a CSR fake-wise can sign ({error}): make it with `wisegate csr`",
            csr.display()
        )
    })?;
    folder::write_path(out, &cert, false, false)
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    println!(
        "signed {}: client certificate CN={client_id}, valid for a year, in {}",
        csr.display(),
        out.display()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match cli::args::parse(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            Ok(())
        }
        Ok(Command::Serve {
            dir,
            ports,
            tokens,
            users,
        }) => serve(&dir, ports, tokens, users).await,
        Ok(Command::SignCsr { dir, csr, out }) => sign_csr(&dir, &csr, &out),
        Err(message) => {
            eprintln!("fake-wise: {message}");
            eprintln!("{}", USAGE.lines().take(2).collect::<Vec<_>>().join("\n"));
            return ExitCode::from(64);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fake-wise: {message}");
            ExitCode::FAILURE
        }
    }
}
