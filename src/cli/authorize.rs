//! `wisegate authorize`: the one-time OAuth step, with the questions around it (replace
//! a stored lineage?) and the hand-over to a running wisegate.

use super::EXIT_USAGE;
use wisegate::admin_client::{self, Lookup};
use wisegate::config::{AccountConfig, Config};
use wisegate::timestamps::rfc3339;
use wisegate::token::TokenStore;
use wisegate::{assembly, authorize};

/// Authorizes `account` (the only one when `None`), stores the tokens and hands them to
/// a running wisegate.
pub async fn run(
    config: &Config,
    account: Option<String>,
    code: Option<String>,
    force: bool,
) -> anyhow::Result<()> {
    let account = config
        .account(account.as_deref())
        .map_err(anyhow::Error::msg)?;
    let store = assembly::store_of(&account.token_store)?;
    confirm_replacing(&store, force).await?;
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let say = |text: &str| println!("{text}");
    let authorized = authorize::authorize_account(config, &account, code, stdin, say).await?;
    println!(
        "Authorized{}. Tokens stored in {} (access token valid until {}).",
        named(config, &account),
        store.describe(),
        rfc3339(authorized.expires_at)
    );
    match authorized.profile_id {
        Some(profile) => println!("profileId: {profile}"),
        None => println!(
            "profileId: not given with --code (see the redirect URL's profileId parameter)"
        ),
    }
    hand_over(config, &account).await;
    Ok(())
}

/// " account NAME" with `[[account]]` tables, nothing with the single-account keys.
fn named(config: &Config, account: &AccountConfig) -> String {
    match config.has_account_tables() {
        false => String::new(),
        true => format!(" account {}", account.name),
    }
}

/// Before `authorize` replaces a stored lineage: says so, and asks on a terminal; when
/// stdin is not one, only `--force` goes ahead (exit 64 otherwise).
async fn confirm_replacing(store: &TokenStore, force: bool) -> anyhow::Result<()> {
    // A store that cannot be read is reported by the authorization itself.
    let Ok(Some(lineage)) = store.load().await else {
        return Ok(());
    };
    println!(
        "The token store {} already holds a lineage (obtained {}, access token valid until {}). Authorizing again replaces it: its refresh token is no longer used, and a running wisegate switches to the new one.",
        store.describe(),
        rfc3339(lineage.tokens.obtained_at),
        rfc3339(lineage.tokens.expires_at)
    );
    if force {
        return Ok(());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("wisegate: not replacing the stored lineage without --force (stdin is not a terminal): run `wisegate authorize --force` to replace it");
        std::process::exit(i32::from(EXIT_USAGE));
    }
    print!("Replace it? [y/N] ");
    std::io::Write::flush(&mut std::io::stdout())?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        anyhow::bail!("not authorized: the stored lineage is kept");
    }
    Ok(())
}

/// After `authorize` stored a lineage: a wisegate running this config takes it up now.
async fn hand_over(config: &Config, account: &AccountConfig) {
    match admin_client::find(config).await {
        Ok(Lookup::Found(running)) => match running.reload_account(&account.name).await {
            Ok(answer) if answer.changed => println!(
                "The running wisegate on {} (admin.address) now uses the new tokens.",
                running.address
            ),
            Ok(_) => println!(
                "The running wisegate on {} (admin.address) already uses these tokens.",
                running.address
            ),
            Err(error) => eprintln!(
                "wisegate: the tokens are stored, but {error}; send the running wisegate SIGHUP to take them up"
            ),
        },
        Ok(Lookup::NotRunning) => {}
        Ok(Lookup::NotLoopback) => println!(
            "admin.address {} is not on this host: send a running wisegate SIGHUP to take up the new tokens.",
            config.admin.address
        ),
        Err(error) => eprintln!("wisegate: the tokens are stored, but {error}"),
    }
}
