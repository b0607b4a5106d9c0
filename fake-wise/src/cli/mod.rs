//! The `fake-wise` binary's parts (not the library's): its command line, its kept
//! folder and the `wisegate.toml` it writes for a local rehearsal.

pub mod args;
pub mod folder;
pub mod wisegate_toml;
