//! Choosing the account of a request from the app's own credential. The app keeps
//! sending `Authorization: Bearer <its old personal token>`; the SHA-256 of that token
//! is compared with every configured hash, all of them every time and in constant time
//! (`subtle`), so neither the answer's timing nor an early exit tells how much of a
//! hash matched. The token itself is never kept, logged or shown: only the name of the
//! account it selects.

use http::header::AUTHORIZATION;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The SHA-256 of an app token, as configured in `app_token_sha256`.
pub fn hash_token(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// What `wisegate account hash-token` prints for `input` (the token as read from
/// stdin, one trailing newline dropped): the lower-case hex SHA-256; `None` when no
/// token is left.
pub fn hash_token_hex(input: &[u8]) -> Option<String> {
    let token = input
        .strip_suffix(b"\r\n")
        .or_else(|| input.strip_suffix(b"\n"))
        .unwrap_or(input);
    if token.is_empty() {
        return None;
    }
    Some(
        hash_token(token)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// The request's credential matches no account (several are configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnknownAccount {
    #[error("the request has no `Authorization: Bearer` token, and several Wise accounts are configured: wisegate cannot tell which account it is for; send the app's token, and configure its SHA-256 (`wisegate account hash-token`) in the app_token_sha256 of its [[account]]")]
    NoToken,
    #[error("the request's `Authorization: Bearer` token selects no configured account: nothing was sent to Wise; add its SHA-256 (`wisegate account hash-token`) to the app_token_sha256 of the [[account]] it is for")]
    NoMatch,
}

/// The app's bearer token in `headers`, if it sent one.
fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at(value.iter().position(|b| *b == b' ')?);
    let token = token.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

/// The index (into `hashes`' outer list) of the account whose hashes hold the SHA-256
/// of the request's bearer token. Every hash is compared, in constant time.
pub fn matching<'a>(
    headers: &HeaderMap,
    hashes: impl Iterator<Item = &'a [[u8; 32]]>,
) -> Result<usize, UnknownAccount> {
    let token = bearer_token(headers).ok_or(UnknownAccount::NoToken)?;
    let presented = hash_token(token);
    // Index + 1 of the match (0: none); hashes are unique across accounts (the config
    // refuses a hash given twice), so at most one matches.
    let mut found = 0u32;
    for (index, account) in hashes.enumerate() {
        let candidate = u32::try_from(index + 1).unwrap_or(u32::MAX);
        for hash in account {
            let equal = presented.ct_eq(hash);
            found = u32::conditional_select(&found, &candidate, equal);
        }
    }
    match found {
        0 => Err(UnknownAccount::NoMatch),
        found => Ok(found as usize - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_account_holding_the_hash_of_the_bearer_token_is_chosen() {
        let accounts = [
            vec![hash_token(b"uk")],
            vec![hash_token(b"eu-old"), hash_token(b"eu")],
        ];
        let pick = |headers: &HeaderMap| matching(headers, accounts.iter().map(Vec::as_slice));
        assert_eq!(pick(&with_bearer("Bearer uk")), Ok(0));
        assert_eq!(pick(&with_bearer("Bearer eu")), Ok(1));
        assert_eq!(pick(&with_bearer("bearer  eu-old ")), Ok(1));
        assert_eq!(
            pick(&with_bearer("Bearer us")),
            Err(UnknownAccount::NoMatch)
        );
        assert_eq!(
            pick(&with_bearer("Basic dWs=")),
            Err(UnknownAccount::NoToken)
        );
        assert_eq!(pick(&with_bearer("Bearer ")), Err(UnknownAccount::NoToken));
        assert_eq!(pick(&HeaderMap::new()), Err(UnknownAccount::NoToken));
    }

    #[test]
    fn the_hash_is_the_sha256_that_hash_token_prints() {
        let hex: String = hash_token(b"test")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn hash_token_drops_one_trailing_newline_only() {
        let test = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(hash_token_hex(b"test").as_deref(), Some(test));
        assert_eq!(hash_token_hex(b"test\n").as_deref(), Some(test));
        assert_eq!(hash_token_hex(b"test\r\n").as_deref(), Some(test));
        assert_ne!(hash_token_hex(b"test\n\n").as_deref(), Some(test));
        assert_eq!(hash_token_hex(b"\n"), None);
        assert_eq!(hash_token_hex(b""), None);
    }

    #[test]
    fn the_messages_say_what_to_configure_and_never_the_token() {
        for error in [UnknownAccount::NoToken, UnknownAccount::NoMatch] {
            let message = error.to_string();
            assert!(message.contains("app_token_sha256"), "{message}");
            assert!(message.contains("wisegate account hash-token"), "{message}");
        }
    }
}
