//! The Wise accounts a config serves: its `[[account]]` tables, or, without any, the one
//! account named [`DEFAULT_ACCOUNT`] that the single-account keys (`[oauth] token_store`,
//! `refresh_token_file`, `[personal_token]`) describe. Everything else reads accounts
//! through `Config::accounts`, so both ways of writing a config mean the same.

use super::store::TokenStoreConfig;
use std::fmt;
use std::path::PathBuf;

/// The name of the account the single-account keys describe.
pub const DEFAULT_ACCOUNT: &str = "default";

/// The accounts a config serves, as it writes them.
#[derive(Debug, Clone)]
pub enum Accounts {
    /// No `[[account]]` table: the one account named [`DEFAULT_ACCOUNT`] that the
    /// single-account keys (`oauth.token_store`, `oauth.refresh_token_file`,
    /// `[personal_token]`) describe.
    Single(Box<AccountConfig>),
    /// The `[[account]]` tables, in file order.
    Tables(Vec<AccountConfig>),
}

impl Accounts {
    /// Every account, in file order.
    pub fn as_slice(&self) -> &[AccountConfig] {
        match self {
            Accounts::Single(account) => std::slice::from_ref(&**account),
            Accounts::Tables(accounts) => accounts,
        }
    }

    /// The account of the single-account keys; `None` with `[[account]]` tables.
    pub fn single(&self) -> Option<&AccountConfig> {
        match self {
            Accounts::Single(account) => Some(account),
            Accounts::Tables(_) => None,
        }
    }
}

/// One account: its lineage (where it is stored), the app tokens that select it and
/// its personal-token side.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// `[a-z0-9-]+`, unique; in metrics, logs and `--account`.
    pub name: String,
    /// The SHA-256 of each app token that selects this account (never the token).
    pub app_token_sha256: Vec<[u8; 32]>,
    pub token_store: TokenStoreConfig,
    /// `oauth.refresh_token_file` (the default account only).
    pub refresh_token_file: Option<PathBuf>,
    /// This account's personal token (and SCA key) for the legacy host.
    pub personal_token: Option<PersonalTokenConfig>,
    /// This account alone goes the personal-token way.
    pub rollback: bool,
}

impl AccountConfig {
    /// Whether `other` is the same lineage: same name and same token store (a reload
    /// keeps the running token manager then).
    pub fn same_lineage(&self, other: &AccountConfig) -> bool {
        self.name == other.name
            && self.token_store == other.token_store
            && self.refresh_token_file == other.refresh_token_file
    }
}

/// The hashes are shown by count only: they select an account and need not be shown.
impl fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountConfig")
            .field("name", &self.name)
            .field("app_token_sha256", &self.app_token_sha256.len())
            .field("token_store", &self.token_store)
            .field("personal_token", &self.personal_token)
            .field("rollback", &self.rollback)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalTokenConfig {
    pub token_file: PathBuf,
    /// The RSA key registered with Wise for SCA signatures on the legacy host.
    pub sca_key_file: Option<PathBuf>,
}

/// The account called `name` among `accounts` (of the config in `file`), or a message
/// listing the names there are; without a name, the only account.
pub fn find(
    accounts: &[AccountConfig],
    name: Option<&str>,
    file: &std::path::Path,
) -> Result<AccountConfig, String> {
    let names = || {
        accounts
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (name, accounts) {
        (Some(name), _) => accounts
            .iter()
            .find(|a| a.name == name)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "{} has no account named `{name}`; its accounts are: {}",
                    file.display(),
                    names()
                )
            }),
        (None, [only]) => Ok(only.clone()),
        (None, _) => Err(format!(
            "{} configures several accounts: name one with --account (one of: {})",
            file.display(),
            names()
        )),
    }
}
