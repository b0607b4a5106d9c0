//! `wisegate token status` and `wisegate token refresh`.

use anyhow::Context;
use std::time::SystemTime;
use wisegate::admin_client::{self, Lookup};
use wisegate::assembly;
use wisegate::config::{AccountConfig, Config};
use wisegate::timestamps::rfc3339;

/// Prints the stored token's state (never the token) and the running process's last
/// refresh: of `account`, or of every account.
pub async fn status(config: &Config, account: Option<&str>) -> anyhow::Result<()> {
    let accounts = match account {
        Some(name) => vec![config.account(Some(name)).map_err(anyhow::Error::msg)?],
        None => config.accounts(),
    };
    let running = wisegate::status::fetch_running(config.admin.address).await;
    let named = config.has_account_tables();
    for (index, account) in accounts.iter().enumerate() {
        if named {
            if index > 0 {
                println!();
            }
            println!("account:        {}", account.name);
        }
        account_status(config, account, running.as_ref(), named).await?;
    }
    Ok(())
}

/// One account's part of `token status`; `named`: the config has `[[account]]` tables.
async fn account_status(
    config: &Config,
    account: &AccountConfig,
    running: Option<&wisegate::status::Status>,
    named: bool,
) -> anyhow::Result<()> {
    let authorize = match named {
        true => format!("wisegate authorize --account {}", account.name),
        false => "wisegate authorize".to_owned(),
    };
    let store = assembly::store_of(&account.token_store)?;
    match store.load().await? {
        None => println!(
            "No tokens stored in {}: run `{authorize}`.",
            store.describe()
        ),
        Some(lineage) => {
            let tokens = lineage.tokens;
            let now = SystemTime::now();
            let state = if tokens.expires_at > now {
                "valid"
            } else {
                "EXPIRED"
            };
            println!("store:          {}", store.describe());
            if store.is_shared() {
                println!("generation:     {}", lineage.generation);
            }
            println!(
                "access token:   {state}, expires {}",
                rfc3339(tokens.expires_at)
            );
            println!("obtained:       {}", rfc3339(tokens.obtained_at));
            match tokens.refresh_token_expires_at {
                Some(at) => println!("refresh token:  present, expires {}", rfc3339(at)),
                None if tokens.refresh_token.is_some() => {
                    println!("refresh token:  present")
                }
                None => println!("refresh token:  none"),
            }
            if let Some(profile) = tokens.profile_id {
                println!("profileId:      {profile}");
            }
        }
    }
    // The last refresh result lives in the running process: ask it.
    let token = running.map(|status| {
        status
            .accounts
            .iter()
            .find(|a| a.name == account.name)
            .map_or(&status.token, |a| &a.token)
    });
    let last = match token {
        Some(token) => match &token.last_refresh {
            None => "none since the running wisegate started".to_owned(),
            Some(last) => last.describe(),
        },
        None => format!(
            "unknown: no running wisegate answered on {} (admin.address)",
            config.admin.address
        ),
    };
    println!("last refresh:   {last}");
    let required = token.and_then(|token| token.authorization_required.as_ref());
    if let Some(required) = required {
        println!(
            "authorization:  REQUIRED: Wise refused the grant at {} ({}); a person must run `{authorize}`",
            required.refused_at, required.error_code
        );
    }
    Ok(())
}

/// Refreshes `account`'s stored token (the only account's when `None`): by the running
/// wisegate if there is one, else here.
pub async fn refresh(config: &Config, account: Option<&str>) -> anyhow::Result<()> {
    let account = config.account(account).map_err(anyhow::Error::msg)?;
    match admin_client::find(config).await? {
        Lookup::Found(running) => {
            let answer = running.refresh_account(&account.name).await?;
            println!(
                "Refreshed by the running wisegate on {} (admin.address), which uses the new access token, valid until {}.",
                running.address,
                answer.expires_at.unwrap_or_default()
            );
            return Ok(());
        }
        Lookup::NotLoopback => eprintln!(
            "note: admin.address {} is not on this host, so no running wisegate was asked: one running this config now holds an invalidated token (it refreshes on its next 401)",
            config.admin.address
        ),
        Lookup::NotRunning => {}
    }
    let resolver = assembly::load_identity(config)?;
    let oauth = std::sync::Arc::new(assembly::oauth_client(config, &resolver)?);
    let tokens = assembly::account_token_manager(config, &account, oauth).await?;
    tokens.refresh_now().await.context("refresh failed")?;
    let status = tokens.status();
    println!(
        "Refreshed. New access token valid until {}.",
        status.expires_at.map(rfc3339).unwrap_or_default()
    );
    Ok(())
}
