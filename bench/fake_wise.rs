//! Bench-only launcher of fake-wise (the `bench-fake-wise` example, used by `bench/run`).
//!
//! Like the `fake-wise` binary it writes a test PKI and the secrets into `--dir` and serves
//! the double on 127.0.0.1, but it also takes the access-token lifetime (`--lifetime
//! SECONDS`, default 43199 like Wise), prints a fresh authorization code (`code ...`) for
//! `wisegate authorize --code`, serves more Wise users than `default` with `--user
//! NAME=PERSONAL_TOKEN` (repeatable; a line `user NAME code CODE` for each), and forgets its request record every second so that a
//! long load does not grow it. On SIGTERM or SIGINT it prints the token-endpoint counts and
//! how many API calls it answered with 401, then exits.
//!
//! `cargo run --release --example bench-fake-wise -- --dir DIR [--lifetime SECONDS]
//! [--user NAME=PERSONAL_TOKEN]...`

use std::path::{Path, PathBuf};
use std::time::Duration;

use fake_wise::{FakeUser, FakeWise, FakeWiseConfig, TestCa};
use tokio::signal::unix::{signal, SignalKind};

struct Args {
    dir: PathBuf,
    lifetime: Duration,
    /// `--user NAME=PERSONAL_TOKEN`, in order.
    users: Vec<FakeUser>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut lifetime = Duration::from_secs(43199);
    let mut users = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => dir = args.next().map(PathBuf::from),
            "--lifetime" => {
                let value = args.next().unwrap_or_default();
                let seconds: u64 = value
                    .parse()
                    .map_err(|_| format!("--lifetime takes seconds, not {value:?}"))?;
                lifetime = Duration::from_secs(seconds.max(1));
            }
            "--user" => {
                let value = args.next().unwrap_or_default();
                let Some((name, token)) = value.split_once('=') else {
                    return Err("--user takes NAME=PERSONAL_TOKEN (no `=` in it)".to_owned());
                };
                users.push(FakeUser {
                    personal_token: token.to_owned(),
                    ..FakeUser::new(name)
                });
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        dir: dir.ok_or("--dir DIR is required")?,
        lifetime,
        users,
    })
}

fn write(dir: &Path, name: &str, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, contents)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = parse_args().map_err(std::io::Error::other)?;
    std::fs::create_dir_all(&args.dir)?;
    let mut config = FakeWiseConfig {
        access_token_lifetime: args.lifetime,
        ..FakeWiseConfig::default()
    };
    if !args.users.is_empty() {
        // `default` (DIR/personal_token) stays the first user, the one `code` is for.
        config.users = config.resolved_users();
        config.users.extend(args.users);
    }
    // One CA issues the server certificate and the client certificate, and is the CA the
    // mTLS host verifies client certificates against.
    let ca = TestCa::new("bench fake-wise CA");
    let server = ca.server_cert();
    let client = ca.client_cert("wisegate bench");
    write(&args.dir, "ca.pem", &ca.cert_pem())?;
    write(&args.dir, "client.crt", &client.cert_pem)?;
    write(&args.dir, "client.key", &client.key_pem)?;
    write(&args.dir, "client_secret", &config.client_secret)?;
    write(&args.dir, "personal_token", &config.personal_token)?;

    let fake = FakeWise::start(config, &server, &ca.cert_pem()).await?;
    println!("mtls_url {}", fake.mtls_url());
    println!("legacy_url {}", fake.legacy_url());
    println!("authorize_url {}", fake.authorize_url());
    println!("client_id {}", fake.config().client_id);
    println!("redirect_uri {}", fake.config().redirect_uri);
    println!("lifetime_s {}", args.lifetime.as_secs());
    println!("code {}", fake.issue_code());
    for user in &fake.users()[1..] {
        println!(
            "user {} code {}",
            user.name,
            fake.issue_code_for(&user.name)
        );
    }
    println!("ready");

    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut unauthorized = 0usize;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = interrupt.recv() => break,
            _ = tick.tick() => {
                unauthorized += fake.requests().iter().filter(|r| r.status == 401).count();
                fake.clear_requests();
            }
        }
    }
    unauthorized += fake.requests().iter().filter(|r| r.status == 401).count();
    let calls = fake.token_calls();
    println!(
        "stats refresh_token={} authorization_code={} failed={} api_401={unauthorized}",
        calls.refresh_token, calls.authorization_code, calls.failed
    );
    fake.shutdown().await;
    Ok(())
}
