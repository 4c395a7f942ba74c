"""Autobahn|Testsuite 12.x and 13.x (permessage-deflate) against the client.

kosoku (PyPI) runs Autobahn's own case files as a fuzzing server, here in
process on a free port. The client speaks the Autobahn protocol to it:
``/getCaseCount``, then ``/runCase?case=N&agent=A`` for each case, echoing
every message with its type until the server closes, then
``/updateReports?agent=A``. 12.x sends text and binary corpora (1000 messages
of 16 B to 128 KiB each, some auto-fragmented) with the default offer; 13.x
repeats it under seven server answers: no context takeover, 9- and 15-bit
windows, both. 13.2, 13.5 and 13.6 accept only an offer that carries
``client_no_context_takeover``, hence the second offer.

The whole run (216 cases, several GiB of compressed traffic) takes about ten
minutes: the suite runs the smallest message sizes of every subcategory, and
``RAPIDWS_AUTOBAHN_DEFLATE=all`` runs everything.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter

import kosoku

from rapidws import AsyncSession, DeflateOptions, WebSocketClosed

AGENT = "rapidws"
#: The browser's offer first; the second one is what 13.2/13.5/13.6 accept.
OFFERS = [DeflateOptions(), DeflateOptions(client_no_context_takeover=True)]
#: Seconds for one case; the largest (1000 x 128 KiB) take ~10 s on a loaded machine.
CASE_TIMEOUT = 120.0

# Case N.M.K: K picks the message size: 1 = 16 bytes, 2 = 64 bytes, 11 = 8 KiB sent
# in 256-byte fragments (MSG_SIZES in the case file).
# (Named one by one: kosoku matches "12.*.1" against 12.1.10 too.)
SMALL_CASES = [
    f"{category}.{subcategory}.{size}"
    for category, subcategories in ((12, 5), (13, 7))
    for subcategory in range(1, subcategories + 1)
    for size in (1, 2, 11)
]
ALL_CASES = ["12.*", "13.*"]


async def echo_case(session: AsyncSession, url: str) -> None:
    async with session.ws_connect(url, compression=OFFERS, max_message_size=None) as ws:
        try:
            while True:
                data, flags = await ws.recv()
                await ws.send(data, flags)
        except WebSocketClosed:
            pass


async def run_cases(include: list[str]) -> dict[str, tuple[str, str]]:
    """Run the cases ``include`` selects; ``{case_id: (behavior, behaviorClose)}``."""
    async with kosoku.run_fuzzingserver(include, None, host="127.0.0.1", port=0) as server:
        base = f"ws://127.0.0.1:{server.port}"
        async with AsyncSession() as session:
            async with session.ws_connect(f"{base}/getCaseCount") as ws:
                count = int(await ws.recv_str(timeout=CASE_TIMEOUT))
            for case in range(1, count + 1):
                url = f"{base}/runCase?case={case}&agent={AGENT}"
                await asyncio.wait_for(echo_case(session, url), CASE_TIMEOUT)
            async with session.ws_connect(f"{base}/updateReports?agent={AGENT}"):
                pass
        try:
            results = await server.get_result()
        except kosoku.FailureError as failure:
            results = failure.results
    return {r.case_id: (r.behavior.value, r.behavior_close.value) for r in results}


def summary(results: dict[str, tuple[str, str]]) -> str:
    counts = Counter(behavior for behavior, _ in results.values())
    failed = {case: verdict for case, verdict in results.items() if verdict != ("OK", "OK")}
    return f"{dict(counts)}; not OK: {failed}"


async def test_permessage_deflate_cases() -> None:
    include = ALL_CASES if os.environ.get("RAPIDWS_AUTOBAHN_DEFLATE") == "all" else SMALL_CASES
    results = await run_cases(include)
    expected = 216 if include is ALL_CASES else len(SMALL_CASES)
    assert len(results) == expected, summary(results)
    assert all(verdict == ("OK", "OK") for verdict in results.values()), summary(results)
