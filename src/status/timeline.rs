//! The last hour's time line as inline SVG: a lane per event kind, a mark per event
//! (bursts in one minute folded into one), an axis in UTC, then the latest events as
//! text.

use super::escape::escape;
use crate::history::{Event, EventKind, Hour, MINUTES};
use std::fmt::Write;

/// `HH:MM:SS` (UTC) of a time in seconds since the epoch.
fn clock_time(unix: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    humantime::format_rfc3339_seconds(time).to_string()[11..19].to_owned()
}

/// What a lane of the time line is called.
fn lane_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::TokenRefresh => "token refresh",
        EventKind::ConfigReload => "config reload",
        EventKind::RollbackFlip => "rollback flip",
        EventKind::BreakerOpen => "breaker open",
        EventKind::CertificateRotation => "certificate",
        EventKind::ReadinessProbe => "rollback probe",
    }
}

/// The time line: a lane per event kind, a mark per event (its `<title>` says what),
/// an axis in UTC, then the latest events as text.
pub fn timeline(hour: &Hour) -> String {
    let span = (MINUTES as u64) * hour.minute_s.max(1);
    let mut lanes = String::new();
    for kind in EventKind::ALL {
        let mut marks = String::new();
        let of_kind: Vec<&Event> = hour.events.iter().filter(|e| e.kind == kind).collect();
        // One mark per minute and outcome: a burst (a reload loop) stays one mark.
        let mut index = 0;
        while index < of_kind.len() {
            let first = of_kind[index];
            let same = |e: &&&Event| e.ok == first.ok && e.at_unix / 60 == first.at_unix / 60;
            let burst = of_kind[index..].iter().take_while(same).count();
            let last = of_kind[index + burst - 1];
            let more = if burst > 1 {
                format!(" ({burst} in this minute; the last:)")
            } else {
                String::new()
            };
            let _ = write!(
                marks,
                "<path class=\"e {ok}\" data-kind=\"{kind}\" data-at=\"{at}\" d=\"M{x} 0V10\"><title>{time}{more} {detail}</title></path>",
                ok = if first.ok { "ok" } else { "bad" },
                kind = kind.as_str(),
                at = first.at_unix,
                x = first.at_unix.saturating_sub(hour.start_unix).min(span),
                time = clock_time(last.at_unix),
                detail = escape(&last.detail),
            );
            index += burst;
        }
        let _ = writeln!(
            lanes,
            "<div class=\"lane\"><span>{name}</span><svg data-lane=\"{kind}\" viewBox=\"0 0 {span} 10\" preserveAspectRatio=\"none\">{marks}</svg></div>",
            name = lane_name(kind),
            kind = kind.as_str(),
        );
    }
    let mut axis = String::new();
    for quarter in 0..=4u64 {
        let at = hour.start_unix + quarter * span / 4;
        let _ = write!(axis, "<span>{}</span>", &clock_time(at)[..5]);
    }
    let mut latest = String::new();
    for event in hour.events.iter().rev().take(12) {
        let _ = writeln!(
            latest,
            "<li data-kind=\"{kind}\"><time>{time}</time> <b class=\"{ok}\">{name}</b> {detail}</li>",
            kind = event.kind.as_str(),
            time = clock_time(event.at_unix),
            ok = if event.ok { "ok" } else { "bad" },
            name = lane_name(event.kind),
            detail = escape(&event.detail),
        );
    }
    if latest.is_empty() {
        latest.push_str("<li>nothing happened in the last hour</li>");
    }
    format!(
        "<section id=\"timeline\">\n{lanes}<div class=\"lane\"><span>UTC</span><div class=\"x\">{axis}</div></div>\n<ol id=\"events\">\n{latest}</ol></section>\n"
    )
}
