#!/usr/bin/env python3
"""Opens N keep-alive HTTP/1.1 connections to HOST:PORT, makes one GET on each, keeps them
all open and idle, prints "held N ok=K", and holds them for HOLD seconds (the caller
measures, then kills it).

  conns.py HOST PORT PATH N HOLD
"""

import asyncio
import sys


async def one(host, port, path, opened):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    opened.append(writer)
    return head.startswith(b"HTTP/1.1 200")


async def main():
    host, port, path, n, hold = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    opened = []
    ok = 0
    # Open in batches so that the accept queue never overflows.
    for start in range(0, n, 100):
        batch = [one(host, port, path, opened) for _ in range(start, min(n, start + 100))]
        results = await asyncio.gather(*batch, return_exceptions=True)
        ok += sum(1 for r in results if r is True)
    print(f"held {len(opened)} ok={ok}", flush=True)
    await asyncio.sleep(hold)
    for writer in opened:
        writer.close()


if __name__ == "__main__":
    asyncio.run(main())
