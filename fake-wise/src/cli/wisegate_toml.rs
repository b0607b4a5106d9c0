//! `DIR/wisegate.toml`: a config with every key set for this double, written once so
//! that the README's real steps run against it unchanged. Paths in it are relative to
//! DIR (wisegate reads them relative to the config's folder). A file that exists is never
//! touched: the user may have edited it.

use std::path::Path;

use fake_wise::FakeWise;

/// What a start did about `wisegate.toml`.
pub enum Outcome {
    /// Written with these keys.
    Written(Vec<String>),
    /// Left alone; `true` when it names this start's mTLS URL.
    Kept(bool),
}

/// The keys of the config, by section ("" for the top level), values unquoted.
fn keys(fake: &FakeWise) -> Vec<(&'static str, &'static str, String)> {
    let config = fake.config();
    vec![
        ("", "environment", "sandbox".to_owned()),
        ("upstream", "mtls_url", fake.mtls_url()),
        ("upstream", "legacy_url", fake.legacy_url()),
        ("upstream", "ca_file", "ca.pem".to_owned()),
        ("mtls", "cert_file", "tls/client.crt".to_owned()),
        ("mtls", "key_file", "tls/client.key".to_owned()),
        ("oauth", "client_id", config.client_id.clone()),
        ("oauth", "client_secret_file", "client_secret".to_owned()),
        ("oauth", "redirect_uri", config.redirect_uri.clone()),
        ("oauth", "authorize_url", fake.authorize_url()),
        ("oauth", "token_store", "state/tokens.json".to_owned()),
        ("personal_token", "token_file", "personal_token".to_owned()),
    ]
}

/// The file's text: TOML whose strings are quoted by serde_json (a JSON string is a TOML
/// basic string).
fn render(fake: &FakeWise) -> String {
    let mut text = String::from(
        "# Written by fake-wise for a local rehearsal; fake-wise never overwrites it.\n\
         # For the real Wise, start from config.example.toml (README: Using it with Wise).\n",
    );
    let mut section = "";
    for (table, key, value) in keys(fake) {
        if table != section {
            text.push_str(&format!("\n[{table}]\n"));
            section = table;
        }
        let quoted = serde_json::Value::String(value).to_string();
        text.push_str(&format!("{key} = {quoted}\n"));
    }
    text
}

/// Writes DIR/wisegate.toml unless it exists.
pub fn write_if_absent(dir: &Path, fake: &FakeWise) -> Result<Outcome, String> {
    let path = dir.join("wisegate.toml");
    match crate::cli::folder::write_path(&path, &render(fake), false, true) {
        Ok(()) => Ok(Outcome::Written(
            keys(fake)
                .into_iter()
                .map(|(table, key, _)| match table {
                    "" => key.to_owned(),
                    _ => format!("{table}.{key}"),
                })
                .collect(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            Ok(Outcome::Kept(text.contains(&fake.mtls_url())))
        }
        Err(e) => Err(format!("cannot write {}: {e}", path.display())),
    }
}
