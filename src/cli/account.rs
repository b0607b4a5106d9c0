//! `wisegate account hash-token`: the SHA-256 of an app token, for `app_token_sha256`.
//! The token is read from stdin and never echoed (nor kept past the hash).

use std::io::Read;

/// Reads the token from stdin and prints its hash.
pub fn hash_token() -> anyhow::Result<()> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("Paste the app token, then press Enter and Ctrl-D (it is not shown):");
    }
    let mut input = zeroize::Zeroizing::new(Vec::new());
    std::io::stdin().read_to_end(&mut input)?;
    match wisegate::account::hash_token_hex(&input) {
        Some(hash) => {
            println!("{hash}");
            Ok(())
        }
        None => anyhow::bail!("no token on stdin: pipe the app's token in, e.g. `wisegate account hash-token < app-token.txt`"),
    }
}
