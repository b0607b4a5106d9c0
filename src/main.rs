//! The `wisegate` command line: parses arguments and runs the command ([`cli`]: one
//! module per subcommand group). Exit codes: 0 success, 64 invalid arguments or config,
//! 1 anything else.

mod cli;

use clap::Parser;
use cli::args::Cli;
use cli::dispatch::dispatch;
use cli::EXIT_USAGE;
use std::process::ExitCode;
use wisegate::config::ConfigError;

/// mimalloc instead of glibc's malloc: under load glibc's arenas contended on their locks
/// and kept freed memory resident (bench/RESULTS.md, "What was tried", has the figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wisegate: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if let Some(config_error) = error.downcast_ref::<ConfigError>() {
                eprintln!("wisegate: {config_error}");
                return ExitCode::from(EXIT_USAGE);
            }
            eprintln!("wisegate: {error:#}");
            ExitCode::FAILURE
        }
    }
}
