//! `wisegate token status` and `wisegate token refresh`.

use anyhow::Context;
use std::time::SystemTime;
use wisegate::admin_client::{self, Lookup};
use wisegate::app;
use wisegate::config::Config;
use wisegate::timestamps::rfc3339;

/// Prints the stored token's state (never the token) and the running process's last
/// refresh.
pub async fn status(config: &Config) -> anyhow::Result<()> {
    let store = app::token_store(config)?;
    match store.load().await? {
        None => println!(
            "No tokens stored in {}: run `wisegate authorize`.",
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
    let running = wisegate::status::fetch_running(config.admin.address).await;
    let last = match &running {
        Some(status) => match &status.token.last_refresh {
            None => "none since the running wisegate started".to_owned(),
            Some(last) => last.describe(),
        },
        None => format!(
            "unknown: no running wisegate answered on {} (admin.address)",
            config.admin.address
        ),
    };
    println!("last refresh:   {last}");
    let required = running.and_then(|status| status.token.authorization_required);
    if let Some(required) = required {
        println!(
            "authorization:  REQUIRED: Wise refused the grant at {} ({}); a person must run `wisegate authorize`",
            required.refused_at, required.error_code
        );
    }
    Ok(())
}

/// Refreshes the stored token: by the running wisegate if there is one, else here.
pub async fn refresh(config: &Config) -> anyhow::Result<()> {
    match admin_client::find(config).await? {
        Lookup::Found(running) => {
            let answer = running.refresh().await?;
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
    let resolver = app::load_identity(config)?;
    let tokens = app::token_manager(config, &resolver).await?;
    tokens.refresh_now().await.context("refresh failed")?;
    let status = tokens.status();
    println!(
        "Refreshed. New access token valid until {}.",
        status.expires_at.map(rfc3339).unwrap_or_default()
    );
    Ok(())
}
