//! The one-time OAuth step: send the operator to Wise's authorize page with a random
//! `state`, take the code from the redirect (caught on a local callback listener when
//! `oauth.redirect_uri` is a loopback `http://` URL, else pasted by the operator, or
//! given with `--code`), check `state`, exchange the code over mTLS and store the tokens.

use crate::assembly::{self, BuildError};
use crate::config::{AccountConfig, Config};
use crate::secret::AuthorizationCode;
use crate::token::token_set;
use crate::token::{OAuthError, StoreError};
use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rand::Rng;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// How long the callback listener waits for the browser (Wise's codes live 30 minutes).
const CALLBACK_WAIT: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the redirect carried state `{got}`, not the one this run sent: start `wisegate authorize` again and use the new URL")]
    StateMismatch { got: String },
    #[error("Wise answered the authorization with an error: {error}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        error: String,
        description: Option<String>,
    },
    #[error("no code found in what was given: paste the whole URL your browser was sent to (it contains `code=`)")]
    NoCode,
    #[error("cannot listen for the redirect on {address} (from oauth.redirect_uri): {message}")]
    Callback { address: String, message: String },
    #[error("{0}")]
    Account(String),
    #[error("no redirect arrived within {} minutes: run `wisegate authorize` again", CALLBACK_WAIT.as_secs() / 60)]
    TimedOut,
}

/// What a successful authorization produced.
#[derive(Debug, Clone)]
pub struct Authorized {
    pub profile_id: Option<String>,
    pub expires_at: SystemTime,
}

/// The authorize page URL for `config` with `state`.
pub fn authorize_url(config: &Config, state: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &config.oauth.client_id)
        .append_pair("redirect_uri", &config.oauth.redirect_uri)
        .append_pair("state", state)
        .finish();
    let separator = if config.oauth.authorize_url.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{}{separator}{query}", config.oauth.authorize_url)
}

/// The redirect's parameters.
#[derive(Debug, Default)]
struct Redirect {
    code: Option<String>,
    state: Option<String>,
    profile_id: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn parse_redirect(query: &str) -> Redirect {
    let mut redirect = Redirect::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = Some(value.into_owned());
        match key.as_ref() {
            "code" => redirect.code = value,
            "state" => redirect.state = value,
            "profileId" => redirect.profile_id = value,
            "error" => redirect.error = value,
            "error_description" => redirect.error_description = value,
            _ => {}
        }
    }
    redirect
}

/// Runs the authorization of the config's only account (see [`authorize_account`]).
pub async fn authorize<R: AsyncBufRead + Unpin>(
    config: &Config,
    code: Option<String>,
    input: R,
    say: impl FnMut(&str),
) -> Result<Authorized, AuthorizeError> {
    let account = config.account(None).map_err(AuthorizeError::Account)?;
    authorize_account(config, &account, code, input, say).await
}

/// Runs the authorization of `account`, storing its lineage in its token store. `say`
/// prints to the operator; `input` is where a pasted redirect URL is read from when no
/// callback listener can be used.
pub async fn authorize_account<R: AsyncBufRead + Unpin>(
    config: &Config,
    account: &AccountConfig,
    code: Option<String>,
    input: R,
    mut say: impl FnMut(&str),
) -> Result<Authorized, AuthorizeError> {
    let resolver = assembly::load_identity(config).map_err(BuildError::from)?;
    let oauth = assembly::oauth_client(config, &resolver)?;
    let store = assembly::store_of(&account.token_store)?;
    // A code is single use: make sure the tokens can be stored before spending one.
    if let Some(redis) = store.redis() {
        redis.ping().await?;
    }
    let (code, profile_id) = match code {
        Some(given) => given_code(&given)?,
        None => {
            let state = format!("{:032x}", rand::rng().random::<u128>());
            let url = authorize_url(config, &state);
            let whose = match config.has_account_tables() {
                false => String::new(),
                true => format!(" (as the user of the Wise account for `{}`)", account.name),
            };
            say(&format!(
                "Open this URL in a browser, sign in to Wise{whose} and approve access:\n\n  {url}\n"
            ));
            let redirect = match loopback_callback(&config.oauth.redirect_uri) {
                Some((address, path)) => {
                    say(&format!(
                        "Waiting for the redirect on http://{address}{path} ..."
                    ));
                    wait_for_callback(address, &path).await?
                }
                None => {
                    say("After approving, paste the full URL your browser was sent to, then press Enter:");
                    read_pasted(input).await?
                }
            };
            if let Some(error) = redirect.error {
                return Err(AuthorizeError::Denied {
                    error,
                    description: redirect.error_description,
                });
            }
            if redirect.state.as_deref() != Some(state.as_str()) {
                return Err(AuthorizeError::StateMismatch {
                    got: redirect.state.unwrap_or_default(),
                });
            }
            (
                redirect.code.ok_or(AuthorizeError::NoCode)?,
                redirect.profile_id,
            )
        }
    };
    let response = oauth
        .exchange_code(&AuthorizationCode::new(code), &config.oauth.redirect_uri)
        .await?;
    let tokens = token_set(response, profile_id.clone());
    let expires_at = tokens.expires_at;
    store.install_new(&tokens).await?;
    Ok(Authorized {
        profile_id,
        expires_at,
    })
}

/// `Some((address, path))` when the redirect URI is `http://<loopback>[:port]/path`.
fn loopback_callback(redirect_uri: &str) -> Option<(SocketAddr, String)> {
    let uri: Uri = redirect_uri.parse().ok()?;
    if uri.scheme_str() != Some("http") {
        return None;
    }
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = if host == "localhost" {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().ok()?
    };
    ip.is_loopback().then(|| {
        (
            SocketAddr::new(ip, uri.port_u16().unwrap_or(80)),
            uri.path().to_owned(),
        )
    })
}

async fn wait_for_callback(address: SocketAddr, path: &str) -> Result<Redirect, AuthorizeError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|error| AuthorizeError::Callback {
            address: address.to_string(),
            message: error.to_string(),
        })?;
    let (sender, mut receiver) = mpsc::channel::<String>(1);
    let path = path.to_owned();
    let accepting = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let sender = sender.clone();
            let path = path.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let sender = sender.clone();
                    let matches = request.uri().path() == path;
                    let query = request.uri().query().unwrap_or_default().to_owned();
                    async move {
                        let (status, text) = if matches
                            && (query.contains("code=") || query.contains("error="))
                        {
                            let _ = sender.send(query).await;
                            (StatusCode::OK, "wisegate received the authorization. You can close this tab and return to the terminal.")
                        } else {
                            (
                                StatusCode::NOT_FOUND,
                                "wisegate is waiting for Wise's redirect on another path.",
                            )
                        };
                        let mut response =
                            Response::new(Full::new(Bytes::from_static(text.as_bytes())));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    };
    tokio::select! {
        query = receiver.recv() => Ok(parse_redirect(&query.unwrap_or_default())),
        _ = accepting => Err(AuthorizeError::TimedOut),
        _ = tokio::time::sleep(CALLBACK_WAIT) => Err(AuthorizeError::TimedOut),
    }
}

async fn read_pasted<R: AsyncBufRead + Unpin>(input: R) -> Result<Redirect, AuthorizeError> {
    let mut lines = input.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        return Ok(pasted_redirect(line));
    }
    Err(AuthorizeError::NoCode)
}

/// The redirect's parameters from a pasted URL (or just its query).
fn pasted_redirect(text: &str) -> Redirect {
    let query = text.split_once('?').map_or(text, |(_, query)| query);
    parse_redirect(query.split('#').next().unwrap_or_default())
}

/// `--code`: the code itself, or the whole redirect URL pasted as the browser showed it
/// (its `code` and `profileId` are taken). This run sent no `state`, so there is none
/// to check the URL's against.
fn given_code(given: &str) -> Result<(String, Option<String>), AuthorizeError> {
    let given = given.trim();
    let redirect_url = ["http://", "https://", "?"]
        .iter()
        .any(|start| given.starts_with(start))
        || ["code=", "error="].iter().any(|name| given.contains(name));
    if !redirect_url {
        return Ok((given.to_owned(), None));
    }
    let redirect = pasted_redirect(given);
    if let Some(error) = redirect.error {
        return Err(AuthorizeError::Denied {
            error,
            description: redirect.error_description,
        });
    }
    let code = redirect.code.filter(|code| !code.is_empty());
    Ok((code.ok_or(AuthorizeError::NoCode)?, redirect.profile_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_get_a_callback_listener() {
        let (address, path) = loopback_callback("http://127.0.0.1:8765/callback").unwrap();
        assert_eq!(address.to_string(), "127.0.0.1:8765");
        assert_eq!(path, "/callback");
        assert!(loopback_callback("http://localhost/cb").is_some());
        assert!(loopback_callback("https://www.yourapp.com").is_none());
        assert!(loopback_callback("http://10.0.0.1/cb").is_none());
    }

    #[test]
    fn a_given_code_may_be_the_whole_redirect_url() {
        let (code, profile) = given_code(" abc-123 ").unwrap();
        assert_eq!((code.as_str(), profile), ("abc-123", None));
        let (code, profile) =
            given_code("https://www.yourapp.com/?code=a%2Bb&state=s&profileId=42#x").unwrap();
        assert_eq!((code.as_str(), profile.as_deref()), ("a+b", Some("42")));
        assert!(matches!(
            given_code("https://www.yourapp.com/?state=s"),
            Err(AuthorizeError::NoCode)
        ));
        assert!(matches!(
            given_code("https://www.yourapp.com/?error=access_denied"),
            Err(AuthorizeError::Denied { .. })
        ));
    }

    #[test]
    fn redirect_parameters_are_decoded() {
        let redirect = parse_redirect("code=a%2Bb&state=s1&profileId=42");
        assert_eq!(redirect.code.as_deref(), Some("a+b"));
        assert_eq!(redirect.state.as_deref(), Some("s1"));
        assert_eq!(redirect.profile_id.as_deref(), Some("42"));
    }
}
