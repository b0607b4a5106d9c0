//! The last config reload's outcome, kept for `/status`: a rejected reload leaves the
//! old config running, which otherwise looks exactly like nothing happened.
//! [`crate::reload`] writes it, [`crate::status`] reads it.

use std::time::SystemTime;

/// The last reload's outcome.
#[derive(Debug, Clone)]
pub struct LastReload {
    pub at: SystemTime,
    /// `success`, `failure` or `cert_rejected` (the metric's `result`).
    pub result: &'static str,
    /// Why it was rejected: file, line and key (config values, never secrets).
    pub error: Option<String>,
}
