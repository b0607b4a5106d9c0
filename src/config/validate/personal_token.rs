//! The `[personal_token]` section: the personal API token sent to the legacy host, and the
//! key that signs SCA challenges on that side.

use super::checker::Checker;
use crate::config::raw::RawPersonalToken;
use crate::config::PersonalTokenConfig;

pub(super) fn personal_token(
    c: &mut Checker<'_>,
    raw: Option<RawPersonalToken>,
) -> Option<PersonalTokenConfig> {
    raw.and_then(|section| {
        let file = c.required(
            "personal_token.token_file",
            section.token_file,
            "the file holding your personal API token",
        );
        let sca_key_file = c.path(
            "personal_token.sca_key_file",
            section.sca_key_file.as_deref(),
        );
        c.path("personal_token.token_file", file.as_deref())
            .map(|token_file| PersonalTokenConfig {
                token_file,
                sca_key_file,
            })
    })
}
