//! The `fake-wise` command line, parsed by hand (two commands, a handful of options) so
//! that the double needs no argument-parser dependency. Every error names the argument.

use std::ffi::OsString;
use std::path::PathBuf;

use fake_wise::{ListenPorts, TokenShape, JWE_MIN_LENGTH};

/// `--help`'s text: the commands, the kept folder, the ports and the exit codes.
pub const USAGE: &str = "\
usage: fake-wise --dir DIR [--mtls-port N] [--legacy-port N] [--authorize-port N]
                 [--jwe-app-tokens N] [--jwe-user-tokens N] [--user NAME=TOKEN]...
       fake-wise sign-csr --dir DIR [--csr FILE] [--out FILE]

A local double of Wise (mTLS API host with the token endpoint, legacy host, authorize
page) to rehearse wisegate's real steps before touching Wise.

fake-wise --dir DIR
    Keeps its files in DIR. The first start writes a test CA (ca.pem, ca.key), the
    hosts' certificate (server.crt, server.key), a ready client certificate
    (client.crt, client.key), client_secret and personal_token; later starts reuse
    them, so certificates it signed and configs naming them stay valid. Creates DIR/tls
    for `wisegate csr`, and writes DIR/wisegate.toml with every key set for this double
    unless that file exists (it is never overwritten). Prints its URLs and the keys it
    set, then serves until Ctrl-C. Tokens live in memory: after a restart, run
    `wisegate authorize --force` again.
  --mtls-port N, --legacy-port N, --authorize-port N
    Listen on these ports of 127.0.0.1 (default: any free port). wisegate.toml names
    the ports of the first start: give the same three to restart without editing it.
  --jwe-app-tokens N, --jwe-user-tokens N
    Issue client-credentials (app) or user access tokens shaped like a JWE of N
    characters (five base64url segments; N at least 480) instead of UUIDs, as Wise's
    client-credentials tokens are becoming (500-800+ characters).
  --user NAME=PERSONAL_TOKEN (repeatable)
    One more Wise user (a business account) besides `default`, whose personal token is
    DIR/personal_token. Each user has its own token lineage and profile id; the
    legacy host takes each one's personal token, and the echo's `user` says whose
    token arrived. Authorize as a user with `&user=NAME` on the authorize page (the
    first user without it). NAME: letters, digits, `-` and `_`.

fake-wise sign-csr --dir DIR [--csr FILE] [--out FILE]
    Signs a CSR made by `wisegate csr` (RSA or EC) with DIR's CA, as Wise's Developer
    Hub does: a client certificate (clientAuth) valid for a year, CN = the client id.
    Defaults: --csr DIR/tls/client.csr, --out DIR/tls/client.crt.

Exit codes: 0 done, 1 failed (the message names the file), 64 bad arguments.";

/// What to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Print [`USAGE`].
    Help,
    /// Serve the double from a kept folder.
    Serve {
        dir: PathBuf,
        ports: ListenPorts,
        tokens: TokenShapes,
        /// `--user` in order: name and personal token.
        users: Vec<(String, String)>,
    },
    /// Sign a CSR with the folder's CA.
    SignCsr {
        dir: PathBuf,
        csr: PathBuf,
        out: PathBuf,
    },
}

/// What the access tokens look like (`--jwe-app-tokens`, `--jwe-user-tokens`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TokenShapes {
    pub user: TokenShape,
    pub app: TokenShape,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut args = args.into_iter().peekable();
    let sign = args.peek().and_then(|a| a.to_str()) == Some("sign-csr");
    if sign {
        args.next();
    }
    let (mut dir, mut csr, mut out) = (None, None, None);
    let mut ports = ListenPorts::default();
    let mut tokens = TokenShapes::default();
    let mut users = Vec::new();
    while let Some(arg) = args.next() {
        let name = arg.to_string_lossy().into_owned();
        let mut value = || args.next().ok_or_else(|| format!("{name} needs a value"));
        match (name.as_str(), sign) {
            ("-h" | "--help", _) => return Ok(Command::Help),
            ("--dir", _) => dir = Some(PathBuf::from(value()?)),
            ("--csr", true) => csr = Some(PathBuf::from(value()?)),
            ("--out", true) => out = Some(PathBuf::from(value()?)),
            ("--mtls-port", false) => ports.mtls = port(&name, value()?)?,
            ("--legacy-port", false) => ports.legacy = port(&name, value()?)?,
            ("--authorize-port", false) => ports.authorize = port(&name, value()?)?,
            ("--jwe-app-tokens", false) => tokens.app = jwe_length(&name, value()?)?,
            ("--jwe-user-tokens", false) => tokens.user = jwe_length(&name, value()?)?,
            ("--user", false) => users.push(user(&users, value()?)?),
            _ => return Err(format!("unknown argument `{name}` (see --help)")),
        }
    }
    let dir = dir.ok_or("--dir DIR is required")?;
    Ok(if sign {
        Command::SignCsr {
            csr: csr.unwrap_or_else(|| dir.join("tls/client.csr")),
            out: out.unwrap_or_else(|| dir.join("tls/client.crt")),
            dir,
        }
    } else {
        Command::Serve {
            dir,
            ports,
            tokens,
            users,
        }
    })
}

/// `--user NAME=PERSONAL_TOKEN`: a new name, a token no earlier `--user` has.
fn user(earlier: &[(String, String)], value: OsString) -> Result<(String, String), String> {
    let text = value.to_string_lossy();
    let Some((name, token)) = text.split_once('=') else {
        // Not echoed: a value without `=` may be a bare token.
        return Err("--user takes NAME=PERSONAL_TOKEN, and this value has no `=`".to_owned());
    };
    let name_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if name.is_empty() || !name_ok {
        return Err(format!(
            "--user {name}=...: the name must be letters, digits, `-` or `_`"
        ));
    }
    if name == "default" || earlier.iter().any(|(n, _)| n == name) {
        return Err(format!(
            "--user {name}=...: the name is taken (`default` is DIR/personal_token's user)"
        ));
    }
    if token.trim().is_empty() || token.trim() != token {
        return Err(format!(
            "--user {name}=...: the personal token is empty or has spaces around it"
        ));
    }
    if earlier.iter().any(|(_, t)| t == token) {
        return Err(format!(
            "--user {name}=...: another --user has the same personal token"
        ));
    }
    Ok((name.to_owned(), token.to_owned()))
}

fn jwe_length(name: &str, value: OsString) -> Result<TokenShape, String> {
    let text = value.to_string_lossy();
    match text.parse::<usize>() {
        Ok(length) if (JWE_MIN_LENGTH..=65_536).contains(&length) => Ok(TokenShape::Jwe(length)),
        _ => Err(format!(
            "{name}: `{text}` is not a token length ({JWE_MIN_LENGTH}-65536 characters)"
        )),
    }
}

fn port(name: &str, value: OsString) -> Result<u16, String> {
    let text = value.to_string_lossy();
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("{name}: `{text}` is not a port number (1-65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn serve_with_fixed_ports() {
        let command = run(&[
            "--dir",
            "d",
            "--mtls-port",
            "9443",
            "--authorize-port",
            "9445",
        ]);
        let ports = ListenPorts {
            mtls: 9443,
            legacy: 0,
            authorize: 9445,
        };
        assert_eq!(
            command,
            Ok(Command::Serve {
                dir: "d".into(),
                ports,
                tokens: TokenShapes::default(),
                users: Vec::new(),
            })
        );
    }

    #[test]
    fn repeated_users() {
        let command = run(&["--dir", "d", "--user", "uk-ltd=tok-1", "--user", "us=tok=2"]);
        let Ok(Command::Serve { users, .. }) = command else {
            panic!("{command:?}");
        };
        let pair = |n: &str, t: &str| (n.to_owned(), t.to_owned());
        assert_eq!(users, [pair("uk-ltd", "tok-1"), pair("us", "tok=2")]);
        let error = |args: &[&str]| run(args).unwrap_err();
        let bare = error(&["--dir", "d", "--user", "bare-token"]);
        assert!(bare.contains("NAME=PERSONAL_TOKEN") && !bare.contains("bare-token"));
        assert!(error(&["--dir", "d", "--user", "default=x"]).contains("taken"));
        assert!(error(&["--dir", "d", "--user", "a=x", "--user", "a=y"]).contains("taken"));
        assert!(error(&["--dir", "d", "--user", "a=x", "--user", "b=x"]).contains("same"));
        assert!(error(&["--dir", "d", "--user", "a b=x"]).contains("letters"));
        assert!(error(&["--dir", "d", "--user", "a="]).contains("empty"));
        let leak = error(&[
            "--dir",
            "d",
            "--user",
            "a=secret-token",
            "--user",
            "b=secret-token",
        ]);
        assert!(!leak.contains("secret-token"), "{leak}");
    }

    #[test]
    fn jwe_token_lengths() {
        let command = run(&["--dir", "d", "--jwe-app-tokens", "800"]);
        let Ok(Command::Serve { tokens, .. }) = command else {
            panic!("{command:?}");
        };
        assert_eq!(tokens.app, TokenShape::Jwe(800));
        assert_eq!(tokens.user, TokenShape::Uuid);
        let error = run(&["--dir", "d", "--jwe-user-tokens", "40"]).unwrap_err();
        assert!(
            error.contains("--jwe-user-tokens: `40`") && error.contains("480"),
            "{error}"
        );
    }

    #[test]
    fn sign_csr_defaults_to_the_folder() {
        assert_eq!(
            run(&["sign-csr", "--dir", "d"]),
            Ok(Command::SignCsr {
                dir: "d".into(),
                csr: "d/tls/client.csr".into(),
                out: "d/tls/client.crt".into()
            })
        );
    }

    #[test]
    fn errors_name_the_argument() {
        let error = |args: &[&str]| run(args).unwrap_err();
        assert!(error(&["--dir", "d", "--mtls-port", "x"]).contains("--mtls-port: `x`"));
        assert!(error(&["--dir", "d", "--legacy-port", "0"]).contains("--legacy-port"));
        assert!(error(&["--dir"]).contains("--dir needs a value"));
        assert!(error(&["--mtls-port", "1"]).contains("--dir DIR is required"));
        assert!(error(&["--dir", "d", "--csr", "c"]).contains("`--csr`"));
        assert!(error(&["sign-csr", "--dir", "d", "--mtls-port", "1"]).contains("`--mtls-port`"));
    }
}
