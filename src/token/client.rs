//! The OAuth client: the three grants wisegate uses against Wise's token endpoint
//! (`authorization_code`, `refresh_token`, `client_credentials`), sent over the mTLS
//! client with HTTP Basic client authentication. Wise's error bodies
//! (`{"error": ..., "error_description": ...}`) become [`OAuthError`]s that say what the
//! operator must do. Response bodies are never echoed: they may hold tokens.

pub use super::error::OAuthError;
use crate::secret::{AccessToken, AuthorizationCode, ClientSecret, RefreshToken};
use crate::upstream::{Upstream, UpstreamError};
use base64::Engine;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use std::time::{Duration, SystemTime};

/// The largest token response accepted (JWTs are bigger than UUIDs, but not this big).
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// A successful token response.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    pub expires_at: SystemTime,
    pub refresh_token_expires_at: Option<SystemTime>,
    pub received_at: SystemTime,
}

#[derive(Deserialize)]
struct RawTokenResponse {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    refresh_token_expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct RawErrorResponse {
    error: Option<String>,
    error_description: Option<String>,
}

/// Talks to the token endpoint for one client.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    upstream: Upstream,
    token_url: Uri,
    client_id: String,
    client_secret: ClientSecret,
}

impl OAuthClient {
    /// `upstream` must be a client for the token URL's host (with the client certificate).
    pub fn new(
        upstream: Upstream,
        token_url: Uri,
        client_id: String,
        client_secret: ClientSecret,
    ) -> OAuthClient {
        OAuthClient {
            upstream,
            token_url,
            client_id,
            client_secret,
        }
    }

    pub async fn exchange_code(
        &self,
        code: &AuthorizationCode,
        redirect_uri: &str,
    ) -> Result<TokenResponse, OAuthError> {
        self.grant(&[
            ("grant_type", "authorization_code"),
            ("client_id", &self.client_id),
            ("code", code.expose()),
            ("redirect_uri", redirect_uri),
        ])
        .await
    }

    pub async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenResponse, OAuthError> {
        self.grant(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ])
        .await
    }

    pub async fn client_credentials(&self) -> Result<TokenResponse, OAuthError> {
        self.grant(&[("grant_type", "client_credentials")]).await
    }

    async fn grant(&self, fields: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.client_id,
            self.client_secret.expose()
        ));
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.upstream.uri_for(self.token_url.path_and_query()))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .header(header::AUTHORIZATION, format!("Basic {credentials}"))
            .body(crate::body::full(body))
            .map_err(|error| UpstreamError::Other {
                target: self.upstream.target().to_owned(),
                detail: error.to_string(),
            })?;
        let sent_at = SystemTime::now();
        let response = self.upstream.send(request).await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no content type")
            .to_owned();
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|error| OAuthError::Malformed {
                status,
                detail: format!("reading it failed: {error}"),
            })?
            .to_bytes();
        let malformed = || OAuthError::Malformed {
            status,
            detail: format!("{content_type}, {} bytes", bytes.len()),
        };
        if status.is_success() {
            let raw: RawTokenResponse = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
            if raw.access_token.trim().is_empty() {
                return Err(malformed());
            }
            let lifetime = Duration::from_secs(raw.expires_in.unwrap_or(0));
            return Ok(TokenResponse {
                access_token: AccessToken::new(raw.access_token),
                refresh_token: raw
                    .refresh_token
                    .filter(|t| !t.trim().is_empty())
                    .map(RefreshToken::new),
                expires_at: sent_at + lifetime,
                refresh_token_expires_at: raw
                    .refresh_token_expires_in
                    .map(|s| sent_at + Duration::from_secs(s)),
                received_at: SystemTime::now(),
            });
        }
        let raw: Option<RawErrorResponse> = serde_json::from_slice(&bytes).ok();
        let (error, description) = raw.map_or((None, None), |r| (r.error, r.error_description));
        let description = description.map(|d| d.chars().take(200).collect::<String>());
        Err(match error.as_deref() {
            Some("invalid_grant") => OAuthError::InvalidGrant { description },
            Some("invalid_client") => OAuthError::InvalidClient { description },
            _ if error.is_none()
                && !status.is_server_error()
                && status != StatusCode::TOO_MANY_REQUESTS =>
            {
                malformed()
            }
            _ => OAuthError::Refused {
                status,
                error,
                description,
            },
        })
    }
}
