//! The rules of [`super`] checked exhaustively: every combination of facts, and the
//! invariant over random sequences of events.

use super::*;
use proptest::prelude::*;

fn held(generation: u64, rejected: bool) -> Option<HeldFacts> {
    Some(HeldFacts {
        generation,
        rejected,
    })
}

fn stored(generation: u64, same_as_held: bool) -> Option<StoredFacts> {
    Some(StoredFacts {
        generation,
        same_as_held,
    })
}

fn facts(held: Option<HeldFacts>, stored: Option<StoredFacts>) -> Facts {
    Facts {
        held,
        stored,
        locked: true,
        settling: false,
    }
}

#[test]
fn the_issues_replica_never_writes_back_or_spends_a_rejected_generation() {
    // Generation 7 rejected by Wise (8 exists), Redis came back empty.
    assert_eq!(next_step(facts(held(7, true), None)), Next::Wait);
    assert!(!may_write_back(
        HeldFacts {
            generation: 7,
            rejected: true
        },
        None
    ));
    // Another replica wrote 8 back: adopt it.
    assert_eq!(
        next_step(facts(held(7, true), stored(8, false))),
        Next::Adopt
    );
    // Someone wrote 7 back (it did not know of 8 either): still no refresh while
    // the store settles; after that, the store confirms 7 and the lock is held.
    let settling = Facts {
        settling: true,
        ..facts(held(7, true), stored(7, true))
    };
    assert_eq!(next_step(settling), Next::Wait);
    assert_eq!(
        next_step(facts(held(7, true), stored(7, true))),
        Next::Refresh
    );
}

#[test]
fn a_held_lineage_newer_than_the_store_is_written_back_before_anything() {
    assert_eq!(next_step(facts(held(8, false), None)), Next::WriteBack);
    assert_eq!(
        next_step(facts(held(8, false), stored(7, false))),
        Next::WriteBack
    );
    assert_eq!(
        next_step(facts(held(0, false), None)),
        Next::Refresh,
        "a seed"
    );
    assert_eq!(next_step(facts(None, None)), Next::NotAuthorized);
    assert_eq!(next_step(facts(None, stored(3, false))), Next::Adopt);
}

/// A small group: each replica holds a generation (or nothing) and knows whether
/// Wise rejected it; Wise knows the newest generation `wise` (every older refresh
/// token is spent); the store holds a generation or nothing; a replica's refresh may
/// be in flight (presented to Wise, not yet saved) for any number of steps.
#[derive(Debug, Clone)]
struct World {
    wise: u64,
    /// (held generation, rejected by Wise).
    replicas: Vec<Option<(u64, bool)>>,
    /// A refresh in flight: the generation it was based on.
    in_flight: Vec<Option<u64>>,
    stored: Option<u64>,
    /// Ticks since the last write-back (settling while below `SETTLE`).
    since_write_back: u32,
    lock: Option<usize>,
}

const SETTLE: u32 = 2;

#[derive(Debug, Clone, Copy)]
enum Event {
    /// Replica `i` runs one step of the refresh protocol.
    Step(usize),
    /// Replica `i` runs the sync task's reconcile (adopt, or write back).
    Sync(usize),
    /// Replica `i` sends a request; Wise rejects a replaced token.
    Request(usize),
    /// Wise's answer to replica `i`'s refresh arrives; it is saved (or the save is
    /// lost: Redis is away).
    Save(usize, bool),
    /// Replica `i`, its refresh in flight, extends the lock (taking it again if the
    /// store lost it).
    Retake(usize),
    /// Redis loses everything (a restart without persistence), the lock too.
    Lose,
    /// Time passes.
    Tick,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (0..3usize).prop_map(Event::Step),
        (0..3usize).prop_map(Event::Sync),
        (0..3usize).prop_map(Event::Request),
        (0..3usize, any::<bool>()).prop_map(|(i, lost)| Event::Save(i, lost)),
        (0..3usize).prop_map(Event::Retake),
        Just(Event::Lose),
        Just(Event::Tick),
    ]
}

impl World {
    fn start() -> World {
        World {
            wise: 1,
            replicas: vec![Some((1, false)); 3],
            in_flight: vec![None; 3],
            stored: Some(1),
            since_write_back: SETTLE,
            lock: None,
        }
    }

    fn settling(&self) -> bool {
        self.since_write_back < SETTLE
    }

    fn facts(&self, i: usize) -> Facts {
        let held = self.replicas[i].map(|(generation, rejected)| HeldFacts {
            generation,
            rejected,
        });
        let stored = self.stored.map(|generation| StoredFacts {
            generation,
            same_as_held: held.is_some_and(|h| h.generation == generation),
        });
        Facts {
            held,
            stored,
            locked: self.lock == Some(i),
            settling: self.settling(),
        }
    }

    /// The Lua compare-and-set, which also starts the settling window.
    fn write_back(&mut self, generation: u64) {
        if self.stored.is_none_or(|s| s < generation) {
            self.stored = Some(generation);
            self.since_write_back = 0;
        }
    }

    /// What the test assumes of time: before it passes, every refresh in flight has
    /// extended its lock and every replica has synced.
    fn tick(&mut self) {
        for i in 0..3 {
            self.apply(Event::Retake(i));
        }
        for i in 0..3 {
            self.apply(Event::Sync(i));
        }
        // A lock nobody extends expires.
        if self.lock.is_some_and(|i| self.in_flight[i].is_none()) {
            self.lock = None;
        }
        self.apply(Event::Tick);
    }

    /// Applies one event; returns whether a spent refresh token was presented.
    fn apply(&mut self, event: Event) -> bool {
        match event {
            Event::Tick => self.since_write_back = self.since_write_back.saturating_add(1),
            Event::Lose => {
                self.stored = None;
                self.lock = None;
            }
            Event::Request(i) => {
                if let Some((generation, rejected)) = &mut self.replicas[i] {
                    *rejected |= *generation < self.wise;
                }
            }
            Event::Retake(i) => {
                if self.in_flight[i].is_some() && self.lock.is_none() {
                    self.lock = Some(i);
                }
            }
            Event::Save(i, lost) => {
                let Some(base) = self.in_flight[i].take() else {
                    return false;
                };
                let generation = if lost {
                    base + 1
                } else {
                    let next = self.stored.unwrap_or(0).max(base) + 1;
                    self.stored = Some(next);
                    next
                };
                self.replicas[i] = Some((generation, false));
                // A lost save keeps the lock until it expires: the generation lives
                // only here until this replica writes it back.
                if self.lock == Some(i) && !lost {
                    self.lock = None;
                }
            }
            Event::Sync(i) => {
                let facts = self.facts(i);
                match (facts.held, self.stored) {
                    (Some(held), Some(stored)) if stored > held.generation => {
                        self.replicas[i] = Some((stored, false));
                    }
                    (Some(held), stored) if may_write_back(held, stored) => {
                        self.write_back(held.generation)
                    }
                    _ => {}
                }
            }
            Event::Step(i) if self.in_flight[i].is_some() => {}
            Event::Step(i) => match next_step(self.facts(i)) {
                Next::Adopt => self.replicas[i] = self.stored.map(|s| (s, false)),
                Next::WriteBack => {
                    if let Some((generation, _)) = self.replicas[i] {
                        self.write_back(generation);
                    }
                }
                // The acquire script refuses while the store settles.
                Next::Lock if self.lock.is_none() && !self.settling() => self.lock = Some(i),
                Next::Lock | Next::Wait | Next::NotAuthorized => {}
                Next::Refresh => {
                    let Some((generation, _)) = self.replicas[i] else {
                        return false;
                    };
                    if generation < self.wise {
                        return true;
                    }
                    self.wise = generation + 1;
                    self.in_flight[i] = Some(generation);
                }
            },
        }
        false
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    /// Over any interleaving of steps, syncs, requests, answers from Wise (saved or
    /// lost), Redis losing everything and time passing, no spent refresh token is
    /// ever presented, and the store never holds a generation Wise has not issued.
    #[test]
    fn no_interleaving_presents_a_spent_refresh_token(
        events in proptest::collection::vec(event(), 1..80)
    ) {
        let mut world = World::start();
        for event in events {
            let presented_spent = match event {
                Event::Tick => {
                    world.tick();
                    false
                }
                event => world.apply(event),
            };
            prop_assert!(!presented_spent, "{world:?} after {event:?}");
            prop_assert!(world.stored.is_none_or(|s| s <= world.wise), "{world:?}");
        }
    }
}

/// Every order of one scenario, enumerated: replica 0 takes the lock and refreshes,
/// Redis loses everything at any point, Wise's answer arrives at any point (saved or
/// lost), while replica 1 meets a 401 and both others step and sync; time passes
/// before every step.
#[test]
fn every_order_of_a_refresh_and_a_lost_store_is_safe() {
    for lost in [false, true] {
        let events = [
            Event::Step(0),
            Event::Step(0),
            Event::Lose,
            Event::Save(0, lost),
            Event::Request(1),
            Event::Step(1),
            Event::Step(1),
            Event::Step(2),
            Event::Step(2),
        ];
        let mut order: Vec<usize> = (0..events.len()).collect();
        let mut checked = 0;
        permutations(&mut order, 0, &mut |order| {
            let mut world = World::start();
            for &index in order {
                let event = events[index];
                if matches!(event, Event::Step(_)) {
                    world.tick();
                }
                assert!(!world.apply(event), "{order:?}: {world:?}");
            }
            checked += 1;
        });
        assert_eq!(checked, 362_880);
    }
}

fn permutations(items: &mut [usize], k: usize, visit: &mut impl FnMut(&[usize])) {
    if k == items.len() {
        visit(items);
        return;
    }
    for i in k..items.len() {
        items.swap(k, i);
        permutations(items, k + 1, visit);
        items.swap(k, i);
    }
}
