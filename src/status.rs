//! `/status` on the admin listener: what an operator wants to see at a glance, as JSON
//! (the default) and as an HTML page for people (`Accept: text/html`, as browsers send,
//! or `?format=html`). Routes with their configured and effective modes, shadow and
//! fallback state and status counts; token and certificate expiry; rollback; the config
//! generation and when it was loaded; readiness. Both views are rendered from the one
//! JSON value.

use crate::readiness::not_ready_reasons;
use crate::route_counts::RouteCounts;
use crate::timestamps::{rfc3339, unix_seconds as unix};
use crate::Shared;
use serde_json::{json, Value};

fn responses(counts: &RouteCounts) -> Value {
    let [c1, c2, c3, c4, c5] = counts.by_class();
    json!({"1xx": c1, "2xx": c2, "3xx": c3, "4xx": c4, "5xx": c5})
}

/// The status as JSON.
pub fn json(shared: &Shared) -> Value {
    let snapshot = shared.snapshot.load_full();
    let open = shared.migration.breakers.open();
    let rollback = snapshot.config.rollback_all;
    let routes: Vec<Value> = snapshot
        .config
        .routes
        .all()
        .iter()
        .enumerate()
        .map(|(index, route)| {
            json!({
                "name": route.name,
                "path": route.pattern.as_str(),
                "methods": route.methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
                "mode": route.mode.as_str(),
                "effective_mode": route.effective(rollback).mode.as_str(),
                "shadow": route.shadow,
                "fallback": route.fallback.map(|cooldown| json!({
                    "cooldown_s": cooldown.as_secs(),
                    "open": open.contains_key(&route.name),
                    "probe_in_s": open.get(&route.name),
                })),
                "responses": responses(&snapshot.counts[index]),
            })
        })
        .collect();
    let token = shared.tokens.status();
    let last = shared.tokens.last_refresh();
    let identity = shared.resolver.current();
    let reasons = not_ready_reasons(shared);
    let readiness = shared.rollback_readiness.last();
    let reload = shared.last_reload.load_full();
    json!({
        "ready": reasons.is_empty(),
        "reasons": reasons,
        "rollback_all": rollback,
        "rollback_readiness": {
            "state": readiness.as_ref().map(|p| p.state.as_str()),
            "checked_at": readiness.as_ref().map(|p| rfc3339(p.at)),
            "detail": readiness.as_ref().map(|p| p.detail.clone()),
            "probe_interval_s": snapshot.config.rollback_probe_interval.map(|d| d.as_secs()),
        },
        "config": {
            "file": snapshot.config.file.display().to_string(),
            "generation": snapshot.generation,
            "sha256": snapshot.config.sha256,
            "loaded_at": rfc3339(snapshot.loaded_at),
            "last_reload": reload.map(|r| json!({
                "at": rfc3339(r.at),
                "result": r.result,
                "error": r.error,
            })),
        },
        "routes": routes,
        "token": {
            "expires_at": token.expires_at.map(rfc3339),
            "expires_unix": token.expires_at.map(unix),
            "profile_id": token.profile_id,
            "last_refresh": last.as_ref().map(|o| json!({"at": rfc3339(o.at), "error": o.error, "grant_refused": o.grant_refused, "error_code": o.error_code})),
            "authorization_required": last.filter(|o| o.grant_refused).map(|o| json!({
                "refused_at": rfc3339(o.at),
                "error_code": o.error_code.as_deref().unwrap_or("invalid_grant"),
                "action": "a person must run `wisegate authorize`",
            })),
        },
        "client_certificate": {
            "file": identity.cert_file.display().to_string(),
            "expires_at": rfc3339(identity.not_after),
            "expires_unix": unix(identity.not_after),
        },
    })
}

/// Text safe inside HTML elements and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => escape(s),
        Value::Null => "-".to_owned(),
        other => escape(&other.to_string()),
    }
}

/// The status as an HTML page; a small script turns expiry times into "in 11 h".
pub fn html(status: &Value) -> String {
    let required = &status["token"]["authorization_required"];
    let authorization = match required["refused_at"].as_str() {
        None => "in place".to_owned(),
        Some(at) => format!(
            "<span class=\"bad\">required</span>: Wise refused the grant at {at} ({code}); a person must run <code>wisegate authorize</code>",
            at = escape(at),
            code = text(&required["error_code"]),
        ),
    };
    let mut rows = String::new();
    for route in status["routes"].as_array().into_iter().flatten() {
        let methods = route["methods"]
            .as_array()
            .filter(|m| !m.is_empty())
            .map_or("all".to_owned(), |m| {
                m.iter().map(text).collect::<Vec<_>>().join(" ")
            });
        let fallback = match &route["fallback"] {
            Value::Null => "off".to_owned(),
            f if f["open"] == true => format!("open, probe in {} s", text(&f["probe_in_s"])),
            f => format!("armed (cool-down {} s)", text(&f["cooldown_s"])),
        };
        let r = &route["responses"];
        let changed = if route["mode"] == route["effective_mode"] {
            ""
        } else {
            " class=\"changed\""
        };
        rows.push_str(&format!(
            "<tr data-route=\"{name}\"><td>{name}</td><td><code>{path}</code></td><td>{methods}</td><td>{mode}</td><td{changed}>{effective}</td><td>{shadow}</td><td>{fallback}</td><td>{ok} / {c4} / {c5}</td></tr>\n",
            name = text(&route["name"]),
            path = text(&route["path"]),
            mode = text(&route["mode"]),
            effective = text(&route["effective_mode"]),
            shadow = if route["shadow"] == true { "on" } else { "off" },
            ok = text(&r["2xx"]),
            c4 = text(&r["4xx"]),
            c5 = text(&r["5xx"]),
        ));
    }
    let ready = if status["ready"] == true {
        "<span class=\"ok\">ready</span>".to_owned()
    } else {
        let reasons = status["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect::<Vec<_>>()
            .join("; ");
        format!("<span class=\"bad\">not ready</span>: {reasons}")
    };
    let readiness = &status["rollback_readiness"];
    let readiness = match readiness["state"].as_str() {
        None if readiness["probe_interval_s"].is_null() => {
            "not probed (rollback.probe_interval = \"off\")".to_owned()
        }
        None => "not probed yet".to_owned(),
        Some(state) => format!(
            "<span class=\"{class}\">{state}</span>, checked {at}: {detail}",
            class = if state == "available" { "ok" } else { "bad" },
            state = escape(state),
            at = text(&readiness["checked_at"]),
            detail = text(&readiness["detail"]),
        ),
    };
    let reload = &status["config"]["last_reload"];
    let reload = match reload["result"].as_str() {
        None => "none since start".to_owned(),
        Some("success") => format!("applied {}", text(&reload["at"])),
        Some(_) => format!(
            "<span class=\"bad\">rejected</span> {}: {} (the config above stays in force)",
            text(&reload["at"]),
            text(&reload["error"])
        ),
    };
    let rollback = if status["rollback_all"] == true {
        "<span class=\"bad\">ON: every route goes to the legacy host</span>"
    } else {
        "off"
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wisegate status</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}
th {{ background: #f3f3f3; }}
.ok {{ color: #17702a; font-weight: bold; }} .bad {{ color: #b00020; font-weight: bold; }}
.changed {{ background: #fff3cd; }} dt {{ font-weight: bold; }} dd {{ margin: 0 0 .5em 0; }}
</style></head>
<body>
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
<table id="routes">
<tr><th>route</th><th>path</th><th>methods</th><th>mode</th><th>effective</th><th>shadow</th><th>fallback</th><th>2xx / 4xx / 5xx</th></tr>
{rows}</table>
<script>
for (const el of document.querySelectorAll('.relative')) {{
  const at = Number(el.dataset.unix);
  if (!at) continue;
  const s = at - Date.now() / 1000, abs = Math.abs(s);
  const n = abs >= 86400 ? Math.round(abs / 86400) + ' d' : abs >= 3600 ? Math.round(abs / 3600) + ' h' : Math.round(abs / 60) + ' min';
  el.textContent = s >= 0 ? '(in ' + n + ')' : '(' + n + ' ago)';
}}
</script>
</body></html>
"#,
        file = text(&status["config"]["file"]),
        generation = text(&status["config"]["generation"]),
        loaded = text(&status["config"]["loaded_at"]),
        token = text(&status["token"]["expires_at"]),
        token_unix = text(&status["token"]["expires_unix"]),
        cert_file = text(&status["client_certificate"]["file"]),
        cert = text(&status["client_certificate"]["expires_at"]),
        cert_unix = text(&status["client_certificate"]["expires_unix"]),
    )
}

/// `/status` of a wisegate running with admin listener `admin` (a wildcard address is
/// asked on loopback), or `None` when none answers within a second.
pub async fn fetch_running(admin: std::net::SocketAddr) -> Option<Value> {
    use http_body_util::BodyExt;
    let mut address = admin;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let uri = format!("http://{address}/status").parse().ok()?;
    let ask = async {
        let response = client.get(uri).await.ok()?;
        let body = response.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice(&body).ok()
    };
    tokio::time::timeout(std::time::Duration::from_secs(1), ask)
        .await
        .ok()
        .flatten()
}
