//! The status page for people: the state at the top, the routes as a table, then the
//! last hour ([`super::timeline`], [`super::graphs`]). No external scripts, fonts or
//! stylesheets (the admin port is often reached through `kubectl port-forward` from a
//! machine without internet). A small inline script turns expiry times into "in 11 h"
//! and swaps in a fresh copy of the page every few seconds; without scripts a
//! `<meta refresh>` reloads it.

use super::escape::escape;
use super::graphs;
use super::model::{RouteStatus, Status};
use super::timeline;
use std::fmt::Write;

/// Seconds between refreshes of the page in place (by script).
const REFRESH_S: u32 = 5;

/// Seconds between reloads of the page without scripts.
const RELOAD_S: u32 = 15;

fn text(value: Option<&str>) -> String {
    value.map_or("-".to_owned(), escape)
}

fn route_row(route: &RouteStatus) -> String {
    let methods = if route.methods.is_empty() {
        "all".to_owned()
    } else {
        route
            .methods
            .iter()
            .map(|m| escape(m))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let fallback = match &route.fallback {
        None => "off".to_owned(),
        Some(f) if f.open => format!(
            "open, probe in {} s",
            f.probe_in_s.map_or("-".to_owned(), |s| s.to_string())
        ),
        Some(f) => format!("armed (cool-down {} s)", f.cooldown_s),
    };
    let r = &route.responses;
    let changed = if route.mode == route.effective_mode {
        ""
    } else {
        " class=\"changed\""
    };
    format!(
        "<tr data-route=\"{name}\"><td>{name}</td><td><code>{path}</code></td><td>{methods}</td><td>{mode}</td><td{changed}>{effective}</td><td>{shadow}</td><td>{fallback}</td><td>{ok} / {c4} / {c5}</td></tr>\n",
        name = escape(&route.name),
        path = escape(&route.path),
        mode = escape(&route.mode),
        effective = escape(&route.effective_mode),
        shadow = if route.shadow { "on" } else { "off" },
        ok = r.c2xx,
        c4 = r.c4xx,
        c5 = r.c5xx,
    )
}

fn readiness(status: &Status) -> String {
    let readiness = &status.rollback_readiness;
    match readiness.state.as_deref() {
        None if readiness.probe_interval_s.is_none() => {
            "not probed (rollback.probe_interval = \"off\")".to_owned()
        }
        None => "not probed yet".to_owned(),
        Some(state) => format!(
            "<span class=\"{class}\">{state}</span>, checked {at}: {detail}",
            class = if state == "available" { "ok" } else { "bad" },
            state = escape(state),
            at = text(readiness.checked_at.as_deref()),
            detail = text(readiness.detail.as_deref()),
        ),
    }
}

fn last_reload(status: &Status) -> String {
    match &status.config.last_reload {
        None => "none since start".to_owned(),
        Some(reload) if reload.result == "success" => format!("applied {}", escape(&reload.at)),
        Some(reload) => format!(
            "<span class=\"bad\">rejected</span> {}: {} (the config above stays in force)",
            escape(&reload.at),
            text(reload.error.as_deref())
        ),
    }
}

/// Whether the OAuth grant stands, or Wise refused it and a person must authorize again.
fn authorization(status: &Status) -> String {
    match &status.token.authorization_required {
        None => "in place".to_owned(),
        Some(required) => format!(
            "<span class=\"bad\">required</span>: Wise refused the grant at {at} ({code}); a person must run <code>wisegate authorize</code>",
            at = escape(&required.refused_at),
            code = escape(&required.error_code),
        ),
    }
}

fn ready(status: &Status) -> String {
    if status.ready {
        "<span class=\"ok\">ready</span>".to_owned()
    } else {
        let reasons: Vec<String> = status.reasons.iter().map(|r| escape(r)).collect();
        format!(
            "<span class=\"bad\">not ready</span>: {}",
            reasons.join("; ")
        )
    }
}

const STYLE: &str = r#"body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; }
table { border-collapse: collapse; margin-top: 1em; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #f3f3f3; }
.ok { color: #17702a; font-weight: bold; } .bad { color: #b00020; font-weight: bold; }
.changed { background: #fff3cd; } dt { font-weight: bold; } dd { margin: 0 0 .5em 0; }
.scroll { overflow-x: auto; } #routes td { white-space: nowrap; }
.lane { display: grid; grid-template-columns: 8.5em 1fr; align-items: center; border-bottom: 1px solid #eee; }
.lane span { font-size: 12px; color: #555; }
.lane svg { width: 100%; height: 18px; display: block; }
.e { stroke-width: 3px; vector-effect: non-scaling-stroke; } .e.ok { stroke: #1b7f3b; } .e.bad { stroke: #c62828; }
.x { display: flex; justify-content: space-between; font-size: 11px; color: #777; }
#events { font-size: 13px; padding-left: 1.2em; } #events time { color: #555; font-variant-numeric: tabular-nums; }
#hour-routes { display: grid; grid-template-columns: repeat(auto-fill, minmax(290px, 1fr)); gap: 12px; }
.route { border: 1px solid #ddd; border-radius: 6px; padding: 6px 10px; }
.route h3 { margin: 0; font-size: 15px; } .route small { color: #666; font-weight: normal; }
.route p { margin: 2px 0; font-size: 12px; color: #444; }
.route svg { width: 100%; display: block; background: #fafafa; }
svg.requests { height: 54px; } svg.ways { height: 24px; } svg.latency { height: 36px; }
.s2 { fill: #4caf50; } .s4 { fill: #ffb300; } .s5 { fill: #e53935; }
.wm { fill: #1e88e5; } .wl { fill: #9e9e9e; } .wf { fill: #fb8c00; } .sm { fill: #26a69a; } .sx { fill: #d81b60; }
.l { fill: none; stroke-width: 1.5px; vector-effect: non-scaling-stroke; stroke-linecap: round; }
.p50 { stroke: #37474f; } .p99 { stroke: #8e24aa; }
.key i { display: inline-block; width: .8em; height: .8em; margin: 0 .2em 0 .8em; vertical-align: -1px; }
@media (max-width: 600px) { body { margin: .5em; } #hour-routes { grid-template-columns: 1fr; } }"#;

const LEGEND: &str = r#"<p class="key">Each chart: the last 60 minutes, now at the right. requests:<i style="background:#4caf50"></i>2xx/3xx<i style="background:#ffb300"></i>4xx<i style="background:#e53935"></i>5xx &nbsp; way:<i style="background:#1e88e5"></i>mTLS<i style="background:#9e9e9e"></i>legacy<i style="background:#fb8c00"></i>fallback<i style="background:#26a69a"></i>shadow match<i style="background:#d81b60"></i>mismatch &nbsp; latency:<i style="background:#37474f"></i>p50<i style="background:#8e24aa"></i>p99</p>"#;

const SCRIPT: &str = r#"function relative() {
  for (const el of document.querySelectorAll('.relative')) {
    const at = Number(el.dataset.unix);
    if (!at) continue;
    const s = at - Date.now() / 1000, abs = Math.abs(s);
    const n = abs >= 86400 ? Math.round(abs / 86400) + ' d' : abs >= 3600 ? Math.round(abs / 3600) + ' h' : Math.round(abs / 60) + ' min';
    el.textContent = s >= 0 ? '(in ' + n + ')' : '(' + n + ' ago)';
  }
}
relative();
setInterval(async () => {
  try {
    const answer = await fetch('?format=html', { cache: 'no-store' });
    if (!answer.ok) return;
    const next = new DOMParser().parseFromString(await answer.text(), 'text/html').getElementById('page');
    if (next) { document.getElementById('page').replaceWith(next); relative(); }
  } catch (e) {}
}, REFRESH_MS);"#;

/// The status as an HTML page.
pub fn html(status: &Status) -> String {
    let mut rows = String::new();
    let mut cards = String::new();
    for route in &status.routes {
        rows.push_str(&route_row(route));
        cards.push_str(&graphs::route_card(route));
    }
    let rollback = if status.rollback_all {
        "<span class=\"bad\">ON: every route goes to the legacy host</span>"
    } else {
        "off"
    };
    let mut page = String::with_capacity(64 * 1024);
    let _ = write!(
        page,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wisegate status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<noscript><meta http-equiv="refresh" content="{RELOAD_S}"></noscript>
<style>
{STYLE}
</style></head>
<body><div id="page">
<h1>wisegate</h1>
<dl>
<dt>State</dt><dd id="ready">{ready}</dd>
<dt>Rollback</dt><dd id="rollback">{rollback}</dd>
<dt>Would a rollback work?</dt><dd id="rollback-readiness">{readiness}</dd>
<dt>Config</dt><dd>{file}, generation <span id="generation">{generation}</span>, loaded {loaded}</dd>
<dt>Last reload</dt><dd id="last-reload">{reload}</dd>
<dt>Authorization</dt><dd id="authorization">{authorization}</dd>
<dt>OAuth access token</dt><dd>expires {token} <span class="relative" data-unix="{token_unix}"></span></dd>
<dt>Client certificate</dt><dd>{cert_file}, expires {cert} <span class="relative" data-unix="{cert_unix}"></span></dd>
</dl>
{accounts}<div class="scroll"><table id="routes">
<tr><th>route</th><th>path</th><th>methods</th><th>mode</th><th>effective</th><th>shadow</th><th>fallback</th><th>2xx / 4xx / 5xx</th></tr>
{rows}</table></div>
<h2>Last hour</h2>
{timeline}{LEGEND}
<div id="hour-routes">
{cards}</div>
<p class="x">Latency figures: {resolution}.</p>
</div>
<script>
{script}
</script>
</body></html>
"#,
        ready = ready(status),
        accounts = super::accounts_table::accounts_table(status),
        readiness = readiness(status),
        file = escape(&status.config.file),
        generation = status.config.generation,
        loaded = escape(&status.config.loaded_at),
        reload = last_reload(status),
        authorization = authorization(status),
        token = text(status.token.expires_at.as_deref()),
        token_unix = status
            .token
            .expires_unix
            .map_or("-".to_owned(), |u| u.to_string()),
        cert_file = escape(&status.client_certificate.file),
        cert = escape(&status.client_certificate.expires_at),
        cert_unix = status.client_certificate.expires_unix,
        timeline = timeline::timeline(&status.last_hour),
        resolution = escape(&status.last_hour.latency_resolution),
        script = SCRIPT.replace("REFRESH_MS", &(REFRESH_S * 1000).to_string()),
    );
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Clock, EventKind, History, ShadowResult, Way, MAX_EVENTS, MINUTES};
    use crate::status::model::*;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    /// 50 routes and the default, every series busy every minute, the event ring full.
    fn busiest_hour() -> Status {
        let clock = Clock::manual(SystemTime::now() - Duration::from_secs(3600));
        let history = History::new(clock.clone());
        let names: Vec<Arc<str>> = (0..50)
            .map(|i| Arc::from(format!("route-number-{i:02}").as_str()))
            .chain([Arc::from("default")])
            .collect();
        let series = history.series_for(&names);
        for minute in 0..MINUTES as u64 {
            for (index, route) in series.iter().enumerate() {
                let n = 1 + (minute * 7 + index as u64 * 13) % 23;
                for i in 0..n {
                    let status = [200, 200, 200, 302, 404, 503][(i % 6) as usize];
                    let way = [Way::Mtls, Way::Mtls, Way::Legacy, Way::Fallback][(i % 4) as usize];
                    route.record(status, way, Duration::from_micros(300 + i * i * 997));
                    route.shadow([ShadowResult::Match, ShadowResult::Mismatch][(i % 2) as usize]);
                }
            }
            if minute % 4 == 0 {
                for _ in 0..MAX_EVENTS / 15 + 1 {
                    let detail = "rejected: /etc/wisegate/wisegate.toml:12: unknown key `rolback` in [rollback]: did you mean `rollback`? The running config stays".repeat(2);
                    history.event(EventKind::ConfigReload, false, &detail);
                }
            }
            if minute + 1 < MINUTES as u64 {
                clock.advance(Duration::from_secs(60));
            }
        }
        let routes = names
            .iter()
            .zip(&series)
            .map(|(name, series)| RouteStatus {
                name: name.to_string(),
                path: "/v3/profiles/*/transfers/**".to_owned(),
                methods: vec!["GET".to_owned(), "POST".to_owned()],
                mode: "oauth_mtls".to_owned(),
                effective_mode: "oauth_mtls".to_owned(),
                shadow: true,
                fallback: Some(FallbackStatus {
                    cooldown_s: 30,
                    open: false,
                    probe_in_s: None,
                }),
                responses: Responses::default(),
                last_hour: series.hour(),
            })
            .collect();
        Status {
            ready: true,
            reasons: Vec::new(),
            rollback_all: false,
            rollback_readiness: RollbackReadiness {
                state: Some("available".to_owned()),
                checked_at: Some("2026-12-01T10:00:00Z".to_owned()),
                detail: Some("the legacy host accepted the personal token".to_owned()),
                probe_interval_s: Some(600),
            },
            config: ConfigStatus {
                file: "/etc/wisegate/wisegate.toml".to_owned(),
                generation: 7,
                sha256: "0".repeat(64),
                loaded_at: "2026-12-01T10:00:00Z".to_owned(),
                last_reload: None,
            },
            routes,
            token: TokenStatus::default(),
            accounts: Vec::new(),
            client_certificate: CertificateStatus {
                file: "/etc/wisegate/client.crt".to_owned(),
                expires_at: "2027-12-01T10:00:00Z".to_owned(),
                expires_unix: 1_827_000_000,
            },
            last_hour: history.hour(),
        }
    }

    #[test]
    fn the_page_with_50_busy_routes_stays_under_150_kb() {
        let status = busiest_hour();
        assert_eq!(status.last_hour.events.len(), MAX_EVENTS);
        let page = html(&status);
        assert_eq!(page.matches("<section class=\"route\"").count(), 51);
        assert_eq!(
            page.matches("class=\"e bad\"").count(),
            15,
            "a mark per minute"
        );
        println!(
            "page with 50 busy routes and {MAX_EVENTS} events: {} bytes",
            page.len()
        );
        if let Ok(file) = std::env::var("WISEGATE_DUMP_PAGE") {
            std::fs::write(file, &page).unwrap();
        }
        assert!(page.len() < 150 * 1024, "{} bytes", page.len());
    }
}
