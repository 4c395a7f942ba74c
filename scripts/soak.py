"""Memory soak: a million messages through one connection, RSS printed as it goes.

    python scripts/soak.py                 # 1,000,000 round trips, built-in echo server
    python scripts/soak.py --messages 200000 --url ws://127.0.0.1:8765/

The client pipelines batches of 100 messages. Resident memory is printed
every 10% of the run; it should stay flat after the first batch (the suite
runs a 20k-message version with tracemalloc: tests/aio/test_reliability.py).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time

from rapidws import AsyncSession
from rapidws.aio.echo import serve_echo


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def soak(url: str | None, messages: int, size: int) -> None:
    server = None
    if url is None:
        server = await serve_echo()
        url = server.url
    payload = b"s" * size
    batch = 100
    report_every = max(batch, messages // 10)
    start = time.perf_counter()
    first_rss = None
    async with AsyncSession() as s, s.ws_connect(url) as ws:
        done = 0
        while done < messages:
            for _ in range(batch):
                await ws.send_bytes(payload)
            for _ in range(batch):
                await ws.recv(timeout=30)
            done += batch
            if done % report_every == 0:
                rss = rss_mib()
                first_rss = first_rss if first_rss is not None else rss
                rate = done / (time.perf_counter() - start)
                print(f"{done:>10,} messages  RSS {rss:7.1f} MiB  ({rate:,.0f} msg/s)")
    if server is not None:
        await server.close()
    if first_rss is not None:
        print(f"RSS growth after the first report: {rss_mib() - first_rss:+.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="echo server (default: start the built-in one)")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(soak(args.url, args.messages, args.size))


if __name__ == "__main__":
    main()
