//! A Sentinel-managed token store (`redis+sentinel://`) against real `redis-server` and
//! `redis-sentinel` processes (started and stopped here, on free loopback ports): writes
//! follow a manual failover as soon as it is announced (the old master still accepts
//! writes for seconds, until Sentinel demotes it), a master demoted under a kept connection (`READONLY`) is
//! left for the one the sentinels name, and wisegate replicas under load ride through
//! `SENTINEL FAILOVER` and a killed primary.

use crate::common;

use common::sentinel::{Passwords, SentinelGroup};
use common::{eventually, get_at, json, load, serve, Running};
use fake_wise::{FakeWise, FakeWiseConfig};
use http::StatusCode;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tempfile::TempDir;
use wisegate::config::{Config, RedisStoreConfig, RedisUrl};
use wisegate::secret::{AccessToken, RefreshToken};
use wisegate::token::{RedisStore, TokenSet};

/// fake-wise's client id is `wisegate-test`: the default key prefix.
const PREFIX: &str = "wisegate:wisegate-test:";

fn tokens(name: &str) -> TokenSet {
    let now = SystemTime::now();
    TokenSet {
        access_token: AccessToken::new(format!("access-{name}")),
        expires_at: now + Duration::from_secs(3600),
        refresh_token: Some(RefreshToken::new(format!("refresh-{name}"))),
        refresh_token_expires_at: None,
        profile_id: None,
        obtained_at: now,
    }
}

fn store(group: &SentinelGroup) -> RedisStore {
    let config = RedisStoreConfig {
        url: RedisUrl::parse(&group.url()).expect("a Sentinel URL"),
        password_file: None,
        key_prefix: PREFIX.into(),
        ca_file: None,
        sentinel_password_file: None,
    };
    RedisStore::open(&config, None).expect("the store opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_protected_sentinels_and_master_are_used_with_both_password_files() {
    let passwords = Passwords {
        master: Some("master-secret".into()),
        sentinels: Some("sentinel-secret".into()),
    };
    let _heavy = common::heavy().await;
    let group = SentinelGroup::start_with(1, passwords).await;
    let dir = tempfile::tempdir().unwrap();
    let master_file = dir.path().join("redis_password");
    let sentinel_file = dir.path().join("redis_sentinel_password");
    std::fs::write(&master_file, "master-secret\n").unwrap();
    std::fs::write(&sentinel_file, "sentinel-secret\n").unwrap();
    let config = |sentinel_password_file| RedisStoreConfig {
        url: RedisUrl::parse(&group.url()).expect("a Sentinel URL"),
        password_file: Some(master_file.clone()),
        key_prefix: PREFIX.into(),
        ca_file: None,
        sentinel_password_file,
    };

    // Without the sentinels' password they cannot be asked for the master.
    let without = RedisStore::open(&config(None), None).expect("the store opens");
    let error = without.save_next(0, &tokens("0")).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("sentinels"), "{message}");
    assert!(!message.contains("secret"), "{message}");

    let store = RedisStore::open(&config(Some(sentinel_file.clone())), None).expect("opens");
    assert_eq!(store.save_next(0, &tokens("1")).await.unwrap(), 1);
    assert_eq!(group.nodes[0].generation(PREFIX).await, Some(1));
    assert!(store.trouble().is_none(), "{:?}", store.trouble());

    // A failover is followed with both passwords (the switch is heard from a sentinel
    // that wants its password too).
    let old = group.master_port().await;
    group.failover().await;
    let new = group.wait_for_master_other_than(old).await;
    let announced = eventually(Duration::from_secs(10), async || {
        store.master_switches() == 1
    })
    .await;
    assert!(announced, "the store heard of the switch");
    assert_eq!(store.save_next(1, &tokens("2")).await.unwrap(), 2);
    let new_node = group.nodes.iter().find(|n| n.port == new).unwrap();
    assert_eq!(new_node.generation(PREFIX).await, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_manual_failover_the_next_write_goes_to_the_new_master() {
    let _heavy = common::heavy().await;
    let group = SentinelGroup::start(1).await;
    let store = store(&group);
    let old = group.master_port().await;
    assert_eq!(store.save_next(0, &tokens("1")).await.unwrap(), 1);
    assert_eq!(group.nodes[0].generation(PREFIX).await, Some(1));

    group.failover().await;
    let new = group.wait_for_master_other_than(old).await;
    // The sentinels name the promoted node a moment before they announce the switch
    // (`+switch-master`); from the announcement on, no write goes to the old master.
    let announced = eventually(Duration::from_secs(10), async || {
        store.master_switches() == 1
    })
    .await;
    assert!(announced, "the store heard of the switch");
    assert_eq!(store.save_next(1, &tokens("2")).await.unwrap(), 2);
    let new_node = group.nodes.iter().find(|n| n.port == new).unwrap();
    let old_node = group.nodes.iter().find(|n| n.port == old).unwrap();
    assert_eq!(
        new_node.generation(PREFIX).await,
        Some(2),
        "written to the master the sentinels name"
    );
    // The old master has not been demoted yet (Sentinel does that ~10 s later): a kept
    // connection to it would have written there, and the write would have been lost.
    assert!(
        group.is_master(old).await,
        "the old master still says master"
    );
    assert_eq!(old_node.generation(PREFIX).await, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_demoted_under_a_kept_connection_is_left_on_readonly() {
    let _heavy = common::heavy().await;
    let mut group = SentinelGroup::start(1).await;
    let store = store(&group);
    let (old, new) = (group.nodes[0].port, group.nodes[1].port);
    assert_eq!(store.save_next(0, &tokens("1")).await.unwrap(), 1);
    let replicated = eventually(Duration::from_secs(10), async || {
        group.nodes[1].generation(PREFIX).await == Some(1)
    })
    .await;
    assert!(replicated, "the replica has generation 1");

    // The master moved by hand while no sentinel was looking: nobody closes the
    // store's connection to the old master, which now answers writes with READONLY.
    group.stop_sentinels();
    let mut promote = group.nodes[1].connection().await;
    let () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut promote)
        .await
        .unwrap();
    let mut demote = group.nodes[0].connection().await;
    let () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(new)
        .query_async(&mut demote)
        .await
        .unwrap();
    group.start_sentinels_watching(new).await;
    assert!(!group.is_master(old).await);

    assert_eq!(
        store.save_next(1, &tokens("2")).await.unwrap(),
        2,
        "READONLY dropped the connection and the write went to the new master"
    );
    assert_eq!(group.nodes[1].generation(PREFIX).await, Some(2));
    assert!(store.trouble().is_none(), "{:?}", store.trouble());
}

struct Replica {
    proxy: SocketAddr,
    admin: SocketAddr,
}

/// fake-wise, a config whose token store is `url`, one `authorize --code`, then
/// `replicas` wisegate instances running that same config.
async fn wisegate_group(
    fake: FakeWiseConfig,
    url: &str,
    replicas: usize,
) -> (FakeWise, TempDir, Vec<Replica>) {
    common::init_tracing();
    let common::Setup {
        wise,
        dir,
        config_path,
        ..
    } = common::Harness::builder().fake(fake).setup().await;
    let text = std::fs::read_to_string(&config_path).unwrap().replace(
        "token_store = \"state/tokens.json\"",
        &format!("token_store = \"{url}\""),
    );
    std::fs::write(&config_path, text).unwrap();
    let config = Config::load(&config_path).unwrap();
    common::authorize_with_code(&config, &wise).await;
    let mut running = Vec::new();
    for _ in 0..replicas {
        let Running { proxy, admin, .. } = serve(config.clone()).await;
        running.push(Replica { proxy, admin });
    }
    (wise, dir, running)
}

/// Waits until every replica uses the token the master holds.
async fn settled(group: &SentinelGroup, replicas: &[Replica]) -> bool {
    eventually(Duration::from_secs(20), async || {
        let master = group.master_port().await;
        let Some(node) = group.nodes.iter().find(|n| n.port == master) else {
            return false;
        };
        let Some(expiry) = node.stored_expiry(PREFIX).await else {
            return false;
        };
        let admins: Vec<_> = replicas.iter().map(|r| r.admin).collect();
        common::all_report_expiry(&admins, expiry).await
    })
    .await
}

/// The generation on the master the sentinels name now.
async fn master_generation(group: &SentinelGroup) -> Option<u64> {
    let master = group.master_port().await;
    group
        .nodes
        .iter()
        .find(|n| n.port == master)?
        .generation(PREFIX)
        .await
}

/// Waits for a refresh after `since` written to the master the sentinels name.
async fn refreshed_through_the_master(group: &SentinelGroup, wise: &FakeWise, since: u64) -> bool {
    eventually(Duration::from_secs(40), async || {
        let refreshes = wise.token_calls().refresh_token;
        refreshes > since && master_generation(group).await == Some(refreshes + 1)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_under_load_ride_through_a_failover_and_a_killed_primary() {
    let _heavy = common::heavy().await;
    // Three sentinels (quorum 2), a primary and a replica; two wisegate replicas.
    let mut sentinels = SentinelGroup::start(3).await;
    let group = &mut sentinels;
    // 20 s tokens, refreshed at half-life: the seconds a failover takes (2.5 s here, 6.5 s
    // on a loaded machine) are bridged by the valid token, far from the last tenth of its
    // life where a replica cut off from Redis would refresh alone.
    // Refresh tokens rotate and a spent one presented revokes the grant (RFC 9700), as
    // in the chaos test: a failover that loses the last write must not make any replica
    // spend a refresh token twice.
    let fake = FakeWiseConfig {
        access_token_lifetime: Duration::from_secs(20),
        rotate_refresh_token: true,
        revoke_grant_on_reuse: true,
        ..FakeWiseConfig::default()
    };
    let (wise, _dir, replicas) = wisegate_group(fake, &group.url(), 2).await;
    let stop = Arc::new(AtomicBool::new(false));
    let proxies: Vec<SocketAddr> = replicas.iter().map(|r| r.proxy).collect();
    let clients = load(&proxies, 4, stop.clone());
    let first = eventually(Duration::from_secs(30), async || {
        wise.token_calls().refresh_token >= 1
    })
    .await;
    assert!(first, "the group refreshes at half-life");

    // 1. SENTINEL FAILOVER, once every replica uses the current token.
    assert!(
        settled(group, &replicas).await,
        "the replicas adopted the refreshed token"
    );
    let primary = group.master_port().await;
    group.failover().await;
    let promoted = group.wait_for_master_other_than(primary).await;
    let refreshes = wise.token_calls().refresh_token;
    assert!(
        refreshed_through_the_master(group, &wise, refreshes).await,
        "tokens are refreshed through the promoted master"
    );
    eprintln!("SENTINEL FAILOVER: {primary} -> {promoted}, refreshes go on through {promoted}");

    // 2. The promoted master killed, once the old one replicates it again.
    group.wait_ready_for_failover().await;
    assert!(
        settled(group, &replicas).await,
        "the replicas adopted the refreshed token"
    );
    let killed_at = Instant::now();
    group.node(promoted).kill();
    let last = group.wait_for_master_other_than(promoted).await;
    let outage = killed_at.elapsed();
    let refreshes = wise.token_calls().refresh_token;
    assert!(
        refreshed_through_the_master(group, &wise, refreshes).await,
        "tokens are refreshed through the master promoted after the kill"
    );
    eprintln!("killed {promoted}: {last} promoted after {outage:?}");
    group.node(promoted).restart_as_replica_of(last).await;

    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut failed = Vec::new();
    for client in clients {
        let statuses = client.await.unwrap();
        total += statuses.len();
        failed.extend(
            statuses
                .into_iter()
                .filter(|(_, status)| *status != StatusCode::OK),
        );
    }
    let calls = wise.token_calls();
    let reuse = wise.reuse();
    eprintln!(
        "{total} requests, {} not 200; {} refreshes, generation {:?}; {} spent refresh tokens presented, {} grants revoked",
        failed.len(),
        calls.refresh_token,
        master_generation(group).await,
        reuse.spent_refresh_tokens_presented,
        reuse.grants_revoked,
    );
    assert_eq!(
        reuse.spent_refresh_tokens_presented, 0,
        "a spent refresh token was presented"
    );
    assert_eq!(reuse.grants_revoked, 0, "the grant was revoked");
    // Every token stayed valid through both failovers: no replica ever lacked a valid
    // token, so every request is answered 200.
    assert!(failed.is_empty(), "not 200: {failed:?}");
    assert!(total > 100, "load was applied ({total} requests)");
    assert_eq!(calls.failed, 0, "no token call failed: no invalid_grant");
    assert_eq!(calls.authorization_code, 1, "no new authorization");
    assert_eq!(calls.max_concurrent, 1, "never two token calls at once");
    assert_eq!(
        master_generation(group).await,
        Some(calls.refresh_token + 1),
        "one lineage, every refresh on the master that is master now"
    );
    for replica in &replicas {
        let (response, _) = get_at(replica.proxy, "/v1/balances").await;
        assert_eq!(response.status(), StatusCode::OK, "every replica serves");
        let healthy = eventually(Duration::from_secs(15), async || {
            let (response, body) = get_at(replica.admin, "/readyz").await;
            response.status() == StatusCode::OK && json(&body).get("degraded").is_none()
        })
        .await;
        assert!(healthy, "readiness is no longer degraded");
    }
}
