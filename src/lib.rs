//! wisegate: a sidecar that lets an application written for Wise's personal-token API
//! move to OAuth 2.0 + mutual TLS without changing its code. The app sends plain HTTP to
//! the listener; wisegate removes the app's credential, adds the route's credential and
//! forwards over (m)TLS to Wise.
//!
//! This file is the map: docs and re-exports only. Dependencies run one way, from the
//! request path down to the bodies (`body` <- `upstream` <- `error` <- `proxy`);
//! `.ci/check-layers` fails on any import cycle among the files.
//!
//! # Layout
//!
//! Serving:
//! - [`run`](mod@run): [`run()`](fn@run) builds everything from a config and serves until
//!   shutdown; [`Listeners`] are the two sockets it serves on.
//! - [`shared`]: [`Shared`], the state every request and background task reads.
//! - [`assembly`]: builds the parts from a config; an [`assembly::Snapshot`] is one
//!   config's request-path state. ("app" always means the client application.)
//! - [`server`]: the app-facing listener (its writes gathered into one per run of a
//!   connection's task); [`watchdog`]: its per-connection deadlines; [`admission`]:
//!   `max_connections`; [`lanes`]: one single-threaded runtime per core.
//! - [`reload`]: file watch + SIGHUP -> a new validated snapshot, swapped in atomically;
//!   [`last_reload`]: its last outcome, for `/status`.
//!
//! The request path:
//! - [`proxy`]: the request path as phases (plan, send with fallback, finish).
//!   [`headers`]: hop-by-hop hygiene. [`route`]: path patterns and the route table
//!   (method + path -> route, the default route last) and what a route does now;
//!   [`route_counts`]: answers per route. [`sca`]: signing Wise's SCA challenges on the
//!   personal-token path.
//! - [`body`]: body types; [`app_body`]: the app's request body as read and streamed;
//!   [`body_stall`]: its pause limit.
//! - [`upstream`]: one pooled HTTP/2 + HTTP/1.1 client per upstream host; [`slots`]: its
//!   request slots, shared out per app connection and client.
//! - [`error`]: wisegate's own answers.
//!
//! Credentials:
//! - [`config`]: the TOML file, validated into a typed [`config::Config`].
//! - [`tls`]: PEM loading, the client identity and its resolver, rustls configs.
//! - [`token`]: the OAuth client, the token store (a file, or Redis shared by replicas)
//!   and the token manager.
//! - [`account`]: the Wise accounts one wisegate serves, each with its own token
//!   manager, personal token and SCA key; which account an app token selects.
//! - [`secret`]: redacting secret types. [`file_safety`]: credential files and the token
//!   store folder others may read or write.
//!
//! Operations:
//! - [`admin`]: `/healthz`, `/readyz`, `/metrics`, `/status`, the token endpoints;
//!   [`readiness`]: what `/readyz` says; [`status`]: `/status` as JSON and HTML;
//!   [`history`]: its last hour; [`admin_client`]: the command line's way to a running
//!   wisegate.
//! - [`rollback_readiness`]: whether the legacy path would work if ops rolled back;
//!   [`legacy_path`]: what its last probe found.
//! - [`metrics`]: the Prometheus metrics; [`lineage_metrics`]: the per-account series.
//!   [`log_filter`]: `log.level` and `WISEGATE_LOG` read as a filter.
//!   [`expiry`]: the daily certificate-expiry warning.
//!   [`timestamps`]: Unix seconds and RFC 3339, as wisegate writes times.
//!
//! The command line's steps (the binary, `src/main.rs` and `src/cli/`, parses arguments
//! and calls these):
//! - [`authorize`]: the one-time OAuth authorization step. [`check`]: `wisegate check`;
//!   [`check_online`]: its `--online` part, which changes nothing; [`checklist`]: the
//!   lines both write.
//! - [`csr`]: `wisegate csr`, the private key and CSR for Wise's Developer Hub.
//!
//! Tests and embedders call [`run()`](fn@run) with listeners they bound themselves.

pub mod account;
pub mod admin;
pub mod admin_client;
pub mod admission;
pub mod app_body;
pub mod assembly;
pub mod authorize;
pub mod body;
pub mod body_stall;
pub mod check;
pub mod check_online;
pub mod checklist;
pub mod config;
pub mod csr;
pub mod error;
pub mod expiry;
pub mod file_safety;
pub mod headers;
pub mod history;
pub mod lanes;
pub mod last_reload;
pub mod legacy_path;
pub mod lineage_metrics;
pub mod log_filter;
pub mod metrics;
pub mod proxy;
pub mod readiness;
pub mod reload;
pub mod rollback_readiness;
pub mod route;
pub mod route_counts;
pub mod run;
pub mod sca;
pub mod secret;
pub mod server;
pub mod shared;
pub mod slots;
pub mod status;
pub mod timestamps;
pub mod tls;
pub mod token;
pub mod upstream;
pub mod watchdog;

pub use run::{run, run_with_clock, Listeners};
pub use shared::Shared;
