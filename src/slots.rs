//! The request slots of one upstream host (`limits.max_upstream_requests`), shared out
//! fairly: one app connection holds at most `max_upstream_requests_per_connection` of
//! them (an h2c connection carries many streams) and, in gateway mode, one client address
//! at most `max_upstream_requests_per_client`. Without these bounds a few connections
//! trickling uploads took every slot and everyone else got 503 `upstream_busy`.
//!
//! A request over its holder's bound waits for one of its holder's own slots (within the
//! same `upstream_timeout` as for any slot) without taking one from the others. In
//! sidecar mode (a loopback listener) every connection comes from 127.0.0.1, which names
//! no client, so there is no per-address bound there.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

mod lane_pool;
use lane_pool::{LanePool, PoolSlot};

/// One app connection as the request path sees it: handed to the handler with each of
/// its requests where connections are served ([`crate::server`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppConnection {
    id: u64,
    peer: SocketAddr,
}

impl AppConnection {
    /// A connection accepted from `peer`, with an identity no other connection has.
    pub fn new(peer: SocketAddr) -> AppConnection {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        AppConnection {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            peer,
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

/// How many slots there are and how many one holder may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotBounds {
    /// `limits.max_upstream_requests`.
    pub all: usize,
    /// `limits.max_upstream_requests_per_connection`.
    pub per_connection: usize,
    /// `limits.max_upstream_requests_per_client`; `None` in sidecar mode.
    pub per_client: Option<usize>,
}

/// A bound that stayed full until the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Every slot of the host was taken.
    All { limit: usize },
    /// The request's connection held its share.
    Connection { limit: usize },
    /// The request's client address held its share.
    Client { limit: usize, address: IpAddr },
}

/// Who a share belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Holder {
    Connection(u64),
    Client(IpAddr),
}

/// The client an address stands for: an IPv4 address (also when written IPv4-mapped), or
/// an IPv6 /64, which one host commonly has whole.
fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !(u128::from(u64::MAX));
                IpAddr::V6(bits.into())
            }
        },
    }
}

/// A client as [`client_of`] made it, for messages: an IPv6 client is its /64.
pub fn client_text(client: IpAddr) -> String {
    match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("{v6}/64"),
    }
}

/// Each holder with slots held or wanted: its semaphore and how many requests hold or
/// wait for one of its slots. An entry goes with its last request, so the map is only as
/// large as the holders active now.
type Shares = Mutex<HashMap<Holder, (Arc<Semaphore>, usize)>>;

/// The slots of one upstream host.
#[derive(Debug)]
pub struct Slots {
    all: Arc<LanePool>,
    shares: Arc<Shares>,
    bounds: SlotBounds,
}

/// A slot held: given back (with its holders' shares) when dropped.
#[derive(Debug)]
pub struct Slot {
    _all: PoolSlot,
    _connection: Option<Share>,
    _client: Option<Share>,
}

/// One request's place in a holder's share: a slot of it once `permit` is set. Counted
/// in [`Shares`] from before the wait, so a wait given up (timed out, or the app gone)
/// is uncounted too.
#[derive(Debug)]
struct Share {
    permit: Option<OwnedSemaphorePermit>,
    holder: Holder,
    shares: Arc<Shares>,
}

impl Drop for Share {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut shares = self
            .shares
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some((_, users)) = shares.get_mut(&self.holder) {
            *users -= 1;
            if *users == 0 {
                shares.remove(&self.holder);
            }
        }
    }
}

impl Slots {
    pub fn new(bounds: SlotBounds) -> Slots {
        let all = bounds.all.max(1);
        Slots {
            all: LanePool::new(all),
            shares: Arc::default(),
            bounds: SlotBounds {
                all,
                per_connection: bounds.per_connection.clamp(1, all),
                per_client: bounds.per_client.map(|n| n.clamp(1, all)),
            },
        }
    }

    /// A slot for a request from `from` (`None`: wisegate's own, e.g. a token call),
    /// waiting until `deadline` at most: first a slot of the connection's share, then of
    /// its client's, then one of the host's.
    pub async fn acquire(
        &self,
        from: Option<&AppConnection>,
        deadline: Instant,
    ) -> Result<Slot, Full> {
        let mut connection = None;
        let mut client = None;
        if let Some(from) = from {
            let limit = self.bounds.per_connection;
            if limit < self.bounds.all {
                let holder = Holder::Connection(from.id);
                connection = Some(
                    self.share(holder, limit, deadline)
                        .await
                        .ok_or(Full::Connection { limit })?,
                );
            }
            if let Some(limit) = self.bounds.per_client.filter(|&n| n < self.bounds.all) {
                let address = client_of(from.peer.ip());
                client = Some(
                    self.share(Holder::Client(address), limit, deadline)
                        .await
                        .ok_or(Full::Client { limit, address })?,
                );
            }
        }
        let all = self.all.acquire(deadline).await.ok_or(Full::All {
            limit: self.bounds.all,
        })?;
        Ok(Slot {
            _all: all,
            _connection: connection,
            _client: client,
        })
    }

    async fn share(&self, holder: Holder, limit: usize, deadline: Instant) -> Option<Share> {
        let semaphore = {
            let mut shares = self
                .shares
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let (semaphore, users) = shares
                .entry(holder)
                .or_insert_with(|| (Arc::new(Semaphore::new(limit)), 0));
            *users += 1;
            semaphore.clone()
        };
        let mut share = Share {
            permit: None,
            holder,
            shares: self.shares.clone(),
        };
        share.permit = Some(take(&semaphore, deadline).await?);
        Some(share)
    }
}

/// A permit of `semaphore`, at once if one is free, else waiting until `deadline`.
async fn take(semaphore: &Arc<Semaphore>, deadline: Instant) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = semaphore.clone().try_acquire_owned() {
        return Some(permit);
    }
    // (Timed out; the semaphores are never closed.)
    tokio::time::timeout_at(deadline, semaphore.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn from(address: &str) -> AppConnection {
        AppConnection::new(address.parse().unwrap())
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(20)
    }

    #[tokio::test(start_paused = true)]
    async fn one_connection_holds_at_most_its_share_and_the_rest_stay_free() {
        let slots = Slots::new(SlotBounds {
            all: 4,
            per_connection: 2,
            per_client: None,
        });
        let busy = from("127.0.0.1:5000");
        let held = [
            slots.acquire(Some(&busy), soon()).await.unwrap(),
            slots.acquire(Some(&busy), soon()).await.unwrap(),
        ];
        let third = slots.acquire(Some(&busy), soon()).await.unwrap_err();
        assert_eq!(third, Full::Connection { limit: 2 });
        // Sidecar mode: another connection from the same loopback address is not bound.
        let other = from("127.0.0.1:5001");
        let _two = [
            slots.acquire(Some(&other), soon()).await.unwrap(),
            slots.acquire(Some(&other), soon()).await.unwrap(),
        ];
        drop(held);
        slots.acquire(Some(&busy), soon()).await.unwrap();
        // The refused wait and the slots given back left nothing of `busy` behind.
        assert_eq!(
            slots.shares.lock().unwrap().len(),
            1,
            "only `other`'s share"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn in_gateway_mode_one_address_holds_at_most_its_share() {
        let slots = Slots::new(SlotBounds {
            all: 4,
            per_connection: 4,
            per_client: Some(2),
        });
        let (a, b, c) = (from("10.0.0.1:1"), from("10.0.0.1:2"), from("10.0.0.2:1"));
        let _held = [
            slots.acquire(Some(&a), soon()).await.unwrap(),
            slots.acquire(Some(&b), soon()).await.unwrap(),
        ];
        let refused = slots.acquire(Some(&a), soon()).await.unwrap_err();
        assert_eq!(
            refused,
            Full::Client {
                limit: 2,
                address: "10.0.0.1".parse().unwrap()
            }
        );
        let _other = slots.acquire(Some(&c), soon()).await.unwrap();
        // wisegate's own requests are bound by the host's slots only.
        let _own = slots.acquire(None, soon()).await.unwrap();
        assert_eq!(
            slots.acquire(None, soon()).await.unwrap_err(),
            Full::All { limit: 4 }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_over_its_share_waits_for_its_own_slot_not_anothers() {
        let slots = Arc::new(Slots::new(SlotBounds {
            all: 2,
            per_connection: 1,
            per_client: None,
        }));
        let busy = from("127.0.0.1:5000");
        let first = slots.acquire(Some(&busy), soon()).await.unwrap();
        let later = Instant::now() + Duration::from_secs(10);
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(Some(&busy), later).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The second slot of the host is still free for another connection.
        let other = slots.acquire(Some(&from("127.0.0.1:5001")), soon()).await;
        assert!(other.is_ok(), "{other:?}");
        drop(first);
        assert_eq!(waiting.await.unwrap(), Ok(()));
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64_and_a_mapped_ipv4_its_ipv4_address() {
        let client = |text: &str| client_of(text.parse().unwrap());
        assert_eq!(
            client("2001:db8:1:2:aaaa::1"),
            client("2001:db8:1:2:bbbb::9")
        );
        assert_ne!(client("2001:db8:1:2::1"), client("2001:db8:1:3::1"));
        assert_eq!(client("::ffff:192.0.2.7"), client("192.0.2.7"));
        assert_ne!(client("192.0.2.7"), client("192.0.2.8"));
    }
}
