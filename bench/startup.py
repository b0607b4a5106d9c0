#!/usr/bin/env python3
"""Time from exec to serving, for bench/footprint (standard library only).

  startup.py RUNS LISTEN ADMIN PATH -- CMD...

Starts CMD RUNS times; each time measures from just before exec to the first 200 from
http://ADMIN/readyz and to the first 200 through the proxy (http://LISTEN PATH), polling
each every 0.5 ms (one connection per try), then stops CMD (SIGTERM) and waits for it.
Prints one JSON object: the medians, minimums and maximums in milliseconds.
"""

import http.client
import json
import signal
import statistics
import subprocess
import sys
import time

DEADLINE_S = 10


def ok(address, path):
    host, port = address.rsplit(":", 1)
    try:
        conn = http.client.HTTPConnection(host, int(port), timeout=1)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status == 200
    except OSError:
        return False


def until_ok(start, address, path):
    while time.monotonic() - start < DEADLINE_S:
        if ok(address, path):
            return (time.monotonic() - start) * 1000
        time.sleep(0.0005)
    raise SystemExit(f"no 200 from http://{address}{path} within {DEADLINE_S} s")


def main():
    runs, listen, admin, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    cmd = sys.argv[sys.argv.index("--") + 1 :]
    ready, served = [], []
    for _ in range(runs):
        start = time.monotonic()
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ready.append(until_ok(start, admin, "/readyz"))
            served.append(until_ok(start, listen, path))
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=10)
    summary = lambda xs: {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
    print(json.dumps({"runs": runs, "readyz_ms": summary(ready), "first_200_ms": summary(served)}))


if __name__ == "__main__":
    main()
