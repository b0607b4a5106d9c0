//! `wisegate check` (the checklist, non-zero on a failure) and `wisegate csr` (the key
//! and CSR for Wise's Developer Hub): the commands that look at or make files.

use super::args::CsrArgs;
use super::EXIT_USAGE;
use wisegate::config::Config;

/// Prints the checklist; an error when a check failed.
pub async fn check(config: &Config, online: bool) -> anyhow::Result<()> {
    let list = wisegate::check::check(config, online).await;
    print!("{}", list.text);
    if list.failures > 0 {
        anyhow::bail!("{} check(s) failed", list.failures);
    }
    println!("All checks passed.");
    Ok(())
}

/// Writes the key and the CSR and prints the next steps; exit 64 on a usage error.
pub fn csr(args: CsrArgs) -> anyhow::Result<()> {
    let CsrArgs {
        org,
        country,
        key_type,
        key_out,
        csr_out,
        force,
    } = args;
    let request = wisegate::csr::CsrRequest {
        org,
        country,
        key_type: key_type.into(),
        key_out,
        csr_out,
        force,
    };
    match wisegate::csr::create(&request) {
        Ok(()) => {
            println!("{}", wisegate::csr::next_steps(&request));
            Ok(())
        }
        Err(error) if error.is_usage() => {
            eprintln!("wisegate: {error}");
            std::process::exit(i32::from(EXIT_USAGE));
        }
        Err(error) => Err(error.into()),
    }
}
