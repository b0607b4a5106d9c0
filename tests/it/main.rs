//! wisegate's integration tests, as one test binary: one module per area, sharing the
//! harness in [`common`]. One binary links wisegate and fake-wise once, instead of once
//! per file. Run one area with `cargo test --test it admin::`, one test by its name.
//!
//! All the tests share one process, two at a time (one per core). So a test changes no
//! process-wide state: no `std::env::set_var` (a child gets its variables through
//! `Command::env`), no `set_current_dir` (`Command::current_dir`), signals only to the
//! child processes it started (`process.rs`), no global tracing subscriber but
//! [`common::init_tracing`]'s `try_init`, no rustls provider installed, ports from
//! `127.0.0.1:0`. A test that must have the machine to itself (as
//! each file had when it was a binary run on its own) holds [`common::alone`]; one that
//! loads it holds [`common::heavy`], and the two never overlap.

mod common;

mod accounts;
mod admin;
mod authorize;
mod check;
mod client_certificate;
mod config;
mod conformance;
mod connections;
mod csr;
mod dashboard;
mod data_path;
mod faults;
mod file_safety;
mod hostile;
mod lanes;
mod long_tokens;
mod migration;
mod process;
mod redis_chaos;
mod redis_store;
mod rehearsal;
mod reload;
mod route_props;
mod routes;
mod sca;
mod sentinel;
mod slots;
mod status_page;
mod token_lifecycle;
