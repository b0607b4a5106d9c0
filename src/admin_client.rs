//! The command line's side of the admin listener's token endpoints: finds a wisegate
//! running on the same config (at `admin.address`, on this host only) so that
//! `wisegate token refresh` and `wisegate authorize` act through it and the lineage
//! stays in one hand. Plain HTTP over loopback; nothing here leaves the host.

use crate::admin::CONFIG_SHA256_HEADER;
use crate::config::Config;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long a wisegate that is not there may take to say so.
const LOOKUP_WAIT: Duration = Duration::from_secs(2);

/// Added to `limits.upstream_timeout` for a refresh the running process makes.
const REFRESH_MARGIN: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    #[error("a wisegate answers on {address} (admin.address) but runs another config (its SHA-256 differs from {file}'s): acting here would replace the token it holds; reload it (SIGHUP) so it runs this file, or stop it first")]
    OtherConfig { address: SocketAddr, file: String },
    #[error("the running wisegate on {address} did not answer {path}: {message}")]
    Call {
        address: SocketAddr,
        path: &'static str,
        message: String,
    },
    #[error("the running wisegate on {address} refused {path} ({status}): {message}")]
    Refused {
        address: SocketAddr,
        path: &'static str,
        status: StatusCode,
        message: String,
    },
}

/// Whether a wisegate runs next to this command.
#[derive(Debug)]
pub enum Lookup {
    /// One answers on `admin.address` and runs this very config.
    Found(Box<RunningWisegate>),
    /// Nothing (or nothing that is a wisegate) answers on `admin.address`.
    NotRunning,
    /// `admin.address` is not on this host: it is not asked.
    NotLoopback,
}

/// A wisegate running on the same config, reachable on its admin listener.
#[derive(Debug)]
pub struct RunningWisegate {
    pub address: SocketAddr,
    sha256: String,
    wait: Duration,
    client: Client<HttpConnector, Empty<Bytes>>,
}

/// What a token endpoint answered.
#[derive(Debug)]
pub struct TokenAnswer {
    /// Whether the held token changed (refreshed, or a newer lineage adopted).
    pub changed: bool,
    /// When the access token now in use expires (RFC 3339).
    pub expires_at: Option<String>,
}

/// The address to reach `admin.address` at when it is on this host: a loopback address
/// as is, an unspecified one (`0.0.0.0`, `[::]`) through the loopback interface.
fn local_address(admin: SocketAddr) -> Option<SocketAddr> {
    let mut address = admin;
    if address.ip().is_unspecified() {
        address.set_ip(match admin {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    address.ip().is_loopback().then_some(address)
}

/// Looks for a wisegate on `config`'s admin listener and checks it runs `config`.
pub async fn find(config: &Config) -> Result<Lookup, AdminClientError> {
    let Some(address) = local_address(config.admin.address) else {
        return Ok(Lookup::NotLoopback);
    };
    let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let running = RunningWisegate {
        address,
        sha256: config.sha256.clone(),
        wait: config.limits.upstream_timeout + REFRESH_MARGIN,
        client,
    };
    let status = tokio::time::timeout(LOOKUP_WAIT, running.call(Method::GET, "/status")).await;
    let Ok(Ok((StatusCode::OK, status))) = status else {
        return Ok(Lookup::NotRunning);
    };
    match status["config"]["sha256"].as_str() {
        None => Ok(Lookup::NotRunning),
        Some(sha) if sha.eq_ignore_ascii_case(&config.sha256) => {
            Ok(Lookup::Found(Box::new(running)))
        }
        Some(_) => Err(AdminClientError::OtherConfig {
            address,
            file: config.file.display().to_string(),
        }),
    }
}

impl RunningWisegate {
    /// Asks it to refresh its token now (`POST /token/refresh`).
    pub async fn refresh(&self) -> Result<TokenAnswer, AdminClientError> {
        self.token_call("/token/refresh", None).await
    }

    /// Asks it to re-read the token store and use a newer lineage (`POST /token/reload`).
    pub async fn reload(&self) -> Result<TokenAnswer, AdminClientError> {
        self.token_call("/token/reload", None).await
    }

    /// [`Self::refresh`] for the account `name` (`?account=NAME`).
    pub async fn refresh_account(&self, name: &str) -> Result<TokenAnswer, AdminClientError> {
        self.token_call("/token/refresh", Some(name)).await
    }

    /// [`Self::reload`] for the account `name` (`?account=NAME`).
    pub async fn reload_account(&self, name: &str) -> Result<TokenAnswer, AdminClientError> {
        self.token_call("/token/reload", Some(name)).await
    }

    /// `account`: an account name (`[a-z0-9-]+`, nothing to escape).
    async fn token_call(
        &self,
        path: &'static str,
        account: Option<&str>,
    ) -> Result<TokenAnswer, AdminClientError> {
        let target = match account {
            Some(name) => format!("{path}?account={name}"),
            None => path.to_owned(),
        };
        let answered = tokio::time::timeout(self.wait, self.call(Method::POST, &target)).await;
        let (status, body) = match answered {
            Ok(Ok(answer)) => answer,
            Ok(Err(message)) => return Err(self.call_error(path, message)),
            Err(_) => {
                return Err(
                    self.call_error(path, format!("no answer within {} s", self.wait.as_secs()))
                )
            }
        };
        if status != StatusCode::OK {
            return Err(AdminClientError::Refused {
                address: self.address,
                path,
                status,
                message: body["message"]
                    .as_str()
                    .unwrap_or("no reason given")
                    .to_owned(),
            });
        }
        Ok(TokenAnswer {
            changed: body["changed"].as_bool().unwrap_or(false),
            expires_at: body["expires_at"].as_str().map(str::to_owned),
        })
    }

    fn call_error(&self, path: &'static str, message: String) -> AdminClientError {
        AdminClientError::Call {
            address: self.address,
            path,
            message,
        }
    }

    /// One request; the answer's status and JSON body (`Null` when it is not JSON).
    async fn call(
        &self,
        method: Method,
        path: &str,
    ) -> Result<(StatusCode, serde_json::Value), String> {
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.address))
            .header(CONFIG_SHA256_HEADER, &self.sha256)
            .body(Empty::new())
            .map_err(|error| error.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|error| error.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| error.to_string())?
            .to_bytes();
        Ok((
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_on_this_host_are_asked() {
        let local = |text: &str| local_address(text.parse().unwrap()).map(|a| a.to_string());
        assert_eq!(local("127.0.0.1:9901").as_deref(), Some("127.0.0.1:9901"));
        assert_eq!(local("0.0.0.0:9901").as_deref(), Some("127.0.0.1:9901"));
        assert_eq!(local("[::]:9901").as_deref(), Some("[::1]:9901"));
        assert_eq!(local("10.0.0.5:9901"), None);
    }
}
