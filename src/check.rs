//! `wisegate check`: validates the config and every file it names, and prints a
//! checklist an operator can act on. Credential files and a token store folder that
//! others may read or write are warnings ([`crate::file_safety`]): `run` serves with
//! them too, and says so. `--online` also talks to Wise without changing anything
//! ([`crate::check_online`]).

use crate::assembly;
use crate::checklist::Checklist;
use crate::config::{AccountConfig, Config, SecretSource};
use crate::expiry;
use crate::timestamps::rfc3339;
use crate::tls::{self, ClientIdentity};
use std::time::SystemTime;

/// Checks the files `config` names (and, with `online`, Wise itself).
pub async fn check(config: &Config, online: bool) -> Checklist {
    let mut list = Checklist::default();
    list.ok(format!(
        "config {} is valid ({} routes)",
        config.file.display(),
        config.routes.routes().len()
    ));

    let identity = list.result(
        ClientIdentity::load_current(&config.mtls.cert_file, &config.mtls.key_file),
        |identity| {
            format!(
                "client certificate {} and key {} match, valid until {}",
                config.mtls.cert_file.display(),
                config.mtls.key_file.display(),
                rfc3339(identity.not_after)
            )
        },
    );
    // The threshold of the daily warning a running wisegate logs.
    let soon = identity
        .as_ref()
        .and_then(|identity| expiry::warning_due(identity.not_after, SystemTime::now(), None));
    if let Some(days) = soon {
        list.warn(format!("the client certificate expires in {days} days: make a new CSR with `wisegate csr` and upload it"));
    }
    if let Some(ca) = &config.upstream.ca_file {
        list.result(tls::load_certificates(ca), |certs| {
            format!(
                "CA file {} holds {} certificate(s)",
                ca.display(),
                certs.len()
            )
        });
    }
    match &config.oauth.client_secret {
        SecretSource::File(file) => {
            list.result(crate::secret::read_file("the client secret", file), |_| {
                format!("client secret file {} is readable", file.display())
            });
        }
        SecretSource::Env(var) => {
            list.result(assembly::client_secret(&config.oauth.client_secret), |_| {
                format!("client secret variable {var} is set")
            });
        }
    }
    let several = config.accounts().len() > 1;
    for account in config.accounts() {
        check_account(&mut list, &account, several).await;
    }
    for exposure in crate::file_safety::exposures(config) {
        list.warn(exposure.to_string());
    }

    if online {
        if let Some(identity) = identity {
            crate::check_online::check_online(&mut list, config, identity).await;
        } else {
            list.fail("online checks skipped: the client certificate is not usable");
        }
    }
    list
}

/// One account's files and token store; with `several` accounts each line names it.
async fn check_account(list: &mut Checklist, account: &AccountConfig, several: bool) {
    let of = match several {
        true => format!(" of account {}", account.name),
        false => String::new(),
    };
    if let Some(personal) = &account.personal_token {
        list.result(
            crate::secret::read_file("the personal token", &personal.token_file),
            |_| {
                format!(
                    "personal token file {}{of} is readable",
                    personal.token_file.display()
                )
            },
        );
        if let Some(key) = &personal.sca_key_file {
            list.result(crate::sca::ScaSigner::load(key), |_| {
                format!(
                    "SCA signing key {}{of} is an RSA private key",
                    key.display()
                )
            });
        }
    }
    if let Some(seed) = &account.refresh_token_file {
        list.result(
            crate::secret::read_file("the refresh token seed", seed),
            |_| format!("refresh token seed {} is readable", seed.display()),
        );
    }
    let authorize = match several {
        true => format!("wisegate authorize --account {}", account.name),
        false => "wisegate authorize".to_owned(),
    };
    let seeded = account.refresh_token_file.is_some();
    let store = match assembly::store_of(&account.token_store) {
        Ok(store) => store,
        Err(error) => return list.fail(error.to_string()),
    };
    let name = store.describe();
    let shared = if store.is_shared() {
        " (shared by the replicas)"
    } else {
        ""
    };
    match store.load().await {
        Ok(Some(lineage)) => {
            let tokens = lineage.tokens;
            let state = if tokens.expires_at > SystemTime::now() {
                "valid"
            } else {
                "expired (refreshed at start)"
            };
            let generation = if store.is_shared() {
                format!(", generation {}", lineage.generation)
            } else {
                String::new()
            };
            list.ok(format!(
                "token store {name}{of}{shared} holds a lineage{generation}; access token {state} until {}",
                rfc3339(tokens.expires_at)
            ));
            if tokens.refresh_token.is_none() {
                list.fail(format!(
                    "token store {name}{of} has no refresh token: run `{authorize}` again"
                ));
            }
        }
        Ok(None) if seeded => list.ok(format!(
            "token store {name}{shared} {} and will be seeded from oauth.refresh_token_file",
            no_tokens(account)
        )),
        Ok(None) => list.fail(format!(
            "token store {name}{of}{shared} {}: run `{authorize}` once",
            no_tokens(account)
        )),
        Err(error) => list.fail(error.to_string()),
    }
}

/// Why a store holds no lineage: a file store that was never written is not "empty".
fn no_tokens(account: &AccountConfig) -> &'static str {
    match account.token_store.file() {
        Some(file) if !file.exists() => "does not exist yet (no tokens)",
        _ => "holds no tokens",
    }
}
