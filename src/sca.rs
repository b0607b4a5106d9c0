//! Strong Customer Authentication on the personal-token path: Wise answers some calls
//! with 403, `x-2fa-approval-result: REJECTED` and a one-time token in `x-2fa-approval`;
//! the client signs that token with the RSA key it registered (SHA256withRSA, PKCS#1
//! v1.5, standard base64) and repeats the request with `x-2fa-approval` and
//! `X-Signature`. The key is PEM (PKCS#8 or PKCS#1), parsed with `rustls-pki-types`.
//!
//! Wise accepts such signatures only on business accounts based in the US, Canada,
//! Australia, New Zealand, Singapore and Malaysia (not on personal accounts, PSD2), and
//! OAuth tokens clear SCA by other flows: everywhere else the challenge reaches the app
//! untouched. Every challenge is counted in `wisegate_sca_challenges_total` ([`count`]).

use crate::metrics::{Metrics, ScaLabels};
use crate::route::Mode;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The registered key, ready to sign. Its `Debug` shows only the file.
pub struct ScaSigner {
    key: SigningKey<sha2::Sha256>,
    file: PathBuf,
}

impl std::fmt::Debug for ScaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScaSigner")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl ScaSigner {
    /// Loads an RSA private key; the error names the file and says what is expected.
    pub fn load(file: &Path) -> Result<ScaSigner, String> {
        let what = |detail: String| {
            format!("personal_token.sca_key_file {}: {detail}; it must be the RSA private key (PEM) whose public key is registered with Wise", file.display())
        };
        let key = match PrivateKeyDer::from_pem_file(file).map_err(|e| what(e.to_string()))? {
            PrivateKeyDer::Pkcs8(der) => rsa::RsaPrivateKey::from_pkcs8_der(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => rsa::RsaPrivateKey::from_pkcs1_der(der.secret_pkcs1_der())
                .map_err(|_| rsa::pkcs8::Error::KeyMalformed),
            _ => return Err(what("an EC key cannot sign SCA challenges".into())),
        }
        .map_err(|_| what("not an RSA key".into()))?;
        Ok(ScaSigner {
            key: SigningKey::new(key),
            file: file.to_owned(),
        })
    }

    /// The base64 signature of a one-time token.
    pub fn sign(&self, one_time_token: &str) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(self.key.sign(one_time_token.as_bytes()).to_bytes())
    }
}

/// Whether an answer is an SCA challenge: 403 with `x-2fa-approval-result: REJECTED`.
pub fn is_challenge(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::FORBIDDEN
        && headers
            .get("x-2fa-approval-result")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"REJECTED"))
}

/// The one-time token of an SCA challenge, when `status`/`headers` are one.
pub fn challenge(status: StatusCode, headers: &HeaderMap) -> Option<String> {
    is_challenge(status, headers)
        .then(|| {
            headers
                .get("x-2fa-approval")?
                .to_str()
                .ok()
                .map(str::to_owned)
        })
        .flatten()
}

/// Whether the app handles SCA itself (it sent its own approval or signature).
pub fn app_signs(headers: &HeaderMap) -> bool {
    headers.contains_key("x-2fa-approval") || headers.contains_key("x-signature")
}

/// Adds the approval headers for a signed challenge.
pub fn approve(headers: &mut HeaderMap, one_time_token: &str, signature: &str) {
    if let (Ok(token), Ok(signature)) = (
        HeaderValue::from_str(one_time_token),
        HeaderValue::from_str(signature),
    ) {
        headers.insert("x-2fa-approval", token);
        headers.insert("x-signature", signature);
    }
}

/// Marks the answer to a repeat that wisegate signed, for [`count`].
#[derive(Debug, Clone, Copy)]
struct Signed;

/// The answer to a signed repeat, marked as such.
pub fn mark_signed<B>(mut response: Response<B>) -> Response<B> {
    response.extensions_mut().insert(Signed);
    response
}

/// Counts what the answer the app gets says about SCA, on route `route` answered in
/// `mode`: `signed` when wisegate signed a challenge on the way ([`mark_signed`]), and
/// `passed_to_app` when the answer is itself a challenge (wisegate does not sign in this
/// mode or has no key, the app signs by itself, the body was too large to repeat, or
/// the signed repeat was challenged again).
pub fn count<B>(metrics: &Metrics, route: &Arc<str>, mode: Mode, response: &Response<B>) {
    let signed = response.extensions().get::<Signed>().is_some();
    let passed = is_challenge(response.status(), response.headers());
    for (outcome, happened) in [("signed", signed), ("passed_to_app", passed)] {
        if happened {
            let labels = ScaLabels {
                route: route.clone(),
                mode: mode.as_str(),
                outcome,
            };
            metrics.sca_challenges.get_or_create(&labels).inc();
        }
    }
}
