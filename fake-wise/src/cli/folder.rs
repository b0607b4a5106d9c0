//! The kept folder of `fake-wise --dir DIR`: the test CA, the hosts' certificate, a
//! ready client certificate and the two secrets are made on the first start and reused
//! on later ones, so that a restarted double still trusts the certificates it signed and
//! a config naming these files stays valid.

use std::path::Path;

use fake_wise::{CertKeyPem, TestCa};

/// The CA and the hosts' certificate a start serves with.
pub struct Pki {
    pub ca: TestCa,
    pub server: CertKeyPem,
    /// Whether this start made them (false: reused from the folder).
    pub made: bool,
}

/// Loads DIR's CA (`ca.pem`, `ca.key`), or makes and writes a new PKI when the folder
/// has none. A folder from an older fake-wise (no `ca.key`) gets a new PKI.
pub fn pki(dir: &Path) -> Result<Pki, String> {
    if let Some(ca) = load_ca(dir)? {
        let server = CertKeyPem {
            cert_pem: read(dir, "server.crt")?,
            key_pem: read(dir, "server.key")?,
        };
        return Ok(Pki {
            ca,
            server,
            made: false,
        });
    }
    let ca = TestCa::new("fake-wise CA");
    let server = ca.server_cert();
    let client = ca.client_cert("fake-wise demo");
    write(dir, "ca.key", &ca.key_pem(), true)?;
    write(dir, "ca.pem", &ca.cert_pem(), false)?;
    write(dir, "server.crt", &server.cert_pem, false)?;
    write(dir, "server.key", &server.key_pem, true)?;
    write(dir, "client.crt", &client.cert_pem, false)?;
    write(dir, "client.key", &client.key_pem, true)?;
    Ok(Pki {
        ca,
        server,
        made: true,
    })
}

/// DIR's CA, or `None` when `ca.key` is absent.
pub fn load_ca(dir: &Path) -> Result<Option<TestCa>, String> {
    if !dir.join("ca.key").exists() {
        return Ok(None);
    }
    let (cert, key) = (read(dir, "ca.pem")?, read(dir, "ca.key")?);
    TestCa::from_pem(&cert, &key).map(Some).map_err(|error| {
        format!(
            "{} and ca.key are not a CA certificate and its key ({error}): \
             remove them to have a new test PKI made",
            dir.join("ca.pem").display()
        )
    })
}

/// The secret kept in DIR/`name` (trailing newline ignored), or `default`, written there.
pub fn secret(dir: &Path, name: &str, default: &str) -> Result<String, String> {
    if dir.join(name).exists() {
        return Ok(read(dir, name)?.trim_end_matches(['\r', '\n']).to_owned());
    }
    write(dir, name, default, true)?;
    Ok(default.to_owned())
}

/// Reads DIR/`name` as text.
pub fn read(dir: &Path, name: &str) -> Result<String, String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Writes DIR/`name`, replacing it; a secret gets mode 0600 (also when it existed).
pub fn write(dir: &Path, name: &str, contents: &str, secret: bool) -> Result<(), String> {
    let path = dir.join(name);
    write_path(&path, contents, secret, false)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes `path`; with `new_only`, fails with `AlreadyExists` instead of replacing it.
pub fn write_path(
    path: &Path,
    contents: &str,
    secret: bool,
    new_only: bool,
) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if new_only {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    std::io::Write::write_all(&mut options.open(path)?, contents.as_bytes())?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Creates `path` and its parents; the last one gets mode 0700 (it will hold a key).
pub fn private_dir(path: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))
}
