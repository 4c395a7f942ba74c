"""Fixtures of the conformance tests: a summary of every Autobahn run at the end.

Each Autobahn test adds lines to ``autobahn_summary``; they are printed after
the test session, whatever the outcome, so CI logs show the per-category counts.
"""

from __future__ import annotations

import pytest

_SUMMARY = pytest.StashKey[list[str]]()


@pytest.fixture
def autobahn_summary(request: pytest.FixtureRequest) -> list[str]:
    """Lines for the "Autobahn conformance" section of the terminal summary."""
    return request.config.stash.setdefault(_SUMMARY, [])


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(_SUMMARY, [])
    if lines:
        terminalreporter.section("Autobahn conformance")
        for line in lines:
            terminalreporter.write_line(line)
