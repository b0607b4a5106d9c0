//! Redis killed and restarted empty, again and again, under three wisegate replicas
//! under load, against a Wise (fake-wise) that rotates refresh tokens and revokes the
//! whole grant when a spent one is presented (RFC 9700). The kills fall at points spread
//! across the refresh cycle, a third of them a few milliseconds after a refresh reached
//! Wise: the moment when one replica holds a generation nobody else has heard of.
//!
//! What must hold (issue 16): no spent refresh token is ever presented, the grant is
//! never revoked, one authorization only, every replica serves at the end, and no
//! request gets a 5xx except while no replica could have had a valid token. That last
//! window is defined here by Wise itself: a sampler asks fake-wise every few
//! milliseconds whether any user access token is valid; a 5xx is excused only if Wise
//! held none at some moment while the request was in flight (the grant gone, or the
//! current token expired without a refresh). With tokens refreshed 3 s before expiry and
//! Redis never down longer than 0.8 s, that window should stay empty.
//!
//! `WISEGATE_CHAOS_KILLS` sets the number of kills (30 by default, under a minute); the
//! ignored test runs 150: `cargo test --test it redis_chaos -- --ignored`.

use crate::common;

use bytes::Bytes;
use common::redis_server::RedisServer;
use common::{eventually, get_at, send, serve};
use fake_wise::FakeWiseConfig;
use http::{Request, StatusCode};
use http_body_util::Full;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wisegate::config::Config;

/// Access tokens live 6 s and are refreshed at half-life, every 3 s (as in issue 16).
const LIFETIME: Duration = Duration::from_secs(6);

/// One request as a client saw it.
struct Outcome {
    replica: usize,
    /// Wall-clock time sent, to find the request in the replicas' log.
    sent_at: std::time::SystemTime,
    sent: Instant,
    done: Instant,
    status: StatusCode,
    error_kind: String,
}

/// When fake-wise held no valid user access token (sampled).
#[derive(Default)]
struct NoValidToken {
    moments: Mutex<Vec<Instant>>,
}

impl NoValidToken {
    fn during(&self, from: Instant, to: Instant) -> bool {
        let moments = self.moments.lock().unwrap();
        moments.iter().any(|m| *m >= from && *m <= to)
    }
}

fn kills() -> usize {
    std::env::var("WISEGATE_CHAOS_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_again_and_again_never_costs_the_grant() {
    chaos(kills()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the larger run: about 150 kills, several minutes"]
async fn redis_restarted_empty_150_times_never_costs_the_grant() {
    chaos(150).await;
}

async fn chaos(kills: usize) {
    // Its window for an excused 5xx assumes refreshes keep pace: never beside the
    // rehearsal's build.
    let _alone = common::alone().await;
    common::init_tracing();
    let mut redis = RedisServer::start(None).await;
    let fake = FakeWiseConfig {
        access_token_lifetime: LIFETIME,
        rotate_refresh_token: true,
        revoke_grant_on_reuse: true,
        ..FakeWiseConfig::default()
    };
    let common::Setup {
        wise,
        dir: _dir,
        config_path,
        ..
    } = common::Harness::builder().fake(fake).setup().await;
    let text = std::fs::read_to_string(&config_path).unwrap().replace(
        "token_store = \"state/tokens.json\"",
        &format!("token_store = \"{}\"", redis.url()),
    );
    std::fs::write(&config_path, text).unwrap();
    let config = Config::load(&config_path).unwrap();
    common::authorize_with_code(&config, &wise).await;
    let wise = Arc::new(wise);
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let running = serve(config.clone()).await;
        replicas.push((running.proxy, running.admin));
    }
    let proxies: Vec<SocketAddr> = replicas.iter().map(|r| r.0).collect();
    let first_refresh = eventually(Duration::from_secs(10), async || {
        wise.token_calls().refresh_token >= 1
    })
    .await;
    assert!(first_refresh, "the group refreshes at half-life");

    let stop = Arc::new(AtomicBool::new(false));
    let no_valid = Arc::new(NoValidToken::default());
    let sampler = {
        let (wise, stop, no_valid) = (wise.clone(), stop.clone(), no_valid.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if wise.current_access_token().is_none() {
                    no_valid.moments.lock().unwrap().push(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let clients: Vec<_> = (0..6)
        .map(|client| {
            let (proxies, stop) = (proxies.clone(), stop.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                let mut turn = client;
                while !stop.load(Ordering::Relaxed) {
                    let replica = turn % proxies.len();
                    let proxy = proxies[replica];
                    turn += 1;
                    let url = format!("http://{proxy}/v1/balances?client={client}");
                    let sent_at = std::time::SystemTime::now();
                    let sent = Instant::now();
                    let (response, _) =
                        send(Request::get(&url).body(Full::new(Bytes::new())).unwrap()).await;
                    let error_kind = response
                        .headers()
                        .get("x-wisegate-error")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    outcomes.push(Outcome {
                        replica,
                        sent_at,
                        sent,
                        done: Instant::now(),
                        status: response.status(),
                        error_kind,
                    });
                }
                outcomes
            })
        })
        .collect();

    let started = Instant::now();
    // Kills before which the group did not refresh within 8 s (more than two refresh
    // intervals), or had lost the grant.
    let mut stalled = Vec::new();
    for kill in 0..kills {
        // Where in the refresh cycle: every third kill a few ms after a refresh reached
        // Wise; the others after an up-time that walks across the cycle.
        if kill % 3 == 0 {
            let refreshes = wise.token_calls().refresh_token;
            let refreshed = eventually(Duration::from_secs(8), async || {
                wise.token_calls().refresh_token > refreshes || wise.reuse().grants_revoked > 0
            })
            .await;
            if !refreshed || wise.reuse().grants_revoked > 0 {
                stalled.push(kill);
            }
            let after = [1, 2, 4, 8, 15][kill / 3 % 5];
            tokio::time::sleep(Duration::from_millis(after)).await;
        } else {
            let up = 200 + (kill as u64 * 373) % 1_000;
            tokio::time::sleep(Duration::from_millis(up)).await;
        }
        redis.kill();
        // Down 50 to 800 ms: well inside the 3 s a token stays valid after its refresh.
        let down = 50 + (kill as u64 * 211) % 750;
        tokio::time::sleep(Duration::from_millis(down)).await;
        redis.restart().await;
    }
    let chaos_took = started.elapsed();

    // Afterwards: every replica serves (given the time the group needs to settle).
    let mut serving = Vec::new();
    for (proxy, _) in &replicas {
        serving.push(
            eventually(Duration::from_secs(10), async || {
                get_at(*proxy, "/v1/me").await.0.status() == StatusCode::OK
            })
            .await,
        );
    }
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.unwrap());
    }

    let total = outcomes.len();
    let not_ok: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status != StatusCode::OK)
        .collect();
    let unexcused: Vec<&Outcome> = not_ok
        .iter()
        .copied()
        .filter(|o| o.status.is_server_error() && !no_valid.during(o.sent, o.done))
        .collect();
    let mut kinds: Vec<(u16, &str)> = not_ok
        .iter()
        .map(|o| (o.status.as_u16(), o.error_kind.as_str()))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let reuse = wise.reuse();
    let calls = wise.token_calls();
    // And the store holds the lineage again (written back after the last restart).
    let mut generation = None;
    let restored = eventually(Duration::from_secs(10), async || {
        generation = redis.generation("wisegate:wisegate-test:").await;
        generation.is_some()
    })
    .await;
    eprintln!(
        "chaos: {kills} kills in {:.1} s; {total} requests, {} not 200 ({:.3}%), {} unexcused 5xx, kinds {kinds:?}; \
         {} refreshes, {} failed token calls, {} authorizations; {} spent refresh tokens presented, {} grants revoked; \
         Wise had no valid token at {} sampled moments; replicas serving at the end {serving:?}; generation {generation:?}; \
         no refresh before kills {stalled:?}",
        chaos_took.as_secs_f64(),
        not_ok.len(),
        100.0 * not_ok.len() as f64 / total.max(1) as f64,
        unexcused.len(),
        calls.refresh_token,
        calls.failed,
        calls.authorization_code,
        reuse.spent_refresh_tokens_presented,
        reuse.grants_revoked,
        no_valid.moments.lock().unwrap().len(),
    );
    for outcome in &unexcused {
        eprintln!(
            "unexcused: replica {} sent at {} answered {} {} after {} ms",
            outcome.replica,
            humantime::format_rfc3339_millis(outcome.sent_at),
            outcome.status,
            outcome.error_kind,
            (outcome.done - outcome.sent).as_millis(),
        );
    }
    assert_eq!(
        reuse.spent_refresh_tokens_presented, 0,
        "a spent refresh token was presented"
    );
    assert_eq!(reuse.grants_revoked, 0, "the grant was revoked");
    assert_eq!(calls.authorization_code, 1, "one authorization only");
    assert!(restored, "the lineage is written back into the last Redis");
    assert!(
        stalled.is_empty(),
        "the group stopped refreshing before kills {stalled:?}"
    );
    assert!(
        serving.iter().all(|s| *s),
        "every replica serves: {serving:?}"
    );
    assert!(
        unexcused.is_empty(),
        "{} requests got a 5xx while Wise held a valid token",
        unexcused.len()
    );
    assert!(
        not_ok.len() * 200 <= total,
        "at most 0.5% of requests not 200: {} of {total}",
        not_ok.len()
    );
}
