//! `oauth.token_store` as a Sentinel URL: the sentinels to ask, the name of the master
//! they watch, and the credentials and database for that master (and its replicas).
//!
//! ```text
//! redis+sentinel://[[user]:password@]host1[:port1][,host2[:port2]...]/master-name[/db]
//! rediss+sentinel://...   TLS to the sentinels and to the master
//! ```
//!
//! A port left out is Sentinel's 26379. The redis crate has Sentinel support but parses
//! no such URL; each host and the user part are still parsed by the crate (IPv6 in
//! brackets, percent-encoded passwords), only the list and the path are split here.

use std::fmt;

/// Sentinel's default port.
pub const SENTINEL_PORT: u16 = 26379;

/// What a user should write, for messages.
pub const SENTINEL_EXAMPLE: &str =
    "redis+sentinel://sentinel-0.redis:26379,sentinel-1.redis:26379,sentinel-2.redis:26379/mymaster/0";

/// A parsed Sentinel URL. `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// `rediss+sentinel://`: TLS to the sentinels and to the master.
    pub tls: bool,
    /// Host and port of each sentinel, in the order written.
    pub sentinels: Vec<(String, u16)>,
    /// The name the sentinels monitor the master under (`sentinel monitor <name> ...`).
    pub master_name: String,
    /// For the master and replicas (decoded); the sentinels are asked without them.
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
}

impl fmt::Debug for SentinelUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelUrl")
            .field("tls", &self.tls)
            .field("sentinels", &self.sentinels)
            .field("master_name", &self.master_name)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("db", &self.db)
            .finish()
    }
}

/// Whether `text` is meant as a Sentinel URL (its scheme says so).
pub fn is_sentinel_url(text: &str) -> bool {
    text.starts_with("redis+sentinel://") || text.starts_with("rediss+sentinel://")
}

impl SentinelUrl {
    /// Parses `text`; the error says what is wrong and never repeats the URL (it may
    /// carry a password).
    pub fn parse(text: &str) -> Result<SentinelUrl, String> {
        let (tls, rest) = if let Some(rest) = text.strip_prefix("redis+sentinel://") {
            (false, rest)
        } else if let Some(rest) = text.strip_prefix("rediss+sentinel://") {
            (true, rest)
        } else {
            return Err(
                "a Sentinel URL starts with redis+sentinel:// or rediss+sentinel://".into(),
            );
        };
        if rest.contains(['?', '#']) {
            return Err("a Sentinel URL takes no ?query or #fragment".into());
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let sentinels = hosts
            .split(',')
            .map(sentinel_address)
            .collect::<Result<Vec<_>, _>>()?;
        let mut segments = path.split('/');
        let master_name = segments.next().unwrap_or_default();
        if master_name.is_empty() {
            return Err("the master's name is missing after the sentinels (`/mymaster`)".into());
        }
        if !master_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err("the master's name may hold only letters, digits, `-`, `_` and `.`".into());
        }
        let db =
            match segments.next() {
                None | Some("") => 0,
                Some(db) => db.parse::<i64>().ok().filter(|db| *db >= 0).ok_or(
                    "the database after the master's name must be a number (`/mymaster/0`)",
                )?,
            };
        if segments.any(|segment| !segment.is_empty()) {
            return Err("nothing may follow the database (`/mymaster/0`)".into());
        }
        let (username, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => credentials(userinfo)?,
        };
        Ok(SentinelUrl {
            tls,
            sentinels,
            master_name: master_name.to_owned(),
            username,
            password,
            db,
        })
    }

    /// The URL with `redacted` for the password, for messages.
    pub fn redacted(&self) -> String {
        let scheme = if self.tls {
            "rediss+sentinel"
        } else {
            "redis+sentinel"
        };
        let user = match (&self.username, &self.password) {
            (None, None) => String::new(),
            (Some(user), None) => format!("{user}@"),
            (user, Some(_)) => format!("{}:redacted@", user.as_deref().unwrap_or_default()),
        };
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|(host, port)| match host.contains(':') {
                true => format!("[{host}]:{port}"),
                false => format!("{host}:{port}"),
            })
            .collect();
        format!(
            "{scheme}://{user}{}/{}/{}",
            hosts.join(","),
            self.master_name,
            self.db
        )
    }
}

/// One `host[:port]` of the list, parsed as the crate parses a Redis URL's host.
fn sentinel_address(text: &str) -> Result<(String, u16), String> {
    let problem = || {
        "a sentinel address must be host or host:port, the sentinels separated by commas".to_owned()
    };
    if text.is_empty() || text.contains(['@', '/']) {
        return Err(problem());
    }
    let url = redis::parse_redis_url(&format!("redis://{text}")).ok_or_else(problem)?;
    let port = url.port().unwrap_or(SENTINEL_PORT);
    let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(|_| problem())?;
    match info.addr() {
        redis::ConnectionAddr::Tcp(host, _) if !host.is_empty() => Ok((host.clone(), port)),
        _ => Err(problem()),
    }
}

/// `[user][:password]`, percent-decoded by the crate.
fn credentials(userinfo: &str) -> Result<(Option<String>, Option<String>), String> {
    let problem = || {
        "the user and password before `@` cannot be parsed: percent-encode special characters, or use oauth.redis_password_file".to_owned()
    };
    let url =
        redis::parse_redis_url(&format!("redis://{userinfo}@localhost")).ok_or_else(problem)?;
    let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(|_| problem())?;
    let settings = info.redis_settings();
    Ok((
        settings.username().map(str::to_owned),
        settings.password().map(str::to_owned),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinels_master_database_and_credentials() {
        let url = SentinelUrl::parse(
            "rediss+sentinel://app:p%40ss@s0.redis:26380,10.0.0.2,[::1]:26381/mymaster/3",
        )
        .unwrap();
        assert!(url.tls);
        assert_eq!(
            url.sentinels,
            vec![
                ("s0.redis".to_owned(), 26380),
                ("10.0.0.2".to_owned(), SENTINEL_PORT),
                ("::1".to_owned(), 26381)
            ]
        );
        assert_eq!(url.master_name, "mymaster");
        assert_eq!(url.db, 3);
        assert_eq!(url.username.as_deref(), Some("app"));
        assert_eq!(url.password.as_deref(), Some("p@ss"));
        assert_eq!(
            url.redacted(),
            "rediss+sentinel://app:redacted@s0.redis:26380,10.0.0.2:26379,[::1]:26381/mymaster/3"
        );
        assert!(!format!("{url:?}").contains("p@ss"));
        let plain = SentinelUrl::parse("redis+sentinel://s0:1/m").unwrap();
        assert_eq!((plain.tls, plain.db, plain.password), (false, 0, None));
    }

    #[test]
    fn malformed_urls_say_what_to_write_without_repeating_the_password() {
        for (text, says) in [
            ("redis+sentinel://s0:26379", "master's name is missing"),
            ("redis+sentinel://s0:26379/", "master's name is missing"),
            ("redis+sentinel://s0,,s1/m", "host or host:port"),
            ("redis+sentinel://:secret@/m", "host or host:port"),
            ("redis+sentinel://s0:notaport/m", "host or host:port"),
            ("redis+sentinel://s0/m/x", "must be a number"),
            ("redis+sentinel://s0/m/0/1", "nothing may follow"),
            ("redis+sentinel://s0/my master", "only letters"),
            ("redis+sentinel://:secret@s0/m?db=1", "no ?query"),
        ] {
            let problem = SentinelUrl::parse(text).unwrap_err();
            assert!(problem.contains(says), "{text}: {problem}");
            assert!(!problem.contains("secret"), "{problem}");
        }
    }
}
