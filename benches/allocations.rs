//! Heap allocations per proxied request: wisegate runs in-process in front of fake-wise
//! (real mTLS, HTTP/2 to it by ALPN), a client sends requests one at a time over one plain
//! HTTP/1.1 keep-alive connection and then over one h2c connection, and a counting global
//! allocator reports the allocations and bytes that wisegate's threads made per request,
//! for three requests: `GET /v1/profiles` (the user's OAuth token), `POST /v1/transfers`
//! with a 1 KiB JSON body, and `GET /v3/profiles/1/subscriptions` on a `personal_token`
//! route (the legacy host).
//!
//! `cargo bench --bench allocations` (REQUESTS=2000 measured per case by default, after
//! 500 unmeasured); `cargo test --bench allocations` runs it as a debug build, with the
//! same counts.
//!
//! The counter wraps mimalloc, the allocator the binary ships with (built with
//! `ALLOCATIONS_SYSTEM=1`, the system allocator, so that heaptrack sees the calls). Only
//! wisegate's threads count: the client and fake-wise run on threads marked excluded, so
//! the figures are the proxy's own (its app side, its upstream client and TLS, metrics,
//! logging). There is no settling pause: the work a request leaves after its answer
//! (metrics, the connection's return to the pool) falls into the next request's count, so
//! the warm-up's last request and the measured run's last one cancel out. Allocations of
//! wisegate's periodic tasks while a case runs are counted too: a few in seconds, noise
//! far below one allocation per request. Besides the means it prints how the allocations
//! of one case spread over size classes (powers of two), a cheap hint at which structures
//! dominate. `ALLOCATION_SITES=1` records a backtrace of each of the HTTP/1.1 GET's
//! allocations instead (slow: use a small REQUESTS) and prints the source lines that
//! allocate most, each with the line of wisegate's own code it came through.

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use fake_wise::{FakeWise, FakeWiseConfig, TestCa};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mimalloc::MiMalloc;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// `ALLOCATIONS_SYSTEM=1` when building: count around the system allocator instead of
/// mimalloc, for heaptrack (which sees malloc only) to name the allocation sites.
const SYSTEM: bool = option_env!("ALLOCATIONS_SYSTEM").is_some();

/// The allocator: mimalloc (or the system's, see [`SYSTEM`]), counting allocations (and
/// reallocations) and the bytes asked for, on every thread not marked excluded.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Allocations by size class: index `i` counts sizes in `(2^(i-1), 2^i]` (0: 0 or 1).
static SIZE_CLASSES: [AtomicU64; 24] = [const { AtomicU64::new(0) }; 24];

/// While set, every counted allocation also records its backtrace (`ALLOCATION_SITES`).
static CAPTURE: AtomicBool = AtomicBool::new(false);
static SITES: Mutex<Vec<Backtrace>> = Mutex::new(Vec::new());

thread_local! {
    /// Set on the client's and fake-wise's threads, and while recording a backtrace.
    static EXCLUDED: Cell<bool> = const { Cell::new(false) };
}

fn count(size: usize) {
    if !EXCLUDED.try_with(Cell::get).unwrap_or(true) {
        if CAPTURE.load(Ordering::Relaxed) {
            // Capturing and storing allocate too: not counted, not captured.
            EXCLUDED.with(|e| e.set(true));
            let trace = Backtrace::force_capture();
            SITES
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(trace);
            EXCLUDED.with(|e| e.set(false));
            return;
        }
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(size as u64, Ordering::Relaxed);
        let class = (usize::BITS - size.saturating_sub(1).leading_zeros()) as usize;
        SIZE_CLASSES[class.min(SIZE_CLASSES.len() - 1)].fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        if SYSTEM {
            unsafe { System.alloc(layout) }
        } else {
            unsafe { MiMalloc.alloc(layout) }
        }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        if SYSTEM {
            unsafe { System.alloc_zeroed(layout) }
        } else {
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        if SYSTEM {
            unsafe { System.realloc(ptr, layout, new_size) }
        } else {
            unsafe { MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if SYSTEM {
            unsafe { System.dealloc(ptr, layout) }
        } else {
            unsafe { MiMalloc.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Marks the current thread's allocations as not wisegate's.
struct Excluded;

impl Excluded {
    fn mark() {
        EXCLUDED.with(|e| e.set(true));
    }
}

/// The counters now: allocations, bytes, allocations by size class.
fn snapshot() -> (u64, u64, Vec<u64>) {
    (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
        SIZE_CLASSES
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect(),
    )
}

const CONFIG: &str = r#"environment = "sandbox"

[listen]
address = "127.0.0.1:0"

[admin]
address = "127.0.0.1:0"

[upstream]
mtls_url = "@MTLS@"
legacy_url = "@LEGACY@"
ca_file = "ca.pem"

[mtls]
cert_file = "client.crt"
key_file = "client.key"

[oauth]
client_id = "@CLIENT_ID@"
client_secret_file = "client_secret"
redirect_uri = "@REDIRECT@"
authorize_url = "@AUTHORIZE@"
token_store = "tokens.json"

[personal_token]
token_file = "personal_token"

[[route]]
name = "profile-webhooks"
path = "/v3/profiles/*/subscriptions/**"
mode = "personal_token"

[log]
level = "warn"
"#;

/// Writes the PKI, secrets and config for a wisegate in front of `wise` into `dir`.
fn write_setup(dir: &std::path::Path, wise: &FakeWise, ca: &TestCa) -> std::path::PathBuf {
    let client = ca.client_cert("allocation bench");
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("write");
    write("ca.pem", &ca.cert_pem());
    write("client.crt", &client.cert_pem);
    write("client.key", &client.key_pem);
    write(
        "client_secret",
        &format!("{}\n", wise.config().client_secret),
    );
    write(
        "personal_token",
        &format!("{}\n", wise.config().personal_token),
    );
    let config = CONFIG
        .replace("@MTLS@", &wise.mtls_url())
        .replace("@LEGACY@", &wise.legacy_url())
        .replace("@CLIENT_ID@", &wise.config().client_id)
        .replace("@REDIRECT@", &wise.config().redirect_uri)
        .replace("@AUTHORIZE@", &wise.authorize_url());
    write("wisegate.toml", &config);
    dir.join("wisegate.toml")
}

/// One of the measured requests.
#[derive(Clone, Copy)]
enum Case {
    /// `GET /v1/profiles`: the user's OAuth token, the mTLS host.
    Get,
    /// `POST /v1/transfers` with a 1 KiB JSON body.
    Post1KiB,
    /// `GET /v3/profiles/1/subscriptions`: a personal_token route, the legacy host.
    PersonalToken,
}

impl Case {
    const ALL: [Case; 3] = [Case::Get, Case::Post1KiB, Case::PersonalToken];

    fn label(self) -> &'static str {
        match self {
            Case::Get => "GET",
            Case::Post1KiB => "POST 1 KiB",
            Case::PersonalToken => "personal GET",
        }
    }

    /// The request, with `target` in origin form (HTTP/1.1) or absolute (h2c).
    fn request(self, base: &str, host: &str) -> Request<Full<Bytes>> {
        let (method, path, body) = match self {
            Case::Get => ("GET", "/v1/profiles", Bytes::new()),
            Case::Post1KiB => ("POST", "/v1/transfers", one_kib_json()),
            Case::PersonalToken => ("GET", "/v3/profiles/1/subscriptions", Bytes::new()),
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("authorization", "Bearer the-apps-old-personal-token");
        if base.is_empty() {
            builder = builder.header("host", host);
        }
        if !body.is_empty() {
            builder = builder.header("content-type", "application/json");
        }
        builder.body(Full::new(body)).expect("request")
    }
}

/// A JSON transfer body of exactly 1,024 bytes.
fn one_kib_json() -> Bytes {
    let head = r#"{"targetAccount":12345678,"quoteUuid":"00000000-0000-4000-8000-000000000000","customerTransactionId":"11111111-1111-4111-8111-111111111111","details":{"reference":""#;
    let tail = r#""}}"#;
    let pad = "x".repeat(1024 - head.len() - tail.len());
    Bytes::from(format!("{head}{pad}{tail}"))
}

/// Sends `n` requests one after the other with `send`; every answer must be 200.
async fn drive<F, Fut>(n: usize, wise: &FakeWise, mut send: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = http::Response<hyper::body::Incoming>>,
{
    for i in 0..n {
        let response = send().await;
        assert_eq!(response.status(), 200, "request {i} through wisegate");
        response.into_body().collect().await.expect("body arrives");
        if i % 1000 == 999 {
            wise.clear_requests();
        }
    }
}

/// The size classes that hold most of `counts`, as `<=64 B: 3.1` per request.
fn size_classes(counts: &[u64], n: f64) -> String {
    let mut classes: Vec<(usize, u64)> = counts.iter().copied().enumerate().collect();
    classes.sort_by_key(|&(_, count)| std::cmp::Reverse(count));
    classes
        .iter()
        .take(6)
        .filter(|&&(_, count)| count > 0)
        .map(|&(class, count)| format!("<={} B: {:.1}", 1u64 << class, count as f64 / n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Source files that are the allocation machinery or containers rather than the code
/// that allocates: the standard library, this bench, and collection crates.
fn machinery(location: &str) -> bool {
    let containers = [
        "/bytes-",
        "/hashbrown-",
        "/smallvec-",
        "/indexmap-",
        "/slab-",
    ];
    location.starts_with("/rustc/")
        || location.starts_with("./benches/")
        || containers.iter().any(|c| location.contains(c))
}

/// `/root/.cargo/registry/src/index.../hyper-1.12.0/src/proto/h1/role.rs:225:25` ->
/// `hyper-1.12.0/src/proto/h1/role.rs:225`.
fn short(location: &str) -> String {
    let path = location.rsplit_once(':').map_or(location, |(p, _)| p);
    match path.find("/index.crates.io-") {
        Some(i) => {
            let rest = &path[i + 1..];
            rest.split_once('/').map_or(rest, |(_, r)| r).to_owned()
        }
        None => path.trim_start_matches("./").to_owned(),
    }
}

/// The recorded allocations grouped by the first source line outside the machinery, with
/// the first line of wisegate's own code (`src/`) beneath it, the most frequent first, as
/// counts per request.
fn print_sites(requests: usize) {
    let traces = std::mem::take(&mut *SITES.lock().unwrap_or_else(PoisonError::into_inner));
    let mut sites: HashMap<(String, String), u64> = HashMap::new();
    for trace in &traces {
        let text = trace.to_string();
        let locations: Vec<&str> = text
            .lines()
            .filter_map(|line| line.trim().strip_prefix("at "))
            .collect();
        let site = locations
            .iter()
            .find(|l| !machinery(l))
            .map_or_else(|| "(std only)".to_owned(), |l| short(l));
        let ours = locations
            .iter()
            .find(|l| l.starts_with("./src/"))
            .map_or_else(|| "-".to_owned(), |l| short(l));
        *sites.entry((site, ours)).or_default() += 1;
    }
    let mut sites: Vec<((String, String), u64)> = sites.into_iter().collect();
    sites.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    println!("allocation sites ({} allocations recorded):", traces.len());
    for ((site, ours), n) in sites.iter().take(30) {
        println!(
            "{:>6.2}/request  {site}  (wisegate: {ours})",
            *n as f64 / requests as f64
        );
    }
}

/// Measures `measured` requests after `warm` unmeasured ones; prints one line (and the
/// size classes with `classes`).
async fn measure<F, Fut>(
    label: &str,
    (warm, measured): (usize, usize),
    wise: &FakeWise,
    classes: bool,
    mut send: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = http::Response<hyper::body::Incoming>>,
{
    drive(warm, wise, &mut send).await;
    let sites = classes && std::env::var_os("ALLOCATION_SITES").is_some();
    CAPTURE.store(sites, Ordering::Relaxed);
    let (a0, b0, c0) = snapshot();
    drive(measured, wise, &mut send).await;
    let (a1, b1, c1) = snapshot();
    CAPTURE.store(false, Ordering::Relaxed);
    if sites {
        print_sites(measured);
        return;
    }
    let n = measured as f64;
    println!(
        "{label:<24} {:>7.1} allocations/request {:>8.0} bytes/request ({measured} requests)",
        (a1 - a0) as f64 / n,
        (b1 - b0) as f64 / n
    );
    if classes {
        let spread: Vec<u64> = c1
            .iter()
            .zip(&c0)
            .map(|(after, before)| after - before)
            .collect();
        println!("{:<24} by size class: {}", "", size_classes(&spread, n));
    }
}

fn main() {
    let measured: usize = std::env::var("REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let counts = (500, measured);
    Excluded::mark();
    // fake-wise and the client: excluded threads.
    let outside = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .on_thread_start(Excluded::mark)
        .build()
        .expect("runtime");
    // wisegate: counted threads (its serving lanes make their own, counted too).
    let inside = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listeners = inside.block_on(async {
        wisegate::Listeners {
            proxy: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            admin: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        }
    });
    let proxy = listeners.proxy.local_addr().expect("address");
    let dir = tempfile::tempdir().expect("temp dir");
    outside.block_on(async {
        let ca = TestCa::new("allocation bench CA");
        let wise = FakeWise::start(FakeWiseConfig::default(), &ca.server_cert(), &ca.cert_pem())
            .await
            .expect("fake-wise starts");
        let path = write_setup(dir.path(), &wise, &ca);
        let config = wisegate::config::Config::load(&path).expect("config is valid");
        wisegate::authorize::authorize(
            &config,
            Some(wise.issue_code()),
            tokio::io::empty(),
            |_| {},
        )
        .await
        .expect("authorize --code");
        let shutdown = CancellationToken::new();
        let served = inside.spawn(wisegate::run(config, listeners, shutdown.clone()));
        let host = proxy.to_string();
        let base = format!("http://{proxy}");

        let tcp = TcpStream::connect(proxy).await.expect("connect");
        // As an app's client would: h2's HEADERS and DATA frames otherwise wait on
        // Nagle for the delayed ACK of the first (40 ms a request).
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let (h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(conn);
        // One request at a time on the connection, each once it is ready again.
        let h1 = std::rc::Rc::new(tokio::sync::Mutex::new(h1));
        // HTTP/1.1 in origin form (wisegate refuses absolute-form targets), h2c with
        // the scheme and authority HTTP/2 requests carry.
        for case in Case::ALL {
            let label = format!("HTTP/1.1 {}", case.label());
            let classes = matches!(case, Case::Get);
            measure(&label, counts, &wise, classes, || {
                let (h1, request) = (h1.clone(), case.request("", &host));
                async move {
                    let mut h1 = h1.lock().await;
                    h1.ready().await.expect("connection ready");
                    h1.send_request(request).await.expect("answer")
                }
            })
            .await;
        }

        let tcp = TcpStream::connect(proxy).await.expect("connect");
        // As an app's client would: h2's HEADERS and DATA frames otherwise wait on
        // Nagle for the delayed ACK of the first (40 ms a request).
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let (h2, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .expect("h2c handshake");
        tokio::spawn(conn);
        for case in Case::ALL {
            let label = format!("h2c {}", case.label());
            measure(&label, counts, &wise, false, || {
                let mut h2 = h2.clone();
                let request = case.request(&base, &host);
                async move { h2.send_request(request).await.expect("answer") }
            })
            .await;
        }

        shutdown.cancel();
        let _ = served.await;
        wise.shutdown().await;
    });
}
