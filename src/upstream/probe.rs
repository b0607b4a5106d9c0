//! One protocol probe at a time per pool of upstream connections.
//!
//! hyper-util's client learns whether a host speaks HTTP/2 only from ALPN, after a TLS
//! handshake. Until then every request that finds no pooled connection opens its own: a
//! burst of 50 requests on a cold pool made 50 mTLS handshakes to the upstream (and 50
//! DNS lookups on the blocking pool), of which 48 were thrown away once the first one
//! came back as HTTP/2 (measured with `bench/run`'s setup, 2 lanes). The same happens
//! after every lost connection, which is when Wise's side is least able to take it.
//!
//! [`ProbeGate`] wraps the connector of one pool: while one connect (the probe) is
//! negotiating, the others wait for it. HTTP/2 needs one connection, so the waiters then
//! find it pooled; HTTP/1.1 needs one per request in flight, so once a host is known to
//! answer HTTP/1.1 connects go ahead at once, as before. A probe that fails releases every
//! waiter to try its own, so that a failing host is not tried one request at a time. A
//! host known to speak HTTP/2 whose connection was lost gets a probe again.
//!
//! When a request's connect waited and the pool handed the request a connection meanwhile,
//! hyper-util lets the connect go on in a task of its own, to pool the socket it makes.
//! Against an HTTP/2 host that socket would be thrown away after its handshake: such a
//! connect ends at the gate instead. It is recognised by its task: not the one it was
//! first polled on.
//!
//! What waiting costs: a connect waits for a probe at most the connect timeout, then goes
//! ahead (a host that stalls handshakes delays each error by up to that much once); one
//! that finds an HTTP/2 host's connection gone first lets the other tasks run 16 times
//! (microseconds) in case the pool is about to get one; one released by an HTTP/2 probe
//! waits for the pool to hand its request that connection, up to 1 s should it be lost at
//! once. A probe whose request went away (the app hung up, or its time ran out) releases
//! the others as a failed one does.
//!
//! A gate serves one host: every client built with one ([`super::client`]) is used for a
//! single `https://host:port`.

use hyper_util::client::legacy::connect::Connection;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::Id;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How many times a connect to an HTTP/2 host that found no connection lets the other
/// tasks run, for the pool to hand its request one, before it probes anew
/// ([`pool_took_the_request`]).
const YIELDS_FOR_THE_POOL: usize = 16;

/// How long a connect released by a probe which negotiated HTTP/2 waits for the pool to
/// hand its request that connection; only a connection lost at once takes this long.
const POOL_HANDOFF_LIMIT: Duration = Duration::from_secs(1);

/// What the last connection to the host negotiated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Protocol {
    #[default]
    Unknown,
    Http2,
    Http1,
}

#[derive(Debug, Default)]
struct State {
    probing: bool,
    last: Protocol,
}

#[derive(Debug)]
struct Gate {
    state: Mutex<State>,
    probe_ended: Notify,
    /// The longest a connect waits for a probe (the connect timeout).
    probe_wait: Duration,
}

/// What a connect may do.
enum Turn {
    /// Connect, and tell the others what came of it.
    Probe(ProbeGuard),
    /// Connect.
    Go,
    /// Do not: the request this connect was for went over a pooled HTTP/2 connection.
    NotNeeded,
}

/// The task a connect was first polled on, its request's: polled on another, hyper-util
/// has moved it to a task of its own because the request got a pooled connection.
#[derive(Clone, Copy, Debug)]
struct Origin(Option<Id>);

impl Origin {
    fn here() -> Origin {
        Origin(tokio::task::try_id())
    }

    fn moved(self) -> bool {
        tokio::task::try_id() != self.0
    }
}

impl Gate {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn turn(self: &Arc<Self>, origin: Origin) -> Turn {
        let mut waited = false;
        let mut gave_the_pool_its_turn = false;
        loop {
            let probe_ended = self.probe_ended.notified();
            tokio::pin!(probe_ended);
            // Registered before the state is read, so that an end in between is not missed.
            probe_ended.as_mut().enable();
            // Read again after a wait: the request may have been handed a connection
            // meanwhile, and this connect moved to the background.
            let moved = origin.moved();
            let last = {
                let mut state = self.state();
                let may_probe = !moved
                    && match state.last {
                        Protocol::Unknown => !waited,
                        Protocol::Http2 => gave_the_pool_its_turn,
                        Protocol::Http1 => false,
                    };
                if state.probing {
                    None
                } else if may_probe {
                    state.probing = true;
                    return Turn::Probe(ProbeGuard {
                        gate: self.clone(),
                        negotiated: false,
                    });
                } else {
                    Some(state.last)
                }
            };
            match last {
                None => {
                    if tokio::time::timeout(self.probe_wait, probe_ended)
                        .await
                        .is_err()
                    {
                        // A probe that takes this long is no reason to wait longer.
                        return Turn::Go;
                    }
                    waited = true;
                    gave_the_pool_its_turn = false;
                }
                Some(Protocol::Http1) => return Turn::Go,
                Some(Protocol::Http2) if moved => return Turn::NotNeeded,
                Some(Protocol::Http2) => {
                    let patience = if waited {
                        Patience::Handoff
                    } else {
                        Patience::Turns
                    };
                    if pool_took_the_request(origin, patience).await {
                        return Turn::NotNeeded;
                    }
                    gave_the_pool_its_turn = true;
                }
                // Released by a probe that failed: connect, as without the gate; or a
                // connect in the background while none probes: let it open one.
                Some(Protocol::Unknown) => return Turn::Go,
            }
        }
    }

    fn learned(&self, protocol: Protocol) {
        self.state().last = protocol;
    }
}

/// The host speaks HTTP/2, yet this connect's request found no pooled connection: either
/// a probe has just negotiated one, which the pool gets a few polls later on the probe's
/// task, or the connection was lost. In the first case the pool hands it to the request
/// meanwhile, and hyper-util moves this connect to a task of its own: true. In the second
/// nothing comes, and this connect probes anew: false.
///
/// A connect that waited for the probe knows one was just negotiated and waits for the
/// pool up to [`POOL_HANDOFF_LIMIT`] (on a busy runtime of several threads the probe's
/// task can be a while getting there). One that came after it gives the pool only
/// [`YIELDS_FOR_THE_POOL`] turns: it is most likely a reconnect, which must not wait.
async fn pool_took_the_request(origin: Origin, patience: Patience) -> bool {
    match patience {
        Patience::Handoff => {
            let limit = tokio::time::sleep(POOL_HANDOFF_LIMIT);
            tokio::pin!(limit);
            // Nothing here wakes it but the limit: the move polls it on its new task.
            std::future::poll_fn(|cx| {
                if origin.moved() {
                    Poll::Ready(true)
                } else {
                    limit.as_mut().poll(cx).map(|()| false)
                }
            })
            .await
        }
        Patience::Turns => {
            for _ in 0..YIELDS_FOR_THE_POOL {
                tokio::task::yield_now().await;
                if origin.moved() {
                    return true;
                }
            }
            false
        }
    }
}

/// How long a connect waits for the pool to take its request ([`pool_took_the_request`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Patience {
    /// It waited for a probe that negotiated HTTP/2.
    Handoff,
    /// It came after one.
    Turns,
}

/// The one connect that is negotiating; its end releases the others. Dropped before
/// [`ProbeGate`] has seen what it negotiated, it failed (or its request went away): what
/// the host speaks is unknown again, and the others go ahead at once.
struct ProbeGuard {
    gate: Arc<Gate>,
    negotiated: bool,
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        let mut state = self.gate.state();
        state.probing = false;
        if !self.negotiated {
            state.last = Protocol::Unknown;
        }
        drop(state);
        self.gate.probe_ended.notify_waiters();
    }
}

/// A connector that lets one connect at a time negotiate ([module docs](self)).
#[derive(Clone, Debug)]
pub struct ProbeGate<C> {
    inner: C,
    gate: Arc<Gate>,
}

impl<C> ProbeGate<C> {
    /// `inner` behind a gate of its own (one per pool, for one host); a connect waits for
    /// another's probe at most `probe_wait`, the connect timeout.
    pub fn new(inner: C, probe_wait: Duration) -> ProbeGate<C> {
        ProbeGate {
            inner,
            gate: Arc::new(Gate {
                state: Mutex::default(),
                probe_ended: Notify::new(),
                probe_wait,
            }),
        }
    }
}

impl<C> tower_service::Service<http::Uri> for ProbeGate<C>
where
    C: tower_service::Service<http::Uri>,
    C::Response: Connection + Send + 'static,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        // Lazy: nothing is resolved or dialled until it is polled, after the gate.
        let connecting = self.inner.call(uri);
        let gate = self.gate.clone();
        Box::pin(async move {
            // The first poll is on the request's task (hyper-util polls a connect there
            // before it may move it).
            let origin = Origin::here();
            let mut probe = match gate.turn(origin).await {
                Turn::Probe(guard) => Some(guard),
                Turn::Go => None,
                Turn::NotNeeded => {
                    return Err(
                        "not needed: the request went over a pooled HTTP/2 connection".into(),
                    )
                }
            };
            tokio::pin!(connecting);
            let connection = std::future::poll_fn(|cx| {
                // A probe no request waits for any more must not hold the others back.
                if probe.is_some() && origin.moved() {
                    probe = None;
                }
                connecting.as_mut().poll(cx)
            })
            .await
            .map_err(Into::into)?;
            gate.learned(if connection.connected().is_negotiated_h2() {
                Protocol::Http2
            } else {
                Protocol::Http1
            });
            if let Some(probe) = probe.as_mut() {
                probe.negotiated = true;
            }
            drop(probe);
            Ok(connection)
        })
    }
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
