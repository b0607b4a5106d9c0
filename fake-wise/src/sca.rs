//! Strong Customer Authentication on `/test/sca` (any host): without approval headers
//! the answer is 403 with `x-2fa-approval-result: REJECTED` and a one-time token in
//! `x-2fa-approval`; a repeat carrying that token and `X-Signature` (SHA256withRSA,
//! PKCS#1 v1.5, standard base64, verified with `FakeWiseConfig::sca_public_key_pem`)
//! passes. One-time tokens are single use.

use crate::body::RespBody;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use std::collections::HashSet;
use std::sync::Mutex;

/// The one-time tokens handed out and not yet used.
#[derive(Default)]
pub(crate) struct Challenges(Mutex<HashSet<String>>);

impl Challenges {
    /// `None` when the request carries a valid, unused approval; else the 403 to answer.
    pub(crate) fn check(
        &self,
        public_key_pem: Option<&str>,
        headers: &HeaderMap,
    ) -> Option<Response<RespBody>> {
        let approval = headers.get("x-2fa-approval").and_then(|v| v.to_str().ok());
        let signature = headers.get("x-signature").and_then(|v| v.to_str().ok());
        if let (Some(approval), Some(signature), Some(pem)) = (approval, signature, public_key_pem)
        {
            let issued = self
                .0
                .lock()
                .map(|mut set| set.remove(approval))
                .unwrap_or(false);
            if issued && verify(pem, approval, signature) {
                return None;
            }
        }
        let token = crate::state::random_uuid();
        if let Ok(mut set) = self.0.lock() {
            set.insert(token.clone());
        }
        let mut response = crate::body::json(
            StatusCode::FORBIDDEN,
            &serde_json::json!({"error": "sca_required", "error_description": "This call needs strong customer authentication"}),
        );
        let headers = response.headers_mut();
        headers.insert(
            "x-2fa-approval-result",
            HeaderValue::from_static("REJECTED"),
        );
        if let Ok(value) = HeaderValue::from_str(&token) {
            headers.insert("x-2fa-approval", value);
        }
        Some(response)
    }
}

fn verify(public_key_pem: &str, approval: &str, signature: &str) -> bool {
    let Ok(key) = rsa::RsaPublicKey::from_public_key_pem(public_key_pem) else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(signature) else {
        return false;
    };
    let Ok(signature) = Signature::try_from(bytes.as_slice()) else {
        return false;
    };
    VerifyingKey::<sha2::Sha256>::new(key)
        .verify(approval.as_bytes(), &signature)
        .is_ok()
}
