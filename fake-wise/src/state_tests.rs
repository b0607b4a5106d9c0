//! Unit tests of the double's state: codes, refreshes and reuse detection.

use super::*;

/// `Some(user index)` for a valid user access token.
fn user_of(s: &Shared, token: &str) -> Option<Option<usize>> {
    s.oauth_credential(token)
        .filter(|c| c.kind == TokenKind::User)
        .map(|c| c.user)
}

#[test]
fn uuid_shape() {
    let u = random_uuid();
    assert_eq!(u.len(), 36);
    assert_eq!(u.as_bytes()[14], b'4');
}

#[test]
fn refresh_replaces_access_token() {
    let s = Shared::new(FakeWiseConfig::default());
    let code = s.issue_code(0);
    let g = s.exchange_code(&code).unwrap();
    assert!(s.exchange_code(&code).is_none());
    let r = s.refresh(g.refresh_token.as_deref().unwrap()).unwrap();
    assert_eq!(s.oauth_credential(&g.access_token), None);
    assert_eq!(user_of(&s, &r.access_token), Some(Some(0)));
    assert_eq!(r.refresh_token, g.refresh_token);
    assert_eq!(s.reuse(), ReuseCounts::default());
}

#[test]
fn a_spent_refresh_token_presented_again_revokes_the_grant() {
    let s = Shared::new(FakeWiseConfig {
        rotate_refresh_token: true,
        revoke_grant_on_reuse: true,
        ..FakeWiseConfig::default()
    });
    let g = s.exchange_code(&s.issue_code(0)).unwrap();
    let spent = g.refresh_token.unwrap();
    let r = s.refresh(&spent).unwrap();
    let current = r.refresh_token.unwrap();
    assert_ne!(current, spent, "rotated");
    assert!(s.refresh("never-issued").is_none());
    assert_eq!(s.reuse(), ReuseCounts::default(), "unknown is not reuse");
    assert!(s.refresh(&spent).is_none());
    assert_eq!(s.oauth_credential(&r.access_token), None, "revoked");
    assert!(s.refresh(&current).is_none(), "the whole grant is revoked");
    let reuse = s.reuse();
    assert_eq!(reuse.spent_refresh_tokens_presented, 1);
    assert_eq!(reuse.grants_revoked, 1);
}

#[test]
fn without_reuse_detection_a_spent_token_is_only_counted() {
    let s = Shared::new(FakeWiseConfig {
        rotate_refresh_token: true,
        ..FakeWiseConfig::default()
    });
    let g = s.exchange_code(&s.issue_code(0)).unwrap();
    let spent = g.refresh_token.unwrap();
    let r = s.refresh(&spent).unwrap();
    assert!(s.refresh(&spent).is_none());
    assert_eq!(user_of(&s, &r.access_token), Some(Some(0)));
    assert!(s.refresh(r.refresh_token.as_deref().unwrap()).is_some());
    assert_eq!(s.reuse().spent_refresh_tokens_presented, 1);
    assert_eq!(s.reuse().grants_revoked, 0);
}
