//! The `[[account]]` tables: several Wise accounts through one wisegate, each chosen by
//! the SHA-256 of the app token it is sent with. Checked here: names (`[a-z0-9-]+`,
//! unique), hashes (64 hex characters, each selecting one account only), one store per
//! account (no two on the same file or the same Redis URL and key prefix), the personal
//! token where something sends the personal-token way, and that the single-account keys
//! (`oauth.token_store`, `oauth.refresh_token_file`, `[personal_token]`) are not also set.
//! Token URLs and hashes are never echoed: only keys and names.

use super::checker::Checker;
use super::rollback::legacy_use;
use super::token_store::{token_store, RedisKeys};
use crate::config::raw::RawAccount;
use crate::config::{AccountConfig, PersonalTokenConfig, TokenStoreConfig};
use crate::route::RouteTable;
use std::collections::HashMap;

/// What the rest of the config says that the accounts depend on.
pub(super) struct Context<'a> {
    /// The `oauth.redis_*` keys: shared by every account on Redis.
    pub(super) redis: RedisKeys<'a>,
    pub(super) client_id: &'a str,
    /// Which single-account keys are set (each conflicts with `[[account]]`).
    pub(super) single_account_keys: Vec<&'static str>,
    pub(super) rollback_all: bool,
    pub(super) routes: &'a RouteTable,
}

/// The validated `[[account]]` tables (empty when there are none).
pub(super) fn accounts(
    c: &mut Checker<'_>,
    raw: Vec<RawAccount>,
    context: &Context<'_>,
) -> Vec<AccountConfig> {
    if raw.is_empty() {
        return Vec::new();
    }
    for key in &context.single_account_keys {
        c.problem(
            *key,
            "is a single-account key, but [[account]] tables are configured: give each account its token_store and personal_token_file in its [[account]] table, and remove this",
        );
    }
    let several = raw.len() > 1;
    let accounts: Vec<AccountConfig> = raw
        .into_iter()
        .enumerate()
        .map(|(index, account)| one(c, index, account, several, context))
        .collect();
    no_two_share(c, &accounts);
    accounts
}

/// One `[[account]]` table, `account[index]`.
fn one(
    c: &mut Checker<'_>,
    index: usize,
    raw: RawAccount,
    several: bool,
    context: &Context<'_>,
) -> AccountConfig {
    let key = |field: &str| format!("account[{index}].{field}");
    let name = c
        .text(
            &key("name"),
            raw.name,
            "the account's name, e.g. \"uk-ltd\" (lower-case letters, digits and -)",
        )
        .unwrap_or_default();
    if !name.is_empty() && !is_account_name(&name) {
        c.problem(
            key("name"),
            format!("`{name}` is not an account name: use lower-case letters, digits and - only, e.g. \"uk-ltd\""),
        );
    }
    let app_token_sha256 = hashes(c, &key("app_token_sha256"), raw.app_token_sha256, several);
    let store_key = key("token_store");
    let store = c.required(
        &store_key,
        raw.token_store,
        "where this account's tokens are kept: a file such as \"state/uk-ltd.json\", or a redis:// URL",
    );
    let is_redis = store.as_deref().is_some_and(|s| s.contains("://"));
    let redis = RedisKeys {
        password_file: context.redis.password_file.filter(|_| is_redis),
        key_prefix: context.redis.key_prefix.filter(|_| is_redis),
        ca_file: context.redis.ca_file.filter(|_| is_redis),
        sentinel_password_file: context.redis.sentinel_password_file.filter(|_| is_redis),
    };
    let mut token_store = token_store(c, &store_key, store.as_deref(), redis, context.client_id);
    if let TokenStoreConfig::Redis(redis) = &mut token_store {
        // Each account its own keys under the configured (or default) prefix.
        redis.key_prefix = format!("{}{name}:", redis.key_prefix);
    }
    let personal_token = c
        .path(
            &key("personal_token_file"),
            raw.personal_token_file.as_deref(),
        )
        .map(|token_file| PersonalTokenConfig {
            token_file,
            sca_key_file: c.path(&key("sca_key_file"), raw.sca_key_file.as_deref()),
        });
    if personal_token.is_none() {
        if raw.sca_key_file.is_some() {
            c.problem(
                key("sca_key_file"),
                "signs SCA challenges on the personal-token way, but this account has no personal_token_file: add one",
            );
        }
        let needed_by = match raw.rollback {
            true => Some(key("rollback")),
            false => legacy_use(context.rollback_all, context.routes),
        };
        if let Some(needed_by) = needed_by {
            c.problem(
                key("personal_token_file"),
                format!("is required: {needed_by} sends this account's requests the personal-token way; name the file holding this account's personal API token"),
            );
        }
    }
    AccountConfig {
        name,
        app_token_sha256,
        token_store,
        refresh_token_file: None,
        personal_token,
        rollback: raw.rollback,
    }
}

/// `[a-z0-9-]+`.
fn is_account_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `app_token_sha256`: required when several accounts are configured; each 64 hex
/// characters (upper or lower case). The values are never echoed.
fn hashes(
    c: &mut Checker<'_>,
    key: &str,
    raw: Option<Vec<String>>,
    several: bool,
) -> Vec<[u8; 32]> {
    let hint = "the SHA-256 of each app token that selects this account: run `wisegate account hash-token` and paste what it prints";
    let raw = match raw {
        Some(list) if list.is_empty() && several => {
            c.problem(
                key,
                format!("must not be empty when several accounts are configured: {hint}"),
            );
            return Vec::new();
        }
        Some(list) => list,
        None if several => {
            c.problem(
                key,
                format!("is required when several accounts are configured: {hint}"),
            );
            return Vec::new();
        }
        None => return Vec::new(),
    };
    let mut parsed = Vec::new();
    for (index, text) in raw.iter().enumerate() {
        match parse_sha256(text) {
            Some(hash) => parsed.push(hash),
            None => c.problem(
                format!("{key}[{index}]"),
                format!(
                    "is not a SHA-256 in hex (64 characters 0-9a-f, {} given): {hint}",
                    text.chars().count()
                ),
            ),
        }
    }
    parsed
}

/// 64 hex characters as 32 bytes.
pub(super) fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(hash)
}

/// No two accounts with the same name, the same app token hash or the same store.
fn no_two_share(c: &mut Checker<'_>, accounts: &[AccountConfig]) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut hashes: HashMap<[u8; 32], usize> = HashMap::new();
    let mut stores: HashMap<String, usize> = HashMap::new();
    for (index, account) in accounts.iter().enumerate() {
        if account.name.is_empty() {
            continue;
        }
        if let Some(first) = names.insert(&account.name, index) {
            c.problem(
                format!("account[{index}].name"),
                format!("`{}` is also the name of account[{first}]: every account needs a name of its own", account.name),
            );
        }
        for hash in &account.app_token_sha256 {
            match hashes.get(hash) {
                Some(first) if *first != index => c.problem(
                    format!("account[{index}].app_token_sha256"),
                    format!("a hash here also selects account `{}`: one app token can select one account only", accounts[*first].name),
                ),
                _ => {
                    hashes.insert(*hash, index);
                }
            }
        }
        let store = match &account.token_store {
            TokenStoreConfig::File(path) if path.as_os_str().is_empty() => continue,
            TokenStoreConfig::File(path) => format!("file {}", path.display()),
            TokenStoreConfig::Redis(redis) => {
                format!("redis {} {}", redis.url.expose(), redis.key_prefix)
            }
        };
        if let Some(first) = stores.insert(store, index) {
            c.problem(
                format!("account[{index}].token_store"),
                format!("is also the token store of account `{}`: each account's lineage needs a store (a file, or a Redis key prefix) of its own", accounts[first].name),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_are_lower_case_letters_digits_and_dashes() {
        assert!(is_account_name("uk-ltd"));
        assert!(is_account_name("eu2"));
        assert!(!is_account_name("UK"));
        assert!(!is_account_name("uk_ltd"));
        assert!(!is_account_name("uk ltd"));
        assert!(!is_account_name(""));
    }

    #[test]
    fn a_hash_is_64_hex_characters_of_either_case() {
        let lower = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let hash = parse_sha256(lower).unwrap();
        assert_eq!(hash[0], 0x9f);
        assert_eq!(hash[31], 0x08);
        assert_eq!(parse_sha256(&lower.to_uppercase()), Some(hash));
        assert_eq!(parse_sha256(&lower[..63]), None);
        assert_eq!(parse_sha256(&format!("{}g", &lower[..63])), None);
        assert_eq!(parse_sha256("é".repeat(32).as_str()), None);
    }
}
