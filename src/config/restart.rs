//! The keys read once at start: a reload that changes one logs that it takes effect after
//! a restart, and applies the rest. This table is the one list: [`crate::reload`] asks
//! it, and its tests hold docs/operations.md to it.

use super::{Config, TokenStoreConfig};

/// A key (or section) that a running wisegate does not take up on reload.
pub struct RestartOnly {
    /// The key as written in the file (`log.*`: the section).
    pub key: &'static str,
    /// What of the key does apply at once, if anything (for the log line).
    pub note: Option<&'static str>,
    changed: fn(&Config, &Config) -> bool,
}

/// Every key that needs a restart, in file order.
pub const RESTART_ONLY: &[RestartOnly] = &[
    RestartOnly {
        key: "listen.address",
        note: None,
        changed: |old, new| old.listen.address != new.listen.address,
    },
    RestartOnly {
        key: "listen.shutdown_grace",
        note: None,
        changed: |old, new| old.listen.shutdown_grace != new.listen.shutdown_grace,
    },
    RestartOnly {
        key: "listen.threads",
        note: None,
        changed: |old, new| old.listen.threads != new.listen.threads,
    },
    RestartOnly {
        key: "admin.address",
        note: None,
        changed: |old, new| old.admin.address != new.admin.address,
    },
    RestartOnly {
        key: "oauth.token_store",
        note: None,
        changed: |old, new| single_account_store(old) != single_account_store(new),
    },
    RestartOnly {
        key: "limits.max_header_bytes",
        note: None,
        changed: |old, new| old.limits.max_header_bytes != new.limits.max_header_bytes,
    },
    RestartOnly {
        key: "limits.header_read_timeout",
        note: None,
        changed: |old, new| old.limits.header_read_timeout != new.limits.header_read_timeout,
    },
    RestartOnly {
        key: "limits.response_write_timeout",
        note: None,
        changed: |old, new| old.limits.response_write_timeout != new.limits.response_write_timeout,
    },
    RestartOnly {
        key: "limits.idle_timeout",
        note: Some("for app and admin connections; the upstream pools take the new value now"),
        changed: |old, new| old.limits.idle_timeout != new.limits.idle_timeout,
    },
    RestartOnly {
        key: "limits.max_connections",
        note: None,
        changed: |old, new| old.limits.max_connections != new.limits.max_connections,
    },
    RestartOnly {
        key: "log",
        note: None,
        changed: |old, new| old.log.format != new.log.format || old.log.level != new.log.level,
    },
];

/// `oauth.token_store`: the single account's store; `None` with `[[account]]` tables
/// (each of those is a lineage of its own, taken up at once).
fn single_account_store(config: &Config) -> Option<&TokenStoreConfig> {
    config.accounts.single().map(|account| &account.token_store)
}

/// The entries of [`RESTART_ONLY`] whose value differs between `old` and `new`.
pub fn needs_restart<'t>(old: &Config, new: &Config) -> Vec<&'t RestartOnly> {
    RESTART_ONLY
        .iter()
        .filter(|entry| (entry.changed)(old, new))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(extra: &str) -> Config {
        let text = format!(
            "[mtls]\ncert_file = \"c\"\nkey_file = \"k\"\n[oauth]\nclient_id = \"a\"\nclient_secret_file = \"s\"\nredirect_uri = \"https://a.example\"\ntoken_store = \"t.json\"\n{extra}"
        );
        Config::parse(Path::new("/w/wisegate.toml"), &text).expect("valid config")
    }

    fn keys(old: &Config, new: &Config) -> Vec<&'static str> {
        needs_restart(old, new)
            .iter()
            .map(|entry| entry.key)
            .collect()
    }

    #[test]
    fn each_key_read_at_start_is_named_when_it_changes() {
        let before = config("");
        let after = config(
            "[listen]\naddress = \"127.0.0.1:8081\"\nshutdown_grace = \"5s\"\nthreads = 3\n\
             [admin]\naddress = \"127.0.0.1:9902\"\n\
             [limits]\nmax_header_bytes = 1000\nheader_read_timeout = \"3s\"\nresponse_write_timeout = \"7s\"\nidle_timeout = \"9s\"\nmax_connections = 12\n\
             [log]\nlevel = \"debug\"\n",
        );
        let mut after = after;
        let crate::config::Accounts::Single(account) = &mut after.accounts else {
            panic!("the single-account keys");
        };
        account.token_store = TokenStoreConfig::File("/w/other.json".into());
        let every: Vec<&str> = RESTART_ONLY.iter().map(|entry| entry.key).collect();
        assert_eq!(keys(&before, &after), every);
        assert!(keys(&before, &before.clone()).is_empty());
    }

    #[test]
    fn keys_that_apply_at_reload_need_no_restart() {
        let before = config("");
        let after = config(
            "[limits]\nupstream_timeout = \"9s\"\nmax_body_bytes = 10\n[rollback]\nall = false\n\
             [[route]]\nname = \"r\"\npath = \"/v1/**\"\n",
        );
        assert!(keys(&before, &after).is_empty());
    }

    #[test]
    fn the_operations_guide_lists_exactly_these_keys() {
        let guide = include_str!("../../docs/operations.md");
        let start = guide
            .find("- Read at start only")
            .expect("docs/operations.md lists the keys read at start");
        let bullet = &guide[start..];
        let end = ["\n- ", "\n\n"]
            .iter()
            .filter_map(|next| bullet[2..].find(next))
            .min()
            .map_or(bullet.len(), |end| end + 2);
        let listed: Vec<&str> = bullet[..end]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|key| key.strip_suffix(".*").unwrap_or(key))
            .collect();
        let table: Vec<&str> = RESTART_ONLY.iter().map(|entry| entry.key).collect();
        assert_eq!(
            listed, table,
            "docs/operations.md and RESTART_ONLY disagree"
        );
    }
}
