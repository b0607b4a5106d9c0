//! The last hour drawn as inline SVG, server-side: per route a stacked area of requests
//! per minute by status class, one of the ways they went (when more than one was taken,
//! or shadow copies were compared) and p50/p99 latency lines on a log scale; and one
//! time line with a lane per event kind ([`super::timeline`]). Charts stretch to the page's width
//! (`preserveAspectRatio="none"`, strokes that do not scale); paths use relative
//! commands so that 50 routes stay well inside the page's size budget.

use super::escape::escape;
use super::model::RouteStatus;
use crate::history::{RouteHour, MINUTES};
use std::fmt::Write;

/// Chart heights in viewBox units (the width is one unit per minute).
const REQUESTS_H: i32 = 16;
const WAYS_H: i32 = 12;
const LATENCY_H: i32 = 12;

/// Relative path commands from the current point through `ys`, one unit right per
/// value; flat stretches become one `h`.
fn trace(ys: &[i32]) -> String {
    let mut out = String::new();
    let mut drawing_lines = false;
    let mut flat = 0;
    for pair in ys.windows(2) {
        let dy = pair[1] - pair[0];
        if dy == 0 {
            flat += 1;
            continue;
        }
        if flat > 0 {
            let _ = write!(out, "h{flat}");
            flat = 0;
            drawing_lines = false;
        }
        out.push_str(if drawing_lines { " 1" } else { "l1" });
        if dy >= 0 {
            out.push(' ');
        }
        let _ = write!(out, "{dy}");
        drawing_lines = true;
    }
    if flat > 0 {
        let _ = write!(out, "h{flat}");
    }
    out
}

/// A filled area from the baseline up to `values` (scaled so that `max` is the top).
fn area(values: &[u64], max: u64, height: i32, class: &str) -> String {
    let ys: Vec<i32> = values
        .iter()
        .map(|&v| height - ((v as f64 / max.max(1) as f64) * f64::from(height)).round() as i32)
        .collect();
    let first = ys.first().copied().unwrap_or(height);
    format!(
        "<path class=\"{class}\" d=\"M0 {height}V{first}{}V{height}z\"/>",
        trace(&ys)
    )
}

/// Stacked areas, bottom layer first: each layer is drawn from the baseline up to its
/// running total, the topmost first, so that each covers the ones below. Layers with
/// nothing in the hour are left out.
fn stacked(layers: &[(&str, Vec<u64>)], height: i32) -> (String, u64) {
    let mut totals = vec![0u64; MINUTES];
    let mut tops: Vec<(&str, Vec<u64>)> = Vec::new();
    for (class, values) in layers {
        if values.iter().all(|&v| v == 0) {
            continue;
        }
        for (total, value) in totals.iter_mut().zip(values) {
            *total += value;
        }
        tops.push((class, totals.clone()));
    }
    let max = totals.iter().copied().max().unwrap_or(0);
    let paths = tops
        .iter()
        .rev()
        .map(|(class, top)| area(top, max, height, class))
        .collect();
    (paths, max)
}

/// Each minute's values as per mille of that minute's total (a minute without any
/// stays empty), so that the top of a 100% stack is flat and costs one `h`.
fn shares<'a>(layers: &[(&'a str, Vec<u64>)]) -> Vec<(&'a str, Vec<u64>)> {
    let totals: Vec<u64> = (0..MINUTES)
        .map(|minute| layers.iter().map(|(_, values)| values[minute]).sum())
        .collect();
    layers
        .iter()
        .map(|(class, values)| {
            let share = values
                .iter()
                .zip(&totals)
                .map(|(&value, &total)| value * 1000 / total.max(1))
                .collect();
            (*class, share)
        })
        .collect()
}

/// Lines through the minutes that have a value (log scale between `low` and `high`).
fn log_line(values: &[Option<f64>], low: f64, high: f64, height: i32, class: &str) -> String {
    let span = (high / low).ln().max(f64::EPSILON);
    let y = |v: f64| {
        let share = ((v.max(low) / low).ln() / span).clamp(0.0, 1.0);
        height - (share * f64::from(height)).round() as i32
    };
    let mut d = String::new();
    let mut start = 0;
    while start < values.len() {
        if values[start].is_none() {
            start += 1;
            continue;
        }
        let end = values[start..]
            .iter()
            .position(Option::is_none)
            .map_or(values.len(), |n| start + n);
        let ys: Vec<i32> = values[start..end].iter().flatten().map(|&v| y(v)).collect();
        let _ = write!(d, "M{start} {}", ys[0]);
        d.push_str(&if ys.len() == 1 {
            "h0".to_owned()
        } else {
            trace(&ys)
        });
        start = end;
    }
    format!("<path class=\"l {class}\" d=\"{d}\"/>")
}

fn svg(class: &str, height: i32, body: &str) -> String {
    format!(
        "<svg class=\"{class}\" viewBox=\"0 0 {w} {height}\" preserveAspectRatio=\"none\">{body}</svg>",
        w = MINUTES - 1
    )
}

fn wide(values: &[u32]) -> Vec<u64> {
    values.iter().map(|&v| u64::from(v)).collect()
}

fn milliseconds(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn requests_chart(hour: &RouteHour) -> (String, u64) {
    let r = &hour.requests;
    // What is not an error is one layer (1xx never reach the app, 3xx are rare).
    let fine: Vec<u64> =
        [&r.c1xx, &r.c2xx, &r.c3xx]
            .iter()
            .fold(vec![0; MINUTES], |sum, series| {
                sum.iter()
                    .zip(series.iter())
                    .map(|(a, &b)| a + u64::from(b))
                    .collect()
            });
    let layers = [("s2", fine), ("s4", wide(&r.c4xx)), ("s5", wide(&r.c5xx))];
    let (paths, max) = stacked(&layers, REQUESTS_H);
    (svg("requests", REQUESTS_H, &paths), max)
}

/// The ways chart, or `None` when every request went one way and nothing was shadowed.
fn ways_chart(hour: &RouteHour) -> (String, Option<String>) {
    let w = &hour.ways;
    let named = [
        ("mTLS", &w.mtls),
        ("legacy", &w.legacy),
        ("fallback", &w.fallback),
    ];
    let totals: Vec<(&str, u64)> = named
        .iter()
        .map(|(name, values)| (*name, values.iter().map(|&v| u64::from(v)).sum()))
        .collect();
    let all: u64 = totals.iter().map(|(_, n)| n).sum();
    let shadowed: u64 = w
        .shadow_match
        .iter()
        .chain(&w.shadow_mismatch)
        .map(|&v| u64::from(v))
        .sum();
    let mut caption: Vec<String> = totals
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {:.0}%", *n as f64 * 100.0 / all.max(1) as f64))
        .collect();
    if shadowed > 0 {
        let mismatched: u64 = w.shadow_mismatch.iter().map(|&v| u64::from(v)).sum();
        caption.push(format!("shadow {mismatched} of {shadowed} mismatched"));
    }
    let caption = caption.join(" · ");
    let ways_used = totals.iter().filter(|(_, n)| *n > 0).count();
    if ways_used <= 1 && shadowed == 0 {
        return (caption, None);
    }
    // With shadow copies, the ways take the top half and the comparisons the bottom.
    let ways_height = if shadowed > 0 { WAYS_H / 2 } else { WAYS_H };
    let (mut paths, _) = stacked(
        &shares(&[
            ("wm", wide(&w.mtls)),
            ("wl", wide(&w.legacy)),
            ("wf", wide(&w.fallback)),
        ]),
        ways_height,
    );
    if shadowed > 0 {
        let (shadow, _) = stacked(
            &shares(&[
                ("sm", wide(&w.shadow_match)),
                ("sx", wide(&w.shadow_mismatch)),
            ]),
            WAYS_H / 2,
        );
        paths.push_str(&format!(
            "<g transform=\"translate(0 {})\">{shadow}</g>",
            WAYS_H / 2
        ));
    }
    (caption, Some(svg("ways", WAYS_H, &paths)))
}

fn latency_chart(hour: &RouteHour) -> (String, String) {
    let l = &hour.latency;
    let seen = || l.p50_ms.iter().chain(&l.p99_ms).flatten().copied();
    let low = seen().fold(f64::INFINITY, f64::min);
    let high = seen().fold(0.0, f64::max);
    if !low.is_finite() {
        return (
            "latency: no requests".to_owned(),
            svg("latency", LATENCY_H, ""),
        );
    }
    let (low, high) = (low * 0.9, (high * 1.1).max(low * 2.0));
    let body = format!(
        "{}{}",
        log_line(&l.p99_ms, low, high, LATENCY_H, "p99"),
        log_line(&l.p50_ms, low, high, LATENCY_H, "p50")
    );
    let last = |values: &[Option<f64>]| values.iter().rev().flatten().next().copied();
    let caption = match (last(&l.p50_ms), last(&l.p99_ms)) {
        (Some(p50), Some(p99)) => format!(
            "latency, latest minute: p50 {} · p99 {} (scale {} to {}, log)",
            milliseconds(p50),
            milliseconds(p99),
            milliseconds(low),
            milliseconds(high)
        ),
        _ => "latency".to_owned(),
    };
    (caption, svg("latency", LATENCY_H, &body))
}

/// One route's card: a summary line and its charts.
pub fn route_card(route: &RouteStatus) -> String {
    let hour = &route.last_hour;
    let (requests, max) = requests_chart(hour);
    let r = &hour.requests;
    let total: u64 = [&r.c1xx, &r.c2xx, &r.c3xx, &r.c4xx, &r.c5xx]
        .iter()
        .flat_map(|series| series.iter())
        .map(|&v| u64::from(v))
        .sum();
    let errors: u64 = r.c5xx.iter().map(|&v| u64::from(v)).sum();
    let summary = if total == 0 {
        "no requests in the last hour".to_owned()
    } else {
        format!(
            "{total} request{s} in the hour, {:.1}% 5xx; up to {max}/min",
            errors as f64 * 100.0 / total as f64,
            s = if total == 1 { "" } else { "s" },
        )
    };
    let (ways_caption, ways) = ways_chart(hour);
    let (latency_caption, latency) = latency_chart(hour);
    let mut card = format!(
        "<section class=\"route\" data-route=\"{name}\"><h3>{name} <small>{effective}</small></h3>\n<p>{summary}</p>{requests}\n",
        name = escape(&route.name),
        effective = escape(&route.effective_mode),
    );
    if !ways_caption.is_empty() {
        let _ = write!(card, "<p>{}</p>", escape(&ways_caption));
    }
    if let Some(ways) = ways {
        card.push_str(&ways);
    }
    let _ = write!(
        card,
        "\n<p>{}</p>{latency}</section>\n",
        escape(&latency_caption)
    );
    card
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_are_relative_and_flat_runs_are_folded() {
        assert_eq!(trace(&[5, 5, 5, 3, 4, 4]), "h2l1-2 1 1h1");
        assert_eq!(trace(&[1]), "");
        let line = log_line(
            &[None, Some(1.0), Some(10.0), None, Some(5.0)],
            1.0,
            10.0,
            10,
            "p50",
        );
        assert_eq!(line, "<path class=\"l p50\" d=\"M1 10l1-10M4 3h0\"/>");
    }
}
