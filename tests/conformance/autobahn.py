"""Run the Autobahn|Testsuite cases against the rapidws client.

The fuzzing server is ``kosoku`` (PyPI), which runs Autobahn's own case files:
``kosoku -m fuzzingserver 127.0.0.1:0 -i '1.*' -o DIR`` binds a free port and
prints ``fuzzingserver listening on ws://HOST:PORT`` on stderr. A client then
speaks the Autobahn protocol to it:

1. ``/getCaseCount`` sends one text message, the number of selected cases;
2. ``/runCase?case=N&agent=A`` (N from 1) runs case N: the client echoes every
   message back with its type until the connection closes;
3. ``/updateReports?agent=A`` ends the run: kosoku writes ``DIR/index.json``
   (``{agent: {case_id: {"behavior": ..., "behaviorClose": ...}}}``), one JSON
   and one HTML file per case, and ``DIR/index.html``, then exits.

Everything here drives rapidws through its public API only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rapidws import AsyncSession, WebSocketClosed, WebSocketError, WsFlag

#: Verdicts that pass, for both ``behavior`` and ``behaviorClose``. NON-STRICT
#: departs from a SHOULD and INFORMATIONAL probes unspecified behaviour; both
#: are conformant (Autobahn's report legend).
PASSING = frozenset({"OK", "NON-STRICT", "INFORMATIONAL"})

#: 9.x sends messages of up to 16 MiB (9.1.6, 9.2.6): the limit leaves twice that.
MAX_MESSAGE_SIZE = 32 * 1024 * 1024

#: Seconds one case may take: the slowest cases (6.4.x) wait 1 s between chops,
#: and a 16 MiB echo on a loaded 2-core machine takes a few seconds.
CASE_TIMEOUT = 60.0

#: Seconds kosoku may take to start, and to write its reports after the run.
STARTUP_TIMEOUT = 30.0
REPORT_TIMEOUT = 60.0

_LISTENING_RE = re.compile(r"listening on (ws://\S+)")


# ---------------------------------------------------------------------------
# The fuzzing server
# ---------------------------------------------------------------------------


class FuzzingServerError(RuntimeError):
    """kosoku could not be started, or ended without a report."""


def kosoku_command() -> list[str]:
    """The ``kosoku`` console script of the running interpreter's environment."""
    script = Path(sys.executable).with_name("kosoku")
    if script.is_file():
        return [str(script)]
    found = shutil.which("kosoku")
    if found is None:
        raise FuzzingServerError(
            "the Autobahn tests need the kosoku fuzzing server: pip install -e '.[test]'"
        )
    return [found]


@dataclass
class FuzzingServer:
    """A running ``kosoku -m fuzzingserver``: :attr:`url` is where it listens."""

    process: subprocess.Popen[bytes]
    url: str
    report_dir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace").strip() or "(nothing)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@contextlib.asynccontextmanager
async def fuzzing_server(
    include: Sequence[str], exclude: Sequence[str], report_dir: Path
) -> AsyncIterator[FuzzingServer]:
    """Start kosoku on a free port with the cases ``include`` minus ``exclude``."""
    report_dir.mkdir(parents=True, exist_ok=True)
    log_path = report_dir / "kosoku.log"
    command = [*kosoku_command(), "-m", "fuzzingserver", "127.0.0.1:0", "-o", str(report_dir)]
    for pattern in include:
        command += ["-i", pattern]
    for pattern in exclude:
        command += ["-x", pattern]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    server = FuzzingServer(process, "", report_dir, log_path)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            match = _LISTENING_RE.search(log_path.read_text(errors="replace"))
            if match:
                server.url = match.group(1)
                break
            if process.poll() is not None:
                raise FuzzingServerError(
                    f"kosoku exited with {process.returncode}:\n{server.log()}"
                )
            if time.monotonic() > deadline:
                raise FuzzingServerError(f"kosoku did not listen within {STARTUP_TIMEOUT} s")
            await asyncio.sleep(0.05)
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------
# The client side of the Autobahn protocol
# ---------------------------------------------------------------------------


async def case_count(session: AsyncSession, base: str) -> int:
    async with session.ws_connect(f"{base}/getCaseCount") as ws:
        return int(await ws.recv_str(timeout=CASE_TIMEOUT))


async def echo_case(session: AsyncSession, url: str) -> int | None:
    """Echo every message of one case with its type; the close code it ended with.

    ``None`` when the connection could not be opened: the verdict is kosoku's.
    """
    try:
        async with session.ws_connect(url, max_message_size=MAX_MESSAGE_SIZE) as ws:
            while True:
                try:
                    data, flags = await ws.recv()
                    if flags & WsFlag.TEXT:
                        await ws.send(data, WsFlag.TEXT)
                    else:
                        await ws.send_bytes(data)
                except WebSocketClosed as exc:
                    return exc.code
    except WebSocketError:
        return None


async def run_cases(base: str, agent: str) -> None:
    """Run every case the server offers, one after the other."""
    async with AsyncSession() as session:
        count = await case_count(session, base)
        for index in range(1, count + 1):
            url = f"{base}/runCase?case={index}&agent={agent}"
            try:
                await asyncio.wait_for(echo_case(session, url), CASE_TIMEOUT)
            except asyncio.TimeoutError:
                raise AssertionError(f"case {index} did not end within {CASE_TIMEOUT} s") from None
        # kosoku ends the run and closes this one without a close frame.
        with contextlib.suppress(WebSocketError):
            async with session.ws_connect(f"{base}/updateReports?agent={agent}") as ws:
                await ws.recv(timeout=CASE_TIMEOUT)


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseVerdict:
    case_id: str
    behavior: str
    behavior_close: str
    remote_close_code: int | None

    @property
    def category(self) -> str:
        return self.case_id.split(".", 1)[0]

    @property
    def passed(self) -> bool:
        return self.behavior in PASSING and self.behavior_close in PASSING


@dataclass
class Report:
    """The verdicts of one run, as kosoku wrote them to ``index.json``."""

    agent: str
    verdicts: list[CaseVerdict] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, agent: str) -> Report:
        index = json.loads(path.read_text())
        cases = index.get(agent, {})
        verdicts = [
            CaseVerdict(case_id, e["behavior"], e["behaviorClose"], e.get("remoteCloseCode"))
            for case_id, e in cases.items()
        ]
        verdicts.sort(key=lambda v: [int(part) for part in v.case_id.split(".")])
        return cls(agent, verdicts)

    @property
    def failures(self) -> list[CaseVerdict]:
        return [v for v in self.verdicts if not v.passed]

    def by_category(self) -> dict[str, tuple[int, int]]:
        """``{category: (passed, total)}`` in category order."""
        totals: Counter[str] = Counter()
        passed: Counter[str] = Counter()
        for verdict in self.verdicts:
            totals[verdict.category] += 1
            passed[verdict.category] += verdict.passed
        return {cat: (passed[cat], totals[cat]) for cat in sorted(totals, key=int)}

    def verdict_counts(self) -> Counter[str]:
        """How many cases got each ``behavior/behaviorClose`` pair."""
        return Counter(f"{v.behavior}/{v.behavior_close}" for v in self.verdicts)

    def summary_lines(self) -> Iterable[str]:
        passed = len(self.verdicts) - len(self.failures)
        yield f"{passed}/{len(self.verdicts)} cases passed"
        for category, (ok, total) in self.by_category().items():
            yield f"  {category + '.x':>5}  {ok:>3}/{total:<3}"
        counts = ", ".join(f"{key} {n}" for key, n in sorted(self.verdict_counts().items()))
        yield f"  verdicts: {counts}"


async def wait_for_report(server: FuzzingServer, agent: str) -> Report:
    """Wait for kosoku to write ``index.json`` and exit, then load it."""
    deadline = time.monotonic() + REPORT_TIMEOUT
    while server.process.poll() is None:
        if time.monotonic() > deadline:
            raise FuzzingServerError(f"kosoku wrote no report within {REPORT_TIMEOUT} s")
        await asyncio.sleep(0.05)
    index = server.report_dir / "index.json"
    if not index.is_file():
        raise FuzzingServerError(f"kosoku exited without {index}:\n{server.log()}")
    return Report.load(index, agent)
