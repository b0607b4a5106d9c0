//! What the access tokens the double issues look like: UUIDs, as Wise issued them so
//! far, or strings of the size and shape of a JWE in compact serialization (five
//! base64url segments: protected header, encrypted key, IV, ciphertext, tag), as Wise's
//! client-credentials tokens are becoming (500-800+ characters) and user tokens may
//! follow. Long tokens let tests prove that no path assumes a token's size or shape.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The shortest JWE-shaped token made: a 2048-bit RSA-OAEP encrypted key alone takes
/// 342 characters.
pub const JWE_MIN_LENGTH: usize = 480;

/// The shape of the access tokens of one kind (user or client-credentials).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenShape {
    /// A random UUID v4 (36 characters).
    #[default]
    Uuid,
    /// A JWE compact serialization of exactly this many characters (at least
    /// [`JWE_MIN_LENGTH`]; a smaller number gives that many).
    Jwe(usize),
}

impl TokenShape {
    /// A new random token of this shape.
    pub fn generate(self) -> String {
        match self {
            TokenShape::Uuid => crate::state::random_uuid(),
            TokenShape::Jwe(length) => jwe(length.max(JWE_MIN_LENGTH)),
        }
    }
}

fn random_segment(bytes: usize) -> String {
    let bytes: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWE of `length` (>= [`JWE_MIN_LENGTH`]) characters whose every segment decodes as
/// base64url. Base64url cannot make a segment of 4k+1 characters, so the key id in the
/// header takes one of three lengths, whose encodings end on three different lengths
/// modulo 4: one of them leaves the ciphertext a length base64url can make.
fn jwe(length: usize) -> String {
    let key = random_segment(256);
    let iv = random_segment(12);
    let tag = random_segment(16);
    for kid_length in 8..11 {
        let kid = crate::state::hex(&rand::random::<[u8; 8]>());
        let header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"{}"}}"#,
            &kid[..kid_length]
        ));
        let fixed = header.len() + key.len() + iv.len() + tag.len() + 4;
        let Some(rest) = length.checked_sub(fixed).filter(|r| *r >= 2 && r % 4 != 1) else {
            continue;
        };
        let ciphertext = random_segment(rest * 3 / 4);
        return [header, key, iv, ciphertext, tag].join(".");
    }
    unreachable!("JWE_MIN_LENGTH leaves room for a ciphertext whatever the header")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwe_tokens_have_the_length_asked_and_five_base64url_segments() {
        for length in JWE_MIN_LENGTH..JWE_MIN_LENGTH + 600 {
            let token = TokenShape::Jwe(length).generate();
            assert_eq!(token.len(), length);
            let segments: Vec<&str> = token.split('.').collect();
            assert_eq!(segments.len(), 5, "{token}");
            for segment in segments {
                assert!(URL_SAFE_NO_PAD.decode(segment).is_ok(), "{segment}");
            }
        }
        let header = URL_SAFE_NO_PAD
            .decode(TokenShape::Jwe(700).generate().split('.').next().unwrap())
            .unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(header["enc"], "A256GCM");
        assert_eq!(TokenShape::Jwe(10).generate().len(), JWE_MIN_LENGTH);
        assert_ne!(
            TokenShape::Jwe(600).generate(),
            TokenShape::Jwe(600).generate()
        );
        assert_eq!(TokenShape::Uuid.generate().len(), 36);
    }
}
