//! `wisegate csr` through the binary: every key type gives a CSR that parses, verifies
//! and names the organisation and country given, beside a PKCS#8 key of mode 0600 whose
//! public key is the CSR's; existing files are kept unless `--force`; bad arguments exit 64.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateSigningRequestDer, PrivateKeyDer};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

/// `wisegate csr` for an EC P-256 key of org Acme into `key` and `csr`.
fn ec256_csr(key: &std::path::Path, csr: &std::path::Path) -> Output {
    wisegate_csr(&[
        "--org",
        "Acme",
        "--key-type",
        "ec256",
        "--key-out",
        key.to_str().unwrap(),
        "--csr-out",
        csr.to_str().unwrap(),
    ])
}

fn wisegate_csr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wisegate"))
        .arg("csr")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Made {
    _dir: tempfile::TempDir,
    key: PathBuf,
    csr: PathBuf,
    output: Output,
}

fn make(extra: &[&str]) -> Made {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("client.key");
    let csr = dir.path().join("client.csr");
    let mut args = vec![
        "--key-out",
        key.to_str().unwrap(),
        "--csr-out",
        csr.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = wisegate_csr(&args);
    Made {
        _dir: dir,
        key,
        csr,
        output,
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Checks everything about a successful run and returns (O values, C values, key algorithm OID).
fn check_pair(made: &Made) -> (Vec<String>, Vec<String>, String) {
    let (stdout, stderr) = (text(&made.output.stdout), text(&made.output.stderr));
    assert!(made.output.status.success(), "{stdout}\n{stderr}");

    // The key: PKCS#8 PEM only, mode 0600, never printed.
    let key_pem = std::fs::read_to_string(&made.key).unwrap();
    assert!(
        key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "PKCS#8 PEM"
    );
    assert!(key_pem.ends_with("-----END PRIVATE KEY-----\n"));
    assert_eq!(mode(&made.key), 0o600);
    for line in key_pem.lines().filter(|line| !line.starts_with("-----")) {
        assert!(
            !stdout.contains(line) && !stderr.contains(line),
            "key printed"
        );
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
    let key_pair = rcgen::KeyPair::try_from(&key).unwrap();

    // The CSR: one PEM block and nothing else, a valid self-signature, the key's public key.
    let csr_pem = std::fs::read_to_string(&made.csr).unwrap();
    assert!(csr_pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
    assert!(csr_pem.ends_with("-----END CERTIFICATE REQUEST-----\n"));
    assert_eq!(csr_pem.matches("-----BEGIN").count(), 1);
    let der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes()).unwrap();
    let (rest, csr) = X509CertificationRequest::from_der(der.as_ref()).unwrap();
    assert!(rest.is_empty());
    csr.verify_signature().unwrap();
    let info = &csr.certification_request_info;
    assert_eq!(
        info.subject_pki.raw,
        rcgen::PublicKeyData::subject_public_key_info(&key_pair).as_slice(),
        "the CSR carries the key file's public key"
    );
    assert_eq!(info.subject.iter_common_name().count(), 0, "Wise sets CN");

    // What to do next.
    let csr_path = made.csr.display().to_string();
    let key_path = made.key.display().to_string();
    assert!(stdout.contains("Developer Hub") && stdout.contains(&csr_path));
    assert!(
        stdout.contains(&format!("key_file = \"{key_path}\"")),
        "{stdout}"
    );
    assert!(stdout.contains("one year"), "{stdout}");

    let org = strings(info.subject.iter_organization());
    let country = strings(info.subject.iter_country());
    (
        org,
        country,
        info.subject_pki.algorithm.algorithm.to_id_string(),
    )
}

fn strings<'a>(
    values: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> Vec<String> {
    values
        .map(|value| value.as_str().unwrap().to_owned())
        .collect()
}

const RSA: &str = "1.2.840.113549.1.1.1";
const EC: &str = "1.2.840.10045.2.1";

#[test]
fn rsa2048_with_country() {
    let made = make(&[
        "--org",
        "Acme Ltd",
        "--country",
        "gb",
        "--key-type",
        "rsa2048",
    ]);
    let (org, country, algorithm) = check_pair(&made);
    assert_eq!((org, country), (vec!["Acme Ltd".into()], vec!["GB".into()]));
    assert_eq!(algorithm, RSA);
}

#[test]
fn rsa3072_without_country() {
    let made = make(&["--org", "Acme Ltd", "--key-type", "rsa3072"]);
    let (org, country, algorithm) = check_pair(&made);
    assert_eq!((org, country), (vec!["Acme Ltd".into()], vec![]));
    assert_eq!(algorithm, RSA);
}

/// The default key type, as in Wise's own example: RSA 4096 (slow, so tested once).
#[test]
fn rsa4096_is_the_default() {
    let made = make(&["--org", "Zürich Widgets AG", "--country", "CH"]);
    let (org, country, algorithm) = check_pair(&made);
    assert_eq!(
        (org, country),
        (vec!["Zürich Widgets AG".into()], vec!["CH".into()])
    );
    assert_eq!(algorithm, RSA);
    assert!(text(&made.output.stdout).contains("RSA 4096"));
}

#[test]
fn ec256_and_ec384() {
    for key_type in ["ec256", "ec384"] {
        let made = make(&["--org", "Acme", "--country", "DE", "--key-type", key_type]);
        let (org, country, algorithm) = check_pair(&made);
        assert_eq!((org, country), (vec!["Acme".into()], vec!["DE".into()]));
        assert_eq!(algorithm, EC);
    }
}

#[test]
fn existing_files_are_kept_without_force_and_replaced_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("client.key");
    let csr = dir.path().join("client.csr");
    std::fs::write(&key, "the key a certificate was issued for\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let args = [
        "--org",
        "Acme",
        "--key-type",
        "ec256",
        "--key-out",
        key.to_str().unwrap(),
        "--csr-out",
        csr.to_str().unwrap(),
    ];

    let refused = wisegate_csr(&args);
    let stderr = text(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains(&key.display().to_string()) && stderr.contains("--force"));
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        "the key a certificate was issued for\n"
    );
    assert!(!csr.exists(), "nothing is written when the key cannot be");

    // An existing CSR is kept too.
    let other_key = dir.path().join("other.key");
    std::fs::write(&csr, "old csr").unwrap();
    let refused = ec256_csr(&other_key, &csr);
    assert!(!refused.status.success());
    assert_eq!(std::fs::read_to_string(&csr).unwrap(), "old csr");
    assert!(!other_key.exists());

    let forced = wisegate_csr(&[&args[..], &["--force"]].concat());
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(mode(&key), 0o600, "a replaced key is 0600 too");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_arguments_exit_64_and_write_nothing() {
    let cases: [&[&str]; 5] = [
        &[],
        &["--org", "  "],
        &["--org", "Acme", "--country", "GBR"],
        &["--org", "Acme", "--key-type", "rsa1024"],
        &["--org", &"x".repeat(65)],
    ];
    for extra in cases {
        let made = make(extra);
        assert_eq!(
            made.output.status.code(),
            Some(64),
            "{extra:?}: {}",
            text(&made.output.stderr)
        );
        assert!(!made.key.exists() && !made.csr.exists(), "{extra:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("both.pem");
    let same = wisegate_csr(&[
        "--org",
        "Acme",
        "--key-out",
        both.to_str().unwrap(),
        "--csr-out",
        both.to_str().unwrap(),
    ]);
    assert_eq!(same.status.code(), Some(64), "{}", text(&same.stderr));
    assert!(!both.exists());
}

/// A fresh checkout has no tls/ folder: it is made, the key's folder 0700.
#[test]
fn missing_folders_are_made_the_keys_with_mode_0700() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("tls/private/client.key");
    let csr = dir.path().join("requests/client.csr");
    let output = ec256_csr(&key, &csr);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(key.is_file() && csr.is_file());
    assert_eq!(mode(key.parent().unwrap()), 0o700);
    assert_eq!(mode(&dir.path().join("tls")), 0o700);
    assert_eq!(mode(&key), 0o600);
}

#[test]
fn an_unwritable_folder_exits_1_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A file where a folder should be: unwritable even for root.
    std::fs::write(dir.path().join("missing"), "").unwrap();
    let key = dir.path().join("missing/client.key");
    let csr = dir.path().join("client.csr");
    let output = ec256_csr(&key, &csr);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains(&key.display().to_string()));
    assert!(!csr.exists(), "no CSR without its key");
}
