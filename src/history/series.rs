//! One route's last hour: [`super::MINUTES`] one-minute buckets, each with answers by
//! status class, the way requests went, shadow results and a latency histogram, all
//! relaxed atomics. A bucket is reused when its minute comes round again: the first
//! request of the new minute claims it (compare-and-swap of its minute stamp) and clears
//! it. A request counted by another thread in the microseconds between the claim and the
//! clearing is lost; nothing else is.

use super::clock::{Clock, MINUTES};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Latency histogram buckets: below 128 µs, then edges at 2^k and 1.5 x 2^k µs up to
/// 2^25 µs (33.5 s), then everything longer.
pub const LATENCY_BUCKETS: usize = 38;

/// What a latency figure is worth (see [`Latency`]).
pub const LATENCY_RESOLUTION: &str = "±20%: each figure is the middle of a histogram bucket whose edges are at most 1.5x apart (from 128 µs to 33.5 s)";

/// The way a request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// The mTLS host with an OAuth token.
    Mtls,
    /// The legacy host with the personal token (the route's mode, or the rollback).
    Legacy,
    /// An OAuth route's request sent the legacy way because the mTLS side was unusable.
    Fallback,
}

/// How a shadow copy compared with the answer the app got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowResult {
    Match,
    Mismatch,
}

const SHADOW_MATCH: usize = 3;
const SHADOW_MISMATCH: usize = 4;

#[derive(Debug)]
struct Minute {
    /// The minute (seconds since the epoch / 60) the counts belong to; 0: never used.
    stamp: AtomicU64,
    classes: [AtomicU32; 5],
    /// [`Way`] as index, then shadow match and mismatch.
    ways: [AtomicU32; 5],
    latency: [AtomicU32; LATENCY_BUCKETS],
}

impl Minute {
    fn new() -> Minute {
        Minute {
            stamp: AtomicU64::new(0),
            classes: Default::default(),
            ways: Default::default(),
            latency: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    fn clear(&self) {
        let counters = self.classes.iter().chain(&self.ways).chain(&self.latency);
        for counter in counters {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// One route's hour of buckets; shared by every snapshot that has the route.
#[derive(Debug)]
pub struct RouteSeries {
    clock: Clock,
    minutes: Box<[Minute]>,
}

/// Answers per minute by status class, oldest minute first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassSeries {
    #[serde(rename = "1xx")]
    pub c1xx: Vec<u32>,
    #[serde(rename = "2xx")]
    pub c2xx: Vec<u32>,
    #[serde(rename = "3xx")]
    pub c3xx: Vec<u32>,
    #[serde(rename = "4xx")]
    pub c4xx: Vec<u32>,
    #[serde(rename = "5xx")]
    pub c5xx: Vec<u32>,
}

/// Requests per minute by the way they went, and shadow copies by result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaySeries {
    pub mtls: Vec<u32>,
    pub legacy: Vec<u32>,
    pub fallback: Vec<u32>,
    pub shadow_match: Vec<u32>,
    pub shadow_mismatch: Vec<u32>,
}

/// Latency percentiles per minute in milliseconds (`null`: no request that minute).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: Vec<Option<f64>>,
    pub p99_ms: Vec<Option<f64>>,
}

/// One route's hour as `/status` carries it: [`MINUTES`] values per series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteHour {
    pub requests: ClassSeries,
    pub ways: WaySeries,
    pub latency: Latency,
}

/// The histogram bucket of a latency.
fn latency_bucket(elapsed: Duration) -> usize {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    if micros < 128 {
        return 0;
    }
    let log2 = 63 - micros.leading_zeros() as usize;
    let upper_half = ((micros >> (log2 - 1)) & 1) as usize;
    (1 + 2 * (log2 - 7) + upper_half).min(LATENCY_BUCKETS - 1)
}

/// The edges of latency bucket `index` in µs: from, and to (`None`: open-ended).
pub fn latency_bucket_bounds_us(index: usize) -> (u64, Option<u64>) {
    let lower = |index: usize| -> u64 {
        if index == 0 {
            return 0;
        }
        let base = 1u64 << (7 + (index - 1) / 2);
        if (index - 1) % 2 == 1 {
            base + base / 2
        } else {
            base
        }
    };
    let upper = (index + 1 < LATENCY_BUCKETS).then(|| lower(index + 1));
    (lower(index), upper)
}

fn percentile_ms(histogram: &[u32], quantile: f64) -> Option<f64> {
    let total: u64 = histogram.iter().map(|&n| u64::from(n)).sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64 * quantile).ceil() as u64).max(1);
    let mut seen = 0;
    for (index, &count) in histogram.iter().enumerate() {
        seen += u64::from(count);
        if seen >= rank {
            let (lower, upper) = latency_bucket_bounds_us(index);
            let middle = upper.map_or(lower as f64, |upper| (lower + upper) as f64 / 2.0);
            return Some((middle / 10.0).round() / 100.0);
        }
    }
    None
}

fn class_index(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

impl RouteSeries {
    pub fn new(clock: Clock) -> RouteSeries {
        RouteSeries {
            clock,
            minutes: (0..MINUTES).map(|_| Minute::new()).collect(),
        }
    }

    /// The bucket of `minute`, claimed and cleared if it still holds an older minute.
    fn bucket(&self, minute: u64) -> &Minute {
        let bucket = &self.minutes[(minute % MINUTES as u64) as usize];
        let stamp = bucket.stamp.load(Ordering::Acquire);
        if stamp < minute
            && bucket
                .stamp
                .compare_exchange(stamp, minute, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            bucket.clear();
        }
        bucket
    }

    fn now_minute(&self) -> u64 {
        self.clock.unix_seconds() / 60
    }

    /// Counts one answer: its status, the way it went and how long it took.
    pub fn record(&self, status: u16, way: Way, elapsed: Duration) {
        let bucket = self.bucket(self.now_minute());
        bucket.classes[class_index(status)].fetch_add(1, Ordering::Relaxed);
        bucket.ways[way as usize].fetch_add(1, Ordering::Relaxed);
        bucket.latency[latency_bucket(elapsed)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one shadow comparison.
    pub fn shadow(&self, result: ShadowResult) {
        let index = match result {
            ShadowResult::Match => SHADOW_MATCH,
            ShadowResult::Mismatch => SHADOW_MISMATCH,
        };
        self.bucket(self.now_minute()).ways[index].fetch_add(1, Ordering::Relaxed);
    }

    /// The last [`MINUTES`] minutes up to the current one, oldest first.
    pub fn hour(&self) -> RouteHour {
        let now = self.now_minute();
        let mut hour = RouteHour::default();
        for minute in (now + 1).saturating_sub(MINUTES as u64)..=now {
            let bucket = &self.minutes[(minute % MINUTES as u64) as usize];
            let current = bucket.stamp.load(Ordering::Acquire) == minute;
            let read = |counter: &AtomicU32| {
                if current {
                    counter.load(Ordering::Relaxed)
                } else {
                    0
                }
            };
            let classes: Vec<u32> = bucket.classes.iter().map(read).collect();
            let ways: Vec<u32> = bucket.ways.iter().map(read).collect();
            let latency: Vec<u32> = bucket.latency.iter().map(read).collect();
            let r = &mut hour.requests;
            for (series, value) in [
                &mut r.c1xx,
                &mut r.c2xx,
                &mut r.c3xx,
                &mut r.c4xx,
                &mut r.c5xx,
            ]
            .into_iter()
            .zip(&classes)
            {
                series.push(*value);
            }
            let w = &mut hour.ways;
            let way_series = [
                &mut w.mtls,
                &mut w.legacy,
                &mut w.fallback,
                &mut w.shadow_match,
                &mut w.shadow_mismatch,
            ];
            for (series, value) in way_series.into_iter().zip(&ways) {
                series.push(*value);
            }
            hour.latency.p50_ms.push(percentile_ms(&latency, 0.50));
            hour.latency.p99_ms.push(percentile_ms(&latency, 0.99));
        }
        hour
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn latency_buckets_are_at_most_one_and_a_half_apart() {
        assert_eq!(latency_bucket(Duration::from_micros(0)), 0);
        assert_eq!(latency_bucket(Duration::from_micros(127)), 0);
        assert_eq!(latency_bucket(Duration::from_micros(128)), 1);
        assert_eq!(latency_bucket(Duration::from_micros(191)), 1);
        assert_eq!(latency_bucket(Duration::from_micros(192)), 2);
        assert_eq!(latency_bucket(Duration::from_micros(256)), 3);
        assert_eq!(
            latency_bucket(Duration::from_secs(3600)),
            LATENCY_BUCKETS - 1
        );
        for index in 1..LATENCY_BUCKETS - 1 {
            let (lower, upper) = latency_bucket_bounds_us(index);
            let upper = upper.unwrap();
            assert!(upper as f64 / lower as f64 <= 1.5, "bucket {index}");
            assert_eq!(latency_bucket(Duration::from_micros(lower)), index);
            assert_eq!(latency_bucket(Duration::from_micros(upper - 1)), index);
        }
        assert_eq!(
            latency_bucket_bounds_us(LATENCY_BUCKETS - 1),
            (1 << 25, None)
        );
    }

    #[test]
    fn minutes_roll_over_and_percentiles_come_from_the_histogram() {
        let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(600 * 60));
        let series = RouteSeries::new(clock.clone());
        for _ in 0..98 {
            series.record(200, Way::Mtls, Duration::from_millis(10));
        }
        series.record(503, Way::Fallback, Duration::from_millis(900));
        series.record(503, Way::Fallback, Duration::from_millis(900));
        series.shadow(ShadowResult::Mismatch);
        clock.advance(Duration::from_secs(60));
        series.record(404, Way::Legacy, Duration::from_millis(1));
        let hour = series.hour();
        assert_eq!(hour.requests.c2xx.len(), MINUTES);
        assert_eq!(hour.requests.c2xx[MINUTES - 2], 98);
        assert_eq!(hour.requests.c5xx[MINUTES - 2], 2);
        assert_eq!(hour.requests.c4xx[MINUTES - 1], 1);
        assert_eq!(hour.ways.fallback[MINUTES - 2], 2);
        assert_eq!(hour.ways.shadow_mismatch[MINUTES - 2], 1);
        assert_eq!(hour.ways.legacy[MINUTES - 1], 1);
        let p50 = hour.latency.p50_ms[MINUTES - 2].unwrap();
        let p99 = hour.latency.p99_ms[MINUTES - 2].unwrap();
        assert!((8.0..=12.0).contains(&p50), "{p50}");
        assert!((720.0..=1080.0).contains(&p99), "{p99}");
        assert_eq!(hour.latency.p50_ms[0], None);

        // An hour later the bucket is reused for its new minute, the old counts gone.
        clock.advance(Duration::from_secs(59 * 60));
        series.record(200, Way::Mtls, Duration::from_millis(1));
        let hour = series.hour();
        assert_eq!(hour.requests.c2xx.iter().sum::<u32>(), 1);
        assert_eq!(hour.requests.c4xx.iter().sum::<u32>(), 1, "59 min ago");
    }
}
