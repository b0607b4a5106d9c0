#!/usr/bin/env python3
"""Parsing and tables for bench/run (standard library only).

  stats.py wrk OUTPUT                    -> JSON: rps, p50_ms, p99_ms, requests, errors
  stats.py h2load OUTPUT LOGFILE         -> the same; percentiles from h2load's --log-file
  stats.py table RESULTS.jsonl           -> the comparison table (medians over rounds)
  stats.py scale SCALE.jsonl             -> the scale figures
  stats.py line < RESULT.json            -> one measurement on one line
  stats.py placement "PROXY_PIDS" "UPSTREAM_WORKER_PIDS" "UPSTREAM_PORTS"
                                         -> the proxy's open connections to the upstream
                                            per upstream worker, e.g. "2+0" (needs ss)
"""

import json
import re
import statistics
import sys

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def duration_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_wrk(path):
    text = open(path).read()
    out = {"errors": 0}
    out["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    out["requests"] = int(re.search(r"(\d+) requests in", text).group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        out[key] = duration_ms(re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        out["errors"] += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        out["errors"] += sum(int(g) for g in sock.groups())
    return out


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def parse_h2load(path, log_path):
    text = open(path).read()
    out = {}
    out["rps"] = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text).group(1))
    m = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout",
        text,
    )
    out["requests"] = int(m.group(4))
    out["errors"] = int(m.group(5)) + int(m.group(6)) + int(m.group(7))
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if codes:
        out["errors"] += int(codes.group(3)) + int(codes.group(4))
    latencies = []
    with open(log_path) as log:
        for line in log:
            fields = line.split("\t")
            if len(fields) >= 3 and fields[1] != "-1":
                latencies.append(int(fields[2]) / 1000.0)
    latencies.sort()
    out["p50_ms"] = percentile(latencies, 0.50)
    out["p99_ms"] = percentile(latencies, 0.99)
    return out


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fmt(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "nan"
    return f"{value:,.{digits}f}"


def table(path):
    rows = load(path)
    tools = list(dict.fromkeys(r["tool"] for r in rows))
    header = (
        f"{'load':<13} {'proxy':<26} {'n':>2} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>8} "
        f"{'CPU s/10k':>9} {'RSS MB':>7} {'err':>4} {'upstr s/10k':>11} {'chain s/10k':>11} {'other %':>7}"
    )
    lines = [header, "-" * len(header)]
    for tool in tools:
        summary = {}
        for proxy in dict.fromkeys(r["proxy"] for r in rows if r["tool"] == tool):
            runs = [r for r in rows if r["tool"] == tool and r["proxy"] == proxy]
            med = lambda key: statistics.median(r.get(key, float("nan")) for r in runs)
            s = {
                "n": len(runs),
                "rps": med("rps"),
                "p50_ms": med("p50_ms"),
                "p99_ms": med("p99_ms"),
                "cpu": med("cpu_s_per_10k"),
                "rss": max(r["rss_mb"] for r in runs),
                "errors": sum(r["errors"] for r in runs),
                "upstream": med("upstream_cpu_s_per_10k"),
                "chain": statistics.median(
                    r["cpu_s_per_10k"] + r["upstream_cpu_s_per_10k"] + r.get("irq_s_per_10k", 0.0)
                    for r in runs
                ),
                "other": max(r.get("other_pct", float("nan")) for r in runs),
            }
            summary[proxy] = s
            lines.append(
                f"{tool:<13} {proxy:<26} {s['n']:>2} {fmt(s['rps'], 0):>8} {fmt(s['p50_ms']):>7} "
                f"{fmt(s['p99_ms']):>8} {fmt(s['cpu'], 3):>9} {fmt(s['rss'], 1):>7} {s['errors']:>4} "
                f"{fmt(s['upstream'], 3):>11} {fmt(s['chain'], 3):>11} {fmt(s['other'], 0):>7}"
            )
        # `bare` (bench/bare_proxy.rs) is the floor: wisegate / bare is wisegate's own cost.
        for base_name in ("nginx", "nginx-ka1024", "haproxy", "bare"):
            base = summary.get(base_name)
            if base is None:
                continue
            for proxy, s in summary.items():
                if proxy.startswith(("nginx", "haproxy")) or proxy == base_name:
                    continue
                # bare talks HTTP/2 upstream and is stopped before the log=info round.
                if base_name == "bare" and (proxy == "wisegate-h1up" or "log=" in proxy):
                    continue
                ratio = lambda key: s[key] / base[key] if base[key] else float("nan")
                lines.append(
                    f"{tool:<13} {('  ' + proxy + ' / ' + base_name):<29} {fmt(ratio('rps')) + 'x':>8} "
                    f"{fmt(ratio('p50_ms')):>7} {fmt(ratio('p99_ms')):>8} {fmt(ratio('cpu')):>9} "
                    f"{fmt(ratio('rss')):>7} {'':>4} {fmt(ratio('upstream')):>11} {fmt(ratio('chain')):>11}"
                )
        lines.append("")
    lines += [
        "n: rounds. req/s, p50, p99, CPU: medians over rounds. CPU s/10k: CPU seconds (user +",
        "system) the proxy spent per 10,000 requests, all its threads (nginx: master + workers;",
        "HAProxy: its process, 2 threads). RSS: the highest VmHWM during a run (nginx: sum of its",
        "workers). err: non-2xx and socket errors.",
        "upstr s/10k: the upstream nginx's CPU per 10,000 requests. chain s/10k: proxy + upstream",
        "+ interrupt (loopback network) time per 10,000 requests: the whole path's cost, what",
        "req/s would follow on an otherwise idle machine. other %: the highest share of all cores",
        "used by anything else (other sessions' builds) during a run: req/s is only comparable",
        "between runs with similar other %.",
        "Ratios are wisegate / peer (and / bare, the libraries without wisegate): above 1 is",
        "better for req/s, below 1 for the rest.",
        "Per-round req/s [the proxy's connections to the upstream per upstream worker, after",
        "the round; a wisegate with all on one worker runs its upstream side on one core]:",
    ]
    for tool in tools:
        for proxy in dict.fromkeys(r["proxy"] for r in rows if r["tool"] == tool):
            runs = [r for r in rows if r["tool"] == tool and r["proxy"] == proxy]
            lines.append(
                f"  {tool} / {proxy}: "
                + ", ".join(f"{r['rps']:.0f} [{r.get('placement', '?')}]" for r in runs)
            )
    print("\n".join(lines))


def placement(proxy_pids, worker_pids, ports):
    """How the proxy's upstream connections sit on the upstream's workers ("1+1", "2+0"):
    a worker serves the connections it accepted, so a multiplexing proxy's few connections
    can all land on one worker, which then runs that proxy's whole upstream side."""
    import collections
    import subprocess

    try:
        out = subprocess.run(
            ["ss", "-tnpH", "state", "established"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "?"
    proxy_pids, ports = set(proxy_pids.split()), set(ports.split())
    proxy_ports, accepted_by = set(), {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        local_port, peer_port = fields[2].rsplit(":", 1)[1], fields[3].rsplit(":", 1)[1]
        pids = re.findall(r"pid=(\d+)", line)
        if peer_port in ports and proxy_pids.intersection(pids):
            proxy_ports.add(local_port)
        elif local_port in ports and pids:
            accepted_by[peer_port] = pids[0]
    counts = collections.Counter(accepted_by[p] for p in proxy_ports if p in accepted_by)
    return "+".join(str(counts.get(pid, 0)) for pid in worker_pids.split())


def scale(path):
    for row in load(path):
        print(f"{row['what']:<58} {row['value']}")


def main():
    command = sys.argv[1]
    if command == "wrk":
        print(json.dumps(parse_wrk(sys.argv[2])))
    elif command == "h2load":
        print(json.dumps(parse_h2load(sys.argv[2], sys.argv[3])))
    elif command == "table":
        table(sys.argv[2])
    elif command == "line":
        r = json.loads(sys.stdin.read())
        print(
            f"{r['tool']:<13} {r['proxy']:<20} r{r['round']}: {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms"
            f"  p99 {r['p99_ms']:6.2f} ms  CPU {r['cpu_s_per_10k']:.3f} s/10k  RSS {r['rss_mb']:.1f} MB"
            f"  errors {r['errors']}  upstream {r['upstream_cpu_s_per_10k']:.3f} s/10k  wrk/h2load {r['loadgen_cpu_s_per_10k']:.3f} s/10k"
            f"  irq {r.get('irq_s_per_10k', 0):.3f} s/10k  other {r['other_pct']:.0f}%  steal {r.get('steal_pct', 0):.0f}%  idle {r.get('idle_pct', 0):.0f}%"
            f"  upstream connections per upstream worker {r.get('placement', '?')}"
        )
    elif command == "scale":
        scale(sys.argv[2])
    elif command == "placement":
        print(placement(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
