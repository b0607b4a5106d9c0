//! The `fake-wise` binary: `fake-wise --dir DIR` makes a test PKI and the secrets in DIR,
//! starts the double with the default configuration, prints where it listens, and runs
//! until Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fake_wise::{FakeWise, FakeWiseConfig, TestCa};

const USAGE: &str = "usage: fake-wise --dir DIR\n\
    Writes ca.pem, server.crt, server.key, client.crt, client.key, client_secret and\n\
    personal_token into DIR, then serves the Wise double until Ctrl-C.";

fn parse_args() -> Result<PathBuf, String> {
    let mut args = std::env::args_os().skip(1);
    let mut dir = None;
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--dir") => dir = args.next().map(PathBuf::from),
            Some("-h" | "--help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    dir.ok_or_else(|| "--dir DIR is required".to_owned())
}

fn write(dir: &Path, name: &str, contents: &str, secret: bool) -> std::io::Result<()> {
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    std::io::Write::write_all(&mut options.open(&path)?, contents.as_bytes())?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

async fn run(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let config = FakeWiseConfig::default();
    let ca = TestCa::new("fake-wise CA");
    let server = ca.server_cert();
    let client = ca.client_cert("fake-wise demo");
    write(dir, "ca.pem", &ca.cert_pem(), false)?;
    write(dir, "server.crt", &server.cert_pem, false)?;
    write(dir, "server.key", &server.key_pem, true)?;
    write(dir, "client.crt", &client.cert_pem, false)?;
    write(dir, "client.key", &client.key_pem, true)?;
    write(dir, "client_secret", &config.client_secret, true)?;
    write(dir, "personal_token", &config.personal_token, true)?;

    let fake = FakeWise::start(config, &server, &ca.cert_pem()).await?;
    println!("mtls_url      {}", fake.mtls_url());
    println!("legacy_url    {}", fake.legacy_url());
    println!("authorize_url {}", fake.authorize_url());
    println!("client_id     {}", fake.config().client_id);
    println!("redirect_uri  {}", fake.config().redirect_uri);
    println!("files in      {}", dir.display());
    tokio::signal::ctrl_c().await?;
    fake.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let dir = match parse_args() {
        Ok(dir) => dir,
        Err(message) => {
            eprintln!("fake-wise: {message}");
            eprintln!("{USAGE}");
            return ExitCode::from(64);
        }
    };
    match run(&dir).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fake-wise: {err}");
            ExitCode::FAILURE
        }
    }
}
