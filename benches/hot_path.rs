//! Micro-benchmarks of the per-request steps of the proxy path, each calling the
//! function the proxy calls, with realistic inputs: the route lookup
//! (`RouteTable::find` and `Route::effective`, as `Snapshot::route` runs them), the
//! guard and the request-head rewrite, the metric bookkeeping, and the account
//! selection with several accounts (`AccountSet::select`'s hashing and comparisons).
//!
//! `cargo bench --bench hot_path -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Uri};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use wisegate::account::hash_token;
use wisegate::account::select::matching;
use wisegate::headers::strip_hop_by_hop;
use wisegate::metrics::{Metrics, RequestLabels, RouteModeLabels};
use wisegate::proxy::{guard, rewrite};
use wisegate::route::{Mode, Pattern, Route, RouteTable};
use wisegate::upstream::{Upstream, UpstreamSettings};

fn route(name: &str, path: &str, methods: &[Method], mode: Mode) -> Route {
    Route {
        name: name.to_owned(),
        pattern: Pattern::compile(path).expect("bench pattern compiles"),
        methods: methods.to_vec(),
        mode,
        shadow: false,
        fallback: None,
    }
}

/// Ten routes as an integration with webhooks, balances, transfers and a few legacy
/// endpoints might configure them.
fn table() -> RouteTable {
    RouteTable::new(vec![
        route(
            "profile-webhooks",
            "/v3/profiles/*/subscriptions/**",
            &[Method::GET, Method::POST, Method::DELETE],
            Mode::PersonalToken,
        ),
        route(
            "application-webhooks",
            "/v3/applications/*/subscriptions/**",
            &[],
            Mode::OAuthClient,
        ),
        route(
            "statements",
            "/v1/profiles/*/balance-statements/*/statement.json",
            &[Method::GET],
            Mode::OAuthMtls,
        ),
        route("balances", "/v4/profiles/*/balances", &[], Mode::OAuthMtls),
        route("quotes", "/v3/profiles/*/quotes/**", &[], Mode::OAuthMtls),
        route("recipients", "/v1/accounts/**", &[], Mode::OAuthMtls),
        route("transfers", "/v1/transfers/**", &[], Mode::OAuthMtls),
        route(
            "payments",
            "/v3/profiles/*/transfers/*/payments",
            &[Method::POST],
            Mode::OAuthMtls,
        ),
        route("rates", "/v1/rates", &[Method::GET], Mode::PersonalToken),
        route(
            "legacy-borderless",
            "/v1/borderless-accounts/**",
            &[],
            Mode::PersonalToken,
        ),
    ])
}

/// (method, path) as apps send them: hits early, late and nowhere, with and without the
/// quarterly version prefix.
fn requests() -> Vec<(Method, &'static str)> {
    vec![
        (Method::GET, "/v3/profiles/12345/subscriptions"),
        (Method::GET, "/v4/profiles/12345/balances"),
        (Method::POST, "/2026Q3/v1/transfers"),
        (Method::POST, "/v3/profiles/12345/transfers/987654/payments"),
        (Method::GET, "/2026Q3/v1/borderless-accounts/42/statement"),
        (Method::GET, "/v1/profiles"),
        (Method::GET, "/2026Q3/v2/me"),
    ]
}

fn route_matching(c: &mut Criterion) {
    let table = table();
    let requests = requests();
    let mut group = c.benchmark_group("route");
    // As the proxy does it per request (`Snapshot::route`): the first match, else the
    // default route, then what that route does now under the rollback flag.
    let route = |method: &Method, path: &str| {
        let (index, route) = table.find(method, path);
        (index, route.effective(false))
    };
    group.bench_function("find/7 requests over 10 routes", |b| {
        b.iter(|| {
            for (method, path) in &requests {
                black_box(route(black_box(method), black_box(path)));
            }
        })
    });
    group.bench_function("find/miss, versioned (worst case)", |b| {
        b.iter(|| black_box(route(&Method::GET, black_box("/2026Q3/v2/me/settings"))))
    });
    let literal = Pattern::compile("/v1/rates").expect("compiles");
    let wildcard = Pattern::compile("/v3/profiles/*/subscriptions/**").expect("compiles");
    group.bench_function("Pattern::matches/literal hit", |b| {
        b.iter(|| black_box(literal.matches(black_box("/v1/rates"))))
    });
    group.bench_function("Pattern::matches/wildcard hit", |b| {
        b.iter(|| {
            black_box(wildcard.matches(black_box("/v3/profiles/12345/subscriptions/abc-def")))
        })
    });
    group.bench_function("Pattern::matches/wildcard hit behind 2026Q3", |b| {
        b.iter(|| black_box(wildcard.matches(black_box("/2026Q3/v3/profiles/12345/subscriptions"))))
    });
    group.bench_function("Pattern::matches/miss", |b| {
        b.iter(|| black_box(wildcard.matches(black_box("/v1/transfers/123456789"))))
    });
    group.finish();
}

/// The headers a typical app (an HTTP client library) sends on a POST to Wise.
fn app_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    let pairs = [
        ("host", "127.0.0.1:8080"),
        ("user-agent", "acme-payments/4.2.1 okhttp/4.12.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip"),
        ("content-type", "application/json"),
        ("content-length", "412"),
        (
            "authorization",
            "Bearer 0a1b2c3d-4e5f-6789-abcd-ef0123456789",
        ),
        (
            "x-external-correlation-id",
            "5b8f3a52-2d1c-4e8e-9c55-0a7c1d6f3e21",
        ),
        ("x-idempotence-uuid", "f3c0e4a8-7a1b-4c9d-8e2f-6b5a4d3c2b1a"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
    ];
    for (name, value) in pairs {
        headers.append(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers
}

fn upstream() -> Upstream {
    let roots = rustls::RootCertStore::empty();
    let tls = wisegate::tls::client_config(roots, None);
    let settings = UpstreamSettings {
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(90),
        slots: wisegate::slots::SlotBounds {
            all: 256,
            per_connection: 64,
            per_client: None,
        },
        lanes: 1,
        runtime: None,
    };
    Upstream::new(
        &Uri::from_static("https://api-mtls.wise-sandbox.com"),
        tls,
        settings,
    )
}

fn rewrite(c: &mut Criterion) {
    // Building the pooled client spawns nothing, but keep a runtime entered to be safe.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _entered = runtime.enter();
    let upstream = upstream();
    let headers = app_headers();
    let uri = Uri::from_static("/v3/profiles/12345/transfers/987654/payments?type=BALANCE");
    let mut request = Request::post(uri.clone()).body(()).expect("bench request");
    *request.headers_mut() = headers.clone();

    let mut group = c.benchmark_group("rewrite");
    group.bench_function("strip_hop_by_hop/12 headers", |b| {
        b.iter_batched_ref(
            || headers.clone(),
            |headers| strip_hop_by_hop(black_box(headers)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("Upstream::uri_for", |b| {
        b.iter(|| black_box(upstream.uri_for(black_box(uri.path_and_query()))))
    });
    // As src/proxy/mod.rs runs them per request: the guard, then the rewrite of the
    // request head for the upstream (hop-by-hop stripping, Host and the app's
    // Authorization removed, cookies joined, the upstream URI).
    group.bench_function("guard::check", |b| {
        b.iter(|| black_box(guard::check(black_box(&request), 1 << 20)))
    });
    let connection = wisegate::slots::AppConnection::new(([127, 0, 0, 1], 40000).into());
    group.bench_function("rewrite::head/12 headers", |b| {
        b.iter_batched(
            || request.clone().into_parts().0,
            |parts| black_box(rewrite::head(parts, upstream.authority(), connection)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn bookkeeping(c: &mut Criterion) {
    let metrics = Metrics::new(false);
    let route: Arc<str> = Arc::from("transfers");
    let mut group = c.benchmark_group("metrics");
    // As src/proxy/access.rs does it per request: the route name shared with the snapshot
    // (`Arc<str>`), the mode a `&'static str`, the status a `u16` (no String), then a
    // hashed lookup in each family.
    group.bench_function("per-request labels + lookups", |b| {
        b.iter(|| {
            let labels = RequestLabels {
                route: route.clone(),
                mode: Mode::OAuthMtls.as_str(),
                status: black_box(200),
            };
            metrics.requests.get_or_create(&labels).inc();
            metrics
                .request_duration
                .get_or_create(&RouteModeLabels {
                    route: route.clone(),
                    mode: Mode::OAuthMtls.as_str(),
                })
                .observe(black_box(0.0012));
        })
    });
    // The lower bound of a pre-resolved handle (a counter and a histogram looked up once,
    // e.g. per route and mode in the snapshot): what is left after removing the lookups.
    let counter = metrics.requests.get_or_create(&RequestLabels {
        route: route.clone(),
        mode: "oauth_mtls",
        status: 200,
    });
    let histogram = metrics.request_duration.get_or_create(&RouteModeLabels {
        route: route.clone(),
        mode: "oauth_mtls",
    });
    group.bench_function("pre-resolved counter + histogram", |b| {
        b.iter(|| {
            counter.inc();
            histogram.observe(black_box(0.0012));
        })
    });
    let headers = app_headers();
    group.bench_function("header_text (owned String copy)", |b| {
        b.iter(|| {
            black_box(
                black_box(&headers)
                    .get("x-external-correlation-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            )
        })
    });
    group.finish();
}

/// `accounts` accounts of one app token hash each; the request's token selects the last.
fn account_hashes(accounts: usize) -> (Vec<Vec<[u8; 32]>>, HeaderMap) {
    let token = |index: usize| format!("app-token-of-account-{index:02}-0123456789abcdef");
    let hashes = (0..accounts)
        .map(|index| vec![hash_token(token(index).as_bytes())])
        .collect();
    let mut headers = app_headers();
    let bearer = format!("Bearer {}", token(accounts - 1));
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&bearer).unwrap(),
    );
    (hashes, headers)
}

/// The account selection of each request with several accounts: the SHA-256 of the
/// app's token and a constant-time comparison with every configured hash. (With one
/// account nothing is hashed: the only account is taken.)
fn account_selection(c: &mut Criterion) {
    let mut group = c.benchmark_group("account");
    for accounts in [1, 50] {
        let (hashes, headers) = account_hashes(accounts);
        group.bench_function(format!("select/{accounts} accounts"), |b| {
            b.iter(|| {
                matching(
                    black_box(&headers),
                    black_box(&hashes).iter().map(Vec::as_slice),
                )
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = route_matching, rewrite, bookkeeping, account_selection
}
criterion_main!(benches);
