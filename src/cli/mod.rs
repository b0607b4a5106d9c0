//! The binary's own code, one module per subcommand group, so that `main.rs` is only the
//! exit codes and each command reads from the top: [`args`] is the grammar (clap),
//! [`dispatch`] reads the config and starts logging for the command, [`serve`] `run`, [`authorize`] `authorize`, [`token`] `token status` and `token
//! refresh`, [`account`] `account hash-token`, [`check`] `check` and `csr`. What they do is the library's; this is
//! arguments, logging and what gets printed.

pub mod account;
pub mod args;
pub mod authorize;
pub mod check;
pub mod dispatch;
pub mod serve;
pub mod token;

/// Invalid arguments or config (sysexits' EX_USAGE).
pub const EXIT_USAGE: u8 = 64;
