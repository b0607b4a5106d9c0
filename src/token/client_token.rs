//! The client-credentials token (`oauth_client` routes): one per process (every account's
//! manager shares it: it belongs to the OAuth client), requested from
//! the token endpoint when none is held or it is about to expire, never stored (a new
//! one is a single request away).

use super::client::OAuthClient;
use super::held::{token_set, Held};
use super::manager::CredentialError;
use arc_swap::ArcSwapOption;
use http::HeaderValue;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The held client-credentials token and the single flight that renews it.
#[derive(Default)]
pub struct ClientToken {
    held: ArcSwapOption<Held>,
    lock: tokio::sync::Mutex<()>,
}

impl ClientToken {
    /// The bearer header, requested when none is held or it is about to expire;
    /// concurrent callers share one request.
    pub(super) async fn bearer(&self, oauth: &OAuthClient) -> Result<HeaderValue, CredentialError> {
        let margin = Duration::from_secs(60);
        let fresh = |held: &Option<Arc<Held>>| {
            held.as_ref()
                .filter(|h| h.usable(SystemTime::now() + margin.min(h.lifetime() / 2)))
                .map(|h| h.bearer.clone())
        };
        if let Some(bearer) = fresh(&self.held.load_full()) {
            return Ok(bearer);
        }
        let _guard = self.lock.lock().await;
        if let Some(bearer) = fresh(&self.held.load_full()) {
            return Ok(bearer);
        }
        // Boxed: this rare path would otherwise make every request's future larger.
        let response = match Box::pin(oauth.client_credentials()).await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!("client-credentials token request failed: {error}");
                // Keep serving the held token while it is valid.
                return match self.held.load_full() {
                    Some(held) if held.usable(SystemTime::now()) => Ok(held.bearer.clone()),
                    _ => Err(CredentialError::ClientTokenUnavailable {
                        reason: error.to_string(),
                    }),
                };
            }
        };
        let held = Held::new(token_set(response, None), 0).ok_or_else(|| {
            CredentialError::ClientTokenUnavailable {
                reason: "the token endpoint returned a token that cannot be sent in a header"
                    .into(),
            }
        })?;
        let bearer = held.bearer.clone();
        self.held.store(Some(Arc::new(held)));
        Ok(bearer)
    }
}
